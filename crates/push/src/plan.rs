//! What a run does with each key of the diff, and the snapshot entry each key leaves.
//!
//! Rows to send are buffered until their group is sent; the diff rows around them wait with
//! them (as the diff's own Arrow batches and one small slot per row), so the next snapshot is
//! written in key order, each entry decided by the outcome of its row:
//!
//! | row | sent as | entry when delivered | entry otherwise |
//! |---|---|---|---|
//! | new | insert / upsert / update / delete (by mode) | its hash and record Id, this run | none: new again next run |
//! | changed | update by the recorded Id (insert mode), else as new | its hash, this run | the old one: changed again next run |
//! | unchanged | – | the old one | |
//! | vanished | delete by the recorded Id with `delete_vanished` | none | the old one (kept: the Id is still known if the key returns) |

use std::collections::HashMap;
use std::sync::Arc;

use tidemark_core::push::PushMode;
use tidemark_lake::arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, Int64Builder, RecordBatch, StringBuilder, UInt32Array,
};
use tidemark_lake::arrow::compute::take;
use tidemark_lake::arrow::datatypes::{Int64Type, SchemaRef, UInt8Type};
use tidemark_salesforce::write::{Record, RowOutcome};

use crate::diff::{CHANGE, CHANGED, NEW, SENT_HASH, SENT_RUN, UNCHANGED, VANISHED};
use crate::error::Result;
use crate::records::{KeyText, PreparedBatch, RecordEncoder};
use crate::send::{Operation, OutRow};
use crate::snapshot::{ROW_HASH, SF_ID};

/// An insert of an interrupted run that Salesforce accepted (found through the journal).
#[derive(Debug, Clone)]
pub struct Recovered {
    pub hash: Vec<u8>,
    /// `None`: the outcome stays unknown; the key is held rather than inserted again.
    pub id: Option<String>,
    pub run: i64,
}

/// Where a waiting row's entry comes from.
#[derive(Debug, Clone, Copy)]
enum Entry {
    None,
    /// The snapshot's, as the diff row carries it.
    Old,
    Recovered(u32),
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Fixed(Entry),
    /// Row `out` of the rows being sent; `removes` for a delete that drops the entry.
    Sent {
        out: u32,
        removes: bool,
        otherwise: Entry,
    },
}

/// The delivered state of one sent row.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    pub delivered: bool,
    pub id: Option<String>,
}

/// Rows to send and the diff rows waiting for them.
pub struct Planner {
    mode: PushMode,
    delete_vanished: bool,
    encoder: RecordEncoder,
    key_columns: Vec<usize>,
    id_column: Option<String>,
    recovered: Vec<Recovered>,
    recovered_keys: HashMap<String, u32>,
    waiting: Vec<(RecordBatch, Vec<Slot>)>,
    /// Rows to send, by operation, with their position among all rows being sent.
    pub outgoing: Vec<(Operation, u32, OutRow)>,
    /// Rows of insert mode whose earlier insert has an unknown outcome: held, not sent.
    pub held: u64,
    /// Dry runs: records are encoded for this many rows per operation (the sample), the other
    /// rows are only counted.
    pub encode_limit: Option<usize>,
    encoded: [usize; Operation::ALL.len()],
}

impl Planner {
    pub fn new(
        mode: PushMode,
        delete_vanished: bool,
        encoder: RecordEncoder,
        key_columns: Vec<usize>,
        id_column: Option<String>,
        recovered: HashMap<String, Recovered>,
    ) -> Planner {
        let mut list = Vec::with_capacity(recovered.len());
        let mut keys = HashMap::with_capacity(recovered.len());
        for (key, r) in recovered {
            keys.insert(key, list.len() as u32);
            list.push(r);
        }
        Planner {
            mode,
            delete_vanished,
            encoder,
            key_columns,
            id_column,
            recovered: list,
            recovered_keys: keys,
            waiting: Vec::new(),
            outgoing: Vec::new(),
            held: 0,
            encode_limit: None,
            encoded: [0; Operation::ALL.len()],
        }
    }

