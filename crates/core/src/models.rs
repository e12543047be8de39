//! The `models:` configuration section: SCD Type 2 dimensions built from several sources.
//!
//! ```yaml
//! models:
//!   dim_customer:
//!     key: [customer_id]
//!     surrogate_key: customer_sk          # default: the name without `dim_`, plus `_sk`
//!     dating: load_date                   # or source_time (lake history sources)
//!     compatibility: default              # or redshift-post
//!     columns: { effective: rec_eff_dt, expiry: rec_exp_dt }
//!     type1: [employer_name]              # overwritten on the current row, never versioned
//!     sources:
//!       - name: customer_master           # the first source is the primary one
//!         files: s3://landing/customer_master/
//!         types: { customer_id: bigint, row_audit_ts: timestamp }
//!         order_by: row_audit_ts
//!         extract: change_only            # or full
//!         columns: [first_name, last_name, employer_name]
//!       - name: customer_address
//!         files: s3://landing/customer_address/
//!         types: { customer_id: bigint, row_audit_ts: timestamp }
//!         order_by: row_audit_ts
//!         columns: [email_id, city, country]
//! ```
//!
//! These are plain data types with offline validation ([`ModelConfig::validate`]); the
//! `tidemark-models` crate runs them.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::config::ConfigError;

/// One dimension model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The business key: one or more columns of the primary source.
    pub key: Vec<String>,
    /// The surrogate key column (BIGINT).
    #[serde(default)]
    pub surrogate_key: Option<String>,
    #[serde(default)]
    pub dating: Dating,
    #[serde(default)]
    pub compatibility: Compatibility,
    /// Names of the dimension's own columns.
    #[serde(default)]
    pub columns: DimensionColumns,
    /// Attributes whose change makes a new row. Default: every source column not in `type1`.
    #[serde(default)]
    pub tracked: Option<Vec<String>>,
    /// Attributes overwritten on the current row without a new version.
    #[serde(default)]
    pub type1: Vec<String>,
    /// The first source is the primary one: it decides whether a key exists; the others are
    /// left-joined to it.
    pub sources: Vec<SourceConfig>,
}

/// How validity ranges are dated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dating {
    /// The run date starts a new row; the row it replaces ends the day before; open end
    /// 9999-12-31 (DATE columns).
    #[default]
    LoadDate,
    /// Each version's own `_version_at` (lake history sources; TIMESTAMP columns, half-open).
    SourceTime,
}

/// How the change hash is computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum Compatibility {
    /// NULL-safe and separator-safe: each value length-prefixed, NULL distinct from ''.
    #[default]
    #[serde(rename = "default")]
    Default,
    /// The Redshift post's `sha2(coalesce(a,'') || coalesce(b,'') …, 512)`.
    #[serde(rename = "redshift-post")]
    RedshiftPost,
}

/// Output column names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DimensionColumns {
    /// Start of validity (DATE in load-date mode, TIMESTAMP in source-time mode).
    pub effective: Option<String>,
    /// End of validity.
    pub expiry: Option<String>,
    pub current: String,
    pub hash: String,
}

impl Default for DimensionColumns {
    fn default() -> Self {
        DimensionColumns { effective: None, expiry: None, current: "is_current".into(), hash: "change_hash".into() }
    }
}

/// One source table of a model: landed files or a lake object.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Names the source in messages, the load ledger and state columns.
    pub name: String,
    /// A folder or `s3://` prefix of CSV or Parquet files (one prefix per source table).
    #[serde(default)]
    pub files: Option<String>,
    /// A synced object of the lake (`Contact`): its version history in a `source_time` model,
    /// its live state (a full extract whenever it changed) in a `load_date` one.
    #[serde(default)]
    pub object: Option<String>,
    /// `csv` or `parquet`; default: by each file's extension.
    #[serde(default)]
    pub format: Option<FileFormat>,
    #[serde(default)]
    pub csv: CsvDialect,
    /// Column types of CSV files (`bigint`, `int`, `double`, `boolean`, `date`, `timestamp`,
    /// `string`); unlisted columns are strings.
    #[serde(default)]
    pub types: BTreeMap<String, ColumnType>,
    /// The column ordering a key's rows (latest wins). Required for file sources.
    #[serde(default)]
    pub order_by: Option<String>,
    #[serde(default)]
    pub extract: ExtractKind,
    /// With `extract: change_only`: the column holding `I`, `U` or `D`.
    #[serde(default)]
    pub status_column: Option<String>,
    /// The attributes this source contributes to the dimension.
    pub columns: Vec<String>,
    /// For secondary sources: primary column → this source's column. Default: the business key
    /// on both sides.
    #[serde(default)]
    pub join: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Csv,
    Parquet,
}

