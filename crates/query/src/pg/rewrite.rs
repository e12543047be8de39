//! Postgres syntax that clients send and DataFusion cannot plan, rewritten into equivalent SQL
//! it can, before the statement is planned.
//!
//! `ARRAY(<subquery>)`, the array constructor psql's `\d+` and `\du` use, becomes an aggregate:
//!
//! - `ARRAY(SELECT e FROM … WHERE … ORDER BY …)` becomes
//!   `coalesce((SELECT array_agg(e ORDER BY …) FROM … WHERE …), make_array())`: the element
//!   order is the subquery's, and no row gives `{}` as in Postgres (`array_agg` alone gives
//!   NULL). A correlated subquery stays correlated; DataFusion decorrelates it into a join.
//! - `ARRAY(SELECT e FROM unnest(a) x [WHERE p])` maps the elements of an array of the outer
//!   row, which DataFusion cannot do with a subquery (it has no lateral table functions); it
//!   becomes `array_transform(array_filter(a, x -> p), x -> e)`.
//! - Any other subquery (`DISTINCT`, `GROUP BY`, `LIMIT`, set operations) is aggregated as a
//!   derived table, `(SELECT array_agg(v) FROM (<subquery>) AS t(v))`; DataFusion does not
//!   promise to keep a derived table's `ORDER BY` through the aggregate, so the elements of
//!   those forms come in no promised order.
//!
//! `pg_get_viewdef(<oid>[, <pretty>])` (psql's `\d+` of a view) becomes a lookup of the view's
//! definition in `information_schema.views` by the name `pg_class` gives the oid: the catalog's
//! oids exist only inside `pg_catalog`, so no function could map one to a view by itself.

use std::ops::ControlFlow;
use std::sync::LazyLock;

use tidemark_lake::datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArgumentList, FunctionArguments, GroupByExpr,
    Ident, LambdaFunction, LambdaFunctionParameter, LambdaSyntax, ObjectName, OneOrManyWithParens, OrderByExpr, OrderByKind,
    Query, Select, SelectItem, SetExpr, Statement, TableFactor, Value, visit_expressions_mut,
};
use tidemark_lake::datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use tidemark_lake::datafusion::sql::sqlparser::parser::Parser;

/// `statement` with every `ARRAY(<subquery>)` and `pg_get_viewdef(…)` rewritten, or `None`
/// when it has none.
pub fn rewrite(statement: &Statement) -> Option<Statement> {
    let mut rewritten = statement.clone();
    let mut changed = false;
    // Post-order: an ARRAY nested in another's subquery is rewritten first.
    let _ = visit_expressions_mut(&mut rewritten, |expr| {
        if let Some(replacement) = replacement(expr) {
            *expr = replacement;
            changed = true;
        }
        ControlFlow::<()>::Continue(())
    });
    changed.then_some(rewritten)
}

/// The replacement of `ARRAY(<subquery>)` or `pg_get_viewdef(<oid>)`, when `expr` is one.
fn replacement(expr: &Expr) -> Option<Expr> {
    let Expr::Function(Function { name, args, over: None, filter: None, .. }) = expr else {
        return None;
    };
    if let FunctionArguments::List(list) = args
        && let [FunctionArg::Unnamed(FunctionArgExpr::Expr(oid)), ..] = list.args.as_slice()
        && list.args.len() <= 2
        && is_named(name, "pg_get_viewdef", true)
    {
        return Some(view_definition(oid));
    }
    let FunctionArguments::Subquery(query) = args else { return None };
    if !is_named(name, "array", false) {
        return None;
    }
    let array = match element_map(query) {
        Some(mapped) => mapped,
        None => Expr::Subquery(Box::new(plain_aggregate(query).unwrap_or_else(|| derived_aggregate(query)))),
    };
    Some(call("coalesce", vec![array, call("make_array", vec![])]))
}

/// Whether `name` is `function`, unquoted, and qualified by `pg_catalog` if `qualified` allows.
fn is_named(name: &ObjectName, function: &str, qualified: bool) -> bool {
    let parts: Vec<&Ident> = name.0.iter().filter_map(|p| p.as_ident()).collect();
    let unquoted = |i: &Ident, value: &str| i.quote_style.is_none() && i.value.eq_ignore_ascii_case(value);
    match parts.as_slice() {
        [f] => unquoted(f, function),
        [schema, f] => qualified && unquoted(schema, "pg_catalog") && unquoted(f, function),
        _ => false,
    }
}

/// The placeholder [`view_definition`]'s template names the oid by.
const OID: &str = "__tm_oid";

