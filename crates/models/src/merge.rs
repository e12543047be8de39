//! One load-date load as a key-ordered merge of three kinds of input, each a stream of batches
//! in business-key order: the dimension's current rows, the state rows of keys without a
//! current row, and each source's new rows (one per key). Every key is decided once, in key
//! order, so new surrogate keys are numbered in key order, and memory holds one batch of each
//! input at a time: a window of keys ends where some input's batch runs out.
//!
//! Rows are assembled column-wise with `interleave`: each output value is picked from the
//! current row, the state row, a source's new row, or NULL.

use std::sync::Arc;

use tidemark_core::models::Compatibility;
use tidemark_lake::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Int64Array, RecordBatch, StringArray, UInt32Array, new_null_array,
};
use tidemark_lake::arrow::compute::{interleave, take, take_record_batch};
use tidemark_lake::arrow::datatypes::{Date32Type, Int64Type, SchemaRef, TimestampMicrosecondType};
use tidemark_lake::arrow::row::{OwnedRow, Row, RowConverter, SortField};

use crate::error::{ModelError, Result};
use crate::extract::{AT, DELETED, KeyCodec, ReducedRows};
use crate::mart::{LOAD_ID, Layout};
use tidemark_lake::keys::KeyCursor;

/// The expiry date of open rows: 9999-12-31 in days since the epoch.
pub const OPEN_END_DAYS: i32 = 2_932_896;

/// One source's part of a load.
pub struct SourceInput {
    pub name: String,
    pub attributes: Vec<String>,
    /// Its bookkeeping column in the dimension (`_<source>_at`).
    pub at_column: String,
    /// Reduced rows (keys, attributes, `__at`, `__deleted`) in key order, types as the dimension's.
    pub rows: ReducedRows,
    /// A full extract arrived this load: keys absent from it are deleted from the source.
    pub full: bool,
    /// The rows are the source's state as it is (a lake object's live records): applied as
    /// they are, without the stale-row and tie checks of landed rows.
    pub authoritative: bool,
}

/// What a load did to the dimension.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MergeCounts {
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
    /// Current rows whose type-1 attributes were overwritten.
    pub type1_updated: u64,
    /// Rows older than (or identical to) what was already loaded for their key.
    pub stale_rows: u64,
    /// Rows that started on the run date and were replaced or removed by a later load that day.
    pub same_day_replaced: u64,
    pub current_rows: u64,
    pub state_rows: u64,
}

pub struct Merge<'a> {
    pub model: &'a str,
    pub layout: &'a Layout,
    pub dimension: SchemaRef,
    pub state: SchemaRef,
    pub codec: &'a KeyCodec,
    pub sources: Vec<SourceInput>,
    pub run_date: i32,
    pub load: i64,
    pub next_surrogate_key: i64,
    pub tracked: Vec<String>,
    pub compatibility: Compatibility,
}

/// What the merge hands on: rows for the dimension, rows for the state table (keys without a
/// current row), both in key order.
pub enum Emitted {
    Dimension(RecordBatch),
    State(RecordBatch),
}

/// A key's inputs: its row in the current window, in the state, in each source.
struct Plan {
    current: Option<usize>,
    side: Option<usize>,
    sources: Vec<Option<usize>>,
}

/// Where a value comes from, as an `interleave` index: (input, row).
const CURRENT: usize = 0;
const SIDE: usize = 1;
const NULL: usize = 2;
const FIRST_SOURCE: usize = 3;

pub struct MergeOutput {
    pub counts: MergeCounts,
    pub next_surrogate_key: i64,
    /// Rows the sources yielded before reduction to one per key.
    pub rows_read: u64,
    /// Bytes the sources' sorts spilled to disk.
    pub spilled_bytes: u64,
}

/// The window's batches, as [`Merge::window`] reads values from them.
struct Window<'w> {
    current: Option<&'w RecordBatch>,
    side: &'w RecordBatch,
    sources: Vec<&'w RecordBatch>,
}

