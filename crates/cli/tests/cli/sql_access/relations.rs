//! Hidden relations: refused with 42501 wherever they are named (every form, casing, quoting,
//! qualification, CTEs, set operations, joins, subqueries, EXPLAIN, PREPARE, `as_of`, cursors);
//! Tidemark's own tables are refused or not found; names that exist nowhere are not found and no
//! suggestion reveals a hidden relation; raw files and writes are refused; and EXPLAIN shows the
//! guard but none of what it hides.

use super::{ALICE, BOB, GRANTED, ROOT, assert_denied, fixture};

#[test]
fn hidden_relations_are_refused_wherever_they_are_named() {
    let fx = fixture();
    let server = &fx.server;
    let at = &fx.before_delete;

    for (sql, relation) in [
        ("SELECT * FROM opportunity".to_owned(), "opportunity"),
        ("SELECT count(*) FROM opportunity_history".to_owned(), "opportunity_history"),
        ("SELECT count(*) FROM opportunity_scd2".to_owned(), "opportunity_scd2"),
        ("SELECT count(*) FROM invoice__c".to_owned(), "invoice__c"),
        ("SELECT count(*) FROM OPPORTUNITY".to_owned(), "opportunity"),
        ("SELECT count(*) FROM \"Opportunity_History\"".to_owned(), "opportunity_history"),
        ("SELECT count(*) FROM Public.Opportunity_Scd2".to_owned(), "opportunity_scd2"),
        ("SELECT count(*) FROM datafusion.public.opportunity".to_owned(), "opportunity"),
        ("SELECT count(*) FROM dim_contact".to_owned(), "dim_contact"),
        ("SELECT count(*) FROM dim_contact_current".to_owned(), "dim_contact_current"),
        ("WITH o AS (SELECT * FROM opportunity) SELECT count(*) FROM account".to_owned(), "opportunity"),
        ("SELECT id FROM account UNION SELECT id FROM opportunity".to_owned(), "opportunity"),
        ("SELECT count(*) FROM account a JOIN opportunity o ON o.accountid = a.id".to_owned(), "opportunity"),
        ("SELECT count(*) FROM account WHERE id IN (SELECT accountid FROM opportunity)".to_owned(), "opportunity"),
        (
            "SELECT count(*) FROM account a WHERE EXISTS (SELECT 1 FROM opportunity o WHERE o.accountid = a.id)".to_owned(),
            "opportunity",
        ),
        ("SELECT (SELECT count(*) FROM opportunity) AS n".to_owned(), "opportunity"),
        ("EXPLAIN SELECT * FROM opportunity".to_owned(), "opportunity"),
        ("PREPARE p AS SELECT count(*) FROM opportunity".to_owned(), "opportunity"),
    ] {
        let stderr = server.error(ALICE, &sql);
        assert_denied(&stderr, relation, &sql);
    }
    // as_of() of a hidden object: refused before it is opened.
    let sql = format!("SELECT count(*) FROM as_of('opportunity', TIMESTAMP '{at}')");
    let stderr = server.error(ALICE, &sql);
    assert!(
        stderr.contains("42501") && stderr.contains("permission denied for table") && stderr.contains("opportunity"),
        "{sql}: 42501 expected:\n{stderr}"
    );
    let stderr = server.error(ALICE, &format!("SELECT count(*) FROM as_of('OPPORTUNITY', TIMESTAMP '{at}')"));
    assert!(stderr.contains("42501"), "as_of('OPPORTUNITY'): 42501 expected:\n{stderr}");
    // A cursor over a hidden relation.
    let stderr = server.error_of(
        ALICE,
        &["-c", "BEGIN", "-c", "DECLARE c CURSOR FOR SELECT id FROM opportunity", "-c", "FETCH 1 FROM c", "-c", "COMMIT"],
        "DECLARE CURSOR over opportunity",
    );
    assert_denied(&stderr, "opportunity", "DECLARE CURSOR");
    // bob is an analyst too; root reads them.
    assert_denied(&server.error(BOB, "SELECT count(*) FROM opportunity"), "opportunity", "bob");
    assert!(server.number(ROOT, "SELECT count(*) FROM opportunity") > 0, "root reads opportunity");

    // Tidemark's own tables: refused when they exist (root reads them), "not found" otherwise.
    for table in ["query_log", "push_runs", "restore_runs"] {
        let sql = format!("SELECT count(*) FROM {table}");
        let stderr = server.error(ALICE, &sql);
        let root = server.psql(ROOT, &["-c", &sql]);
        if root.status.success() {
            assert_denied(&stderr, table, &sql);
        } else {
            // Absent for everyone: alice may be told "not found" or refused (the name is Tidemark's own,
            // so neither reveals anything), never more.
            let root = String::from_utf8_lossy(&root.stderr);
            assert!(root.contains("not found"), "{sql}: root's error is 'not found':\n{root}");
            let refused = stderr.contains("42501") && stderr.contains(&format!("permission denied for table {table}"));
            assert!(refused || stderr.contains("not found"), "{sql}: not found or refused:\n{stderr}");
            assert_no_hidden_name(&stderr, &[table], &sql);
        }
    }
    assert!(server.psql(ROOT, &["-c", "SELECT count(*) FROM query_log"]).status.success(), "query_log exists (the log scenario)");

    // Names that exist nowhere: not found, and no suggestion reveals a hidden relation.
    for (sql, typed) in [
        ("SELECT * FROM opportunityy", "opportunityy"),
        ("SELECT * FROM opportunit", "opportunit"),
        ("SELECT * FROM \"opportunity \"", "opportunity "),
        ("SELECT * FROM \u{43e}pportunity", "\u{43e}pportunity"),
        ("SELECT * FROM opportunity_scd", "opportunity_scd"),
        ("SELECT * FROM invoice", "invoice"),
    ] {
        let stderr = server.error(ALICE, sql);
        assert!(!stderr.contains("42501"), "{sql}: not a refusal:\n{stderr}");
        assert!(stderr.contains("not found"), "{sql}: not found expected:\n{stderr}");
        assert_no_hidden_name(&stderr, &[typed], sql);
    }
    // Suggestions still name granted relations.
    let stderr = server.error(ALICE, "SELECT * FROM acount");
    assert!(stderr.contains("did you mean 'account'"), "a granted relation is suggested:\n{stderr}");
    for (sql, typed) in [
        (format!("SELECT * FROM as_of('opportunityy', TIMESTAMP '{at}')"), &["opportunityy"][..]),
        (format!("SELECT * FROM as_of('nosuch.x', TIMESTAMP '{at}')"), &["nosuch.x", "nosuch", "x"][..]),
    ] {
        let stderr = server.error(ALICE, &sql);
        assert!(!stderr.contains("42501"), "{sql}: not a refusal:\n{stderr}");
        assert_no_hidden_name(&stderr, typed, &sql);
    }

    // The files themselves and writes.
    let path = fx.lake.join("objects/account");
    let sql = format!("SELECT * FROM '{}'", path.display());
    let stderr = server.error(ALICE, &sql);
    assert!(!stderr.to_lowercase().contains("annualrevenue"), "{sql}:\n{stderr}");
    for sql in [
        "CREATE TABLE t (a INT)",
        "CREATE VIEW v AS SELECT id FROM account",
        "COPY (SELECT 1) TO '/tmp/sql_access_copy.csv'",
        "INSERT INTO account (id) VALUES ('x')",
    ] {
        let stderr = server.error(ALICE, sql);
        assert!(stderr.contains("25006"), "{sql}: read-only (25006) expected:\n{stderr}");
    }
}

