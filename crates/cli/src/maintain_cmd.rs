//! `tidemark maintain`: compaction, checkpoints, vacuum and log cleanup of the lake's tables.

use tidemark_core::maintenance::{MaintenanceSettings, show_size};
use tidemark_lake::LakeLocation;
use tidemark_lake::maintain::{Maintain, MaintenanceMetrics, TableOutcome};

use crate::lake_cmd::{Outcome, print_table};

pub async fn maintain(
    lake: LakeLocation,
    settings: MaintenanceSettings,
    tables: Option<Vec<String>>,
    dry_run: bool,
) -> anyhow::Result<Outcome> {
    settings.validate()?;
    let mut maintain = Maintain::new(lake, settings).with_dry_run(dry_run);
    if let Some(tables) = tables {
        maintain = maintain.with_tables(tables);
    }
    let metrics = maintain.run().await?;
    report(&metrics);
    if metrics.failed().next().is_some() {
        return Ok(Outcome::Failed);
    }
    if metrics.busy().next().is_some() {
        return Ok(Outcome::Incomplete);
    }
    Ok(Outcome::Complete)
}

fn report(metrics: &MaintenanceMetrics) {
    let rows: Vec<Vec<String>> = metrics
        .tables
        .iter()
        .map(|t| {
            let outcome = match &t.outcome {
                TableOutcome::Done => "done".to_owned(),
                TableOutcome::Busy { holder } => format!("busy: {holder}"),
                TableOutcome::Failed { error, .. } => format!("failed: {error}"),
            };
            let compacted = if t.compaction.files_removed == 0 {
                "-".to_owned()
            } else {
                format!(
                    "{} → {} ({})",
                    t.compaction.files_removed,
                    t.compaction.files_added,
                    show_size(t.compaction.bytes_removed)
                )
            };
            vec![
                t.table.clone(),
                format!("{} → {}", t.files_before, t.files_after),
                compacted,
                t.checkpoint.map_or_else(|| "-".to_owned(), |v| format!("v{v}")),
                t.files_vacuumed.to_string(),
                t.logs_removed.to_string(),
                outcome,
            ]
        })
        .collect();
    print_table(&["table", "files", "compacted", "checkpoint", "vacuumed", "logs removed", "outcome"], &rows);
    let verb = if metrics.dry_run { "would compact" } else { "compacted" };
    eprintln!(
        "{} table(s): {verb} {} file(s), {} {} file(s), in {:.1}s",
        metrics.tables.len(),
        metrics.files_compacted(),
        if metrics.dry_run { "would vacuum" } else { "vacuumed" },
        metrics.files_vacuumed(),
        metrics.millis as f64 / 1000.0
    );
    for busy in metrics.busy() {
        eprintln!("note: {} was left for the next run: a writer holds it", busy.table);
    }
}
