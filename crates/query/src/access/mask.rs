//! The functions computing a masked or hashed column. They are planned into a guarded
//! relation directly and never registered by name, so no user can call them: a callable keyed
//! hash would let anyone test guesses against hashed values.

use std::sync::Arc;

use tidemark_core::access::ColumnRule;
use tidemark_core::governance::HashKey;
use tidemark_lake::arrow::datatypes::DataType;
use tidemark_lake::datafusion::common::{DataFusionError, Result, ScalarValue};
use tidemark_lake::datafusion::logical_expr::{ColumnarValue, Expr, ScalarUDF, Volatility, create_udf};

/// `expr` (a text column of type `data_type`) under `rule` (hash or mask).
pub(super) fn masked(expr: Expr, data_type: &DataType, rule: ColumnRule, key: Option<&Arc<HashKey>>) -> Result<Expr> {
    let transform: Arc<dyn Fn(&str) -> Option<String> + Send + Sync> = match rule {
        ColumnRule::Mask(pattern) => Arc::new(move |v: &str| Some(pattern.apply(v))),
        ColumnRule::Hash => {
            let key = key.cloned().ok_or_else(|| DataFusionError::Plan("the hash rule needs governance.hash_key".into()))?;
            Arc::new(move |v: &str| Some(key.hash(v)))
        }
        other => return Err(DataFusionError::Internal(format!("{} is not a mask", other.name()))),
    };
    let name = format!("tidemark_{}", rule.name().replace(':', "_"));
    let udf: ScalarUDF = create_udf(
        &name,
        vec![data_type.clone()],
        data_type.clone(),
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let [value] = args else { return Err(DataFusionError::Internal("a mask takes one argument".into())) };
            match value {
                ColumnarValue::Array(array) => {
                    Ok(ColumnarValue::Array(tidemark_lake::policy::map_text(array, |v| transform(v))?))
                }
                ColumnarValue::Scalar(scalar) => {
                    let array = scalar.to_array()?;
                    let out = tidemark_lake::policy::map_text(&array, |v| transform(v))?;
                    Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
                }
            }
        }),
    );
    Ok(udf.call(vec![expr]))
}
