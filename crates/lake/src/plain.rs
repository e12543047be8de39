//! Arrow data in the one representation Tidemark stores and compares: scans may decode strings
//! as views or large strings, while Delta stores plain ones and a hash or a key must not depend
//! on how a scan happened to decode a column.

use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::Result;

/// String and binary views and large variants as plain strings and binaries.
pub fn plain_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        t => t.clone(),
    }
}

/// `schema` with [`plain_type`]s, every field nullable.
pub fn plain_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema.fields().iter().map(|f| Field::new(f.name(), plain_type(f.data_type()), true)).collect::<Vec<_>>(),
    ))
}

/// `batch` with its columns (by position) cast to `schema`'s types where they differ.
pub fn cast_to(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| if c.data_type() == f.data_type() { Ok(c.clone()) } else { cast(c, f.data_type()) })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// `batch` in its [`plain_schema`].
pub fn to_plain(batch: &RecordBatch) -> Result<RecordBatch> {
    cast_to(batch, &plain_schema(&batch.schema()))
}