impl Merge<'_> {
    /// Runs the merge over the dimension's current rows `current` and the state rows `side`
    /// (both in key order) and the sources' reduced rows; `emit` receives each batch to write.
    pub async fn run<F, Fut>(
        mut self,
        mut current: tokio::sync::mpsc::Receiver<tidemark_lake::error::Result<RecordBatch>>,
        mut side: tokio::sync::mpsc::Receiver<tidemark_lake::error::Result<RecordBatch>>,
        mut emit: F,
    ) -> Result<MergeOutput>
    where
        F: FnMut(Emitted) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let mut counts = MergeCounts::default();
        let mut last: Option<OwnedRow> = None;
        let mut cur = KeyCursor::new(self.codec, next_batch(&mut current).await?, &self.dimension)?;
        let mut side_cursor = KeyCursor::new(self.codec, next_batch(&mut side).await?, &self.state)?;
        let mut sources = Vec::with_capacity(self.sources.len());
        for s in &mut self.sources {
            let schema = s.rows.output_schema();
            sources.push(KeyCursor::new(self.codec, s.rows.next().await?, &schema)?);
        }
        loop {
            if cur.blocking() {
                cur = KeyCursor::new(self.codec, next_batch(&mut current).await?, &self.dimension)?;
            }
            if side_cursor.blocking() {
                side_cursor = KeyCursor::new(self.codec, next_batch(&mut side).await?, &self.state)?;
            }
            for (s, cursor) in sources.iter_mut().enumerate() {
                if cursor.blocking() {
                    let schema = self.sources[s].rows.output_schema();
                    *cursor = KeyCursor::new(self.codec, self.sources[s].rows.next().await?, &schema)?;
                }
            }
            // Refilled: an input still out of rows has no more.
            if cur.exhausted() && side_cursor.exhausted() && sources.iter().all(KeyCursor::exhausted) {
                break;
            }
            // Decide keys in order until some input's batch runs out: its next batch may hold
            // a smaller key than the other inputs' next rows.
            let mut plans = Vec::new();
            while !cur.blocking() && !side_cursor.blocking() && !sources.iter().any(KeyCursor::blocking) {
                let mut min: Option<Row<'_>> = None;
                for key in [cur.key(), side_cursor.key()].into_iter().chain(sources.iter().map(KeyCursor::key)).flatten() {
                    consider(&mut min, key);
                }
                // Owned: `min` borrows a cursor that the plan below advances.
                let Some(key) = min.map(|k| k.owned()) else { break };
                if last.as_ref().is_some_and(|previous| key.row() <= previous.row()) {
                    return Err(ModelError::Layout {
                        model: self.model.to_owned(),
                        detail: "its current rows or state rows are not in business-key order or repeat a key".into(),
                    });
                }
                let mut plan = Plan {
                    current: cur.take(key.row()),
                    side: side_cursor.take(key.row()),
                    sources: Vec::with_capacity(sources.len()),
                };
                for cursor in sources.iter_mut() {
                    plan.sources.push(cursor.take(key.row()));
                }
                last = Some(key);
                plans.push(plan);
            }
            if plans.is_empty() {
                continue;
            }
            let window = Window {
                current: (!cur.done).then_some(&cur.batch),
                side: &side_cursor.batch,
                sources: sources.iter().map(|c| &c.batch).collect(),
            };
            let (out, state) = self.window(&window, plans, &mut counts)?;
            for b in out {
                emit(Emitted::Dimension(b)).await?;
            }
            if state.num_rows() > 0 {
                counts.state_rows += state.num_rows() as u64;
                emit(Emitted::State(state)).await?;
            }
        }
        let rows_read = self.sources.iter().map(|s| s.rows.rows_in()).sum();
        let spilled_bytes = self.sources.iter().map(|s| s.rows.spilled_bytes()).sum();
        Ok(MergeOutput { counts, next_surrogate_key: self.next_surrogate_key, rows_read, spilled_bytes })
    }

    /// Decides a window of keys; returns the batches to write and the state rows.
    fn window(&mut self, w: &Window<'_>, plans: Vec<Plan>, counts: &mut MergeCounts) -> Result<(Vec<RecordBatch>, RecordBatch)> {
        let current = w.current;
        let primary = 0;
        let mut exists_rows: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.state.fields().len()];
        let mut side_rows: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.state.fields().len()];
        let mut candidates: Vec<(Option<usize>, bool)> = Vec::new(); // (current row, touched)
        let mut expire: Vec<u32> = Vec::new();
        let column_index: Vec<(Option<usize>, bool)> = self.state.fields().iter().map(|f| self.column_role(f.name())).collect();
        for plan in &plans {
            let mut decisions = Vec::with_capacity(self.sources.len());
            let mut exists = plan.current.is_some();
            let mut touched = false;
            for (s, source) in self.sources.iter().enumerate() {
                let carried = plan.current.map(|r| (CURRENT, r)).or(plan.side.map(|r| (SIDE, r)));
                let decision = match plan.sources[s] {
                    Some(row) => self.apply(w, s, row, carried, plan, counts)?,
                    None if source.full => Decision::Absent,
                    None => Decision::Keep(carried),
                };
                if !matches!(decision, Decision::Keep(_)) {
                    touched = true;
                    if s == primary {
                        exists = matches!(decision, Decision::Row(_));
                    }
                }
                decisions.push(decision);
            }
            let key_from = plan
                .current
                .map(|r| (CURRENT, r))
                .or(plan.side.map(|r| (SIDE, r)))
                .or_else(|| plan.sources.iter().enumerate().find_map(|(s, r)| r.map(|r| (FIRST_SOURCE + s, r))))
                .expect("a planned key comes from some input");
            let has_state = decisions.iter().any(|d| match d {
                Decision::Keep(Some(_)) | Decision::Row(_) | Decision::Deleted(_) => true,
                Decision::Keep(None) | Decision::Absent => false,
            });
            if exists {
                push_row(&mut exists_rows, &column_index, key_from, &decisions);
                candidates.push((plan.current, touched));
            } else {
                if has_state {
                    push_row(&mut side_rows, &column_index, key_from, &decisions);
                }
                if let Some(row) = plan.current {
                    let effective = current.expect("current row").column(self.dimension.index_of(&self.layout.effective)?);
                    if effective.as_primitive::<Date32Type>().value(row) == self.run_date {
                        counts.same_day_replaced += 1;
                    } else {
                        expire.push(row as u32);
                    }
                    counts.deleted += 1;
                }
            }
        }
        let existing = self.assemble(w, &exists_rows)?;
        let side = self.assemble(w, &side_rows)?;
        let mut out = Vec::new();
        if existing.num_rows() > 0 {
            out.push(self.current_rows(current, &existing, &candidates, &mut expire, counts)?);
        }
        if !expire.is_empty() {
            out.push(self.expired_rows(current.expect("rows to expire are current rows"), &expire)?);
        }
        Ok((out, side))
    }

    /// Where a state column's value comes from: the source it belongs to (None: the key) and
    /// whether it is that source's ordering-value column.
    fn column_role(&self, name: &str) -> (Option<usize>, bool) {
        for (s, source) in self.sources.iter().enumerate() {
            if source.at_column == name {
                return (Some(s), true);
            }
            if source.attributes.iter().any(|a| a == name) {
                return (Some(s), false);
            }
        }
        (None, false)
    }

    /// Applies a source's new row for a key, given the source's state carried from `carried`.
    fn apply(
        &self,
        w: &Window<'_>,
        s: usize,
        row: usize,
        carried: Option<(usize, usize)>,
        plan: &Plan,
        counts: &mut MergeCounts,
    ) -> Result<Decision> {
        let source = &self.sources[s];
        let rows = w.sources[s];
        let new_at = rows.column_by_name(AT).expect("reduced").as_primitive::<TimestampMicrosecondType>().value(row);
        let deleted = rows.column_by_name(DELETED).expect("reduced").as_boolean().value(row);
        if let (Some((input, r)), false) = (carried, source.authoritative) {
            let batch = if input == CURRENT { w.current.expect("current row") } else { w.side };
            let at = batch.column_by_name(&source.at_column).expect("state column").as_primitive::<TimestampMicrosecondType>();
            if !at.is_null(r) {
                let old = at.value(r);
                if new_at < old {
                    counts.stale_rows += 1;
                    return Ok(Decision::Keep(carried));
                }
                if new_at == old {
                    // The same ordering value again: a re-delivered row is ignored, a
                    // different row is a tie no order can settle.
                    let was_deleted = s == 0 && plan.current.is_none();
                    if was_deleted == deleted && (deleted || self.same_values(batch, r, rows, row, &source.attributes)?) {
                        counts.stale_rows += 1;
                        return Ok(Decision::Keep(carried));
                    }
                    return Err(ModelError::Tie {
                        model: self.model.to_owned(),
                        source_name: source.name.clone(),
                        key: self.codec.describe(rows, row),
                        order_by: "ordering value as a row loaded before".into(),
                    });
                }
            }
        }
        Ok(if deleted { Decision::Deleted(row) } else { Decision::Row(row) })
    }

    fn same_values(&self, a: &RecordBatch, ar: usize, b: &RecordBatch, br: usize, columns: &[String]) -> Result<bool> {
        if columns.is_empty() {
            return Ok(true);
        }
        let pick = |batch: &RecordBatch, row: usize| -> Vec<ArrayRef> {
            columns.iter().map(|c| batch.column_by_name(c).expect("attribute").slice(row, 1)).collect()
        };
        let (left, right) = (pick(a, ar), pick(b, br));
        let converter = RowConverter::new(left.iter().map(|c| SortField::new(c.data_type().clone())).collect())?;
        let (l, r) = (converter.convert_columns(&left)?, converter.convert_columns(&right)?);
        Ok(l.row(0) == r.row(0))
    }

    /// Builds state-schema rows from per-column picks.
    fn assemble(&self, w: &Window<'_>, picks: &[Vec<(usize, usize)>]) -> Result<RecordBatch> {
        let rows = picks.first().map_or(0, Vec::len);
        if rows == 0 {
            return Ok(RecordBatch::new_empty(self.state.clone()));
        }
        let mut columns = Vec::with_capacity(self.state.fields().len());
        for (field, picks) in self.state.fields().iter().zip(picks) {
            let null = new_null_array(field.data_type(), 1);
            let from_current = match w.current {
                Some(b) => b.column_by_name(field.name()).expect("dimension column").clone(),
                None => null.clone(),
            };
            let from_side = w.side.column_by_name(field.name()).expect("state column").clone();
            let mut inputs: Vec<ArrayRef> = vec![from_current, from_side, null.clone()];
            for (source, rows) in self.sources.iter().zip(&w.sources) {
                let name = if source.at_column == *field.name() { AT } else { field.name().as_str() };
                inputs.push(rows.column_by_name(name).cloned().unwrap_or_else(|| null.clone()));
            }
            let refs: Vec<&dyn Array> = inputs.iter().map(|a| a.as_ref()).collect();
            columns.push(interleave(&refs, picks)?);
        }
        Ok(RecordBatch::try_new(self.state.clone(), columns)?)
    }

    /// The window's current rows, in the dimension's schema; decides updates by hash.
    fn current_rows(
        &mut self,
        current: Option<&RecordBatch>,
        existing: &RecordBatch,
        candidates: &[(Option<usize>, bool)],
        expire: &mut Vec<u32>,
        counts: &mut MergeCounts,
    ) -> Result<RecordBatch> {
        let column = |name: &str| current.and_then(|b| b.column_by_name(name)).cloned();
        let hashes = self.hashes(existing, candidates, column(&self.layout.hash))?;
        let old_sk = column(&self.layout.surrogate_key);
        let old_effective = column(&self.layout.effective);
        let old_hash = column(&self.layout.hash);
        let old_load = column(LOAD_ID);
        let type1_changed = self.type1_changed(current, existing, candidates)?;
        let (mut sks, mut effective, mut loads) = (Vec::new(), Vec::new(), Vec::new());
        let mut kept = vec![false; candidates.len()];
        for (i, (row, touched)) in candidates.iter().enumerate() {
            match row {
                None => {
                    sks.push(self.take_surrogate_key());
                    effective.push(self.run_date);
                    loads.push(self.load);
                    counts.inserted += 1;
                }
                Some(r) => {
                    let sk = old_sk.as_ref().expect("current").as_primitive::<Int64Type>().value(*r);
                    let started = old_effective.as_ref().expect("current").as_primitive::<Date32Type>().value(*r);
                    let same = old_hash.as_ref().expect("current").as_string::<i32>().value(*r) == hashes.value(i);
                    if same {
                        kept[i] = true;
                        sks.push(sk);
                        effective.push(started);
                        let previous = old_load.as_ref().expect("current").as_primitive::<Int64Type>().value(*r);
                        loads.push(if *touched { self.load } else { previous });
                        if type1_changed[i] {
                            counts.type1_updated += 1;
                        } else {
                            counts.unchanged += 1;
                        }
                    } else if started == self.run_date {
                        // The day's last state wins: replace the row that started today.
                        sks.push(sk);
                        effective.push(started);
                        loads.push(self.load);
                        counts.same_day_replaced += 1;
                        counts.updated += 1;
                    } else {
                        expire.push(*r as u32);
                        sks.push(self.take_surrogate_key());
                        effective.push(self.run_date);
                        loads.push(self.load);
                        counts.updated += 1;
                    }
                }
            }
        }
        counts.current_rows += existing.num_rows() as u64;
        let n = existing.num_rows();
        let existing = match (self.compatibility, current) {
            // The post leaves a row whose hash did not change as it was, even when its values
            // differ in ways the hash cannot see ('ANNA','BELLE' → 'ANNABELLE',NULL).
            (Compatibility::RedshiftPost, Some(current)) => self.keep_unchanged_tracked(existing, current, candidates, &kept)?,
            _ => existing.clone(),
        };
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.dimension.fields().len());
        for field in self.dimension.fields() {
            let name = field.name().as_str();
            let c: ArrayRef = if name == self.layout.surrogate_key {
                Arc::new(Int64Array::from(std::mem::take(&mut sks)))
            } else if name == self.layout.effective {
                Arc::new(Date32Array::from(std::mem::take(&mut effective)))
            } else if name == self.layout.expiry {
                Arc::new(Date32Array::from(vec![OPEN_END_DAYS; n]))
            } else if name == self.layout.current {
                Arc::new(BooleanArray::from(vec![true; n]))
            } else if name == self.layout.hash {
                Arc::new(hashes.clone())
            } else if name == LOAD_ID {
                Arc::new(Int64Array::from(std::mem::take(&mut loads)))
            } else {
                existing.column_by_name(name).expect("state column").clone()
            };
            columns.push(c);
        }
        Ok(RecordBatch::try_new(self.dimension.clone(), columns)?)
    }

    /// The change hash of each candidate: computed for keys a source touched or that are new,
    /// carried from the current row for the others (most keys of an incremental load).
    fn hashes(&self, existing: &RecordBatch, candidates: &[(Option<usize>, bool)], old: Option<ArrayRef>) -> Result<StringArray> {
        let fresh: Vec<u32> = candidates
            .iter()
            .enumerate()
            .filter(|(_, (row, touched))| row.is_none() || *touched)
            .map(|(i, _)| i as u32)
            .collect();
        let fresh_rows = UInt32Array::from(fresh.clone());
        let tracked: Vec<ArrayRef> = self
            .tracked
            .iter()
            .map(|c| take(existing.column_by_name(c).expect("tracked").as_ref(), &fresh_rows, None))
            .collect::<std::result::Result<_, _>>()?;
        let computed = crate::hash::change_hashes(&tracked, fresh.len(), self.compatibility)?;
        let Some(old) = old else { return Ok(computed) };
        let mut next_fresh = 0;
        let picks: Vec<(usize, usize)> = candidates
            .iter()
            .enumerate()
            .map(|(i, (row, _))| {
                if fresh.get(next_fresh) == Some(&(i as u32)) {
                    next_fresh += 1;
                    (0, next_fresh - 1)
                } else {
                    (1, row.expect("an untouched candidate has a current row"))
                }
            })
            .collect();
        let merged = interleave(&[&computed as &dyn Array, old.as_ref()], &picks)?;
        Ok(merged.as_string::<i32>().clone())
    }

    /// `existing` with the tracked values of `kept` rows taken from their current row.
    fn keep_unchanged_tracked(
        &self,
        existing: &RecordBatch,
        current: &RecordBatch,
        candidates: &[(Option<usize>, bool)],
        kept: &[bool],
    ) -> Result<RecordBatch> {
        let picks: Vec<(usize, usize)> = candidates
            .iter()
            .enumerate()
            .map(|(i, (row, _))| match row {
                Some(r) if kept[i] => (1, *r),
                _ => (0, i),
            })
            .collect();
        let mut columns = existing.columns().to_vec();
        for name in &self.tracked {
            let i = existing.schema().index_of(name)?;
            let from_current = current.column_by_name(name).expect("tracked column");
            columns[i] = interleave(&[existing.column(i).as_ref(), from_current.as_ref()], &picks)?;
        }
        Ok(RecordBatch::try_new(existing.schema(), columns)?)
    }

    fn type1_changed(
        &self,
        current: Option<&RecordBatch>,
        existing: &RecordBatch,
        candidates: &[(Option<usize>, bool)],
    ) -> Result<Vec<bool>> {
        let type1: Vec<&String> = self.layout.attributes.iter().filter(|a| !self.tracked.contains(a)).collect();
        let mut out = vec![false; candidates.len()];
        let Some(current) = current else { return Ok(out) };
        for (i, (row, touched)) in candidates.iter().enumerate() {
            if let (Some(r), true) = (row, touched) {
                let names: Vec<String> = type1.iter().map(|s| s.to_string()).collect();
                out[i] = !self.same_values(current, *r, existing, i, &names)?;
            }
        }
        Ok(out)
    }

    fn take_surrogate_key(&mut self) -> i64 {
        let sk = self.next_surrogate_key;
        self.next_surrogate_key += 1;
        sk
    }

    /// Current rows closing the day before the run date, for the other partition.
    fn expired_rows(&self, current: &RecordBatch, rows: &[u32]) -> Result<RecordBatch> {
        let mut sorted = rows.to_vec();
        sorted.sort_unstable();
        let taken = take_record_batch(current, &UInt32Array::from(sorted))?;
        let n = taken.num_rows();
        let mut columns = taken.columns().to_vec();
        columns[self.dimension.index_of(&self.layout.expiry)?] = Arc::new(Date32Array::from(vec![self.run_date - 1; n]));
        columns[self.dimension.index_of(&self.layout.current)?] = Arc::new(BooleanArray::from(vec![false; n]));
        Ok(RecordBatch::try_new(self.dimension.clone(), columns)?)
    }
}