/// What a file of a source holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtractKind {
    /// Only changed rows; absence means nothing. Deletes come from `status_column`.
    #[default]
    ChangeOnly,
    /// Every row of the source: a key missing from the newest extract is deleted.
    Full,
}

/// CSV dialect. An unquoted empty field is NULL, a quoted one the empty string.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsvDialect {
    pub delimiter: char,
    pub quote: char,
    /// Escape character inside quoted fields; default: a doubled quote.
    pub escape: Option<char>,
    pub header: bool,
    /// An unquoted field equal to this is NULL as well (e.g. `\N`).
    pub null: Option<String>,
}

impl Default for CsvDialect {
    fn default() -> Self {
        CsvDialect { delimiter: ',', quote: '"', escape: None, header: true, null: None }
    }
}

/// The column types a CSV source may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    String,
    Bigint,
    Int,
    Double,
    Boolean,
    Date,
    Timestamp,
}

impl ModelConfig {
    pub fn surrogate_key(&self, model: &str) -> String {
        self.surrogate_key.clone().unwrap_or_else(|| format!("{}_sk", model.strip_prefix("dim_").unwrap_or(model)))
    }

    pub fn effective_column(&self) -> String {
        self.columns.effective.clone().unwrap_or_else(|| "valid_from".into())
    }

    pub fn expiry_column(&self) -> String {
        self.columns.expiry.clone().unwrap_or_else(|| "valid_to".into())
    }

    /// Tracked attributes, in source order.
    pub fn tracked_columns(&self) -> Vec<String> {
        match &self.tracked {
            Some(t) => t.clone(),
            None => self.attribute_columns().into_iter().filter(|c| !self.type1.contains(c)).collect(),
        }
    }

    /// Every attribute the sources contribute, in source order.
    pub fn attribute_columns(&self) -> Vec<String> {
        self.sources.iter().flat_map(|s| s.columns.iter().cloned()).collect()
    }

