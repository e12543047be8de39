//! Other sources' tables under the same rules: the analyst role is granted `legacy.*` (with a
//! mask and a row filter on `legacy.sales_orders`) and nothing of `hr`, whose schema is not
//! even listed, while naming its table is refused by name.

use std::path::Path;
use std::process::Command;

use super::{ALICE, BIN, ROOT, assert_denied, fixture, run, succeeded};

/// Two change-file (DMS) sources beside the demo's Salesforce objects: `legacy`'s
/// `sales_orders` and `hr`'s `staff_people`.
pub(super) fn add_sources(dir: &Path, lake: &Path) {
    let files = [
        (
            "landing/legacy/sales/orders",
            "id,amount,note,ts\n1,10.00,first note,2024-01-01 00:00:00\n2,250.00,big order,2024-01-01 00:00:00\n3,99.99,,2024-01-02 00:00:00\n",
        ),
        ("landing/hr/staff/people", "id,name,salary,ts\n1,Zoe Quill,100000,2024-01-01 00:00:00\n"),
    ];
    for (folder, csv) in files {
        std::fs::create_dir_all(dir.join(folder)).expect("a landing folder");
        std::fs::write(dir.join(folder).join("LOAD00000001.csv"), csv).expect("writes a change file");
    }
    let config = dir.join("sources.yaml");
    let text = format!(
        "lake:\n  location: {lake}\nsources:\n  \
         legacy: {{kind: dms, path: {legacy}, timestamp_column: ts, column_types: {{sales.orders: {{id: integer, amount: 'decimal(8,2)'}}}}}}\n  \
         hr: {{kind: dms, path: {hr}, timestamp_column: ts}}\n",
        lake = lake.display(),
        legacy = dir.join("landing/legacy").display(),
        hr = dir.join("landing/hr").display(),
    );
    std::fs::write(&config, text).expect("writes the sources' config");
    succeeded(&run(Command::new(BIN).arg("sync").arg("--config").arg(&config)), "tidemark sync of the sources");
}

/// How the fixture's psql prints a NULL.
const NULL: &str = "(null)";

#[test]
fn a_source_is_granted_masked_and_filtered_and_another_is_hidden() {
    let fx = fixture();
    let server = &fx.server;

    // The granted source: rows filtered, the note masked, every form.
    let all = server.rows(ROOT, "SELECT id, amount, note FROM legacy.sales_orders ORDER BY id");
    let want: Vec<Vec<String>> = all
        .iter()
        .filter(|r| r[1].parse::<f64>().expect("an amount") < 100.0)
        .map(|r| vec![r[0].clone(), r[1].clone(), if r[2] == NULL { r[2].clone() } else { "[redacted]".to_owned() }])
        .collect();
    assert!(want.len() < all.len() && !want.is_empty(), "the filter keeps some rows and drops others: {all:?}");
    assert_eq!(server.rows(ALICE, "SELECT id, amount, note FROM legacy.sales_orders ORDER BY id"), want);
    assert_eq!(server.rows(ALICE, "SELECT id, amount, note FROM LEGACY.SALES_ORDERS_HISTORY ORDER BY id"), want);
    let as_of = server.rows(ALICE, "SELECT id, amount, note FROM as_of('legacy.sales_orders', now()) ORDER BY id");
    assert_eq!(as_of, want);
    let probe = server.rows(ALICE, "SELECT count(*) FROM legacy.sales_orders WHERE note = 'big order' OR amount > 100");
    assert_eq!(probe, [["0"]], "nothing hidden is found by value");

    // The hidden source: refused by name in every form, absent from every listing.
    for (sql, relation) in [
        ("SELECT * FROM hr.staff_people", "hr.staff_people"),
        ("SELECT * FROM hr.staff_people_scd2", "hr.staff_people_scd2"),
        ("SELECT * FROM as_of('hr.staff_people', now())", "hr.staff_people"),
        ("SELECT 1 FROM legacy.sales_orders WHERE id IN (SELECT id FROM hr.staff_people)", "hr.staff_people"),
    ] {
        let out = server.psql(ALICE, &["-c", sql]);
        assert_denied(&String::from_utf8_lossy(&out.stderr), relation, sql);
    }
    let schemas: Vec<String> = server.rows(ALICE, "SELECT nspname FROM pg_namespace").into_iter().map(|r| r[0].clone()).collect();
    assert!(schemas.contains(&"legacy".to_owned()) && !schemas.contains(&"hr".to_owned()), "pg_namespace: {schemas:?}");
    let listed = server.rows(ALICE, "SELECT table_schema, table_name FROM information_schema.tables");
    assert!(!listed.iter().any(|r| r[0] == "hr"), "information_schema.tables lists hr: {listed:?}");
    assert!(listed.iter().any(|r| r[0] == "legacy" && r[1] == "sales_orders"), "{listed:?}");
    let everyone = server.rows(ROOT, "SELECT count(*) FROM hr.staff_people");
    assert_eq!(everyone, [["1"]], "root reads hr");
}