#[test]
fn explain_shows_the_guard_and_nothing_it_hides() {
    let fx = fixture();
    let server = &fx.server;
    let industry = fx.alice_industry.to_lowercase();
    // The row filter's column may show only where the query itself selects it (SELECT *).
    for (sql, selects_industry) in [
        ("EXPLAIN SELECT id, phone FROM account WHERE name <> 'x'", false),
        ("EXPLAIN VERBOSE SELECT id, phone FROM account WHERE name <> 'x'", false),
        ("EXPLAIN ANALYZE SELECT id, phone FROM account WHERE name <> 'x'", false),
        ("EXPLAIN SELECT * FROM account", true),
        ("EXPLAIN VERBOSE SELECT * FROM account_history", true),
        ("EXPLAIN ANALYZE SELECT count(*) FROM account_scd2", false),
        ("EXPLAIN VERBOSE SELECT * FROM contact", false),
        ("EXPLAIN ANALYZE SELECT c.id, a.phone FROM contact c JOIN account a ON c.accountid = a.id", false),
    ] {
        let plan = server.rows(ALICE, sql).into_iter().map(|r| r.join("|")).collect::<Vec<_>>().join("\n");
        assert!(plan.contains("TidemarkGuard"), "{sql}: the guard shows:\n{plan}");
        let lower = plan.to_lowercase();
        let mut hidden = vec!["annualrevenue", "homephone", "tax_id__c", "user_attr", "industry =", industry.as_str()];
        if !selects_industry {
            hidden.push("industry");
        }
        for hidden in hidden {
            assert!(!lower.contains(hidden), "{sql}: the plan shows '{hidden}':\n{plan}");
        }
    }
}

/// Asserts an error names no hidden relation (after removing what the query itself named).
/// Asserts an error names no hidden relation: every quoted name in it is what the query typed
/// (possibly qualified) or a granted relation, and no hidden name occurs outside of what was typed.
fn assert_no_hidden_name(stderr: &str, typed: &[&str], what: &str) {
    let quoted = stderr.split('\'').skip(1).step_by(2).filter(|q| q.len() < 64);
    for name in quoted {
        let known = typed.iter().any(|t| name == *t || name.ends_with(&format!(".{t}"))) || GRANTED.contains(&name);
        assert!(known, "{what}: the error names '{name}', neither typed nor granted:\n{stderr}");
    }
    for hidden in ["opportunity", "invoice__c", "lead", "dim_contact", "push_runs", "query_log"] {
        if typed.iter().any(|t| t.contains(hidden)) {
            continue;
        }
        assert!(!stderr.contains(hidden), "{what}: the error names the hidden relation {hidden}:\n{stderr}");
    }
}
