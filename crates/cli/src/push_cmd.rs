//! `tidemark push FLOW` and `tidemark push status [FLOW]`: the config's `push:` flows.
//!
//! Record values reach the terminal only in a dry run's sample, which the user asked to see;
//! they are printed to standard output, never logged. `status` shows the rejected rows by key
//! and never their `record` column.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail};
use serde_json::Value as J;
use tidemark_core::push::PushConfig;
use tidemark_push::dry_run::SampleRow;
use tidemark_push::run::OperationCounts;
use tidemark_push::{ErrorRow, ErrorTable, PushError, PushMetrics, PushRun, PushRunRecord, PushStatus, RunLog};
use tidemark_sync::TidemarkConfig;

use crate::lake_cmd::{Outcome, connect, existing_lake, load_config, print_table};

/// Open errors shown per flow by `status`; the rest are a query away.
const ERRORS_SHOWN: usize = 50;

/// Where the flows and the lake are (both `push` forms take these).
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The configuration file (push:, lake:, salesforce:).
    #[arg(long, short, default_value = "tidemark.yaml", env = "TIDEMARK_CONFIG")]
    pub config: PathBuf,
    /// Lake location (folder or s3:// URL); overrides lake.location.
    #[arg(long)]
    pub lake: Option<String>,
}

/// `tidemark push FLOW`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The flow to run: a name under push: in the config.
    #[arg(required = true)]
    pub flow: Option<String>,
    /// Show what would be sent, with sample rows against the records' current values; send and
    /// write nothing (reads the target's records for the sample).
    #[arg(long)]
    pub dry_run: bool,
    /// Dry run: rows shown per operation.
    #[arg(long, default_value_t = 10, requires = "dry_run")]
    pub sample: usize,
    /// The memory the result's sort may hold before it spills to disk: bytes, or a number with
    /// KiB, MiB or GiB [default: 256MiB].
    #[arg(long, value_parser = crate::model_cmd::parse_memory_limit)]
    pub memory_limit: Option<usize>,
    #[command(flatten)]
    pub args: PushArgs,
}

/// The flows `name` selects (every flow, in name order, when `None`). Flow names are
/// case-insensitive, as their tables are.
fn selected(config: &TidemarkConfig, path: &Path, name: Option<&str>) -> anyhow::Result<Vec<(String, PushConfig)>> {
    if config.push.is_empty() {
        bail!("{} defines no push flows (a push: section)", path.display());
    }
    let Some(name) = name else {
        return Ok(config.push.iter().map(|(n, f)| (n.clone(), f.clone())).collect());
    };
    match config.push.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        Some((n, f)) => Ok(vec![(n.clone(), f.clone())]),
        None => {
            bail!("no push flow named {name}; the config defines: {}", config.push.keys().cloned().collect::<Vec<_>>().join(", "))
        }
    }
}

pub async fn run(run: RunArgs) -> anyhow::Result<Outcome> {
    let wanted = run.flow.as_deref().ok_or_else(|| anyhow!("name the flow to run: tidemark push FLOW"))?;
    let config = load_config(&run.args.config)?;
    let (name, flow) = selected(&config, &run.args.config, Some(wanted))?.remove(0);
    // The lake first: a mistyped --lake is named before any request to the org.
    let lake = existing_lake(run.args.lake.as_deref(), Some(&config)).await?;
    let client = Arc::new(connect(&config).await?);
    let mut push = PushRun::new(lake, client, &name, flow);
    if run.dry_run {
        push = push.with_dry_run(run.sample);
    }
    if let Some(bytes) = run.memory_limit {
        push = push.with_memory_limit(bytes);
    }
    let metrics = push.execute().await.map_err(|e| in_flow(e, &name))?;
    print!("{}", report(&metrics));
    Ok(match metrics.status {
        PushStatus::Complete => Outcome::Complete,
        PushStatus::Incomplete => {
            eprintln!("INCOMPLETE: the run stopped early; what was delivered is recorded and the next run sends the rest");
            Outcome::Incomplete
        }
        PushStatus::Failed => {
            eprintln!("FAILED: the run stopped on an error (above); what was delivered is recorded and the next run retries");
            Outcome::Failed
        }
    })
}

/// The error, named after the flow unless it names it already (those of the flow's own
/// checks do; those of the lake, the query and the org do not).
fn in_flow(e: PushError, flow: &str) -> anyhow::Error {
    match e {
        PushError::Invalid { .. } | PushError::DuplicateKey { .. } | PushError::NullKey { .. } | PushError::Layout { .. } => {
            e.into()
        }
        other => anyhow::Error::from(other).context(format!("push {flow}")),
    }
}

