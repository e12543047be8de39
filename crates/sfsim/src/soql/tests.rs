//! Compile-and-execute tests over a small in-memory org.

use chrono::Duration;
use tidemark_core::{FieldType, ManualClock};

use super::*;
use crate::org::OrgClock;
use crate::schema::{FieldDef, Formula, ObjectDef};
use crate::value::{Value, parse_datetime};

fn org() -> Org {
    let mut account = ObjectDef::new("Account", "Account", "Accounts", "001");
    account.add_system_fields();
    account.add_field(FieldDef::new("Name", FieldType::String).required().name_field());
    account.add_field(FieldDef::new("AnnualRevenue", FieldType::Currency));
    account.add_field(FieldDef::new("OwnerId", FieldType::Reference).lookup(&["User"]));
    account.add_field(FieldDef::new("Description", FieldType::Textarea));
    account.add_field(FieldDef::new("Founded__c", FieldType::Date));
    account.add_field(FieldDef::new("BillingAddress", FieldType::Address));
    account.add_field(FieldDef::new("BillingCity", FieldType::String).component_of("BillingAddress"));
    let mut user = ObjectDef::new("User", "User", "Users", "005");
    user.add_system_fields();
    user.add_field(FieldDef::new("Name", FieldType::String));
    let mut contact = ObjectDef::new("Contact", "Contact", "Contacts", "003");
    contact.add_system_fields();
    contact.add_field(FieldDef::new("LastName", FieldType::String).required());
    contact.add_field(FieldDef::new("AccountId", FieldType::Reference).lookup(&["Account"]));
    contact.add_field(
        FieldDef::new("Account_Name__c", FieldType::String)
            .formula(Formula::ParentField { reference_field: "AccountId".into(), parent_field: "Name".into() }),
    );
    let mut lead = ObjectDef::new("Lead", "Lead", "Leads", "00Q");
    lead.add_system_fields();
    lead.add_field(FieldDef::new("Name", FieldType::String));
    let mut task = ObjectDef::new("Task", "Task", "Tasks", "00T");
    task.add_system_fields();
    task.add_field(FieldDef::new("Subject", FieldType::String));
    task.add_field(FieldDef::new("WhoId", FieldType::Reference).lookup(&["Contact", "Lead"]));
    let clock = OrgClock::Manual(ManualClock::new(ManualClock::default_start()));
    Org::new(vec![account, user, contact, lead, task], clock)
}

fn slot(org: &Org, object: &str, field: &str) -> u16 {
    org.table(object).unwrap().def.slot(field)
}

fn names(org: &Org, q: &str) -> Vec<String> {
    let query = compile(org, q).unwrap_or_else(|e| panic!("{q}: {e}"));
    let out = query.execute(org, false).unwrap();
    out.rows.iter().map(|r| r.get(slot(org, "Account", "Name")).as_str().unwrap_or("").to_owned()).collect()
}

fn seeded() -> Org {
    let mut org = org();
    let user = {
        let s = slot(&org, "User", "Name");
        org.insert_record("User", vec![(s, Value::str("Olivia Owner"))]).unwrap()
    };
    let (n, rev, owner, founded) = (
        slot(&org, "Account", "Name"),
        slot(&org, "Account", "AnnualRevenue"),
        slot(&org, "Account", "OwnerId"),
        slot(&org, "Account", "Founded__c"),
    );
    let rows: [(&str, Option<f64>, Option<i32>); 5] = [
        ("Acme", Some(100.0), Some(19_000)),
        ("beta", None, None),
        ("Gamma's", Some(300.0), Some(19_700)),
        ("Alpha", Some(200.0), None),
        ("delta 100%", Some(50.0), Some(20_000)),
    ];
    for (name, r, f) in rows {
        let mut v = vec![(n, Value::str(name)), (owner, Value::str(user.as_str()))];
        if let Some(r) = r {
            v.push((rev, Value::Double(r)));
        }
        if let Some(f) = f {
            v.push((founded, Value::Date(f)));
        }
        org.advance_clock(Duration::minutes(1));
        org.insert_record("Account", v).unwrap();
    }
    org
}

