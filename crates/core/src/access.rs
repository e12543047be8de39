//! Who may read what through `tidemark serve-sql`: users, roles, grants on relations, column
//! rules and row filters (the `sql:` section's `users` and `roles`).
//!
//! ```yaml
//! sql:
//!   users:
//!     alice: {password: "${TM_SQL_ALICE}", role: analyst, attributes: {region: EMEA}}
//!     root:  {password: "${TM_SQL_ROOT}", role: admin}
//!   roles:
//!     admin: {objects: ["*", "*.*"], marts: ["*"], internal: ["*"]}
//!     analyst:
//!       objects: [account, contact, app.orders]   # <o>, <o>_history, <o>_scd2, as_of('<o>', …)
//!       marts: [dim_customer]                     # <mart>, <mart>_current
//!       internal: []                              # push_runs, push_<flow>_errors, restore_*, query_log
//!       columns:                                  # allow | deny | null | hash | mask:<pattern>
//!         account: {phone: "mask:last4", annualrevenue: deny}
//!         "*": {"*ssn*": deny}
//!       rows:
//!         account: "region__c = user_attr('region') OR ownerid = session_user"
//! ```
//!
//! - **Grants** name tables, globs allowed (`*`, `?`, case-insensitive). An object pattern with a
//!   dot (`app.*`) names a source's tables, one without names Salesforce objects, so `*` alone
//!   does not grant the other sources.
//! - **Column rules** match a table and a column by name (globs allowed). A column named outright
//!   beats a glob; among the rules that match either way, the most restrictive wins
//!   (deny, then null, hash, mask, allow), so overlapping globs fail closed. A column no rule
//!   names is allowed.
//! - **Row filters** are SQL predicates over the relation's columns. `user_attr('k')` is the
//!   session user's attribute `k` and `session_user` its name; every filter matching a table
//!   applies (they are AND-ed). The SQL layer parses them (this crate has no SQL parser) and
//!   refuses subqueries; here the attributes they use are checked to exist for each user.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use globset::GlobMatcher;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::ConfigError;
use crate::governance::{FieldPolicy, HashKey, MaskPattern, glob, is_glob};

/// One login of the endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    #[serde(deserialize_with = "crate::config::secret")]
    pub password: SecretString,
    pub role: String,
    /// Values a row filter reads with `user_attr('<name>')`.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// What a role may read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// Salesforce objects (`account`) and sources' tables (`app.orders`).
    #[serde(default)]
    pub objects: Vec<String>,
    /// Dimension models' tables.
    #[serde(default)]
    pub marts: Vec<String>,
    /// Tidemark's own tables, by SQL name.
    #[serde(default)]
    pub internal: Vec<String>,
    /// Table pattern → column pattern → rule.
    #[serde(default)]
    pub columns: BTreeMap<String, BTreeMap<String, ColumnRule>>,
    /// Table pattern → SQL predicate.
    #[serde(default)]
    pub rows: BTreeMap<String, String>,
}

/// What a role sees of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnRule {
    Allow,
    /// The column is absent: not in `SELECT *`, not in the catalogs, not nameable.
    Deny,
    /// Every value null.
    Null,
    /// Keyed HMAC-SHA-256 (`governance.hash_key`), as the ingestion policy computes it.
    Hash,
    Mask(MaskPattern),
}

impl ColumnRule {
    /// Higher is more restrictive.
    fn restriction(self) -> u8 {
        match self {
            ColumnRule::Deny => 4,
            ColumnRule::Null => 3,
            ColumnRule::Hash => 2,
            ColumnRule::Mask(_) => 1,
            ColumnRule::Allow => 0,
        }
    }

    /// The ingestion policy computing the same values (`None` for allow and deny).
    pub fn policy(self) -> Option<FieldPolicy> {
        match self {
            ColumnRule::Null => Some(FieldPolicy::Null),
            ColumnRule::Hash => Some(FieldPolicy::Hash),
            ColumnRule::Mask(m) => Some(FieldPolicy::Mask(m)),
            ColumnRule::Allow | ColumnRule::Deny => None,
        }
    }