/// `1 row`, `3 rows`.
pub(crate) fn plural(n: u64, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// A run's summary, as printed (a dry run's with its sample).
fn report(m: &PushMetrics) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let c = &m.counts;
    let diff = format!("  result: {} new, {} changed, {} unchanged, {} vanished", c.new, c.changed, c.unchanged, c.vanished);
    if m.dry_run {
        line(format!("push {}: dry run: nothing was sent or written", m.flow));
        line(diff);
        line(format!("  would send: {}", operations(&m.planned)));
        line(format!("  {}, {:.1}s", plural(m.api_calls, "API call"), m.duration.as_secs_f64()));
        if let Some(message) = &m.message {
            line(format!("  note: {message}"));
        }
        if !m.sample.is_empty() {
            line("  sample (current → new where the record is known):".to_owned());
            for row in &m.sample {
                sample_row(row, &mut line);
            }
        }
        return out;
    }
    line(format!("push {}: run {} {} in {:.1}s", m.flow, m.run, m.status.label(), m.duration.as_secs_f64()));
    line(diff);
    line(format!("  planned: {}", operations(&m.planned)));
    line(format!("  api: {}", m.api));
    line(format!(
        "  sent {}: {} succeeded, {} failed, {} not processed; {} recovered, {} held",
        m.sent, m.succeeded, m.failed, m.not_processed, m.recovered, m.held
    ));
    if !m.bulk_jobs.is_empty() {
        line(format!("  bulk jobs: {}", m.bulk_jobs.join(", ")));
    }
    line(format!("  API calls: {}", m.api_calls));
    if let Some(message) = &m.message {
        line(format!("  {message}"));
    }
    if m.failed > 0 || m.held > 0 {
        line(format!(
            "{} not delivered: see `tidemark push status {}` and `tidemark sql \"SELECT * FROM push_{}_errors\"`",
            plural(m.failed + m.held, "row"),
            m.flow,
            m.flow.to_ascii_lowercase()
        ));
    }
    out
}

/// `2 upsert, 1 delete`, or `nothing`.
pub(crate) fn operations(planned: &OperationCounts) -> String {
    let counts = [
        ("undelete", planned.undelete),
        ("insert", planned.insert),
        ("upsert", planned.upsert),
        ("update", planned.update),
        ("delete", planned.delete),
    ];
    let shown: Vec<String> = counts.iter().filter(|(_, n)| *n > 0).map(|(op, n)| format!("{n} {op}")).collect();
    if shown.is_empty() { "nothing".to_owned() } else { shown.join(", ") }
}

/// One sampled row, field by field: `field: current → new` where the record is known.
pub(crate) fn sample_row(row: &SampleRow, line: &mut impl FnMut(String)) {
    let id = row.id.as_deref().map(|id| format!(" (Id {id})")).unwrap_or_default();
    line(format!("  {} {}{id}", row.operation.label(), row.key));
    for f in &row.fields {
        match &f.current {
            Some(current) => line(format!("    {}: {} → {}", f.field, value(current), value(&f.value))),
            None => line(format!("    {}: {}", f.field, value(&f.value))),
        }
    }
}

/// A field's value as JSON text: `"Gold"`, `12.5`, `null`, so that text and numbers differ.
fn value(v: &J) -> String {
    v.to_string()
}

pub async fn status(args: PushArgs, flow: Option<String>, last: usize) -> anyhow::Result<Outcome> {
    let config = load_config(&args.config)?;
    let chosen = selected(&config, &args.config, flow.as_deref())?;
    let lake = existing_lake(args.lake.as_deref(), Some(&config)).await?;
    let runs = RunLog::new(&lake).runs(None).await?;
    let mut rows = Vec::new();
    let mut hidden = 0;
    for (name, _) in &chosen {
        let mine: Vec<&PushRunRecord> = runs.iter().filter(|r| r.flow.eq_ignore_ascii_case(name)).collect();
        let skip = if last == 0 { 0 } else { mine.len().saturating_sub(last) };
        hidden += skip;
        rows.extend(mine[skip..].iter().map(|r| run_row(name, r)));
    }
    if rows.is_empty() {
        println!("no push run recorded yet");
    } else {
        print_table(
            &[
                "flow",
                "run",
                "started (UTC)",
                "status",
                "api",
                "new",
                "changed",
                "planned",
                "sent",
                "succeeded",
                "failed",
                "api calls",
            ],
            &rows,
        );
    }
    if hidden > 0 {
        println!("({} not shown: --last 0 shows every run)", plural(hidden as u64, "earlier run"));
    }
    for (name, _) in &chosen {
        let open: Vec<ErrorRow> = ErrorTable::new(&lake, name).rows().await?.into_iter().filter(ErrorRow::is_open).collect();
        println!();
        if open.is_empty() {
            println!("{name}: no open errors");
            continue;
        }
        println!("{name}: {} (rows not delivered yet)", plural(open.len() as u64, "open error"));
        let shown = &open[open.len().saturating_sub(ERRORS_SHOWN)..];
        let rows: Vec<Vec<String>> = shown.iter().map(error_row).collect();
        print_table(&["run", "key", "operation", "status code", "message", "fields", "attempt"], &rows);
        if open.len() > shown.len() {
            println!(
                "({} older not shown: tidemark sql \"SELECT * FROM push_{}_errors WHERE delivered_run IS NULL\")",
                open.len() - shown.len(),
                name.to_ascii_lowercase()
            );
        }
    }
    Ok(Outcome::Complete)
}