#[test]
fn filters_with_every_operator() {
    let org = seeded();
    assert_eq!(names(&org, "SELECT Name FROM Account WHERE Name = 'ACME'"), ["Acme"]);
    assert_eq!(names(&org, "select name from account where AnnualRevenue > 100"), ["Gamma's", "Alpha"]);
    assert_eq!(names(&org, "SELECT Name FROM Account WHERE AnnualRevenue <= 100"), ["Acme", "delta 100%"]);
    assert_eq!(names(&org, "SELECT Name FROM Account WHERE AnnualRevenue = null"), ["beta"]);
    assert_eq!(names(&org, "SELECT Name FROM Account WHERE AnnualRevenue != 100").len(), 4, "null != 100");
    assert_eq!(names(&org, "SELECT Name FROM Account WHERE Name IN ('alpha', 'BETA')"), ["beta", "Alpha"]);
    assert_eq!(names(&org, "SELECT Name FROM Account WHERE Name NOT IN ('alpha', 'BETA')").len(), 3);
    assert_eq!(names(&org, "SELECT Name FROM Account WHERE Name LIKE 'a%'"), ["Acme", "Alpha"]);
    assert_eq!(names(&org, "SELECT Name FROM Account WHERE Name LIKE '%100\\%'"), ["delta 100%"]);
    assert_eq!(names(&org, "SELECT Name FROM Account WHERE Name = 'Gamma\\'s'"), ["Gamma's"]);
    assert_eq!(
        names(&org, "SELECT Name FROM Account WHERE NOT (Name LIKE 'a%' OR AnnualRevenue = null)"),
        ["Gamma's", "delta 100%"]
    );
    assert_eq!(names(&org, "SELECT Name FROM Account WHERE Founded__c >= 2023-12-09 AND Founded__c < 2024-10-01"), ["Gamma's"]);
}

#[test]
fn datetime_literals_compare_as_instants() {
    let org = seeded();
    // Records were created at 09:01 … 09:05 on 2025-01-06 (UTC).
    let q = |lit: &str| names(&org, &format!("SELECT Name FROM Account WHERE CreatedDate > {lit}")).len();
    assert_eq!(q("2025-01-06T09:03:00Z"), 2);
    assert_eq!(q("2025-01-06T09:02:59.999Z"), 3);
    assert_eq!(q("2025-01-06T10:03:00+01:00"), 2);
    assert_eq!(q("2025-01-06T04:03:00.000-05:00"), 2);
    assert_eq!(q("2025-01-06T09:03:00.000+0000"), 2);
    assert_eq!(names(&org, "SELECT Name FROM Account WHERE CreatedDate = TODAY").len(), 5);
    assert_eq!(names(&org, "SELECT Name FROM Account WHERE CreatedDate = YESTERDAY").len(), 0);
    assert_eq!(names(&org, "SELECT Name FROM Account WHERE CreatedDate < TODAY").len(), 0);
    assert_eq!(names(&org, "SELECT Name FROM Account WHERE CreatedDate = LAST_N_DAYS:3").len(), 5);
    assert_eq!(names(&org, "SELECT Name FROM Account WHERE Founded__c < LAST_N_DAYS:365"), ["Acme", "Gamma's"]);
    assert_eq!(names(&org, "SELECT Name FROM Account WHERE Founded__c = LAST_N_DAYS:400"), ["Gamma's", "delta 100%"]);
    let exact = parse_datetime("2025-01-06T09:01:00Z").unwrap();
    assert_eq!(
        exact,
        org.table("Account").unwrap().rows()[0].get(slot(&org, "Account", "CreatedDate")).as_datetime_millis().unwrap()
    );
}

/// Salesforce's Behaviours say nothing of literals with milliseconds, so they compare with the
/// stored stamp as it is: whole seconds by default, the clock's milliseconds if the org keeps them.
#[test]
fn millisecond_literals_compare_with_the_stored_stamp() {
    for keep_millis in [false, true] {
        let mut org = org();
        org.millisecond_stamps = keep_millis;
        org.advance_clock(Duration::milliseconds(700));
        let n = slot(&org, "Account", "Name");
        org.insert_record("Account", vec![(n, Value::str("Acme"))]).unwrap();
        let count = |op: &str, lit: &str| names(&org, &format!("SELECT Name FROM Account WHERE SystemModstamp {op} {lit}")).len();
        let whole = usize::from(!keep_millis);
        assert_eq!(count("=", "2025-01-06T09:00:00Z"), whole, "keep_millis={keep_millis}");
        assert_eq!(count("=", "2025-01-06T09:00:00.000Z"), whole);
        assert_eq!(count("=", "2025-01-06T09:00:00.700Z"), 1 - whole);
        assert_eq!(count(">", "2025-01-06T09:00:00.500Z"), 1 - whole);
        assert_eq!(count("<", "2025-01-06T09:00:00.500+0000"), whole);
        assert_eq!(count(">=", "2025-01-06T09:00:00.000Z"), 1);
    }
}

