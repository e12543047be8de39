//! Raw access to the org's internals for bulk loading (the data generator) and persistence:
//! pre-sizing tables, predicting ids, and taking an org apart and putting it back together.

use std::collections::{HashMap, HashSet};

use tidemark_core::SfId;

use super::{ChangeEvent, ChangeKind, ObjectTable, Org, OrgClock};
use crate::row::Row;
use crate::schema::ObjectDef;

/// Everything that makes up an org, by value, in the order persistence writes it.
#[derive(Debug)]
pub struct OrgParts {
    pub org_id: SfId,
    pub instance: String,
    pub integration_user: SfId,
    pub next_id: u64,
    pub keep_change_log: bool,
    pub tables: Vec<TableParts>,
    pub change_log: Vec<ChangeEvent>,
}

/// One table: its schema, every stored row (live and in the recycle bin) and its delete log.
#[derive(Debug)]
pub struct TableParts {
    pub def: ObjectDef,
    pub rows: Vec<Row>,
    pub delete_log: Vec<(SfId, i64)>,
}

impl ObjectTable {
    /// Reserves room for `additional` more records.
    pub fn reserve(&mut self, additional: usize) {
        self.rows.reserve(additional);
        self.index.reserve(additional);
    }
}

impl Org {
    /// Reserves room for `additional` more records of `object` (bulk loading).
    pub fn reserve(&mut self, object: &str, additional: usize) {
        if let Some(t) = self.table_mut(object) {
            t.reserve(additional);
        }
    }

    /// The id the next insert into an object with `key_prefix` will get.
    pub fn peek_next_id(&self, key_prefix: &str) -> SfId {
        SfId::from_parts(key_prefix, &self.instance, self.next_id + 1)
    }

    /// The id counter (persisted so ids stay unique across restarts).
    pub fn id_counter(&self) -> u64 {
        self.next_id
    }

    /// Borrowed view used by persistence: `(def, rows, delete log)` per table.
    pub fn table_parts(&self) -> impl Iterator<Item = (&ObjectDef, &[Row], &[(SfId, i64)])> {
        self.tables.iter().map(|t| (&t.def, t.rows.as_slice(), t.delete_log.as_slice()))
    }

    /// Rebuilds an org from its parts, re-indexing every table.
    pub fn from_parts(parts: OrgParts, clock: OrgClock) -> Org {
        let mut org = Org {
            org_id: parts.org_id,
            instance: parts.instance,
            integration_user: parts.integration_user,
            clock,
            tables: Vec::with_capacity(parts.tables.len()),
            by_name: HashMap::new(),
            by_prefix: HashMap::new(),
            next_id: parts.next_id,
            change_log: parts.change_log,
            removed: Default::default(),
            keep_change_log: parts.keep_change_log,
            // A runtime option, not part of the org: whoever loads the org sets it.
            millisecond_stamps: false,
        };
        for t in parts.tables {
            org.add_object(t.def);
            let table = org.tables.last_mut().expect("just added");
            table.reserve(t.rows.len());
            for row in t.rows {
                let id = table.id_of(&row);
                table.put(id, row);
            }
            table.delete_log = t.delete_log;
        }
        // Records that left for good: hard deletes still in a delete log, and every hard delete
        // or purge the change log remembers.
        let mut removed: HashSet<SfId> = HashSet::new();
        for table in &org.tables {
            removed.extend(table.delete_log.iter().map(|(id, _)| *id).filter(|id| table.get(id).is_none()));
        }
        removed.extend(
            org.change_log.iter().filter(|e| matches!(e.kind, ChangeKind::HardDelete | ChangeKind::Purge)).filter_map(|e| e.id),
        );
        org.removed = removed;
        org
    }
}