fn run_row(flow: &str, r: &PushRunRecord) -> Vec<String> {
    vec![
        flow.to_owned(),
        r.run.to_string(),
        r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        r.status.label().to_owned(),
        r.api.clone(),
        r.rows_new.to_string(),
        r.rows_changed.to_string(),
        r.planned.to_string(),
        r.sent.to_string(),
        r.succeeded.to_string(),
        r.failed.to_string(),
        r.api_calls.to_string(),
    ]
}

/// An open error without its `record` (the values sent): the key says which row it is.
fn error_row(e: &ErrorRow) -> Vec<String> {
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    vec![
        e.run.to_string(),
        e.key.clone(),
        e.operation.clone(),
        e.status_code.clone(),
        one_line(&e.message),
        e.fields.clone(),
        e.attempt.to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use tidemark_push::diff::DiffCounts;
    use tidemark_push::dry_run::SampleField;
    use tidemark_push::send::Operation;

    use super::*;

    fn metrics() -> PushMetrics {
        PushMetrics {
            flow: "Tier".into(),
            run: 3,
            status: PushStatus::Complete,
            dry_run: false,
            counts: DiffCounts { new: 2, changed: 1, unchanged: 40, vanished: 0 },
            planned: OperationCounts { upsert: 3, ..OperationCounts::default() },
            api: "collections".into(),
            sent: 3,
            succeeded: 2,
            failed: 1,
            not_processed: 0,
            recovered: 0,
            held: 0,
            bulk_jobs: Vec::new(),
            api_calls: 4,
            spilled_bytes: 0,
            snapshot_version: Some(2),
            sample: Vec::new(),
            message: None,
            duration: Duration::from_millis(1500),
        }
    }

    #[test]
    fn a_run_reports_counts_and_where_failures_are() {
        let text = report(&metrics());
        assert!(text.starts_with("push Tier: run 3 complete in 1.5s\n"), "{text}");
        assert!(text.contains("result: 2 new, 1 changed, 40 unchanged, 0 vanished"), "{text}");
        assert!(text.contains("planned: 3 upsert\n") && text.contains("api: collections"), "{text}");
        assert!(text.contains("sent 3: 2 succeeded, 1 failed, 0 not processed; 0 recovered, 0 held"), "{text}");
        assert!(text.contains("`tidemark push status Tier`") && text.contains("SELECT * FROM push_tier_errors"), "{text}");
        assert!(text.contains("1 row not delivered"), "{text}");
        let clean = report(&PushMetrics { failed: 0, succeeded: 3, ..metrics() });
        assert!(!clean.contains("push status"), "{clean}");
        let held = report(&PushMetrics { failed: 1, held: 2, ..metrics() });
        assert!(held.contains("3 rows not delivered"), "{held}");
    }

    #[test]
    fn errors_name_the_flow_once() {
        let own = in_flow(PushError::NullKey { flow: "tier".into(), column: "k".into() }, "tier");
        assert_eq!(own.chain().count(), 1);
        let lake = tidemark_lake::LakeError::LeaseLost { resource: "push/tier".into(), reason: "taken over".into() };
        let other = in_flow(PushError::Lake(lake), "tier");
        assert_eq!(other.to_string(), "push tier");
    }

    #[test]
    fn a_dry_run_shows_its_sample_field_by_field() {
        let field = |name: &str, value: J, current: Option<J>| SampleField { field: name.into(), value, current };
        let sample = vec![
            SampleRow {
                operation: Operation::Upsert,
                key: "[\"a1\"]".into(),
                id: Some("001000000000001AAA".into()),
                fields: vec![field("Tier__c", json!("Gold"), Some(json!("Silver"))), field("Score__c", json!(7), Some(J::Null))],
            },
            SampleRow {
                operation: Operation::Upsert,
                key: "[\"a2\"]".into(),
                id: None,
                fields: vec![field("Tier__c", json!("Bronze"), None)],
            },
        ];
        let m = PushMetrics { dry_run: true, sent: 0, succeeded: 0, failed: 0, sample, ..metrics() };
        let text = report(&m);
        assert!(text.starts_with("push Tier: dry run: nothing was sent or written\n"), "{text}");
        assert!(text.contains("would send: 3 upsert"), "{text}");
        assert!(text.contains("  upsert [\"a1\"] (Id 001000000000001AAA)\n"), "{text}");
        assert!(text.contains("    Tier__c: \"Silver\" → \"Gold\"\n    Score__c: null → 7\n"), "{text}");
        assert!(text.contains("  upsert [\"a2\"]\n    Tier__c: \"Bronze\"\n"), "{text}");
        assert!(text.contains("  4 API calls, 1.5s\n"), "{text}");
        assert_eq!(operations(&OperationCounts::default()), "nothing");
    }
}
