//! `tidemark model sql NAME --engine …`: one load of a `dating: load_date` model as SQL
//! statements for DuckDB, Amazon Redshift, Apache Spark (Delta Lake) or Trino (Delta Lake
//! connector), over the same landed files and lake histories, so a team can run its model in
//! another engine.
//!
//! The statements follow the README's load-date semantics in the post's shape:
//! 1. the dimension table, created when missing (Tidemark's bookkeeping columns left out);
//! 2. per source, its latest row per key by `order_by` over every file of its prefix (a full
//!    extract: its newest file only), a status `D` marking the key deleted from that source;
//!    per lake object (`object:`), its live records read from its `<object>_history` relation
//!    (each Id's last version in the lake's version order, deletes left out), ordered by
//!    `_version_at`: a full extract, as `tidemark model run` reads it;
//! 3. checks that stop the run: a row without key or ordering value, a status other than
//!    I/U/D, two different latest rows with one ordering value (a tie), a run date before the
//!    last load's;
//! 4. the snapshot: the primary source left-joined to the others on the business key;
//! 5. the changes: the snapshot full-outer-joined with the current rows and classified, new
//!    surrogate keys numbered above the largest in business-key order;
//! 6. applying them: one `MERGE` (DuckDB, Spark, Trino), or `UPDATE`/`DELETE`/`INSERT` in a
//!    transaction from a temp table of changes (Redshift, as in the post; DuckDB on request).
//!
//! What differs from Tidemark's own loads, by construction: every load re-reads every file
//! (there is no ledger of consumed files, so a prefix must keep every file ever loaded); a
//! surrogate key freed by a same-day delete can be issued again (no ledger of issued keys); a
//! full extract's row older than the one loaded before is taken as is. A lake object's live
//! records are read whole on every run, where `model run` reads them only when the object's
//! table changed: the state is the same either way.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

use chrono::NaiveDate;
use tidemark_core::models::{ColumnType, Compatibility, Dating, ExtractKind, ModelConfig, SourceConfig};
use tidemark_lake::arrow::datatypes::SchemaRef;
use tidemark_lake::columns::{VERSION_AT, VERSION_ORDER};

use crate::error::{ModelError, Result};

mod dialect;
mod read;
mod relations;
mod source_time;
#[cfg(test)]
mod tests;

use dialect::{Dialect, SqlType};
pub use source_time::source_time_statements;

/// An engine [`load_statements`] writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    DuckDb,
    Redshift,
    Spark,
    Trino,
}

impl Engine {
    pub const ALL: [Engine; 4] = [Engine::DuckDb, Engine::Redshift, Engine::Spark, Engine::Trino];

