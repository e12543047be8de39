//! `tidemark sync`, `tidemark status`, `tidemark objects`: config in, lake and org wired up.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use tidemark_lake::{HistoryTable, LakeLocation, Ledger, RunStatus};
use tidemark_salesforce::{ClientConfig, SalesforceClient};
use tidemark_sync::{Sync, SyncReport, TidemarkConfig};

use crate::progress::Progress;

/// How a command ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Complete,
    /// Stopped early (API budget): exit code 2, the next run resumes.
    Incomplete,
    /// Some objects failed: exit code 1.
    Failed,
}

pub fn load_config(path: &Path) -> anyhow::Result<TidemarkConfig> {
    TidemarkConfig::load(path, &tidemark_core::config::process_env).with_context(|| format!("invalid config {}", path.display()))
}

/// `--lake` wins over the config file's `lake.location`.
pub fn lake_location(flag: Option<&str>, config: Option<&TidemarkConfig>) -> anyhow::Result<LakeLocation> {
    let settings = config.and_then(|c| c.lake.as_ref());
    let location = match (flag, settings) {
        (Some(l), _) => l.to_owned(),
        (None, Some(s)) => s.location.clone(),
        (None, None) => bail!("no lake given: pass --lake <path or URL> or set lake.location in the config"),
    };
    let options = settings.map(|s| s.storage_options()).unwrap_or_default();
    Ok(LakeLocation::parse(&location)?.with_storage_options(options))
}

pub async fn connect(config: &TidemarkConfig) -> anyhow::Result<SalesforceClient> {
    let auth = config.auth_config()?;
    let client_config = ClientConfig {
        api_version: config.salesforce.api_version.clone(),
        budget_percent: config.salesforce.budget_percent,
        ..ClientConfig::default()
    };
    let client = match &config.salesforce.ca_file {
        Some(ca) => {
            let pem = std::fs::read(ca).with_context(|| format!("reading salesforce.ca_file {}", ca.display()))?;
            SalesforceClient::connect_trusting(auth, client_config, &pem).await
        }
        None => SalesforceClient::connect(auth, client_config).await,
    };
    client.context("connecting to Salesforce")
}

pub struct SyncArgs {
    pub config: PathBuf,
    pub lake: Option<String>,
    pub objects: Vec<String>,
    pub full: bool,
    pub progress: bool,
}

pub async fn sync(args: SyncArgs) -> anyhow::Result<Outcome> {
    let config = load_config(&args.config)?;
    let lake = lake_location(args.lake.as_deref(), Some(&config))?;
    let client = Arc::new(connect(&config).await?);
    let report = run_sync(client, lake, &config.sync, args.objects, args.full, args.progress).await?;
    Ok(print_report(&report))
}

pub async fn run_sync(
    client: Arc<SalesforceClient>,
    lake: LakeLocation,
    settings: &tidemark_sync::SyncSettings,
    objects: Vec<String>,
    full: bool,
    progress: bool,
) -> anyhow::Result<SyncReport> {
    let progress = Arc::new(Progress::new(progress));
    let mut sync = Sync::new(client, lake, settings.clone()).with_full(full).with_observer(progress.clone());
    if !objects.is_empty() {
        sync = sync.with_objects(objects);
    }
    let report = sync.await;
    progress.finish();
    Ok(report?)
}

/// Prints the per-object summary; returns the run's outcome.
pub fn print_report(report: &SyncReport) -> Outcome {
    println!("run {}: {:.1}s, {} API calls", report.run_id, report.duration.as_secs_f64(), report.api_calls);
    let rows: Vec<Vec<String>> = report
        .objects
        .iter()
        .map(|o| {
            vec![
                o.object.clone(),
                format!("{:?}", o.status).to_lowercase(),
                o.mode.to_owned(),
                o.api.map_or("-", |a| a.as_str()).to_owned(),
                o.rows_read.to_string(),
                o.versions_written.to_string(),
                o.deletes.to_string(),
                o.hard_deletes.to_string(),
                o.snapshot_versions.to_string(),
                o.schema_changes.to_string(),
                format!("{:.1}s", o.duration.as_secs_f64()),
            ]
        })
        .collect();
    print_table(
        &["object", "status", "mode", "api", "read", "versions", "deletes", "hard deletes", "snapshot", "schema", "time"],
        &rows,
    );
    for o in report.objects.iter().filter(|o| o.message.is_some()) {
        eprintln!("{}: {}", o.object, o.message.as_deref().unwrap_or_default());
    }
    match report.status() {
        RunStatus::Complete => {
            println!("complete: {} new versions", report.versions_written());
            Outcome::Complete
        }
        RunStatus::Incomplete => {
            eprintln!("INCOMPLETE: the run stopped early (see above); versions read so far are kept and the next run resumes");
            Outcome::Incomplete
        }
        RunStatus::Failed => {
            eprintln!("FAILED: some objects did not sync (see above); the next run retries them");
            Outcome::Failed
        }
    }
}

pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let out: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| if i == 0 { format!("{c:<w$}") } else { format!("{c:>w$}") })
            .collect();
        println!("{}", out.join("  ").trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

pub async fn objects(config_path: &Path) -> anyhow::Result<Outcome> {
    let config = load_config(config_path)?;
    let client = connect(&config).await?;
    let found = Sync::discover(&client, &config.sync).await?;
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|o| {
            vec![
                o.name.clone(),
                o.label.clone(),
                if o.skipped.is_none() { "yes".into() } else { "no".into() },
                o.skipped.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["object", "label", "synced", "why not"], &rows);
    let synced = found.iter().filter(|o| o.skipped.is_none()).count();
    println!("{synced} of {} objects selected", found.len());
    Ok(Outcome::Complete)
}

pub async fn status(lake: &LakeLocation, events: bool) -> anyhow::Result<Outcome> {
    let ledger = Ledger::new(lake.clone());
    let runs = ledger.runs().await?;
    let all_events = ledger.schema_events().await?;
    if events {
        let rows: Vec<Vec<String>> = all_events
            .iter()
            .map(|e| {
                vec![
                    e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    e.object.clone(),
                    e.kind.clone(),
                    e.field.clone(),
                    e.column.clone(),
                    e.detail.clone(),
                ]
            })
            .collect();
        print_table(&["at", "object", "event", "field", "column", "detail"], &rows);
        return Ok(Outcome::Complete);
    }
    let mut objects: Vec<String> = runs.iter().map(|r| r.object.clone()).collect();
    objects.sort();
    objects.dedup();
    if objects.is_empty() {
        println!("no sync has run against {}", lake.root());
        return Ok(Outcome::Complete);
    }
    let mut rows = Vec::new();
    for object in &objects {
        let last = runs.iter().filter(|r| &r.object == object).last().expect("object has runs");
        let bookmark =
            runs.iter().filter(|r| &r.object == object && r.status == RunStatus::Complete).filter_map(|r| r.bookmark).last();
        let (versions, live) = match HistoryTable::open(lake, object).await? {
            Some(t) => t.counts().await?,
            None => (0, 0),
        };
        let changes = all_events.iter().filter(|e| &e.object == object && e.kind != "table_created").count();
        rows.push(vec![
            object.clone(),
            last.finished_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            format!("{:?}", last.status).to_lowercase(),
            bookmark.map_or("-".into(), |b| b.format("%Y-%m-%d %H:%M:%S%.3f").to_string()),
            versions.to_string(),
            live.to_string(),
            changes.to_string(),
        ]);
    }
    print_table(&["object", "last sync", "status", "bookmark (UTC)", "versions", "live", "schema changes"], &rows);
    Ok(Outcome::Complete)
}
