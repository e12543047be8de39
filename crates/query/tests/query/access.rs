//! A user's session under grants, column rules and row filters ([`tidemark_query::access`]),
//! compared with the unrestricted session over the same lake: every answer is what the rules
//! allow, computed by hand from the unrestricted one.

use std::collections::BTreeMap;
use std::sync::Arc;

use tidemark_core::access::{Access, RoleConfig, UserConfig};
use tidemark_core::governance::MaskPattern;
use tidemark_lake::arrow::array::{Array, AsArray, RecordBatch};
use tidemark_lake::arrow::datatypes::Int64Type;
use tidemark_lake::arrow::util::pretty::pretty_format_batches;
use tidemark_lake::datafusion::logical_expr::{TableProviderFilterPushDown, col, lit};
use tidemark_lake::datafusion::prelude::SessionContext;
use tidemark_query::QuerySession;
use tidemark_query::ReadOptions;
use tidemark_query::access::{AccessDenied, GuardedTable, UserRules, user_context};

use crate::common::Harness;

const ROLES: &str = r#"
analyst:
  objects: [account]
  columns:
    account: {phone: "mask:last4", annualrevenue: deny, "*name*": "mask:initial"}
  rows:
    account: "industry = user_attr('industry') AND session_user = 'alice'"
"#;

fn access(industry: &str) -> Access {
    let env = |_: &str| None;
    let users: BTreeMap<String, UserConfig> = tidemark_core::config::load_str(
        &format!("alice: {{password: pw, role: analyst, attributes: {{industry: '{industry}'}}}}"),
        &env,
    )
    .expect("users parse");
    let roles: BTreeMap<String, RoleConfig> = tidemark_core::config::load_str(ROLES, &env).expect("roles parse");
    Access::compile(&users, &roles, None).expect("access compiles")
}

async fn batches(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")).collect().await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn count(ctx: &SessionContext, sql: &str) -> i64 {
    batches(ctx, sql).await[0].column(0).as_primitive::<Int64Type>().value(0)
}

