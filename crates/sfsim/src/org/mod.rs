//! The in-memory org: object tables, the org clock, the change log and the recycle bin.
//!
//! Everything here is synchronous and single-writer: the server wraps one [`Org`] in a lock.
//! Methods in this module are the *system* write path (no validation, no API limits): the data
//! generator, change rounds and the validated API write path in [`write`] all end here, so the
//! change log sees every version exactly once.

pub mod read;
pub mod rules;
pub mod schema_change;
pub mod snapshot;
pub mod text_index;
pub mod transaction;
pub mod undelete;
pub mod validate;
pub mod write;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tidemark_core::{Clock, ManualClock, SfId, SystemClock};

use crate::row::{Row, Slot};
use crate::schema::ObjectDef;
use crate::value::Value;

/// How long soft-deleted records stay in the recycle bin (and the delete log) before purge.
pub const RECYCLE_BIN_DAYS: i64 = 15;

/// The org clock: frozen and moved by the admin API (tests, demo), or the wall clock.
#[derive(Debug, Clone)]
pub enum OrgClock {
    Manual(ManualClock),
    Wall(SystemClock),
}

impl OrgClock {
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            OrgClock::Manual(c) => c.now(),
            OrgClock::Wall(c) => c.now(),
        }
    }

    pub fn now_millis(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

/// What happened to a record (or an object's schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Create,
    Update,
    /// Soft delete: the record moved to the recycle bin (`IsDeleted = true`).
    Delete,
    Undelete,
    /// Deleted without passing through the recycle bin (Bulk `hardDelete`).
    HardDelete,
    /// Removed from the recycle bin after [`RECYCLE_BIN_DAYS`] (or emptied).
    Purge,
    Schema,
}

/// One entry of the org's change log. `row` is the record version the change produced (for
/// deletes, the deleted version; absent for hard deletes, purges and schema events).
#[derive(Debug, Clone)]
pub struct ChangeEvent {
    pub seq: u64,
    pub at_millis: i64,
    pub object: Arc<str>,
    pub id: Option<SfId>,
    pub kind: ChangeKind,
    pub row: Option<Row>,
    /// For schema events, a description such as `add_field Foo__c (string)`.
    pub detail: Option<String>,
}

/// One object's records: live and recycle-bin rows, plus the delete log getDeleted reads.
#[derive(Debug, Clone)]
pub struct ObjectTable {
    pub def: ObjectDef,
    rows: Vec<Row>,
    index: HashMap<SfId, u32>,
    /// `(id, deleted_at_millis)` of soft- and hard-deleted records still in the delete log.
    delete_log: Vec<(SfId, i64)>,
    lookups: text_index::TextIndex,
}

impl ObjectTable {
    pub fn new(def: ObjectDef) -> ObjectTable {
        ObjectTable { def, rows: Vec::new(), index: HashMap::new(), delete_log: Vec::new(), lookups: Default::default() }
    }

    /// Every stored row, including records in the recycle bin, in insertion order.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    pub fn get(&self, id: &SfId) -> Option<&Row> {
        self.index.get(id).map(|&i| &self.rows[i as usize])
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn is_deleted(&self, row: &Row) -> bool {
        row.get(self.def.slot("IsDeleted")).as_bool() == Some(true)
    }

    pub fn id_of(&self, row: &Row) -> SfId {
        let s = row.get(self.def.slot("Id")).as_str().expect("every row has an Id");
        SfId::parse(s).expect("stored ids are valid")
    }

    /// Live (not deleted) record count.
    pub fn live_count(&self) -> usize {
        let slot = self.def.slot("IsDeleted");
        self.rows.iter().filter(|r| r.get(slot).as_bool() != Some(true)).count()
    }

    pub fn delete_log(&self) -> &[(SfId, i64)] {
        &self.delete_log
    }

    /// Stored rows of `slot`'s text `value` (case-insensitively; see [`text_index`]), in
    /// storage order.
    pub fn lookup_text(&self, slot: Slot, value: &str) -> Vec<SfId> {
        let mut ids = self.lookups.candidates(slot, value, || Box::new(self.rows.iter().map(|r| (self.id_of(r), r))));
        ids.sort_by_key(|id| self.index.get(id).copied().unwrap_or(u32::MAX));
        ids
    }

    fn put(&mut self, id: SfId, row: Row) {
        match self.index.get(&id) {
            Some(&i) => {
                self.lookups.update(id, Some(&self.rows[i as usize]), Some(&row));
                self.rows[i as usize] = row;
            }
            None => {
                self.lookups.update(id, None, Some(&row));
                self.index.insert(id, self.rows.len() as u32);
                self.rows.push(row);
            }
        }
    }