    /// Checks the model offline; errors name `models.<name>.<field>`.
    pub fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let at = |field: &str| format!("models.{name}.{field}");
        if !is_identifier(name) {
            return Err(ConfigError::invalid(
                format!("models.{name}"),
                "a model name is letters, digits and _ (it names a table)",
            ));
        }
        if self.key.is_empty() {
            return Err(ConfigError::invalid(at("key"), "name at least one business key column"));
        }
        if self.sources.is_empty() {
            return Err(ConfigError::invalid(at("sources"), "name at least one source"));
        }
        let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
        let mut names = BTreeSet::new();
        for (i, source) in self.sources.iter().enumerate() {
            let path = format!("models.{name}.sources[{i}]");
            source.validate(&path, self, i == 0)?;
            if !names.insert(source.name.as_str()) {
                return Err(ConfigError::invalid(format!("{path}.name"), format!("'{}' names two sources", source.name)));
            }
            for column in &source.columns {
                if self.key.contains(column) {
                    return Err(ConfigError::invalid(
                        format!("{path}.columns"),
                        format!("'{column}' is the business key; list only attributes"),
                    ));
                }
                if let Some(first) = owner.insert(column, &source.name) {
                    return Err(ConfigError::invalid(
                        format!("{path}.columns"),
                        format!("'{column}' also comes from source '{first}': each attribute has one source"),
                    ));
                }
            }
        }
        let attributes = self.attribute_columns();
        for (field, list) in [("type1", &self.type1), ("tracked", self.tracked.as_ref().unwrap_or(&Vec::new()))] {
            if let Some(c) = list.iter().find(|c| !attributes.contains(c)) {
                return Err(ConfigError::invalid(at(field), format!("'{c}' is not a column of any source")));
            }
        }
        if let Some(c) = self.tracked.iter().flatten().find(|c| self.type1.contains(c)) {
            return Err(ConfigError::invalid(at("type1"), format!("'{c}' is also tracked: a column is tracked or type 1")));
        }
        if self.tracked_columns().is_empty() {
            return Err(ConfigError::invalid(at("tracked"), "no tracked attribute: a dimension needs at least one"));
        }
        let own = [
            self.surrogate_key(name),
            self.effective_column(),
            self.expiry_column(),
            self.columns.current.clone(),
            self.columns.hash.clone(),
        ];
        let mut seen: BTreeSet<&str> = self.key.iter().map(String::as_str).collect();
        for c in own.iter().chain(attributes.iter()) {
            if !is_identifier(c) {
                return Err(ConfigError::invalid(at("columns"), format!("'{c}' is not a column name (letters, digits and _)")));
            }
            if c.starts_with('_') && own.contains(c) {
                return Err(ConfigError::invalid(at("columns"), format!("'{c}': names starting with _ are Tidemark's")));
            }
            if !seen.insert(c) {
                return Err(ConfigError::invalid(at("columns"), format!("'{c}' names two columns of the dimension")));
            }
        }
        let lake_sources = self.sources.iter().filter(|s| s.object.is_some()).count();
        if self.dating == Dating::SourceTime && lake_sources != self.sources.len() {
            return Err(ConfigError::invalid(
                at("dating"),
                "source_time dating needs lake sources (object:) only: files carry no version time",
            ));
        }
        if self.dating == Dating::SourceTime {
            if self.key.len() != 1 {
                return Err(ConfigError::invalid(at("key"), "source_time models key on one column (the primary object's Id)"));
            }
            for (i, s) in self.sources.iter().enumerate().skip(1) {
                if s.join.len() > 1 {
                    return Err(ConfigError::invalid(
                        format!("models.{name}.sources[{i}].join"),
                        "one column: the primary's reference field → this object's Id",
                    ));
                }
            }
        }
        if self.dating == Dating::LoadDate {
            if let Some(i) = self.sources.iter().position(|s| s.object.is_some() && s.extract == ExtractKind::Full) {
                return Err(ConfigError::invalid(
                    format!("models.{name}.sources[{i}].extract"),
                    "a lake object is read as its live state, a full extract already: leave extract out",
                ));
            }
            for (i, s) in self.sources.iter().enumerate().skip(1) {
                if !s.join.is_empty() && s.join.iter().any(|(p, c)| !self.key.contains(p) || p != c) {
                    return Err(ConfigError::invalid(
                        format!("models.{name}.sources[{i}].join"),
                        "load_date models join every source on the business key; other joins need dating: source_time",
                    ));
                }
            }
        }
        Ok(())
    }
}

