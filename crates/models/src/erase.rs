//! Erasure in a dimension: the rows an erased record contributed to, rewritten where they lie
//! (`tidemark erase` runs this for every model with a source on the erased object).
//!
//! - The erased object is the model's **primary** source: the record decided that its keys
//!   exist, so every row of those keys goes, from the dimension and from the state table.
//! - A **secondary** source: the keys belong to another record (an Account a Contact was
//!   joined to); their rows stay, with that source's attributes and bookkeeping column set to
//!   NULL and the change hash recomputed, as if the source had never had a row for them. The
//!   next load then sees no change for those keys.
//!
//! - A **rectification**: the rectified fields the source contributes get their new value in
//!   every row of the keys (the change hash recomputed), as in the object's history.
//!
//! A load reads the current rows and the state in the order their files were written, so a
//! partition holding an affected row is rewritten whole, in that order. The caller holds the
//! model's lease; each table is one scrub commit ([`tidemark_lake::scrub`]), which load
//! recovery looks past.

use std::sync::Arc;

use tidemark_core::models::ModelConfig;
use tidemark_lake::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, new_null_array};
use tidemark_lake::arrow::compute::{filter_record_batch, kernels::zip::zip};
use tidemark_lake::deltalake::DeltaTable;
use tidemark_lake::keys::KeySet;
use tidemark_lake::policy::file_tokens;
use tidemark_lake::scrub::{self, RowTransform, Scrub, ScrubFile, ScrubMetrics};
use tidemark_lake::{LakeError, LakeLocation};

use crate::error::{ModelError, Result};
use crate::load::ModelLoad;
use crate::mart::{StateTable, last_load, open_dimension};

/// What an erasure did to one model.
#[derive(Debug, Clone, Default)]
pub struct DimensionErasure {
    /// Rows of the affected keys before the erasure (dimension, state).
    pub dimension_rows: u64,
    pub state_rows: u64,
    pub dimension: ScrubMetrics,
    pub state: ScrubMetrics,
}

/// The dimension's columns (none before its first load).
pub async fn dimension_columns(lake: &LakeLocation, name: &str) -> Result<Vec<String>> {
    let Some(dimension) = open_dimension(lake, name).await? else { return Ok(Vec::new()) };
    Ok(tidemark_lake::history::arrow_schema(&dimension, name)?.fields().iter().map(|f| f.name().clone()).collect())
}

/// Erases what source `source` of model `name` contributed to the rows whose `columns` (the
/// business key, or the primary columns a secondary source joins on) hold one of `keys` (see
/// the module docs). The caller holds the lease [`LakeLocation::mart_resource`].
pub async fn erase_keys(
    lake: &LakeLocation,
    name: &str,
    model: &ModelConfig,
    source: usize,
    columns: &[String],
    keys: &KeySet,
    rectify: &[(String, ArrayRef)],
) -> Result<DimensionErasure> {
    let mut out = DimensionErasure::default();
    let Some(mut dimension) = open_dimension(lake, name).await? else { return Ok(out) };
    let load = last_load(&dimension, name).await?;
    let mut state = StateTable::open(lake, name).await?;
    if let Some(state) = &state
        && StateTable::load_of(state, name).await? != load
    {
        return Err(ModelError::Invalid {
            model: name.to_owned(),
            message: "a load was interrupted; run `tidemark model run` for it first, then the erasure again".into(),
        });
    }
    let layout = ModelLoad::layout(name, model);
    let key: Vec<String> = columns.to_vec();
    let stored = tidemark_lake::history::arrow_schema(&dimension, name)?;
    if let Some(missing) = key.iter().find(|c| stored.field_with_name(c).is_err()) {
        return Err(ModelError::Invalid {
            model: name.to_owned(),
            message: format!(
                "an erasure cannot find the rows source {} contributed to: the column {missing} it joins on is not in the \
                 dimension (add it to the primary source's columns)",
                model.sources.get(source).map(|s| s.name.as_str()).unwrap_or("?")
            ),
        });
    }
    // Rectified: the source's columns among the fields get the new value; erased from the
    // primary source: the rows go; from another: its attributes and bookkeeping column cleared.
    let contributed = model.sources.get(source).map(|s| s.columns.clone()).unwrap_or_default();
    let set: Vec<(String, ArrayRef)> = rectify.iter().filter(|(f, _)| contributed.contains(f)).cloned().collect();
    if !rectify.is_empty() && set.is_empty() {
        return Ok(out);
    }
    let remove = rectify.is_empty() && source == 0;
    let cleared: Vec<String> = model
        .sources
        .get(source)
        .map(|s| s.columns.clone())
        .unwrap_or_default()
        .into_iter()
        .chain(layout.source_at.get(source).cloned())
        .collect();
    let tracked = model.tracked_columns();
    let (compatibility, hash) = (model.compatibility, layout.hash.clone());

    let transform = |rehash: bool| -> RowTransform {
        let (keys, key, cleared, tracked, hash) = (keys.clone(), key.clone(), cleared.clone(), tracked.clone(), hash.clone());
        let set = set.clone();
        let source_at = layout.source_at.clone();
        Arc::new(move |_, batch: RecordBatch| {
            let names: Vec<&str> = key.iter().map(String::as_str).collect();
            let hit = keys.matches(&batch, &names)?;
            if remove {
                return Ok(filter_record_batch(&batch, &tidemark_lake::arrow::compute::not(&hit)?)?);
            }
            let cleared = if set.is_empty() { clear(&batch, &hit, &cleared)? } else { assign(&batch, &hit, &set)? };
            if !set.is_empty() && !rehash {
                return Ok(cleared);
            }
            let rehashed = if rehash { with_hash(&cleared, &hit, &tracked, &hash, compatibility)? } else { cleared };
            if rehash {
                return Ok(rehashed);
            }
            // A state row left with no source's row at all is no state.
            let some_source: BooleanArray = (0..rehashed.num_rows())
                .map(|r| Some(source_at.iter().any(|c| rehashed.column_by_name(c).is_some_and(|a| a.is_valid(r)))))
                .collect();
            Ok(filter_record_batch(&rehashed, &some_source)?)
        })
    };

    let label = format!("model {name}");
    let (files, rows) = affected_files(&dimension, &label, &key, keys, Some(&layout.current)).await?;
    out.dimension_rows = rows;
    out.dimension = Scrub::new("erase", files, transform(true)).run_on(&mut dimension, &label).await?;
    if let Some(state) = state.as_mut() {
        let label = format!("model {name} state");
        let (files, rows) = affected_files(state, &label, &key, keys, None).await?;
        out.state_rows = rows;
        out.state = Scrub::new("erase", files, transform(false)).run_on(state, &label).await?;
    }
    Ok(out)
}

