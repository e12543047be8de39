//! `tidemark validate`: the whole configuration checked offline, every error naming its field,
//! and a summary of what it configures (pipelines with their next runs).

use std::path::Path;

use chrono::Utc;
use tidemark_sync::config::{ENVIRONMENT_VAR, overlay_path};

use anyhow::Context;
use tidemark_sync::config::TidemarkConfig;

use crate::lake_cmd::{Outcome, print_table};

pub fn validate(config_path: &Path, environment: Option<&str>) -> anyhow::Result<Outcome> {
    let overlay = environment.map(str::to_owned).or_else(|| std::env::var(ENVIRONMENT_VAR).ok()).filter(|e| !e.is_empty());
    let env = |var: &str| if var == ENVIRONMENT_VAR { overlay.clone() } else { tidemark_core::config::process_env(var) };
    let config = TidemarkConfig::load(config_path, &env).with_context(|| format!("invalid config {}", config_path.display()))?;
    match &overlay {
        Some(name) => println!(
            "{} with {} ({ENVIRONMENT_VAR}={name}): valid",
            config_path.display(),
            overlay_path(config_path, name).display()
        ),
        None => println!("{}: valid", config_path.display()),
    }
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    println!(
        "{}, {}, {}, {}",
        count(config.models.len(), "model"),
        count(config.push.len(), "push flow"),
        count(config.sources.len(), "source"),
        count(config.pipelines.len(), "pipeline")
    );
    if !config.pipelines.is_empty() {
        let now = Utc::now();
        let rows: Vec<Vec<String>> = config
            .pipelines
            .iter()
            .map(|(name, p)| {
                let next =
                    p.schedule(name).ok().and_then(|s| s.next_after(now)).map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
                let steps = p.steps.iter().map(|s| s.kind()).collect::<Vec<_>>().join(" → ");
                vec![name.clone(), p.schedule.clone(), p.time_zone.clone().unwrap_or_else(|| "UTC".into()), steps, next]
            })
            .collect();
        print_table(&["pipeline", "schedule", "zone", "steps", "next run (UTC)"], &rows);
    }
    Ok(Outcome::Complete)
}
