//! sObject Collections writes and SOAP undelete against the in-process simulator: per-row
//! outcomes in input order, partial failures, upsert created/updated, row-lock retries of only
//! the locked rows, the budget stop, lost answers of inserts, and `Debug` without values.

use crate::common::{client, client_with, live_count, record, rows, sim, some_account_ids};
use serde_json::json;
use tidemark_salesforce::{ClientConfig, ErrorClass, Request, RetryPolicy, RowOutcome, SalesforceError, WriteError};
use tidemark_sfsim::faults::FaultConfig;

fn success_id(o: &RowOutcome) -> String {
    o.id().unwrap_or_else(|| panic!("expected a success, got {o:?}")).to_owned()
}

#[tokio::test]
async fn create_update_delete_and_undelete_report_each_row_in_input_order() {
    let sim = sim().await;
    let client = client(&sim, 3).await;
    let before = live_count(&sim, "Account");

    let created = client
        .collections_create(
            "Account",
            &rows(json!([
                {"Name": "First", "Phone": "111"},
                {"Phone": "no name"},
                {"Name": "Third", "NumberOfEmployees": 12, "Description": "x"}
            ])),
        )
        .await
        .expect("a request with a bad row still succeeds");
    assert_eq!(created.len(), 3);
    assert!(matches!(&created[0], RowOutcome::Success { created: true, .. }), "{:?}", created[0]);
    let missing = &created[1].errors()[0];
    assert_eq!((missing.status_code.as_str(), missing.fields.clone()), ("REQUIRED_FIELD_MISSING", vec!["Name".to_owned()]));
    let (first, third) = (success_id(&created[0]), success_id(&created[2]));
    assert_eq!(live_count(&sim, "Account"), before + 2);
    assert_eq!(record(&client, "Account", "Name", &first).await.unwrap()["Name"], "First");
    assert_eq!(record(&client, "Account", "Name", &third).await.unwrap()["Name"], "Third");

    // Update: absent fields unchanged, null clears, a bad id fails alone.
    let updated = client
        .collections_update(
            "Account",
            &rows(json!([
                {"Id": first, "Name": "First v2"},
                {"Id": "001xx000003DGb2999", "Name": "nobody"},
                {"Id": third, "NumberOfEmployees": null}
            ])),
        )
        .await
        .unwrap();
    assert_eq!(updated[0], RowOutcome::Success { id: first.clone(), created: false });
    assert!(!updated[1].errors().is_empty() && updated[1].id().is_none(), "{:?}", updated[1]);
    assert_eq!(updated[2], RowOutcome::Success { id: third.clone(), created: false });
    let r = record(&client, "Account", "Name, Phone", &first).await.unwrap();
    assert_eq!((r["Name"].as_str(), r["Phone"].as_str()), (Some("First v2"), Some("111")));
    let r = record(&client, "Account", "NumberOfEmployees, Description", &third).await.unwrap();
    assert!(r["NumberOfEmployees"].is_null());
    assert_eq!(r["Description"], "x");

    let deleted = client.collections_delete(&[first.as_str(), "001RM000003oLrB000", third.as_str()]).await.unwrap();
    assert_eq!(deleted[0], RowOutcome::Success { id: first.clone(), created: false });
    assert_eq!(deleted[1].errors()[0].status_code, "MALFORMED_ID");
    assert_eq!(deleted[2], RowOutcome::Success { id: third.clone(), created: false });
    assert_eq!(live_count(&sim, "Account"), before);

    let restored = client.undelete(&[third.as_str(), "001000000000000AAA", first.as_str()]).await.unwrap();
    assert_eq!(restored[0], RowOutcome::Success { id: third.clone(), created: false });
    assert!(!restored[1].errors().is_empty(), "an id no record had: {:?}", restored[1]);
    assert_eq!(restored[2], RowOutcome::Success { id: first.clone(), created: false });
    assert_eq!(live_count(&sim, "Account"), before + 2);
    assert_eq!(record(&client, "Account", "Name", &first).await.unwrap()["Name"], "First v2");
    let again = client.undelete(&[first.as_str()]).await.unwrap();
    assert_eq!(again[0].errors()[0].status_code, "UNDELETE_FAILED", "a live record is not in the recycle bin");
    assert!(client.api_usage().is_some(), "usage tracked");
}