#[test]
fn wrong_literal_types_are_invalid_field() {
    let org = seeded();
    let e = compile(&org, "SELECT Id FROM Account WHERE CreatedDate > '2024-01-01'").unwrap_err();
    assert_eq!(e.error_code, "INVALID_FIELD");
    assert!(
        e.message.ends_with(
            "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes"
        ),
        "{}",
        e.message
    );
    let e = compile(&org, "SELECT Id FROM Account WHERE Name = 5").unwrap_err();
    assert!(e.message.ends_with("must be of type string and should be enclosed in quotes"), "{}", e.message);
    let e = compile(&org, "SELECT Id FROM Account WHERE Id = 'nope'").unwrap_err();
    assert_eq!(e.error_code, "INVALID_QUERY_FILTER_OPERATOR");
    let e = compile(&org, "SELECT Id FROM Account WHERE Description = 'x'").unwrap_err();
    assert!(e.message.ends_with("field 'Description' can not be filtered in a query call"));
}

#[test]
fn orders_with_nulls_and_windows() {
    let org = seeded();
    assert_eq!(
        names(&org, "SELECT Name FROM Account ORDER BY AnnualRevenue"),
        ["beta", "delta 100%", "Acme", "Alpha", "Gamma's"]
    );
    assert_eq!(
        names(&org, "SELECT Name FROM Account ORDER BY AnnualRevenue DESC"),
        ["Gamma's", "Alpha", "Acme", "delta 100%", "beta"]
    );
    assert_eq!(names(&org, "SELECT Name FROM Account ORDER BY AnnualRevenue ASC NULLS LAST LIMIT 2"), ["delta 100%", "Acme"]);
    assert_eq!(names(&org, "SELECT Name FROM Account ORDER BY Name"), ["Acme", "Alpha", "beta", "delta 100%", "Gamma's"]);
    assert_eq!(names(&org, "SELECT Name FROM Account ORDER BY Name LIMIT 2 OFFSET 1"), ["Alpha", "beta"]);
    assert_eq!(names(&org, "SELECT Name FROM Account LIMIT 2"), ["Acme", "beta"]);
    let e = compile(&org, "SELECT Name FROM Account OFFSET 2001").unwrap_err();
    assert_eq!(e.error_code, "NUMBER_OUTSIDE_VALID_RANGE");
}

#[test]
fn count_and_aggregates() {
    let org = seeded();
    let q = compile(&org, "SELECT COUNT() FROM Account WHERE AnnualRevenue > 60").unwrap();
    assert!(q.is_count());
    let out = q.execute(&org, false).unwrap();
    assert_eq!((out.total_size, out.rows.len()), (3, 0));
    let q = compile(&org, "SELECT COUNT(Id), SUM(AnnualRevenue) total, MAX(Name) FROM Account").unwrap();
    let out = q.execute(&org, false).unwrap();
    assert_eq!(out.total_size, 1);
    let json = q.record_json(&org, "66.0", &out.rows[0]);
    assert_eq!(json, serde_json::json!({"attributes":{"type":"AggregateResult"},"expr0":5,"total":650.0,"expr1":"Gamma's"}));
    assert!(q.bulk_unsupported_reason(&org).is_some());
    let q = compile(&org, "SELECT Founded__c, COUNT(Id) n FROM Account GROUP BY Founded__c ORDER BY Founded__c DESC NULLS LAST")
        .unwrap();
    let out = q.execute(&org, false).unwrap();
    let groups: Vec<serde_json::Value> = out.rows.iter().map(|r| q.record_json(&org, "66.0", r)).collect();
    assert_eq!(groups.len(), 4);
    assert_eq!(groups[0]["Founded__c"], "2024-10-04");
    assert_eq!(groups[3], serde_json::json!({"attributes":{"type":"AggregateResult"},"Founded__c":null,"n":2}));
    let e = compile(&org, "SELECT Name, COUNT(Id) FROM Account").unwrap_err();
    assert!(e.message.ends_with("Field must be grouped or aggregated: Name"));
}

