//! Statements that register the lake's history tables, and the live and SCD2 views over them,
//! in outside engines (`tidemark catalog ddl --engine …`), so DuckDB, Athena, Trino, Spark and
//! Redshift Spectrum see the same three relations per object as `tidemark sql`:
//!
//! - `<t>_history`: every version, every column renamed to lower case, in table order;
//! - `<t>`: each record's last version in [`crate::names::VERSION_ORDER`], left out when it is a delete;
//!   the record's columns, then `_version_at`. A source's table (`<source>_<table>`) is keyed by
//!   `_key` and orders by `_lsn` after `_version_at`;
//! - `<t>_scd2`: one row per non-delete version, `valid_from` its `_version_at`, `valid_to` the
//!   next version's `_version_at` (a delete closes the window; [`END_OF_TIME`] when nothing
//!   followed), `is_current` when nothing followed. Ties give kept zero-length windows.
//!
//! Marts (dimension models' tables) are registered the way history tables are, as `<m>`, plus
//! the view `<m>_current` (see `ddl/mart.rs`).
//!
//! The view bodies are one formulation for every engine (a window over the history relation)
//! written through a small `Dialect`: quoting, literals and how a table is registered differ,
//! the semantics must not. Only Redshift Spectrum cannot read the Delta log itself: it reads the
//! symlink manifests [`write_symlink_manifests`] and [`write_mart_manifests`] write.
//!
//! DuckDB formulation of `<t>` (4 M versions of 1 M ids, 13 columns, from Parquet, DuckDB 1.5.5,
//! 2 threads, best of 3, result hashed; the scan alone 1.1 s): `row_number() … = 1` in a
//! subquery 2.7 s, the same with `QUALIFY` 3.2 s, `lead(…) IS NULL` 2.8 s, `arg_max` of the
//! columns by the version key 3.8 s (of the whole row 4.8 s), `DISTINCT ON` 8.9 s (busier run).
//! The subquery is kept: plain SQL every other engine plans well, so all engines run one text.

use std::str::FromStr;

use tidemark_lake::LakeError;
use tidemark_lake::arrow::datatypes::{DataType, SchemaRef};
use tidemark_lake::columns::{DELETED, ID, INGESTED_AT, VERSION_AT};
use tidemark_lake::deltalake::ObjectStoreError;
use url::Url;

mod definition;
mod header;
mod manifest;
mod mart;
mod redshift;
pub use definition::{mart_current_definition, view_definition};
pub use manifest::{MANIFEST_PATH, Manifest, write_mart_manifests, write_symlink_manifests};
pub use mart::{DdlMart, ddl_marts};

use header::header;
#[cfg(test)]
use header::lake_root;
use mart::{PreparedMart, mart_statements};
use redshift::redshift_external_table;

use crate::names::{
    END_OF_TIME, HISTORY_SUFFIX, IS_CURRENT, SCD2_SUFFIX, VALID_FROM, VALID_TO, column_name, is_metadata, table_name,
};

/// An outside engine [`ddl`] writes statements for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    DuckDb,
    Athena,
    Trino,
    Spark,
    RedshiftSpectrum,
}

impl Engine {
    pub const ALL: [Engine; 5] = [Engine::DuckDb, Engine::Athena, Engine::Trino, Engine::Spark, Engine::RedshiftSpectrum];

    /// The name used on the command line (`duckdb`, `redshift-spectrum`, …).
    pub fn name(self) -> &'static str {
        match self {
            Engine::DuckDb => "duckdb",
            Engine::Athena => "athena",
            Engine::Trino => "trino",
            Engine::Spark => "spark",
            Engine::RedshiftSpectrum => "redshift-spectrum",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Engine::DuckDb => "DuckDB",
            Engine::Athena => "Amazon Athena",
            Engine::Trino => "Trino",
            Engine::Spark => "Apache Spark",
            Engine::RedshiftSpectrum => "Amazon Redshift Spectrum",
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Engine {
    type Err = DdlError;

    /// Parses a command-line name, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Engine, DdlError> {
        Engine::ALL
            .into_iter()
            .find(|e| e.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| DdlError::UnknownEngine { name: s.to_owned() })
    }
}

fn engine_names() -> String {
    Engine::ALL.map(Engine::name).join(", ")
}

/// Errors of [`ddl`] and [`write_symlink_manifests`].
#[derive(Debug, thiserror::Error)]
pub enum DdlError {
    #[error("unknown engine '{name}': expected one of {}", engine_names())]
    UnknownEngine { name: String },
    #[error("table {object} has no {column} column, so it is not a Tidemark history table")]
    MissingColumn { object: String, column: String },
    #[error("table {object}: column {column} has type {data_type}, which {engine} external tables cannot declare")]
    UnsupportedType { object: String, column: String, data_type: String, engine: Engine },
    #[error("{object} has no history table in the lake (at {location})")]
    NoTable { object: String, location: String },
    #[error("mart {mart} has no table in the lake (at {location})")]
    NoMart { mart: String, location: String },
    #[error(
        "mart {mart} is not a dimension model's table: it is partitioned by {partition_columns}, not by one BOOLEAN current-row flag"
    )]
    NotAMart { mart: String, partition_columns: String },
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("writing {manifest}: {source}")]
    Manifest {
        manifest: String,
        #[source]
        source: Box<ObjectStoreError>,
    },
}