impl SourceConfig {
    fn validate(&self, path: &str, model: &ModelConfig, primary: bool) -> Result<(), ConfigError> {
        if !is_identifier(&self.name) {
            return Err(ConfigError::invalid(format!("{path}.name"), "letters, digits and _"));
        }
        match (&self.files, &self.object) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(path, "a source is files: or object:, not both"));
            }
            (None, None) => {
                return Err(ConfigError::invalid(path, "name files: (a folder or s3:// prefix) or object: (a lake object)"));
            }
            (Some(f), None) if f.trim().is_empty() => return Err(ConfigError::invalid(format!("{path}.files"), "empty")),
            _ => {}
        }
        if self.files.is_some() {
            if model.dating == Dating::LoadDate && self.order_by.is_none() {
                return Err(ConfigError::invalid(
                    format!("{path}.order_by"),
                    "required for file sources: the column (e.g. row_audit_ts) that says which of a key's rows is latest",
                ));
            }
        } else {
            for (field, set) in [
                ("order_by", self.order_by.is_some()),
                ("status_column", self.status_column.is_some()),
                ("format", self.format.is_some()),
                ("types", !self.types.is_empty()),
            ] {
                if set {
                    return Err(ConfigError::invalid(
                        format!("{path}.{field}"),
                        "only for file sources: a lake object orders its versions by _version_at and records its deletes",
                    ));
                }
            }
        }
        if self.status_column.is_some() && self.extract == ExtractKind::Full {
            return Err(ConfigError::invalid(
                format!("{path}.status_column"),
                "a full extract signals deletes by absence; a status column is for change_only extracts",
            ));
        }
        if primary && !self.join.is_empty() {
            return Err(ConfigError::invalid(format!("{path}.join"), "the primary (first) source is what the others join to"));
        }
        if let Some(c) = [&self.order_by, &self.status_column].into_iter().flatten().find(|c| self.columns.contains(c)) {
            return Err(ConfigError::invalid(
                format!("{path}.columns"),
                format!("'{c}' orders or classifies rows; it is not an attribute"),
            ));
        }
        let d = &self.csv;
        if d.delimiter == d.quote || d.delimiter == '\n' || d.delimiter == '\r' || !d.delimiter.is_ascii() || !d.quote.is_ascii()
        {
            return Err(ConfigError::invalid(
                format!("{path}.csv"),
                "delimiter and quote must be different ASCII characters, not a line break",
            ));
        }
        if d.escape.is_some_and(|e| !e.is_ascii()) {
            return Err(ConfigError::invalid(format!("{path}.csv.escape"), "must be an ASCII character"));
        }
        if !d.header {
            return Err(ConfigError::invalid(
                format!("{path}.csv.header"),
                "files without a header row are not supported: columns are matched by name",
            ));
        }
        Ok(())
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        models: BTreeMap<String, ModelConfig>,
    }

    fn parse(yaml: &str) -> Result<BTreeMap<String, ModelConfig>, ConfigError> {
        let yaml = format!("models:\n{}", yaml.lines().map(|l| format!("  {l}\n")).collect::<String>());
        let models = crate::config::load_str::<Doc>(&yaml, &|_| None)?.models;
        for (name, m) in &models {
            m.validate(name)?;
        }
        Ok(models)
    }

    const POST: &str = r#"
dim_customer:
  key: [customer_id]
  columns: { effective: rec_eff_dt, expiry: rec_exp_dt }
  sources:
    - name: customer_master
      files: landing/customer_master
      types: { customer_id: bigint, row_audit_ts: timestamp }
      order_by: row_audit_ts
      columns: [first_name, last_name, employer_name]
    - name: customer_address
      files: landing/customer_address
      types: { customer_id: bigint, row_audit_ts: timestamp }
      order_by: row_audit_ts
      columns: [email_id, city, country]
"#;

    #[test]
    fn the_post_model_parses_with_defaults() {
        let models = parse(POST).unwrap();
        let m = &models["dim_customer"];
        assert_eq!(m.surrogate_key("dim_customer"), "customer_sk");
        assert_eq!(m.tracked_columns(), ["first_name", "last_name", "employer_name", "email_id", "city", "country"]);
        assert_eq!(m.dating, Dating::LoadDate);
        assert_eq!(m.compatibility, Compatibility::Default);
        assert_eq!(m.sources[0].csv, CsvDialect::default());
    }

    #[test]
    fn errors_name_the_dotted_field() {
        let err = |yaml: String| parse(&yaml).unwrap_err().to_string();
        assert!(
            err(POST.replace("order_by: row_audit_ts\n      columns: [first_name", "columns: [first_name"))
                .starts_with("models.dim_customer.sources[0].order_by:")
        );
        assert!(err(POST.replace("[email_id, city", "[first_name, city")).contains("also comes from source 'customer_master'"));
        assert!(
            err(POST.replace("  key: [customer_id]", "  key: [customer_id]\n  surprise: 1")).contains("unknown field `surprise`")
        );
        assert!(
            err(POST.replace(
                "bigint, row_audit_ts: timestamp }\n      order_by: row_audit_ts\n      columns: [first",
                "int8 }\n      order_by: row_audit_ts\n      columns: [first"
            ))
            .starts_with("models.dim_customer.sources[0].types.customer_id:")
        );
        assert!(err(format!("{POST}  type1: [nope]\n")).starts_with("models.dim_customer.type1: 'nope'"));
        assert!(
            err(POST.replace("dating", "x").replace("  key:", "  dating: source_time\n  key:"))
                .starts_with("models.dim_customer.dating:")
        );
    }
}
