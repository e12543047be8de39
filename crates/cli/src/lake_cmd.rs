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

impl Outcome {
    /// The worse of two outcomes (failed before incomplete before complete).
    pub fn worst(self, other: Outcome) -> Outcome {
        match (self, other) {
            (Outcome::Failed, _) | (_, Outcome::Failed) => Outcome::Failed,
            (Outcome::Incomplete, _) | (_, Outcome::Incomplete) => Outcome::Incomplete,
            _ => Outcome::Complete,
        }
    }
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

/// The lake for a read-only command: it must exist (a typo is named, never created).
pub async fn existing_lake(flag: Option<&str>, config: Option<&TidemarkConfig>) -> anyhow::Result<LakeLocation> {
    let lake = lake_location(flag, config)?;
    if !lake.exists().await.with_context(|| format!("looking for the lake at {}", lake.root()))? {
        bail!("no lake at {}: check --lake (or lake.location); `tidemark sync` or `tidemark demo` creates one", shown(&lake));
    }
    Ok(lake)
}

/// A lake's location as a user typed it: a path for local folders.
pub fn shown(lake: &LakeLocation) -> String {
    lake.root().to_file_path().map(|p| p.display().to_string()).unwrap_or_else(|()| lake.root().to_string())
}

pub async fn connect(config: &TidemarkConfig) -> anyhow::Result<SalesforceClient> {
    let auth = config.auth_config()?;
    let client_config = ClientConfig {
        api_version: config.salesforce()?.api_version.clone(),
        budget_percent: config.salesforce()?.budget_percent,
        ..ClientConfig::default()
    };
    let client = match &config.salesforce()?.ca_file {
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
    /// Only these sources (and not Salesforce).
    pub sources: Vec<String>,
    pub full: bool,
    /// Stream the sources until a signal (logical replication sources only).
    pub follow: bool,
    pub progress: bool,
}

/// Salesforce (when configured and no `--source` is given), then the sources asked for (every
/// configured one when neither `--source` nor `--objects` is given).
pub async fn sync(args: SyncArgs) -> anyhow::Result<Outcome> {
    let config = load_config(&args.config)?;
    let lake = lake_location(args.lake.as_deref(), Some(&config))?;
    let mut outcome = Outcome::Complete;
    if args.sources.is_empty() && (config.salesforce.is_some() || config.sources.is_empty()) {
        let client = Arc::new(connect(&config).await?);
        let report = run_sync(
            client,
            lake.clone(),
            &config.sync,
            Arc::new(config.governance()?),
            args.objects.clone(),
            args.full,
            args.progress,
        )
        .await?;
        outcome = print_report(&report);
    }
    let sources: Vec<String> = match (args.sources.is_empty(), args.objects.is_empty()) {
        (false, _) => args.sources.clone(),
        (true, true) => config.sources.keys().cloned().collect(),
        (true, false) => Vec::new(),
    };
    if !sources.is_empty() {
        outcome = outcome
            .worst(crate::source_cmd::sync_sources(&config, &args.config, &lake, &sources, args.follow, args.progress).await?);
    }
    Ok(outcome)
}

pub async fn run_sync(
    client: Arc<SalesforceClient>,
    lake: LakeLocation,
    settings: &tidemark_sync::SyncSettings,
    governance: Arc<tidemark_core::governance::Governance>,
    objects: Vec<String>,
    full: bool,
    progress: bool,
) -> anyhow::Result<SyncReport> {
    let progress = Arc::new(Progress::new(progress));
    let mut sync =
        Sync::new(client, lake, settings.clone()).with_full(full).with_observer(progress.clone()).with_governance(governance);
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

pub async fn objects(config_path: &Path, pii: bool) -> anyhow::Result<Outcome> {
    let config = load_config(config_path)?;
    let client = connect(&config).await?;
    let found = Sync::discover(&client, &config.sync).await?;
    if pii {
        let mut suggestions = Vec::new();
        for object in found.iter().filter(|o| o.skipped.is_none()) {
            let describe = client.describe(&object.name).await?;
            suggestions.push((object.name.clone(), tidemark_sync::pii::suggest(&describe)));
        }
        print!("{}", tidemark_sync::pii::as_yaml(&suggestions));
        return Ok(Outcome::Complete);
    }
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
    // Objects (and `<source>.<table>`s) with a ledger record, and tables whose first run never
    // recorded one (killed).
    let mut objects: Vec<String> = runs.iter().map(|r| r.object.clone()).collect();
    let mut tables = lake.history_tables().await?;
    for source in lake.sources().await? {
        tables.extend(lake.source_tables(&source).await?.into_iter().map(|t| format!("{source}.{t}")));
    }
    for table in tables {
        if !objects.iter().any(|o| LakeLocation::table_name(o) == table || o.eq_ignore_ascii_case(&table)) {
            objects.push(table);
        }
    }
    objects.sort_by_key(|o| o.to_ascii_lowercase());
    objects.dedup_by_key(|o| o.to_ascii_lowercase());
    if objects.is_empty() {
        println!("no sync has run against {}", shown(lake));
        return Ok(Outcome::Complete);
    }
    let mut rows = Vec::new();
    let mut partial = Vec::new();
    for object in &objects {
        let mine: Vec<&tidemark_lake::SyncRunRecord> = runs.iter().filter(|r| r.object.eq_ignore_ascii_case(object)).collect();
        let bookmark = mine.iter().filter(|r| r.status == RunStatus::Complete).filter_map(|r| r.bookmark).last();
        let ever_complete = mine.iter().any(|r| r.status == RunStatus::Complete);
        let table = HistoryTable::open_named(lake, object).await?;
        let (versions, live) = match &table {
            Some(t) => t.counts().await?,
            None => (0, 0),
        };
        // A run that wrote and then died (SIGKILL, power) left commits but no ledger record.
        let last_writer = match &table {
            Some(t) => t.last_commit_run().await?,
            None => None,
        };
        let interrupted = last_writer.as_ref().is_some_and(|run| !mine.iter().any(|r| &r.run_id == run));
        let mut status = match mine.last() {
            _ if interrupted => "interrupted".to_owned(),
            Some(last) => format!("{:?}", last.status).to_lowercase(),
            None => "interrupted".to_owned(),
        };
        if !ever_complete {
            status.push_str(", initial load not complete");
            partial.push(object.clone());
        }
        let changes = all_events.iter().filter(|e| e.object.eq_ignore_ascii_case(object) && e.kind != "table_created").count();
        rows.push(vec![
            object.clone(),
            mine.last().map_or("-".into(), |r| r.finished_at.format("%Y-%m-%d %H:%M:%S").to_string()),
            status,
            bookmark.map_or("-".into(), |b| b.format("%Y-%m-%d %H:%M:%S%.3f").to_string()),
            versions.to_string(),
            live.to_string(),
            changes.to_string(),
        ]);
    }
    print_table(&["object", "last sync", "status", "bookmark (UTC)", "versions", "live", "schema changes"], &rows);
    print_policies(lake, &objects).await?;
    if !partial.is_empty() {
        eprintln!(
            "note: {} never completed a first sync: their tables hold only the records read so far (the next sync goes on)",
            partial.join(", ")
        );
    }
    Ok(Outcome::Complete)
}

/// The field policies in force per table (from its columns' metadata), and the columns whose
/// older versions are not under theirs yet.
async fn print_policies(lake: &LakeLocation, objects: &[String]) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for object in objects {
        let Some(table) = HistoryTable::open_named(lake, object).await? else { continue };
        let schema = table.schema()?;
        let tokens = tidemark_lake::policy::column_tokens(&schema);
        if tokens.is_empty() {
            continue;
        }
        let unsettled = tidemark_lake::policy::unsettled_columns(table.delta(), &schema, object).await?;
        for (column, token) in tokens {
            let history =
                if unsettled.contains(&column) { "older versions not yet: run tidemark govern apply" } else { "all versions" };
            rows.push(vec![object.clone(), column, token, history.to_owned()]);
        }
    }
    if !rows.is_empty() {
        println!();
        print_table(&["object", "column", "policy", "applies to"], &rows);
    }
    Ok(())
}

/// `tidemark doctor`: one line per table; exit 1 when damage was found and left in place.
pub async fn doctor(lake: LakeLocation, repair: bool) -> anyhow::Result<Outcome> {
    let findings = tidemark_lake::Doctor::new(lake.clone()).with_repair(repair).run().await?;
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            let state = match (f.is_healthy(), f.repaired) {
                (true, _) => "ok",
                (false, true) => "repaired",
                (false, false) => "needs repair",
            };
            vec![
                f.object.clone(),
                f.versions.to_string(),
                f.duplicate_versions.to_string(),
                f.versions_without_key.to_string(),
                if f.append_only_missing { "missing".into() } else { "ok".into() },
                state.to_owned(),
            ]
        })
        .collect();
    print_table(&["table", "versions", "duplicates", "without key", "append-only", "state"], &rows);
    let damaged = findings.iter().filter(|f| !f.is_healthy() && !f.repaired).count();
    if findings.iter().any(|f| f.versions_without_key > 0) {
        eprintln!("note: versions without an Id or _version_at are reported, never removed");
    }
    if damaged > 0 {
        eprintln!("{damaged} table(s) need repair: run `tidemark doctor --repair --lake {}`", shown(&lake));
        return Ok(Outcome::Failed);
    }
    Ok(Outcome::Complete)
}
