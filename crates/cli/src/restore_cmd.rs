//! `tidemark restore OBJECT… --as-of T`: records set back to their state at an instant of the
//! lake's history, through the push flows' writer (see `tidemark_push::restore`).
//!
//! Record values reach the terminal only in a dry run's sample, printed to standard output,
//! never logged.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use tidemark_push::restore::ObjectRestore;
use tidemark_push::{PushStatus, RestoreMetrics, RestoreRun};
use tidemark_query::catalog::parse_instant;

use crate::lake_cmd::{Outcome, connect, existing_lake, load_config, print_report, run_sync};
use crate::push_cmd::{operations, plural, sample_row};

/// `tidemark restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The objects to restore (API names); restored parents first, so children re-created or
    /// updated with them point at their parents' new Ids.
    #[arg(required = true)]
    pub objects: Vec<String>,
    /// The instant to restore to: RFC 3339 (`2025-01-31T00:00:00Z`) or `YYYY-MM-DD HH:MM:SS`
    /// in UTC.
    #[arg(long, value_parser = parse_as_of)]
    pub as_of: chrono::DateTime<chrono::Utc>,
    /// Only records whose state at the instant matches this SQL predicate (column names in
    /// lower case, as `tidemark sql` shows the object), e.g. "industry = 'Energy'".
    #[arg(long = "where")]
    pub where_sql: Option<String>,
    /// Only the records whose Ids this file lists (one per line; blank lines and lines
    /// starting with # are skipped; a CSV's first column, when its header is Id).
    #[arg(long)]
    pub ids: Option<PathBuf>,
    /// Only these fields are set back on existing records, comma-separated (a re-created record
    /// gets every createable field).
    #[arg(long, value_delimiter = ',')]
    pub fields: Vec<String>,
    /// Show what would be done, with sample rows against the records' current values; write
    /// nothing to Salesforce or the lake.
    #[arg(long)]
    pub dry_run: bool,
    /// Skip the incremental sync of the objects that a restore runs first (a restore compares
    /// the instant with the lake's latest state, so changes made since the last sync would be
    /// missed). Dry runs never sync: they write nothing.
    #[arg(long)]
    pub no_sync: bool,
    /// Dry run: rows shown per operation.
    #[arg(long, default_value_t = 10, requires = "dry_run")]
    pub sample: usize,
    /// The configuration file (lake:, salesforce:).
    #[arg(long, short, default_value = "tidemark.yaml", env = "TIDEMARK_CONFIG")]
    pub config: PathBuf,
    /// Lake location (folder or s3:// URL); overrides lake.location.
    #[arg(long)]
    pub lake: Option<String>,
}

fn parse_as_of(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    parse_instant(text).map_err(|e| e.to_string())
}

/// The Ids of an `--ids` file.
fn read_ids(path: &PathBuf) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("--ids: cannot read {}", path.display()))?;
    let mut ids = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let first = line.split(',').next().unwrap_or_default().trim().trim_matches('"');
        if first.is_empty() || first.starts_with('#') || (i == 0 && first.eq_ignore_ascii_case("id")) {
            continue;
        }
        ids.push(first.to_owned());
    }
    if ids.is_empty() {
        bail!("--ids: {} lists no Id", path.display());
    }
    Ok(ids)
}

pub async fn run(args: RestoreArgs) -> anyhow::Result<Outcome> {
    let ids = args.ids.as_ref().map(read_ids).transpose()?;
    let config = load_config(&args.config)?;
    let lake = existing_lake(args.lake.as_deref(), Some(&config)).await?;
    let client = Arc::new(connect(&config).await?);
    if !args.dry_run && !args.no_sync {
        println!("syncing {} first, so the restore starts from Salesforce's latest state", args.objects.join(", "));
        let report = run_sync(
            client.clone(),
            lake.clone(),
            &config.sync,
            std::sync::Arc::new(config.governance()?),
            args.objects.clone(),
            false,
            false,
        )
        .await?;
        if print_report(&report) != Outcome::Complete {
            bail!("the sync before the restore did not complete, so nothing was restored: fix it, or pass --no-sync");
        }
    }
    let mut restore = RestoreRun::new(lake, client, &args.objects, args.as_of);
    if let Some(predicate) = &args.where_sql {
        restore = restore.with_where(predicate);
    }
    if let Some(ids) = ids {
        restore = restore.with_ids(ids);
    }
    if !args.fields.is_empty() {
        restore = restore.with_fields(args.fields.clone());
    }
    if args.dry_run {
        restore = restore.with_dry_run(args.sample);
    }
    let metrics = restore.execute().await?;
    print!("{}", report(&metrics));
    Ok(match metrics.status() {
        PushStatus::Complete => Outcome::Complete,
        PushStatus::Incomplete => {
            eprintln!("INCOMPLETE: the restore stopped early; what was done is recorded: run it again to finish");
            Outcome::Incomplete
        }
        PushStatus::Failed => {
            eprintln!("FAILED: the restore stopped on an error (above); what was done is recorded: run it again to finish");
            Outcome::Failed
        }
    })
}

/// A restore's summary, as printed (a dry run's with its sample).
fn report(m: &RestoreMetrics) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let what = if m.dry_run { "dry run: nothing was sent or written" } else { "done" };
    line(format!(
        "restore as of {}: {what}; {}, {:.1}s",
        m.as_of.to_rfc3339(),
        plural(m.api_calls, "API call"),
        m.duration.as_secs_f64()
    ));
    for o in &m.objects {
        object_report(o, m.dry_run, &mut line);
    }
    out
}

fn object_report(o: &ObjectRestore, dry_run: bool, line: &mut impl FnMut(String)) {
    let status = o.status.map(|s| format!(" run {} {}", o.run, s.label())).unwrap_or_default();
    line(format!("{}:{status}", o.object));
    line(format!(
        "  selected {}: {} unchanged, {} changed since, {} deleted since",
        o.selected, o.unchanged, o.changed_since, o.deleted_since
    ));
    if dry_run {
        line(format!("  would send: {}", operations(&o.planned)));
    } else {
        line(format!("  planned: {}; api: {}", operations(&o.planned), o.api));
        line(format!(
            "  sent {}: {} succeeded, {} failed, {} not processed; {} recovered",
            o.sent, o.succeeded, o.failed, o.not_processed, o.recovered
        ));
    }
    if o.relinked > 0 {
        line(format!("  {} re-linked to re-created records", plural(o.relinked, "lookup")));
    }
    if !o.recreated.is_empty() {
        line(format!("  re-created {} (old → new Ids in restore_id_map)", plural(o.recreated.len() as u64, "record")));
    }
    if let Some(message) = &o.message {
        line(format!("  {message}"));
    }
    if !o.sample.is_empty() {
        line("  sample (current → restored where the record is known):".to_owned());
        for row in &o.sample {
            sample_row(row, line);
        }
    }
    if o.failed > 0 {
        line(format!(
            "  {} not restored: see `tidemark sql \"SELECT * FROM restore_{}_errors\"`",
            plural(o.failed, "record"),
            o.object.to_ascii_lowercase()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_files_take_lines_or_a_csv_first_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids.csv");
        std::fs::write(&path, "Id,Name\n001000000000001AAA,Acme\n\n# skipped\n\"001000000000002\",B\n").unwrap();
        assert_eq!(read_ids(&path).unwrap(), ["001000000000001AAA", "001000000000002"]);
        std::fs::write(&path, "\n# nothing\n").unwrap();
        assert!(read_ids(&path).unwrap_err().to_string().contains("lists no Id"));
    }
}
