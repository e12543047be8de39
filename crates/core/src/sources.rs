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
//!   events:
//!     kind: debezium                # Debezium JSON change events landed as files
//!     path: s3://landing/debezium/app/
//!     keys: {public.order_lines: [order_id, line]}   # default key: [id]
//!   legacy:
//!     kind: dms                     # AWS DMS output (CSV or Parquet) landed as files
//!     path: s3://landing/dms/
//!     timestamp_column: commit_ts   # DMS `TimestampColumnName`, when set
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
    /// Debezium JSON change events landed as files (one event per line), read in place.
    Debezium(CdcFilesConfig),
    /// AWS DMS output landed as files (`LOAD*` full-load files, then timestamped CDC files;
    /// CSV with a header row, or Parquet), read in place.
    Dms(CdcFilesConfig),
}

impl SourceConfig {
    /// The connection settings of a database source.
    pub fn postgres(&self) -> Option<&PostgresConfig> {
        match self {
            SourceConfig::Postgres(pg) | SourceConfig::HerokuConnect(pg) => Some(pg),
            SourceConfig::Debezium(_) | SourceConfig::Dms(_) => None,
        }
    }

    /// The tables' `schema.table` globs: as configured, else every table of the kind's schema
    /// (every table of the files for file sources).
    pub fn table_patterns(&self) -> Vec<String> {
        let configured = match self {
            SourceConfig::Postgres(pg) | SourceConfig::HerokuConnect(pg) => &pg.tables,
            SourceConfig::Debezium(files) | SourceConfig::Dms(files) => &files.tables,
        };
        if !configured.is_empty() {
            return configured.clone();
        }
        vec![match self {
            SourceConfig::Postgres(_) => "public.*".to_owned(),
            SourceConfig::HerokuConnect(_) => "salesforce.*".to_owned(),
            SourceConfig::Debezium(_) | SourceConfig::Dms(_) => "*.*".to_owned(),
        }]
    }

    fn validate(&self, name: &str) -> Result<(), (String, String)> {
        match self {
            SourceConfig::Postgres(pg) | SourceConfig::HerokuConnect(pg) => pg.validate(name),
            SourceConfig::Debezium(files) => files.validate(false),
            SourceConfig::Dms(files) => files.validate(true),
        }
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
        source.validate(name).map_err(|(field, why)| ConfigError::invalid(format!("sources.{name}.{field}"), why))?;
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
    /// `replication` (logical replication; the default) or `poll` (by a modification-time
    /// column, where logical replication is not allowed).
    #[serde(default)]
    pub mode: CaptureMode,
    /// Polling settings (`mode: poll`).
    #[serde(default)]
    pub poll: Option<PollConfig>,
}

/// How a database source reads changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMode {
    #[default]
    Replication,
    Poll,
}

/// `mode: poll`: each run reads the rows modified since the newest modification time the lake
/// holds, minus `overlap`, drops the re-read rows it already holds, and finds deletes by
/// comparing keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    /// The modification-time column of every table (default `updated_at`; `systemmodstamp` for
    /// a Heroku Connect mirror).
    #[serde(default)]
    pub column: Option<String>,
    /// The column per `schema.table`, where it differs.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// How far before the newest modification time the lake holds a run reads again: longer
    /// than the longest transaction that writes the tables (default 5m).
    #[serde(default = "default_overlap", deserialize_with = "crate::config::duration")]
    pub overlap: std::time::Duration,
    /// Find deleted rows by comparing the table's keys with the lake's live keys (default true).
    #[serde(default = "default_true")]
    pub deletes: bool,
}

impl Default for PollConfig {
    fn default() -> PollConfig {
        PollConfig { column: None, columns: BTreeMap::new(), overlap: default_overlap(), deletes: true }
    }
}

fn default_overlap() -> std::time::Duration {
    std::time::Duration::from_secs(300)
}

