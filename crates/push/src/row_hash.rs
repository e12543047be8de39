//! Whether a row changed: a 128-bit hash of the values a flow sends, two XXH3-64 hashes of the
//! row under two seeds.
//!
//! XXH3 rather than a cryptographic hash: it runs once per result row on the diff's one thread,
//! where BLAKE3 cost a tenth of a million-row diff, and change detection needs no resistance to
//! crafted collisions (whoever could craft the data could change it). A snapshot holding hashes
//! of another function makes its next run send every row once, nothing missed.
//!
//! The input is the Arrow row format of the values ([`RowConverter`]): typed, injective (NULL
//! and `''` differ, `('ANNA','BELLE')` and `('ANNABELLE',NULL)` differ) and fast to build for a
//! whole batch. Strings are hashed in one representation (views and large strings as plain
//! strings), so how a scan happened to decode a column does not change a hash. The format
//! belongs to Arrow: a release that changed it would make one run send every row again, never
//! miss a change.

use tidemark_lake::arrow::array::{ArrayRef, BinaryArray};
use tidemark_lake::arrow::compute::cast;
use tidemark_lake::arrow::datatypes::DataType;
use tidemark_lake::arrow::row::{RowConverter, SortField};

use twox_hash::XxHash3_64;

use crate::error::Result;

/// Bytes of a row hash.
pub const HASH_BYTES: usize = 16;

/// The seeds of the hash's two halves.
const SEEDS: [u64; 2] = [0x7469_6465_6d61_726b, 0x7075_7368_2d72_6f77];

/// The Arrow type of a row hash column (Delta has no fixed-size binary).
pub fn hash_type() -> DataType {
    DataType::Binary
}

/// Hashes rows of columns of fixed types.
pub struct RowHasher {
    converter: RowConverter,
    types: Vec<DataType>,
}

impl RowHasher {
    /// A hasher for columns of `types` (in order).
    pub fn new(types: &[DataType]) -> Result<RowHasher> {
        let types: Vec<DataType> = types.iter().map(tidemark_lake::plain::plain_type).collect();
        let converter = RowConverter::new(types.iter().map(|t| SortField::new(t.clone())).collect())?;
        Ok(RowHasher { converter, types })
    }

    /// One hash per row of `columns`.
    pub fn hash(&self, columns: &[ArrayRef]) -> Result<BinaryArray> {
        let columns: Vec<ArrayRef> = columns
            .iter()
            .zip(&self.types)
            .map(|(c, t)| if c.data_type() == t { Ok(c.clone()) } else { cast(c, t) })
            .collect::<std::result::Result<_, _>>()?;
        let rows = self.converter.convert_columns(&columns)?;
        let mut out = tidemark_lake::arrow::array::BinaryBuilder::with_capacity(rows.num_rows(), rows.num_rows() * HASH_BYTES);
        for row in rows.iter() {
            let bytes = row.as_ref();
            let mut hash = [0u8; HASH_BYTES];
            hash[..8].copy_from_slice(&XxHash3_64::oneshot_with_seed(SEEDS[0], bytes).to_le_bytes());
            hash[8..].copy_from_slice(&XxHash3_64::oneshot_with_seed(SEEDS[1], bytes).to_le_bytes());
            out.append_value(hash);
        }
        Ok(out.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tidemark_lake::arrow::array::{Int64Array, StringArray, StringViewArray};

    fn hashes(columns: Vec<ArrayRef>) -> Vec<Vec<u8>> {
        let types: Vec<DataType> = columns.iter().map(|c| c.data_type().clone()).collect();
        let h = RowHasher::new(&types).unwrap().hash(&columns).unwrap();
        h.iter().map(|v| v.unwrap().to_vec()).collect()
    }

    #[test]
    fn tuples_that_concatenate_alike_and_null_versus_empty_differ() {
        let a: ArrayRef = Arc::new(StringArray::from(vec![Some("ANNA"), Some("ANNABELLE"), Some(""), None, Some("ANNA")]));
        let b: ArrayRef = Arc::new(StringArray::from(vec![Some("BELLE"), None, None, Some(""), Some("BELLE")]));
        let h = hashes(vec![a, b]);
        assert_eq!(h[0], h[4], "equal rows hash alike");
        for (i, j) in [(0, 1), (2, 3), (1, 2), (0, 2)] {
            assert_ne!(h[i], h[j], "rows {i} and {j}");
        }
    }

    #[test]
    fn a_string_view_hashes_as_the_string() {
        let plain = hashes(vec![Arc::new(StringArray::from(vec!["x", "y"])), Arc::new(Int64Array::from(vec![1, 2]))]);
        let view = hashes(vec![Arc::new(StringViewArray::from(vec!["x", "y"])), Arc::new(Int64Array::from(vec![1, 2]))]);
        assert_eq!(plain, view);
    }
}