    /// The command-line name (`duckdb`, `redshift`, `spark`, `trino`).
    pub fn name(self) -> &'static str {
        match self {
            Engine::DuckDb => "duckdb",
            Engine::Redshift => "redshift",
            Engine::Spark => "spark",
            Engine::Trino => "trino",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Engine::DuckDb => "DuckDB",
            Engine::Redshift => "Amazon Redshift",
            Engine::Spark => "Apache Spark with Delta Lake",
            Engine::Trino => "Trino with the Delta Lake connector",
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not an [`Engine`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown engine '{0}': expected one of duckdb, redshift, spark, trino")]
pub struct UnknownEngine(pub String);

impl FromStr for Engine {
    type Err = UnknownEngine;

    /// Parses a command-line name, ignoring ASCII case.
    fn from_str(s: &str) -> std::result::Result<Engine, UnknownEngine> {
        Engine::ALL.into_iter().find(|e| e.name().eq_ignore_ascii_case(s.trim())).ok_or_else(|| UnknownEngine(s.to_owned()))
    }
}

/// How the statements change the dimension table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    /// One `MERGE` statement: atomic, one Delta commit (DuckDB 1.4+, Spark, Trino).
    Merge,
    /// A temp table of changes, then `UPDATE`, `DELETE` and `INSERT` in one transaction (the
    /// post's shape; Redshift, whose `MERGE` allows a single `WHEN MATCHED`, and DuckDB).
    Staged,
}

/// Where things are. Every field has a working default.
#[derive(Debug, Clone, Default)]
pub struct SqlOptions {
    /// The lake root. Spark then addresses the dimension as the Delta table
    /// `<lake>/marts/<name>`, and Trino creates its table at that location; without it both
    /// use a table named after the model in the session's catalog and schema.
    pub lake: Option<String>,
    /// Redshift: the external schema holding one table per file source (default
    /// `tidemark_landing`). Trino: the `catalog.schema` of the file sources' tables (default:
    /// the session's). Every engine: the schema of the lake's `<object>_history` relations,
    /// read for lake objects (default: the session's).
    pub source_schema: Option<String>,
    /// Default: [`Apply::Staged`] for Redshift, [`Apply::Merge`] for the others.
    pub apply: Option<Apply>,
}

/// Redshift's external schema of the source tables unless [`SqlOptions::source_schema`] names one.
pub const REDSHIFT_SOURCE_SCHEMA: &str = "tidemark_landing";

/// The statements of one load of `model` dated `run_date`, `;`-terminated, commented.
pub fn load_statements(name: &str, model: &ModelConfig, engine: Engine, run_date: NaiveDate) -> Result<String> {
    load_statements_with(name, model, engine, run_date, &SqlOptions::default())
}

/// [`load_statements`] with the lake root, the source schema or the way changes are applied,
/// for models whose sources are all files (see [`load_statements_over`] for lake objects).
pub fn load_statements_with(
    name: &str,
    model: &ModelConfig,
    engine: Engine,
    run_date: NaiveDate,
    options: &SqlOptions,
) -> Result<String> {
    load_statements_over(name, model, engine, run_date, options, &BTreeMap::new())
}

/// [`load_statements_with`] for a model reading lake objects too: `schemas` holds each source
/// object's history table schema (Arrow, as the lake stores it), by object name, as for
/// [`source_time_statements`]; the column types decide the dimension's column types and the
/// text forms the change hash reads.
pub fn load_statements_over(
    name: &str,
    model: &ModelConfig,
    engine: Engine,
    run_date: NaiveDate,
    options: &SqlOptions,
    schemas: &BTreeMap<String, SchemaRef>,
) -> Result<String> {
    let plan = Plan::new(name, model, engine, run_date, options, schemas)?;
    let mut out = header(&plan);
    for statement in relations::statements(&plan) {
        out.push('\n');
        out.push_str(&statement);
    }
    Ok(out)
}

/// One load to write: the model's names and types resolved, in the engine's spelling.
struct Plan<'a> {
    name: &'a str,
    model: &'a ModelConfig,
    d: Dialect,
    run_date: NaiveDate,
    options: &'a SqlOptions,
    apply: Apply,
    key: Vec<Column>,
    /// Every attribute, in source order.
    attributes: Vec<Column>,
    /// The hashed attributes, in `tracked` order.
    tracked: Vec<Column>,
    /// Attributes overwritten on the current row without a new version: those not tracked.
    type1: Vec<Column>,
    surrogate_key: String,
    effective: String,
    expiry: String,
    current: String,
    hash: String,
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    ty: SqlType,
}

impl<'a> Plan<'a> {
    fn new(
        name: &'a str,
        model: &'a ModelConfig,
        engine: Engine,
        run_date: NaiveDate,
        options: &'a SqlOptions,
        schemas: &BTreeMap<String, SchemaRef>,
    ) -> Result<Plan<'a>> {
        let invalid = |message: String| ModelError::Invalid { model: name.to_owned(), message };
        if model.dating == Dating::SourceTime {
            return Err(invalid(
                "dating: source_time models are rebuilt from the lake's history relations: see source_time_statements".into(),
            ));
        }
        model.validate(name).map_err(|e| invalid(e.to_string()))?;
        if run_date.pred_opt().is_none() {
            return Err(invalid(format!("run date {run_date} has no day before it to end replaced rows on")));
        }
        let apply = options.apply.unwrap_or(if engine == Engine::Redshift { Apply::Staged } else { Apply::Merge });
        match (engine, apply) {
            (Engine::Redshift, Apply::Merge) => {
                return Err(invalid("Redshift's MERGE allows one WHEN MATCHED clause; its load is the staged statements".into()));
            }
            (Engine::Spark | Engine::Trino, Apply::Staged) => {
                return Err(invalid(format!("{} has no UPDATE … FROM; its load is one MERGE", engine.label())));
            }
            _ => {}
        }
        // A lake object's columns are typed as its history table stores them, and must exist
        // there (key columns too: every source joins on them), as `model run` requires.
        let typed = |source: &SourceConfig, c: &String| -> Result<Column> {
            let Some(object) = source.object.as_deref() else {
                let ty = SqlType::Declared(source.types.get(c).copied().unwrap_or(ColumnType::String));
                return Ok(Column { name: c.clone(), ty });
            };
            let at = format!("source {}: ", source.name);
            let schema = schemas
                .get(object)
                .ok_or_else(|| invalid(format!("{at}object {object} has not been synced into this lake (no history table)")))?;
            let field = schema.field_with_name(c).map_err(|_| invalid(format!("{at}{object} has no column {c}")))?;
            let ty = SqlType::of_arrow(field.data_type()).ok_or_else(|| {
                invalid(format!("{at}{object}'s column {c} is {}, which a dimension cannot hold", field.data_type()))
            })?;
            Ok(Column { name: c.clone(), ty })
        };
        let primary = &model.sources[0];
        let key: Vec<Column> = model.key.iter().map(|c| typed(primary, c)).collect::<Result<_>>()?;
        for source in model.sources.iter().skip(1).filter(|s| s.object.is_some()) {
            for c in &model.key {
                typed(source, c)?;
            }
        }
        let mut attributes: Vec<Column> = Vec::new();
        for s in &model.sources {
            for c in &s.columns {
                attributes.push(typed(s, c)?);
            }
        }
        let tracked_names = model.tracked_columns();
        let find = |n: &String| attributes.iter().find(|a| &a.name == n).cloned().expect("validated: tracked are attributes");
        let tracked: Vec<Column> = tracked_names.iter().map(find).collect();
        let type1: Vec<Column> = attributes.iter().filter(|a| !tracked_names.contains(&a.name)).cloned().collect();
        Ok(Plan {
            name,
            model,
            d: Dialect(engine),
            run_date,
            options,
            apply,
            key,
            attributes,
            tracked,
            type1,
            surrogate_key: model.surrogate_key(name),
            effective: model.effective_column(),
            expiry: model.expiry_column(),
            current: model.columns.current.clone(),
            hash: model.columns.hash.clone(),
        })
    }