    /// The table's definition changed: lookups are rebuilt on next use.
    pub(crate) fn forget_lookups(&mut self) {
        self.lookups.clear();
    }

    fn remove(&mut self, id: &SfId) -> Option<Row> {
        let i = self.index.remove(id)? as usize;
        self.lookups.update(*id, Some(&self.rows[i]), None);
        let row = self.rows.swap_remove(i);
        if i < self.rows.len() {
            let moved = self.id_of(&self.rows[i]);
            self.index.insert(moved, i as u32);
        }
        Some(row)
    }

    /// Rewrites every row (used by schema changes that convert a field's values).
    pub(crate) fn map_rows(&mut self, mut f: impl FnMut(&Row) -> Row) {
        self.lookups.clear();
        for row in &mut self.rows {
            *row = f(row);
        }
    }
}

/// Errors of the system write path. The validated API path turns these into API error codes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrgError {
    #[error("sObject type '{0}' is not supported.")]
    UnknownObject(String),
    #[error("No such column '{field}' on entity '{object}'.")]
    UnknownField { object: String, field: String },
    #[error("Provided external ID field does not exist or is not accessible: {0}")]
    NotFound(String),
    #[error("entity is deleted")]
    EntityIsDeleted(SfId),
    #[error("entity is not in the recycle bin")]
    NotDeleted(SfId),
}

/// The org.
#[derive(Debug)]
pub struct Org {
    pub org_id: SfId,
    /// The 2-character instance code embedded in generated ids.
    pub instance: String,
    /// The user every write is attributed to (`CreatedById`/`LastModifiedById`).
    pub integration_user: SfId,
    clock: OrgClock,
    tables: Vec<ObjectTable>,
    by_name: HashMap<String, usize>,
    by_prefix: HashMap<String, usize>,
    next_id: u64,
    change_log: Vec<ChangeEvent>,
    /// Ids of records that left the org for good (hard-deleted, or purged from the recycle bin):
    /// `undelete` tells them from ids that never existed.
    removed: HashSet<SfId>,
    /// Record the change log (tests and the truth dump); benchmarks may switch it off.
    pub keep_change_log: bool,
    /// Stamp audit datetimes with the clock's milliseconds instead of truncating them to the
    /// second as Salesforce stores them (see [`Org::stamp_millis`]).
    pub millisecond_stamps: bool,
}

impl Org {
    /// An empty org over `objects` (see [`crate::catalog`] for the standard set).
    pub fn new(objects: Vec<ObjectDef>, clock: OrgClock) -> Org {
        let instance = "Dn".to_owned();
        let mut org = Org {
            org_id: SfId::from_parts("00D", &instance, 1),
            integration_user: SfId::from_parts("005", &instance, 1),
            instance,
            clock,
            tables: Vec::new(),
            by_name: HashMap::new(),
            by_prefix: HashMap::new(),
            next_id: 1000,
            change_log: Vec::new(),
            removed: HashSet::new(),
            keep_change_log: true,
            millisecond_stamps: false,
        };
        for def in objects {
            org.add_object(def);
        }
        org
    }

    pub fn add_object(&mut self, def: ObjectDef) {
        let i = self.tables.len();
        self.by_name.insert(def.name.to_ascii_lowercase(), i);
        self.by_prefix.insert(def.key_prefix.clone(), i);
        self.tables.push(ObjectTable::new(def));
    }

    pub fn clock(&self) -> &OrgClock {
        &self.clock
    }

    pub fn now_millis(&self) -> i64 {
        self.clock.now_millis()
    }

    /// The instant the org writes into the audit datetimes it stamps itself (`CreatedDate`,
    /// `LastModifiedDate`, `SystemModstamp`, delete-log dates, Bulk job dates): the clock
    /// truncated to the whole second, because Salesforce stores them to the second, so two saves
    /// within one second carry the same `SystemModstamp`. Millisecond precision only with
    /// [`Org::millisecond_stamps`].
    pub fn stamp_millis(&self) -> i64 {
        let now = self.now_millis();
        if self.millisecond_stamps { now } else { now - now.rem_euclid(1000) }
    }

    /// Moves a manual clock forward and purges what the recycle bin no longer holds.
    /// Returns the new time. Has no effect on a wall clock.
    pub fn advance_clock(&mut self, by: Duration) -> DateTime<Utc> {
        if let OrgClock::Manual(c) = &self.clock {
            c.advance(by);
        }
        self.purge_expired();
        self.clock.now()
    }

    pub fn tables(&self) -> &[ObjectTable] {
        &self.tables
    }

    /// Case-insensitive object lookup.
    pub fn table(&self, name: &str) -> Option<&ObjectTable> {
        self.by_name.get(&name.to_ascii_lowercase()).map(|&i| &self.tables[i])
    }

