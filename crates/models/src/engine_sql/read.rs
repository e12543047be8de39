//! Where a source's rows come from in each engine, typed as declared (`types:`, unlisted
//! columns are text): DuckDB and Spark read the prefix's files themselves; Redshift and Trino
//! read a table per source that the header comment says must exist. A lake object's live
//! records come from its `<object>_history` relation in every engine.

use tidemark_core::models::{ColumnType, CsvDialect, ExtractKind, FileFormat, SourceConfig};
use tidemark_lake::columns::{DELETED, ID, VERSION_ORDER};

use super::dialect::SqlType;
use super::{Engine, Plan, REDSHIFT_SOURCE_SCHEMA, history_relation, ordering};

/// The column naming a row's file, for full extracts (and DuckDB's file filter).
pub(super) const FILE: &str = "_tidemark_file";

/// A history version's place in its record's versions, last first (1: the record's state).
const VERSION_RANK: &str = "_tidemark_version";

/// Spark reads a quoted empty CSV field as its `emptyValue`, then turns a value equal to
/// `nullValue` (the empty string by default) into NULL: both kinds of empty field would be NULL.
/// With this marker as `emptyValue`, a quoted empty field survives, and the read maps it to ''.
const SPARK_QUOTED_EMPTY: &str = "<tidemark:quoted-empty>";

/// One source's read: select it as `SELECT <columns> FROM <from> WHERE <conditions>`.
pub(super) struct SourceRead {
    /// A statement to run first (Spark: the temporary view over the files).
    pub setup: Option<String>,
    pub from: String,
    /// The wanted columns (keys, ordering column, attributes), typed, each `AS` its name.
    pub columns: Vec<String>,
    /// The status column's raw value.
    pub status: Option<String>,
    pub conditions: Vec<String>,
}