    pub fn name(self) -> String {
        match self {
            ColumnRule::Allow => "allow".into(),
            ColumnRule::Deny => "deny".into(),
            other => other.policy().map(FieldPolicy::name).unwrap_or_default(),
        }
    }
}

impl<'de> Deserialize<'de> for ColumnRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ColumnRule, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Word(Option<String>),
            Mask { mask: String },
        }
        let text = match Written::deserialize(d)? {
            Written::Word(None) => return Ok(ColumnRule::Null),
            Written::Word(Some(text)) => text,
            Written::Mask { mask } => format!("mask:{mask}"),
        };
        match text.trim() {
            "allow" => Ok(ColumnRule::Allow),
            "deny" => Ok(ColumnRule::Deny),
            "exclude" => Err(serde::de::Error::custom("a column a role must not see is `deny`")),
            other => match FieldPolicy::parse(other) {
                Ok(FieldPolicy::Hash) => Ok(ColumnRule::Hash),
                Ok(FieldPolicy::Mask(m)) => Ok(ColumnRule::Mask(m)),
                Ok(_) => Ok(ColumnRule::Null),
                Err(_) => Err(serde::de::Error::custom(format!(
                    "unknown rule '{other}' (rules: allow, deny, null, hash, mask:<pattern> with a pattern of {})",
                    MaskPattern::ALL.map(MaskPattern::name).join(", ")
                ))),
            },
        }
    }
}

/// Which kind of relation a grant covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// A Salesforce object (`account`) or a source's table (`app.orders`), in every form.
    Object,
    Mart,
    /// Tidemark's own tables (`push_runs`, `query_log`, …), by SQL name.
    Internal,
}

struct Pattern {
    text: String,
    matcher: GlobMatcher,
}

impl Pattern {
    fn new(text: &str, path: &str) -> Result<Pattern, ConfigError> {
        Ok(Pattern { text: text.to_owned(), matcher: glob(text, path)? })
    }

    /// `app.*` names sources' tables, `*` Salesforce objects: the dot must agree.
    fn matches_object(&self, table: &str) -> bool {
        self.text.contains('.') == table.contains('.') && self.matcher.is_match(table)
    }

    fn matches(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }

    /// Whether this object pattern may name a table of `source` (`app.*`, `*.orders`).
    fn names_source(&self, source: &str) -> bool {
        match self.text.split_once('.') {
            Some((pattern, _)) => globset::Glob::new(pattern).is_ok_and(|g| g.compile_matcher().is_match(source)),
            None => false,
        }
    }
}

struct ColumnRuleEntry {
    table: Pattern,
    column: Pattern,
    exact: bool,
    rule: ColumnRule,
}

/// Which rule applies to a column, and where it is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDecision {
    pub rule: ColumnRule,
    /// The rule's dotted path (`sql.roles.analyst.columns.account.phone`).
    pub path: String,
    /// The rule names the column outright (not a glob).
    pub exact: bool,
}

/// A row filter as configured: the SQL layer parses `sql`; errors name `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFilter {
    pub sql: String,
    /// The dotted configuration path (`sql.roles.analyst.rows.account`).
    pub path: String,
}

/// A compiled role.
pub struct Role {
    name: String,
    objects: Vec<Pattern>,
    marts: Vec<Pattern>,
    internal: Vec<Pattern>,
    columns: Vec<ColumnRuleEntry>,
    rows: Vec<(Pattern, RowFilter)>,
}