    pub fn table_mut(&mut self, name: &str) -> Option<&mut ObjectTable> {
        self.by_name.get(&name.to_ascii_lowercase()).map(|&i| &mut self.tables[i])
    }

    /// The table an id belongs to, by key prefix.
    pub fn table_for_id(&self, id: &SfId) -> Option<&ObjectTable> {
        self.by_prefix.get(id.key_prefix()).map(|&i| &self.tables[i])
    }

    /// Looks a record up by id in any object.
    pub fn find(&self, id: &SfId) -> Option<(&ObjectTable, &Row)> {
        let table = self.table_for_id(id)?;
        Some((table, table.get(id)?))
    }

    pub fn change_log(&self) -> &[ChangeEvent] {
        &self.change_log
    }

    /// Whether `id` was a record that has been hard-deleted or purged from the recycle bin.
    pub fn was_removed(&self, id: &SfId) -> bool {
        self.removed.contains(id)
    }

    /// A fresh id for `object`.
    pub fn new_id(&mut self, key_prefix: &str) -> SfId {
        self.next_id += 1;
        SfId::from_parts(key_prefix, &self.instance, self.next_id)
    }

    fn log(&mut self, object: &str, id: Option<SfId>, kind: ChangeKind, row: Option<Row>, detail: Option<String>) {
        if !self.keep_change_log && kind != ChangeKind::Schema {
            return;
        }
        let seq = self.change_log.len() as u64 + 1;
        self.change_log.push(ChangeEvent {
            seq,
            at_millis: self.stamp_millis(),
            object: Arc::from(object),
            id,
            kind,
            row,
            detail,
        });
    }

    /// Records a schema change in the change log.
    pub fn log_schema_change(&mut self, object: &str, detail: String) {
        self.log(object, None, ChangeKind::Schema, None, Some(detail));
    }

    fn lookup_mut(&mut self, object: &str) -> Result<usize, OrgError> {
        self.by_name.get(&object.to_ascii_lowercase()).copied().ok_or_else(|| OrgError::UnknownObject(object.to_owned()))
    }

    /// Inserts a record with the audit fields stamped at the org clock's now. `values` must not
    /// contain audit fields. Returns the new id.
    pub fn insert_record(&mut self, object: &str, values: Vec<(Slot, Value)>) -> Result<SfId, OrgError> {
        let now = self.stamp_millis();
        self.insert_record_at(object, values, now, now)
    }

    /// Inserts with explicit timestamps (the generator back-dates history).
    /// `created <= modified` must hold; `SystemModstamp = LastModifiedDate = modified`.
    pub fn insert_record_at(
        &mut self,
        object: &str,
        mut values: Vec<(Slot, Value)>,
        created_millis: i64,
        modified_millis: i64,
    ) -> Result<SfId, OrgError> {
        let t = self.lookup_mut(object)?;
        let prefix = self.tables[t].def.key_prefix.clone();
        let id = self.new_id(&prefix);
        let def = &self.tables[t].def;
        let user = Value::str(self.integration_user.as_str());
        values.extend([
            (def.slot("Id"), Value::str(id.as_str())),
            (def.slot("IsDeleted"), Value::Bool(false)),
            (def.slot("CreatedDate"), Value::DateTime(created_millis)),
            (def.slot("CreatedById"), user.clone()),
            (def.slot("LastModifiedDate"), Value::DateTime(modified_millis)),
            (def.slot("LastModifiedById"), user),
            (def.slot("SystemModstamp"), Value::DateTime(modified_millis)),
        ]);
        let row = Row::from_values(values);
        let name = self.tables[t].def.name.clone();
        self.tables[t].put(id, row.clone());
        self.log(&name, Some(id), ChangeKind::Create, Some(row), None);
        Ok(id)
    }

    /// Applies field updates, bumping `LastModifiedDate` and `SystemModstamp`.
    pub fn update_record(&mut self, id: &SfId, updates: Vec<(Slot, Value)>) -> Result<Row, OrgError> {
        let now = self.stamp_millis();
        let user = Value::str(self.integration_user.as_str());
        self.rewrite(id, ChangeKind::Update, |def| {
            let mut u = updates;
            u.push((def.slot("LastModifiedDate"), Value::DateTime(now)));
            u.push((def.slot("LastModifiedById"), user));
            u.push((def.slot("SystemModstamp"), Value::DateTime(now)));
            u
        })
    }