/// One history table to register.
#[derive(Debug, Clone)]
pub struct DdlTable {
    /// The Salesforce API name (`Invoice__c`), or `<source>_<table>` for a source's table
    /// (the relations' names: an engine's schema is one namespace).
    pub object: String,
    /// The Delta table root (`s3://bucket/lake/objects/invoice__c/`, `file:///…/objects/invoice__c/`).
    pub location: Url,
    /// The physical Arrow schema of the history table (metadata columns first).
    pub schema: SchemaRef,
}

/// Where and how the relations are created. Every field has a working default.
#[derive(Debug, Clone, Default)]
pub struct DdlOptions {
    /// Database/schema the relations are created in; the engine's current one when `None`,
    /// except Trino (`register_table` needs one: `default`) and Redshift (late-binding views
    /// must name their schemas: `public`).
    pub schema: Option<String>,
    /// Trino: the Delta Lake connector's catalog (`delta`).
    pub trino_catalog: Option<String>,
    /// Redshift: the external schema holding the external tables (`tidemark_lake`).
    pub external_schema: Option<String>,
    /// Redshift: the AWS Glue Data Catalog database behind the external schema (the external
    /// schema's name); created when missing.
    pub glue_database: Option<String>,
    /// Redshift: the IAM role ARN that reads the catalog and S3; the cluster's default role when
    /// `None`.
    pub iam_role: Option<String>,
    /// DuckDB: load the delta extension from this file instead of installing it from DuckDB's
    /// extension repository (offline machines).
    pub duckdb_extension: Option<String>,
}

/// The statements that register `tables` and `marts` in `engine`: a comment header, then per
/// table the history relation and the live and SCD2 views, per mart the table and its
/// `_current` view, each statement ending with `;`.
pub fn ddl(engine: Engine, tables: &[DdlTable], marts: &[DdlMart], options: &DdlOptions) -> Result<String, DdlError> {
    let prepared = tables.iter().map(Prepared::new).collect::<Result<Vec<_>, _>>()?;
    let marts = marts.iter().map(PreparedMart::new).collect::<Result<Vec<_>, _>>()?;
    let target = Target::new(engine, options);
    let mut out = header(engine, &prepared, &marts, options);
    let preamble = preamble(&target);
    if !preamble.is_empty() {
        out.push('\n');
        out.push_str(&preamble);
    }
    for table in &prepared {
        out.push_str(&table_statements(&target, table)?);
    }
    for mart in &marts {
        out.push_str(&mart_statements(&target, mart)?);
    }
    Ok(out)
}

/// A table checked and named for SQL.
struct Prepared<'a> {
    table: &'a DdlTable,
    /// The lower-case table name (`invoice__c`).
    name: String,
    columns: Vec<Column>,
    /// The SQL name of the record key (`id`; `_key` for a source's table).
    key: String,
    /// The SQL names of the version order ([`tidemark_lake::columns::version_order`]).
    order: Vec<String>,
}

struct Column {
    physical: String,
    sql: String,
    data_type: DataType,
}

