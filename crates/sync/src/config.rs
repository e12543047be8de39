//! The configuration file (`tidemark.yaml`): how to reach Salesforce, where the lake is, and
//! what to sync. Validated completely before any network call; errors name the dotted field.
//!
//! ```yaml
//! salesforce:
//!   auth:
//!     flow: jwt_bearer            # or client_credentials, refresh_token, password, session
//!     login_url: https://login.salesforce.com
//!     client_id: ${SF_CLIENT_ID}
//!     username: integration@example.com
//!     private_key_file: /etc/tidemark/sf.key
//!   budget_percent: 80            # stop (incomplete) when this share of the daily API allocation is used
//! lake:
//!   location: s3://acme-lake/salesforce   # or a local folder
//! sql:                            # tidemark serve-sql (see tidemark_core::access)
//!   listen: 0.0.0.0:5433
//!   tls: {cert_file: /etc/tidemark/sql.crt, key_file: /etc/tidemark/sql.key}
//!   users:
//!     analyst: {password: "${TIDEMARK_SQL_PASSWORD}", role: reader}
//!   roles:
//!     reader: {objects: ["*"], columns: {contact: {email: "mask:email"}}}
//! sync:
//!   parallelism: 4
//!   include: ["*"]
//!   exclude: ["*Feed", "*Share", "*ChangeEvent"]
//!   objects:
//!     Contact:
//!       formula_snapshot_every: 24h
//! push:                           # tidemark push <flow> (see tidemark_core::push)
//!   account_tier:
//!     query: SELECT account_id, tier FROM account_scores
//!     object: Account
//!     mode: upsert
//!     external_id: Tier_Key__c
//! sources:                        # tidemark sync --source app (see tidemark_core::sources)
//!   app:
//!     kind: postgres
//!     host: db.internal
//!     user: tidemark
//!     password: ${APP_DB_PASSWORD}
//!     database: app
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{Glob, GlobMatcher};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tidemark_core::ConfigError;
use tidemark_core::models::ModelConfig;
use tidemark_core::push::PushConfig;
use tidemark_salesforce::AuthConfig;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TidemarkConfig {
    /// Needed by the commands that reach the org (`sync`, `objects`); a lake of landed files
    /// and models alone has none.
    #[serde(default)]
    pub salesforce: Option<SalesforceSettings>,
    #[serde(default)]
    pub lake: Option<LakeSettings>,
    #[serde(default)]
    pub sync: SyncSettings,
    /// The Postgres-compatible endpoint (`tidemark serve-sql`).
    #[serde(default)]
    pub sql: Option<SqlSettings>,
    /// Dimension models (also read from `models/*.yaml` beside the file).
    #[serde(default)]
    pub models: BTreeMap<String, ModelConfig>,
    /// Push flows (reverse ETL): a query's result sent to a Salesforce object (`tidemark push`).
    #[serde(default)]
    pub push: BTreeMap<String, PushConfig>,
    /// Systems other than Salesforce whose tables the lake keeps (`tidemark sync --source`),
    /// each in its own namespace (see [`tidemark_core::sources`]).
    #[serde(default)]
    pub sources: BTreeMap<String, tidemark_core::sources::SourceConfig>,
    /// Field policies applied at ingestion (see [`tidemark_core::governance`]).
    #[serde(default)]
    pub governance: tidemark_core::governance::GovernanceConfig,
    /// Table maintenance: compaction, checkpoints, vacuum, log cleanup (`tidemark maintain`).
    #[serde(default)]
    pub maintenance: tidemark_core::maintenance::MaintenanceSettings,
    /// Scheduled pipelines of sync, model, push and maintenance steps (see
    /// [`tidemark_core::pipelines`]).
    #[serde(default)]
    pub pipelines: BTreeMap<String, tidemark_core::pipelines::PipelineConfig>,
}

/// The environment variable naming an environment whose overlay file is laid over the config
/// (`TIDEMARK_ENV=prod`: `tidemark.prod.yaml` over `tidemark.yaml`).
pub const ENVIRONMENT_VAR: &str = "TIDEMARK_ENV";

