//! A source's rows reduced to one row per key, as a stream in key order.
//!
//! The rows come out of a DataFusion query ordered by key, then newest ordering value first;
//! the query runs in a [`crate::bounded`] session, so a source larger than memory is sorted by
//! spilling. [`ReducedRows`] keeps each key's first row and checks, across batch boundaries,
//! that no different row of the key has the same ordering value (a tie).

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tidemark_lake::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use tidemark_lake::arrow::compute::filter_record_batch;
use tidemark_lake::arrow::datatypes::{Field, Schema, SchemaRef, TimestampMicrosecondType};
use tidemark_lake::arrow::row::{OwnedRow, RowConverter, SortField};

use super::{AT, DELETED, KeyCodec};
use crate::bounded::BoundedQuery;
use crate::error::{ModelError, Result};

/// What names a source in errors.
#[derive(Debug, Clone)]
pub struct SourceLabel {
    pub model: String,
    pub source: String,
    /// The column that orders a key's rows (for tie messages).
    pub order_by: String,
}

/// The first (newest) row of the key that ended the previous batch.
struct Carried {
    key: OwnedRow,
    at: i64,
    content: OwnedRow,
}

/// One row per key, in key order: keys, attributes, `__at`, `__deleted`.
pub struct ReducedRows {
    query: Option<BoundedQuery>,
    schema: SchemaRef,
    label: SourceLabel,
    key_len: usize,
    codec: KeyCodec,
    content: RowConverter,
    carried: Option<Carried>,
    /// The schema batches are cast to (the dimension's key and attribute types).
    target: Option<SchemaRef>,
    /// Where the input stream leaves the error that stopped it (a landed file's, kept whole).
    failure: Option<Arc<Mutex<Option<ModelError>>>>,
    rows_in: u64,
    finished: bool,
}

impl ReducedRows {
    /// The rows of `query`, which yields `schema` (the reduced shape) ordered by the first
    /// `key_len` columns ascending (nulls first), then `__at` descending.
    pub fn new(query: Option<BoundedQuery>, schema: SchemaRef, key_len: usize, label: SourceLabel) -> Result<ReducedRows> {
        let codec = KeyCodec::new(schema.fields()[..key_len].iter().map(|f| f.as_ref().clone()).collect())?;
        let content = RowConverter::new(
            schema.fields()[key_len..].iter().filter(|f| f.name() != AT).map(|f| SortField::new(f.data_type().clone())).collect(),
        )?;
        Ok(ReducedRows {
            query,
            schema,
            label,
            key_len,
            codec,
            content,
            carried: None,
            target: None,
            failure: None,
            rows_in: 0,
            finished: false,
        })
    }

    /// Rows without a query: a source with nothing new.
    pub fn empty(schema: SchemaRef, key_len: usize, label: SourceLabel) -> Result<ReducedRows> {
        ReducedRows::new(None, schema, key_len, label)
    }

    /// Reports errors the input left in `failure` as themselves rather than as query errors.
    pub fn with_failure(mut self, failure: Arc<Mutex<Option<ModelError>>>) -> ReducedRows {
        self.failure = Some(failure);
        self
    }

    /// The rows the source yielded so far, before reduction.
    pub fn rows_in(&self) -> u64 {
        self.rows_in
    }

    /// The reduced schema before [`ReducedRows::cast_to`].
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Casts every batch's key and attribute columns to `dimension`'s types.
    pub fn cast_to(&mut self, dimension: &Schema) -> std::result::Result<(), String> {
        let mut fields = Vec::new();
        for field in self.schema.fields() {
            let name = field.name();
            if name == AT || name == DELETED {
                fields.push(field.as_ref().clone());
                continue;
            }
            let want = dimension.field_with_name(name).map_err(|e| e.to_string())?;
            if !tidemark_lake::arrow::compute::can_cast_types(field.data_type(), want.data_type()) {
                return Err(format!("column {name} does not convert to the dimension's {}", want.data_type()));
            }
            fields.push(Field::new(name, want.data_type().clone(), true));
        }
        self.target = Some(Arc::new(Schema::new(fields)));
        Ok(())
    }

    /// The schema of the batches [`ReducedRows::next`] yields.
    pub fn output_schema(&self) -> SchemaRef {
        self.target.clone().unwrap_or_else(|| self.schema.clone())
    }

