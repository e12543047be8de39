//! A flow's result against its snapshot: every key of either, in key order, with what
//! happened to it since the last run.
//!
//! The result is sorted by key in a bounded session (spilling beyond its memory limit); the
//! snapshot comes in key order as written. A merge of the two streams, one batch of each at a
//! time, classifies each key: [`NEW`] (not in the snapshot), [`CHANGED`] (its row hash differs
//! from the one delivered), [`UNCHANGED`], or [`VANISHED`] (in the snapshot, not in the
//! result). Unchanged keys are part of the stream because the next snapshot carries them.
//!
//! A result row without a key value, or two rows with one key, stop the diff with an error
//! naming the key column or value: which row to send could not be known.

use std::sync::Arc;

use futures::StreamExt;
use tidemark_lake::arrow::array::{ArrayRef, AsArray, RecordBatch, UInt8Array, new_null_array};
use tidemark_lake::arrow::compute::interleave;
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tidemark_lake::arrow::row::OwnedRow;
use tidemark_lake::bounded::BoundedQuery;
use tidemark_lake::keys::{KeyCodec, KeyCursor};
use tidemark_lake::read::quote;

use crate::error::{PushError, Result};
use crate::row_hash::{RowHasher, hash_type};
use crate::snapshot::{ROW_HASH, RUN, SF_ID, Snapshot};

/// The `_change` column: what happened to a key.
pub const CHANGE: &str = "_change";
/// The hash delivered last time (from the snapshot).
pub const SENT_HASH: &str = "_sent_hash";
/// The run that delivered it (from the snapshot).
pub const SENT_RUN: &str = "_sent_run";

pub const NEW: u8 = 0;
pub const CHANGED: u8 = 1;
pub const UNCHANGED: u8 = 2;
pub const VANISHED: u8 = 3;

/// Counts of a diff so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DiffCounts {
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub vanished: u64,
}

/// The diff of a flow's result against its snapshot, as a stream of batches (see the module).
///
/// Each batch: `_change` (u8), the result's sent columns (NULL for vanished keys but the key),
/// `_row_hash` (the result row's hash; NULL for vanished keys), `_sent_hash`, `_sf_id` and
/// `_sent_run` (from the snapshot; NULL for new keys).
pub struct Diff {
    flow: String,
    result: BoundedQuery,
    snapshot: Option<tokio::sync::mpsc::Receiver<tidemark_lake::error::Result<RecordBatch>>>,
    snapshot_schema: SchemaRef,
    codec: KeyCodec,
    hasher: RowHasher,
    /// The result's sent columns.
    columns: SchemaRef,
    output: SchemaRef,
    cursors: Option<(KeyCursor, KeyCursor)>,
    last_result_key: Option<OwnedRow>,
    last_key: Option<OwnedRow>,
    pub counts: DiffCounts,
}

