use serde_json::json;

use super::*;

fn rows(values: serde_json::Value) -> Vec<Record> {
    values.as_array().unwrap().iter().map(|r| r.as_object().unwrap().clone()).collect()
}

fn spec(operation: IngestOperation) -> IngestSpec {
    IngestSpec { object: "Account".into(), operation }
}

#[test]
fn writes_values_as_bulk_csv() {
    let input = rows(json!([
        {"Id": "001A", "Name": "Acme, \"Inc\"", "Phone": null, "Fax": "", "Active__c": true, "NumberOfEmployees": 12,
         "Tags__c": ["a", "b"], "Parent": {"Ext__c": "P-1"}, "Who": {"attributes": {"type": "Lead"}, "Email": "x@y.z"}},
        {"Id": "001B", "Description": " keep spaces "}
    ]));
    let plan = IngestPlan::new(spec(IngestOperation::Update), &input, IngestOptions::default()).unwrap();
    assert_eq!(plan.jobs().len(), 1);
    let csv = std::str::from_utf8(plan.jobs()[0].csv()).unwrap();
    assert_eq!(
        csv,
        "Id,Name,Phone,Fax,Active__c,NumberOfEmployees,Tags__c,Parent.Ext__c,Lead:Who.Email,Description\n\
         001A,\"Acme, \"\"Inc\"\"\",#N/A,#N/A,true,12,a;b,P-1,x@y.z,\n\
         001B,,,,,,,,, keep spaces \n"
    );
    let debug = format!("{plan:?}");
    assert!(!debug.contains("Acme") && !debug.contains("x@y.z"), "no values in Debug: {debug}");
}

#[test]
fn splits_by_size_and_puts_repeated_keys_in_later_jobs() {
    let input: Vec<Record> =
        (0..10).map(|i| rows(json!([{ "Ext__c": format!("K{}", i % 8), "Name": format!("Name {i}") }])).remove(0)).collect();
    let op = IngestOperation::Upsert { external_id_field: "Ext__c".into() };
    let options = IngestOptions { max_upload_bytes: 60, ..IngestOptions::default() };
    let plan = IngestPlan::new(spec(op), &input, options).unwrap();
    for job in plan.jobs() {
        assert!(job.csv().len() <= 60, "job {} has {} bytes", job.index, job.csv().len());
        assert!(job.csv().starts_with(b"Ext__c,Name\n"));
    }
    let order: Vec<usize> = plan.jobs().iter().flat_map(|j| j.rows.clone()).collect();
    // Rows 8 and 9 repeat the keys of rows 0 and 1: they run after every first occurrence.
    assert_eq!(order, vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let last = plan.jobs().last().unwrap();
    assert_eq!(last.rows, vec![8, 9]);
    assert_eq!(plan.jobs().len(), 3, "two jobs of first occurrences, one of repeats");
    let too_small = IngestOptions { max_upload_bytes: 20, ..IngestOptions::default() };
    let err = IngestPlan::new(spec(IngestOperation::Insert), &input, too_small).unwrap_err();
    assert!(err.to_string().contains("row 0 takes"), "{err}");
    assert!(!err.to_string().contains("Name 0"));
}

#[test]
fn refuses_rows_without_their_key() {
    let input = rows(json!([{"Id": "001A", "Name": "x"}, {"Name": "y"}]));
    let err = IngestPlan::new(spec(IngestOperation::Update), &input, IngestOptions::default()).unwrap_err();
    assert_eq!(err.to_string(), "invalid input: row 1 has no value for the key field Id");
    let nested = rows(json!([{"Parent": {"Ext__c": {"deep": 1}}}]));
    assert!(IngestPlan::new(spec(IngestOperation::Insert), &nested, IngestOptions::default()).is_err());
}

#[test]
fn matches_results_in_any_order_with_reformatted_numbers() {
    let input = rows(json!([
        {"Name": "A", "NumberOfEmployees": 912260031},
        {"Name": "B", "NumberOfEmployees": 5},
        {"Name": "A", "NumberOfEmployees": 912260031},
        {"Name": "C", "NumberOfEmployees": 7},
        {"Name": "D", "NumberOfEmployees": 8}
    ]));
    let plan = IngestPlan::new(spec(IngestOperation::Insert), &input, IngestOptions::default()).unwrap();
    let job = &plan.jobs()[0];
    let ok = "\"sf__Id\",\"sf__Created\",Name,NumberOfEmployees\n\
              \"001C\",\"true\",\"C\",\"7\"\n\"001A1\",\"true\",\"A\",\"9.12260031E8\"\n\"001A2\",\"true\",\"A\",\"912260031\"\n";
    let failed = "\"sf__Id\",\"sf__Error\",Name,NumberOfEmployees\n\"\",\"REQUIRED_FIELD_MISSING:Required fields are missing: [X]:X --\",\"B\",\"5\"\n";
    let unprocessed = "Name,NumberOfEmployees\nD,8\n";
    let got = plan.match_results(job, ok.as_bytes(), failed.as_bytes(), unprocessed.as_bytes(), false).unwrap();
    let by_row: HashMap<usize, RowOutcome> = got.into_iter().collect();
    assert_eq!(by_row[&3], RowOutcome::Success { id: "001C".into(), created: true });
    let a_ids: Vec<&str> = [0, 2].iter().filter_map(|r| by_row[r].id()).collect();
    assert_eq!(a_ids.len(), 2, "both identical rows got one of the two outcomes");
    assert_eq!(by_row[&1].errors()[0].status_code, "REQUIRED_FIELD_MISSING");
    assert_eq!(by_row[&1].errors()[0].fields, vec!["X".to_owned()]);
    assert_eq!(by_row[&4], RowOutcome::NotProcessed);

    let empty_ok = "\"sf__Id\",\"sf__Created\",Name,NumberOfEmployees\n";
    let empty_failed = "\"sf__Id\",\"sf__Error\",Name,NumberOfEmployees\n";
    let empty_unprocessed = "Name,NumberOfEmployees\n";
    let got = plan.match_results(job, empty_ok.as_bytes(), empty_failed.as_bytes(), empty_unprocessed.as_bytes(), false).unwrap();
    assert!(got.iter().all(|(_, o)| *o == RowOutcome::Unknown), "rows in no file are unknown");
    let got = plan.match_results(job, empty_ok.as_bytes(), empty_failed.as_bytes(), empty_unprocessed.as_bytes(), true).unwrap();
    assert!(got.iter().all(|(_, o)| *o == RowOutcome::NotProcessed), "unless the job processed nothing");
}

#[test]
fn keyed_matching_uses_only_the_key() {
    let input = rows(json!([{"Id": "001A", "Name": "x"}, {"Id": "001B", "Name": "y"}]));
    let plan = IngestPlan::new(spec(IngestOperation::Update), &input, IngestOptions::default()).unwrap();
    // Salesforce may reformat other columns: the Id alone decides.
    let ok = "\"sf__Id\",\"sf__Created\",Id,Name\n\"001B\",\"false\",\"001B\",\"Y!\"\n\"001A\",\"false\",\"001A\",\"X!\"\n";
    let got =
        plan.match_results(&plan.jobs()[0], ok.as_bytes(), b"\"sf__Id\",\"sf__Error\",Id,Name\n", b"Id,Name\n", false).unwrap();
    assert_eq!(got[0], (0, RowOutcome::Success { id: "001A".into(), created: false }));
    assert_eq!(got[1], (1, RowOutcome::Success { id: "001B".into(), created: false }));
}
