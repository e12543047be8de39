//! All-or-none transactions over the org: a journal of the state every write in the transaction
//! replaced, so a failed sObject Collections request with `allOrNone: true` can put the org back
//! exactly as it was (rows, row order, delete logs, change log and the id counter).
//!
//! The journal records the *prior* version of each record the first time the transaction
//! touches it, and the delete log of each table the first time it is touched. Rolling back
//! restores those in reverse order, truncates the change log and resets the id counter.

use std::collections::HashSet;

use tidemark_core::SfId;

use super::Org;
use crate::row::Row;

/// The undo journal of one all-or-none request. Obtain with [`Org::begin_transaction`], pass to
/// the `*_in` write methods, then [`Org::rollback`] it or simply drop it to commit.
#[derive(Debug)]
pub struct Transaction {
    next_id: u64,
    change_log_len: usize,
    /// `(table index, id, version before the transaction)`, in first-touch order.
    priors: Vec<(usize, SfId, Option<Row>)>,
    seen: HashSet<SfId>,
    delete_logs: Vec<(usize, Vec<(SfId, i64)>)>,
}

impl Transaction {
    /// Number of records the transaction has touched so far.
    pub fn touched(&self) -> usize {
        self.priors.len()
    }
}

impl Org {
    /// Starts a transaction at the org's current state.
    pub fn begin_transaction(&self) -> Transaction {
        Transaction {
            next_id: self.next_id,
            change_log_len: self.change_log.len(),
            priors: Vec::new(),
            seen: HashSet::new(),
            delete_logs: Vec::new(),
        }
    }

    /// Records the current version of `id` (or its absence) before a write changes it.
    /// Call before every write; repeated calls for the same id are no-ops.
    pub(crate) fn journal_before_write(&self, tx: &mut Transaction, id: &SfId) {
        if tx.seen.contains(id) {
            return;
        }
        let Some(&t) = self.by_prefix.get(id.key_prefix()) else { return };
        tx.seen.insert(*id);
        tx.priors.push((t, *id, self.tables[t].get(id).cloned()));
        if !tx.delete_logs.iter().any(|(i, _)| *i == t) {
            tx.delete_logs.push((t, self.tables[t].delete_log.clone()));
        }
    }

    /// Records that `id` did not exist before the transaction (call right after inserting it).
    pub(crate) fn journal_created(&self, tx: &mut Transaction, id: &SfId) {
        if tx.seen.insert(*id)
            && let Some(&t) = self.by_prefix.get(id.key_prefix())
        {
            tx.priors.push((t, *id, None));
        }
    }

    /// Undoes every write made under `tx`.
    pub fn rollback(&mut self, tx: Transaction) {
        // Reverse first-touch order: records created in the transaction were appended last, so
        // removing them newest-first pops them off the end and keeps the other rows in place.
        for (t, id, prior) in tx.priors.into_iter().rev() {
            let table = &mut self.tables[t];
            match prior {
                Some(row) => table.put(id, row),
                None => {
                    table.remove(&id);
                }
            }
        }
        for (t, log) in tx.delete_logs {
            self.tables[t].delete_log = log;
        }
        self.change_log.truncate(tx.change_log_len);
        self.next_id = tx.next_id;
        tracing::debug!("transaction rolled back");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tidemark_core::{FieldType, ManualClock};

    use super::super::OrgClock;
    use super::super::write::Input;
    use super::*;
    use crate::schema::{FieldDef, ObjectDef};

    fn org() -> Org {
        let mut parent = ObjectDef::new("Parent__c", "Parent", "Parents", "a10");
        parent.add_system_fields();
        parent.add_field(FieldDef::new("Name", FieldType::String).name_field());
        let mut child = ObjectDef::new("Child__c", "Child", "Children", "a11");
        child.add_system_fields();
        child.add_field(FieldDef::new("Parent__c", FieldType::Reference).master_detail("Parent__c", 0));
        Org::new(vec![parent, child], OrgClock::Manual(ManualClock::new(ManualClock::default_start())))
    }

    type State = (usize, Vec<(Vec<Row>, Vec<(SfId, i64)>)>);

    fn state(org: &Org) -> State {
        (org.change_log().len(), org.tables().iter().map(|t| (t.rows().to_vec(), t.delete_log().to_vec())).collect())
    }

    #[test]
    fn rollback_restores_rows_logs_and_the_id_counter() {
        let mut org = org();
        let name = json!("P");
        let p = org.api_create("Parent__c", &[("Name", Input::Json(&name))]).unwrap();
        let pid = json!(p.as_str());
        let c = org.api_create("Child__c", &[("Parent__c", Input::Json(&pid))]).unwrap();
        let before = state(&org);

        let mut tx = org.begin_transaction();
        let renamed = json!("Q");
        let created = org.api_create_in(Some(&mut tx), "Parent__c", &[("Name", Input::Json(&renamed))]).unwrap();
        org.api_update_in(Some(&mut tx), Some("Parent__c"), p.as_str(), &[("Name", Input::Json(&renamed))]).unwrap();
        org.api_delete_in(Some(&mut tx), None, p.as_str()).unwrap();
        assert!(org.existing_live_id(None, c.as_str()).is_err(), "the child was cascaded");
        assert_eq!(tx.touched(), 3);
        org.rollback(tx);

        assert_eq!(state(&org), before);
        assert!(org.existing_live_id(None, c.as_str()).is_ok());
        let again = org.api_create("Parent__c", &[("Name", Input::Json(&renamed))]).unwrap();
        assert_eq!(again, created, "the id counter was rolled back");
    }
}