/// `pg_get_viewdef(oid)`: the definition of the view `oid` names; NULL for any other relation.
fn view_definition(oid: &Expr) -> Expr {
    static TEMPLATE: LazyLock<Query> = LazyLock::new(|| {
        template(&format!(
            "SELECT v.definition FROM information_schema.views AS v \
             JOIN pg_catalog.pg_namespace AS n ON n.nspname = v.table_schema \
             JOIN pg_catalog.pg_class AS c ON c.relnamespace = n.oid AND c.relname = v.table_name \
             WHERE c.oid = {OID} AND c.relkind = 'v' AND v.table_catalog = current_database()"
        ))
    });
    let mut lookup = TEMPLATE.clone();
    let _ = visit_expressions_mut(&mut lookup, |e| {
        if matches!(e, Expr::Identifier(i) if i.value == OID) {
            *e = oid.clone();
        }
        ControlFlow::<()>::Continue(())
    });
    Expr::Subquery(Box::new(lookup))
}

fn template(sql: &str) -> Query {
    match Parser::new(&PostgreSqlDialect {}).try_with_sql(sql).and_then(|mut p| p.parse_query()) {
        Ok(query) => *query,
        Err(e) => unreachable!("the template is valid SQL: {e}"),
    }
}

/// The subquery's single `SELECT` when it is nothing more: no CTE, `DISTINCT`, grouping,
/// window, limit or set operation, one output column.
fn plain_select(query: &Query) -> Option<(&Select, &Expr, Option<&Ident>)> {
    if query.with.is_some() || query.limit_clause.is_some() || query.fetch.is_some() || !query.locks.is_empty() {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_ref() else { return None };
    let ungrouped =
        matches!(&select.group_by, GroupByExpr::Expressions(keys, modifiers) if keys.is_empty() && modifiers.is_empty());
    if !ungrouped
        || select.distinct.is_some()
        || select.having.is_some()
        || select.qualify.is_some()
        || select.top.is_some()
        || select.into.is_some()
        || !select.named_window.is_empty()
    {
        return None;
    }
    match select.projection.as_slice() {
        [SelectItem::UnnamedExpr(value)] => Some((select, value, None)),
        [SelectItem::ExprWithAlias { expr, alias }] => Some((select, expr, Some(alias))),
        _ => None,
    }
}

/// `SELECT array_agg(e ORDER BY …) FROM … WHERE …` for a plain subquery; its `ORDER BY`
/// may name the output column by position (`ORDER BY 1`) or alias.
fn plain_aggregate(query: &Query) -> Option<Query> {
    let (select, value, alias) = plain_select(query)?;
    let order: Vec<OrderByExpr> = match &query.order_by {
        None => Vec::new(),
        Some(order) => match &order.kind {
            OrderByKind::Expressions(keys) => keys.iter().map(|key| order_key(key, value, alias)).collect(),
            OrderByKind::All(_) => return None,
        },
    };
    let clauses = if order.is_empty() { Vec::new() } else { vec![FunctionArgumentClause::OrderBy(order)] };
    let aggregate = Expr::Function(Function { args: list(vec![value.clone()], clauses), ..function("array_agg") });
    let mut select = select.clone();
    select.projection = vec![SelectItem::UnnamedExpr(aggregate)];
    Some(Query { body: Box::new(SetExpr::Select(Box::new(select))), order_by: None, ..query.clone() })
}

/// An `ORDER BY` key of the subquery as a key of the aggregate's ordering.
fn order_key(key: &OrderByExpr, value: &Expr, alias: Option<&Ident>) -> OrderByExpr {
    let names_output = match &key.expr {
        Expr::Value(v) => matches!(&v.value, Value::Number(n, _) if n == "1"),
        Expr::Identifier(ident) => alias.is_some_and(|a| a.value == ident.value),
        _ => false,
    };
    if names_output { OrderByExpr { expr: value.clone(), ..key.clone() } } else { key.clone() }
}

/// `ARRAY(SELECT e FROM unnest(a) x [WHERE p])` as `array_transform(array_filter(a, x -> p), x -> e)`.
fn element_map(query: &Query) -> Option<Expr> {
    let (select, value, _) = plain_select(query)?;
    if query.order_by.is_some() {
        return None;
    }
    let [from] = select.from.as_slice() else { return None };
    if !from.joins.is_empty() {
        return None;
    }
    let (array, alias) = match &from.relation {
        TableFactor::UNNEST { alias, array_exprs, with_offset: false, with_ordinality: false, .. } => {
            match array_exprs.as_slice() {
                [array] => (array, alias.as_ref()?),
                _ => return None,
            }
        }
        TableFactor::Table { name, args: Some(args), alias: Some(alias), with_ordinality: false, .. }
            if name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| i.value.eq_ignore_ascii_case("unnest")) =>
        {
            match args.args.as_slice() {
                [FunctionArg::Unnamed(FunctionArgExpr::Expr(array))] => (array, alias),
                _ => return None,
            }
        }
        _ => return None,
    };
    // `unnest(a) x` names the element column `x`; `unnest(a) t(x)` names it `x` too.
    let element = match alias.columns.as_slice() {
        [] => alias.name.clone(),
        [column] => column.name.clone(),
        _ => return None,
    };
    let lambda = |body: &Expr| {
        Expr::Lambda(LambdaFunction {
            params: OneOrManyWithParens::One(LambdaFunctionParameter { name: element.clone(), data_type: None }),
            body: Box::new(body.clone()),
            syntax: LambdaSyntax::Arrow,
        })
    };
    let elements = match &select.selection {
        Some(predicate) => call("array_filter", vec![array.clone(), lambda(predicate)]),
        None => array.clone(),
    };
    Some(call("array_transform", vec![elements, lambda(value)]))
}

