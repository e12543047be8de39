//! Content digests of versions: what tells a re-read of a stored version from a new version
//! that carries the same `(Id, SystemModstamp, IsDeleted)`.
//!
//! Salesforce stamps audit datetimes to the whole second, so a record saved twice within one
//! second, with a sync reading it in between, yields two versions with one key. The sync
//! compares the digest of a re-read version's values with the digest of the stored version of
//! that key: equal means a re-read (dropped), different means a new version (kept, ordered
//! after the stored one by `_ingested_at`).
//!
//! Digests are computed on both sides in the same process (from the stored columns and from
//! the freshly converted batch, both in the table's column types), so they are never stored
//! and the function may change between releases. Nulls add nothing: a column added to the
//! table, null in old versions and in a re-read alike, does not make a re-read look new.

use deltalake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType;
use twox_hash::XxHash3_64;

use crate::error::Result;

/// The digest of each row of `batch` over `columns` (matched by name, case-insensitively;
/// a column the batch lacks counts as all null). The order of `columns` does not matter.
pub fn content_digests(batch: &RecordBatch, columns: &[String]) -> Result<Vec<u64>> {
    let mut digests = vec![0u64; batch.num_rows()];
    let mut names: Vec<String> = columns.iter().map(|c| c.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    let schema = batch.schema();
    for name in &names {
        let Some(index) = schema.fields().iter().position(|f| f.name().eq_ignore_ascii_case(name)) else { continue };
        let salt = XxHash3_64::oneshot(name.as_bytes());
        fold_column(batch.column(index), salt, &mut digests)?;
    }
    Ok(digests)
}

fn fold_column(array: &ArrayRef, salt: u64, digests: &mut [u64]) -> Result<()> {
    let mut fold = |i: usize, bytes: &[u8]| {
        digests[i] = XxHash3_64::oneshot_with_seed(digests[i].rotate_left(17) ^ salt, bytes);
    };
    match array.data_type() {
        DataType::Utf8 => each_valid(array, |i| fold(i, array.as_string::<i32>().value(i).as_bytes())),
        DataType::LargeUtf8 => each_valid(array, |i| fold(i, array.as_string::<i64>().value(i).as_bytes())),
        DataType::Utf8View => each_valid(array, |i| fold(i, array.as_string_view().value(i).as_bytes())),
        DataType::Boolean => each_valid(array, |i| fold(i, &[u8::from(array.as_boolean().value(i))])),
        t if t.is_primitive() => {
            let width = t.primitive_width().expect("primitive types have a width");
            let data = array.to_data();
            let values = &data.buffers()[0].as_slice()[data.offset() * width..];
            each_valid(array, |i| fold(i, &values[i * width..(i + 1) * width]));
        }
        // Types history tables do not use today: their text form is exact enough to compare.
        _ => {
            let text = cast(array, &DataType::Utf8)?;
            each_valid(&text, |i| fold(i, text.as_string::<i32>().value(i).as_bytes()));
        }
    }
    Ok(())
}

fn each_valid(array: &ArrayRef, mut f: impl FnMut(usize)) {
    for i in 0..array.len() {
        if array.is_valid(i) {
            f(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use deltalake::arrow::array::{BooleanArray, Decimal128Array, Int64Array, StringArray, StringViewArray};
    use deltalake::arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<Field> = columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, a)| a).collect()).unwrap()
    }

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn equal_values_equal_digests_whatever_the_string_layout() {
        let a = batch(vec![
            ("Name", Arc::new(StringArray::from(vec![Some("Acme"), Some("Globex"), None]))),
            ("Amount", Arc::new(Decimal128Array::from(vec![Some(1050), None, Some(7)]).with_precision_and_scale(18, 2).unwrap())),
        ]);
        let b = batch(vec![
            ("amount", Arc::new(Decimal128Array::from(vec![Some(1050), None, Some(7)]).with_precision_and_scale(18, 2).unwrap())),
            ("name", Arc::new(StringViewArray::from(vec![Some("Acme"), Some("Globex"), None]))),
        ]);
        let names = cols(&["Name", "Amount"]);
        assert_eq!(content_digests(&a, &names).unwrap(), content_digests(&b, &names).unwrap());
    }

    #[test]
    fn any_changed_value_changes_the_digest() {
        let base = batch(vec![
            ("Name", Arc::new(StringArray::from(vec!["Acme", "Acme", "Acme", "Acme"]))),
            ("Employees", Arc::new(Int64Array::from(vec![Some(10), Some(11), Some(10), None]))),
            ("Active", Arc::new(BooleanArray::from(vec![true, true, false, true]))),
        ]);
        let d = content_digests(&base, &cols(&["Name", "Employees", "Active"])).unwrap();
        assert_ne!(d[0], d[1], "a number changed");
        assert_ne!(d[0], d[2], "a flag changed");
        assert_ne!(d[0], d[3], "a value became null");
        assert_ne!(d[1], d[2]);
    }

    #[test]
    fn a_value_moving_to_another_column_changes_the_digest() {
        let a = batch(vec![
            ("A", Arc::new(StringArray::from(vec![Some("x")]))),
            ("B", Arc::new(StringArray::from(vec![None::<&str>]))),
        ]);
        let b = batch(vec![
            ("A", Arc::new(StringArray::from(vec![None::<&str>]))),
            ("B", Arc::new(StringArray::from(vec![Some("x")]))),
        ]);
        let names = cols(&["A", "B"]);
        assert_ne!(content_digests(&a, &names).unwrap(), content_digests(&b, &names).unwrap());
    }

    #[test]
    fn absent_and_null_columns_add_nothing_and_unlisted_columns_are_ignored() {
        let a = batch(vec![("Name", Arc::new(StringArray::from(vec!["Acme"])))]);
        let b = batch(vec![
            ("Name", Arc::new(StringArray::from(vec!["Acme"]))),
            ("Tier__c", Arc::new(StringArray::from(vec![None::<&str>]))),
            ("Formula__c", Arc::new(StringArray::from(vec!["changes freely"]))),
        ]);
        let names = cols(&["Name", "Tier__c"]);
        assert_eq!(content_digests(&a, &names).unwrap(), content_digests(&b, &names).unwrap());
    }

    #[test]
    fn sliced_arrays_digest_their_own_rows() {
        let whole = batch(vec![("N", Arc::new(Int64Array::from(vec![1, 2, 3, 4])))]);
        let names = cols(&["N"]);
        let all = content_digests(&whole, &names).unwrap();
        assert_eq!(content_digests(&whole.slice(2, 2), &names).unwrap(), all[2..]);
    }
}