    fn engine(&self) -> Engine {
        self.d.0
    }

    /// A helper relation of this load (`<model>__<suffix>`), quoted.
    fn relation(&self, suffix: &str) -> String {
        self.d.ident(&format!("{}__{suffix}", self.name))
    }

    /// The dimension table as statements name it.
    fn target(&self) -> String {
        target(self.d, self.name, self.options)
    }
}

/// The dimension table as statements name it: Spark addresses `<lake>/marts/<name>` by path.
fn target(d: Dialect, name: &str, options: &SqlOptions) -> String {
    match (d.0, &options.lake) {
        (Engine::Spark, Some(lake)) => format!("delta.`{}`", mart_location(lake, name).replace('`', "``")),
        _ => d.ident(name),
    }
}

/// What follows a `CREATE TABLE`'s column list: Delta and its partitioning by the current flag
/// (Spark), the table's location and partitioning (Trino).
fn table_options(d: Dialect, name: &str, options: &SqlOptions, current: &str) -> String {
    match (d.0, &options.lake) {
        (Engine::Spark, _) => format!("\nUSING DELTA\nPARTITIONED BY ({})", d.ident(current)),
        (Engine::Trino, Some(lake)) => {
            format!("\nWITH (location = {}, partitioned_by = ARRAY[{}])", d.string(&mart_location(lake, name)), d.string(current))
        }
        (Engine::Trino, None) => format!("\nWITH (partitioned_by = ARRAY[{}])", d.string(current)),
        _ => String::new(),
    }
}

