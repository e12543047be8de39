//! `tidemark govern apply`.

use std::sync::Arc;

use tidemark_govern::GovernApply;

use crate::lake_cmd::{Outcome, existing_lake, load_config, print_table};
use crate::model_cmd::ModelArgs;

pub async fn apply(args: ModelArgs, tables: Vec<String>, dry_run: bool) -> anyhow::Result<Outcome> {
    let config = load_config(&args.config)?;
    let lake = existing_lake(args.lake.as_deref(), Some(&config)).await?;
    let mut apply = GovernApply::new(lake, Arc::new(config.governance()?)).with_dry_run(dry_run);
    if !tables.is_empty() {
        apply = apply.with_tables(tables);
    }
    let metrics = apply.await?;
    if metrics.tables.is_empty() {
        println!("no table records a field policy");
        return Ok(Outcome::Complete);
    }
    let mb = |bytes: u64| format!("{:.1}", bytes as f64 / 1e6);
    let rows: Vec<Vec<String>> = metrics
        .tables
        .iter()
        .map(|t| {
            let columns = if t.columns.is_empty() { "-".to_owned() } else { t.columns.join(", ") };
            let mut row = vec![t.table.clone(), columns, format!("{} of {}", t.files_to_rewrite, t.files)];
            if !dry_run {
                let s = &t.scrub;
                row.extend([
                    format!("{} of {}", mb(s.bytes_rewritten), mb(s.table_bytes)),
                    s.rows_written.to_string(),
                    s.purge.data_files_deleted.to_string(),
                    s.purge.log_entries_cleaned.to_string(),
                ]);
            }
            row
        })
        .collect();
    if dry_run {
        print_table(&["table", "columns to bring under their policy", "files to rewrite"], &rows);
        println!("dry run: nothing written");
    } else {
        print_table(
            &[
                "table",
                "columns brought under their policy",
                "files rewritten",
                "MB rewritten",
                "versions",
                "files deleted",
                "log entries cleaned",
            ],
            &rows,
        );
    }
    Ok(Outcome::Complete)
}