#[tokio::test]
async fn upsert_reports_created_versus_updated() {
    let sim = sim().await;
    let client = client(&sim, 3).await;
    let account = some_account_ids(&client, 1).await.remove(0);
    let first = client
        .collections_upsert(
            "Invoice__c",
            "Invoice_Number__c",
            &rows(json!([
                {"Invoice_Number__c": "INV-T-1", "Account__c": account, "Amount__c": 10.5, "Status__c": "Draft"},
                {"Invoice_Number__c": "INV-T-2", "Amount__c": 20}
            ])),
        )
        .await
        .unwrap();
    assert!(first.iter().all(|o| matches!(o, RowOutcome::Success { created: true, .. })), "{first:?}");
    let second = client
        .collections_upsert(
            "Invoice__c",
            "Invoice_Number__c",
            &rows(json!([
                {"Invoice_Number__c": "INV-T-3", "Amount__c": 30},
                {"Invoice_Number__c": "INV-T-1", "Amount__c": 11},
                {"Invoice_Number__c": "INV-T-4", "Status__c": "Not a status"}
            ])),
        )
        .await
        .unwrap();
    assert!(matches!(&second[0], RowOutcome::Success { created: true, .. }), "{:?}", second[0]);
    assert_eq!(second[1], RowOutcome::Success { id: success_id(&first[0]), created: false });
    assert_eq!(second[2].errors()[0].status_code, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
    let r = record(&client, "Invoice__c", "Amount__c, Account__c", &success_id(&first[0])).await.unwrap();
    assert_eq!(r["Amount__c"].as_f64(), Some(11.0));
    assert_eq!(r["Account__c"], json!(account), "fields the second upsert left out are unchanged");

    let missing_key = client.collections_upsert("Invoice__c", "Invoice_Number__c", &rows(json!([{"Amount__c": 1}]))).await;
    let err = missing_key.unwrap_err();
    assert!(matches!(err.error, SalesforceError::InvalidInput(_)), "{err}");
    assert_eq!(err.outcomes, vec![RowOutcome::NotProcessed]);
}

#[tokio::test]
async fn more_than_200_rows_go_in_several_requests_in_order() {
    let sim = sim().await;
    let client = client(&sim, 1).await;
    let input: Vec<_> =
        (0..450).map(|i| if i == 250 { json!({"Phone": "1"}) } else { json!({"Name": format!("Bulk {i}")}) }).collect();
    let sent = client.requests_sent();
    let outcomes = client.collections_create("Account", &rows(json!(input))).await.unwrap();
    assert_eq!(client.requests_sent() - sent, 3, "200 + 200 + 50");
    assert_eq!(outcomes.len(), 450);
    assert_eq!(outcomes[250].errors()[0].status_code, "REQUIRED_FIELD_MISSING");
    for i in [0, 199, 200, 251, 449] {
        let name = record(&client, "Account", "Name", &success_id(&outcomes[i])).await.unwrap()["Name"].clone();
        assert_eq!(name, json!(format!("Bulk {i}")), "outcome {i} belongs to row {i}");
    }
}

#[tokio::test]
async fn only_rows_that_hit_a_row_lock_are_sent_again() {
    let sim = sim().await;
    let accounts = {
        let c = client(&sim, 1).await;
        some_account_ids(&c, 2).await
    };
    let (locked, free) = (&accounts[0], &accounts[1]);
    let invoices = || {
        rows(json!([
            {"Name": "a", "Account__c": free},
            {"Name": "b", "Account__c": locked},
            {"Name": "c", "Account__c": free}
        ]))
    };
    // The parent stays locked for two writes: the row passes on the third attempt.
    sim.state.faults.set(FaultConfig { lock_row_ids: vec![locked.clone()], lock_row_id_failures: 2, ..Default::default() }, 1);
    let client = client(&sim, 3).await;
    let before = live_count(&sim, "Invoice__c");
    let sent = client.requests_sent();
    let outcomes = client.collections_create("Invoice__c", &invoices()).await.unwrap();
    assert!(outcomes.iter().all(RowOutcome::is_success), "{outcomes:?}");
    assert_eq!(client.requests_sent() - sent, 3, "the first request and two re-sends of the locked row");
    assert_eq!(live_count(&sim, "Invoice__c"), before + 3, "rows that passed were not inserted again");

    // Too few attempts: the lock error is the row's outcome, never raised.
    sim.state.faults.set(FaultConfig { lock_row_ids: vec![locked.clone()], lock_row_id_failures: 5, ..Default::default() }, 1);
    let outcomes = client.collections_create("Invoice__c", &invoices()).await.unwrap();
    assert!(outcomes[0].is_success() && outcomes[2].is_success());
    assert_eq!(outcomes[1].errors()[0].status_code, "UNABLE_TO_LOCK_ROW");
    assert_eq!(live_count(&sim, "Invoice__c"), before + 5);

    // SOAP undelete retries locked ids the same way.
    let deleted = client.collections_delete(&[free.as_str()]).await.unwrap();
    assert!(deleted[0].is_success());
    sim.state.faults.set(FaultConfig { lock_row_ids: vec![free.clone()], lock_row_id_failures: 1, ..Default::default() }, 1);
    let restored = client.undelete(&[free.as_str()]).await.unwrap();
    assert_eq!(restored[0], RowOutcome::Success { id: free.clone(), created: false });
}

#[tokio::test]
async fn the_budget_stops_writes_and_keeps_what_was_done() {
    let sim = sim().await;
    let now = sim.state.now_millis();
    sim.state.usage.set_max(100);
    sim.state.usage.set_used(now, 48);
    let client =
        client_with(&sim, ClientConfig { budget_percent: 50, retry: RetryPolicy::immediate(3), ..Default::default() }).await;
    let input: Vec<_> = (0..450).map(|i| json!({"Name": format!("Budget {i}")})).collect();
    let err: WriteError = client.collections_create("Account", &rows(json!(input))).await.unwrap_err();
    assert!(matches!(err.error, SalesforceError::BudgetExhausted { used: 50, max: 100, budget_percent: 50 }), "{err}");
    assert_eq!(err.class(), ErrorClass::Quota);
    assert!(err.outcomes[..400].iter().all(RowOutcome::is_success), "two requests passed before the budget");
    assert!(err.outcomes[400..].iter().all(|o| *o == RowOutcome::NotProcessed));
    let err = client.undelete(&["001000000000000AAA"]).await.unwrap_err();
    assert!(matches!(err.error, SalesforceError::BudgetExhausted { .. }), "{err}");
}

#[tokio::test]
async fn an_insert_whose_answer_is_lost_is_not_repeated() {
    let sim = sim().await;
    let client = client(&sim, 5).await;
    let before = live_count(&sim, "Account");
    sim.state.faults.set(FaultConfig { drop_connection_rate: 1.0, ..Default::default() }, 3);
    let sent = client.requests_sent();
    let err = client.collections_create("Account", &rows(json!([{"Name": "Lost 1"}, {"Name": "Lost 2"}]))).await.unwrap_err();
    assert_eq!(client.requests_sent() - sent, 1, "sent once");
    assert!(matches!(err.error, SalesforceError::OutcomeUnknown { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::OutcomeUnknown);
    assert_eq!(err.outcomes, vec![RowOutcome::Unknown, RowOutcome::Unknown]);
    assert_eq!(live_count(&sim, "Account"), before + 2, "applied once, not duplicated by a retry");

    // An upsert may be repeated: the executor retries it.
    let sent = client.requests_sent();
    let err = client.collections_upsert("Invoice__c", "Invoice_Number__c", &rows(json!([{"Invoice_Number__c": "L-1"}]))).await;
    assert_eq!(client.requests_sent() - sent, 5, "retried up to the policy's attempts");
    assert_eq!(err.unwrap_err().class(), ErrorClass::Retryable);
    sim.state.faults.set(FaultConfig::default(), 3);
}

#[tokio::test]
async fn a_soap_fault_is_classified_by_its_code() {
    let sim = sim().await;
    let client = client(&sim, 3).await;
    sim.state.auth.expire_all();
    let err = client.undelete(&["001000000000000AAA"]).await.unwrap_err();
    assert!(matches!(&err.error, SalesforceError::SoapFault { code, .. } if code == "INVALID_SESSION_ID"), "{err}");
    assert_eq!(err.class(), ErrorClass::Auth);
}

#[test]
fn request_debug_holds_no_values() {
    let secret_name = "Jane Q. Customer";
    let requests = [
        Request::post_json("/services/data/v66.0/composite/sobjects", json!({"records": [{"Name": secret_name}]})),
        Request::get("/services/data/v66.0/query").query("q", format!("SELECT Id FROM Contact WHERE Name = '{secret_name}'")),
        Request::raw(reqwest::Method::PUT, "/x/batches", "text/csv", format!("Name\n{secret_name}\n").into()),
        Request::soap(
            "/services/Soap/u/66.0",
            "undelete",
            format!("<urn:undelete><urn:ids>{secret_name}</urn:ids></urn:undelete>"),
        ),
        Request::get(format!("/services/data/v66.0/query?q={secret_name}")).header("X-Custom", secret_name),
    ];
    for req in requests {
        let shown = format!("{req:?}");
        assert!(!shown.contains("Jane"), "{shown}");
        assert!(shown.contains("/services") || shown.contains("/x/batches"), "{shown}");
    }
}
