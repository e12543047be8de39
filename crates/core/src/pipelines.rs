//! Pipelines as code (`pipelines:`): a schedule and ordered steps that `tidemark serve` runs and
//! `tidemark run PIPELINE` runs on demand.
//!
//! ```yaml
//! pipelines:
//!   hourly:
//!     schedule: "5 * * * *"        # cron (five fields) or a rate: every 15m
//!     time_zone: Europe/Berlin     # for cron; UTC by default
//!     catch_up: once               # after downtime: skip (default) or run once
//!     steps:
//!       - sync: {objects: [Account, Contact]}
//!       - sync: {sources: [app]}
//!       - model: {models: [contact_dim]}
//!       - push: {flows: [vendors], after: incomplete}
//!       - maintain: {}
//! ```
//!
//! A step runs only when the step before it succeeded; `after: incomplete` lets it run after
//! an incomplete one too (some objects synced, some rows rejected), never after a failure.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::ConfigError;
use crate::schedule::Schedule;

/// One pipeline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub schedule: String,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub catch_up: CatchUp,
    /// Each step a one-key map (`- sync: {…}`), as YAML writes a choice.
    #[serde(with = "serde_yaml_ng::with::singleton_map_recursive")]
    pub steps: Vec<StepConfig>,
    #[serde(default)]
    pub retry: RetryConfig,
}

/// What a service that was down when a run was due does when it starts again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Wait for the next firing.
    #[default]
    Skip,
    /// Run once at once, however many firings were missed.
    Once,
}

/// Retries of a failed step whose error is retryable (network, throttling, a held lease).
/// Errors of configuration or authentication are never retried.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, the first included.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// The first wait; each next one doubles, with jitter, up to `max_backoff`.
    #[serde(default = "default_backoff", deserialize_with = "crate::config::duration")]
    pub backoff: Duration,
    #[serde(default = "default_max_backoff", deserialize_with = "crate::config::duration")]
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> RetryConfig {
        RetryConfig { attempts: default_attempts(), backoff: default_backoff(), max_backoff: default_max_backoff() }
    }
}

fn default_attempts() -> u32 {
    3
}

fn default_backoff() -> Duration {
    Duration::from_secs(30)
}

fn default_max_backoff() -> Duration {
    Duration::from_secs(15 * 60)
}

/// One step: exactly one of the keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StepConfig {
    /// Salesforce objects (all the `sync:` section selects when `objects` is absent), or the
    /// named sources.
    Sync(SyncStep),
    Model(ModelStep),
    Push(PushStep),
    Maintain(MaintainStep),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncStep {
    #[serde(default)]
    pub objects: Option<Vec<String>>,
    #[serde(default)]
    pub sources: Option<Vec<String>>,
    #[serde(default)]
    pub after: After,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelStep {
    pub models: Vec<String>,
    #[serde(default)]
    pub after: After,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushStep {
    pub flows: Vec<String>,
    #[serde(default)]
    pub after: After,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintainStep {
    /// Only these tables (paths in the lake); every table when absent.
    #[serde(default)]
    pub tables: Option<Vec<String>>,
    #[serde(default)]
    pub after: After,
}

/// When a step runs, by how the step before it ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum After {
    /// Only after a success.
    #[default]
    Success,
    /// After a success or an incomplete run; never after a failure.
    Incomplete,
}

impl StepConfig {
    /// `sync`, `model`, `push` or `maintain`.
    pub fn kind(&self) -> &'static str {
        match self {
            StepConfig::Sync(_) => "sync",
            StepConfig::Model(_) => "model",
            StepConfig::Push(_) => "push",
            StepConfig::Maintain(_) => "maintain",
        }
    }

    pub fn after(&self) -> After {
        match self {
            StepConfig::Sync(s) => s.after,
            StepConfig::Model(s) => s.after,
            StepConfig::Push(s) => s.after,
            StepConfig::Maintain(s) => s.after,
        }
    }
}

/// The names a pipeline's steps may refer to, from the rest of the configuration.
#[derive(Debug, Default)]
pub struct KnownNames<'a> {
    pub models: Vec<&'a str>,
    pub flows: Vec<&'a str>,
    pub sources: Vec<&'a str>,
    /// Whether the configuration has a `salesforce:` section (a Salesforce sync step needs one).
    pub salesforce: bool,
}

impl PipelineConfig {
    /// The parsed schedule (errors name `pipelines.<name>.schedule` or `.time_zone`).
    pub fn schedule(&self, name: &str) -> Result<Schedule, ConfigError> {
        Schedule::parse(&self.schedule, self.time_zone.as_deref()).map_err(|message| {
            let field = if message.contains("time zone") { "time_zone" } else { "schedule" };
            ConfigError::invalid(format!("pipelines.{name}.{field}"), message)
        })
    }
}

