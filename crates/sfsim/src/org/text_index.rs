//! Lookups of records by a text field's value (external ids, unique fields): what upserts,
//! uniqueness checks and external-id references ask on every row they write.
//!
//! A field's index is built on its first lookup and then kept up to date by every write to the
//! table, so a lookup is a hash probe instead of a scan: an upsert of a million rows would
//! otherwise be quadratic. Keys are ASCII-lowercased (callers that compare case-sensitively
//! filter the candidates); every stored row is indexed, recycle-bin rows included, and callers
//! apply their own filters.

use std::collections::HashMap;

use parking_lot::Mutex;
use tidemark_core::SfId;

use crate::row::{Row, Slot};
use crate::value::ValueRef;

#[derive(Debug, Default)]
pub struct TextIndex {
    /// slot → lowercased value → ids holding it.
    by_slot: Mutex<HashMap<Slot, HashMap<String, Vec<SfId>>>>,
}

/// A copy of a table (a transaction's before-image) rebuilds its lookups when it needs them.
impl Clone for TextIndex {
    fn clone(&self) -> Self {
        TextIndex::default()
    }
}

fn key(row: &Row, slot: Slot) -> Option<String> {
    match row.get(slot) {
        ValueRef::Str(v) if !v.is_empty() => Some(v.to_ascii_lowercase()),
        _ => None,
    }
}

impl TextIndex {
    /// The ids whose `slot` holds `value` (case-insensitively), building the slot's index from
    /// `rows` (with their ids) on first use.
    pub fn candidates<'a>(
        &self,
        slot: Slot,
        value: &str,
        rows: impl FnOnce() -> Box<dyn Iterator<Item = (SfId, &'a Row)> + 'a>,
    ) -> Vec<SfId> {
        let mut by_slot = self.by_slot.lock();
        let index = by_slot.entry(slot).or_insert_with(|| {
            let mut index: HashMap<String, Vec<SfId>> = HashMap::new();
            for (id, row) in rows() {
                if let Some(k) = key(row, slot) {
                    index.entry(k).or_default().push(id);
                }
            }
            index
        });
        index.get(&value.to_ascii_lowercase()).cloned().unwrap_or_default()
    }

    /// A row of `id` is replaced (`old`: its previous version, if any) by `new` (if any).
    pub fn update(&mut self, id: SfId, old: Option<&Row>, new: Option<&Row>) {
        for (slot, index) in self.by_slot.get_mut().iter_mut() {
            let (before, after) = (old.and_then(|r| key(r, *slot)), new.and_then(|r| key(r, *slot)));
            if before == after {
                continue;
            }
            if let Some(k) = before
                && let Some(ids) = index.get_mut(&k)
            {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    index.remove(&k);
                }
            }
            if let Some(k) = after {
                index.entry(k).or_default().push(id);
            }
        }
    }

    /// Forgets every index (rows rewritten wholesale, or the slots changed).
    pub fn clear(&mut self) {
        self.by_slot.get_mut().clear();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tidemark_core::{ManualClock, SfId};

    use super::super::write::Input;
    use super::super::{Org, OrgClock};
    use crate::org::validate::find_by_text;

    fn codes(org: &Org, code: &str) -> Vec<SfId> {
        let table = org.table("Vendor__c").unwrap();
        find_by_text(table, table.def.field("Code__c").unwrap(), code)
    }

    /// The index follows creates, updates, deletes, undeletes and rollbacks once built.
    #[test]
    fn lookups_follow_every_write_after_the_first() {
        let mut org = Org::new(vec![crate::catalog::vendor()], OrgClock::Manual(ManualClock::new(ManualClock::default_start())));
        let (a, b, name) = (json!("A-1"), json!("b-2"), json!("V"));
        let first = org.api_create("Vendor__c", &[("Name", Input::Json(&name)), ("Code__c", Input::Json(&a))]).unwrap();
        assert_eq!(codes(&org, "a-1"), [first], "built on first use, case-insensitive");
        let second = org.api_create("Vendor__c", &[("Name", Input::Json(&name)), ("Code__c", Input::Json(&b))]).unwrap();
        assert_eq!(codes(&org, "B-2"), [second]);
        org.api_update(Some("Vendor__c"), first.as_str(), &[("Code__c", Input::Json(&json!("C-3")))]).unwrap();
        assert!(codes(&org, "A-1").is_empty(), "the old value no longer finds it");
        assert_eq!(codes(&org, "c-3"), [first]);
        org.api_delete(None, second.as_str()).unwrap();
        assert!(codes(&org, "B-2").is_empty(), "recycle-bin rows are not found");
        org.api_undelete(second.as_str()).unwrap();
        assert_eq!(codes(&org, "B-2"), [second]);
        let mut tx = org.begin_transaction();
        org.api_update_in(Some(&mut tx), Some("Vendor__c"), second.as_str(), &[("Code__c", Input::Json(&json!("D-4")))]).unwrap();
        assert_eq!(codes(&org, "D-4"), [second]);
        org.rollback(tx);
        assert_eq!((codes(&org, "D-4"), codes(&org, "B-2")), (vec![], vec![second]), "a rollback restores the lookups");
        // Duplicates are found in storage order (an upsert reports several matches).
        org.api_update(Some("Vendor__c"), first.as_str(), &[("Ref__c", Input::Json(&json!("R")))]).unwrap();
        org.api_update(Some("Vendor__c"), second.as_str(), &[("Ref__c", Input::Json(&json!("r")))]).unwrap();
        let table = org.table("Vendor__c").unwrap();
        assert_eq!(find_by_text(table, table.def.field("Ref__c").unwrap(), "R"), [first, second]);
    }
}
