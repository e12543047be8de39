//! Bulk API 2.0 ingest against the in-process simulator: insert/upsert/update/delete end to end
//! with failing rows, results matched to input rows, splitting into several jobs, job ids known
//! before upload, resuming by job id, failed jobs, and the budget stop.

use std::sync::{Arc, Mutex};

use crate::common::{client, client_with, live_count, record, rows, sim, some_account_ids};
use serde_json::json;
use tidemark_salesforce::{
    ClientConfig, IngestJobInfo, IngestOperation, IngestOptions, IngestPlan, IngestReport, IngestSpec, PlannedJob, Record,
    RetryPolicy, RowOutcome, SalesforceClient, SalesforceError,
};
use tidemark_sfsim::faults::FaultConfig;

fn spec(object: &str, operation: IngestOperation) -> IngestSpec {
    IngestSpec { object: object.into(), operation }
}

fn fast() -> IngestOptions {
    IngestOptions { poll_cap: std::time::Duration::from_millis(50), ..IngestOptions::default() }
}

/// Runs a plan, recording each job's id and state as the callback saw them.
async fn ingest(client: &SalesforceClient, plan: &IngestPlan) -> (IngestReport, Vec<(usize, String, String)>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let report = client
        .bulk_ingest(plan, |job: &PlannedJob, info: &IngestJobInfo| {
            let seen = seen.clone();
            let entry = (job.index, info.id.clone(), info.state.clone());
            async move {
                seen.lock().unwrap().push(entry);
                Ok::<(), SalesforceError>(())
            }
        })
        .await
        .expect("ingest runs");
    let seen = seen.lock().unwrap().clone();
    (report, seen)
}

/// Each success's record carries the `field` value of the input row it was matched to.
async fn assert_matched(client: &SalesforceClient, object: &str, field: &str, input: &[Record], report: &IngestReport) {
    assert_eq!(report.outcomes.len(), input.len());
    for (row, outcome) in input.iter().zip(&report.outcomes) {
        if let RowOutcome::Success { id, .. } = outcome {
            let stored = record(client, object, field, id).await.expect("the record exists");
            assert_eq!(stored[field], row[field], "record {id} was written from this row");
        }
    }
}

#[tokio::test]
async fn insert_matches_results_to_rows_and_reports_the_failing_one() {
    let sim = sim().await;
    let client = client(&sim, 3).await;
    let before = live_count(&sim, "Account");
    let input = rows(json!([
        {"Name": "Bulk A", "NumberOfEmployees": 10},
        {"Name": "Bulk B, \"quoted\"\nline", "Phone": "555"},
        {"Phone": "no name"},
        {"Name": "Bulk A", "NumberOfEmployees": 10},
        {"Name": "Bulk C", "Description": ""}
    ]));
    let plan = IngestPlan::new(spec("Account", IngestOperation::Insert), &input, fast()).unwrap();
    let (report, seen) = ingest(&client, &plan).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].2, "Open", "the job id is handed over before any data is uploaded");
    assert_eq!(report.jobs[0].id, seen[0].1);
    assert_eq!(report.jobs[0].state, "JobComplete");
    assert_eq!(report.outcomes[2].errors()[0].status_code, "REQUIRED_FIELD_MISSING");
    assert_eq!(report.outcomes[2].errors()[0].fields, vec!["Name".to_owned()]);
    for i in [0, 1, 3, 4] {
        assert!(matches!(report.outcomes[i], RowOutcome::Success { created: true, .. }), "{i}: {:?}", report.outcomes[i]);
    }
    assert_ne!(report.outcomes[0].id(), report.outcomes[3].id(), "identical rows are two records");
    assert_eq!(live_count(&sim, "Account"), before + 4);
    assert_matched(&client, "Account", "Name", &input, &report).await;
    let phone = record(&client, "Account", "Phone", report.outcomes[1].id().unwrap()).await.unwrap();
    assert_eq!(phone["Phone"], "555");

    // With a row key, inserts are matched by it alone.
    let account = some_account_ids(&client, 1).await.remove(0);
    let input = rows(json!([
        {"Invoice_Number__c": "BK-1", "Account__c": account, "Amount__c": 1},
        {"Invoice_Number__c": "BK-2", "Status__c": "Bogus"},
        {"Invoice_Number__c": "BK-3", "Amount__c": 912260031}
    ]));
    let options = IngestOptions { row_key_field: Some("Invoice_Number__c".into()), ..fast() };
    let plan = IngestPlan::new(spec("Invoice__c", IngestOperation::Insert), &input, options).unwrap();
    let (report, _) = ingest(&client, &plan).await;
    assert!(report.outcomes[0].is_success() && report.outcomes[2].is_success(), "{:?}", report.outcomes);
    assert_eq!(report.outcomes[1].errors()[0].status_code, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
    assert_matched(&client, "Invoice__c", "Invoice_Number__c", &input, &report).await;
}

