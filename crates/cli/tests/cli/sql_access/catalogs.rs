//! Catalogs: psql's meta-commands (`\dt`, `\dv`, `\d`, `\dn`, `\du`), information_schema,
//! pg_catalog and SHOW TABLES list only the granted relations and their allowed columns, and
//! `has_table_privilege` answers from the grants.

use std::collections::BTreeSet;

use super::{ALICE, DENIED_ACCOUNT, DENIED_CONTACT, GRANTED, ROOT, fixture};

#[test]
fn catalogs_list_only_granted_relations_and_columns() {
    let fx = fixture();
    let server = &fx.server;
    let granted: BTreeSet<String> = GRANTED.iter().map(|s| s.to_string()).collect();
    let root_public: BTreeSet<String> = server
        .rows(ROOT, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert!(granted.is_subset(&root_public), "root sees the granted relations: {root_public:?}");
    let hidden: BTreeSet<String> = root_public.difference(&granted).cloned().collect();
    assert!(hidden.contains("opportunity") && hidden.contains("dim_contact"), "hidden relations to look for: {hidden:?}");
    let check = |what: &str, names: Vec<String>| {
        let leaked: Vec<&String> = names.iter().filter(|n| hidden.contains(*n)).collect();
        assert!(leaked.is_empty(), "{what} lists hidden relations {leaked:?}:\n{names:?}");
    };
    let field = |sql: &str, i: usize| -> Vec<String> { server.rows(ALICE, sql).into_iter().map(|r| r[i].clone()).collect() };

    // psql's meta-commands.
    let tables: BTreeSet<String> = field("\\dt", 1).into_iter().collect();
    // The granted source's tables are listed too (`legacy.*`); the hidden source's are not.
    assert_eq!(tables, ["account_history", "contact_history", "sales_orders_history"].map(String::from).into(), "\\dt");
    let views: BTreeSet<String> = field("\\dv", 1).into_iter().collect();
    let want = ["account", "account_scd2", "contact", "contact_scd2", "sales_orders", "sales_orders_scd2"];
    assert_eq!(views, want.map(String::from).into(), "\\dv");
    let all = server.rows(ROOT, "\\d account");
    let want: Vec<String> = all.iter().map(|r| r[0].clone()).filter(|c| !DENIED_ACCOUNT.contains(&c.as_str())).collect();
    assert!(want.len() + DENIED_ACCOUNT.len() == all.len(), "root's \\d account has the denied columns");
    assert_eq!(field("\\d account", 0), want, "\\d account");
    let all = server.rows(ROOT, "\\d contact_scd2");
    let want: Vec<String> = all.iter().map(|r| r[0].clone()).filter(|c| !DENIED_CONTACT.contains(&c.as_str())).collect();
    assert_eq!(field("\\d contact_scd2", 0), want, "\\d contact_scd2");
    let out = server.psql(ALICE, &["-c", "\\d+ account_scd2"]);
    let describe = server.ok(&out, "\\d+ account_scd2").to_lowercase();
    for hidden_text in ["annualrevenue", "industry =", "user_attr"] {
        assert!(!describe.contains(hidden_text), "\\d+ account_scd2 shows '{hidden_text}':\n{describe}");
    }
    let out = server.psql(ALICE, &["-c", "\\d opportunity"]);
    assert!(out.stdout.is_empty(), "\\d opportunity describes nothing:\n{}", String::from_utf8_lossy(&out.stdout));
    let namespaces = server.sorted(ALICE, "\\dn");
    assert!(
        namespaces.iter().any(|n| n.starts_with("public|")) && namespaces.iter().all(|n| server.sorted(ROOT, "\\dn").contains(n)),
        "\\dn: {namespaces:?}"
    );
    let users = server.rows(ALICE, "\\du");
    assert!(users.len() == 1 && users[0][0] == "alice", "\\du lists only the session user: {users:?}");

    // information_schema.
    let tables = field("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'", 0);
    assert_eq!(tables.into_iter().collect::<BTreeSet<_>>(), granted, "information_schema.tables (public)");
    check("information_schema.tables", field("SELECT table_name FROM information_schema.tables", 0));
    let columns = "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'";
    let want: BTreeSet<(String, String)> = server
        .rows(ROOT, columns)
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .filter(|(t, c)| {
            let denied: &[&str] = if t.starts_with("account") { &DENIED_ACCOUNT } else { &DENIED_CONTACT };
            granted.contains(t) && !denied.contains(&c.as_str())
        })
        .collect();
    let got: BTreeSet<(String, String)> = server.rows(ALICE, columns).into_iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(got, want, "information_schema.columns: root's, minus hidden relations and denied columns");
    let views = server.psql(ALICE, &["-c", "SELECT * FROM information_schema.views"]);
    let views = server.ok(&views, "information_schema.views").to_lowercase();
    for hidden_text in ["annualrevenue", "homephone", "opportunity", "industry ="] {
        assert!(!views.contains(hidden_text), "information_schema.views shows '{hidden_text}':\n{views}");
    }

    // pg_catalog.
    check("pg_class", field("SELECT relname FROM pg_class", 0));
    check("pg_tables", field("SELECT tablename FROM pg_tables", 0));
    if server.psql(ROOT, &["-c", "SELECT viewname FROM pg_views"]).status.success() {
        check("pg_views", field("SELECT viewname FROM pg_views", 0));
    }
    let attributes = server.rows(ALICE, "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON a.attrelid = c.oid");
    check("pg_attribute JOIN pg_class", attributes.iter().map(|r| r[0].clone()).collect());
    for r in &attributes {
        let denied: &[&str] = if r[0].starts_with("account") { &DENIED_ACCOUNT } else { &DENIED_CONTACT };
        assert!(!(granted.contains(&r[0]) && denied.contains(&r[1].as_str())), "pg_attribute lists {r:?}");
    }
    assert!(attributes.iter().any(|r| r[0] == "account" && r[1] == "phone"), "pg_attribute lists account.phone");
    let show = server.rows(ALICE, "SHOW TABLES");
    check("SHOW TABLES", show.iter().map(|r| r[2].clone()).collect());
    let public: BTreeSet<String> = show.iter().filter(|r| r[1] == "public").map(|r| r[2].clone()).collect();
    assert_eq!(public, granted, "SHOW TABLES (public)");

    let privileges = server.rows(
        ALICE,
        "SELECT has_table_privilege('opportunity', 'SELECT'), has_table_privilege('account', 'SELECT'), \
         has_table_privilege('contact_history', 'SELECT')",
    );
    assert_eq!(privileges, [["f", "t", "t"]], "has_table_privilege answers from the grants");
    let privileges = server.rows(ROOT, "SELECT has_table_privilege('opportunity', 'SELECT')");
    assert_eq!(privileges, [["t"]], "root may read opportunity");
}
