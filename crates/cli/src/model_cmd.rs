//! `tidemark model run | status | sql`: dimension models from the config's `models:` section.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::NaiveDate;
use tidemark_core::models::ModelConfig;
use tidemark_models::engine_sql::{Engine, SqlOptions, load_statements_over, source_time_statements};
use tidemark_models::{ModelLoad, model_status};
use tidemark_sync::TidemarkConfig;

use crate::lake_cmd::{Outcome, lake_location, load_config, print_table};

/// Where the models and the lake are (every `model` subcommand takes these).
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// The configuration file (models:, lake:).
    #[arg(long, short, default_value = "tidemark.yaml", env = "TIDEMARK_CONFIG")]
    pub config: PathBuf,
    /// Lake location (folder or s3:// URL); overrides lake.location.
    #[arg(long)]
    pub lake: Option<String>,
}

/// The config, its folder (relative `files:` resolve there) and the chosen models, in name order.
fn selected(args: &ModelArgs, names: &[String]) -> anyhow::Result<(TidemarkConfig, PathBuf, Vec<(String, ModelConfig)>)> {
    let config = load_config(&args.config)?;
    let base =
        args.config.parent().map(Path::to_path_buf).filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| PathBuf::from("."));
    if config.models.is_empty() {
        bail!("{} defines no models (a models: section, or models/*.yaml beside it)", args.config.display());
    }
    let chosen = if names.is_empty() {
        config.models.iter().map(|(n, m)| (n.clone(), m.clone())).collect()
    } else {
        let mut chosen = Vec::new();
        for name in names {
            match config.models.get(name) {
                Some(m) => chosen.push((name.clone(), m.clone())),
                None => bail!(
                    "no model named {name}; the config defines: {}",
                    config.models.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            }
        }
        chosen
    };
    Ok((config, base, chosen))
}

pub async fn run(
    args: ModelArgs,
    names: Vec<String>,
    run_date: Option<NaiveDate>,
    memory_limit: Option<usize>,
) -> anyhow::Result<Outcome> {
    let (config, base, chosen) = selected(&args, &names)?;
    let lake = lake_location(args.lake.as_deref(), Some(&config))?;
    for (name, model) in chosen {
        let mut load = ModelLoad::new(lake.clone(), &name, model).with_base_dir(base.clone());
        if let Some(date) = run_date {
            load = load.with_run_date(date);
        }
        if let Some(bytes) = memory_limit {
            load = load.with_memory_limit(bytes);
        }
        let m = load.run().await.with_context(|| format!("model {name}"))?;
        match m.load {
            None => println!("{name}: no new input since the last load; nothing changed"),
            Some(n) => {
                let c = &m.counts;
                println!(
                    "{name}: load {n} ({}): {} new, {} changed, {} deleted, {} unchanged; {} type-1 updates, {} stale rows ignored, {} replaced the same day; {} files ({} superseded), {} rows read; table version {}, {:.1}s",
                    m.run_date,
                    c.inserted,
                    c.updated,
                    c.deleted,
                    c.unchanged,
                    c.type1_updated,
                    c.stale_rows,
                    c.same_day_replaced,
                    m.files_read,
                    m.files_superseded,
                    m.rows_read,
                    m.table_version.unwrap_or_default(),
                    m.millis as f64 / 1000.0
                );
            }
        }
    }
    Ok(Outcome::Complete)
}

