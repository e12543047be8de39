//! Table maintenance settings (`maintenance:`): compaction of small files, checkpoints, vacuum
//! and log cleanup, run by `tidemark maintain` and by a pipeline's `maintain` step.
//!
//! ```yaml
//! maintenance:
//!   target_file_size: 128MB   # compacted files are written up to this size
//!   small_file_size: 32MB     # only files below this are compacted; larger ones are never rewritten
//!   vacuum_retention: 7d      # unreferenced files older than this are deleted
//!   log_retention: 30d        # log entries older than this (and before a checkpoint) are deleted
//! ```

use std::time::Duration;

use serde::Deserialize;

use crate::ConfigError;

/// `maintenance:`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSettings {
    /// Size a compacted file is written up to.
    #[serde(default = "default_target", deserialize_with = "size")]
    pub target_file_size: u64,
    /// Files below this size are compaction candidates; files at or above it are never rewritten.
    #[serde(default = "default_small", deserialize_with = "size")]
    pub small_file_size: u64,
    /// A partition's small files are compacted once there are at least this many.
    #[serde(default = "default_min_files")]
    pub min_files: usize,
    /// Files no table version references any more are deleted once they are this old. Older
    /// table versions cannot be read after their files are gone (time travel by table version).
    #[serde(default = "default_vacuum_retention", deserialize_with = "crate::config::duration")]
    pub vacuum_retention: Duration,
    /// Log entries older than this, and older than the newest checkpoint, are deleted.
    #[serde(default = "default_log_retention", deserialize_with = "crate::config::duration")]
    pub log_retention: Duration,
}

/// Below this a writer still working on a file it has not committed yet could lose it.
pub const MIN_VACUUM_RETENTION: Duration = Duration::from_secs(3600);

impl Default for MaintenanceSettings {
    fn default() -> MaintenanceSettings {
        MaintenanceSettings {
            target_file_size: default_target(),
            small_file_size: default_small(),
            min_files: default_min_files(),
            vacuum_retention: default_vacuum_retention(),
            log_retention: default_log_retention(),
        }
    }
}

impl MaintenanceSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.target_file_size < 1024 * 1024 {
            return Err(ConfigError::invalid("maintenance.target_file_size", "must be at least 1MB"));
        }
        if self.small_file_size > self.target_file_size {
            return Err(ConfigError::invalid(
                "maintenance.small_file_size",
                format!(
                    "{} is above target_file_size ({}): a compacted file would itself count as small",
                    show_size(self.small_file_size),
                    show_size(self.target_file_size)
                ),
            ));
        }
        if self.min_files < 2 {
            return Err(ConfigError::invalid("maintenance.min_files", "must be at least 2 (one file has nothing to merge with)"));
        }
        if self.vacuum_retention < MIN_VACUUM_RETENTION {
            return Err(ConfigError::invalid(
                "maintenance.vacuum_retention",
                "must be at least 1h: a writer's files are unreferenced until it commits them",
            ));
        }
        if self.log_retention < self.vacuum_retention {
            return Err(ConfigError::invalid(
                "maintenance.log_retention",
                "must not be shorter than vacuum_retention (a reader needs the log of any version whose files are kept)",
            ));
        }
        Ok(())
    }
}

fn default_target() -> u64 {
    128 * 1024 * 1024
}

fn default_small() -> u64 {
    32 * 1024 * 1024
}

fn default_min_files() -> usize {
    4
}

fn default_vacuum_retention() -> Duration {
    Duration::from_secs(7 * 86_400)
}

fn default_log_retention() -> Duration {
    Duration::from_secs(30 * 86_400)
}

/// Parses `128MB`, `512KB`, `1GB` (powers of 1024) or a bare number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a size like 512KB, 128MB or 1GB"))?;
    let factor: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "K" | "KIB" => 1024,
        "MB" | "M" | "MIB" => 1024 * 1024,
        "GB" | "G" | "GIB" => 1024 * 1024 * 1024,
        other => return Err(format!("unknown size unit '{other}' (use KB, MB or GB)")),
    };
    n.checked_mul(factor).ok_or_else(|| format!("'{s}' is too large"))
}

/// A size for messages: `128MB`, `1.5KB`.
pub fn show_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)];
    for (unit, factor) in UNITS {
        if bytes >= factor {
            let value = bytes as f64 / factor as f64;
            return if value.fract() == 0.0 { format!("{value:.0}{unit}") } else { format!("{value:.1}{unit}") };
        }
    }
    format!("{bytes}B")
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeText {
    Bytes(u64),
    Text(String),
}

fn size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match <SizeText as Deserialize>::deserialize(d)? {
        SizeText::Bytes(n) => Ok(n),
        SizeText::Text(t) => parse_size(&t).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<MaintenanceSettings, ConfigError> {
        let settings: MaintenanceSettings = crate::config::load_str(yaml, &|_| None)?;
        settings.validate()?;
        Ok(settings)
    }

    #[test]
    fn sizes_and_durations_read_with_units() {
        let s = load("target_file_size: 256MB\nsmall_file_size: 1048576\nvacuum_retention: 2d\nlog_retention: 30d\n").unwrap();
        assert_eq!(s.target_file_size, 256 << 20);
        assert_eq!(s.small_file_size, 1 << 20);
        assert_eq!(s.vacuum_retention, Duration::from_secs(2 * 86_400));
        assert_eq!(load("{}").unwrap(), MaintenanceSettings::default());
        assert_eq!(show_size(128 << 20), "128MB");
        assert_eq!(show_size(1536), "1.5KB");
    }

    #[test]
    fn errors_name_the_field() {
        let err = |yaml: &str| load(yaml).unwrap_err().to_string();
        assert!(
            err("small_file_size: 1GB\n").starts_with("maintenance.small_file_size: 1GB is above"),
            "{}",
            err("small_file_size: 1GB\n")
        );
        assert!(err("vacuum_retention: 10m\n").starts_with("maintenance.vacuum_retention:"));
        assert!(err("min_files: 1\n").starts_with("maintenance.min_files:"));
        assert!(err("log_retention: 1d\n").starts_with("maintenance.log_retention:"));
        assert!(err("target_file_size: 12XB\n").contains("unknown size unit 'XB'"));
        assert!(err("compact: true\n").contains("unknown field `compact`"));
    }
}