impl fmt::Debug for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Role").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Role {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the role may read `table` (lower case: `account`, `app.orders`, a mart, an
    /// internal table's SQL name).
    pub fn grants(&self, kind: TableKind, table: &str) -> bool {
        match kind {
            TableKind::Object => self.objects.iter().any(|p| p.matches_object(table)),
            TableKind::Mart => self.marts.iter().any(|p| p.matches(table)),
            TableKind::Internal => self.internal.iter().any(|p| p.matches(table)),
        }
    }

    /// Whether the role may read any table of the source `source` (lower case): a source none
    /// of whose tables is granted is not even listed as a schema.
    pub fn grants_source(&self, source: &str) -> bool {
        self.objects.iter().any(|p| p.names_source(source))
    }

    /// The rule of `column` of `table`, with the dotted path of the rule that decided it and
    /// whether that rule names the column outright; `None` when no rule names the column
    /// (allowed).
    pub fn column_rule(&self, table: &str, column: &str) -> Option<ColumnDecision> {
        let matching: Vec<&ColumnRuleEntry> =
            self.columns.iter().filter(|r| r.table.matches(table) && r.column.matches(column)).collect();
        let exact: Vec<&ColumnRuleEntry> = matching.iter().copied().filter(|r| r.exact).collect();
        let chosen = if exact.is_empty() { matching } else { exact };
        chosen.into_iter().max_by_key(|r| r.rule.restriction()).map(|r| ColumnDecision {
            rule: r.rule,
            path: format!("sql.roles.{}.columns.{}.{}", self.name, r.table.text, r.column.text),
            exact: r.exact,
        })
    }

    /// Whether any column rule or row filter may apply to `table`.
    pub fn restricts(&self, table: &str) -> bool {
        self.columns.iter().any(|r| r.table.matches(table) && r.rule != ColumnRule::Allow)
            || self.rows.iter().any(|(p, _)| p.matches(table))
    }

    /// The row filters of `table`, all of which apply.
    pub fn row_filters(&self, table: &str) -> Vec<&RowFilter> {
        self.rows.iter().filter(|(p, _)| p.matches(table)).map(|(_, f)| f).collect()
    }

    /// Every row filter of the role, whatever its table.
    pub fn all_row_filters(&self) -> impl Iterator<Item = &RowFilter> {
        self.rows.iter().map(|(_, f)| f)
    }

    fn granted_anyhow(&self, table: &str) -> bool {
        self.grants(TableKind::Object, table) || self.grants(TableKind::Mart, table) || self.grants(TableKind::Internal, table)
    }
}

/// A user as the SQL layer sees it once logged in.
#[derive(Debug)]
pub struct Principal {
    pub user: String,
    pub role: Arc<Role>,
    attributes: BTreeMap<String, String>,
}

impl Principal {
    /// The user's attribute `name` (`user_attr('name')`).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
}

/// The compiled `users` and `roles`.
pub struct Access {
    principals: BTreeMap<String, Arc<Principal>>,
    passwords: BTreeMap<String, SecretString>,
    key: Option<Arc<HashKey>>,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Access").field("users", &self.principals.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

impl Access {
    /// Compiles and checks the sections; `key` is `governance.hash_key`, which the `hash` rule
    /// needs. Errors name the dotted path of the field at fault.
    pub fn compile(
        users: &BTreeMap<String, UserConfig>,
        roles: &BTreeMap<String, RoleConfig>,
        key: Option<Arc<HashKey>>,
    ) -> Result<Access, ConfigError> {
        let mut compiled = BTreeMap::new();
        for (name, config) in roles {
            compiled.insert(name.clone(), Arc::new(compile_role(name, config, key.is_some())?));
        }
        let mut principals = BTreeMap::new();
        let mut passwords = BTreeMap::new();
        for (user, config) in users {
            if user.is_empty() {
                return Err(ConfigError::invalid("sql.users", "a user name must not be empty"));
            }
            if config.password.expose_secret().is_empty() {
                return Err(ConfigError::invalid(format!("sql.users.{user}.password"), "must not be empty"));
            }
            let Some(role) = compiled.get(&config.role) else {
                let known: Vec<&str> = compiled.keys().map(String::as_str).collect();
                return Err(ConfigError::invalid(
                    format!("sql.users.{user}.role"),
                    format!("unknown role '{}' (roles: {})", config.role, known.join(", ")),
                ));
            };
            for (_, filter) in &role.rows {
                for attribute in attributes_used(&filter.sql) {
                    if !config.attributes.contains_key(&attribute) {
                        return Err(ConfigError::invalid(
                            format!("sql.users.{user}.attributes"),
                            format!("{} reads user_attr('{attribute}'), which user {user} does not set", filter.path),
                        ));
                    }
                }
            }
            let principal = Principal { user: user.clone(), role: role.clone(), attributes: config.attributes.clone() };
            principals.insert(user.clone(), Arc::new(principal));
            passwords.insert(user.clone(), config.password.clone());
        }
        Ok(Access { principals, passwords, key })
    }