    /// The bytes the source's sort spilled to disk so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.query.as_ref().map_or(0, BoundedQuery::spilled_bytes)
    }

    /// The next non-empty batch of reduced rows.
    pub async fn next(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            let Some(query) = self.query.as_mut().filter(|_| !self.finished) else { return Ok(None) };
            let batch = match query.stream.next().await {
                None => {
                    // The query stays for its spill metrics.
                    self.finished = true;
                    return Ok(None);
                }
                Some(Ok(batch)) => batch,
                Some(Err(e)) => {
                    let kept = self.failure.as_ref().and_then(|f| f.lock().expect("not poisoned").take());
                    return Err(kept.unwrap_or(ModelError::Query(e)));
                }
            };
            self.rows_in += batch.num_rows() as u64;
            let batch = tidemark_lake::plain::to_plain(&batch)?;
            let batch = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())?;
            if let Some(field) =
                self.schema.fields()[..self.key_len].iter().zip(batch.columns()).find(|(_, c)| c.null_count() > 0)
            {
                return Err(ModelError::Invalid {
                    model: self.label.model.clone(),
                    message: format!("source {}: a record has no value in the key column {}", self.label.source, field.0.name()),
                });
            }
            let reduced = self.reduce(&batch)?;
            if reduced.num_rows() > 0 {
                return self.conform(reduced).map(Some);
            }
        }
    }

    fn conform(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let Some(target) = &self.target else { return Ok(batch) };
        tidemark_lake::plain::cast_to(&batch, target).map_err(|e| ModelError::Invalid {
            model: self.label.model.clone(),
            message: format!("source {}: a value does not convert to the dimension's type: {e}", self.label.source),
        })
    }

    /// Keeps each key's first row; a different row of the key with the same ordering value is
    /// a tie, a key smaller than the one before means the input was not sorted.
    fn reduce(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        let keys = self.codec.encode(batch)?;
        let content_columns: Vec<ArrayRef> = batch
            .schema()
            .fields()
            .iter()
            .enumerate()
            .skip(self.key_len)
            .filter(|(_, f)| f.name() != AT)
            .map(|(i, _)| batch.column(i).clone())
            .collect();
        let contents = self.content.convert_columns(&content_columns)?;
        let at = batch.column_by_name(AT).expect("reduced shape").as_primitive::<TimestampMicrosecondType>();
        let mut keep = Vec::with_capacity(batch.num_rows());
        // The row (in this batch) that started the current key; `None` while the key is the
        // one carried from the previous batch.
        let mut first: Option<usize> = None;
        for row in 0..batch.num_rows() {
            let key = keys.row(row);
            let (first_key, first_at, first_content) = match (first, &self.carried) {
                (Some(f), _) => (keys.row(f), at.value(f), contents.row(f)),
                (None, Some(c)) => (c.key.row(), c.at, c.content.row()),
                (None, None) => {
                    first = Some(row);
                    keep.push(true);
                    continue;
                }
            };
            if key == first_key {
                if at.value(row) == first_at && contents.row(row) != first_content {
                    return Err(ModelError::Tie {
                        model: self.label.model.clone(),
                        source_name: self.label.source.clone(),
                        key: self.codec.describe(batch, row),
                        order_by: self.label.order_by.clone(),
                    });
                }
                keep.push(false);
            } else if key < first_key {
                return Err(ModelError::Invalid {
                    model: self.label.model.clone(),
                    message: format!("source {}: its rows did not come in key order", self.label.source),
                });
            } else {
                first = Some(row);
                keep.push(true);
            }
        }
        if let Some(f) = first {
            self.carried = Some(Carried { key: keys.row(f).owned(), at: at.value(f), content: contents.row(f).owned() });
        }
        Ok(filter_record_batch(batch, &BooleanArray::from(keep))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::reduced_schema;
    use tidemark_lake::arrow::array::{StringArray, TimestampMicrosecondArray};
    use tidemark_lake::arrow::datatypes::DataType;

    fn schema() -> SchemaRef {
        reduced_schema(&[Field::new("k", DataType::Utf8, false)], &[Field::new("v", DataType::Utf8, true)])
    }

    fn batch(rows: &[(&str, i64, Option<&str>)]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
                Arc::new(StringArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
                Arc::new(TimestampMicrosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>()).with_timezone("UTC")),
                Arc::new(BooleanArray::from(vec![false; rows.len()])),
            ],
        )
        .unwrap()
    }

    fn reducer() -> ReducedRows {
        let label = SourceLabel { model: "m".into(), source: "s".into(), order_by: "ts".into() };
        ReducedRows::empty(schema(), 1, label).unwrap()
    }

    fn keys(b: &RecordBatch) -> Vec<(String, i64)> {
        let k = b.column(0).as_string::<i32>();
        let at = b.column(2).as_primitive::<TimestampMicrosecondType>();
        (0..b.num_rows()).map(|i| (k.value(i).to_owned(), at.value(i))).collect()
    }

    #[test]
    fn keeps_each_keys_newest_row_across_batches() {
        let mut r = reducer();
        let a = r.reduce(&batch(&[("a", 5, Some("x")), ("a", 3, Some("y")), ("b", 9, None)])).unwrap();
        // "b" continues into the next batch with an older row and a re-delivered copy.
        let b = r.reduce(&batch(&[("b", 9, None), ("b", 2, Some("z")), ("c", 1, Some(""))])).unwrap();
        assert_eq!(keys(&a), [("a".to_owned(), 5), ("b".to_owned(), 9)]);
        assert_eq!(keys(&b), [("c".to_owned(), 1)]);
    }

    #[test]
    fn a_tie_across_a_batch_boundary_names_the_key() {
        let mut r = reducer();
        r.reduce(&batch(&[("a", 5, Some("x"))])).unwrap();
        let err = r.reduce(&batch(&[("a", 5, None)])).unwrap_err().to_string();
        assert!(err.contains('a') && err.contains("ts"), "{err}");
        // NULL and the empty string are different rows.
        let mut r = reducer();
        assert!(r.reduce(&batch(&[("a", 5, Some("")), ("a", 5, None)])).is_err());
    }

    #[test]
    fn a_key_out_of_order_is_an_error() {
        let mut r = reducer();
        r.reduce(&batch(&[("b", 1, None)])).unwrap();
        assert!(r.reduce(&batch(&[("a", 1, None)])).unwrap_err().to_string().contains("key order"));
    }
}