/// Checks every pipeline offline: names, schedules, zones, retry settings, and that each step
/// names models, flows and sources the configuration has.
pub fn validate(pipelines: &BTreeMap<String, PipelineConfig>, known: &KnownNames<'_>) -> Result<(), ConfigError> {
    for (name, pipeline) in pipelines {
        let path = format!("pipelines.{name}");
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(ConfigError::invalid(path, "a pipeline name is letters, digits, '_' and '-'"));
        }
        pipeline.schedule(name)?;
        if pipeline.retry.attempts == 0 {
            return Err(ConfigError::invalid(format!("{path}.retry.attempts"), "must be at least 1 (the first attempt)"));
        }
        if pipeline.retry.max_backoff < pipeline.retry.backoff {
            return Err(ConfigError::invalid(format!("{path}.retry.max_backoff"), "must not be shorter than backoff"));
        }
        if pipeline.steps.is_empty() {
            return Err(ConfigError::invalid(format!("{path}.steps"), "a pipeline needs at least one step"));
        }
        for (i, step) in pipeline.steps.iter().enumerate() {
            let at = format!("{path}.steps[{i}].{}", step.kind());
            let check = |field: &str, names: &[String], known: &[&str], what: &str| -> Result<(), ConfigError> {
                if names.is_empty() {
                    return Err(ConfigError::invalid(format!("{at}.{field}"), format!("name at least one {what}")));
                }
                for (j, n) in names.iter().enumerate() {
                    if !known.iter().any(|k| k.eq_ignore_ascii_case(n)) {
                        let have = if known.is_empty() { "none are configured".to_owned() } else { known.join(", ") };
                        return Err(ConfigError::invalid(format!("{at}.{field}[{j}]"), format!("no {what} '{n}' ({have})")));
                    }
                }
                Ok(())
            };
            match step {
                StepConfig::Sync(s) => match (&s.objects, &s.sources) {
                    (Some(_), Some(_)) => {
                        return Err(ConfigError::invalid(&at, "objects or sources, not both: make them two steps"));
                    }
                    (_, Some(sources)) => check("sources", sources, &known.sources, "source")?,
                    (objects, None) => {
                        if !known.salesforce {
                            return Err(ConfigError::invalid(
                                &at,
                                "syncs Salesforce objects, but there is no salesforce: section",
                            ));
                        }
                        if objects.as_ref().is_some_and(Vec::is_empty) {
                            return Err(ConfigError::invalid(
                                format!("{at}.objects"),
                                "name at least one object, or leave it out for all",
                            ));
                        }
                    }
                },
                StepConfig::Model(s) => check("models", &s.models, &known.models, "model")?,
                StepConfig::Push(s) => check("flows", &s.flows, &known.flows, "push flow")?,
                StepConfig::Maintain(_) => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Section {
        pipelines: BTreeMap<String, PipelineConfig>,
    }

    fn known() -> KnownNames<'static> {
        KnownNames { models: vec!["contact_dim"], flows: vec!["vendors"], sources: vec!["app"], salesforce: true }
    }

    fn check(yaml: &str) -> Result<BTreeMap<String, PipelineConfig>, ConfigError> {
        let section: Section = crate::config::load_str(yaml, &|_| None)?;
        validate(&section.pipelines, &known())?;
        Ok(section.pipelines)
    }

    #[test]
    fn a_pipeline_reads_with_its_steps_in_order() {
        let p = check(
            "pipelines:\n  hourly:\n    schedule: \"5 * * * *\"\n    time_zone: Europe/Berlin\n    catch_up: once\n    steps:\n\
             \x20     - sync: {objects: [Account]}\n      - sync: {sources: [app]}\n      - model: {models: [contact_dim]}\n\
             \x20     - push: {flows: [vendors], after: incomplete}\n      - maintain: {}\n",
        )
        .unwrap();
        let hourly = &p["hourly"];
        assert_eq!(hourly.catch_up, CatchUp::Once);
        let kinds: Vec<_> = hourly.steps.iter().map(|s| (s.kind(), s.after())).collect();
        assert_eq!(
            kinds,
            [
                ("sync", After::Success),
                ("sync", After::Success),
                ("model", After::Success),
                ("push", After::Incomplete),
                ("maintain", After::Success)
            ]
        );
        assert_eq!(hourly.retry, RetryConfig::default());
    }

    #[test]
    fn errors_name_the_field() {
        let err = |steps: &str| {
            check(&format!("pipelines:\n  p:\n    schedule: every 15m\n    steps:\n{steps}")).unwrap_err().to_string()
        };
        assert_eq!(
            err("      - model: {models: [nope]}\n"),
            "pipelines.p.steps[0].model.models[0]: no model 'nope' (contact_dim)"
        );
        assert!(
            err("      - maintain: {}\n      - push: {flows: [vendor]}\n").starts_with("pipelines.p.steps[1].push.flows[0]:")
        );
        assert!(
            err("      - sync: {objects: [A], sources: [app]}\n").starts_with("pipelines.p.steps[0].sync: objects or sources")
        );
        assert!(err("      - sync: {sources: [db]}\n").starts_with("pipelines.p.steps[0].sync.sources[0]: no source 'db'"));
        assert!(err("      - train: {}\n").contains("unknown variant `train`"), "{}", err("      - train: {}\n"));
        assert!(err("      - model: {models: [contact_dim], when: always}\n").contains("unknown field `when`"));
        let whole = |yaml: &str| check(yaml).unwrap_err().to_string();
        assert!(
            whole("pipelines:\n  p:\n    schedule: \"0 25 * * *\"\n    steps: [maintain: {}]\n")
                .starts_with("pipelines.p.schedule:")
        );
        assert!(
            whole("pipelines:\n  p:\n    schedule: \"0 1 * * *\"\n    time_zone: Nowhere/Land\n    steps: [maintain: {}]\n")
                .starts_with("pipelines.p.time_zone:")
        );
        assert!(whole("pipelines:\n  p:\n    schedule: every 1h\n    steps: []\n").starts_with("pipelines.p.steps:"));
        assert!(
            whole("pipelines:\n  p:\n    schedule: every 1h\n    retry: {attempts: 0}\n    steps: [maintain: {}]\n")
                .starts_with("pipelines.p.retry.attempts:")
        );
        assert!(whole("pipelines:\n  p q:\n    schedule: every 1h\n    steps: [maintain: {}]\n").starts_with("pipelines.p q:"));
    }
}