    /// Plans one diff batch; returns the rows it adds to send.
    pub fn plan(&mut self, batch: RecordBatch) -> Result<usize> {
        let changes = batch.column_by_name(CHANGE).expect("diff column").as_primitive::<UInt8Type>().clone();
        let hashes = batch.column_by_name(ROW_HASH).expect("diff column").as_binary::<i32>().clone();
        let sf_ids = batch.column_by_name(SF_ID).expect("diff column").as_string::<i32>().clone();
        let id_values = self.id_column.as_ref().map(|c| {
            tidemark_lake::arrow::compute::cast(
                batch.column_by_name(c).expect("id column"),
                &tidemark_lake::arrow::datatypes::DataType::Utf8,
            )
        });
        let id_values = id_values.transpose()?;
        let before = self.outgoing.len();
        let mut slots = Vec::with_capacity(batch.num_rows());
        // Converted on the first row that needs them.
        let mut keys: Option<KeyText> = None;
        let mut prepared: Option<PreparedBatch> = None;
        for row in 0..batch.num_rows() {
            let mut change = changes.value(row);
            let mut known_id = (!sf_ids.is_null(row)).then(|| sf_ids.value(row).to_owned());
            let mut entry = if change == NEW { Entry::None } else { Entry::Old };
            let key = if !self.recovered.is_empty() || change != UNCHANGED {
                if keys.is_none() {
                    keys = Some(KeyText::new(&batch, &self.key_columns)?);
                }
                Some(keys.as_ref().expect("set above").text(row)?)
            } else {
                None
            };
            if let Some(&i) = key.as_ref().and_then(|k| self.recovered_keys.get(k)) {
                let r = &self.recovered[i as usize];
                entry = Entry::Recovered(i);
                known_id = r.id.clone();
                if change != VANISHED {
                    change = if hashes.value(row) == r.hash.as_slice() { UNCHANGED } else { CHANGED };
                }
            }
            let hash = (!hashes.is_null(row)).then(|| hashes.value(row).to_vec());
            let operation = match (change, self.mode) {
                (UNCHANGED, _) => None,
                (VANISHED, _) => known_id.as_ref().filter(|_| self.delete_vanished).map(|_| Operation::Delete),
                (_, PushMode::Insert) if entry_exists(entry) => {
                    if known_id.is_none() {
                        self.held += 1;
                    }
                    known_id.as_ref().map(|_| Operation::Update)
                }
                (_, PushMode::Insert) => Some(Operation::Insert),
                (_, PushMode::Upsert) => Some(Operation::Upsert),
                (_, PushMode::Update) => Some(Operation::Update),
                (NEW, PushMode::Delete) => Some(Operation::Delete),
                (_, PushMode::Delete) => None,
            };
            let Some(operation) = operation else {
                slots.push(Slot::Fixed(entry));
                continue;
            };
            let slot = Operation::ALL.iter().position(|o| *o == operation).expect("listed");
            let encode = self.encode_limit.is_none_or(|limit| self.encoded[slot] < limit);
            self.encoded[slot] += 1;
            if encode && prepared.is_none() && operation != Operation::Delete {
                prepared = Some(self.encoder.prepare(&batch)?);
            }
            let record = match operation {
                _ if !encode => Record::new(),
                Operation::Delete => {
                    let id = match (&known_id, &id_values) {
                        (Some(id), _) if change == VANISHED => id.clone(),
                        (_, Some(ids)) if !ids.is_null(row) => ids.as_string::<i32>().value(row).to_owned(),
                        (Some(id), _) => id.clone(),
                        _ => {
                            slots.push(Slot::Fixed(entry));
                            continue;
                        }
                    };
                    Record::from_iter([("Id".to_owned(), serde_json::Value::String(id))])
                }
                Operation::Update if self.mode == PushMode::Insert => {
                    let mut record = prepared.as_ref().expect("prepared above").record(row)?;
                    record.insert("Id".into(), serde_json::Value::String(known_id.clone().expect("checked above")));
                    record
                }
                _ => prepared.as_ref().expect("prepared above").record(row)?,
            };
            let out = self.outgoing.len() as u32;
            let removes = change == VANISHED;
            let key = key.expect("computed for every changed row");
            self.outgoing.push((operation, out, OutRow { key, hash: hash.unwrap_or_default(), record }));
            slots.push(Slot::Sent { out, removes, otherwise: entry });
        }
        self.waiting.push((batch, slots));
        Ok(self.outgoing.len() - before)
    }

    /// Forgets the waiting rows without entries (a dry run writes no snapshot).
    pub fn discard_waiting(&mut self) {
        self.waiting.clear();
    }

