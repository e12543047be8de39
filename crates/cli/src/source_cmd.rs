//! `tidemark sync --source NAME`: the config's `sources:` read into the lake through the
//! lake's source seam ([`tidemark_lake::ingest::Ingest`]).

use anyhow::Context;
use tidemark_core::sources::SourceConfig;
use tidemark_lake::LakeLocation;
use tidemark_lake::ingest::Ingest;
use tidemark_lake::source::Source;
use tidemark_sync::TidemarkConfig;

use crate::lake_cmd::{Outcome, print_table};

/// Runs each named source in turn; a source that fails is reported and the others still run.
pub async fn sync_sources(config: &TidemarkConfig, lake: &LakeLocation, names: &[String]) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::Complete;
    for name in names {
        let Some(source) = config.sources.get(name) else {
            let known: Vec<&str> = config.sources.keys().map(String::as_str).collect();
            anyhow::bail!(
                "no source named '{name}' in the config (sources: {})",
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            );
        };
        let source: Box<dyn Source> = match source {
            SourceConfig::Postgres(pg) => {
                Box::new(tidemark_postgres::PostgresSource::new(name.clone(), pg.clone()).with_tables(source.table_patterns()))
            }
            SourceConfig::HerokuConnect(pg) => Box::new(
                tidemark_postgres::PostgresSource::heroku_connect(name.clone(), pg.clone()).with_tables(source.table_patterns()),
            ),
        };
        let run = Ingest::new(lake.clone(), source)
            .with_commit_rows(config.sync.commit_rows)
            .with_lease_ttl(config.sync.lease_ttl)
            .await
            .with_context(|| format!("source {name}"));
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
                            m.position.map_or("-".to_owned(), |p| tidemark_postgres::format_lsn(p as u64)),
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
