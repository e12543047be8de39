//! SQL names of column types, as Postgres prints them (`text`, `bigint`, `numeric(18,2)`,
//! `timestamp with time zone`), for listings such as the shell's `\d name`.
//!
//! The names come from the Postgres endpoint's own mapping, so `tidemark sql` and psql on
//! `serve-sql` name a column's type alike: `arrow-pg` picks the Postgres type a column is sent
//! as, and `datafusion-pg-catalog`'s `format_type` names it. Decimals are the exception: they
//! show their precision and scale, which the endpoint's `pg_attribute` does not carry, so
//! psql's `\d` shows `numeric` where this shows `numeric(18,2)`.

use std::sync::{Arc, LazyLock};

use datafusion_postgres::arrow_pg::datatypes::into_pg_type;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::format_type::create_format_type_udf;
use tidemark_lake::arrow::array::AsArray;
use tidemark_lake::arrow::datatypes::{DataType, Field};
use tidemark_lake::datafusion::common::ScalarValue;
use tidemark_lake::datafusion::config::ConfigOptions;
use tidemark_lake::datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};

/// The name Postgres would give a column of `data_type`. Types Postgres has no name for
/// (structs, maps) keep Arrow's.
pub fn sql_type_name(data_type: &DataType) -> String {
    match data_type {
        // Postgres prints the scale even when it is 0 (`numeric(18,0)`); format_type drops it.
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            format!("numeric({p},{s})")
        }
        _ => into_pg_type(data_type).ok().and_then(|pg| postgres_type_name(pg.oid())).unwrap_or_else(|| data_type.to_string()),
    }
}

/// `format_type(oid, NULL)` of `datafusion-pg-catalog`, run directly: the SQL name of a
/// Postgres type; `None` for a type it has no name for.
pub(crate) fn postgres_type_name(oid: u32) -> Option<String> {
    static FORMAT_TYPE: LazyLock<ScalarUDF> = LazyLock::new(create_format_type_udf);
    let int = |name: &str| Arc::new(Field::new(name, DataType::Int32, true));
    let args = ScalarFunctionArgs {
        args: vec![
            ColumnarValue::Scalar(ScalarValue::Int32(i32::try_from(oid).ok())),
            ColumnarValue::Scalar(ScalarValue::Int32(None)),
        ],
        arg_fields: vec![int("type_oid"), int("typemod")],
        number_rows: 1,
        return_field: Arc::new(Field::new("format_type", DataType::Utf8, true)),
        config_options: Arc::new(ConfigOptions::default()),
    };
    let names = FORMAT_TYPE.invoke_with_args(args).ok()?.into_array(1).ok()?;
    let name = names.as_string_opt::<i32>()?.iter().next().flatten()?;
    // format_type's answer for an oid it has no name for.
    (!name.starts_with("oid(")).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use tidemark_lake::arrow::datatypes::TimeUnit;

    use super::*;

    #[test]
    fn lake_column_types_have_postgres_names() {
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        let cases = [
            (DataType::Utf8View, "text"),
            (DataType::Utf8, "text"),
            (utc, "timestamp with time zone"),
            (DataType::Timestamp(TimeUnit::Microsecond, None), "timestamp without time zone"),
            (DataType::Int64, "bigint"),
            (DataType::Int32, "integer"),
            (DataType::Float64, "double precision"),
            (DataType::Decimal128(18, 2), "numeric(18,2)"),
            (DataType::Decimal128(18, 0), "numeric(18,0)"),
            (DataType::Boolean, "boolean"),
            (DataType::Date32, "date"),
            (DataType::Binary, "bytea"),
            (list, "text[]"),
        ];
        for (data_type, name) in cases {
            assert_eq!(sql_type_name(&data_type), name, "{data_type}");
        }
        let record = DataType::Struct(vec![Field::new("a", DataType::Int64, true)].into());
        assert_eq!(sql_type_name(&record), record.to_string(), "no Postgres name: Arrow's");
    }
}
