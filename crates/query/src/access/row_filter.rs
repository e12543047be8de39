//! Row filters: SQL predicates from the configuration, with the session user's attributes
//! filled in as literals.
//!
//! The text is parsed once per use into an AST, and `user_attr('k')`, `session_user` and
//! `current_user` are replaced by string literal nodes, never spliced into text, so an
//! attribute value cannot change the predicate's structure. An attribute the user lacks is
//! NULL, which no comparison matches: the filter fails closed. Subqueries are refused, since
//! they would read relations outside the user's grants.

use std::ops::ControlFlow;

use tidemark_core::ConfigError;
use tidemark_core::access::{Access, Principal, RowFilter};
use tidemark_lake::datafusion::common::tree_node::TreeNode;
use tidemark_lake::datafusion::common::{DFSchema, DataFusionError, Result};
use tidemark_lake::datafusion::execution::SessionState;
use tidemark_lake::datafusion::logical_expr::Expr;
use tidemark_lake::datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, ExprWithAlias, FunctionArg, FunctionArgExpr, FunctionArguments, Value, visit_expressions,
    visit_expressions_mut,
};
use tidemark_lake::datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use tidemark_lake::datafusion::sql::sqlparser::parser::Parser;

/// Parses `sql` and refuses what a row filter may not hold.
fn parse(sql: &str) -> std::result::Result<SqlExpr, String> {
    let expr = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| {
            let expr = p.parse_expr()?;
            p.expect_token(&tidemark_lake::datafusion::sql::sqlparser::tokenizer::Token::EOF)?;
            Ok(expr)
        })
        .map_err(|e| format!("not an SQL predicate: {e}"))?;
    let refused = visit_expressions(&expr, |e| match e {
        SqlExpr::Subquery(_) | SqlExpr::Exists { .. } | SqlExpr::InSubquery { .. } => ControlFlow::Break("a subquery"),
        SqlExpr::Function(f) if f.over.is_some() => ControlFlow::Break("a window function"),
        _ => ControlFlow::Continue(()),
    });
    match refused {
        ControlFlow::Break(what) => Err(format!("a row filter may not hold {what}: it may only read the row's own columns")),
        ControlFlow::Continue(()) => Ok(expr),
    }
}

/// Checks every role's row filters parse and hold nothing refused (at start, before clients
/// connect). Errors name the filter's dotted path.
pub fn check_row_filters(access: &Access) -> std::result::Result<(), ConfigError> {
    for principal in access.principals() {
        for filter in principal.role.all_row_filters() {
            parse(&filter.sql).map_err(|message| ConfigError::invalid(&filter.path, message))?;
        }
    }
    Ok(())
}

/// `filter` for `principal`, planned against `schema` (the relation's output). Errors name the
/// filter's path (an unknown column, an aggregate).
pub(super) fn plan(filter: &RowFilter, principal: &Principal, state: &SessionState, schema: &DFSchema) -> Result<Expr> {
    let failed = |message: String| DataFusionError::Plan(format!("{}: {message}", filter.path));
    let mut expr = parse(&filter.sql).map_err(failed)?;
    let _ = visit_expressions_mut(&mut expr, |e| {
        if let Some(value) = substitute(e, principal) {
            *e = SqlExpr::value(value);
        }
        ControlFlow::<()>::Continue(())
    });
    let planned = state
        .create_logical_expr_from_sql_expr(ExprWithAlias { expr, alias: None }, schema)
        .map_err(|e| failed(e.find_root().to_string()))?;
    let mut aggregate = false;
    planned
        .apply(|e| {
            aggregate |= matches!(e, Expr::AggregateFunction(_) | Expr::WindowFunction(_));
            Ok(tidemark_lake::datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .map_err(|e| failed(e.to_string()))?;
    if aggregate {
        return Err(failed("a row filter may not aggregate: it is evaluated on each row".into()));
    }
    Ok(planned)
}

/// The literal a session value stands for, if `e` is one.
fn substitute(e: &SqlExpr, principal: &Principal) -> Option<Value> {
    let text = |v: Option<&str>| Some(v.map_or(Value::Null, |v| Value::SingleQuotedString(v.to_owned())));
    match e {
        SqlExpr::Identifier(ident) if ident.quote_style.is_none() => {
            matches!(ident.value.to_ascii_lowercase().as_str(), "session_user" | "current_user")
                .then(|| Value::SingleQuotedString(principal.user.clone()))
        }
        SqlExpr::Function(f) => {
            let name = f.name.to_string().to_ascii_lowercase();
            match (name.as_str(), &f.args) {
                ("session_user" | "current_user", FunctionArguments::None) => text(Some(&principal.user)),
                ("user_attr", FunctionArguments::List(list)) => match list.args.as_slice() {
                    [FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Value(v)))] => match &v.value {
                        Value::SingleQuotedString(key) => text(principal.attribute(key)),
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_refuse_subqueries_windows_and_trailing_text() {
        assert!(parse("industry = user_attr('industry') OR ownerid = session_user").is_ok());
        assert!(parse("id IN (SELECT id FROM opportunity)").unwrap_err().contains("subquery"));
        assert!(parse("EXISTS (SELECT 1)").unwrap_err().contains("subquery"));
        assert!(parse("(SELECT count(*) FROM account) > 1").unwrap_err().contains("subquery"));
        assert!(parse("row_number() OVER () = 1").unwrap_err().contains("window"));
        assert!(parse("a = 1; DROP TABLE x").is_err());
    }
}