#[tokio::test]
async fn upsert_update_and_delete_end_to_end() {
    let sim = sim().await;
    let client = client(&sim, 3).await;
    let upsert = || spec("Invoice__c", IngestOperation::Upsert { external_id_field: "Invoice_Number__c".into() });
    let first = rows(json!([
        {"Invoice_Number__c": "UP-1", "Amount__c": 10, "Notes__c": "keep me"},
        {"Invoice_Number__c": "UP-2", "Amount__c": 20, "Status__c": "Nope"},
        {"Invoice_Number__c": "UP-3", "Amount__c": 30, "Tax_Rate__c": 5}
    ]));
    let (report, _) = ingest(&client, &IngestPlan::new(upsert(), &first, fast()).unwrap()).await;
    assert!(matches!(report.outcomes[0], RowOutcome::Success { created: true, .. }), "{:?}", report.outcomes);
    assert_eq!(report.outcomes[1].errors()[0].status_code, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
    assert!(matches!(report.outcomes[2], RowOutcome::Success { created: true, .. }));
    let up1 = report.outcomes[0].id().unwrap().to_owned();
    let up3 = report.outcomes[2].id().unwrap().to_owned();

    let second = rows(json!([
        {"Invoice_Number__c": "UP-4", "Amount__c": 40},
        {"Invoice_Number__c": "UP-1", "Amount__c": 11}
    ]));
    let (report, _) = ingest(&client, &IngestPlan::new(upsert(), &second, fast()).unwrap()).await;
    assert!(matches!(report.outcomes[0], RowOutcome::Success { created: true, .. }));
    assert_eq!(report.outcomes[1], RowOutcome::Success { id: up1.clone(), created: false });
    let r = record(&client, "Invoice__c", "Amount__c, Notes__c", &up1).await.unwrap();
    assert_eq!((r["Amount__c"].as_f64(), r["Notes__c"].as_str()), (Some(11.0), Some("keep me")));

    // Update by Id: null and "" clear (#N/A), an absent field is unchanged, a bad id fails alone.
    let update = rows(json!([
        {"Id": up1, "Notes__c": null, "Amount__c": 12},
        {"Id": "a00000000000000AAA", "Amount__c": 1},
        {"Id": up3, "Tax_Rate__c": ""}
    ]));
    let (report, _) =
        ingest(&client, &IngestPlan::new(spec("Invoice__c", IngestOperation::Update), &update, fast()).unwrap()).await;
    assert_eq!(report.outcomes[0], RowOutcome::Success { id: up1.clone(), created: false });
    assert!(!report.outcomes[1].errors().is_empty(), "{:?}", report.outcomes[1]);
    assert_eq!(report.outcomes[2], RowOutcome::Success { id: up3.clone(), created: false });
    let r = record(&client, "Invoice__c", "Amount__c, Notes__c", &up1).await.unwrap();
    assert_eq!((r["Amount__c"].as_f64(), r["Notes__c"].is_null()), (Some(12.0), true));
    let r = record(&client, "Invoice__c", "Amount__c, Tax_Rate__c", &up3).await.unwrap();
    assert_eq!((r["Amount__c"].as_f64(), r["Tax_Rate__c"].is_null()), (Some(30.0), true));

    let before = live_count(&sim, "Invoice__c");
    let plan = IngestPlan::delete("Invoice__c", &[up3.as_str(), "a00000000000000AAA", up1.as_str()], fast()).unwrap();
    let (report, _) = ingest(&client, &plan).await;
    assert_eq!(report.outcomes[0], RowOutcome::Success { id: up3.clone(), created: false });
    assert!(!report.outcomes[1].errors().is_empty());
    assert_eq!(report.outcomes[2], RowOutcome::Success { id: up1.clone(), created: false });
    assert_eq!(live_count(&sim, "Invoice__c"), before - 2);
}

#[tokio::test]
async fn a_large_ingest_is_split_into_several_jobs() {
    let sim = sim().await;
    let client = client(&sim, 3).await;
    let input: Vec<Record> = rows(json!(
        (0..40)
            .map(|i| if i == 17 {
                json!({"Phone": "x"})
            } else {
                json!({"Name": format!("Split {i:02}"), "Phone": format!("{i}")})
            })
            .collect::<Vec<_>>()
    ));
    let options = IngestOptions { max_upload_bytes: 120, ..fast() };
    let plan = IngestPlan::new(spec("Account", IngestOperation::Insert), &input, options).unwrap();
    assert!(plan.jobs().len() >= 4, "{} jobs", plan.jobs().len());
    assert!(plan.jobs().iter().all(|j| j.csv().len() <= 120));
    let (report, seen) = ingest(&client, &plan).await;
    assert_eq!(seen.len(), plan.jobs().len());
    assert!(seen.iter().all(|(_, _, state)| state == "Open"));
    let ids: std::collections::HashSet<_> = report.jobs.iter().map(|j| j.id.clone()).collect();
    assert_eq!(ids.len(), plan.jobs().len(), "one Salesforce job per planned job");
    assert_eq!(report.outcomes[17].errors()[0].status_code, "REQUIRED_FIELD_MISSING");
    assert_eq!(report.outcomes.iter().filter(|o| o.is_success()).count(), 39);
    assert_matched(&client, "Account", "Name", &input, &report).await;
}

#[tokio::test]
async fn a_crashed_run_resumes_by_job_id_without_sending_again() {
    let sim = sim().await;
    let client = client(&sim, 3).await;
    let input = rows(json!([{"Name": "Resume 1"}, {"Name": "Resume 2"}, {"Phone": "none"}]));
    let plan = IngestPlan::new(spec("Account", IngestOperation::Insert), &input, fast()).unwrap();
    let job = &plan.jobs()[0];
    let before = live_count(&sim, "Account");

    // A run recorded its job id, uploaded, completed the upload, then died.
    let created = client.create_ingest_job(&plan.spec).await.unwrap();
    client.upload_ingest_data(&created.id, job.csv().clone()).await.unwrap();
    client.close_ingest_job(&created.id).await.unwrap();
    let resumed = client.resume_planned_job(&plan, job, &created.id).await.unwrap().expect("the job had started");
    assert!(resumed.info.is_terminal());
    let outcomes: Vec<_> = resumed.outcomes.iter().map(|(row, o)| (*row, o.is_success())).collect();
    assert_eq!(outcomes, vec![(0, true), (1, true), (2, false)]);
    assert_eq!(live_count(&sim, "Account"), before + 2);
    // Resuming again reads the same results; nothing is inserted twice.
    let again = client.resume_planned_job(&plan, job, &created.id).await.unwrap().unwrap();
    assert_eq!(again.outcomes, resumed.outcomes);
    assert_eq!(live_count(&sim, "Account"), before + 2);

    // A run that died before completing its upload: the job is aborted, its rows must be re-sent.
    let open = client.create_ingest_job(&plan.spec).await.unwrap();
    client.upload_ingest_data(&open.id, job.csv().clone()).await.unwrap();
    assert!(client.resume_planned_job(&plan, job, &open.id).await.unwrap().is_none());
    assert_eq!(client.ingest_job_info(&open.id).await.unwrap().state, "Aborted");
    let fresh = client.create_ingest_job(&plan.spec).await.unwrap();
    let done = client.run_planned_job(&plan, job, &fresh.id).await.unwrap();
    assert_eq!(done.outcomes.iter().filter(|(_, o)| o.is_success()).count(), 2);
    assert_eq!(live_count(&sim, "Account"), before + 4);
}

#[tokio::test]
async fn rows_of_a_failed_job_are_not_processed() {
    let sim = sim().await;
    let client = client(&sim, 3).await;
    sim.state.faults.set(FaultConfig { bulk_job_failure_rate: 1.0, ..Default::default() }, 9);
    let input = rows(json!([{"Name": "F1"}, {"Name": "F2"}]));
    let plan = IngestPlan::new(spec("Account", IngestOperation::Insert), &input, fast()).unwrap();
    let (report, _) = ingest(&client, &plan).await;
    assert_eq!(report.jobs[0].state, "Failed");
    assert!(report.jobs[0].error_message.is_some());
    assert_eq!(report.outcomes, vec![RowOutcome::NotProcessed, RowOutcome::NotProcessed]);
}

#[tokio::test]
async fn the_budget_stops_an_ingest_before_processing() {
    let sim = sim().await;
    let now = sim.state.now_millis();
    sim.state.usage.set_max(100);
    sim.state.usage.set_used(now, 48);
    let config = ClientConfig { budget_percent: 50, retry: RetryPolicy::immediate(3), ..ClientConfig::default() };
    let client = client_with(&sim, config).await;
    let before = live_count(&sim, "Account");
    let plan = IngestPlan::new(spec("Account", IngestOperation::Insert), &rows(json!([{"Name": "B"}])), fast()).unwrap();
    let err =
        client.bulk_ingest(&plan, |_: &PlannedJob, _: &IngestJobInfo| async { Ok::<(), SalesforceError>(()) }).await.unwrap_err();
    assert!(matches!(err, SalesforceError::BudgetExhausted { .. }), "{err}");
    assert_eq!(live_count(&sim, "Account"), before, "an upload never completed is never processed");
}

#[tokio::test]
async fn a_lost_upload_is_never_repeated_on_its_job() {
    let sim = sim().await;
    let client = client(&sim, 5).await;
    let before = live_count(&sim, "Account");
    let plan = IngestPlan::new(spec("Account", IngestOperation::Insert), &rows(json!([{"Name": "U1"}])), fast()).unwrap();
    let job = &plan.jobs()[0];
    let created = client.create_ingest_job(&plan.spec).await.unwrap();
    sim.state.faults.set(FaultConfig { drop_connection_rate: 1.0, ..Default::default() }, 4);
    let sent = client.requests_sent();
    let err = client.upload_ingest_data(&created.id, job.csv().clone()).await.unwrap_err();
    assert_eq!(client.requests_sent() - sent, 1, "a second PUT would append the rows again");
    assert!(matches!(err, SalesforceError::OutcomeUnknown { .. }), "{err}");
    sim.state.faults.set(FaultConfig::default(), 4);
    // The job never got UploadComplete: resuming aborts it and nothing was written.
    assert!(client.resume_planned_job(&plan, job, &created.id).await.unwrap().is_none());
    assert_eq!(live_count(&sim, "Account"), before);
}