/// `tidemark.yaml` with environment `prod` → `tidemark.prod.yaml` beside it.
pub fn overlay_path(config: &Path, environment: &str) -> PathBuf {
    let stem = config.file_stem().and_then(|s| s.to_str()).unwrap_or("tidemark");
    let extension = config.extension().and_then(|s| s.to_str()).unwrap_or("yaml");
    config.with_file_name(format!("{stem}.{environment}.{extension}"))
}

/// `tidemark serve-sql`: where to listen, who may log in and what each user may read (see
/// [`tidemark_core::access`]), TLS and the query log. Either one login (`user`, `password`)
/// that reads everything, or `users` with `roles`. Beyond loopback a password and TLS are
/// required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlSettings {
    #[serde(default)]
    pub listen: Option<std::net::SocketAddr>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default, deserialize_with = "tidemark_core::config::optional_secret")]
    pub password: Option<SecretString>,
    #[serde(default)]
    pub users: BTreeMap<String, tidemark_core::access::UserConfig>,
    #[serde(default)]
    pub roles: BTreeMap<String, tidemark_core::access::RoleConfig>,
    #[serde(default)]
    pub tls: Option<tidemark_core::access::TlsConfig>,
    #[serde(default)]
    pub query_log: Option<tidemark_core::access::QueryLogConfig>,
}

impl SqlSettings {
    /// The compiled users and roles; `None` with the single-login form.
    pub fn access(
        &self,
        governance: &tidemark_core::governance::Governance,
    ) -> Result<Option<tidemark_core::access::Access>, ConfigError> {
        if self.users.is_empty() {
            if !self.roles.is_empty() {
                return Err(ConfigError::invalid("sql.roles", "roles are given to sql.users: add users, or remove the roles"));
            }
            return Ok(None);
        }
        if self.user.is_some() || self.password.is_some() {
            return Err(ConfigError::invalid(
                "sql.users",
                "give either sql.user/sql.password (one login reading everything) or sql.users, not both",
            ));
        }
        tidemark_core::access::Access::compile(&self.users, &self.roles, governance.key().cloned()).map(Some)
    }

