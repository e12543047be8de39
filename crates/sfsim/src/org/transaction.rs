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
