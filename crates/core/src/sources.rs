//! The `sources:` section: systems other than Salesforce whose tables the lake keeps, each under
//! its own name (its namespace: `<lake>/sources/<name>/`, `<name>.<table>` in SQL).
//!
//! ```yaml
//! sources:
//!   app:
//!     kind: postgres
//!     host: db.internal
//!     user: tidemark
//!     password: ${APP_DB_PASSWORD}
//!     database: app
//!     tables: ["public.*"]
//!   crm:
//!     kind: heroku_connect          # a Heroku Connect mirror: schema `salesforce` by default
//!     host: ${HC_DB_HOST}
//!     user: tidemark
//!     password: ${HC_DB_PASSWORD}
//!     database: d1a2b3
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::ConfigError;

/// One entry of `sources:`, by its `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceConfig {
    /// A Postgres database by logical replication (tidemark-postgres).
    Postgres(PostgresConfig),
    /// A Heroku Connect mirror in Postgres (schema `salesforce` unless `tables` says otherwise):
    /// its tables under their Salesforce object names, keyed by `sfid` (as `Id`), Heroku
    /// Connect's own columns and tables left out.
    HerokuConnect(PostgresConfig),
}

impl SourceConfig {
    /// The connection settings, whatever the kind.
    pub fn postgres(&self) -> &PostgresConfig {
        match self {
            SourceConfig::Postgres(pg) | SourceConfig::HerokuConnect(pg) => pg,
        }
    }

    /// The tables' `schema.table` globs: as configured, else every table of the kind's schema.
    pub fn table_patterns(&self) -> Vec<String> {
        let pg = self.postgres();
        if !pg.tables.is_empty() {
            return pg.tables.clone();
        }
        vec![match self {
            SourceConfig::Postgres(_) => "public.*".to_owned(),
            SourceConfig::HerokuConnect(_) => "salesforce.*".to_owned(),
        }]
    }
}

/// Checks every source before any connection; errors name `sources.<name>.<field>`.
pub fn validate(sources: &BTreeMap<String, SourceConfig>) -> Result<(), ConfigError> {
    let mut seen = BTreeMap::new();
    for (name, source) in sources {
        let valid = !name.is_empty()
            && name.len() <= 40
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(ConfigError::invalid(
                format!("sources.{name}"),
                "a source name is 1 to 40 lower-case letters, digits or underscores, not starting with a digit (it names a folder and a SQL schema)",
            ));
        }
        if matches!(name.as_str(), "public" | "pg_catalog" | "information_schema" | "tidemark") {
            return Err(ConfigError::invalid(format!("sources.{name}"), "reserved: it is a SQL schema already"));
        }
        if let Some(other) = seen.insert(name.to_ascii_lowercase(), name) {
            return Err(ConfigError::invalid(format!("sources.{name}"), format!("same name as {other}")));
        }
        source.postgres().validate(name).map_err(|(field, why)| ConfigError::invalid(format!("sources.{name}.{field}"), why))?;
    }
    Ok(())
}

/// How the connections use TLS (libpq's `sslmode` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plain TCP (or a Unix socket).
    Disable,
    /// TLS, certificate not checked.
    Require,
    /// TLS, certificate checked against `ca_file` (or the Mozilla roots) and the host name.
    #[default]
    VerifyFull,
}

/// One Postgres source (`sources: [{kind: postgres, …}]`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Host name, or a Unix socket directory (starting with `/`).
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub user: String,
    /// From the environment in configuration files (`${PGPASSWORD}`).
    #[serde(default, deserialize_with = "crate::config::optional_secret")]
    pub password: Option<SecretString>,
    pub database: String,
    /// `schema.table` names or globs (`public.*`); default: every table of schema `public`
    /// (`salesforce` for a Heroku Connect mirror).
    #[serde(default)]
    pub tables: Vec<String>,
    /// The publication Tidemark reads (created for `tables` when missing).
    #[serde(default)]
    pub publication: Option<String>,
    /// The replication slot (created when missing). Letters, digits and `_`.
    #[serde(default)]
    pub slot: Option<String>,
    #[serde(default)]
    pub sslmode: SslMode,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Tables copied at once during an initial copy (one connection each).
    #[serde(default = "default_copy_parallelism")]
    pub copy_parallelism: usize,
}

