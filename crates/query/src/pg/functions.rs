//! Postgres functions psql's meta-commands call that `datafusion-pg-catalog` does not register:
//! `pg_size_pretty` (`\dt+`, `\l+`), `pg_function_is_visible`, `pg_get_function_result` and
//! `pg_get_function_arguments` (`\df`), and the comment lookups (`obj_description`,
//! `col_description`, `shobj_description`) of every `+` listing; and `has_table_privilege`,
//! which answers from what the session's catalog lets its user see.
//!
//! The function lookups answer from `pg_catalog.pg_proc` and `pg_type`, which are static (a
//! Postgres release's built-in functions), read once when the endpoint starts.

use std::collections::HashMap;
use std::sync::Arc;

use tidemark_lake::arrow::array::{Array, AsArray, RecordBatch};
use tidemark_lake::arrow::compute::cast;
use tidemark_lake::arrow::datatypes::{DataType, Int64Type};
use tidemark_lake::datafusion::common::{DataFusionError, Result, ScalarValue, exec_err};
use tidemark_lake::datafusion::logical_expr::{ColumnarValue, ScalarUDF, Signature, SimpleScalarUDF, TypeSignature, Volatility};
use tidemark_lake::datafusion::prelude::SessionContext;

use crate::types::postgres_type_name;

/// Registers the functions on `ctx`, whose default catalog has `pg_catalog` already.
pub(super) async fn register(ctx: &SessionContext) -> Result<()> {
    let functions = Arc::new(Functions::load(ctx).await?);
    ctx.register_udf(size_pretty());
    let lookup = |name: &str, return_type: DataType, answer: fn(&Function) -> ScalarValue| {
        let functions = Arc::clone(&functions);
        by_oid(name, return_type, move |oid| functions.by_oid.get(&oid).map(answer))
    };
    ctx.register_udf(lookup("pg_function_is_visible", DataType::Boolean, |f| ScalarValue::Boolean(Some(f.visible))));
    ctx.register_udf(lookup("pg_get_function_result", DataType::Utf8, |f| ScalarValue::Utf8(f.result.clone())));
    ctx.register_udf(lookup("pg_get_function_arguments", DataType::Utf8, |f| ScalarValue::Utf8(Some(f.arguments.clone()))));
    // No object of the lake has a comment: Tidemark writes none, and `COMMENT ON` is refused
    // by the read-only endpoint. NULL is Postgres's answer for an object without one.
    for (name, arities) in [("obj_description", &[1, 2][..]), ("col_description", &[2]), ("shobj_description", &[2])] {
        let signature = Signature::one_of(arities.iter().map(|n| TypeSignature::Any(*n)).collect(), Volatility::Stable);
        let none = Arc::new(|_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None))));
        ctx.register_udf(ScalarUDF::from(SimpleScalarUDF::new_with_signature(name, signature, DataType::Utf8, none)));
    }
    Ok(())
}

/// `has_table_privilege([user,] table, privilege)`: true for a table the session can read
/// (granted, with users and roles) and for the catalog schemas' tables; false otherwise. The
/// privilege asked is not looked at: the endpoint only ever grants reading. An oid is always
/// true, since only tables the session can see have one in its `pg_class`.
pub(super) fn has_table_privilege(catalog: Arc<dyn tidemark_lake::datafusion::catalog::CatalogProvider>) -> ScalarUDF {
    let text = [DataType::Utf8, DataType::Utf8];
    let signature = Signature::one_of(
        vec![
            TypeSignature::Exact(text.to_vec()),
            TypeSignature::Exact([DataType::Utf8, DataType::Utf8, DataType::Utf8].to_vec()),
            TypeSignature::Exact(vec![DataType::Int32, DataType::Utf8]),
            TypeSignature::Exact(vec![DataType::Int64, DataType::Utf8]),
            TypeSignature::Exact(vec![DataType::Utf8, DataType::Int32, DataType::Utf8]),
            TypeSignature::Exact(vec![DataType::Utf8, DataType::Int64, DataType::Utf8]),
        ],
        Volatility::Stable,
    );
    let readable = move |name: &str| {
        let name = name.trim().to_lowercase().replace('"', "");
        let (schema, table) = name.rsplit_once('.').unwrap_or(("public", &name));
        let schema = schema.rsplit('.').next().unwrap_or(schema);
        if matches!(schema, "pg_catalog" | "information_schema") {
            return true;
        }
        catalog.schema(schema).is_some_and(|s| s.table_exist(table))
    };
    let answer = Arc::new(move |args: &[ColumnarValue]| {
        let table = &args[args.len() - 2];
        let rows = args.iter().find_map(|a| match a {
            ColumnarValue::Array(a) => Some(a.len()),
            ColumnarValue::Scalar(_) => None,
        });
        let array = table.to_array(rows.unwrap_or(1))?;
        let answers: tidemark_lake::arrow::array::BooleanArray = match array.data_type() {
            DataType::Utf8 => array.as_string::<i32>().iter().map(|n| n.map(&readable)).collect(),
            _ => (0..array.len()).map(|i| array.is_valid(i).then_some(true)).collect(),
        };
        Ok(match rows {
            Some(_) => ColumnarValue::Array(Arc::new(answers)),
            None => ColumnarValue::Scalar(ScalarValue::try_from_array(&answers, 0)?),
        })
    });
    ScalarUDF::from(SimpleScalarUDF::new_with_signature("has_table_privilege", signature, DataType::Boolean, answer))
}