impl<'a> Prepared<'a> {
    fn new(table: &'a DdlTable) -> Result<Prepared<'a>, DdlError> {
        let columns: Vec<Column> = table
            .schema
            .fields()
            .iter()
            .map(|f| Column { physical: f.name().clone(), sql: column_name(f.name()), data_type: f.data_type().clone() })
            .collect();
        let key = tidemark_lake::columns::key_column(&table.schema);
        for required in [key, VERSION_AT, INGESTED_AT, DELETED] {
            if !columns.iter().any(|c| c.sql == column_name(required)) {
                let required = if required == tidemark_lake::columns::KEY { ID } else { required };
                return Err(DdlError::MissingColumn { object: table.object.clone(), column: required.to_owned() });
            }
        }
        let order = tidemark_lake::columns::version_order(&table.schema).into_iter().map(column_name).collect();
        Ok(Prepared { table, name: table_name(&table.object), columns, key: column_name(key), order })
    }

    /// The record's own columns (not metadata), table order.
    fn fields(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| !is_metadata(&c.physical))
    }
}

/// Renders a name, a text or a date as SQL.
type Render = fn(&str) -> String;

/// How one engine spells things. The view bodies are the same for all.
struct Dialect {
    /// Quotes an identifier in queries and views (every name is quoted: `order`, `case` and
    /// `group` are objects).
    ident: Render,
    /// A string literal.
    string: Render,
    /// The [`END_OF_TIME`] literal (an ISO date) in the type the engine reads `_version_at` as.
    end_of_time: Render,
    /// Appended to `CREATE VIEW … AS <query>`.
    view_tail: &'static str,
}

fn double_quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn backquoted(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

fn standard_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Spark SQL and Hive DDL read backslash escapes in string literals.
fn backslash_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl Engine {
    fn dialect(self) -> Dialect {
        let (ident, string): (Render, Render) = match self {
            Engine::Spark => (backquoted, backslash_string),
            _ => (double_quoted, standard_string),
        };
        let (end_of_time, view_tail): (Render, _) = match self {
            // delta_scan reads Delta `timestamp` as TIMESTAMP WITH TIME ZONE.
            Engine::DuckDb => (|d| format!("TIMESTAMPTZ '{d} 00:00:00+00'"), ""),
            // Athena reads Delta `timestamp` as `timestamp` (UTC wall time, milliseconds).
            Engine::Athena => (|d| format!("TIMESTAMP '{d} 00:00:00.000'"), ""),
            // The Delta Lake connector reads `timestamp` as TIMESTAMP(3) WITH TIME ZONE.
            Engine::Trino => (|d| format!("TIMESTAMP '{d} 00:00:00.000 UTC'"), ""),
            // Spark timestamps are instants; the literal names its zone.
            Engine::Spark => (|d| format!("TIMESTAMP '{d} 00:00:00Z'"), ""),
            // External tables only declare TIMESTAMP (UTC wall time, microseconds); views over
            // them must be late-binding.
            Engine::RedshiftSpectrum => (|d| format!("TIMESTAMP '{d} 00:00:00'"), " WITH NO SCHEMA BINDING"),
        };
        Dialect { ident, string, end_of_time, view_tail }
    }
}

/// The engine, its options, and where its relations go.
struct Target<'a> {
    engine: Engine,
    dialect: Dialect,
    options: &'a DdlOptions,
    /// Qualifier of the relations (`[catalog, schema]`, `[schema]` or none), unquoted.
    namespace: Vec<String>,
}

const TRINO_CATALOG: &str = "delta";
const TRINO_SCHEMA: &str = "default";
const REDSHIFT_SCHEMA: &str = "public";
const EXTERNAL_SCHEMA: &str = "tidemark_lake";