    fn validate(&self, governance: &tidemark_core::governance::Governance) -> Result<(), ConfigError> {
        self.access(governance)?;
        if let Some(tls) = &self.tls {
            for (field, file) in [("cert_file", &tls.cert_file), ("key_file", &tls.key_file)] {
                if !file.is_file() {
                    return Err(ConfigError::invalid(
                        format!("sql.tls.{field}"),
                        format!("{} is not a readable file", file.display()),
                    ));
                }
            }
        }
        let beyond_loopback = self.listen.is_some_and(|l| !l.ip().to_canonical().is_loopback());
        if beyond_loopback {
            match &self.tls {
                None => {
                    return Err(ConfigError::invalid(
                        "sql.tls",
                        "required when sql.listen is beyond loopback: give cert_file and key_file (PEM)",
                    ));
                }
                Some(tls) if tls.required == Some(false) => {
                    return Err(ConfigError::invalid("sql.tls.required", "must be true when sql.listen is beyond loopback"));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesforceSettings {
    pub auth: AuthSettings,
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Percent of the org's daily API allocation a run may use before stopping incomplete.
    #[serde(default = "default_budget")]
    pub budget_percent: u32,
    /// An extra root certificate (PEM) to trust, e.g. the simulator's local CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// OAuth flows. Secrets are `SecretString`s: never shown by `Debug`, never logged.
#[derive(Debug, Deserialize)]
#[serde(tag = "flow", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthSettings {
    JwtBearer {
        login_url: String,
        client_id: String,
        username: String,
        private_key_file: PathBuf,
    },
    ClientCredentials {
        login_url: String,
        client_id: String,
        #[serde(deserialize_with = "tidemark_core::config::secret")]
        client_secret: SecretString,
    },
    RefreshToken {
        login_url: String,
        client_id: String,
        #[serde(default, deserialize_with = "tidemark_core::config::optional_secret")]
        client_secret: Option<SecretString>,
        #[serde(deserialize_with = "tidemark_core::config::secret")]
        refresh_token: SecretString,
    },
    Password {
        login_url: String,
        client_id: String,
        #[serde(deserialize_with = "tidemark_core::config::secret")]
        client_secret: SecretString,
        username: String,
        #[serde(deserialize_with = "tidemark_core::config::secret")]
        password: SecretString,
        #[serde(default, deserialize_with = "tidemark_core::config::optional_secret")]
        security_token: Option<SecretString>,
    },
    Session {
        instance_url: String,
        #[serde(deserialize_with = "tidemark_core::config::secret")]
        access_token: SecretString,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeSettings {
    /// A local folder or `s3://bucket/prefix`.
    pub location: String,
    /// Object-store options (`AWS_ENDPOINT_URL`, `AWS_REGION`, …); the standard `AWS_*`
    /// environment variables apply without listing them here.
    #[serde(default, deserialize_with = "tidemark_core::config::secret_map")]
    pub storage_options: BTreeMap<String, SecretString>,
}

/// What to sync and how.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSettings {
    /// Objects synced at the same time.
    pub parallelism: usize,
    /// Objects with more changed records than this are read with Bulk API 2.0, others with REST.
    pub bulk_threshold: u64,
    /// How far before the bookmark each incremental read starts, so versions committed late
    /// (long transactions) are not missed. Re-read versions are de-duplicated exactly.
    #[serde(deserialize_with = "duration")]
    pub overlap: Duration,
    /// Object name patterns (`*` and `?` globs, case-insensitive).
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// How often to look for hard-deleted records (an Id-only query per object).
    #[serde(deserialize_with = "duration")]
    pub reconcile_every: Duration,
    /// Rows per Delta commit during a long read (bounds the work a crash repeats).
    pub commit_rows: u64,
    /// Records per Bulk API result page. Two pages are in memory while one is written (the next
    /// downloads while the current decodes): 50,000 keeps a 60-field object's sync under 500 MB
    /// and loses nothing in speed against 100,000 (see BENCHMARKS.md).
    pub bulk_page_records: u64,
    /// How long a run's lease on each object it writes lasts without renewal. A run renews its
    /// leases every third of this; a run that dies without releasing them (SIGKILL, a lost
    /// machine) blocks others this long at most, or not at all when it ran on the same machine.
    #[serde(deserialize_with = "duration")]
    pub lease_ttl: Duration,
    /// Per-object settings, by API name.
    pub objects: BTreeMap<String, ObjectSettings>,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            parallelism: 4,
            bulk_threshold: 10_000,
            overlap: Duration::from_secs(300),
            include: vec!["*".into()],
            exclude: DEFAULT_EXCLUDES.iter().map(|s| (*s).to_owned()).collect(),
            reconcile_every: Duration::from_secs(24 * 3600),
            commit_rows: 500_000,
            bulk_page_records: 50_000,
            lease_ttl: Duration::from_secs(120),
            objects: BTreeMap::new(),
        }
    }
}

/// Excluded unless configured otherwise: feeds and share rows are high-volume derivatives of
/// other objects (and mostly refused by Bulk); change events exist only as streams.
pub const DEFAULT_EXCLUDES: [&str; 3] = ["*Feed", "*Share", "*ChangeEvent"];

/// Which API reads an object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiChoice {
    /// Bulk above `bulk_threshold` changed records, REST below (and when Bulk refuses the object).
    #[default]
    Auto,
    Bulk,
    Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectSettings {
    /// Field name patterns to replicate (default: all). `Id` and the timestamp fields are
    /// always included.
    pub fields: Option<Vec<String>>,
    pub exclude_fields: Vec<String>,
    /// Re-read formula fields this often, recording changed values as versions (formula
    /// changes do not move `SystemModstamp`). Off by default.
    #[serde(deserialize_with = "optional_duration")]
    pub formula_snapshot_every: Option<Duration>,
    #[serde(deserialize_with = "optional_duration")]
    pub reconcile_every: Option<Duration>,
    pub api: ApiChoice,
    /// Read the whole object each run and diff it against the lake instead of following a
    /// timestamp (automatic for objects without `SystemModstamp`, `LastModifiedDate` or
    /// `CreatedDate`). New and changed records become versions stamped with the org's time;
    /// records gone from the org become delete versions.
    pub snapshot_diff: bool,
}

fn default_api_version() -> String {
    "66.0".to_owned()
}

fn default_budget() -> u32 {
    80
}

pub use tidemark_core::config::{duration, optional_duration, parse_duration};

/// Compiled object and field patterns.
#[derive(Debug, Clone)]
pub struct Patterns {
    include: Vec<(String, GlobMatcher)>,
    exclude: Vec<(String, GlobMatcher)>,
}

impl Patterns {
    pub fn compile(include: &[String], exclude: &[String], path: &str) -> Result<Patterns, ConfigError> {
        let compile = |list: &[String], key: &str| -> Result<Vec<(String, GlobMatcher)>, ConfigError> {
            list.iter()
                .enumerate()
                .map(|(i, p)| {
                    globset::GlobBuilder::new(p)
                        .case_insensitive(true)
                        .build()
                        .map(|g: Glob| (p.clone(), g.compile_matcher()))
                        .map_err(|e| ConfigError::invalid(format!("{path}{key}[{i}]"), e.to_string()))
                })
                .collect()
        };
        Ok(Patterns { include: compile(include, "include")?, exclude: compile(exclude, "exclude")? })
    }

    /// `Ok(())` when `name` is selected, else the reason it is not.
    pub fn check(&self, name: &str) -> Result<(), String> {
        if let Some((p, _)) = self.exclude.iter().find(|(_, m)| m.is_match(name)) {
            return Err(format!("excluded by pattern '{p}'"));
        }
        if self.include.iter().any(|(_, m)| m.is_match(name)) { Ok(()) } else { Err("not in the include patterns".into()) }
    }
}

impl TidemarkConfig {
    /// Loads and validates a config file (`${ENV}` substituted from `env`).
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<TidemarkConfig, ConfigError> {
        let mut config: TidemarkConfig = match env(ENVIRONMENT_VAR) {
            Some(name) if !name.is_empty() => {
                let overlay = overlay_path(path, &name);
                if !overlay.is_file() {
                    return Err(ConfigError::Read {
                        file: overlay.display().to_string(),
                        message: format!("{ENVIRONMENT_VAR}={name} names this overlay, which does not exist"),
                    });
                }
                tidemark_core::config::load_file_with_overlay(path, &overlay, env)?
            }
            _ => tidemark_core::config::load_file(path, env)?,
        };
        config.load_model_files(path, env)?;
        config.validate()?;
        Ok(config)
    }

    /// Adds the models of `models/*.yaml` beside the config file: each file a map of model
    /// names to models, as under `models:`. A name defined twice is an error.
    fn load_model_files(&mut self, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let folder = path.parent().unwrap_or(Path::new(".")).join("models");
        let Ok(entries) = std::fs::read_dir(&folder) else { return Ok(()) };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        for file in files {
            let models: BTreeMap<String, ModelConfig> = tidemark_core::config::load_file(&file, env).map_err(|e| match e {
                ConfigError::Invalid { path, message } => {
                    ConfigError::Invalid { path: format!("{}: models.{path}", file.display()), message }
                }
                other => other,
            })?;
            for (name, model) in models {
                if self.models.insert(name.clone(), model).is_some() {
                    return Err(ConfigError::invalid(
                        format!("models.{name}"),
                        format!("defined twice (again in {})", file.display()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The compiled field policies.
    pub fn governance(&self) -> Result<tidemark_core::governance::Governance, ConfigError> {
        tidemark_core::governance::Governance::compile(&self.governance)
    }

    /// The Salesforce section, for the commands that reach the org.
    pub fn salesforce(&self) -> Result<&SalesforceSettings, ConfigError> {
        self.salesforce
            .as_ref()
            .ok_or_else(|| ConfigError::invalid("salesforce", "missing: this command reaches the org (auth, api_version)"))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, model) in &self.models {
            model.validate(name)?;
        }
        self.validate_push()?;
        tidemark_core::sources::validate(&self.sources)?;
        self.maintenance.validate()?;
        let known = tidemark_core::pipelines::KnownNames {
            models: self.models.keys().map(String::as_str).collect(),
            flows: self.push.keys().map(String::as_str).collect(),
            sources: self.sources.keys().map(String::as_str).collect(),
            salesforce: self.salesforce.is_some(),
        };
        tidemark_core::pipelines::validate(&self.pipelines, &known)?;
        let governance = self.governance()?;
        if let Some(sql) = &self.sql {
            sql.validate(&governance)?;
        }
        let Some(sf) = &self.salesforce else {
            return self.sync.validate();
        };
        if !(1..=100).contains(&sf.budget_percent) {
            return Err(ConfigError::invalid("salesforce.budget_percent", "must be between 1 and 100"));
        }
        if sf.api_version.parse::<f32>().map_or(true, |v| v < 31.0) {
            return Err(ConfigError::invalid("salesforce.api_version", "must be a version like \"66.0\" (31.0 or later)"));
        }
        let url = match &sf.auth {
            AuthSettings::JwtBearer { login_url, .. }
            | AuthSettings::ClientCredentials { login_url, .. }
            | AuthSettings::RefreshToken { login_url, .. }
            | AuthSettings::Password { login_url, .. } => ("salesforce.auth.login_url", login_url),
            AuthSettings::Session { instance_url, .. } => ("salesforce.auth.instance_url", instance_url),
        };
        match url::Url::parse(url.1) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {}
            _ => {
                return Err(ConfigError::invalid(
                    url.0,
                    format!(
                        "'{}' is not a URL with a scheme: write it as https://login.salesforce.com (or your My Domain)",
                        url.1
                    ),
                ));
            }
        }
        if let AuthSettings::JwtBearer { private_key_file, .. } = &sf.auth
            && !private_key_file.is_file()
        {
            return Err(ConfigError::invalid(
                "salesforce.auth.private_key_file",
                format!("{} is not a readable file", private_key_file.display()),
            ));
        }
        if let Some(ca) = &sf.ca_file
            && !ca.is_file()
        {
            return Err(ConfigError::invalid("salesforce.ca_file", format!("{} is not a readable file", ca.display())));
        }
        self.sync.validate()
    }

    /// Each flow's own checks, and names the command line and the lake can tell apart.
    fn validate_push(&self) -> Result<(), ConfigError> {
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for (name, flow) in &self.push {
            // `tidemark push status` is the status command, so a flow of that name could never run.
            if name.eq_ignore_ascii_case("status") {
                return Err(ConfigError::invalid(
                    format!("push.{name}"),
                    "'status' is reserved (`tidemark push status` shows the flows' runs): rename the flow",
                ));
            }
            flow.validate(name)?;
            // A flow's tables, lease and SQL names are lower case: two flows differing only in
            // case would share them.
            if let Some(other) = seen.insert(name.to_ascii_lowercase(), name) {
                return Err(ConfigError::invalid(
                    format!("push.{name}"),
                    format!("flow names are case-insensitive (they name tables) and {other} is already defined"),
                ));
            }
        }
        Ok(())
    }

    /// The auth settings as the client takes them (reads the private key file).
    pub fn auth_config(&self) -> Result<AuthConfig, ConfigError> {
        Ok(match &self.salesforce()?.auth {
            AuthSettings::JwtBearer { login_url, client_id, username, private_key_file } => {
                let pem = std::fs::read_to_string(private_key_file)
                    .map_err(|e| ConfigError::invalid("salesforce.auth.private_key_file", e.to_string()))?;
                AuthConfig::JwtBearer {
                    login_url: login_url.clone(),
                    client_id: client_id.clone(),
                    username: username.clone(),
                    private_key_pem: pem.into(),
                }
            }
            AuthSettings::ClientCredentials { login_url, client_id, client_secret } => AuthConfig::ClientCredentials {
                login_url: login_url.clone(),
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
            },
            AuthSettings::RefreshToken { login_url, client_id, client_secret, refresh_token } => AuthConfig::RefreshToken {
                login_url: login_url.clone(),
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                refresh_token: refresh_token.clone(),
            },
            AuthSettings::Password { login_url, client_id, client_secret, username, password, security_token } => {
                AuthConfig::Password {
                    login_url: login_url.clone(),
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                    username: username.clone(),
                    password: password.clone(),
                    security_token: security_token.clone(),
                }
            }
            AuthSettings::Session { instance_url, access_token } => {
                AuthConfig::Session { instance_url: instance_url.clone(), access_token: access_token.clone() }
            }
        })
    }
}

impl LakeSettings {
    pub fn storage_options(&self) -> std::collections::HashMap<String, String> {
        self.storage_options.iter().map(|(k, v)| (k.clone(), v.expose_secret().to_owned())).collect()
    }
}

impl SyncSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=64).contains(&self.parallelism) {
            return Err(ConfigError::invalid("sync.parallelism", "must be between 1 and 64"));
        }
        if self.lease_ttl < Duration::from_secs(3) {
            return Err(ConfigError::invalid("sync.lease_ttl", "must be at least 3s"));
        }
        if self.commit_rows == 0 {
            return Err(ConfigError::invalid("sync.commit_rows", "must be at least 1"));
        }
        if !(1..=1_000_000).contains(&self.bulk_page_records) {
            return Err(ConfigError::invalid("sync.bulk_page_records", "must be between 1 and 1000000"));
        }
        self.object_patterns()?;
        for (name, o) in &self.objects {
            o.field_patterns(&format!("sync.objects.{name}."))?;
        }
        Ok(())
    }

    pub fn object_patterns(&self) -> Result<Patterns, ConfigError> {
        Patterns::compile(&self.include, &self.exclude, "sync.")
    }

    /// Settings for an object (defaults when it has none).
    pub fn object(&self, name: &str) -> ObjectSettings {
        self.objects.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).unwrap_or_default()
    }
}

impl ObjectSettings {
    pub fn field_patterns(&self, path: &str) -> Result<Patterns, ConfigError> {
        let include = self.fields.clone().unwrap_or_else(|| vec!["*".into()]);
        Patterns::compile(&include, &self.exclude_fields, path).map_err(|e| match e {
            ConfigError::Invalid { path, message } => ConfigError::Invalid {
                path: path.replace(".include[", ".fields[").replace(".exclude[", ".exclude_fields["),
                message,
            },
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<TidemarkConfig, ConfigError> {
        let c: TidemarkConfig = tidemark_core::config::load_str(yaml, &|v| (v == "SECRET").then(|| "s3cr3t".to_owned()))?;
        c.validate()?;
        Ok(c)
    }

    const BASE: &str = "salesforce:\n  auth:\n    flow: client_credentials\n    login_url: https://login.example.com\n    client_id: abc\n    client_secret: ${SECRET}\n";

    #[test]
    fn defaults_and_secrets() {
        let c = load(BASE).unwrap();
        assert_eq!(c.sync.parallelism, 4);
        assert_eq!(c.sync.overlap, Duration::from_secs(300));
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t"), "secret in Debug output: {shown}");
    }

    #[test]
    fn pipelines_name_the_rest_of_the_config_and_an_environment_overlays_it() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("tidemark.yaml");
        let pipelines = "pipelines:\n  nightly:\n    schedule: \"0 2 * * *\"\n    time_zone: Europe/Paris\n    steps:\n\
                         \x20     - sync: {objects: [Account]}\n      - maintain: {}\n";
        std::fs::write(&base, format!("{BASE}{pipelines}")).unwrap();
        let env = |v: &str| match v {
            "SECRET" => Some("s3cr3t".to_owned()),
            ENVIRONMENT_VAR => Some("prod".to_owned()),
            _ => None,
        };
        let e = TidemarkConfig::load(&base, &env).unwrap_err().to_string();
        assert!(e.contains("tidemark.prod.yaml") && e.contains("TIDEMARK_ENV=prod"), "{e}");
        std::fs::write(
            dir.path().join("tidemark.prod.yaml"),
            "pipelines:\n  nightly:\n    schedule: every 30m\n    time_zone: null\n",
        )
        .unwrap();
        let c = TidemarkConfig::load(&base, &env).unwrap();
        assert_eq!(c.pipelines["nightly"].schedule, "every 30m");
        assert_eq!(c.pipelines["nightly"].steps.len(), 2, "steps kept from the base");
        let without = TidemarkConfig::load(&base, &|v| (v == "SECRET").then(|| "s3cr3t".to_owned())).unwrap();
        assert_eq!(without.pipelines["nightly"].schedule, "0 2 * * *");

        let e = load(&format!("{BASE}pipelines:\n  p:\n    schedule: every 1h\n    steps: [model: {{models: [dim]}}]\n"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "pipelines.p.steps[0].model.models[0]: no model 'dim' (none are configured)");
        let e = load("pipelines:\n  p:\n    schedule: every 1h\n    steps: [sync: {}]\n").unwrap_err().to_string();
        assert!(e.starts_with("pipelines.p.steps[0].sync: syncs Salesforce objects"), "{e}");
    }

    #[test]
    fn sql_endpoint_settings() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("sql.pem");
        std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let tls = format!("  tls: {{cert_file: {0}, key_file: {0}}}\n", pem.display());
        let single = format!("{BASE}sql:\n  listen: 0.0.0.0:5433\n  user: analyst\n  password: ${{SECRET}}\n");
        let e = load(&single).unwrap_err();
        assert!(e.to_string().starts_with("sql.tls: required"), "{e}");
        let c = load(&format!("{single}{tls}")).unwrap();
        let sql = c.sql.as_ref().unwrap();
        assert_eq!(sql.listen.unwrap().port(), 5433);
        assert_eq!(sql.password.as_ref().unwrap().expose_secret(), "s3cr3t");
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let e = load(&format!("{BASE}sql:\n  listen: nowhere\n")).unwrap_err();
        assert!(e.to_string().starts_with("sql.listen"), "{e}");
        let optional = format!("  tls: {{cert_file: {0}, key_file: {0}, required: false}}\n", pem.display());
        let e = load(&format!("{single}{optional}")).unwrap_err();
        assert!(e.to_string().starts_with("sql.tls.required"), "{e}");
        let e =
            load(&format!("{BASE}sql:\n  tls: {{cert_file: /nonexistent/c.pem, key_file: {}}}\n", pem.display())).unwrap_err();
        assert!(e.to_string().starts_with("sql.tls.cert_file"), "{e}");
    }

    #[test]
    fn sql_users_and_roles() {
        let users =
            "sql:\n  users:\n    alice: {password: \"${SECRET}\", role: analyst}\n  roles:\n    analyst: {objects: [account]}\n";
        let c = load(&format!("{BASE}{users}")).unwrap();
        let access = c.sql.as_ref().unwrap().access(&c.governance().unwrap()).unwrap().expect("users configured");
        assert_eq!(access.passwords()["alice"].expose_secret(), "s3cr3t");
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let both = format!("{BASE}{users}  user: bob\n  password: x\n");
        assert!(load(&both).unwrap_err().to_string().starts_with("sql.users: give either"));
        let orphan = format!("{BASE}sql:\n  roles:\n    analyst: {{objects: [account]}}\n");
        assert!(load(&orphan).unwrap_err().to_string().starts_with("sql.roles:"));
        let unknown = users.replace("role: analyst", "role: nobody");
        assert!(
            load(&format!("{BASE}{unknown}")).unwrap_err().to_string().starts_with("sql.users.alice.role: unknown role 'nobody'")
        );
        let hash = users.replace("{objects: [account]}", "{objects: [account], columns: {account: {phone: hash}}}");
        assert!(load(&format!("{BASE}{hash}")).unwrap_err().to_string().starts_with("sql.roles.analyst.columns.account.phone:"));
    }

    #[test]
    fn errors_name_the_field() {
        let e = load(&format!("{BASE}sync:\n  parallelism: 0\n")).unwrap_err();
        assert!(e.to_string().starts_with("sync.parallelism:"), "{e}");
        let e = load(&BASE.replace("https://login.example.com", "login.example.com")).unwrap_err();
        assert!(e.to_string().contains("salesforce.auth.login_url") && e.to_string().contains("https://"), "{e}");
        let numeric = BASE.replace("${SECRET}", "8731942200561234");
        let e = load(&numeric).unwrap_err();
        assert!(!e.to_string().contains("8731942200561234") && e.to_string().contains("quotes"), "{e}");
        let e = load(&format!("{BASE}sync:\n  overlap: 5 minutes\n")).unwrap_err();
        assert!(e.to_string().contains("sync.overlap"), "{e}");
        let e = load(&format!("{BASE}sync:\n  objects:\n    Contact:\n      formula_snapshot_evry: 1h\n")).unwrap_err();
        assert!(e.to_string().contains("sync.objects.Contact"), "{e}");
        let e = load(&format!("{BASE}sync:\n  exclude: ['[']\n")).unwrap_err();
        assert!(e.to_string().starts_with("sync.exclude[0]:"), "{e}");
    }

    #[test]
    fn push_flows_are_validated_with_dotted_paths() {
        let flow = "query: SELECT a FROM account\n    object: Account\n    mode: upsert\n";
        let c = load(&format!("push:\n  tier:\n    {flow}    external_id: Tier_Key__c\n")).unwrap();
        assert_eq!(c.push["tier"].external_id.as_deref(), Some("Tier_Key__c"));
        // Checked without a salesforce section too (a config being written offline).
        let e = load(&format!("push:\n  tier:\n    {flow}")).unwrap_err();
        assert!(e.to_string().starts_with("push.tier.external_id:"), "{e}");
        let e = load(&format!("{BASE}push:\n  tier:\n    {flow}")).unwrap_err();
        assert!(e.to_string().starts_with("push.tier.external_id:"), "{e}");
        let e = load(&format!("push:\n  tier:\n    {flow}    external_id: K__c\n    bulk_treshold: 10\n")).unwrap_err();
        assert!(e.to_string().contains("push.tier") && e.to_string().contains("bulk_treshold"), "{e}");
        let e = load(&format!("push:\n  status:\n    {flow}    external_id: K__c\n")).unwrap_err();
        assert!(e.to_string().starts_with("push.status:") && e.to_string().contains("reserved"), "{e}");
        let e = load(&format!("push:\n  Tier:\n    {flow}    external_id: K__c\n  tier:\n    {flow}    external_id: K__c\n"))
            .unwrap_err();
        assert!(e.to_string().starts_with("push.tier:") && e.to_string().contains("case-insensitive"), "{e}");
    }

    #[test]
    fn patterns_select_objects_with_a_reason() {
        let p = SyncSettings::default().object_patterns().unwrap();
        assert!(p.check("Account").is_ok());
        assert_eq!(p.check("AccountFeed").unwrap_err(), "excluded by pattern '*Feed'");
        let only = Patterns::compile(&["Acc*".into()], &[], "x.").unwrap();
        assert!(only.check("account").is_ok());
        assert!(only.check("Contact").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("5 weeks").is_err());
    }
}
