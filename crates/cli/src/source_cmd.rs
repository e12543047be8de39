//! `tidemark sync --source NAME`: the config's `sources:` read into the lake through the
//! lake's source seam ([`tidemark_lake::ingest::Ingest`]).

use std::path::Path;

use anyhow::Context;
use tidemark_cdc::{CdcFormat, CdcSource};
use tidemark_core::sources::{CaptureMode, SourceConfig};
use tidemark_lake::LakeLocation;
use tidemark_lake::ingest::Ingest;
use tidemark_lake::source::Source;
use tidemark_postgres::PollingSource;
use tidemark_sync::TidemarkConfig;

use crate::lake_cmd::{Outcome, print_table};

/// Runs each named source in turn; a source that fails is reported and the others still run.
pub async fn sync_sources(
    config: &TidemarkConfig,
    config_path: &Path,
    lake: &LakeLocation,
    names: &[String],
    follow: bool,
    progress: bool,
) -> anyhow::Result<Outcome> {
    let stop = if follow {
        if names.len() != 1 {
            anyhow::bail!("--follow streams one source: name it with --source");
        }
        Some(stop_on_signal()?)
    } else {
        None
    };
    // Relative `path:`s of file sources resolve beside the config file.
    let base = config_path.parent().map(Path::to_path_buf).filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| ".".into());
    let mut outcome = Outcome::Complete;
    let governance = std::sync::Arc::new(config.governance()?);
    for name in names {
        let Some(source) = config.sources.get(name) else {
            let known: Vec<&str> = config.sources.keys().map(String::as_str).collect();
            anyhow::bail!(
                "no source named '{name}' in the config (sources: {})",
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            );
        };
        let positions = match source.postgres() {
            Some(pg) if pg.mode == CaptureMode::Poll => PositionKind::Instant,
            Some(_) => PositionKind::Lsn,
            None => PositionKind::File,
        };
        if stop.is_some() && !matches!(positions, PositionKind::Lsn) {
            anyhow::bail!("--follow: source {name} is not read by logical replication (run it on a schedule instead)");
        }
        let source: Box<dyn Source> = match source {
            SourceConfig::Postgres(pg) if pg.mode == CaptureMode::Poll => Box::new(
                PollingSource::new(name.clone(), pg.clone(), lake.clone())
                    .with_tables(source.table_patterns())
                    .with_governance(governance.clone()),
            ),
            SourceConfig::HerokuConnect(pg) if pg.mode == CaptureMode::Poll => Box::new(
                PollingSource::heroku_connect(name.clone(), pg.clone(), lake.clone())
                    .with_tables(source.table_patterns())
                    .with_governance(governance.clone()),
            ),
            SourceConfig::Postgres(pg) | SourceConfig::HerokuConnect(pg) => {
                let mut s = if matches!(source, SourceConfig::HerokuConnect(_)) {
                    tidemark_postgres::PostgresSource::heroku_connect(name.clone(), pg.clone())
                } else {
                    tidemark_postgres::PostgresSource::new(name.clone(), pg.clone())
                }
                .with_tables(source.table_patterns());
                if let Some(stop) = &stop {
                    s = s.following(stop.clone(), std::time::Duration::from_secs(1));
                }
                Box::new(s)
            }
            SourceConfig::Debezium(files) | SourceConfig::Dms(files) => {
                let format = if matches!(source, SourceConfig::Dms(_)) { CdcFormat::Dms } else { CdcFormat::Debezium };
                let location = tidemark_models::load::files_location(lake, &base, &files.path)
                    .with_context(|| format!("sources.{name}.path"))?;
                Box::new(CdcSource::new(name.clone(), format, files, &source.table_patterns(), location, lake.clone())?)
            }
        };
        let display = std::sync::Arc::new(crate::progress::Progress::for_source(progress));
        let run = Ingest::new(lake.clone(), source)
            .with_commit_rows(config.sync.commit_rows)
            .with_lease_ttl(config.sync.lease_ttl)
            .with_observer(display.clone())
            .with_governance(governance.clone())
            .await
            .with_context(|| format!("source {name}"));
        display.finish();
        match run {
            Ok(metrics) => {
                println!("source {name}: run {}, {:.1}s", metrics.run_id, metrics.duration.as_secs_f64());
                let rows: Vec<Vec<String>> = metrics
                    .tables
                    .iter()
                    .map(|(table, m)| {
                        vec![
                            format!("{name}.{table}"),
                            m.copied.to_string(),
                            m.changes.to_string(),
                            m.deletes.to_string(),
                            m.truncates.to_string(),
                            m.schema_changes.to_string(),
                            m.commits.to_string(),
                            m.position.map_or("-".to_owned(), |p| position_text(p, positions)),
                        ]
                    })
                    .collect();
                print_table(&["table", "copied", "changes", "deletes", "truncates", "schema", "commits", "position"], &rows);
                println!("complete: {} new versions", metrics.versions());
            }
            Err(e) => {
                eprintln!("{e:#}");
                outcome = Outcome::Failed;
            }
        }
    }
    Ok(outcome)
}

/// A stop signal that turns true on SIGINT or SIGTERM.
fn stop_on_signal() -> anyhow::Result<tokio::sync::watch::Receiver<bool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut term = signal(SignalKind::terminate()).context("watching SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("watching SIGINT")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!("stopping after the transaction being read");
        let _ = tx.send(true);
    });
    Ok(rx)
}

/// What a source's positions are.
#[derive(Clone, Copy)]
enum PositionKind {
    /// A WAL position (logical replication).
    Lsn,
    /// A change file's ordinal and part.
    File,
    /// The instant of a polling run (µs).
    Instant,
}

/// A position as its source writes it.
fn position_text(position: i64, kind: PositionKind) -> String {
    use tidemark_cdc::segments::SEGMENT_BITS;
    match kind {
        PositionKind::Lsn => tidemark_postgres::format_lsn(position as u64),
        PositionKind::Instant => {
            chrono::DateTime::from_timestamp_micros(position).map_or(position.to_string(), |t| t.to_rfc3339())
        }
        PositionKind::File => {
            let (file, part) = (position >> SEGMENT_BITS, position & ((1 << SEGMENT_BITS) - 1));
            if part == (1 << SEGMENT_BITS) - 1 { format!("file {file}") } else { format!("file {file}, part {}", part + 1) }
        }
    }
}