    pub fn principal(&self, user: &str) -> Option<&Arc<Principal>> {
        self.principals.get(user)
    }

    pub fn principals(&self) -> impl Iterator<Item = &Arc<Principal>> {
        self.principals.values()
    }

    /// Each user's password, for the SCRAM verifier.
    pub fn passwords(&self) -> &BTreeMap<String, SecretString> {
        &self.passwords
    }

    /// The key of the `hash` rule.
    pub fn hash_key(&self) -> Option<&Arc<HashKey>> {
        self.key.as_ref()
    }
}

fn compile_role(name: &str, config: &RoleConfig, has_key: bool) -> Result<Role, ConfigError> {
    let path = format!("sql.roles.{name}");
    let patterns = |list: &[String], field: &str| -> Result<Vec<Pattern>, ConfigError> {
        list.iter().enumerate().map(|(i, p)| Pattern::new(&p.to_ascii_lowercase(), &format!("{path}.{field}[{i}]"))).collect()
    };
    let mut role = Role {
        name: name.to_owned(),
        objects: patterns(&config.objects, "objects")?,
        marts: patterns(&config.marts, "marts")?,
        internal: patterns(&config.internal, "internal")?,
        columns: Vec::new(),
        rows: Vec::new(),
    };
    for (table, columns) in &config.columns {
        let table_path = format!("{path}.columns.{table}");
        check_granted(&role, table, &table_path)?;
        for (column, rule) in columns {
            let column_path = format!("{table_path}.{column}");
            if *rule == ColumnRule::Hash && !has_key {
                return Err(ConfigError::invalid(
                    column_path,
                    "the hash rule needs governance.hash_key (e.g. hash_key: ${TIDEMARK_HASH_KEY})",
                ));
            }
            role.columns.push(ColumnRuleEntry {
                table: Pattern::new(&table.to_ascii_lowercase(), &table_path)?,
                column: Pattern::new(&column.to_ascii_lowercase(), &column_path)?,
                exact: !is_glob(column),
                rule: *rule,
            });
        }
    }
    for (table, sql) in &config.rows {
        let row_path = format!("{path}.rows.{table}");
        check_granted(&role, table, &row_path)?;
        if sql.trim().is_empty() {
            return Err(ConfigError::invalid(row_path, "an empty row filter: write a predicate, or remove the entry"));
        }
        let filter = RowFilter { sql: sql.clone(), path: row_path.clone() };
        role.rows.push((Pattern::new(&table.to_ascii_lowercase(), &row_path)?, filter));
    }
    Ok(role)
}

/// A rule for a table named outright must be for a table the role may read.
fn check_granted(role: &Role, table: &str, path: &str) -> Result<(), ConfigError> {
    if is_glob(table) || role.granted_anyhow(&table.to_ascii_lowercase()) {
        return Ok(());
    }
    Err(ConfigError::invalid(path, format!("role {} is not granted '{table}': grant it, or remove the rule", role.name)))
}

/// The attribute names `user_attr('…')` calls in `sql` read (quotes doubled inside a name are
/// not supported: names are identifiers).
pub fn attributes_used(sql: &str) -> Vec<String> {
    let lower = sql.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut rest = lower.as_str();
    let mut offset = 0;
    while let Some(at) = rest.find("user_attr") {
        let after = &sql[offset + at + "user_attr".len()..];
        let trimmed = after.trim_start();
        if let Some(args) = trimmed.strip_prefix('(') {
            let args = args.trim_start();
            if let Some(quoted) = args.strip_prefix('\'')
                && let Some((name, _)) = quoted.split_once('\'')
            {
                found.push(name.to_owned());
            }
        }
        offset += at + "user_attr".len();
        rest = &lower[offset..];
    }
    found
}

/// `sql.tls`: the endpoint's certificate chain and key (PEM).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Refuse clients that do not use TLS. Always so beyond loopback; on loopback the default.
    #[serde(default)]
    pub required: Option<bool>,
}