    /// Whether rows wait for an outcome.
    pub fn has_outgoing(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Takes the rows to send, grouped by operation (each group in key order); the caller
    /// reports their deliveries to [`Planner::settle`] by position.
    pub fn take_outgoing(&mut self) -> Vec<(Operation, Vec<(u32, OutRow)>)> {
        let mut groups: Vec<(Operation, Vec<(u32, OutRow)>)> = Operation::ALL.iter().map(|o| (*o, Vec::new())).collect();
        for (operation, out, row) in self.outgoing.drain(..) {
            let group = groups.iter_mut().find(|(o, _)| *o == operation).expect("every operation has a group");
            group.1.push((out, row));
        }
        groups.retain(|(_, rows)| !rows.is_empty());
        groups
    }

    /// The snapshot rows of every waiting diff row, given the deliveries of the rows sent
    /// (indexed by position), in key order; the waiting rows are released.
    pub fn settle(&mut self, run: i64, deliveries: &[Delivery], schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::with_capacity(self.waiting.len());
        for (batch, slots) in std::mem::take(&mut self.waiting) {
            let old_hashes = batch.column_by_name(SENT_HASH).expect("diff column").as_binary::<i32>().clone();
            let old_ids = batch.column_by_name(SF_ID).expect("diff column").as_string::<i32>().clone();
            let old_runs = batch.column_by_name(SENT_RUN).expect("diff column").as_primitive::<Int64Type>().clone();
            let new_hashes = batch.column_by_name(ROW_HASH).expect("diff column").as_binary::<i32>().clone();
            let (mut hash, mut id, mut runs) = (BinaryBuilder::new(), StringBuilder::new(), Int64Builder::new());
            let mut rows = Vec::new();
            for (row, slot) in slots.iter().enumerate() {
                let entry = match *slot {
                    Slot::Fixed(entry) => entry,
                    Slot::Sent { out, removes, otherwise } => {
                        let delivery = &deliveries[out as usize];
                        match (delivery.delivered, removes) {
                            (true, true) => Entry::None,
                            (true, false) => {
                                let fallback = match otherwise {
                                    Entry::Old if !old_ids.is_null(row) => Some(old_ids.value(row).to_owned()),
                                    Entry::Recovered(i) => self.recovered[i as usize].id.clone(),
                                    _ => None,
                                };
                                hash.append_value(new_hashes.value(row));
                                id.append_option(delivery.id.clone().or(fallback));
                                runs.append_value(run);
                                rows.push(row as u32);
                                continue;
                            }
                            (false, _) => otherwise,
                        }
                    }
                };
                match entry {
                    Entry::None => continue,
                    Entry::Old => {
                        hash.append_value(old_hashes.value(row));
                        id.append_option((!old_ids.is_null(row)).then(|| old_ids.value(row)));
                        runs.append_value(old_runs.value(row));
                    }
                    Entry::Recovered(i) => {
                        let r = &self.recovered[i as usize];
                        hash.append_value(&r.hash);
                        id.append_option(r.id.as_deref());
                        runs.append_value(r.run);
                    }
                }
                rows.push(row as u32);
            }
            if rows.is_empty() {
                continue;
            }
            let indices = UInt32Array::from(rows);
            let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
            for field in schema.fields().iter().take(schema.fields().len() - 3) {
                let column = batch.column_by_name(field.name()).expect("key column");
                let taken = take(column.as_ref(), &indices, None)?;
                columns.push(tidemark_lake::arrow::compute::cast(&taken, field.data_type())?);
            }
            columns.push(Arc::new(hash.finish()));
            columns.push(Arc::new(id.finish()));
            columns.push(Arc::new(runs.finish()));
            out.push(RecordBatch::try_new(schema.clone(), columns)?);
        }
        Ok(out)
    }
}

fn entry_exists(entry: Entry) -> bool {
    !matches!(entry, Entry::None)
}

/// Whether `outcome` delivered a row of `operation`, and the record Id it reports.
pub fn delivery(operation: Operation, outcome: &RowOutcome) -> Delivery {
    match outcome {
        RowOutcome::Success { id, .. } => Delivery { delivered: true, id: (!id.is_empty()).then(|| id.clone()) },
        // Deleting what is already deleted leaves the org as the row asked.
        RowOutcome::Failed { errors }
            if operation == Operation::Delete && errors.iter().all(|e| e.status_code == "ENTITY_IS_DELETED") =>
        {
            Delivery { delivered: true, id: None }
        }
        // An insert that may have happened is held, never sent twice; the error table says so.
        RowOutcome::Unknown if operation == Operation::Insert => Delivery { delivered: true, id: None },
        _ => Delivery::default(),
    }
}