/// What a load does to one source's state for one key.
enum Decision {
    /// Keep the state carried from (input, row), or none.
    Keep(Option<(usize, usize)>),
    /// The source's new row (present).
    Row(usize),
    /// The source's new row says deleted: attributes NULL, its ordering value kept.
    Deleted(usize),
    /// Absent from a full extract: attributes and ordering value NULL.
    Absent,
}

fn push_row(out: &mut [Vec<(usize, usize)>], roles: &[(Option<usize>, bool)], key_from: (usize, usize), decisions: &[Decision]) {
    for (column, (source, is_at)) in out.iter_mut().zip(roles) {
        let pick = match source {
            None => key_from,
            Some(s) => match (&decisions[*s], is_at) {
                (Decision::Keep(Some(from)), _) => *from,
                (Decision::Keep(None) | Decision::Absent, _) => (NULL, 0),
                (Decision::Row(r), _) => (FIRST_SOURCE + s, *r),
                (Decision::Deleted(r), true) => (FIRST_SOURCE + s, *r),
                (Decision::Deleted(_), false) => (NULL, 0),
            },
        };
        column.push(pick);
    }
}

async fn next_batch(
    rx: &mut tokio::sync::mpsc::Receiver<tidemark_lake::error::Result<RecordBatch>>,
) -> Result<Option<RecordBatch>> {
    loop {
        match rx.recv().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(b)) if b.num_rows() == 0 => continue,
            Some(Ok(b)) => return Ok(Some(b)),
        }
    }
}

fn consider<'a>(min: &mut Option<Row<'a>>, r: Row<'a>) {
    if min.is_none_or(|m| r < m) {
        *min = Some(r);
    }
}