    /// Moves a record to the recycle bin.
    pub fn soft_delete(&mut self, id: &SfId) -> Result<Row, OrgError> {
        let now = self.stamp_millis();
        let row = self.rewrite(id, ChangeKind::Delete, |def| {
            vec![
                (def.slot("IsDeleted"), Value::Bool(true)),
                (def.slot("LastModifiedDate"), Value::DateTime(now)),
                (def.slot("SystemModstamp"), Value::DateTime(now)),
            ]
        })?;
        let t = self.table_index_for_id(id)?;
        self.tables[t].delete_log.push((*id, now));
        Ok(row)
    }

    /// Restores a record from the recycle bin.
    pub fn undelete(&mut self, id: &SfId) -> Result<Row, OrgError> {
        let t = self.table_index_for_id(id)?;
        let table = &self.tables[t];
        let row = table.get(id).ok_or_else(|| OrgError::NotFound(id.to_string()))?;
        if !table.is_deleted(row) {
            return Err(OrgError::NotDeleted(*id));
        }
        let now = self.stamp_millis();
        let row = self.rewrite_unchecked(t, id, ChangeKind::Undelete, |def| {
            vec![
                (def.slot("IsDeleted"), Value::Bool(false)),
                (def.slot("LastModifiedDate"), Value::DateTime(now)),
                (def.slot("SystemModstamp"), Value::DateTime(now)),
            ]
        })?;
        self.tables[t].delete_log.retain(|(d, _)| d != id);
        Ok(row)
    }

    /// Deletes a record without the recycle bin. It still appears in the delete log.
    pub fn hard_delete(&mut self, id: &SfId) -> Result<(), OrgError> {
        let t = self.table_index_for_id(id)?;
        self.tables[t].remove(id).ok_or_else(|| OrgError::NotFound(id.to_string()))?;
        let now = self.stamp_millis();
        self.removed.insert(*id);
        let table = &mut self.tables[t];
        table.delete_log.retain(|(d, _)| d != id);
        table.delete_log.push((*id, now));
        let name = table.def.name.clone();
        self.log(&name, Some(*id), ChangeKind::HardDelete, None, None);
        Ok(())
    }

    /// Purges recycle-bin records and delete-log entries older than [`RECYCLE_BIN_DAYS`].
    pub fn purge_expired(&mut self) -> usize {
        let cutoff = self.now_millis() - Duration::days(RECYCLE_BIN_DAYS).num_milliseconds();
        self.purge_deleted_before(cutoff)
    }

    /// Empties the recycle bin now (all soft-deleted records are purged).
    pub fn empty_recycle_bin(&mut self) -> usize {
        self.purge_deleted_before(i64::MAX)
    }

    fn purge_deleted_before(&mut self, cutoff_millis: i64) -> usize {
        let mut purged = Vec::new();
        for table in &mut self.tables {
            let expired: Vec<SfId> = table.delete_log.iter().filter(|(_, at)| *at < cutoff_millis).map(|(id, _)| *id).collect();
            if expired.is_empty() {
                continue;
            }
            table.delete_log.retain(|(_, at)| *at >= cutoff_millis);
            for id in expired {
                let in_bin = table.get(&id).is_some_and(|r| table.is_deleted(r));
                if in_bin {
                    table.remove(&id);
                    purged.push((table.def.name.clone(), id));
                }
            }
        }
        let n = purged.len();
        for (object, id) in purged {
            self.removed.insert(id);
            self.log(&object, Some(id), ChangeKind::Purge, None, None);
        }
        n
    }

    fn table_index_for_id(&self, id: &SfId) -> Result<usize, OrgError> {
        self.by_prefix.get(id.key_prefix()).copied().ok_or_else(|| OrgError::NotFound(id.to_string()))
    }

    fn rewrite(
        &mut self,
        id: &SfId,
        kind: ChangeKind,
        updates: impl FnOnce(&ObjectDef) -> Vec<(Slot, Value)>,
    ) -> Result<Row, OrgError> {
        let t = self.table_index_for_id(id)?;
        let table = &self.tables[t];
        let row = table.get(id).ok_or_else(|| OrgError::NotFound(id.to_string()))?;
        if table.is_deleted(row) {
            return Err(OrgError::EntityIsDeleted(*id));
        }
        self.rewrite_unchecked(t, id, kind, updates)
    }

    fn rewrite_unchecked(
        &mut self,
        t: usize,
        id: &SfId,
        kind: ChangeKind,
        updates: impl FnOnce(&ObjectDef) -> Vec<(Slot, Value)>,
    ) -> Result<Row, OrgError> {
        let table = &mut self.tables[t];
        let old = table.get(id).ok_or_else(|| OrgError::NotFound(id.to_string()))?;
        let new = old.with_updates(updates(&table.def));
        table.put(*id, new.clone());
        let name = table.def.name.clone();
        self.log(&name, Some(*id), kind, Some(new.clone()), None);
        Ok(new)
    }
}