#[test]
fn parent_paths_nest_in_json_and_flatten_in_csv() {
    let mut org = seeded();
    let acme = org.table("Account").unwrap().id_of(&org.table("Account").unwrap().rows()[0]);
    let (ln, acc) = (slot(&org, "Contact", "LastName"), slot(&org, "Contact", "AccountId"));
    let c1 = org.insert_record("Contact", vec![(ln, Value::str("Smith \"Jr\"")), (acc, Value::str(acme.as_str()))]).unwrap();
    org.insert_record("Contact", vec![(ln, Value::str("Orphan"))]).unwrap();
    let (subj, who) = (slot(&org, "Task", "Subject"), slot(&org, "Task", "WhoId"));
    org.insert_record("Task", vec![(subj, Value::str("Call")), (who, Value::str(c1.as_str()))]).unwrap();

    let q =
        compile(&org, "SELECT LastName, account.name, Account.Owner.Name, Account_Name__c FROM Contact ORDER BY LastName DESC")
            .unwrap();
    assert_eq!(q.columns(), ["LastName", "Account.Name", "Account.Owner.Name", "Account_Name__c"]);
    let out = q.execute(&org, false).unwrap();
    let json = q.record_json(&org, "66.0", &out.rows[0]);
    assert_eq!(json["Account"]["attributes"]["type"], "Account");
    assert_eq!(json["Account"]["Name"], "Acme");
    assert_eq!(json["Account"]["Owner"]["Name"], "Olivia Owner");
    assert_eq!(json["Account_Name__c"], "Acme");
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["attributes", "LastName", "Account", "Account_Name__c"]);
    let orphan = q.record_json(&org, "66.0", &out.rows[1]);
    assert_eq!(orphan["Account"], serde_json::Value::Null);
    let mut csv = String::new();
    q.write_csv_row(&org, &out.rows[0], &mut csv);
    q.write_csv_row(&org, &out.rows[1], &mut csv);
    assert_eq!(csv, "\"Smith \"\"Jr\"\"\",\"Acme\",\"Olivia Owner\",\"Acme\"\n\"Orphan\",\"\",\"\",\"\"\n");

    // Polymorphic: Name exists on Lead, LastName on Contact; both resolve through the record's type.
    let q = compile(&org, "SELECT Subject, Who.Name FROM Task WHERE Who.LastName = 'smith \"jr\"'").unwrap();
    assert_eq!(q.execute(&org, false).unwrap().total_size, 1);
    let q = compile(&org, "SELECT Subject, Who.LastName FROM Task WHERE Account.Name = 'x'").unwrap_err();
    assert!(q.message.contains("Didn't understand relationship 'Account' in field path"), "{}", q.message);
    let q = compile(
        &org,
        "SELECT Name, (SELECT LastName FROM Contacts WHERE LastName != 'x' ORDER BY LastName) FROM Account ORDER BY Name LIMIT 2",
    )
    .unwrap();
    assert!(q.bulk_unsupported_reason(&org).unwrap().contains("Aggregate Relationships"));
    let out = q.execute(&org, false).unwrap();
    let acme = q.record_json(&org, "66.0", &out.rows[0]);
    assert_eq!(acme["Contacts"]["totalSize"], 1);
    assert_eq!(acme["Contacts"]["done"], true);
    assert_eq!(acme["Contacts"]["records"][0]["LastName"], "Smith \"Jr\"");
    assert_eq!(acme["Contacts"]["records"][0]["attributes"]["type"], "Contact");
    assert_eq!(q.record_json(&org, "66.0", &out.rows[1])["Contacts"], serde_json::Value::Null);
    let e = compile(&org, "SELECT Name, (SELECT Id FROM Contactz) FROM Account").unwrap_err();
    assert!(e.message.contains("Didn't understand relationship 'Contactz' in FROM part of query call"), "{}", e.message);

    let q = compile(&org, "SELECT Subject, Who.LastName FROM Task").unwrap();
    let out = q.execute(&org, false).unwrap();
    let json = q.record_json(&org, "66.0", &out.rows[0]);
    assert_eq!(json["Who"]["attributes"]["type"], "Contact");
    assert_eq!(json["Who"]["LastName"], "Smith \"Jr\"");
}

