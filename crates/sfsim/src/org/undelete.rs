//! Undelete through the API (SOAP `undelete()`): records come back from the recycle bin with
//! their id and field values, the master-detail children deleted with them come back too, and
//! each restore goes through the system path ([`Org::undelete`]) that change rounds use, so the
//! change log, `SystemModstamp`/`LastModifiedDate`, getUpdated, getDeleted and queryAll all see
//! it as they see any undelete.
//!
//! Per-id errors, in the order they are checked:
//! - not an id, or a key prefix no object has: `MALFORMED_ID` `malformed id <id>`;
//! - an object whose describe says `undeletable: false`: `CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY`
//!   `Entity type is not undeletable`, before any recycle-bin lookup (as an Apex emulator that
//!   reproduces the platform documents it);
//! - a record hard-deleted or purged from the recycle bin: `UNDELETE_FAILED` `Entity is not in
//!   the recycle bin` (help.salesforce.com article 000386040), and the same for a live record;
//! - an id no record ever had: `INVALID_CROSS_REFERENCE_KEY` `invalid cross reference id`;
//! - a detail record whose master is still in the recycle bin: `ENTITY_IS_DELETED` (undelete the
//!   master, which brings its children back);
//! - a restored record whose unique field value a live record took meanwhile: `DUPLICATE_VALUE`.

use tidemark_core::SfId;

use super::transaction::Transaction;
use super::write::{RecordError, entity_is_deleted, invalid_cross_reference, malformed_id, org_error};
use super::{ObjectTable, Org};
use crate::row::Row;
use crate::value::Value;

fn not_in_recycle_bin() -> RecordError {
    RecordError::new("UNDELETE_FAILED", "Entity is not in the recycle bin", vec![])
}

impl Org {
    /// Undeletes a record from the recycle bin, with the master-detail children deleted with it.
    pub fn api_undelete(&mut self, id: &str) -> Result<SfId, RecordError> {
        self.api_undelete_in(None, id)
    }

    /// [`Org::api_undelete`] inside an all-or-none transaction.
    pub fn api_undelete_in(&mut self, mut tx: Option<&mut Transaction>, id: &str) -> Result<SfId, RecordError> {
        let parsed = SfId::parse(id).map_err(|_| malformed_id(id))?;
        let table = self.table_for_id(&parsed).ok_or_else(|| malformed_id(id))?;
        if !table.def.flags.undeletable {
            return Err(RecordError::new("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", "Entity type is not undeletable", vec![]));
        }
        let Some(row) = table.get(&parsed) else {
            return Err(if self.was_removed(&parsed) { not_in_recycle_bin() } else { invalid_cross_reference() });
        };
        if !table.is_deleted(row) {
            return Err(not_in_recycle_bin());
        }
        if self.master_in_recycle_bin(table, row) {
            return Err(entity_is_deleted());
        }
        let restored = self.cascade_restorees(&parsed);
        for r in &restored {
            self.check_unique_on_undelete(r)?;
        }
        for r in &restored {
            if let Some(tx) = tx.as_deref_mut() {
                self.journal_before_write(tx, r);
            }
            self.undelete(r).map_err(org_error)?;
        }
        tracing::debug!(cascaded = restored.len() - 1, "record undeleted");
        Ok(parsed)
    }

    /// Whether a master-detail parent of `row` is in the recycle bin.
    fn master_in_recycle_bin(&self, table: &ObjectTable, row: &Row) -> bool {
        table.def.fields.iter().filter(|f| f.cascade_delete).filter_map(|f| f.slot).any(|slot| {
            let parent = row.get(slot).as_str().and_then(|s| SfId::parse(s).ok());
            parent.and_then(|p| self.find(&p)).is_some_and(|(t, r)| t.is_deleted(r))
        })
    }

    /// `DUPLICATE_VALUE` when a live record now holds one of the unique values of record `id`.
    fn check_unique_on_undelete(&self, id: &SfId) -> Result<(), RecordError> {
        let Some((table, row)) = self.find(id) else { return Ok(()) };
        let def = &table.def;
        let values: Vec<(usize, Value)> = def
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.unique)
            .filter_map(|(i, f)| f.slot.map(|slot| (i, row.get(slot).to_owned())))
            .collect();
        match super::validate::check_unique_values(self, def, &values, Some(row)).into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
