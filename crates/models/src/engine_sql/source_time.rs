//! `tidemark model sql` for `dating: source_time` models: the dimension rebuilt whole from the
//! sources' version histories by the query `tidemark model run` executes in DataFusion
//! ([`crate::timeline::query`]), spelled for another engine, then swapped in for the old rows.
//!
//! The histories are read as `tidemark catalog ddl --engine …` registers them: a relation
//! `<object>_history` per object with lower-case column names.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use tidemark_core::models::{ColumnType, Compatibility, Dating, ModelConfig, SourceConfig};
use tidemark_lake::arrow::datatypes::{DataType, SchemaRef};

use super::dialect::{Dialect, SqlType};
use super::{Engine, SqlOptions, history_relation, table_options, target};
use crate::error::{ModelError, Result};
use crate::load::ModelLoad;
use crate::mart::Layout;
use crate::timeline::query::{Spelling, dimension_query};

/// The statements that rebuild source-time model `name` in `engine`. `schemas` holds each
/// source object's history table schema (Arrow, as the lake stores it), by object name: the
/// column types decide the dimension's column types and the text forms the change hash reads.
pub fn source_time_statements(
    name: &str,
    model: &ModelConfig,
    engine: Engine,
    options: &SqlOptions,
    schemas: &BTreeMap<String, SchemaRef>,
) -> Result<String> {
    let invalid = |message: String| ModelError::Invalid { model: name.to_owned(), message };
    if model.dating != Dating::SourceTime {
        return Err(invalid("source_time_statements writes dating: source_time models only".into()));
    }
    model.validate(name).map_err(|e| invalid(e.to_string()))?;
    let d = Dialect(engine);
    let layout = ModelLoad::layout(name, model);
    let mut types: BTreeMap<String, DataType> = BTreeMap::new();
    for (i, source) in model.sources.iter().enumerate() {
        let object = source.object.as_deref().expect("validated: source-time sources are objects");
        let schema = schemas.get(object).ok_or_else(|| invalid(format!("object {object} has no history table in the lake")))?;
        let key: &[String] = if i == 0 { &model.key } else { &[] };
        for column in key.iter().chain(&source.columns) {
            let field = schema
                .field_with_name(column)
                .map_err(|_| invalid(format!("source {}: {object} has no column {column}", source.name)))?;
            types.insert(column.clone(), field.data_type().clone());
        }
    }
    let sql_type = |t: &DataType| -> Result<String> {
        Ok(d.sql_type(SqlType::of_arrow(t).ok_or_else(|| invalid(format!("a column of type {t} cannot be modelled")))?))
    };
    let spelling = EngineSpelling { d, name, model, options, types: &types, layout: &layout };
    let query = dimension_query(model, &layout, &spelling);

    let mut columns = vec![format!("{} BIGINT", d.ident(&layout.surrogate_key))];
    for c in model.key.iter().chain(&layout.attributes) {
        columns.push(format!("{} {}", d.ident(c), sql_type(&types[c])?));
    }
    let timestamp = d.column_type(ColumnType::Timestamp);
    columns.push(format!("{} {timestamp}", d.ident(&layout.effective)));
    columns.push(format!("{} {timestamp}", d.ident(&layout.expiry)));
    columns.push(format!("{} BOOLEAN", d.ident(&layout.current)));
    columns.push(format!("{} {}", d.ident(&layout.hash), d.hash_type()));
    let mut names = vec![layout.surrogate_key.clone()];
    names.extend(model.key.iter().chain(&layout.attributes).cloned());
    names.extend([layout.effective.clone(), layout.expiry.clone(), layout.current.clone(), layout.hash.clone()]);
    let list = names.iter().map(|n| d.ident(n)).collect::<Vec<_>>().join(", ");
    let table = target(d, name, options);
    let rows = d.ident(&format!("{name}__rows"));

    let mut out = header(name, model, engine, &layout);
    match engine {
        Engine::DuckDb => out.push_str("\nSET TimeZone = 'UTC';\n"),
        Engine::Spark => out.push_str("\nSET TIME ZONE 'UTC';\n"),
        Engine::Redshift | Engine::Trino => {}
    }
    let _ = write!(
        out,
        "\n-- The dimension, created by the first load.\nCREATE TABLE IF NOT EXISTS {table} (\n  {}\n){};\n",
        columns.join(",\n  "),
        table_options(d, name, options, &layout.current)
    );
    let body = format!("SELECT {list} FROM (\n{query}\n) dimension");
    out.push_str("\n-- Every row of the dimension, computed from the histories (surrogate keys kept by key and start).\n");
    match engine {
        Engine::DuckDb => {
            let _ = write!(
                out,
                "CREATE OR REPLACE TEMP TABLE {rows} AS\n{body};\n\nBEGIN TRANSACTION;\nDELETE FROM {table};\nINSERT INTO {table} ({list}) SELECT {list} FROM {rows};\nCOMMIT;\n"
            );
        }
        Engine::Redshift => {
            let _ = write!(
                out,
                "DROP TABLE IF EXISTS {rows};\nCREATE TEMP TABLE {rows} AS\n{body};\n\nBEGIN;\nDELETE FROM {table};\nINSERT INTO {table} ({list}) SELECT {list} FROM {rows};\nCOMMIT;\n"
            );
        }
        Engine::Spark => {
            let _ = write!(
                out,
                "CREATE OR REPLACE TEMPORARY VIEW {rows} AS\n{body};\n\n-- One Delta commit; the view reads the table's snapshot from before it.\nINSERT OVERWRITE {table} SELECT {list} FROM {rows};\n"
            );
        }
        Engine::Trino => {
            let _ = write!(
                out,
                "DROP TABLE IF EXISTS {rows};\nCREATE TABLE {rows} AS\n{body};\n\nDELETE FROM {table};\nINSERT INTO {table} ({list}) SELECT {list} FROM {rows};\nDROP TABLE {rows};\n"
            );
        }
    }
    Ok(out)
}

