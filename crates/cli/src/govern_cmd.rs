//! `tidemark govern apply`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use tidemark_govern::{Erase, GovernApply, Subjects};

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

/// `tidemark erase`'s arguments.
pub struct EraseRequest {
    pub object: String,
    pub ids: Option<PathBuf>,
    pub predicate: Option<String>,
    pub dry_run: bool,
    pub by: String,
    pub reason: String,
    /// `FIELD=VALUE`s.
    pub rectify: Vec<String>,
    pub lift: bool,
}

pub async fn erase(args: ModelArgs, request: EraseRequest) -> anyhow::Result<Outcome> {
    let EraseRequest { object, ids, predicate, dry_run, by, reason, rectify, lift } = request;
    let config = load_config(&args.config)?;
    let lake = existing_lake(args.lake.as_deref(), Some(&config)).await?;
    let subjects = match (ids, predicate) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("--ids {}", file.display()))?;
            Subjects::Ids(text.lines().map(str::to_owned).collect())
        }
        (None, Some(predicate)) => Subjects::Where(predicate),
        (None, None) => anyhow::bail!("name the records: --ids FILE or --where PREDICATE"),
    };
    if lift {
        let Subjects::Ids(ids) = &subjects else { anyhow::bail!("--lift takes --ids") };
        let lifted =
            tidemark_govern::erase::lift_suppressions(&lake, &object, ids, (&by, &reason), &tidemark_core::SystemClock).await?;
        println!(
            "{object}: {lifted} records no longer suppressed; `tidemark sync --full --objects {object}` brings back their current state"
        );
        return Ok(Outcome::Complete);
    }
    let rectify: Vec<(String, String)> = rectify
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(f, v)| (f.trim().to_owned(), v.to_owned()))
                .ok_or_else(|| anyhow::anyhow!("--rectify {pair}: write it as FIELD=VALUE"))
        })
        .collect::<anyhow::Result<_>>()?;
    let verb = if rectify.is_empty() { "erased" } else { "rectified" };
    let metrics = Erase::new(lake, &object, subjects)
        .with_audit(by, reason)
        .with_rectify(rectify)
        .with_governance(Arc::new(config.governance()?))
        .with_derived(&config.models, &config.push)
        .with_dry_run(dry_run)
        .await?;
    let versions: u64 = metrics.versions.iter().filter(|(t, _)| t.eq_ignore_ascii_case(&object)).map(|(_, n)| n).sum();
    if dry_run {
        println!("{object}: {} records, {versions} versions would be {verb} (dry run: nothing changed)", metrics.ids);
        if !metrics.derived_tables.is_empty() {
            println!("derived rows would be cleared from: {}", metrics.derived_tables.join(", "));
        }
        return Ok(Outcome::Complete);
    }
    if metrics.resumed {
        println!("completed erasure {}, which was interrupted earlier", metrics.erasure_id);
    }
    let s = &metrics.scrub;
    println!(
        "erasure {}: {object}: {} records, {versions} versions {verb}; {} files rewritten ({:.1} of {:.1} MB), {} files deleted, {} log entries cleaned, {} checkpoints replaced{}",
        metrics.erasure_id,
        metrics.ids,
        s.files_rewritten,
        s.bytes_rewritten as f64 / 1e6,
        s.table_bytes as f64 / 1e6,
        s.purge.data_files_deleted,
        s.purge.log_entries_cleaned,
        s.purge.checkpoints_replaced,
        if verb == "erased" { "; the records are suppressed from later syncs" } else { "" }
    );
    for (table, rows) in metrics.versions.iter().filter(|(t, _)| !t.eq_ignore_ascii_case(&object)) {
        println!("  {table}: {rows} derived rows cleared");
    }
    Ok(Outcome::Complete)
}
