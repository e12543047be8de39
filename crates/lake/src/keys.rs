//! Keys as comparable bytes: the Arrow row format of a key's columns, so that keys of
//! different sorted streams (a table read back, a query's result) compare byte-wise in one
//! order, the order `ORDER BY key ASC NULLS FIRST` gives.

use deltalake::arrow::array::{Array, ArrayRef, RecordBatch};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::Field;
use deltalake::arrow::row::{RowConverter, Rows, SortField};
use deltalake::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::Result;

/// A key's Arrow encoding, shared by every sorted stream of an operation so that keys of
/// different inputs compare byte-wise.
pub struct KeyCodec {
    converter: RowConverter,
    pub fields: Vec<Field>,
}

impl KeyCodec {
    pub fn new(fields: Vec<Field>) -> Result<KeyCodec> {
        let converter = RowConverter::new(fields.iter().map(|f| SortField::new(f.data_type().clone())).collect())?;
        Ok(KeyCodec { converter, fields })
    }

    /// The key rows of `batch` (its key columns found by name, cast as needed).
    pub fn encode(&self, batch: &RecordBatch) -> Result<Rows> {
        let columns: Vec<ArrayRef> = self
            .fields
            .iter()
            .map(|f| {
                let c = batch.column_by_name(f.name()).expect("key column present");
                if c.data_type() == f.data_type() { Ok(c.clone()) } else { cast(c, f.data_type()) }
            })
            .collect::<std::result::Result<_, _>>()?;
        Ok(self.converter.convert_columns(&columns)?)
    }

    /// A key's values for messages (business keys are identifiers, not record values).
    pub fn describe(&self, batch: &RecordBatch, row: usize) -> String {
        let options = FormatOptions::default().with_null("NULL");
        self.fields
            .iter()
            .map(|f| {
                let column = batch.column_by_name(f.name()).expect("key column present");
                ArrayFormatter::try_new(column.as_ref(), &options).map(|fmt| fmt.value(row).to_string()).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One sorted input of a key-ordered merge: its current batch, the batch's keys, and how far
/// the merge has read it. A merge decides keys while no input is [`KeyCursor::blocking`]: an
/// input whose batch ran out may hold a smaller key in its next batch.
pub struct KeyCursor {
    pub batch: RecordBatch,
    pub keys: Rows,
    /// The next row to read.
    pub at: usize,
    /// The input has no more batches.
    pub done: bool,
}

impl KeyCursor {
    /// A cursor over `batch`; over an empty batch of `schema`, marked done, when there is none.
    pub fn new(
        codec: &KeyCodec,
        batch: Option<RecordBatch>,
        schema: &deltalake::arrow::datatypes::SchemaRef,
    ) -> Result<KeyCursor> {
        let done = batch.is_none();
        let batch = batch.unwrap_or_else(|| RecordBatch::new_empty(schema.clone()));
        Ok(KeyCursor { keys: codec.encode(&batch)?, batch, at: 0, done })
    }

    pub fn exhausted(&self) -> bool {
        self.at >= self.keys.num_rows()
    }

    /// The merge must read this input's next batch before it can decide another key.
    pub fn blocking(&self) -> bool {
        self.exhausted() && !self.done
    }

    /// The key of the next row, if the batch has one.
    pub fn key(&self) -> Option<deltalake::arrow::row::Row<'_>> {
        (!self.exhausted()).then(|| self.keys.row(self.at))
    }

    /// The next row's position when its key is `key`, moving past it.
    pub fn take(&mut self, key: deltalake::arrow::row::Row<'_>) -> Option<usize> {
        (self.key() == Some(key)).then(|| {
            self.at += 1;
            self.at - 1
        })
    }
}

/// A set of key tuples, compared by their text forms (each column cast to text), which is how
/// an erasure carries keys read from one table (an object's history) into another whose key
/// columns have the same types (a dimension, a push snapshot). Its `Debug` never shows a key:
/// keys can be personal data.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: std::collections::HashSet<Vec<Option<String>>>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySet({} keys)", self.keys.len())
    }
}

impl KeySet {
    pub fn insert(&mut self, key: Vec<Option<String>>) {
        self.keys.insert(key);
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Vec<Option<String>>> {
        self.keys.iter()
    }

    pub fn contains(&self, key: &[Option<String>]) -> bool {
        self.keys.contains(key)
    }

    /// Adds the keys `columns` of `batch` hold (rows where every key column is NULL are no key).
    pub fn extend_from(&mut self, batch: &RecordBatch, columns: &[&str]) -> Result<()> {
        let texts = key_texts(batch, columns)?;
        for row in 0..batch.num_rows() {
            let key: Vec<Option<String>> = texts.iter().map(|c| c.is_valid(row).then(|| c.value(row).to_owned())).collect();
            if key.iter().any(Option::is_some) {
                self.keys.insert(key);
            }
        }
        Ok(())
    }

    /// Which rows of `batch` have their `columns` in the set.
    pub fn matches(&self, batch: &RecordBatch, columns: &[&str]) -> Result<deltalake::arrow::array::BooleanArray> {
        let texts = key_texts(batch, columns)?;
        let mut key = Vec::with_capacity(columns.len());
        Ok((0..batch.num_rows())
            .map(|row| {
                key.clear();
                key.extend(texts.iter().map(|c| c.is_valid(row).then(|| c.value(row).to_owned())));
                Some(!self.keys.is_empty() && self.keys.contains(&key))
            })
            .collect())
    }
}

fn key_texts(batch: &RecordBatch, columns: &[&str]) -> Result<Vec<deltalake::arrow::array::StringArray>> {
    use deltalake::arrow::array::AsArray;
    use deltalake::arrow::datatypes::DataType;
    columns
        .iter()
        .map(|name| {
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| crate::error::LakeError::Layout { table: "keys".into(), detail: format!("no column {name}") })?;
            let text = cast(column, &DataType::Utf8)?;
            debug_assert_eq!(text.len(), batch.num_rows());
            Ok(text.as_string::<i32>().clone())
        })
        .collect()
}