/// What `\df` shows of one function.
#[derive(Debug, Clone, PartialEq)]
struct Function {
    /// Its schema is on the search path (`pg_catalog`, then the default schema).
    visible: bool,
    /// `pg_get_function_result`: `SETOF …`, `TABLE(…)`, a type; `None` for a procedure.
    result: Option<String>,
    /// `pg_get_function_arguments`: `name type, OUT name type, …`.
    arguments: String,
}

/// Every function of `pg_proc`, by oid.
#[derive(Debug, Default)]
struct Functions {
    by_oid: HashMap<i64, Function>,
}

impl Functions {
    async fn load(ctx: &SessionContext) -> Result<Functions> {
        let search_path = ["pg_catalog", ctx.state().config().options().catalog.default_schema.as_str()].map(str::to_owned);
        let types = rows(ctx, "SELECT oid, typname, typelem FROM pg_catalog.pg_type").await?;
        let types: HashMap<i64, (String, i64)> =
            types.iter().filter_map(|r| Some((int(r, 0)?, (text(r, 1)?, int(r, 2).unwrap_or(0))))).collect();
        // format_type's name, else an array's (`_aclitem` is `aclitem[]`), else the type's own.
        let type_name = |oid: i64| {
            let name = |oid: i64| u32::try_from(oid).ok().and_then(postgres_type_name);
            name(oid)
                .or_else(|| match types.get(&oid)? {
                    (array, element) if array.starts_with('_') && *element != 0 => {
                        Some(format!("{}[]", name(*element).unwrap_or_else(|| array[1..].to_owned())))
                    }
                    (own, _) => Some(own.clone()),
                })
                .unwrap_or_else(|| oid.to_string())
        };
        let procs = rows(
            ctx,
            "SELECT p.oid, n.nspname, p.prokind, p.prorettype, p.proretset, p.proargtypes, p.proallargtypes, \
             p.proargmodes, p.proargnames \
             FROM pg_catalog.pg_proc p LEFT JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace",
        )
        .await?;
        let mut by_oid = HashMap::new();
        for r in &procs {
            let Some(oid) = int(r, 0) else { continue };
            let visible = text(r, 1).is_some_and(|schema| search_path.contains(&schema));
            let modes = items(text(r, 7));
            let all_types = items(text(r, 6));
            // Without OUT arguments Postgres stores only the input types, space separated.
            let types: Vec<String> = if all_types.is_empty() {
                text(r, 5).unwrap_or_default().split_whitespace().map(str::to_owned).collect()
            } else {
                all_types
            };
            let names = items(text(r, 8));
            let args: Vec<Argument> = types
                .iter()
                .enumerate()
                .map(|(i, t)| Argument {
                    mode: modes.get(i).map_or("i", String::as_str).to_owned(),
                    name: names.get(i).cloned().unwrap_or_default(),
                    type_name: t.parse().map_or_else(|_| t.clone(), type_name),
                })
                .collect();
            let returns_set = bool_at(r, 4).unwrap_or(false);
            let table: Vec<String> = args.iter().filter(|a| a.mode == "t").map(Argument::named_type).collect();
            let result = match text(r, 2).as_deref() {
                Some("p") => None,
                _ if returns_set && !table.is_empty() => Some(format!("TABLE({})", table.join(", "))),
                _ => {
                    let returned = int(r, 3).map(type_name).unwrap_or_default();
                    Some(if returns_set { format!("SETOF {returned}") } else { returned })
                }
            };
            let arguments = args.iter().filter(|a| a.mode != "t").map(Argument::shown).collect::<Vec<_>>().join(", ");
            by_oid.insert(oid, Function { visible, result, arguments });
        }
        Ok(Functions { by_oid })
    }
}

