//! The comment every `catalog ddl` output starts with: what is registered, from which lake, and
//! what the reader must know for the engine.

use std::fmt::Write as _;

use url::Url;

use super::mart::PreparedMart;
use super::{DdlOptions, Engine, Prepared, trino_catalog};
use crate::names::{END_OF_TIME, HISTORY_SUFFIX, IS_CURRENT, SCD2_SUFFIX, VALID_FROM, VALID_TO, VERSION_ORDER, column_name};

/// The comment every output starts with: what is registered, from which lake, and what the
/// reader must know for this engine.
pub(super) fn header(engine: Engine, tables: &[Prepared<'_>], marts: &[PreparedMart<'_>], options: &DdlOptions) -> String {
    let located: Vec<(&str, &Url)> = tables
        .iter()
        .map(|t| (t.table.object.as_str(), &t.table.location))
        .chain(marts.iter().map(|m| (m.mart.name.as_str(), &m.mart.location)))
        .collect();
    let mut lakes: Vec<String> = located.iter().map(|(_, location)| lake_root(location).to_string()).collect();
    lakes.sort();
    lakes.dedup();
    let mut out =
        format!("-- Tidemark history lake registered in {} (`tidemark catalog ddl --engine {engine}`).\n", engine.label());
    let _ = writeln!(out, "-- Lake: {}", if lakes.is_empty() { "(no tables)".to_owned() } else { lakes.join(", ") });
    if !tables.is_empty() || marts.is_empty() {
        let _ = writeln!(out, "-- Objects: {}", tables.iter().map(|t| t.table.object.as_str()).collect::<Vec<_>>().join(", "));
    }
    if !marts.is_empty() {
        let _ = writeln!(out, "-- Marts: {}", marts.iter().map(|m| m.mart.name.as_str()).collect::<Vec<_>>().join(", "));
    }
    if !tables.is_empty() || marts.is_empty() {
        out.push_str(&object_note());
    }
    if !marts.is_empty() {
        out.push_str(
            "-- Per mart <m> (a dimension model's table): <m> (every row and column as stored) and\n\
             -- <m>_current (the rows whose current-row flag is true).\n",
        );
    }
    for note in engine_notes(engine, options) {
        let _ = writeln!(out, "-- {note}");
    }
    if engine == Engine::RedshiftSpectrum && !marts.is_empty() {
        out.push_str(
            "-- A mart's external table is partitioned by its current-row flag, each value read through its own\n\
             -- manifest (`tidemark catalog manifest` writes them too): regenerate them after every model load.\n",
        );
    }
    for (name, location) in located.iter().filter(|(_, l)| engine != Engine::DuckDb && l.scheme() == "file") {
        let _ = writeln!(
            out,
            "-- WARNING: {name} is a local folder ({location}): {} must be able to read that path.",
            engine.label()
        );
    }
    out
}

/// What each object's three relations are.
fn object_note() -> String {
    format!(
        "-- Per object <t>: <t>{HISTORY_SUFFIX} (every version), <t> (live records: each id's last version unless it\n\
         -- is a delete) and <t>{SCD2_SUFFIX} ({VALID_FROM}, {VALID_TO}, {IS_CURRENT}; {VALID_TO} {END_OF_TIME} when current).\n\
         -- Versions of an id are ordered by {}, ascending (false before true).\n\
         -- The views list columns: run this again after a sync adds columns.\n",
        VERSION_ORDER.map(column_name).join(", ")
    )
}

fn engine_notes(engine: Engine, options: &DdlOptions) -> Vec<String> {
    match engine {
        Engine::DuckDb => vec![
            "INSTALL fetches the delta extension from DuckDB's repository; offline, LOAD it from a file instead:".into(),
            "LOAD '/path/to/delta.duckdb_extension'; (`tidemark catalog ddl` writes that line given the path).".into(),
            "s3:// tables are read with the credentials of a DuckDB secret, e.g.".into(),
            "CREATE SECRET (TYPE s3, PROVIDER credential_chain);".into(),
        ],
        Engine::Athena => vec![
            "Run the statements one at a time (the Athena console runs one per query). The table schema is".into(),
            "read from the Delta log. Athena reads timestamps to the millisecond.".into(),
        ],
        Engine::Trino => vec![
            format!(
                "Needs catalog {} on the Delta Lake connector with delta.register-table-procedure.enabled=true.",
                trino_catalog(options)
            ),
            "register_table fails for a table already registered: drop those lines when running this again.".into(),
            "Trino reads Delta timestamps to the millisecond.".into(),
        ],
        Engine::Spark => vec![
            "Needs Delta Lake on the session (io.delta.sql.DeltaSparkSessionExtension, DeltaCatalog).".into(),
            "<t>_delta is the Delta table itself (mixed-case column names); query the views.".into(),
        ],
        Engine::RedshiftSpectrum => vec![
            "Spectrum reads the files listed in <table>/_symlink_format_manifest/manifest, not the Delta log:".into(),
            "regenerate the manifests after every sync (`tidemark catalog manifest`); until then Redshift".into(),
            "sees the lake as of the last generation. Text columns are VARCHAR(65535) (longer values are cut).".into(),
            "CREATE EXTERNAL TABLE cannot run inside a transaction block.".into(),
        ],
    }
}

/// `s3://b/lake/` for `s3://b/lake/objects/account/` (or `…/marts/dim_customer/`); the location
/// itself when not laid out so.
pub(super) fn lake_root(location: &Url) -> Url {
    let segments: Vec<&str> = location.path_segments().map(|s| s.filter(|p| !p.is_empty()).collect()).unwrap_or_default();
    match segments.iter().rev().nth(1) {
        Some(&"objects" | &"marts") => location.join("../../").unwrap_or_else(|_| location.clone()),
        _ => location.clone(),
    }
}