impl Diff {
    /// Starts the diff of `query`'s result (run in `ctx`, a bounded session over the lake)
    /// against `snapshot`. `key` names the result's key columns, `exclude` result columns that
    /// are not sent (and not hashed).
    pub async fn start(
        ctx: &tidemark_lake::datafusion::prelude::SessionContext,
        flow: &str,
        query: &str,
        key: &[String],
        exclude: &[String],
        snapshot: Option<&Snapshot>,
    ) -> Result<Diff> {
        let invalid = |message: String| PushError::Invalid { flow: flow.to_owned(), message };
        let probe = ctx.sql(&format!("SELECT * FROM ({query}) AS result LIMIT 0")).await?;
        let result_schema: Schema = probe.schema().as_arrow().clone();
        let names: Vec<String> = result_schema.fields().iter().map(|f| f.name().clone()).collect();
        if let Some(k) = key.iter().find(|k| !names.contains(k)) {
            return Err(invalid(format!("the key column {k} is not a column of the query's result")));
        }
        if let Some(x) = exclude.iter().find(|x| !names.contains(x)) {
            return Err(invalid(format!("the excluded column {x} is not a column of the query's result")));
        }
        let sent: Vec<&String> = names.iter().filter(|n| !exclude.contains(n) || key.contains(n)).collect();
        let select: Vec<String> = sent.iter().map(|c| quote(c)).collect();
        let order: Vec<String> = key.iter().map(|k| format!("{} ASC NULLS FIRST", quote(k))).collect();
        let sql = format!("SELECT {} FROM ({query}) AS result ORDER BY {}", select.join(", "), order.join(", "));
        let result = BoundedQuery::start(ctx, &sql, "push diff").await?;
        let columns = tidemark_lake::plain::plain_schema(&result.stream.schema());
        let key_fields: Vec<Field> = key.iter().map(|k| columns.field_with_name(k).expect("selected").clone()).collect();
        let codec = KeyCodec::new(key_fields.clone())?;
        // Every selected column is hashed: the sent ones, and the key (equal for a key's rows).
        let hashed: Vec<DataType> = columns.fields().iter().map(|f| f.data_type().clone()).collect();
        let hasher = RowHasher::new(&hashed)?;
        let snapshot_schema = crate::snapshot::schema(&key_fields);
        let rows = match snapshot {
            Some(s) => {
                let stored: Vec<&str> = s.schema().fields().iter().map(|f| f.name().as_str()).collect();
                if let Some(k) = key.iter().find(|k| !stored.contains(&k.as_str())) {
                    return Err(PushError::Layout {
                        flow: flow.to_owned(),
                        detail: format!("it has no key column {k} (the flow's key changed)"),
                    });
                }
                Some(s.rows().await?)
            }
            None => None,
        };
        let mut fields = vec![Field::new(CHANGE, DataType::UInt8, false)];
        fields.extend(columns.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)));
        fields.push(Field::new(ROW_HASH, hash_type(), true));
        fields.push(Field::new(SENT_HASH, hash_type(), true));
        fields.push(Field::new(SF_ID, DataType::Utf8, true));
        fields.push(Field::new(SENT_RUN, DataType::Int64, true));
        Ok(Diff {
            flow: flow.to_owned(),
            result,
            snapshot: rows,
            snapshot_schema,
            codec,
            hasher,
            columns,
            output: Arc::new(Schema::new(fields)),
            cursors: None,
            last_result_key: None,
            last_key: None,
            counts: DiffCounts::default(),
        })
    }

    /// The schema of the batches [`Diff::next`] yields.
    pub fn schema(&self) -> &SchemaRef {
        &self.output
    }

    /// The bytes the result's sort spilled to disk so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.result.spilled_bytes()
    }

    /// The next batch of keys, in key order; `None` at the end.
    pub async fn next(&mut self) -> Result<Option<RecordBatch>> {
        let (mut result, mut snapshot) = match self.cursors.take() {
            Some(c) => c,
            None => (self.next_result().await?, self.next_snapshot().await?),
        };
        loop {
            if result.blocking() {
                result = self.next_result().await?;
            }
            if snapshot.blocking() {
                snapshot = self.next_snapshot().await?;
            }
            if result.exhausted() && snapshot.exhausted() {
                return Ok(None);
            }
            let mut picks: Vec<(Option<usize>, Option<usize>)> = Vec::new();
            while !result.blocking() && !snapshot.blocking() {
                let key = match (result.key(), snapshot.key()) {
                    (None, None) => break,
                    (Some(r), None) => r.owned(),
                    (None, Some(s)) => s.owned(),
                    (Some(r), Some(s)) => r.min(s).owned(),
                };
                if self.last_key.as_ref().is_some_and(|last| key.row() <= last.row()) {
                    // Result duplicates are caught as the result streams; this is the snapshot.
                    return Err(PushError::Layout {
                        flow: self.flow.clone(),
                        detail: "its rows are not in key order or repeat a key".into(),
                    });
                }
                let from_result = result.take(key.row());
                let from_snapshot = snapshot.take(key.row());
                picks.push((from_result, from_snapshot));
                self.last_key = Some(key);
            }
            if picks.is_empty() {
                continue;
            }
            let batch = self.assemble(&result.batch, &snapshot.batch, &picks)?;
            self.cursors = Some((result, snapshot));
            return Ok(Some(batch));
        }
    }

    /// The output rows of one window: values picked from the result's batch (input 0), the
    /// snapshot's (input 1) or NULL (input 2).
    fn assemble(
        &mut self,
        result: &RecordBatch,
        snapshot: &RecordBatch,
        picks: &[(Option<usize>, Option<usize>)],
    ) -> Result<RecordBatch> {
        let hashes: ArrayRef = Arc::new(self.hasher.hash(result.columns())?);
        let sent_hashes = snapshot.column_by_name(ROW_HASH).expect("snapshot column").clone();
        let mut changes = Vec::with_capacity(picks.len());
        let hash_values = hashes.as_binary::<i32>();
        let sent_values = sent_hashes.as_binary::<i32>();
        for (r, s) in picks {
            let change = match (r, s) {
                (Some(_), None) => NEW,
                (None, Some(_)) => VANISHED,
                (Some(r), Some(s)) if hash_values.value(*r) == sent_values.value(*s) => UNCHANGED,
                (Some(_), Some(_)) => CHANGED,
                (None, None) => unreachable!("a picked key comes from an input"),
            };
            match change {
                NEW => self.counts.new += 1,
                CHANGED => self.counts.changed += 1,
                UNCHANGED => self.counts.unchanged += 1,
                _ => self.counts.vanished += 1,
            }
            changes.push(change);
        }
        let mut columns: Vec<ArrayRef> = vec![Arc::new(UInt8Array::from(changes))];
        let key_names: Vec<&String> = self.codec.fields.iter().map(|f| f.name()).collect();
        let pick = |from_snapshot_too: bool| -> Vec<(usize, usize)> {
            picks
                .iter()
                .map(|(r, s)| match (r, s) {
                    (Some(r), _) => (0, *r),
                    (None, Some(s)) if from_snapshot_too => (1, *s),
                    _ => (2, 0),
                })
                .collect()
        };
        let (with_snapshot, result_only) = (pick(true), pick(false));
        for field in self.columns.fields() {
            let null = new_null_array(field.data_type(), 1);
            let own = result.column_by_name(field.name()).expect("result column").clone();
            let (stored, picks) = if key_names.contains(&field.name()) {
                let stored = snapshot.column_by_name(field.name()).expect("snapshot key");
                (tidemark_lake::arrow::compute::cast(stored, field.data_type())?, &with_snapshot)
            } else {
                (null.clone(), &result_only)
            };
            columns.push(interleave(&[own.as_ref(), stored.as_ref(), null.as_ref()], picks)?);
        }
        let null_hash = new_null_array(&hash_type(), 1);
        columns.push(interleave(&[hashes.as_ref(), null_hash.as_ref(), null_hash.as_ref()], &result_only)?);
        let from_snapshot: Vec<(usize, usize)> = picks.iter().map(|(_, s)| s.map_or((1, 0), |s| (0, s))).collect();
        for name in [ROW_HASH, SF_ID, RUN] {
            let stored = snapshot.column_by_name(name).expect("snapshot column");
            let null = new_null_array(stored.data_type(), 1);
            columns.push(interleave(&[stored.as_ref(), null.as_ref()], &from_snapshot)?);
        }
        Ok(RecordBatch::try_new(self.output.clone(), columns)?)
    }

    async fn next_result(&mut self) -> Result<KeyCursor> {
        loop {
            let Some(batch) = self.result.stream.next().await.transpose()? else {
                return self.cursor(RecordBatch::new_empty(self.columns.clone()), true);
            };
            if batch.num_rows() == 0 {
                continue;
            }
            let batch = tidemark_lake::plain::cast_to(&batch, &self.columns)?;
            for field in &self.codec.fields {
                if batch.column_by_name(field.name()).expect("key").null_count() > 0 {
                    return Err(PushError::NullKey { flow: self.flow.clone(), column: field.name().clone() });
                }
            }
            let cursor = self.cursor(batch, false)?;
            // Sorted by key: a repeated key is next to itself, within a batch or across two.
            for row in 0..cursor.keys.num_rows() {
                let key = cursor.keys.row(row);
                let repeated = if row == 0 {
                    self.last_result_key.as_ref().is_some_and(|last| last.row() == key)
                } else {
                    cursor.keys.row(row - 1) == key
                };
                if repeated {
                    return Err(PushError::DuplicateKey {
                        flow: self.flow.clone(),
                        key: self.codec.describe(&cursor.batch, row),
                    });
                }
            }
            self.last_result_key = cursor.keys.num_rows().checked_sub(1).map(|last| cursor.keys.row(last).owned());
            return Ok(cursor);
        }
    }

    async fn next_snapshot(&mut self) -> Result<KeyCursor> {
        let empty = RecordBatch::new_empty(self.snapshot_schema.clone());
        let Some(rows) = self.snapshot.as_mut() else { return self.cursor(empty, true) };
        loop {
            match rows.recv().await {
                None => return self.cursor(empty, true),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(b)) if b.num_rows() == 0 => continue,
                Some(Ok(b)) => return self.cursor(b, false),
            }
        }
    }

    fn cursor(&self, batch: RecordBatch, done: bool) -> Result<KeyCursor> {
        let schema = batch.schema();
        Ok(KeyCursor::new(&self.codec, (!done).then_some(batch), &schema)?)
    }
}