/// The name of the derived table and of its column in [`derived_aggregate`].
const DERIVED: &str = "__tm_array";
const ELEMENT: &str = "element";

/// `SELECT array_agg(t.element) FROM (<subquery>) AS t(element)`.
fn derived_aggregate(query: &Query) -> Query {
    static TEMPLATE: LazyLock<Query> =
        LazyLock::new(|| template(&format!("SELECT array_agg({DERIVED}.{ELEMENT}) FROM (SELECT NULL) AS {DERIVED}({ELEMENT})")));
    let mut aggregate = TEMPLATE.clone();
    if let SetExpr::Select(select) = aggregate.body.as_mut()
        && let Some(from) = select.from.first_mut()
        && let TableFactor::Derived { subquery, .. } = &mut from.relation
    {
        **subquery = query.clone();
    }
    aggregate
}

fn function(name: &str) -> Function {
    Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::None,
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    }
}

fn list(args: Vec<Expr>, clauses: Vec<FunctionArgumentClause>) -> FunctionArguments {
    let args = args.into_iter().map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e))).collect();
    FunctionArguments::List(FunctionArgumentList { duplicate_treatment: None, args, clauses })
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function { args: list(args, Vec::new()), ..function(name) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> Option<String> {
        let statement = Parser::new(&PostgreSqlDialect {}).try_with_sql(sql).and_then(|mut p| p.parse_statement()).unwrap();
        rewrite(&statement).map(|s| s.to_string())
    }

    #[test]
    fn a_plain_subquery_becomes_an_ordered_array_agg() {
        let got = rewritten(
            "SELECT r.rolname, ARRAY(SELECT b.rolname FROM m JOIN b ON (m.roleid = b.oid) WHERE m.member = r.oid \
             ORDER BY 1 DESC) AS memberof FROM r",
        );
        assert_eq!(
            got.as_deref(),
            Some(
                "SELECT r.rolname, coalesce((SELECT array_agg(b.rolname ORDER BY b.rolname DESC) FROM m JOIN b ON \
                 (m.roleid = b.oid) WHERE m.member = r.oid), make_array()) AS memberof FROM r"
            )
        );
        let by_alias = rewritten("SELECT ARRAY(SELECT upper(x) AS u FROM t ORDER BY u)").unwrap();
        assert!(by_alias.contains("array_agg(upper(x) ORDER BY upper(x))"), "{by_alias}");
    }

    #[test]
    fn unnest_of_an_outer_array_becomes_array_transform() {
        let got = rewritten(
            "SELECT array_to_string(c.reloptions || array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x), ', ') \
             FROM c LEFT JOIN c AS tc ON (c.reltoastrelid = tc.oid)",
        )
        .unwrap();
        assert!(got.contains("coalesce(array_transform(tc.reloptions, x -> 'toast.' || x), make_array())"), "{got}");
        let filtered = rewritten("SELECT ARRAY(SELECT y * 2 FROM unnest(t.a) AS u(y) WHERE y > 1) FROM t").unwrap();
        assert!(filtered.contains("array_transform(array_filter(t.a, y -> y > 1), y -> y * 2)"), "{filtered}");
    }

    #[test]
    fn other_subqueries_are_aggregated_as_a_derived_table() {
        let got = rewritten("SELECT ARRAY(SELECT DISTINCT x FROM t LIMIT 3)").unwrap();
        assert_eq!(
            got,
            "SELECT coalesce((SELECT array_agg(__tm_array.element) FROM (SELECT DISTINCT x FROM t LIMIT 3) AS \
             __tm_array (element)), make_array())"
        );
    }

    #[test]
    fn nested_constructors_are_rewritten_inside_out_and_the_rest_is_left_alone() {
        let got = rewritten("SELECT ARRAY(SELECT array_length(ARRAY(SELECT y FROM u WHERE u.k = t.k), 1) FROM t)").unwrap();
        assert!(!got.to_lowercase().contains("array(select"), "{got}");
        assert_eq!(rewritten("SELECT ARRAY[1, 2], array_length(ARRAY[1], 1), \"array\"(x) FROM t"), None);
        assert_eq!(rewritten("SELECT 1"), None);
    }

    #[test]
    fn view_definitions_are_looked_up_by_the_oid_pg_class_gives() {
        let got = rewritten("SELECT pg_catalog.pg_get_viewdef('16455'::pg_catalog.oid, true)").unwrap();
        assert!(got.starts_with("SELECT (SELECT v.definition FROM information_schema.views AS v"), "{got}");
        assert!(got.contains("WHERE c.oid = '16455'::pg_catalog.oid AND c.relkind = 'v'"), "{got}");
        assert_eq!(rewritten("SELECT other.pg_get_viewdef(1)"), None);
    }
}