fn mart_location(lake: &str, name: &str) -> String {
    format!("{}/marts/{name}", lake.trim_end_matches('/'))
}

/// The comment every output starts with: what runs where, and what the reader must know.
fn header(p: &Plan<'_>) -> String {
    let engine = p.engine();
    let mut out = format!(
        "-- Tidemark model {}: one load dated {}, as {} statements\n\
         -- (`tidemark model sql {} --engine {engine}`). Run them in order in one session; stop at the first error.\n",
        p.name,
        p.run_date,
        engine.label(),
        p.name
    );
    let mut note = |line: String| {
        let _ = writeln!(out, "-- {line}");
    };
    note(format!(
        "Dimension: {} ({}, business key, attributes, {}, {}, {}, {}).",
        p.target(),
        p.surrogate_key,
        p.effective,
        p.expiry,
        p.current,
        p.hash
    ));
    note("Tidemark's bookkeeping columns (_load_id, _<source>_at) are not written.".into());
    for (i, s) in p.model.sources.iter().enumerate() {
        let role = if i == 0 { "primary: decides which keys exist" } else { "left-joined on the business key" };
        let extract = match (s.extract, &s.status_column, &s.object) {
            (_, _, Some(object)) => format!("the lake object {object}'s live records: a full extract"),
            (ExtractKind::Full, _, None) => "full extract: its newest file is the whole source".to_owned(),
            (ExtractKind::ChangeOnly, Some(c), None) => format!("change-only, {c} = 'D' deletes"),
            (ExtractKind::ChangeOnly, None, None) => "change-only".to_owned(),
        };
        note(format!("Source {} ({role}): {}; latest row per key by {}; {extract}.", s.name, source_place(p, s), ordering(s)));
    }
    if p.model.sources.iter().any(|s| s.object.is_none()) {
        note("Each file source's state is its latest row per key over EVERY file of its prefix (the post's".into());
        note("views): keep every file ever loaded there.".into());
    }
    if p.model.sources.iter().any(|s| s.object.is_some()) {
        let order = VERSION_ORDER.map(str::to_lowercase).join(", ");
        note(format!("Each lake object's state is its live records: each id's last version by {order}"));
        note("(descending), unless that version is a delete. A key not live is deleted from that source.".into());
    }
    note("New rows start on the run date and end 9999-12-31; changed or deleted current rows end the day".into());
    note("before. A change to a row that started on the run date replaces it in place; a delete of such a".into());
    note("row removes it.".into());
    let tracked = p.tracked.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
    note(match p.model.compatibility {
        Compatibility::Default => {
            format!("Change hash: SHA-256 hex of 'N' (NULL) or 'V<bytes>:<text>' per attribute: {tracked}.")
        }
        Compatibility::RedshiftPost if engine == Engine::DuckDb => format!(
            "Change hash (redshift-post): DuckDB has no SHA-512, so its hash column holds SHA-256 hex of coalesce(text, '') concatenated ({tracked}); changes are found alike because each load rehashes the current rows."
        ),
        Compatibility::RedshiftPost => {
            format!("Change hash (redshift-post): SHA-512 hex of coalesce(text, '') concatenated: {tracked}.")
        }
    });
    note("Surrogate keys: above the largest in the table, in business-key order. A key freed by a same-day delete can be issued again (no ledger).".into());
    for line in engine_notes(p) {
        note(line);
    }
    out
}

fn source_place(p: &Plan<'_>, s: &SourceConfig) -> String {
    match (p.engine(), &s.object) {
        (_, Some(object)) => history_relation(p.d, p.options, object),
        (Engine::DuckDb | Engine::Spark, None) => read::prefix(s).to_owned(),
        (Engine::Redshift | Engine::Trino, None) => read::source_table(p, s),
    }
}

/// The column ordering a source's rows: `order_by`, or a lake object's `_version_at`.
fn ordering(s: &SourceConfig) -> &str {
    match &s.object {
        Some(_) => VERSION_AT,
        None => s.order_by.as_deref().expect("validated: file sources have order_by"),
    }
}

