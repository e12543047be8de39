//! Source-time dimensions: rows dated by the source records' own version times.
//!
//! A key's timeline has an instant for each version of its primary record and, while the
//! primary record points at a secondary record (`join`), for each version of that record. At
//! each instant the key's state is the primary version then in force joined with the secondary
//! versions then in force; consecutive instants with the same tracked hash make one row, valid
//! from the first instant up to (not including) the next row's, or to 9999-12-31 when current.
//! A deleted primary record ends its row (no current row); an undelete starts a new one.
//!
//! The dimension is a function of the sources' histories: each load recomputes it whole, so a
//! version that arrives late takes its place in the timeline (splitting the row it falls in)
//! and the result never depends on arrival order. A row whose key and start instant existed
//! before keeps its surrogate key.
//!
//! Memory: the sources' histories are held while the dimension is computed (they are the
//! projection of the model's columns, not whole records).

use std::collections::HashMap;
use std::sync::Arc;

use tidemark_core::models::{ModelConfig, SourceConfig};
use tidemark_lake::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, TimestampMicrosecondArray, new_null_array,
};
use tidemark_lake::arrow::compute::{concat_batches, interleave, take};
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMicrosecondType};
use tidemark_lake::columns::{DELETED, VERSION_AT};
use tidemark_lake::read::{HISTORY, quote};
use tidemark_lake::{HistoryTable, LakeLocation};

use crate::error::{ModelError, Result};
use crate::extract::KeyCodec;
use crate::mart::{LOAD_ID, Layout, timestamp_type};

/// 9999-12-31T00:00:00Z in µs: the open end of a current row.
pub const OPEN_END_MICROS: i64 = 253_402_214_400_000_000;

/// One source's history, sorted by its key and version order.
struct History {
    batch: RecordBatch,
    version: u64,
}

/// The Delta versions of the sources read, by source name (a load with the same versions as
/// the last one has nothing new).
pub type SourceVersions = std::collections::BTreeMap<String, u64>;

/// Reads a source's versions: `key` columns, the version time and flag, the wanted columns.
async fn read_history(
    lake: &LakeLocation,
    model: &str,
    source: &SourceConfig,
    key: &[String],
    extra: &[String],
) -> Result<History> {
    let object = source.object.as_deref().expect("lake source");
    let table = HistoryTable::open(lake, object).await?.ok_or_else(|| ModelError::Invalid {
        model: model.to_owned(),
        message: format!("source {}: object {object} has not been synced into this lake", source.name),
    })?;
    let present = table.column_names()?;
    let mut select: Vec<String> = key.iter().chain(extra).cloned().collect();
    select.extend([VERSION_AT.to_owned(), DELETED.to_owned()]);
    select.extend(source.columns.iter().cloned());
    select.dedup();
    if let Some(missing) = select.iter().find(|c| !present.contains(c)) {
        return Err(ModelError::Invalid {
            model: model.to_owned(),
            message: format!("source {}: {object} has no column {missing}", source.name),
        });
    }
    let mut order: Vec<String> = key.iter().map(|k| quote(k)).collect();
    order.extend(["_version_at", "_ingested_at", "_deleted"].map(quote));
    let sql = format!(
        "SELECT {} FROM {HISTORY} ORDER BY {}",
        select.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", "),
        order.join(", ")
    );
    let ctx = table.session().await?;
    let batches = table.collect(&ctx, &sql).await?;
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => Arc::new(Schema::new(Vec::<Field>::new())),
    };
    let batch = if batches.is_empty() { RecordBatch::new_empty(schema) } else { concat_batches(&schema, &batches)? };
    // Strings come back as views from scans; the dimension stores plain strings.
    let batch = to_plain_strings(batch)?;
    Ok(History { batch, version: table.version().unwrap_or_default() })
}

