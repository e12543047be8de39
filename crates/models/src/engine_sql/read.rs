//! Where a source's rows come from in each engine, typed as declared (`types:`, unlisted
//! columns are text): DuckDB and Spark read the prefix's files themselves; Redshift and Trino
//! read a table per source that the header comment says must exist.

use tidemark_core::models::{ColumnType, CsvDialect, ExtractKind, FileFormat, SourceConfig};

use super::{Engine, Plan, REDSHIFT_SOURCE_SCHEMA};

/// The column naming a row's file, for full extracts (and DuckDB's file filter).
pub(super) const FILE: &str = "_tidemark_file";

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
    let order = s.order_by.iter().cloned();
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
    match p.engine() {
        Engine::DuckDb => duckdb(p, s),
        Engine::Spark => spark(p, s),
        Engine::Redshift | Engine::Trino => table(p, s),
    }
}

/// A column's declared type; key columns take the primary source's, so that every source's
/// keys join (Tidemark casts them so too).
fn declared(p: &Plan<'_>, s: &SourceConfig, column: &str) -> ColumnType {
    match p.key.iter().find(|k| k.name == column) {
        Some(k) => k.ty,
        None => s.types.get(column).copied().unwrap_or(ColumnType::String),
    }
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
                ColumnType::String if parquet => format!("CAST({raw} AS VARCHAR)"),
                ColumnType::String => raw.clone(),
                // Through TIMESTAMPTZ so that offsets count; naive values are UTC (the session's zone).
                ColumnType::Timestamp => format!("CAST(CAST({raw} AS TIMESTAMPTZ) AS TIMESTAMP)"),
                t => format!("CAST({raw} AS {})", d.column_type(t)),
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
                ColumnType::String if parquet => format!("CAST({raw} AS STRING)"),
                ColumnType::String => text,
                t => format!("CAST({text} AS {})", d.column_type(t)),
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