impl<'a> Target<'a> {
    fn new(engine: Engine, options: &'a DdlOptions) -> Target<'a> {
        let namespace = match engine {
            Engine::Trino => {
                vec![trino_catalog(options).to_owned(), options.schema.clone().unwrap_or_else(|| TRINO_SCHEMA.into())]
            }
            Engine::RedshiftSpectrum => vec![options.schema.clone().unwrap_or_else(|| REDSHIFT_SCHEMA.into())],
            _ => options.schema.iter().cloned().collect(),
        };
        Target { engine, dialect: engine.dialect(), options, namespace }
    }

    fn ident(&self, s: &str) -> String {
        (self.dialect.ident)(s)
    }

    fn string(&self, s: &str) -> String {
        (self.dialect.string)(s)
    }

    /// `relation` qualified by the target namespace and quoted.
    fn qualified(&self, relation: &str) -> String {
        self.namespace.iter().map(String::as_str).chain([relation]).map(|p| self.ident(p)).collect::<Vec<_>>().join(".")
    }

    fn create_view(&self, relation: &str, query: &str) -> String {
        format!("CREATE OR REPLACE VIEW {} AS\n{query}{};\n", self.qualified(relation), self.dialect.view_tail)
    }
}

fn trino_catalog(options: &DdlOptions) -> &str {
    options.trino_catalog.as_deref().unwrap_or(TRINO_CATALOG)
}

fn external_schema(options: &DdlOptions) -> &str {
    options.external_schema.as_deref().unwrap_or(EXTERNAL_SCHEMA)
}

/// Statements before the tables: extensions, schemas.
fn preamble(target: &Target<'_>) -> String {
    let options = target.options;
    let schema = options.schema.as_deref();
    let create_schema = |keyword: &str, ident: String| format!("CREATE {keyword} IF NOT EXISTS {ident};\n");
    let mut out = String::new();
    match target.engine {
        Engine::DuckDb => {
            match &options.duckdb_extension {
                Some(path) => out.push_str(&format!("LOAD {};\n", target.string(path))),
                None => out.push_str("INSTALL delta;\nLOAD delta;\n"),
            }
            if let Some(s) = schema {
                out.push_str(&create_schema("SCHEMA", target.ident(s)));
            }
        }
        // Athena DDL is Hive's: backquoted identifiers.
        Engine::Athena => out.extend(schema.map(|s| create_schema("DATABASE", backquoted(s)))),
        Engine::Trino => {
            out.push_str(&create_schema("SCHEMA", target.namespace.iter().map(|p| target.ident(p)).collect::<Vec<_>>().join(".")))
        }
        Engine::Spark => out.extend(schema.map(|s| create_schema("SCHEMA", target.ident(s)))),
        Engine::RedshiftSpectrum => {
            let external = external_schema(options);
            let role = options.iam_role.as_deref().map_or_else(|| "default".to_owned(), |r| target.string(r));
            out.push_str(&format!(
                "CREATE EXTERNAL SCHEMA IF NOT EXISTS {}\nFROM DATA CATALOG DATABASE {}\nIAM_ROLE {role}\nCREATE EXTERNAL DATABASE IF NOT EXISTS;\n",
                target.ident(external),
                target.string(options.glue_database.as_deref().unwrap_or(external)),
            ));
            out.extend(schema.map(|s| create_schema("SCHEMA", target.ident(s))));
        }
    }
    out
}

/// One table: its registration, then the three relations.
fn table_statements(target: &Target<'_>, table: &Prepared<'_>) -> Result<String, DdlError> {
    let history = format!("{}{HISTORY_SUFFIX}", table.name);
    let mut out = format!("\n-- {} ({}): {}\n", table.name, table.table.object, table.table.location);
    out.push_str(&register(
        target,
        &Stored {
            label: &table.table.object,
            base: &table.name,
            relation: history.clone(),
            location: &table.table.location,
            columns: &table.columns,
            partition: None,
        },
    )?);
    let d = &target.dialect;
    let source = target.qualified(&history);
    out.push_str(&target.create_view(&table.name, &live_query(d, table, &source)));
    out.push_str(&target.create_view(&format!("{}{SCD2_SUFFIX}", table.name), &scd2_query(d, table, &source)));
    Ok(out)
}

/// A Delta table an engine registers as one relation with every column renamed to its SQL
/// name: an object's history table (`<t>_history`) or a mart (`<m>`).
struct Stored<'a> {
    /// Names the table in errors (`Invoice__c`, `dim_customer`).
    label: &'a str,
    /// The lower-case object or model name: Spark's Delta table is `<base>_delta`.
    base: &'a str,
    /// The relation's SQL name.
    relation: String,
    location: &'a Url,
    columns: &'a [Column],
    /// A mart's current-row flag, the table's partition column.
    partition: Option<&'a Column>,
}