#[test]
fn resolution_errors_have_salesforce_messages() {
    let org = seeded();
    let e = compile(&org, "SELECT Id, Foo FROM Account").unwrap_err();
    assert_eq!(e.error_code, "INVALID_FIELD");
    assert_eq!(
        e.message,
        "\nSELECT Id, Foo FROM Account\n           ^\nERROR at Row:1:Column:12\nNo such column 'Foo' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
    );
    let e = compile(&org, "select count() from XYZZY").unwrap_err();
    let corpus: serde_json::Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/salesforce-api/error-invalid-type.json"
    )))
    .unwrap();
    assert_eq!(e.to_api_error().body(), corpus);
    let e = compile(&org, "SELECT Id, Id FROM Account").unwrap_err();
    assert!(e.message.ends_with("duplicate field selected: Id"));
}

#[test]
fn compound_fields_are_rest_only_and_deleted_rows_need_query_all() {
    let mut org = seeded();
    let q = compile(&org, "SELECT Id, BillingAddress FROM Account").unwrap();
    assert!(q.bulk_unsupported_reason(&org).unwrap().contains("compound"));
    assert!(compile(&org, "SELECT Id, BillingCity FROM Account").unwrap().bulk_unsupported_reason(&org).is_none());
    assert!(compile(&org, "SELECT Id FROM Account OFFSET 1").unwrap().bulk_unsupported_reason(&org).is_some());
    let first = org.table("Account").unwrap().id_of(&org.table("Account").unwrap().rows()[0]);
    org.soft_delete(&first).unwrap();
    let q = compile(&org, "SELECT Id, IsDeleted FROM Account").unwrap();
    assert_eq!(q.execute(&org, false).unwrap().total_size, 4);
    let all = q.execute(&org, true).unwrap();
    assert_eq!(all.total_size, 5);
    assert_eq!(q.record_json(&org, "66.0", &all.rows[0])["IsDeleted"], true);
    let q = compile(&org, &format!("SELECT Id FROM Account WHERE Id = '{}'", first.short())).unwrap();
    assert_eq!(q.execute(&org, true).unwrap().total_size, 1, "15-character id literal matches");
}

#[test]
fn page_writer_matches_the_row_writer() {
    let org = seeded();
    for q in [
        // Stored root fields only: the decode-once fast path, selecting fewer slots than stored.
        "SELECT Id, Name, AnnualRevenue, Founded__c, CreatedDate, IsDeleted FROM Account",
        "SELECT Name, Id FROM Account",
        // Parent paths: the general path.
        "SELECT Id, Name, Owner.Name FROM Account",
    ] {
        let query = compile(&org, q).unwrap();
        let rows = query.execute(&org, true).unwrap().rows;
        assert!(!rows.is_empty(), "{q}");
        let mut by_row = String::new();
        for row in &rows {
            query.write_csv_row(&org, row, &mut by_row);
        }
        let mut by_page = String::new();
        query.write_csv_rows(&org, &rows, &mut by_page);
        assert_eq!(by_page, by_row, "{q}");
    }
}

/// The REST page writer renders exactly what building each record's JSON value renders: every
/// field of every object of a generated org (formulas, compounds, encrypted values included),
/// parent paths and a subquery.
#[test]
fn json_page_writer_matches_the_record_values() {
    let config = crate::SimConfig { accounts: 12, seed: 5, manual_clock: true, ..crate::SimConfig::default() };
    let org = crate::SimServer::build_org(&config);
    let mut queries: Vec<String> = org
        .tables()
        .iter()
        .filter(|t| t.def.flags.queryable && !t.is_empty())
        .map(|t| {
            let fields: Vec<&str> = t.def.fields.iter().map(|f| f.name.as_str()).collect();
            format!("SELECT {} FROM {}", fields.join(", "), t.def.name)
        })
        .collect();
    queries.push("SELECT Id, Name, Owner.Name, Parent.Name, (SELECT Id, LastName FROM Contacts) FROM Account".into());
    queries.push("SELECT Id, Account.Name, Account.Owner.Name, LastName FROM Contact".into());
    queries.push("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry".into());
    for soql in &queries {
        let q = compile(&org, soql).unwrap_or_else(|e| panic!("{soql}: {}", e.message));
        let rows = q.execute(&org, true).unwrap().rows;
        assert!(!rows.is_empty(), "{soql}: no rows");
        let mut written = Vec::new();
        q.write_records_json(&org, "66.0", &rows, &mut written);
        let expected: Vec<String> = rows.iter().map(|r| q.record_json(&org, "66.0", r).to_string()).collect();
        assert_eq!(String::from_utf8(written).unwrap(), expected.join(","), "{soql}");
    }
}