/// The source's key, ordering and attribute columns, once each, in that order.
pub(super) fn wanted(p: &Plan<'_>, s: &SourceConfig) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let order = std::iter::once(ordering(s).to_owned());
    for c in p.model.key.iter().cloned().chain(order).chain(s.columns.iter().cloned()) {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// The source's folder or prefix as the engine reads it (no `file://`, no trailing `/`).
pub(super) fn prefix(s: &SourceConfig) -> &str {
    let files = s.files.as_deref().expect("validated: file sources only");
    files.strip_prefix("file://").unwrap_or(files).trim_end_matches('/')
}

/// Redshift's external table or Trino's table of a source.
pub(super) fn source_table(p: &Plan<'_>, s: &SourceConfig) -> String {
    let schema = match p.engine() {
        Engine::Redshift => Some(p.options.source_schema.as_deref().unwrap_or(REDSHIFT_SOURCE_SCHEMA)),
        _ => p.options.source_schema.as_deref(),
    };
    let mut parts: Vec<String> = schema.into_iter().flat_map(|s| s.split('.')).map(|part| p.d.ident(part)).collect();
    parts.push(p.d.ident(&s.name));
    parts.join(".")
}

pub(super) fn read(p: &Plan<'_>, s: &SourceConfig) -> SourceRead {
    match (p.engine(), &s.object) {
        (_, Some(object)) => live(p, s, object),
        (Engine::DuckDb, None) => duckdb(p, s),
        (Engine::Spark, None) => spark(p, s),
        (Engine::Redshift | Engine::Trino, None) => table(p, s),
    }
}

/// A column's type: key columns take the primary source's, so that every source's keys join
/// (Tidemark casts them so too); others are as declared, or (lake objects) as stored.
fn declared(p: &Plan<'_>, s: &SourceConfig, column: &str) -> SqlType {
    let own = |c: &&super::Column| c.name == column && s.columns.contains(&c.name);
    match p.key.iter().find(|k| k.name == column).or_else(|| p.attributes.iter().find(own)) {
        Some(c) => c.ty,
        None => SqlType::Declared(s.types.get(column).copied().unwrap_or(ColumnType::String)),
    }
}

/// A lake object's live records, as `tidemark model run` reads them: each record's last
/// version in the lake's version order ([`VERSION_ORDER`], the rule of `catalog ddl`'s
/// `<object>` view), left out when it is a delete. The delete filter comes after the ranking,
/// or an older version of a deleted record would surface.
fn live(p: &Plan<'_>, s: &SourceConfig, object: &str) -> SourceRead {
    let d = p.d;
    // The history relation names every column in lower case.
    let stored = |c: &str| d.ident(&c.to_lowercase());
    let wanted = wanted(p, s);
    let mut inner: Vec<String> = wanted.iter().map(|c| stored(c)).collect();
    let deleted = stored(DELETED);
    if !inner.contains(&deleted) {
        inner.push(deleted.clone());
    }
    let order: Vec<String> = VERSION_ORDER.iter().map(|c| format!("{} DESC", stored(c))).collect();
    let rank = d.ident(VERSION_RANK);
    let from = format!(
        "(\n  SELECT {},\n    row_number() OVER (PARTITION BY {} ORDER BY {}) AS {rank}\n  FROM {}\n) v",
        inner.join(", "),
        stored(ID),
        order.join(", "),
        history_relation(d, p.options, object)
    );
    let columns = wanted
        .iter()
        .map(|c| match c.as_str() {
            c if c == ordering(s) => format!("v.{} AS {}", stored(c), d.ident(c)),
            c => format!("CAST(v.{} AS {}) AS {}", stored(c), d.sql_type(declared(p, s, c)), d.ident(c)),
        })
        .collect();
    SourceRead { setup: None, from, columns, status: None, conditions: vec![format!("v.{rank} = 1"), format!("NOT v.{deleted}")] }
}

fn duckdb(p: &Plan<'_>, s: &SourceConfig) -> SourceRead {
    let d = p.d;
    let root = prefix(s);
    let parquet = s.format == Some(FileFormat::Parquet);
    // DuckDB fails on a glob matching no file, so one pattern per source: CSV and .txt
    // (files.rs reads both as CSV), or Parquet when declared.
    let (function, pattern, extension) = if parquet {
        ("read_parquet", "**/*.parquet", "[.]parquet$")
    } else {
        ("read_csv", "**/*.[ct][sx][vt]", "[.](csv|txt)$")
    };
    let glob = d.string(&format!("{root}/{pattern}"));
    let file = d.ident(FILE);
    let options = if parquet { format!("union_by_name = true, filename = {}", d.string(FILE)) } else { csv_options(p, &s.csv) };
    // As files.rs: a path part starting with _ or . under the prefix is not data.
    let visible = |column: &str| {
        format!(
            "regexp_matches(lower({column}), '{extension}') AND NOT regexp_matches(substr({column}, {}), '(^|/)[._]')",
            root.chars().count() + 2
        )
    };
    let mut conditions = vec![visible(&file)];
    if s.extract == ExtractKind::Full {
        // From the listing, not the rows: an empty newest extract still deletes every key.
        conditions.push(format!("{file} = (SELECT max(file) FROM glob({glob}) WHERE {})", visible("file")));
    }
    let columns = wanted(p, s)
        .iter()
        .map(|c| {
            let raw = d.ident(c);
            let typed = match declared(p, s, c) {
                SqlType::Declared(ColumnType::String) if parquet => format!("CAST({raw} AS VARCHAR)"),
                SqlType::Declared(ColumnType::String) => raw.clone(),
                // Through TIMESTAMPTZ so that offsets count; naive values are UTC (the session's zone).
                SqlType::Declared(ColumnType::Timestamp) => format!("CAST(CAST({raw} AS TIMESTAMPTZ) AS TIMESTAMP)"),
                t => format!("CAST({raw} AS {})", d.sql_type(t)),
            };
            if typed == raw { raw } else { format!("{typed} AS {raw}") }
        })
        .collect();
    SourceRead {
        setup: None,
        from: format!("{function}({glob}, {options})"),
        columns,
        status: s.status_column.as_deref().map(|c| d.ident(c)),
        conditions,
    }
}

fn csv_options(p: &Plan<'_>, dialect: &CsvDialect) -> String {
    let d = p.d;
    let mut nulls = vec![d.string("")];
    nulls.extend(dialect.null.iter().map(|n| d.string(n)));
    format!(
        "header = true, all_varchar = true, delim = {}, quote = {}, escape = {}, nullstr = [{}], allow_quoted_nulls = false, union_by_name = true, filename = {}",
        d.string(&dialect.delimiter.to_string()),
        d.string(&dialect.quote.to_string()),
        d.string(&dialect.escape.unwrap_or(dialect.quote).to_string()),
        nulls.join(", "),
        d.string(FILE)
    )
}

fn spark(p: &Plan<'_>, s: &SourceConfig) -> SourceRead {
    let d = p.d;
    let files = p.relation(&format!("{}_files", s.name));
    let parquet = s.format == Some(FileFormat::Parquet);
    let option = |k: &str, v: &str| format!("{k} {}", d.string(v));
    let mut options = vec![option("path", prefix(s)), option("recursiveFileLookup", "true")];
    if parquet {
        options.extend([option("pathGlobFilter", "*.parquet"), option("mergeSchema", "true")]);
    } else {
        let c = &s.csv;
        options.extend([
            option("pathGlobFilter", "*.{csv,txt}"),
            option("header", "true"),
            // Every file's header must match the first one's (columns are taken by position).
            option("enforceSchema", "false"),
            option("multiLine", "true"),
            option("mode", "FAILFAST"),
            option("sep", &c.delimiter.to_string()),
            option("quote", &c.quote.to_string()),
            option("escape", &c.escape.unwrap_or(c.quote).to_string()),
            option("nullValue", c.null.as_deref().unwrap_or("")),
            option("emptyValue", SPARK_QUOTED_EMPTY),
        ]);
    }
    let setup = format!(
        "-- {}: the files under its prefix, as text.\nCREATE OR REPLACE TEMPORARY VIEW {files}\nUSING {}\nOPTIONS (\n  {}\n);\n",
        s.name,
        if parquet { "parquet" } else { "csv" },
        options.join(",\n  ")
    );
    let columns = wanted(p, s)
        .iter()
        .map(|c| {
            let raw = d.ident(c);
            let text = if parquet {
                raw.clone()
            } else {
                format!("CASE WHEN {raw} = {} THEN '' ELSE {raw} END", d.string(SPARK_QUOTED_EMPTY))
            };
            let typed = match declared(p, s, c) {
                SqlType::Declared(ColumnType::String) if parquet => format!("CAST({raw} AS STRING)"),
                SqlType::Declared(ColumnType::String) => text,
                t => format!("CAST({text} AS {})", d.sql_type(t)),
            };
            if typed == raw { raw } else { format!("{typed} AS {raw}") }
        })
        .collect();
    let mut conditions = Vec::new();
    if s.extract == ExtractKind::Full {
        conditions.push(format!("input_file_name() = (SELECT max(input_file_name()) FROM {files})"));
    }
    SourceRead { setup: Some(setup), from: files, columns, status: s.status_column.as_deref().map(|c| d.ident(c)), conditions }
}

fn table(p: &Plan<'_>, s: &SourceConfig) -> SourceRead {
    let d = p.d;
    let from = source_table(p, s);
    let columns = wanted(p, s).iter().map(|c| d.ident(c)).collect();
    let mut conditions = Vec::new();
    if s.extract == ExtractKind::Full {
        // Both engines name a row's file in the "$path" pseudo-column.
        conditions.push(format!("\"$path\" = (SELECT max(\"$path\") FROM {from})"));
    }
    SourceRead { setup: None, from, columns, status: s.status_column.as_deref().map(|c| d.ident(c)), conditions }
}