/// One argument of a function, as `pg_proc` describes it.
struct Argument {
    /// `i`n, `o`ut, `b`oth, `v`ariadic or `t`able column.
    mode: String,
    name: String,
    type_name: String,
}

impl Argument {
    fn named_type(&self) -> String {
        if self.name.is_empty() { self.type_name.clone() } else { format!("{} {}", self.name, self.type_name) }
    }

    fn shown(&self) -> String {
        let mode = match self.mode.as_str() {
            "o" => "OUT ",
            "b" => "INOUT ",
            "v" => "VARIADIC ",
            _ => "",
        };
        format!("{mode}{}", self.named_type())
    }
}

async fn rows(ctx: &SessionContext, sql: &str) -> Result<Vec<Vec<ScalarValue>>> {
    let batches: Vec<RecordBatch> = ctx.sql(sql).await?.collect().await?;
    let mut rows = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            rows.push(batch.columns().iter().map(|c| ScalarValue::try_from_array(c, row)).collect::<Result<Vec<_>>>()?);
        }
    }
    Ok(rows)
}

fn int(row: &[ScalarValue], i: usize) -> Option<i64> {
    match row.get(i)?.cast_to(&DataType::Int64).ok()? {
        ScalarValue::Int64(v) => v,
        _ => None,
    }
}

fn text(row: &[ScalarValue], i: usize) -> Option<String> {
    match row.get(i)?.cast_to(&DataType::Utf8).ok()? {
        ScalarValue::Utf8(v) => v,
        _ => None,
    }
}

fn bool_at(row: &[ScalarValue], i: usize) -> Option<bool> {
    match row.get(i)? {
        ScalarValue::Boolean(v) => *v,
        other => text(std::slice::from_ref(other), 0).map(|t| t == "t" || t == "true"),
    }
}

/// The items of an array `pg_catalog`'s static tables store as text: `{a,b}`, `[1, 2]` or
/// `['a', 'b']`.
fn items(text: Option<String>) -> Vec<String> {
    let Some(text) = text else { return Vec::new() };
    let inner = text.trim().trim_start_matches(['[', '{']).trim_end_matches([']', '}']);
    inner.split(',').map(|item| item.trim().trim_matches(['\'', '"']).to_owned()).filter(|item| !item.is_empty()).collect()
}

/// A function of one oid (`int4` or `int8`) answered by `answer`; NULL for an unknown oid, as
/// Postgres answers.
fn by_oid(name: &str, return_type: DataType, answer: impl Fn(i64) -> Option<ScalarValue> + Send + Sync + 'static) -> ScalarUDF {
    let signature = Signature::one_of(
        vec![TypeSignature::Exact(vec![DataType::Int32]), TypeSignature::Exact(vec![DataType::Int64])],
        Volatility::Stable,
    );
    let null = ScalarValue::try_from(&return_type).unwrap_or(ScalarValue::Null);
    let fun = Arc::new(move |args: &[ColumnarValue]| {
        let [oids] = ColumnarValue::values_to_arrays(args)?.try_into().map_err(|_| one_argument())?;
        let oids = cast(&oids, &DataType::Int64)?;
        let values = oids.as_primitive::<Int64Type>().iter().map(|oid| oid.and_then(&answer).unwrap_or_else(|| null.clone()));
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(values)?))
    });
    ScalarUDF::from(SimpleScalarUDF::new_with_signature(name, signature, return_type, fun))
}

fn one_argument() -> DataFusionError {
    DataFusionError::Execution("expected one argument".into())
}