/// A lake scan's batch with string views as plain strings (what the dimension stores).
pub(crate) fn to_plain_strings(batch: RecordBatch) -> Result<RecordBatch> {
    let fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8View | DataType::LargeUtf8 => Field::new(f.name(), DataType::Utf8, true),
            t => Field::new(f.name(), t.clone(), true),
        })
        .collect();
    let columns = batch
        .columns()
        .iter()
        .zip(&fields)
        .map(|(c, f)| tidemark_lake::arrow::compute::cast(c, f.data_type()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// A secondary source's join: (primary column, its column); default the key on both sides.
fn join_of(model: &ModelConfig, source: &SourceConfig) -> (String, String) {
    match source.join.iter().next() {
        Some((p, s)) => (p.clone(), s.clone()),
        None => (model.key[0].clone(), model.key[0].clone()),
    }
}

/// A dimension computed from the sources' histories.
pub struct Computed {
    pub rows: RecordBatch,
    pub versions: SourceVersions,
    pub next_surrogate_key: i64,
}

/// Existing rows: (key, start instant) → (surrogate key, load that wrote it).
pub type Existing = HashMap<(Vec<u8>, i64), (i64, i64)>;

/// Computes the whole dimension of a source-time model.
pub async fn compute(
    lake: &LakeLocation,
    name: &str,
    model: &ModelConfig,
    layout: &Layout,
    existing: &Existing,
    next_surrogate_key: i64,
    load: i64,
) -> Result<Computed> {
    let primary_source = &model.sources[0];
    let joins: Vec<String> = model.sources[1..].iter().map(|s| join_of(model, s).0).collect();
    let primary = read_history(lake, name, primary_source, &model.key, &joins).await?;
    let mut secondaries = Vec::new();
    for source in &model.sources[1..] {
        let target = vec![join_of(model, source).1];
        let history = read_history(lake, name, source, &target, &[]).await?;
        secondaries.push((source, target, history));
    }
    let mut versions = SourceVersions::new();
    versions.insert(primary_source.name.clone(), primary.version);
    for (source, _, h) in &secondaries {
        versions.insert(source.name.clone(), h.version);
    }
    let p = &primary.batch;
    let key_fields: Vec<Field> = model.key.iter().map(|k| p.schema().field_with_name(k).expect("selected").clone()).collect();
    let codec = KeyCodec::new(key_fields)?;
    let keys = codec.encode(p)?;
    let p_at = p.column_by_name(VERSION_AT).expect("selected").as_primitive::<TimestampMicrosecondType>().clone();
    let p_deleted = p.column_by_name(DELETED).expect("selected").as_boolean().clone();
    // Secondary versions by the joined value.
    let mut indexes: Vec<HashMap<String, Vec<usize>>> = Vec::new();
    for (_, target, h) in &secondaries {
        let mut index: HashMap<String, Vec<usize>> = HashMap::new();
        let column = h.batch.column_by_name(&target[0]).expect("selected");
        let values = tidemark_lake::arrow::compute::cast(column, &DataType::Utf8)?;
        for (row, v) in values.as_string::<i32>().iter().enumerate() {
            if let Some(v) = v {
                index.entry(v.to_owned()).or_default().push(row);
            }
        }
        indexes.push(index);
    }
    let join_values: Vec<ArrayRef> = secondaries
        .iter()
        .map(|(s, _, _)| {
            let column = p.column_by_name(&join_of(model, s).0).expect("selected");
            tidemark_lake::arrow::compute::cast(column, &DataType::Utf8)
        })
        .collect::<std::result::Result<_, _>>()?;
    // Segments: (primary row, instant, exists, per secondary its row in force).
    let mut segments: Vec<Segment> = Vec::new();
    let mut start = 0;
    while start < p.num_rows() {
        let mut end = start + 1;
        while end < p.num_rows() && keys.row(end) == keys.row(start) {
            end += 1;
        }
        key_segments(start, end, &p_at, &p_deleted, &join_values, &secondaries, &indexes, &mut segments);
        start = end;
    }
    let assembled = assemble(model, layout, p, &secondaries, &segments)?;
    let tracked: Vec<ArrayRef> =
        model.tracked_columns().iter().map(|c| assembled.column_by_name(c).expect("attribute").clone()).collect();
    let hashes = crate::hash::change_hashes(&tracked, assembled.num_rows(), model.compatibility)?;
    let rows = collapse(layout, &codec, &assembled, &segments, &hashes, existing, next_surrogate_key, load)?;
    Ok(Computed { next_surrogate_key: rows.1, rows: rows.0, versions })
}

#[derive(Debug, Clone)]
struct Segment {
    primary: usize,
    at: i64,
    exists: bool,
    secondary: Vec<Option<usize>>,
}

/// The instants of one key (primary rows `start..end`).
#[allow(clippy::too_many_arguments)]
fn key_segments(
    start: usize,
    end: usize,
    at: &TimestampMicrosecondArray,
    deleted: &BooleanArray,
    join_values: &[ArrayRef],
    secondaries: &[(&SourceConfig, Vec<String>, History)],
    indexes: &[HashMap<String, Vec<usize>>],
    out: &mut Vec<Segment>,
) {
    let first = out.len();
    for i in start..end {
        let t = at.value(i);
        let next = if i + 1 < end { at.value(i + 1) } else { i64::MAX };
        if deleted.value(i) {
            out.push(Segment { primary: i, at: t, exists: false, secondary: vec![None; secondaries.len()] });
            continue;
        }
        let mut in_force = Vec::with_capacity(secondaries.len());
        let mut events: Vec<(i64, usize, usize)> = Vec::new();
        for (j, (_, _, history)) in secondaries.iter().enumerate() {
            let joined = join_values[j].as_string::<i32>();
            let versions = (!joined.is_null(i)).then(|| indexes[j].get(joined.value(i))).flatten();
            let s_at = history.batch.column_by_name(VERSION_AT).expect("selected").as_primitive::<TimestampMicrosecondType>();
            let s_deleted = history.batch.column_by_name(DELETED).expect("selected").as_boolean();
            let mut state = None;
            for &row in versions.map(Vec::as_slice).unwrap_or(&[]) {
                let v = s_at.value(row);
                if v <= t {
                    state = (!s_deleted.value(row)).then_some(row);
                } else if v < next {
                    events.push((v, j, row));
                }
            }
            in_force.push(state);
        }
        out.push(Segment { primary: i, at: t, exists: true, secondary: in_force.clone() });
        events.sort_by_key(|e| (e.0, e.2));
        for (v, j, row) in events {
            let s_deleted = secondaries[j].2.batch.column_by_name(DELETED).expect("selected").as_boolean();
            in_force[j] = (!s_deleted.value(row)).then_some(row);
            out.push(Segment { primary: i, at: v, exists: true, secondary: in_force.clone() });
        }
    }
    // Several versions at one instant: the last one is the state at that instant.
    let mine: Vec<Segment> = out.drain(first..).collect();
    for (k, s) in mine.iter().enumerate() {
        if mine.get(k + 1).is_none_or(|n| n.at != s.at) {
            out.push(s.clone());
        }
    }
}

/// The state of every segment as dimension columns (key, attributes, per-source version time).
fn assemble(
    model: &ModelConfig,
    layout: &Layout,
    p: &RecordBatch,
    secondaries: &[(&SourceConfig, Vec<String>, History)],
    segments: &[Segment],
) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    let primary_rows: Vec<(usize, usize)> = segments.iter().map(|s| if s.exists { (0, s.primary) } else { (1, 0) }).collect();
    let key_rows: Vec<(usize, usize)> = segments.iter().map(|s| (0, s.primary)).collect();
    let pick = |column: &ArrayRef, picks: &[(usize, usize)]| -> Result<ArrayRef> {
        let null = new_null_array(column.data_type(), 1);
        Ok(interleave(&[column.as_ref(), null.as_ref()], picks)?)
    };
    for k in &model.key {
        let c = p.column_by_name(k).expect("selected");
        fields.push(Field::new(k, c.data_type().clone(), false));
        columns.push(pick(c, &key_rows)?);
    }
    for c in &model.sources[0].columns {
        let column = p.column_by_name(c).expect("selected");
        fields.push(Field::new(c, column.data_type().clone(), true));
        columns.push(pick(column, &primary_rows)?);
    }
    for (j, (source, _, history)) in secondaries.iter().enumerate() {
        let rows: Vec<(usize, usize)> = segments
            .iter()
            .map(|s| match (s.exists, s.secondary[j]) {
                (true, Some(r)) => (0, r),
                _ => (1, 0),
            })
            .collect();
        for c in &source.columns {
            let column = match history.batch.column_by_name(c) {
                Some(column) => column.clone(),
                None => new_null_array(&DataType::Utf8, history.batch.num_rows()),
            };
            fields.push(Field::new(c, column.data_type().clone(), true));
            columns.push(pick(&column, &rows)?);
        }
        let at = history.batch.column_by_name(VERSION_AT).map(Arc::clone).unwrap_or_else(|| new_null_array(&timestamp_type(), 0));
        fields.push(Field::new(&layout.source_at[j + 1], timestamp_type(), true));
        columns.push(pick(&at, &rows)?);
    }
    let p_at = p.column_by_name(VERSION_AT).expect("selected");
    fields.push(Field::new(&layout.source_at[0], timestamp_type(), true));
    columns.push(pick(p_at, &primary_rows)?);
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// Rows from segments: consecutive segments of a key with the same state make one row.
#[allow(clippy::too_many_arguments)]
fn collapse(
    layout: &Layout,
    codec: &KeyCodec,
    assembled: &RecordBatch,
    segments: &[Segment],
    hashes: &tidemark_lake::arrow::array::StringArray,
    existing: &Existing,
    mut next_sk: i64,
    load: i64,
) -> Result<(RecordBatch, i64)> {
    let keys = codec.encode(assembled)?;
    let (mut first, mut last, mut from, mut to, mut sks, mut loads, mut current) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut i = 0;
    while i < segments.len() {
        let mut j = i + 1;
        let same_key = |a: usize, b: usize| keys.row(a) == keys.row(b);
        while j < segments.len()
            && same_key(i, j)
            && segments[j].exists == segments[i].exists
            && (!segments[i].exists || hashes.value(j) == hashes.value(i))
        {
            j += 1;
        }
        if segments[i].exists {
            let ends = (j < segments.len() && same_key(i, j)).then(|| segments[j].at);
            first.push(i as u32);
            last.push((j - 1) as u32);
            from.push(segments[i].at);
            to.push(ends.unwrap_or(OPEN_END_MICROS));
            current.push(ends.is_none());
            let identity = (keys.row(i).as_ref().to_vec(), segments[i].at);
            let (sk, written) = existing.get(&identity).copied().unwrap_or_else(|| {
                next_sk += 1;
                (next_sk - 1, load)
            });
            sks.push(sk);
            loads.push(written);
        }
        i = j;
    }
    let first = tidemark_lake::arrow::array::UInt32Array::from(first);
    let last = tidemark_lake::arrow::array::UInt32Array::from(last);
    let mut fields = vec![Field::new(&layout.surrogate_key, DataType::Int64, false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(sks))];
    for name in layout.key.iter().chain(&layout.attributes) {
        let column = assembled.column_by_name(name).expect("assembled");
        // Type-1 values are the ones at the end of the row; the rest are equal throughout.
        let rows = if layout.type1.iter().any(|t| t == name) { &last } else { &first };
        fields.push(Field::new(name, column.data_type().clone(), !layout.key.contains(name)));
        columns.push(take(column.as_ref(), rows, None)?);
    }
    let ts = |v: Vec<i64>| -> ArrayRef { Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC")) };
    fields.push(Field::new(&layout.effective, timestamp_type(), false));
    columns.push(ts(from));
    fields.push(Field::new(&layout.expiry, timestamp_type(), false));
    columns.push(ts(to));
    fields.push(Field::new(&layout.current, DataType::Boolean, false));
    columns.push(Arc::new(BooleanArray::from(current)));
    fields.push(Field::new(&layout.hash, DataType::Utf8, false));
    columns.push(take(hashes, &first, None)?);
    fields.push(Field::new(LOAD_ID, DataType::Int64, false));
    columns.push(Arc::new(Int64Array::from(loads)));
    for name in &layout.source_at {
        fields.push(Field::new(name, timestamp_type(), true));
        columns.push(take(assembled.column_by_name(name).expect("assembled").as_ref(), &first, None)?);
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    Ok((RecordBatch::try_new(schema, columns)?, next_sk))
}
