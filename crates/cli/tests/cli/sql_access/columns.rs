//! Column grants: denied columns are absent from `SELECT *` in every form and fail as unknown
//! (never refused, never listed) when named; masked columns hold exactly root's values masked
//! here, in GROUP BY, DISTINCT and ORDER BY too; predicates and prepared statements see only the
//! masked values and the filtered rows.

use std::collections::{BTreeMap, BTreeSet};

use super::{ALICE, DENIED_ACCOUNT, DENIED_CONTACT, ROOT, email, fixture, initial, last4, lit, masked, null, redact};

#[test]
fn columns_are_denied_or_masked_in_every_form() {
    let fx = fixture();
    let server = &fx.server;
    let industry = lit(&fx.alice_industry);
    let at = &fx.before_delete;

    // SELECT * lacks the denied columns, in every form; nothing else changes.
    let forms = |object: &str| {
        [object.to_owned(), format!("{object}_history"), format!("{object}_scd2"), format!("as_of('{object}', TIMESTAMP '{at}')")]
    };
    for (object, denied) in [("account", &DENIED_ACCOUNT[..]), ("contact", &DENIED_CONTACT[..])] {
        for relation in forms(object) {
            let sql = format!("SELECT * FROM {relation} LIMIT 0");
            let all = server.columns(ROOT, &sql);
            for column in denied {
                assert!(all.iter().any(|c| c == column), "root's {relation} has {column}: {all:?}");
            }
            let want: Vec<String> = all.into_iter().filter(|c| !denied.contains(&c.as_str())).collect();
            assert_eq!(server.columns(ALICE, &sql), want, "alice's SELECT * FROM {relation}");
        }
    }

    // Naming a denied column fails as if it did not exist; valid-field lists leave it out.
    for sql in [
        "SELECT annualrevenue FROM account",
        "SELECT AnnualRevenue FROM account",
        "SELECT account.annualrevenue FROM account",
        "SELECT a.annualrevenue FROM account a",
        "SELECT id FROM account WHERE annualrevenue > 0",
        "SELECT id FROM account ORDER BY annualrevenue",
        "SELECT annualrevenue FROM account_history",
        "SELECT homephone FROM contact",
        "SELECT tax_id__c FROM contact_scd2",
    ] {
        let stderr = server.error(ALICE, sql);
        assert!(
            stderr.contains("No field named") || stderr.contains("Schema error") || stderr.contains("not found"),
            "{sql}: a schema error expected:\n{stderr}"
        );
        assert!(!stderr.contains("42501"), "{sql}: a denied column is absent, not refused:\n{stderr}");
    }
    for (relation, denied) in [("account", &DENIED_ACCOUNT[..]), ("contact", &DENIED_CONTACT[..])] {
        let stderr = server.error(ALICE, &format!("SELECT no_such_column FROM {relation}"));
        for column in denied {
            assert!(!stderr.to_lowercase().contains(column), "{relation}: the error lists the denied {column}:\n{stderr}");
        }
    }

    // Masks: exactly root's values, filtered and masked here.
    for relation in forms("account") {
        let want: Vec<String> = {
            let rows = server.rows(ROOT, &format!("SELECT id, phone FROM {relation} WHERE industry = {industry}"));
            let mut rows: Vec<String> = rows.iter().map(|r| format!("{}|{}", r[0], masked(&r[1], last4))).collect();
            rows.sort();
            rows
        };
        assert!(!want.is_empty(), "{relation}: rows to compare");
        assert_eq!(
            server.sorted(ALICE, &format!("SELECT id, phone FROM {relation}")),
            want,
            "alice's masked phones in {relation}"
        );
    }
    for relation in forms("contact") {
        let rows = server.rows(ROOT, &format!("SELECT id, email, firstname, title, mailingcity, lastname FROM {relation}"));
        let mut want: Vec<String> = rows
            .iter()
            .map(|r| {
                let masks = [masked(&r[1], email), masked(&r[2], initial), masked(&r[3], redact), masked(&r[4], null)];
                format!("{}|{}|{}", r[0], masks.join("|"), r[5])
            })
            .collect();
        want.sort();
        let sql = format!("SELECT id, email, firstname, title, mailingcity, lastname FROM {relation}");
        assert_eq!(server.sorted(ALICE, &sql), want, "alice's masked contact columns in {relation}");
    }
    // Masks in GROUP BY, DISTINCT and ORDER BY.
    let emails = server.rows(ROOT, "SELECT email FROM contact");
    let mut groups: BTreeMap<String, u64> = BTreeMap::new();
    for r in &emails {
        *groups.entry(masked(&r[0], email)).or_default() += 1;
    }
    let want: Vec<String> = groups.iter().map(|(e, n)| format!("{e}|{n}")).collect();
    assert_eq!(server.sorted(ALICE, "SELECT email, count(*) FROM contact GROUP BY email"), want, "GROUP BY a masked column");
    let distinct: BTreeSet<String> = groups.keys().cloned().collect();
    let got: BTreeSet<String> = server.sorted(ALICE, "SELECT DISTINCT email FROM contact").into_iter().collect();
    assert_eq!(got, distinct, "DISTINCT over a masked column");
    let phones = server.rows(ROOT, &format!("SELECT phone FROM account WHERE industry = {industry}"));
    let mut ordered: Vec<String> = phones.iter().map(|r| masked(&r[0], last4)).collect();
    ordered.sort();
    let got: Vec<String> =
        server.rows(ALICE, "SELECT phone FROM account ORDER BY phone").into_iter().map(|r| r.join("|")).collect();
    assert_eq!(got, ordered, "ORDER BY a masked column sorts the masked values");

    // Predicates see the masked value, never the real one.
    let visible = server
        .rows(ROOT, &format!("SELECT id, phone FROM account WHERE industry = {industry} AND phone IS NOT NULL ORDER BY id"));
    let [id, phone] = [&visible[0][0], &visible[0][1]];
    let sql = format!("SELECT count(*) FROM account WHERE phone = {}", lit(phone));
    assert_eq!(server.number(ALICE, &sql), 0, "{sql}: the real value matches nothing");
    let same_mask = visible.iter().filter(|r| last4(&r[1]) == last4(phone)).count() as u64;
    let sql = format!("SELECT count(*) FROM account WHERE phone = {}", lit(&last4(phone)));
    assert_eq!(server.number(ALICE, &sql), same_mask, "{sql}: the masked value matches");
    let sql = format!("SELECT count(*) FROM account WHERE phone LIKE {}", lit(&format!("{}%", &phone[..3])));
    let prefix = visible.iter().filter(|r| last4(&r[1]).starts_with(&phone[..3])).count() as u64;
    assert_eq!(server.number(ALICE, &sql), prefix, "{sql}: LIKE on the real prefix");

    // PREPARE / EXECUTE: a hidden id finds nothing; a visible one, the masked phone.
    let hidden = server.rows(ROOT, &format!("SELECT id FROM account WHERE industry <> {industry} ORDER BY id LIMIT 1"));
    let hidden = &hidden[0][0];
    let rows = server.rows_of(
        ALICE,
        &[
            "-c",
            "PREPARE q(text) AS SELECT phone FROM account WHERE id = $1",
            "-c",
            &format!("EXECUTE q({})", lit(hidden)),
            "-c",
            &format!("EXECUTE q({})", lit(id)),
        ],
        "PREPARE/EXECUTE",
    );
    assert_eq!(rows, [[last4(phone)]], "EXECUTE: nothing for the hidden id {hidden}, the masked phone for {id}");
    let rows = server.rows_of(
        ALICE,
        &[
            "-c",
            "PREPARE r(text) AS SELECT count(*) FROM account WHERE industry = $1",
            "-c",
            &format!("EXECUTE r({})", lit(&fx.bob_industry)),
        ],
        "PREPARE/EXECUTE on the filter's column",
    );
    assert_eq!(rows, [["0".to_owned()]], "alice sees no account of bob's industry through a prepared statement");
}