/// Where the query log goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryLogTarget {
    /// `<lake>/_tidemark/query_log`, a Delta table.
    #[default]
    Lake,
    Off,
}

/// `sql.query_log`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryLogConfig {
    #[serde(default)]
    pub to: QueryLogTarget,
    /// How often records are appended (each append is a commit).
    #[serde(default = "default_flush", deserialize_with = "crate::config::duration")]
    pub flush_every: std::time::Duration,
}

impl Default for QueryLogConfig {
    fn default() -> QueryLogConfig {
        QueryLogConfig { to: QueryLogTarget::Lake, flush_every: default_flush() }
    }
}

fn default_flush() -> std::time::Duration {
    std::time::Duration::from_secs(30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sections {
        #[serde(default)]
        users: BTreeMap<String, UserConfig>,
        #[serde(default)]
        roles: BTreeMap<String, RoleConfig>,
    }

    fn compile(yaml: &str) -> Result<Access, ConfigError> {
        let s: Sections = crate::config::load_str(yaml, &|v| (v == "PW").then(|| "pw".to_owned()))?;
        Access::compile(&s.users, &s.roles, None)
    }

    const ROLES: &str = r#"
users:
  alice: {password: "${PW}", role: analyst, attributes: {industry: Technology}}
  root: {password: "${PW}", role: admin}
roles:
  admin: {objects: ["*", "*.*"], marts: ["*"], internal: ["*"]}
  analyst:
    objects: [account, Contact, "app.*"]
    marts: [dim_*]
    columns:
      account: {phone: "mask:last4", annualrevenue: deny, "*revenue*": allow}
      "*": {"*ssn*": deny, "*ssn_note": {mask: initial}, email: allow}
      contact: {email: "mask:email"}
    rows:
      account: "industry = user_attr('industry')"
"#;

    #[test]
    fn grants_cover_objects_sources_marts_and_internal_tables_apart() {
        let access = compile(ROLES).unwrap();
        let analyst = &access.principal("alice").unwrap().role;
        assert!(analyst.grants(TableKind::Object, "account"));
        assert!(analyst.grants(TableKind::Object, "contact"), "patterns are case-insensitive");
        assert!(analyst.grants(TableKind::Object, "app.orders"));
        assert!(analyst.grants_source("app") && !analyst.grants_source("other"));
        assert!(!analyst.grants(TableKind::Object, "opportunity"));
        assert!(!analyst.grants(TableKind::Object, "other.orders"));
        assert!(analyst.grants(TableKind::Mart, "dim_customer"));
        assert!(!analyst.grants(TableKind::Mart, "account"), "a mart grant is not an object grant");
        assert!(!analyst.grants(TableKind::Internal, "push_runs"));
        let admin = &access.principal("root").unwrap().role;
        assert!(admin.grants(TableKind::Object, "opportunity") && admin.grants(TableKind::Object, "app.orders"));
        assert!(admin.grants(TableKind::Internal, "query_log"));
        // `*` alone is Salesforce's objects: sources are granted by a dotted pattern.
        let s: Sections = crate::config::load_str("roles: {r: {objects: ['*']}}", &|_| None).unwrap();
        let only = Access::compile(&s.users, &s.roles, None).unwrap();
        assert!(!compile_role("r", &s.roles["r"], false).unwrap().grants(TableKind::Object, "app.orders"));
        assert!(only.principals().next().is_none());
    }

    #[test]
    fn an_exact_column_beats_globs_and_overlapping_globs_fail_closed() {
        let access = compile(ROLES).unwrap();
        let analyst = &access.principal("alice").unwrap().role;
        let rule = |t: &str, c: &str| analyst.column_rule(t, c).map(|d| d.rule);
        assert_eq!(rule("account", "phone"), Some(ColumnRule::Mask(MaskPattern::Last4)));
        assert_eq!(rule("account", "annualrevenue"), Some(ColumnRule::Deny), "exact deny beats the allow glob");
        assert_eq!(rule("account", "expectedrevenue"), Some(ColumnRule::Allow));
        assert_eq!(rule("account", "ssn_note"), Some(ColumnRule::Deny), "among globs the most restrictive wins");
        assert_eq!(rule("contact", "email"), Some(ColumnRule::Mask(MaskPattern::Email)), "exact under both: most restrictive");
        assert_eq!(rule("account", "name"), None);
        let decision = analyst.column_rule("account", "phone").unwrap();
        assert_eq!(decision.path, "sql.roles.analyst.columns.account.phone");
        assert!(decision.exact && !analyst.column_rule("account", "ssn_note").unwrap().exact);
        assert!(analyst.restricts("account") && analyst.restricts("contact") && analyst.restricts("app.orders"));
        assert_eq!(analyst.row_filters("account").len(), 1);
        assert!(analyst.row_filters("contact").is_empty());
        assert_eq!(access.principal("alice").unwrap().attribute("industry"), Some("Technology"));
    }

    #[test]
    fn errors_name_the_field_at_fault() {
        let cases = [
            ("users: {a: {password: '${PW}', role: nobody}}\nroles: {r: {}}", "sql.users.a.role", "unknown role 'nobody'"),
            ("users: {a: {password: '', role: r}}\nroles: {r: {}}", "sql.users.a.password", "empty"),
            ("roles: {r: {objects: ['[a']}}", "sql.roles.r.objects[0]", ""),
            ("roles: {r: {objects: [account], columns: {contact: {email: deny}}}}", "sql.roles.r.columns.contact", "not granted"),
            (
                "roles: {r: {objects: [account], columns: {account: {email: hash}}}}",
                "sql.roles.r.columns.account.email",
                "hash_key",
            ),
            ("roles: {r: {objects: [account], rows: {opportunity: 'x = 1'}}}", "sql.roles.r.rows.opportunity", "not granted"),
            ("roles: {r: {objects: [account], rows: {account: ' '}}}", "sql.roles.r.rows.account", "empty"),
            (
                "users: {a: {password: '${PW}', role: r}}\nroles: {r: {objects: [account], rows: {account: \"x = user_attr( 'region')\"}}}",
                "sql.users.a.attributes",
                "user_attr('region')",
            ),
        ];
        for (yaml, path, words) in cases {
            match compile(yaml) {
                Err(ConfigError::Invalid { path: p, message }) => {
                    assert_eq!(p, path, "{yaml}: {message}");
                    assert!(message.contains(words), "{yaml}: {message}");
                }
                other => panic!("{yaml}: expected an error at {path}, got {other:?}"),
            }
        }
        let bad = crate::config::load_str::<Sections>("roles: {r: {columns: {a: {b: exclude}}}}", &|_| None);
        assert!(matches!(bad, Err(ConfigError::Invalid { path, .. }) if path == "roles.r.columns.a.b"));
    }

    #[test]
    fn attributes_are_found_in_any_spacing_and_case() {
        assert_eq!(attributes_used("a = USER_ATTR('x') OR b = user_attr ( 'y' )"), ["x", "y"]);
        assert!(attributes_used("session_user = owner").is_empty());
    }

    #[test]
    fn debug_never_shows_a_password() {
        let access = compile(ROLES).unwrap();
        assert!(!format!("{access:?}").contains("pw\""));
        let s: Sections = crate::config::load_str(ROLES, &|_| Some("hunter2-secret".to_owned())).unwrap();
        assert!(!format!("{:?}", s.users).contains("hunter2"));
    }
}