/// The `<object>_history` relation `tidemark catalog ddl --engine …` registers, after
/// [`SqlOptions::source_schema`] when set.
fn history_relation(d: Dialect, options: &SqlOptions, object: &str) -> String {
    let schema = options.source_schema.as_deref().map(|s| format!("{s}.")).unwrap_or_default();
    format!("{schema}{}", d.ident(&source_time::history_name(object)))
}

fn engine_notes(p: &Plan<'_>) -> Vec<String> {
    // Lines marked true are about reading files: left out when every source is a lake object.
    let lines: Vec<(bool, String)> = match p.engine() {
        Engine::DuckDb => vec![
            (
                false,
                if p.apply == Apply::Merge {
                    "Needs DuckDB 1.4 or later (for its MERGE). The dimension is a table of the current database.".into()
                } else {
                    "The dimension is a table of the current database.".into()
                },
            ),
            (true, "Reads <prefix>/**/*.csv and .txt (format: parquet: *.parquet); each prefix must hold at least one such".into()),
            (true, "file. Names starting with _ or . are skipped. s3:// prefixes need httpfs and a secret.".into()),
            (true, "An unquoted empty field is NULL, a quoted one '' (allow_quoted_nulls = false).".into()),
        ],
        Engine::Redshift => vec![
            (
                true,
                format!(
                    "Assumes the post's external schema: one external table per source, {}.<source>, over its prefix,",
                    p.options.source_schema.as_deref().unwrap_or(REDSHIFT_SOURCE_SCHEMA)
                ),
            ),
            (true, "with the declared column types (its SerDe decides NULL versus ''); full extracts use its \"$path\".".into()),
            (false, "Redshift has no function that raises an error from a query: each check divides by zero to stop".into()),
            (false, "the script. Text values beyond 65535 bytes (VARCHAR's limit) cannot be hashed.".into()),
        ],
        Engine::Spark => vec![
            (false, "Needs Delta Lake on the session (io.delta.sql.DeltaSparkSessionExtension, DeltaCatalog); Spark 3.1+.".into()),
            (true, "Files are read through temporary views; the files of one prefix must share one header. A quoted empty".into()),
            (true, "field is read as '' through a marker value (Spark otherwise reads it as NULL).".into()),
        ],
        Engine::Trino => vec![
            (
                true,
                format!(
                    "Assumes one table per source, {}<source>, over its prefix (Hive connector) with the declared",
                    p.options.source_schema.as_deref().map(|s| format!("{s}.")).unwrap_or_default()
                ),
            ),
            (true, "column types and NULL for empty fields; full extracts use its \"$path\".".into()),
            (false, "The helper views these statements create (<model>__…) persist in the current schema; the next run replaces them.".into()),
        ],
    };
    let files = p.model.sources.iter().any(|s| s.object.is_none());
    let mut notes: Vec<String> = lines.into_iter().filter(|(about_files, _)| files || !about_files).map(|(_, l)| l).collect();
    if p.model.sources.iter().any(|s| s.object.is_some()) {
        let ddl = match p.engine() {
            Engine::Redshift => "redshift-spectrum",
            other => other.name(),
        };
        let place = match &p.options.source_schema {
            Some(schema) => format!("in {schema}"),
            None => "in the session's current schema".to_owned(),
        };
        notes.push("Lake objects are read from the <object>_history relations (lower-case columns) that".into());
        notes.push(format!("`tidemark catalog ddl --engine {ddl}` registers {place}: run its statements first."));
    }
    if p.engine() != Engine::DuckDb && p.model.sources.iter().any(|s| s.extract == ExtractKind::Full && s.object.is_none()) {
        notes.push("A full extract's newest file is the newest holding rows: an empty newest file is not seen.".into());
    }
    if p.tracked.iter().any(|c| c.ty == SqlType::Declared(ColumnType::Double)) && p.engine() != Engine::DuckDb {
        notes
            .push("Doubles hash by the engine's shortest text; Redshift's and older JVMs' may be longer than Tidemark's.".into());
    }
    notes
}
