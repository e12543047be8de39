//! Row filters: alice's and bob's counts and rows of account, in every form (the live view,
//! `_history`, `_scd2`, `as_of`), are root's with their industry's predicate, whatever casing,
//! quoting or qualification names the relation, after a CTE or a changed default schema, and
//! across a join; contact is not filtered; and no error surfaces from the rows the filter hides.

use std::collections::BTreeMap;

use super::{ALICE, BOB, ROOT, fixture, lit};

#[test]
fn row_filters_apply_to_every_form_of_the_object() {
    let fx = fixture();
    let server = &fx.server;
    let at = &fx.before_delete;
    let forms = [
        "account".to_owned(),
        "account_history".to_owned(),
        "account_scd2".to_owned(),
        format!("as_of('account', TIMESTAMP '{at}')"),
    ];
    for relation in &forms {
        let total = server.number(ROOT, &format!("SELECT count(*) FROM {relation}"));
        let mut seen = BTreeMap::new();
        for who in [ALICE, BOB] {
            let industry = fx.industry(who);
            let want = server.number(ROOT, &format!("SELECT count(*) FROM {relation} WHERE industry = {}", lit(industry)));
            let got = server.number(who, &format!("SELECT count(*) FROM {relation}"));
            assert_eq!(got, want, "{}: count(*) FROM {relation} = root's with industry = '{industry}'", who.user);
            let industries = server.sorted(who, &format!("SELECT DISTINCT industry FROM {relation}"));
            assert!(industries.iter().all(|i| i == industry), "{}: {relation} holds only {industry}: {industries:?}", who.user);
            seen.insert(who.user, got);
        }
        assert!(seen["alice"] > 0 && seen["alice"] < total, "{relation}: alice's filter keeps some rows of {total}: {seen:?}");
    }
    // The same rows, not only the same counts.
    let want = server.sorted(ROOT, &format!("SELECT id FROM account WHERE industry = {}", lit(&fx.alice_industry)));
    assert_eq!(server.sorted(ALICE, "SELECT id FROM account"), want, "alice's account ids");
    // contact has no row filter.
    for relation in ["contact", "contact_history", "contact_scd2"] {
        let sql = format!("SELECT count(*) FROM {relation}");
        assert_eq!(server.number(ALICE, &sql), server.number(ROOT, &sql), "{relation} is not filtered");
    }

    // Casing, quoting and qualification land on the same guarded relations.
    let alice = |sql: &str| server.number(ALICE, sql);
    let root_where = |relation: &str| {
        server.number(ROOT, &format!("SELECT count(*) FROM {relation} WHERE industry = {}", lit(&fx.alice_industry)))
    };
    assert_eq!(alice("SELECT count(*) FROM ACCOUNT"), root_where("account"), "ACCOUNT");
    assert_eq!(alice("SELECT count(*) FROM \"account\""), root_where("account"), "\"account\"");
    assert_eq!(alice("SELECT count(*) FROM \"ACCOUNT_HISTORY\""), root_where("account_history"), "\"ACCOUNT_HISTORY\"");
    assert_eq!(alice("SELECT count(*) FROM Public.Account_Scd2"), root_where("account_scd2"), "Public.Account_Scd2");
    assert_eq!(alice("SELECT count(*) FROM datafusion.public.account"), root_where("account"), "datafusion.public.account");
    let as_of = format!("as_of('account', TIMESTAMP '{at}')");
    assert_eq!(
        alice(&format!("SELECT count(*) FROM as_of('ACCOUNT', TIMESTAMP '{at}')")),
        root_where(&as_of),
        "as_of('ACCOUNT')"
    );
    let contact = server.number(ROOT, "SELECT count(*) FROM contact");
    assert_eq!(alice("SELECT count(*) FROM datafusion.public.contact"), contact, "datafusion.public.contact");
    // A CTE named like a hidden relation is the user's own data.
    assert_eq!(alice("WITH opportunity AS (SELECT id FROM account) SELECT count(*) FROM opportunity"), root_where("account"));
    // Unqualified names after changing the default schema are still guarded.
    let rows = server.rows_of(
        ALICE,
        &["-c", "SET datafusion.catalog.default_schema = 'public'", "-c", "SELECT count(*) FROM account"],
        "SET default_schema, then account",
    );
    assert_eq!(rows, [[root_where("account").to_string()]], "account after SET datafusion.catalog.default_schema");

    // Leak probes: no error from rows the filter hides (the user's predicate runs above it).
    let probe =
        format!("SELECT count(*) FROM account WHERE 1/(CASE WHEN industry <> {} THEN 0 ELSE 1 END) = 1", lit(&fx.alice_industry));
    assert_eq!(alice(&probe), root_where("account"), "division by zero on hidden rows must not surface");
    // A join with an unfiltered relation sees only the filtered accounts.
    let join = "SELECT count(*) FROM contact c JOIN account a ON c.accountid = a.id";
    let want = server.number(
        ROOT,
        &format!(
            "SELECT count(*) FROM contact c JOIN account a ON c.accountid = a.id WHERE a.industry = {}",
            lit(&fx.alice_industry)
        ),
    );
    assert_eq!(alice(join), want, "{join}");
}