fn default_port() -> u16 {
    5432
}

fn default_copy_parallelism() -> usize {
    2
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .field("tables", &self.tables)
            .field("publication", &self.publication)
            .field("slot", &self.slot)
            .field("sslmode", &self.sslmode)
            .finish()
    }
}

impl PostgresConfig {
    /// A configuration for `database` on `host` with every default.
    pub fn new(host: impl Into<String>, port: u16, user: impl Into<String>, database: impl Into<String>) -> PostgresConfig {
        PostgresConfig {
            host: host.into(),
            port,
            user: user.into(),
            password: None,
            database: database.into(),
            tables: Vec::new(),
            publication: None,
            slot: None,
            sslmode: SslMode::Disable,
            ca_file: None,
            copy_parallelism: default_copy_parallelism(),
        }
    }

    /// The slot name for source `name`: configured, or `tidemark_<name>`.
    pub fn slot_name(&self, name: &str) -> String {
        self.slot.clone().unwrap_or_else(|| format!("tidemark_{}", name.to_ascii_lowercase()))
    }

    pub fn publication_name(&self, name: &str) -> String {
        self.publication.clone().unwrap_or_else(|| format!("tidemark_{}", name.to_ascii_lowercase()))
    }

    /// The password to send (empty without one).
    pub fn password(&self) -> String {
        self.password.as_ref().map(|p| p.expose_secret().to_owned()).unwrap_or_default()
    }

    /// Checks what can be checked without connecting; errors name the field (relative to the
    /// source's entry).
    pub fn validate(&self, name: &str) -> Result<(), (String, String)> {
        let field = |f: &str, why: &str| Err((f.to_owned(), why.to_owned()));
        let identifier = |s: &str| {
            !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if self.host.trim().is_empty() {
            return field("host", "empty");
        }
        if self.database.trim().is_empty() {
            return field("database", "empty");
        }
        if !identifier(&self.slot_name(name)) {
            return field("slot", "a slot name is 1 to 63 lower-case letters, digits or underscores");
        }
        if !identifier(&self.publication_name(name)) {
            return field("publication", "1 to 63 lower-case letters, digits or underscores");
        }
        for t in &self.tables {
            if t.split('.').count() != 2 {
                return field("tables", "each entry is `schema.table` (globs allowed: `public.*`)");
            }
        }
        if self.copy_parallelism == 0 {
            return field("copy_parallelism", "at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<BTreeMap<String, SourceConfig>, String> {
        serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn a_postgres_source_parses_with_defaults_and_hides_its_password() {
        let sources = parse("app:\n  kind: postgres\n  host: db\n  user: u\n  password: hunter2\n  database: app\n").unwrap();
        let pg = sources["app"].postgres();
        assert_eq!(
            (pg.port, sources["app"].table_patterns(), pg.slot_name("app")),
            (5432, vec!["public.*".to_owned()], "tidemark_app".to_owned())
        );
        let hc = parse("crm:\n  kind: heroku_connect\n  host: db\n  user: u\n  database: d\n").unwrap();
        assert_eq!(hc["crm"].table_patterns(), ["salesforce.*"]);
        assert_eq!(pg.sslmode, SslMode::VerifyFull);
        assert!(!format!("{pg:?}").contains("hunter2"));
        validate(&sources).unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        assert!(parse("app:\n  kind: postgres\n  host: db\n  user: u\n  database: d\n  hots: x\n").unwrap_err().contains("hots"));
        assert!(parse("app:\n  kind: mysql\n  host: db\n").unwrap_err().contains("mysql"));
        let bad_slot = parse("app:\n  kind: postgres\n  host: db\n  user: u\n  database: d\n  slot: My-Slot\n").unwrap();
        assert!(validate(&bad_slot).unwrap_err().to_string().starts_with("sources.app.slot:"));
        let bad_table = parse("app:\n  kind: postgres\n  host: db\n  user: u\n  database: d\n  tables: [orders]\n").unwrap();
        assert!(validate(&bad_table).unwrap_err().to_string().starts_with("sources.app.tables:"));
        let bad_name = parse("App:\n  kind: postgres\n  host: db\n  user: u\n  database: d\n").unwrap();
        assert!(validate(&bad_name).unwrap_err().to_string().starts_with("sources.App:"));
    }
}