/// `pg_size_pretty(bigint)`, as Postgres 15 computes it: bytes below 10 kB, then the largest
/// unit that keeps the number below 20480, rounded half away from zero.
fn size_pretty() -> ScalarUDF {
    let signature = Signature::uniform(1, vec![DataType::Int64, DataType::Float64], Volatility::Immutable);
    let fun = Arc::new(|args: &[ColumnarValue]| {
        let [sizes] = ColumnarValue::values_to_arrays(args)?.try_into().map_err(|_| one_argument())?;
        // `pg_size_pretty(numeric)` truncates a fractional byte count the same way.
        let sizes = match sizes.data_type() {
            DataType::Int64 => sizes,
            DataType::Float64 => cast(&cast(&sizes, &DataType::Decimal128(38, 0))?, &DataType::Int64)?,
            other => return exec_err!("pg_size_pretty takes a number of bytes, not {other}"),
        };
        let shown = sizes.as_primitive::<Int64Type>().iter().map(|s| s.map(pretty_size)).collect::<Vec<_>>();
        Ok(ColumnarValue::Array(Arc::new(tidemark_lake::arrow::array::StringArray::from(shown))))
    });
    ScalarUDF::from(SimpleScalarUDF::new_with_signature("pg_size_pretty", signature, DataType::Utf8, fun))
}

fn pretty_size(bytes: i64) -> String {
    // (unit, limit, rounded, bits): Postgres's size_pretty_units.
    const UNITS: [(&str, i64, bool, u32); 6] = [
        ("bytes", 10 * 1024, false, 0),
        ("kB", 20 * 1024 - 1, true, 10),
        ("MB", 20 * 1024 - 1, true, 20),
        ("GB", 20 * 1024 - 1, true, 30),
        ("TB", 20 * 1024 - 1, true, 40),
        ("PB", 20 * 1024 - 1, true, 50),
    ];
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    let mut size = bytes;
    for (i, (name, limit, rounded, bits)) in UNITS.iter().enumerate() {
        match UNITS.get(i + 1) {
            Some((_, _, next_rounded, next_bits)) if size.unsigned_abs() >= limit.unsigned_abs() => {
                // One bit less when the next unit rounds (it keeps a bit for the rounding).
                let shift = next_bits - bits - u32::from(*next_rounded) + u32::from(*rounded);
                size /= 1_i64 << shift;
            }
            _ => return format!("{} {name}", if *rounded { half_rounded(size) } else { size }),
        }
    }
    unreachable!("the last unit always formats")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_as_postgres_prints_them() {
        for (bytes, shown) in [
            (0, "0 bytes"),
            (10239, "10239 bytes"),
            (10240, "10 kB"),
            (1_048_576, "1024 kB"),
            (20_971_520, "20 MB"),
            (-10240, "-10 kB"),
            (1_000_000_000_000, "931 GB"),
            (1 << 60, "1024 PB"),
            (i64::MAX, "8192 PB"),
        ] {
            assert_eq!(pretty_size(bytes), shown, "{bytes}");
        }
    }

    #[test]
    fn static_catalog_arrays_split_into_items() {
        assert_eq!(items(Some("['min', 'max']".into())), ["min", "max"]);
        assert_eq!(items(Some("[1034, 26]".into())), ["1034", "26"]);
        assert_eq!(items(Some("{i,o}".into())), ["i", "o"]);
        assert!(items(None).is_empty() && items(Some("[]".into())).is_empty());
    }

    #[tokio::test]
    async fn functions_are_described_from_pg_proc() {
        use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
        use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
        use tidemark_lake::arrow::util::display::array_value_to_string;
        let ctx = SessionContext::new();
        setup_pg_catalog(&ctx, "datafusion", EmptyContextProvider).unwrap();
        register(&ctx).await.unwrap();
        let lines = async |sql: &str| -> Vec<String> {
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            let mut lines = Vec::new();
            for b in &batches {
                for row in 0..b.num_rows() {
                    let cells: Vec<String> = b.columns().iter().map(|c| array_value_to_string(c, row).unwrap()).collect();
                    lines.push(cells.join("|"));
                }
            }
            lines
        };
        let described = lines(
            "SELECT proname, pg_function_is_visible(oid), pg_get_function_result(oid), pg_get_function_arguments(oid) \
             FROM pg_catalog.pg_proc WHERE proname IN ('random', 'aclexplode', 'generate_series')",
        )
        .await;
        for line in [
            "random|true|integer|min integer, max integer",
            "random|true|double precision|",
            "generate_series|true|SETOF integer|integer, integer",
            "aclexplode|true|SETOF record|acl aclitem[], OUT grantor oid, OUT grantee oid, OUT privilege_type text, OUT is_grantable boolean",
        ] {
            assert!(described.iter().any(|l| l == line), "{line} in {described:#?}");
        }
        let other =
            lines("SELECT pg_function_is_visible(-1) IS NULL, pg_size_pretty(10240), obj_description(1, 'pg_class') IS NULL")
                .await;
        assert_eq!(other, ["true|10 kB|true"]);
    }
}