fn default_true() -> bool {
    true
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
            .field("mode", &self.mode)
            .field("poll", &self.poll)
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
            mode: CaptureMode::Replication,
            poll: None,
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
        if self.poll.is_some() && self.mode != CaptureMode::Poll {
            return field("poll", "polling settings need `mode: poll`");
        }
        if let Some(poll) = &self.poll {
            for (table, column) in &poll.columns {
                if table.split('.').count() != 2 {
                    return Err((format!("poll.columns.{table}"), "each entry is `schema.table`".to_owned()));
                }
                if column.is_empty() {
                    return Err((format!("poll.columns.{table}"), "empty".to_owned()));
                }
            }
        }
        Ok(())
    }
}

/// A source of change files landed in a folder or under an `s3://` prefix
/// (`kind: debezium` or `kind: dms`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdcFilesConfig {
    /// The folder (relative to the configuration file) or `s3://` prefix the files land under.
    pub path: String,
    /// `schema.table` names or globs of the tables to keep; default: every table in the files.
    #[serde(default)]
    pub tables: Vec<String>,
    /// The key columns of every table, unless `keys` names the table's own (default `[id]`).
    #[serde(default = "default_key")]
    pub key: Vec<String>,
    /// Key columns per `schema.table`.
    #[serde(default)]
    pub keys: BTreeMap<String, Vec<String>>,
    /// DMS only: the column holding each row's commit time (`TimestampColumnName`).
    #[serde(default)]
    pub timestamp_column: Option<String>,
    /// DMS CSV only (Parquet carries its types): column types per `schema.table`, e.g.
    /// `{public.orders: {amount: "decimal(12,2)", placed_at: timestamp}}`; other columns are text.
    #[serde(default)]
    pub column_types: BTreeMap<String, BTreeMap<String, ValueType>>,
}

fn default_key() -> Vec<String> {
    vec!["id".to_owned()]
}

impl CdcFilesConfig {
    /// A configuration reading `path` with every default.
    pub fn new(path: impl Into<String>) -> CdcFilesConfig {
        CdcFilesConfig {
            path: path.into(),
            tables: Vec::new(),
            key: default_key(),
            keys: BTreeMap::new(),
            timestamp_column: None,
            column_types: BTreeMap::new(),
        }
    }

    /// The key columns of `schema.table`.
    pub fn key_of(&self, qualified: &str) -> &[String] {
        self.keys.get(qualified).unwrap_or(&self.key)
    }

    fn validate(&self, dms: bool) -> Result<(), (String, String)> {
        let field = |f: &str, why: &str| Err((f.to_owned(), why.to_owned()));
        if self.path.trim().is_empty() {
            return field("path", "empty");
        }
        if self.key.is_empty() || self.key.iter().any(|k| k.is_empty()) {
            return field("key", "at least one column name");
        }
        for (table, key) in &self.keys {
            if table.split('.').count() != 2 {
                return Err((format!("keys.{table}"), "each entry is `schema.table`".to_owned()));
            }
            if key.is_empty() || key.iter().any(|k| k.is_empty()) {
                return Err((format!("keys.{table}"), "at least one column name".to_owned()));
            }
        }
        for t in self.tables.iter().chain(self.column_types.keys()) {
            if t.split('.').count() != 2 {
                let f = if self.tables.contains(t) { "tables".to_owned() } else { format!("column_types.{t}") };
                return Err((f, "each entry is `schema.table` (globs allowed in `tables`: `public.*`)".to_owned()));
            }
        }
        if !dms && self.timestamp_column.is_some() {
            return field("timestamp_column", "DMS files only: Debezium events carry their commit time");
        }
        if !dms && !self.column_types.is_empty() {
            return field("column_types", "DMS CSV files only: Debezium events carry their types");
        }
        Ok(())
    }
}

/// A column type for untyped files (DMS CSV), as written in `column_types`: `text`,
/// `boolean`, `smallint`, `integer`, `bigint`, `real`, `double`, `decimal(p,s)`, `date`,
/// `timestamp` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Text,
    Boolean,
    Smallint,
    Integer,
    Bigint,
    Real,
    Double,
    Decimal { precision: u8, scale: i8 },
    Date,
    Timestamp,
}

impl std::str::FromStr for ValueType {
    type Err = String;