/// `model sql`: the statements of one load in another engine, with relative `files:` folders
/// made absolute so the output runs from anywhere. Lake objects are read from the history
/// relations (a source-time model's statements rebuild the dimension from them; a load-date
/// model reads their live records); their column types come from the lake.
pub async fn sql(args: ModelArgs, name: &str, engine: Engine, run_date: Option<NaiveDate>) -> anyhow::Result<Outcome> {
    let (config, base, chosen) = selected(&args, &[name.to_owned()])?;
    let (_, mut model) = chosen.into_iter().next().expect("one model named");
    for source in &mut model.sources {
        if let Some(files) = &source.files {
            let is_url = files.contains("://");
            if !is_url && Path::new(files).is_relative() {
                let absolute = std::path::absolute(base.join(files)).with_context(|| format!("resolving {files}"))?;
                source.files = Some(absolute.display().to_string());
            }
        }
    }
    let lake = args.lake.clone().or_else(|| config.lake.as_ref().map(|l| l.location.clone()));
    let options = SqlOptions { lake, ..SqlOptions::default() };
    // File-only models need no lake.
    let mut schemas = std::collections::BTreeMap::new();
    if model.sources.iter().any(|s| s.object.is_some()) {
        let location = lake_location(args.lake.as_deref(), Some(&config))?;
        for object in model.sources.iter().filter_map(|s| s.object.as_deref()) {
            if let Some(table) = tidemark_lake::HistoryTable::open(&location, object).await? {
                schemas.insert(object.to_owned(), table.schema()?);
            }
        }
    }
    if model.dating == tidemark_core::models::Dating::SourceTime {
        print!("{}", source_time_statements(name, &model, engine, &options, &schemas)?);
        return Ok(Outcome::Complete);
    }
    let date = run_date.unwrap_or_else(|| chrono::Utc::now().date_naive());
    print!("{}", load_statements_over(name, &model, engine, date, &options, &schemas)?);
    Ok(Outcome::Complete)
}

pub async fn status(args: ModelArgs) -> anyhow::Result<Outcome> {
    let (config, base, chosen) = selected(&args, &[])?;
    let lake = lake_location(args.lake.as_deref(), Some(&config))?;
    let mut rows = Vec::new();
    for (name, model) in &chosen {
        let s = model_status(&lake, name, model, &base).await.with_context(|| format!("model {name}"))?;
        let pending: usize = s.pending_files.iter().map(|(_, n)| n).sum();
        rows.push(vec![
            name.clone(),
            s.loads.to_string(),
            s.last.as_ref().map_or("-".into(), |l| l.run_date.to_string()),
            s.last.as_ref().map_or("-".into(), |l| l.finished_at.format("%Y-%m-%d %H:%M:%S").to_string()),
            s.rows.map_or("-".into(), |n| n.to_string()),
            s.current_rows.map_or("-".into(), |n| n.to_string()),
            pending.to_string(),
        ]);
    }
    print_table(&["model", "loads", "last run date", "finished (UTC)", "rows", "current", "files waiting"], &rows);
    Ok(Outcome::Complete)
}

/// `--memory-limit`: bytes, or a whole number of KiB, MiB or GiB (`512MiB`).
pub fn parse_memory_limit(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: usize = number.parse().map_err(|_| format!("{text:?} is not a size such as 512MiB"))?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        other => return Err(format!("unknown unit {other:?}: use bytes, KiB, MiB or GiB (e.g. 512MiB)")),
    };
    match n.checked_shl(shift).filter(|b| b >> shift == n) {
        Some(bytes) if bytes >= 1 << 20 => Ok(bytes),
        Some(_) => Err("the memory limit must be at least 1MiB".into()),
        None => Err(format!("{text} is too large")),
    }
}

#[cfg(test)]
mod memory_limit_tests {
    use super::parse_memory_limit;

    #[test]
    fn sizes_parse_with_binary_units_and_errors_say_why() {
        assert_eq!(parse_memory_limit("512MiB"), Ok(512 << 20));
        assert_eq!(parse_memory_limit("2GiB"), Ok(2 << 30));
        assert_eq!(parse_memory_limit("1048576"), Ok(1 << 20));
        assert!(parse_memory_limit("512MB").unwrap_err().contains("unit"));
        assert!(parse_memory_limit("lots").unwrap_err().contains("not a size"));
        assert!(parse_memory_limit("10KiB").unwrap_err().contains("at least"));
    }
}