/// The files to rewrite and the rows of `keys` they hold: the files holding one, and, where a
/// load reads a partition in written order (the current rows, the whole state), every file of
/// that partition, in order.
async fn affected_files(
    table: &DeltaTable,
    label: &str,
    key: &[String],
    keys: &KeySet,
    current: Option<&str>,
) -> Result<(Vec<ScrubFile>, u64)> {
    if keys.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let names: Vec<&str> = key.iter().map(String::as_str).collect();
    let holding = scrub::rows_picked(table, label, Some(&names), |b| keys.matches(b, &names)).await?;
    let rows = holding.iter().map(|(_, n)| n).sum();
    let ordered = |f: &ScrubFile| match current {
        Some(flag) => f.partition_values.get(flag).and_then(|v| v.as_deref()) == Some("true"),
        None => true,
    };
    let mut files: Vec<ScrubFile> = holding.iter().map(|(f, _)| f).filter(|f| !ordered(f)).cloned().collect();
    if holding.iter().any(|(f, _)| ordered(f)) {
        files.extend(file_tokens(table, label).await?.into_iter().filter(ordered));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((files, rows))
}

/// `batch` with `columns` set to NULL where `hit`.
fn clear(batch: &RecordBatch, hit: &BooleanArray, columns: &[String]) -> tidemark_lake::error::Result<RecordBatch> {
    let mut out: Vec<ArrayRef> = batch.columns().to_vec();
    for name in columns {
        let Ok(index) = batch.schema().index_of(name) else { continue };
        let nulls = new_null_array(out[index].data_type(), batch.num_rows());
        out[index] = zip(hit, &nulls, &out[index])?;
    }
    Ok(RecordBatch::try_new(batch.schema(), out)?)
}

/// `batch` with `columns` set to their (one-row) value where `hit`.
fn assign(batch: &RecordBatch, hit: &BooleanArray, columns: &[(String, ArrayRef)]) -> tidemark_lake::error::Result<RecordBatch> {
    let mut out: Vec<ArrayRef> = batch.columns().to_vec();
    for (name, value) in columns {
        let Ok(index) = batch.schema().index_of(name) else { continue };
        let typed = tidemark_lake::arrow::compute::cast(value, out[index].data_type())?;
        let repeated = tidemark_lake::arrow::compute::take(
            typed.as_ref(),
            &tidemark_lake::arrow::array::UInt32Array::from(vec![0u32; batch.num_rows()]),
            None,
        )?;
        out[index] = zip(hit, &repeated, &out[index])?;
    }
    Ok(RecordBatch::try_new(batch.schema(), out)?)
}

/// `batch` with the change hash recomputed where `hit`.
fn with_hash(
    batch: &RecordBatch,
    hit: &BooleanArray,
    tracked: &[String],
    hash: &str,
    compatibility: tidemark_core::models::Compatibility,
) -> tidemark_lake::error::Result<RecordBatch> {
    let Ok(index) = batch.schema().index_of(hash) else { return Ok(batch.clone()) };
    let columns: Vec<ArrayRef> = tracked.iter().filter_map(|c| batch.column_by_name(c).cloned()).collect();
    let hashes = crate::hash::change_hashes(&columns, batch.num_rows(), compatibility)
        .map_err(|e| LakeError::Layout { table: "dimension".into(), detail: e.to_string() })?;
    let mut out: Vec<ArrayRef> = batch.columns().to_vec();
    out[index] = zip(hit, &hashes, &out[index])?;
    Ok(RecordBatch::try_new(batch.schema(), out)?)
}