/// The statements that make `stored.relation` read the Delta table, in each engine's way.
fn register(target: &Target<'_>, stored: &Stored<'_>) -> Result<String, DdlError> {
    let d = &target.dialect;
    let (relation, location) = (stored.relation.as_str(), stored.location);
    Ok(match target.engine {
        Engine::DuckDb => {
            let scan = format!("delta_scan({})", target.string(&duckdb_path(location)));
            target.create_view(relation, &history_query(d, stored.columns, &scan, Names::Physical))
        }
        // Registered as the relation itself: Athena lower-cases column names.
        Engine::Athena => format!(
            "CREATE EXTERNAL TABLE IF NOT EXISTS {}\nLOCATION {}\nTBLPROPERTIES ('table_type' = 'DELTA');\n",
            target.namespace.iter().map(String::as_str).chain([relation]).map(backquoted).collect::<Vec<_>>().join("."),
            backslash_string(location.as_str()),
        ),
        // Registered as the relation itself: Trino lower-cases column names.
        Engine::Trino => format!(
            "CALL {}.system.register_table(schema_name => {}, table_name => {}, table_location => {});\n",
            target.ident(&target.namespace[0]),
            target.string(&target.namespace[1]),
            target.string(relation),
            target.string(location.as_str()),
        ),
        Engine::Spark => {
            let raw = target.qualified(&format!("{}_delta", stored.base));
            let mut out =
                format!("CREATE TABLE IF NOT EXISTS {raw} USING DELTA LOCATION {};\n", target.string(location.as_str()));
            out.push_str(&target.create_view(relation, &history_query(d, stored.columns, &raw, Names::Physical)));
            out
        }
        Engine::RedshiftSpectrum => {
            let external = format!("{}.{}", target.ident(external_schema(target.options)), target.ident(relation));
            let mut out = redshift_external_table(target, stored, &external)?;
            out.push_str(&target.create_view(relation, &history_query(d, stored.columns, &external, Names::Lower)));
            out
        }
    })
}

/// Local tables as plain paths (DuckDB reads `file://` URLs poorly), object stores as URLs.
fn duckdb_path(location: &Url) -> String {
    let text = match location.to_file_path() {
        Ok(path) if location.scheme() == "file" => path.display().to_string(),
        _ => location.to_string(),
    };
    text.trim_end_matches('/').to_owned()
}

/// How the history relation's source names its columns.
#[derive(Clone, Copy)]
enum Names {
    /// As in the Delta table (`Id`, `AnnualRevenue`).
    Physical,
    /// Already lower case (Redshift external tables are declared so).
    Lower,
}

/// `<t>_history` (or a mart): every column renamed to its SQL name, table order.
fn history_query(d: &Dialect, columns: &[Column], source: &str, names: Names) -> String {
    let from = |c: &'_ Column| match names {
        Names::Physical => (d.ident)(&c.physical),
        Names::Lower => (d.ident)(&c.sql),
    };
    let columns: Vec<String> = columns.iter().map(|c| format!("{} AS {}", from(c), (d.ident)(&c.sql))).collect();
    format!("SELECT {}\nFROM {source}", columns.join(", "))
}

/// The window ordering versions of one record, last first when `descending`.
fn version_window(d: &Dialect, table: &Prepared<'_>, descending: bool) -> String {
    let order: Vec<String> =
        table.order.iter().map(|c| format!("{}{}", (d.ident)(c), if descending { " DESC" } else { "" })).collect();
    format!("OVER (PARTITION BY {} ORDER BY {})", (d.ident)(&table.key), order.join(", "))
}

fn field_list(d: &Dialect, table: &Prepared<'_>) -> Vec<String> {
    table.fields().map(|c| (d.ident)(&c.sql)).collect()
}

const RANK: &str = "__tidemark_rank";
const NEXT: &str = "__tidemark_next";

/// `<t>`: each id's last version unless it is a delete. The delete filter must come after the
/// ranking, or an older version of a deleted record would surface.
fn live_query(d: &Dialect, table: &Prepared<'_>, history: &str) -> String {
    let q = d.ident;
    let fields = field_list(d, table).join(", ");
    let (version_at, deleted, rank) = (q(&column_name(VERSION_AT)), q(&column_name(DELETED)), q(RANK));
    format!(
        "SELECT {fields}, {version_at}\nFROM (\n  SELECT {fields}, {version_at}, {deleted},\n    row_number() {} AS {rank}\n  FROM {history}\n) AS v\n\
         WHERE {rank} = 1 AND NOT {deleted}",
        version_window(d, table, true)
    )
}