/// Each row's columns as text, sorted, for comparing results.
async fn text_rows(ctx: &SessionContext, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    for batch in batches(ctx, sql).await {
        for row in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| {
                        let c = tidemark_lake::arrow::compute::cast(c, &tidemark_lake::arrow::datatypes::DataType::Utf8).unwrap();
                        let c = c.as_string::<i32>();
                        c.is_valid(row).then(|| c.value(row).to_owned())
                    })
                    .collect(),
            );
        }
    }
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_sees_exactly_what_the_role_allows_through_every_path() {
    let mut h = Harness::start(40, 31).await;
    h.sync().await;
    let session = QuerySession::open(h.lake.clone(), ReadOptions::default()).await.unwrap();
    let root = session.context();
    let industry =
        text_rows(&root, "SELECT industry FROM account WHERE industry IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
            .await
            .remove(0)
            .remove(0)
            .expect("an industry");
    let access = access(&industry);
    let alice = access.principal("alice").unwrap().clone();
    let ctx = user_context(&session, UserRules { principal: alice, hash_key: None }).unwrap();
    let quoted = industry.replace('\'', "''");

    // Relations: only the granted object's three forms are listed; others are refused by name.
    let listed = text_rows(&ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").await;
    let listed: Vec<String> = listed.into_iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(listed, ["account", "account_history", "account_scd2"], "{listed:?}");
    for sql in [
        "SELECT * FROM contact",
        "SELECT * FROM CONTACT_HISTORY",
        "SELECT * FROM datafusion.public.contact_scd2",
        "WITH unused AS (SELECT * FROM contact) SELECT 1",
        "SELECT id FROM account UNION SELECT id FROM contact",
        "SELECT 1 WHERE EXISTS (SELECT 1 FROM contact)",
        "SELECT * FROM as_of('contact', now())",
    ] {
        let error = ctx.sql(sql).await.expect_err(sql);
        let denied = AccessDenied::find(&error).unwrap_or_else(|| panic!("{sql}: {error}"));
        assert!(denied.relation.starts_with("contact"), "{sql}: {denied}");
    }
    // A name that is nowhere stays "not found", without suggesting hidden names.
    let error = ctx.sql("SELECT * FROM nosuch").await.expect_err("unknown").to_string();
    assert!(error.contains("nosuch") && !error.contains("contact"), "{error}");
    let error = ctx.sql("SELECT * FROM as_of('nosuch', now())").await.expect_err("unknown").to_string();
    assert!(error.contains("not found"), "{error}");

    // Rows: each form of the object is filtered on its own output.
    for (relation, of_root) in [
        ("account", format!("account WHERE industry = '{quoted}'")),
        ("account_history", format!("account_history WHERE industry = '{quoted}'")),
        ("account_scd2", format!("account_scd2 WHERE industry = '{quoted}'")),
        ("as_of('account', now())", format!("as_of('account', now()) WHERE industry = '{quoted}'")),
    ] {
        let seen = count(&ctx, &format!("SELECT count(*) FROM {relation}")).await;
        let allowed = count(&root, &format!("SELECT count(*) FROM {of_root}")).await;
        assert_eq!(seen, allowed, "{relation}");
        assert!(seen > 0, "{relation}: the filter lets the industry's records through");
    }
    assert!(count(&root, "SELECT count(*) FROM account").await > count(&ctx, "SELECT count(*) FROM account").await);

    // Columns: the denied one is absent everywhere, masks apply in every form.
    let columns = text_rows(&ctx, "SELECT column_name FROM information_schema.columns WHERE table_name = 'account'").await;
    assert!(!columns.iter().any(|c| c[0].as_deref() == Some("annualrevenue")), "{columns:?}");
    assert!(columns.iter().any(|c| c[0].as_deref() == Some("phone")));
    let star = batches(&ctx, "SELECT * FROM account LIMIT 1").await;
    assert!(star[0].schema().index_of("annualrevenue").is_err());
    for sql in [
        "SELECT annualrevenue FROM account",
        "SELECT a.annualrevenue FROM account a",
        "SELECT \"annualrevenue\" FROM account_history",
    ] {
        let error = ctx.sql(sql).await.expect_err(sql).to_string();
        assert!(error.contains("annualrevenue"), "{sql}: {error}");
    }
    let seen = text_rows(&ctx, "SELECT id, phone, name FROM account").await;
    let raw = text_rows(&root, &format!("SELECT id, phone, name FROM account WHERE industry = '{quoted}'")).await;
    let masked: Vec<Vec<Option<String>>> = raw
        .iter()
        .map(|r| {
            vec![
                r[0].clone(),
                r[1].as_deref().map(|p| MaskPattern::Last4.apply(p)),
                r[2].as_deref().map(|n| MaskPattern::Initial.apply(n)),
            ]
        })
        .collect();
    assert_eq!(seen, masked);
    // A predicate on a masked column compares masked values: the real phone finds nothing.
    let real = raw.iter().find_map(|r| r[1].clone()).expect("a phone");
    let probe = format!("SELECT count(*) FROM account WHERE phone = '{}'", real.replace('\'', "''"));
    assert_eq!(count(&ctx, &probe).await, 0);

    // Point lookups: a hidden record's Id finds nothing, a visible one itself.
    let hidden = text_rows(&root, &format!("SELECT id FROM account WHERE industry IS DISTINCT FROM '{quoted}' LIMIT 1")).await;
    let hidden = hidden[0][0].clone().unwrap();
    assert_eq!(count(&ctx, &format!("SELECT count(*) FROM account WHERE id = '{hidden}'")).await, 0);
    let visible = seen[0][0].clone().unwrap();
    assert_eq!(count(&ctx, &format!("SELECT count(*) FROM account WHERE id IN ('{visible}', '{hidden}')")).await, 1);

    // No oracle: a predicate that would fail on hidden rows never sees them.
    let oracle = format!("SELECT count(*) FROM account WHERE 1 / (CASE WHEN industry <> '{quoted}' THEN 0 ELSE 1 END) = 1");
    assert_eq!(count(&ctx, &oracle).await, count(&ctx, "SELECT count(*) FROM account").await);

    // The oracle's predicate runs above the guard, never inside it next to the row filter; only
    // equality on the key goes inside.
    let plan = pretty_format_batches(&batches(&ctx, &format!("EXPLAIN {oracle}")).await).unwrap().to_string();
    let physical = &plan[plan.find("physical_plan").expect("a physical plan")..];
    let (filter, guard) = (physical.find("FilterExec").expect("a filter"), physical.find("TidemarkGuard").expect("the guard"));
    assert!(filter < guard, "the user's predicate must run above the guard: {plan}");
    let provider = ctx.table_provider("account").await.unwrap();
    assert!(provider.downcast_ref::<GuardedTable>().is_some(), "a guarded relation");
    let key = col("id").eq(lit("001000000000001AAA"));
    let other = col("name").eq(lit("x"));
    assert_eq!(
        provider.supports_filters_pushdown(&[&key, &other]).unwrap(),
        [TableProviderFilterPushDown::Exact, TableProviderFilterPushDown::Unsupported]
    );

    // EXPLAIN shows the guard, not what it hides.
    for explain in ["EXPLAIN", "EXPLAIN VERBOSE", "EXPLAIN ANALYZE"] {
        let plan = pretty_format_batches(&batches(&ctx, &format!("{explain} SELECT * FROM account WHERE name LIKE 'A%'")).await)
            .unwrap()
            .to_string();
        assert!(plan.contains("TidemarkGuard: relation=account"), "{explain}: {plan}");
        for secret in ["annualrevenue", &industry, "user_attr", "alice", "last4"] {
            assert!(!plan.contains(secret), "{explain} shows {secret}: {plan}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_that_cannot_apply_fail_naming_the_rule() {
    let mut h = Harness::start(10, 32).await;
    h.sync().await;
    let session = QuerySession::open(h.lake.clone(), ReadOptions::default()).await.unwrap();
    let env = |_: &str| None;
    let users: BTreeMap<String, UserConfig> =
        tidemark_core::config::load_str("bob: {password: pw, role: r}", &env).expect("users parse");
    for (roles, words) in [
        (
            "r: {objects: [account], columns: {account: {annualrevenue: 'mask:last4'}}}",
            "sql.roles.r.columns.account.annualrevenue",
        ),
        ("r: {objects: [account], rows: {account: 'nosuch = 1'}}", "sql.roles.r.rows.account"),
        ("r: {objects: [account], rows: {account: 'count(*) > 1'}}", "sql.roles.r.rows.account"),
    ] {
        let roles: BTreeMap<String, RoleConfig> = tidemark_core::config::load_str(roles, &env).expect("roles parse");
        let access = Access::compile(&users, &roles, None).expect("compiles offline");
        let bob = access.principal("bob").unwrap().clone();
        let ctx = user_context(&session, UserRules { principal: bob, hash_key: None }).unwrap();
        let error = ctx.sql("SELECT * FROM account").await.expect_err(words).to_string();
        assert!(error.contains(words), "{error}");
    }
    // A glob mask skips what is not text, hiding it rather than failing.
    let roles: BTreeMap<String, RoleConfig> =
        tidemark_core::config::load_str("r: {objects: [account], columns: {account: {'*revenue': 'mask:last4'}}}", &env).unwrap();
    let access = Access::compile(&users, &roles, None).unwrap();
    let bob = access.principal("bob").unwrap().clone();
    let ctx = user_context(&session, UserRules { principal: Arc::clone(&bob), hash_key: None }).unwrap();
    let star = batches(&ctx, "SELECT * FROM account LIMIT 1").await;
    assert!(star[0].schema().index_of("annualrevenue").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_and_null_rules_give_the_ingestion_policies_values() {
    let mut h = Harness::start(10, 33).await;
    h.sync().await;
    let session = QuerySession::open(h.lake.clone(), ReadOptions::default()).await.unwrap();
    let env = |_: &str| None;
    let users: BTreeMap<String, UserConfig> = tidemark_core::config::load_str("carol: {password: pw, role: r}", &env).unwrap();
    let roles: BTreeMap<String, RoleConfig> =
        tidemark_core::config::load_str("r: {objects: [account], columns: {account: {name: hash, phone: null}}}", &env).unwrap();
    let key = Arc::new(tidemark_core::governance::HashKey::new("a key of sixteen+ chars".to_owned().into()));
    let access = Access::compile(&users, &roles, Some(key.clone())).unwrap();
    let carol = access.principal("carol").unwrap().clone();
    let ctx = user_context(&session, UserRules { principal: carol, hash_key: access.hash_key().cloned() }).unwrap();
    let seen = text_rows(&ctx, "SELECT id, name, phone FROM account").await;
    let raw = text_rows(&session.context(), "SELECT id, name FROM account").await;
    let expected: Vec<Vec<Option<String>>> =
        raw.iter().map(|r| vec![r[0].clone(), r[1].as_deref().map(|n| key.hash(n)), None]).collect();
    assert_eq!(seen, expected);
    // The hash is not a function anyone can call: guesses cannot be tested against it.
    let error = ctx.sql("SELECT tidemark_hash(name) FROM account").await.expect_err("not callable").to_string();
    assert!(error.contains("tidemark_hash"), "{error}");
}