fn header(name: &str, model: &ModelConfig, engine: Engine, layout: &Layout) -> String {
    let mut out = format!(
        "-- Tidemark model {name}: the source-time dimension rebuilt from the sources' histories, as {} statements\n\
         -- (`tidemark model sql {name} --engine {engine}`). Run them in order in one session; stop at the first error.\n",
        engine.label()
    );
    let mut note = |line: &str| {
        let _ = writeln!(out, "-- {line}");
    };
    note(&format!(
        "Reads the relations `tidemark catalog ddl --engine {engine}` registers: {}.",
        model.sources.iter().map(|s| history_name(s.object.as_deref().unwrap_or_default())).collect::<Vec<_>>().join(", ")
    ));
    note("A row starts at each instant (a version's _version_at) the key's tracked attributes change, and ends");
    note("where the next starts (half-open) or on 9999-12-31; a delete of the primary record ends it.");
    note(&format!("Tidemark's bookkeeping columns (_load_id, {}) are not written.", layout.source_at.join(", ")));
    note(match model.compatibility {
        Compatibility::Default => "Change hash: SHA-256 hex of 'N' (NULL) or 'V<bytes>:<text>' per tracked attribute.",
        Compatibility::RedshiftPost => {
            "Change hash (redshift-post): SHA-512 hex of coalesce(text, '') concatenated (SHA-256 in DuckDB)."
        }
    });
    note("Surrogate keys: a row keeps the key of the row with the same business key and start; new rows are");
    note("numbered above the largest in the table (Tidemark numbers above the largest ever issued).");
    if engine == Engine::Trino {
        note("Trino has no multi-statement transaction: between the DELETE and the INSERT the table is empty.");
    }
    out
}

/// The history relation of `object` as `tidemark catalog ddl` names it (`account_history`).
pub(super) fn history_name(object: &str) -> String {
    format!("{}_history", object.to_lowercase())
}

struct EngineSpelling<'a> {
    d: Dialect,
    name: &'a str,
    model: &'a ModelConfig,
    options: &'a SqlOptions,
    types: &'a BTreeMap<String, DataType>,
    layout: &'a Layout,
}

impl Spelling for EngineSpelling<'_> {
    fn ident(&self, name: &str) -> String {
        self.d.ident(name)
    }
    fn history(&self, source: &SourceConfig, _: usize) -> String {
        history_relation(self.d, self.options, source.object.as_deref().unwrap_or_default())
    }
    fn source_column(&self, name: &str) -> String {
        self.d.ident(&name.to_lowercase())
    }
    fn change_hash(&self, tracked: &[String]) -> String {
        let texts: Vec<(String, String)> = tracked
            .iter()
            .map(|c| {
                let e = self.d.ident(c);
                let text = match self.types.get(c).and_then(SqlType::of_arrow) {
                    Some(t) => self.d.typed_text(&e, t),
                    None => e.clone(),
                };
                (e, text)
            })
            .collect();
        self.d.change_hash_of_texts(&texts, self.model.compatibility)
    }
    fn open_end(&self) -> String {
        "TIMESTAMP '9999-12-31 00:00:00'".into()
    }
    fn previous(&self) -> Option<String> {
        Some(target(self.d, self.name, self.options))
    }
    fn issued_surrogate_keys(&self) -> String {
        format!(
            "(SELECT COALESCE(MAX({}), 0) FROM {})",
            self.d.ident(&self.layout.surrogate_key),
            target(self.d, self.name, self.options)
        )
    }
    fn load_id(&self) -> Option<i64> {
        None
    }
}
