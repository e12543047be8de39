//! Rows into a table's layout: the metadata columns and `_key` added, unchanged values
//! filled from each record's previous version.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMicrosecondArray, new_null_array};
use deltalake::arrow::compute::{cast, interleave};
use deltalake::arrow::datatypes::{DataType, Field, Schema};

use super::{IngestError, TableState};
use crate::columns::{DELETED, ID, INGESTED_AT, KEY, LSN, ORIGIN, RUN_ID, VERSION_AT, metadata_fields};
use crate::error::Result;
use crate::source::{TableLayout, TableSpec, Versions};

/// A new table's schema: the metadata columns, then (in a source's namespace) `_key` and
/// `_lsn`, then the source's fields, all nullable but an object's `Id`.
pub(super) fn initial_schema(spec: &TableSpec, layout: TableLayout) -> Schema {
    let mut fields = metadata_fields();
    if layout == TableLayout::Source {
        fields.push(Field::new(KEY, DataType::Utf8, true));
        fields.push(Field::new(LSN, DataType::Int64, true));
    }
    let required = |f: &Field| layout == TableLayout::Objects && f.name() == ID;
    fields.extend(spec.fields.iter().map(|f| {
        let metadata = super::policies::initial_metadata(&spec.policies, f.name());
        f.as_ref().clone().with_metadata(metadata).with_nullable(!required(f))
    }));
    Schema::new(fields)
}

/// The source's batch in the table's layout: metadata columns and `_key` added, or, for the
/// objects namespace (whose batches come in the table's columns), the table's columns picked
/// by name.
pub(super) fn shape(
    state: &TableState,
    v: &Versions,
    layout: TableLayout,
    run_id: &str,
    ingested_micros: i64,
) -> std::result::Result<RecordBatch, String> {
    if layout == TableLayout::Objects {
        return project(state, v, run_id, ingested_micros);
    }
    let batch = &v.batch;
    let rows = batch.num_rows();
    let by_name: HashMap<String, usize> =
        batch.schema().fields().iter().enumerate().map(|(i, f)| (f.name().to_ascii_lowercase(), i)).collect();
    let required = |name: &str| -> std::result::Result<&ArrayRef, String> {
        by_name.get(name).map(|&i| batch.column(i)).ok_or_else(|| format!("versions without their {name} column"))
    };
    // Column → the source field writing to it.
    let fields_of: HashMap<&str, usize> =
        state.columns.iter().filter_map(|(field, column)| by_name.get(field).map(|&i| (column.as_str(), i))).collect();
    let key = key_text(batch, &state.spec.key, &by_name)?;
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(state.schema.fields().len());
    for f in state.schema.fields() {
        let array: ArrayRef = match f.name().as_str() {
            VERSION_AT | DELETED | LSN => required(f.name())?.clone(),
            ORIGIN | RUN_ID | INGESTED_AT => run_column(f.name(), v, run_id, ingested_micros).expect("a run column"),
            KEY => key.clone(),
            name => match fields_of.get(name) {
                Some(&i) => batch.column(i).clone(),
                None => new_null_array(f.data_type(), rows),
            },
        };
        let array = if array.data_type() == f.data_type() {
            array
        } else {
            cast(&array, f.data_type()).map_err(|e| format!("column {}: {e}", f.name()))?
        };
        columns.push(array);
    }
    RecordBatch::try_new(state.schema.clone(), columns).map_err(|e| e.to_string())
}

/// A batch in the table's columns, projected onto its current schema: `_version_at`, `_deleted`
/// and `Id` are required, the other metadata columns default to the run's, and a field the
/// batch lacks is null.
fn project(state: &TableState, v: &Versions, run_id: &str, ingested_micros: i64) -> std::result::Result<RecordBatch, String> {
    let batch = &v.batch;
    let rows = batch.num_rows();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(state.schema.fields().len());
    for f in state.schema.fields() {
        let array = match batch.column_by_name(f.name()) {
            Some(a) if a.data_type() == f.data_type() => a.clone(),
            Some(a) => cast(a, f.data_type()).map_err(|e| format!("column {}: {e}", f.name()))?,
            None => match f.name().as_str() {
                VERSION_AT | DELETED | ID => return Err(format!("versions without their {} column", f.name())),
                _ => run_column(f.name(), v, run_id, ingested_micros).unwrap_or_else(|| new_null_array(f.data_type(), rows)),
            },
        };
        columns.push(array);
    }
    RecordBatch::try_new(state.schema.clone(), columns).map_err(|e| e.to_string())
}