/// `<t>_scd2`: the next version's `_version_at` closes each window, deletes included, so the
/// delete filter comes after the window.
fn scd2_query(d: &Dialect, table: &Prepared<'_>, history: &str) -> String {
    let q = d.ident;
    let fields = field_list(d, table).join(", ");
    let (version_at, deleted, next) = (q(&column_name(VERSION_AT)), q(&column_name(DELETED)), q(NEXT));
    format!(
        "SELECT {fields}, {version_at} AS {}, COALESCE({next}, {}) AS {}, {next} IS NULL AS {}\nFROM (\n  SELECT {fields}, {version_at}, {deleted},\n    \
         lead({version_at}) {} AS {next}\n  FROM {history}\n) AS v\nWHERE NOT {deleted}",
        q(VALID_FROM),
        (d.end_of_time)(END_OF_TIME),
        q(VALID_TO),
        q(IS_CURRENT),
        version_window(d, table, false)
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tidemark_lake::arrow::datatypes::{Field, Schema, TimeUnit};
    use tidemark_lake::columns::metadata_fields;

    use super::*;

    fn table(object: &str, location: &str) -> DdlTable {
        let mut fields = metadata_fields();
        fields.extend([
            Field::new("Id", DataType::Utf8, false),
            Field::new("AnnualRevenue", DataType::Decimal128(18, 2), true),
            Field::new("Amount_v2", DataType::Decimal128(38, 4), true),
            Field::new("CloseDate", DataType::Date32, true),
            Field::new("LastViewed", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            Field::new("IsActive__c", DataType::Boolean, true),
            Field::new("Employees", DataType::Int32, true),
            Field::new("Score", DataType::Float64, true),
        ]);
        DdlTable { object: object.into(), location: Url::parse(location).unwrap(), schema: Arc::new(Schema::new(fields)) }
    }

    fn s3_tables() -> Vec<DdlTable> {
        vec![table("Account", "s3://acme/lake/objects/account/"), table("Case", "s3://acme/lake/objects/case/")]
    }

    fn render(engine: Engine, options: &DdlOptions) -> String {
        ddl(engine, &s3_tables(), &[], options).unwrap()
    }

    /// Every engine: the header, lower-case quoted names, one live and one SCD2 view per table,
    /// the same version order, the delete filter after the window.
    #[test]
    fn every_engine_writes_the_three_relations() {
        for engine in Engine::ALL {
            let out = render(engine, &DdlOptions::default());
            let q = engine.dialect().ident;
            assert!(out.starts_with(&format!("-- Tidemark history lake registered in {}", engine.label())), "{engine}:\n{out}");
            assert!(out.contains("-- Lake: s3://acme/lake/\n"), "{engine}:\n{out}");
            assert!(out.contains("-- Objects: Account, Case\n"), "{engine}");
            let prefix = ["delta", "default"].map(q).join(".") + ".";
            let namespace = match engine {
                Engine::Trino => prefix.as_str(),
                Engine::RedshiftSpectrum => "\"public\".",
                _ => "",
            };
            for view in ["account", "account_scd2", "case", "case_scd2"] {
                assert!(out.contains(&format!("VIEW {namespace}{} AS\n", q(view))), "{engine}: view {view}:\n{out}");
            }
            let (id, v, i, d) = (q("id"), q("_version_at"), q("_ingested_at"), q("_deleted"));
            let order = format!("OVER (PARTITION BY {id} ORDER BY {v} DESC, {i} DESC, {d} DESC)");
            assert_eq!(out.matches(&order).count(), 2, "{engine}: live ranking\n{out}");
            let lead = format!("lead({v}) OVER (PARTITION BY {id} ORDER BY {v}, {i}, {d})");
            assert_eq!(out.matches(&lead).count(), 2, "{engine}: scd2 window");
            assert_eq!(out.matches(&format!("WHERE {} = 1 AND NOT {d}", q(RANK))).count(), 2, "{engine}");
            assert!(out.contains("9999-12-31 00:00:00"), "{engine}: END_OF_TIME");
            assert!(!out.contains("file://") && !out.contains("WARNING"), "{engine}");
        }
    }

    #[test]
    fn duckdb_scans_delta_and_renames_every_column() {
        let local = table("Invoice__c", "file:///srv/lake/objects/invoice__c/");
        let options = DdlOptions { schema: Some("crm".into()), ..DdlOptions::default() };
        let out = ddl(Engine::DuckDb, &[local], &[], &options).unwrap();
        assert!(out.contains("INSTALL delta;\nLOAD delta;\nCREATE SCHEMA IF NOT EXISTS \"crm\";\n"), "{out}");
        assert!(out.contains("CREATE OR REPLACE VIEW \"crm\".\"invoice__c_history\" AS\nSELECT \"_version_at\" AS \"_version_at\", \"_deleted\" AS \"_deleted\""));
        assert!(out.contains("\"Id\" AS \"id\", \"AnnualRevenue\" AS \"annualrevenue\", \"Amount_v2\" AS \"amount_v2\""));
        assert!(out.contains("FROM delta_scan('/srv/lake/objects/invoice__c');"), "local lakes are plain paths:\n{out}");
        assert!(out.contains("FROM \"crm\".\"invoice__c_history\""));
        assert!(out.contains("COALESCE(\"__tidemark_next\", TIMESTAMPTZ '9999-12-31 00:00:00+00') AS \"valid_to\", \"__tidemark_next\" IS NULL AS \"is_current\""));
        assert!(out.contains("SELECT \"id\", \"annualrevenue\", \"amount_v2\", \"closedate\", \"lastviewed\", \"isactive__c\", \"employees\", \"score\", \"_version_at\"\n"));
        assert!(!out.contains("WARNING") && out.contains("-- Lake: file:///srv/lake/\n"), "DuckDB reads local folders");
        assert_eq!(lake_root(&Url::parse("s3://b/elsewhere/account/").unwrap()).as_str(), "s3://b/elsewhere/account/");

        let offline = DdlOptions { duckdb_extension: Some("/opt/ext/delta.duckdb_extension".into()), ..DdlOptions::default() };
        let out = ddl(Engine::DuckDb, &s3_tables(), &[], &offline).unwrap();
        assert!(out.contains("\nLOAD '/opt/ext/delta.duckdb_extension';\n") && !out.contains("INSTALL delta;"), "{out}");
        assert!(out.contains("delta_scan('s3://acme/lake/objects/account')"), "s3 as-is:\n{out}");
    }

    #[test]
    fn athena_registers_delta_tables_and_presto_views() {
        let out = render(Engine::Athena, &DdlOptions { schema: Some("crm".into()), ..DdlOptions::default() });
        assert!(out.contains("CREATE DATABASE IF NOT EXISTS `crm`;\n"));
        assert!(out.contains(
            "CREATE EXTERNAL TABLE IF NOT EXISTS `crm`.`account_history`\nLOCATION 's3://acme/lake/objects/account/'\nTBLPROPERTIES ('table_type' = 'DELTA');\n"
        ), "{out}");
        assert!(out.contains("CREATE OR REPLACE VIEW \"crm\".\"case\" AS\n"), "reserved words are quoted:\n{out}");
        assert!(out.contains("FROM \"crm\".\"case_history\""));
        assert!(out.contains("TIMESTAMP '9999-12-31 00:00:00.000')"));
    }

    #[test]
    fn trino_calls_register_table() {
        let out = render(
            Engine::Trino,
            &DdlOptions { trino_catalog: Some("lake".into()), schema: Some("sf".into()), ..DdlOptions::default() },
        );
        assert!(out.contains("CREATE SCHEMA IF NOT EXISTS \"lake\".\"sf\";\n"));
        assert!(out.contains(
            "CALL \"lake\".system.register_table(schema_name => 'sf', table_name => 'account_history', table_location => 's3://acme/lake/objects/account/');\n"
        ), "{out}");
        assert!(out.contains("CREATE OR REPLACE VIEW \"lake\".\"sf\".\"account_scd2\" AS\n"));
        assert!(out.contains("TIMESTAMP '9999-12-31 00:00:00.000 UTC'"));
        assert!(out.contains("delta.register-table-procedure.enabled=true"));
    }

    #[test]
    fn spark_uses_backquotes_and_a_delta_table() {
        let mut tables = s3_tables();
        tables[0].location = Url::parse("file:///data/it's/objects/account/").unwrap();
        let out = ddl(Engine::Spark, &tables, &[], &DdlOptions::default()).unwrap();
        assert!(
            out.contains(
                "CREATE TABLE IF NOT EXISTS `account_delta` USING DELTA LOCATION 'file:///data/it\\'s/objects/account/';\n"
            ),
            "{out}"
        );
        assert!(out.contains("CREATE OR REPLACE VIEW `account_history` AS\nSELECT `_version_at` AS `_version_at`"));
        assert!(out.contains("`Id` AS `id`, `AnnualRevenue` AS `annualrevenue`"));
        assert!(out.contains("FROM `account_delta`;\n"));
        assert!(out.contains("TIMESTAMP '9999-12-31 00:00:00Z'"));
        assert!(out.contains("-- WARNING: Account is a local folder (file:///data/it's/objects/account/)"), "{out}");
        assert!(!out.contains("WARNING: Case"));
    }

    #[test]
    fn redshift_declares_columns_over_the_manifest() {
        let options = DdlOptions { iam_role: Some("arn:aws:iam::123456789012:role/spectrum".into()), ..DdlOptions::default() };
        let out = render(Engine::RedshiftSpectrum, &options);
        assert!(out.contains(
            "CREATE EXTERNAL SCHEMA IF NOT EXISTS \"tidemark_lake\"\nFROM DATA CATALOG DATABASE 'tidemark_lake'\nIAM_ROLE 'arn:aws:iam::123456789012:role/spectrum'\nCREATE EXTERNAL DATABASE IF NOT EXISTS;\n"
        ), "{out}");
        assert!(out.contains("DROP TABLE IF EXISTS \"tidemark_lake\".\"account_history\";\nCREATE EXTERNAL TABLE \"tidemark_lake\".\"account_history\" (\n"));
        for column in [
            "\"_version_at\" TIMESTAMP,",
            "\"_deleted\" BOOLEAN,",
            "\"_origin\" VARCHAR(65535),",
            "\"id\" VARCHAR(65535),",
            "\"annualrevenue\" DECIMAL(18,2),",
            "\"amount_v2\" DECIMAL(38,4),",
            "\"closedate\" DATE,",
            "\"isactive__c\" BOOLEAN,",
            "\"employees\" INTEGER,",
            "\"score\" DOUBLE PRECISION\n)",
        ] {
            assert!(out.contains(column), "{column}:\n{out}");
        }
        assert!(out.contains("INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat'"));
        assert!(out.contains("LOCATION 's3://acme/lake/objects/account/_symlink_format_manifest/';\n"));
        assert!(out.contains("FROM \"tidemark_lake\".\"account_history\" WITH NO SCHEMA BINDING;\n"));
        assert_eq!(out.matches(" WITH NO SCHEMA BINDING;").count(), 6, "every view is late-binding");
        assert!(out.contains("CREATE OR REPLACE VIEW \"public\".\"account\" AS\n"));
        assert!(out.contains("TIMESTAMP '9999-12-31 00:00:00')"));
        assert!(out.contains("`tidemark catalog manifest`"));
        assert!(render(Engine::RedshiftSpectrum, &DdlOptions::default()).contains("\nIAM_ROLE default\n"));
    }

    #[test]
    fn tables_must_be_history_tables() {
        let mut t = table("Widget__c", "s3://b/objects/widget__c/");
        t.schema = Arc::new(Schema::new(t.schema.fields().iter().filter(|f| f.name() != "Id").cloned().collect::<Vec<_>>()));
        let err = ddl(Engine::Trino, &[t], &[], &DdlOptions::default()).unwrap_err();
        assert!(matches!(&err, DdlError::MissingColumn { object, column } if object == "Widget__c" && column == "Id"), "{err}");
        assert!(err.to_string().contains("Widget__c") && err.to_string().contains("Id"));

        let mut t = table("Widget__c", "s3://b/objects/widget__c/");
        let mut fields: Vec<Field> = t.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("Blob", DataType::Binary, true));
        t.schema = Arc::new(Schema::new(fields));
        assert!(ddl(Engine::DuckDb, std::slice::from_ref(&t), &[], &DdlOptions::default()).is_ok());
        let err = ddl(Engine::RedshiftSpectrum, &[t], &[], &DdlOptions::default()).unwrap_err();
        assert!(matches!(err, DdlError::UnsupportedType { ref column, .. } if column == "Blob"), "{err}");
    }

    #[test]
    fn engine_names_parse_and_print() {
        for engine in Engine::ALL {
            assert_eq!(engine.to_string().parse::<Engine>().unwrap(), engine);
        }
        assert_eq!("Redshift-Spectrum".parse::<Engine>().unwrap(), Engine::RedshiftSpectrum);
        assert_eq!("duckdb".parse::<Engine>().unwrap(), Engine::DuckDb);
        let err = "postgres".parse::<Engine>().unwrap_err();
        assert_eq!(err.to_string(), "unknown engine 'postgres': expected one of duckdb, athena, trino, spark, redshift-spectrum");
    }
}