    fn from_str(s: &str) -> Result<ValueType, String> {
        let lower = s.trim().to_ascii_lowercase();
        Ok(match lower.as_str() {
            "text" | "string" | "varchar" => ValueType::Text,
            "boolean" | "bool" => ValueType::Boolean,
            "smallint" | "int2" => ValueType::Smallint,
            "integer" | "int" | "int4" => ValueType::Integer,
            "bigint" | "int8" => ValueType::Bigint,
            "real" | "float4" => ValueType::Real,
            "double" | "float8" | "double precision" => ValueType::Double,
            "date" => ValueType::Date,
            "timestamp" | "timestamptz" => ValueType::Timestamp,
            other => {
                let inner = other
                    .strip_prefix("decimal(")
                    .or_else(|| other.strip_prefix("numeric("))
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| format!("unknown type '{s}' (text, boolean, smallint, integer, bigint, real, double, decimal(p,s), date, timestamp)"))?;
                let (p, sc) = inner.split_once(',').unwrap_or((inner, "0"));
                let precision: u8 = p.trim().parse().map_err(|_| format!("bad precision in '{s}'"))?;
                let scale: i8 = sc.trim().parse().map_err(|_| format!("bad scale in '{s}'"))?;
                if !(1..=38).contains(&precision) || scale < 0 || scale as u8 > precision {
                    return Err(format!("'{s}': precision 1 to 38, scale 0 to the precision"));
                }
                ValueType::Decimal { precision, scale }
            }
        })
    }
}

impl<'de> Deserialize<'de> for ValueType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ValueType, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
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
        let pg = sources["app"].postgres().unwrap();
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
        let stray_poll = parse("app:\n  kind: postgres\n  host: db\n  user: u\n  database: d\n  poll: {column: m}\n").unwrap();
        assert!(validate(&stray_poll).unwrap_err().to_string().starts_with("sources.app.poll:"));
        let polled =
            parse("app:\n  kind: postgres\n  host: db\n  user: u\n  database: d\n  mode: poll\n  poll: {overlap: 10m}\n")
                .unwrap();
        validate(&polled).unwrap();
        let pg = polled["app"].postgres().unwrap();
        assert_eq!((pg.mode, pg.poll.as_ref().unwrap().overlap.as_secs()), (CaptureMode::Poll, 600));
        assert!(
            parse("app:\n  kind: postgres\n  host: db\n  user: u\n  database: d\n  mode: poll\n  poll: {overlap: 5 minutes}\n")
                .is_err()
        );
        let bad_name = parse("App:\n  kind: postgres\n  host: db\n  user: u\n  database: d\n").unwrap();
        assert!(validate(&bad_name).unwrap_err().to_string().starts_with("sources.App:"));
    }

    #[test]
    fn file_sources_parse_and_check_their_fields() {
        let sources = parse(
            "ev:\n  kind: debezium\n  path: landing/ev\n  keys: {public.lines: [order_id, line]}\n\
             old:\n  kind: dms\n  path: s3://b/dms/\n  timestamp_column: ts\n  column_types: {public.orders: {amount: 'decimal(12,2)', at: timestamp}}\n",
        )
        .unwrap();
        validate(&sources).unwrap();
        let SourceConfig::Dms(dms) = &sources["old"] else { panic!("dms") };
        assert_eq!(dms.column_types["public.orders"]["amount"], ValueType::Decimal { precision: 12, scale: 2 });
        let SourceConfig::Debezium(ev) = &sources["ev"] else { panic!("debezium") };
        assert_eq!(
            (ev.key_of("public.lines"), ev.key_of("public.orders")),
            (&["order_id".to_owned(), "line".to_owned()][..], &["id".to_owned()][..])
        );
        assert_eq!(sources["ev"].table_patterns(), ["*.*"]);
        assert!(parse("x:\n  kind: dms\n  path: p\n  column_types: {public.t: {a: money}}\n").unwrap_err().contains("money"));
        let misplaced = parse("x:\n  kind: debezium\n  path: p\n  timestamp_column: ts\n").unwrap();
        assert!(validate(&misplaced).unwrap_err().to_string().starts_with("sources.x.timestamp_column:"));
        let bad_keys = parse("x:\n  kind: debezium\n  path: p\n  keys: {orders: [id]}\n").unwrap();
        assert!(validate(&bad_keys).unwrap_err().to_string().starts_with("sources.x.keys.orders:"));
    }
}