/// The metadata columns the lake stamps: `_origin` (the capture kind), `_run_id`, `_ingested_at`.
fn run_column(name: &str, v: &Versions, run_id: &str, ingested_micros: i64) -> Option<ArrayRef> {
    let rows = v.batch.num_rows();
    Some(match name {
        ORIGIN => Arc::new(StringArray::from(vec![v.kind.as_str(); rows])),
        RUN_ID => Arc::new(StringArray::from(vec![run_id; rows])),
        INGESTED_AT => Arc::new(TimestampMicrosecondArray::from(vec![ingested_micros; rows]).with_timezone("UTC")),
        _ => return None,
    })
}

/// `_key` of each row of `batch`: the values of its `key` fields (matched case-insensitively)
/// as text; several fields as a JSON array of texts. Sources that compare rows with the lake's
/// (a polled table) key them the same way.
pub fn record_keys(batch: &RecordBatch, key: &[String]) -> std::result::Result<ArrayRef, String> {
    let by_name: HashMap<String, usize> =
        batch.schema().fields().iter().enumerate().map(|(i, f)| (f.name().to_ascii_lowercase(), i)).collect();
    key_text(batch, key, &by_name)
}

/// `_key`: the key fields' values as text; several fields as a JSON array of texts.
fn key_text(batch: &RecordBatch, key: &[String], by_name: &HashMap<String, usize>) -> std::result::Result<ArrayRef, String> {
    let texts: Vec<StringArray> = key
        .iter()
        .map(|k| {
            let i = by_name.get(&k.to_ascii_lowercase()).ok_or_else(|| format!("versions without key field {k}"))?;
            cast(batch.column(*i), &DataType::Utf8).map(|a| a.as_string::<i32>().clone()).map_err(|e| e.to_string())
        })
        .collect::<std::result::Result<_, _>>()?;
    if let [one] = texts.as_slice() {
        return Ok(Arc::new(one.clone()));
    }
    let rows = batch.num_rows();
    let keys: StringArray = (0..rows)
        .map(|r| {
            let parts: Vec<serde_json::Value> =
                texts.iter().map(|t| if t.is_valid(r) { t.value(r).into() } else { serde_json::Value::Null }).collect();
            Some(serde_json::Value::Array(parts).to_string())
        })
        .collect();
    Ok(Arc::new(keys))
}

