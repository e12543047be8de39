//! Records an erasure suppressed (`tidemark erase`, [`crate::suppression`]) are left out of
//! what a source writes, as the Salesforce sync leaves them out at extraction: an erased
//! record that still exists at the source (a Postgres row, a change file's event) does not come
//! back, until its suppression is lifted.

use std::collections::HashSet;

use deltalake::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use deltalake::arrow::compute::filter_record_batch;

use crate::error::Result;

/// A shaped batch without the rows whose `key` column holds a suppressed key, with the
/// unchanged cells and continuations of the rows kept renumbered; `None` when no row is
/// suppressed. A continuation from a suppressed record is dropped with it.
#[allow(clippy::type_complexity)]
pub(super) fn leave_out(
    batch: &RecordBatch,
    key: &str,
    suppressed: &HashSet<String>,
    unchanged: &[(String, Vec<u32>)],
    continues: &[(u32, u32)],
) -> Result<Option<(RecordBatch, Vec<(String, Vec<u32>)>, Vec<(u32, u32)>)>> {
    if suppressed.is_empty() {
        return Ok(None);
    }
    let Some(keys) = batch.column_by_name(key) else { return Ok(None) };
    let keys = keys.as_string::<i32>();
    let keep: BooleanArray = (0..keys.len()).map(|r| Some(!(keys.is_valid(r) && suppressed.contains(keys.value(r))))).collect();
    if keep.true_count() == batch.num_rows() {
        return Ok(None);
    }
    // Old row → new row, for the rows kept.
    let mut renumbered = vec![None; batch.num_rows()];
    let mut next = 0u32;
    for (row, slot) in renumbered.iter_mut().enumerate() {
        if keep.value(row) {
            *slot = Some(next);
            next += 1;
        }
    }
    let unchanged = unchanged
        .iter()
        .map(|(field, rows)| (field.clone(), rows.iter().filter_map(|&r| renumbered[r as usize]).collect()))
        .collect();
    let continues =
        continues.iter().filter_map(|&(row, earlier)| Some((renumbered[row as usize]?, renumbered[earlier as usize]?))).collect();
    Ok(Some((filter_record_batch(batch, &keep)?, unchanged, continues)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::array::StringArray;
    use std::sync::Arc;

    #[test]
    fn suppressed_rows_go_and_the_rest_are_renumbered() {
        let batch = RecordBatch::try_from_iter([(
            "_key",
            Arc::new(StringArray::from(vec![Some("a"), Some("x"), None, Some("b"), Some("x")])) as _,
        )])
        .unwrap();
        let suppressed: HashSet<String> = ["x".to_owned()].into();
        let unchanged = vec![("f".to_owned(), vec![0, 1, 3, 4])];
        let (kept, unchanged, continues) =
            leave_out(&batch, "_key", &suppressed, &unchanged, &[(3, 0), (4, 1), (3, 1)]).unwrap().unwrap();
        assert_eq!(kept.column(0).as_string::<i32>().iter().collect::<Vec<_>>(), vec![Some("a"), None, Some("b")]);
        assert_eq!(unchanged, vec![("f".to_owned(), vec![0, 2])]);
        assert_eq!(continues, vec![(2, 0)]);
        assert!(leave_out(&batch, "_key", &HashSet::new(), &[], &[]).unwrap().is_none());
        let other: HashSet<String> = ["zz".to_owned()].into();
        assert!(leave_out(&batch, "_key", &other, &[], &[]).unwrap().is_none());
    }
}