/// Fills the cells the source did not send from each record's previous version: an earlier
/// row of the batch, a pending version, or the committed live state. Returns the batch and
/// how many cells were filled.
pub(super) async fn fill_unchanged(
    source: &str,
    // `&mut`: the run's future must be `Send`, and a writer is not `Sync`.
    state: &mut TableState,
    batch: RecordBatch,
    unchanged: &[(String, Vec<u32>)],
    continues: &[(u32, u32)],
) -> Result<(RecordBatch, u64), IngestError> {
    if unchanged.iter().all(|(_, rows)| rows.is_empty()) {
        return Ok((batch, 0));
    }
    let keys = batch.column_by_name(KEY).expect("shaped").as_string::<i32>().clone();
    // Per row, the previous row of its key in this batch.
    let mut last: HashMap<&str, usize> = HashMap::new();
    let mut previous: Vec<Option<usize>> = vec![None; batch.num_rows()];
    for (r, p) in previous.iter_mut().enumerate() {
        if keys.is_valid(r) {
            *p = last.insert(keys.value(r), r);
        }
    }
    // A record continuing another (a changed key) takes that record's history: the version
    // before its delete.
    let mut lookup_key: Vec<Option<&str>> = (0..batch.num_rows()).map(|r| keys.is_valid(r).then(|| keys.value(r))).collect();
    for &(row, earlier) in continues {
        let (row, earlier) = (row as usize, earlier as usize);
        previous[row] = previous[earlier];
        lookup_key[row] = lookup_key[earlier];
    }
    // Keys whose previous version is neither in the batch nor pending: read from the lake.
    let mut wanted: Vec<String> = Vec::new();
    for (_, rows) in unchanged {
        for &r in rows {
            let r = r as usize;
            if let (None, Some(k)) = (previous[r], lookup_key[r]) {
                if !state.pending.rows.contains_key(k) {
                    wanted.push(k.to_owned());
                }
            }
        }
    }
    wanted.sort();
    wanted.dedup();
    let committed = committed_versions(state, &wanted).await?;
    let committed_rows: HashMap<String, usize> = match &committed {
        Some(b) => {
            let k = crate::read::utf8(b.column_by_name(KEY).expect("selected"))?;
            (0..b.num_rows()).filter(|&r| k.is_valid(r)).map(|r| (k.value(r).to_owned(), r)).collect()
        }
        None => HashMap::new(),
    };
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    let mut filled = 0u64;
    for (field, rows) in unchanged {
        let Some(column) = state.columns.get(&field.to_ascii_lowercase()) else { continue };
        let c = batch.schema().index_of(column)?;
        let mut unchanged_row = vec![false; batch.num_rows()];
        for &r in rows {
            unchanged_row[r as usize] = true;
        }
        // Sources: 0 = this batch, 1.. = pending batches, last = committed versions.
        let mut arrays: Vec<ArrayRef> = vec![batch.column(c).clone()];
        arrays.extend(state.pending.batches.iter().map(|b| b.column(c).clone()));
        let committed_index = arrays.len();
        if let Some(b) = &committed {
            arrays.push(cast(b.column_by_name(column).expect("selected"), batch.schema().field(c).data_type())?);
        }
        let mut resolved: Vec<(usize, usize)> = Vec::with_capacity(batch.num_rows());
        for r in 0..batch.num_rows() {
            if !unchanged_row[r] {
                resolved.push((0, r));
                continue;
            }
            let from = match previous[r] {
                Some(p) => resolved[p],
                None => match lookup_key[r] {
                    Some(k) => match state.pending.rows.get(k) {
                        Some(&(b, row)) => (b + 1, row),
                        None => match committed_rows.get(k) {
                            Some(&row) => (committed_index, row),
                            None => {
                                return Err(IngestError::Contract {
                                    source_name: source.to_owned(),
                                    table: state.spec.name.clone(),
                                    detail: format!(
                                        "an unchanged value of {field} for a record with no earlier version in the lake (key {} characters long)",
                                        k.len()
                                    ),
                                });
                            }
                        },
                    },
                    None => {
                        return Err(IngestError::Contract {
                            source_name: source.to_owned(),
                            table: state.spec.name.clone(),
                            detail: format!("an unchanged value of {field} in a version without a key"),
                        });
                    }
                },
            };
            filled += 1;
            resolved.push(from);
        }
        let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
        columns[c] = interleave(&refs, &resolved)?;
    }
    Ok((RecordBatch::try_new(batch.schema(), columns)?, filled))
}

/// The committed live versions of `keys` (all columns), `None` when there are none to read.
async fn committed_versions(state: &mut TableState, keys: &[String]) -> Result<Option<RecordBatch>, IngestError> {
    if keys.is_empty() || state.table.version().is_none() {
        return Ok(None);
    }
    let ctx = state.table.session().await?;
    let mut batches = Vec::new();
    let columns: Vec<String> = state.schema.fields().iter().map(|f| f.name().clone()).collect();
    for chunk in keys.chunks(1000) {
        let list = chunk.iter().map(|k| format!("'{}'", k.replace('\'', "''"))).collect::<Vec<_>>().join(", ");
        let sql = format!("{} WHERE {} IN ({list})", crate::read::live_sql(&columns), crate::read::quote(KEY));
        batches.extend(state.table.collect(&ctx, &sql).await?);
    }
    if batches.is_empty() {
        return Ok(None);
    }
    let schema = batches[0].schema();
    Ok(Some(deltalake::arrow::compute::concat_batches(&schema, &batches)?))
}
