//! The partner SOAP API's `undelete()` over raw envelopes: restores from the recycle bin that
//! later syncs see, per-id errors in the WSDL's `UndeleteResult` shape, all-or-none, faults.

use crate::common::TestOrg;
use quick_xml::events::Event;
use reqwest::Method;
use serde_json::{Value as J, json};
use tidemark_core::SfId;

fn envelope(session_id: Option<&str>, all_or_none: bool, ids: &[&str]) -> String {
    let mut header = String::new();
    if let Some(s) = session_id {
        header.push_str(&format!("<urn:SessionHeader><urn:sessionId>{s}</urn:sessionId></urn:SessionHeader>"));
    }
    if all_or_none {
        header.push_str("<urn:AllOrNoneHeader><urn:allOrNone>true</urn:allOrNone></urn:AllOrNoneHeader>");
    }
    let ids: String = ids.iter().map(|id| format!("<urn:ids>{id}</urn:ids>")).collect();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">
  <soapenv:Header>{header}</soapenv:Header>
  <soapenv:Body><urn:undelete>{ids}</urn:undelete></soapenv:Body>
</soapenv:Envelope>"#
    )
}

async fn soap(org: &TestOrg, body: String) -> (u16, String) {
    let resp = org
        .http
        .post(org.url("/services/Soap/u/66.0"))
        .header("content-type", "text/xml; charset=utf-8")
        .header("SOAPAction", "undelete")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    if status == 200 {
        assert_eq!(resp.headers()["content-type"], "text/xml;charset=UTF-8");
    }
    (status, resp.text().await.unwrap())
}

/// One `UndeleteResult`: its id (none when `xsi:nil`), success, and `(statusCode, message,
/// fields)` per error, read by element name like a SOAP client.
#[derive(Debug, PartialEq)]
struct Result {
    id: Option<String>,
    success: bool,
    errors: Vec<(String, String, Vec<String>)>,
}

fn results(xml: &str) -> Vec<Result> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out: Vec<Result> = Vec::new();
    let mut path: Vec<String> = Vec::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => {
                let name = String::from_utf8(e.local_name().as_ref().to_vec()).unwrap();
                if name == "result" {
                    out.push(Result { id: None, success: false, errors: Vec::new() });
                }
                if name == "errors" {
                    out.last_mut().unwrap().errors.push((String::new(), String::new(), Vec::new()));
                }
                path.push(name);
            }
            Event::Empty(e) => {
                let name = String::from_utf8(e.local_name().as_ref().to_vec()).unwrap();
                assert!(name != "id" || e.try_get_attribute("xsi:nil").unwrap().is_some(), "an empty id is nil");
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let text = t.unescape().unwrap().into_owned();
                let r = out.last_mut();
                match (path.iter().rev().nth(1).map(String::as_str), path.last().map(String::as_str), r) {
                    (Some("result"), Some("id"), Some(r)) => r.id = Some(text),
                    (Some("result"), Some("success"), Some(r)) => r.success = text == "true",
                    (Some("errors"), Some(field), Some(r)) => {
                        let e = r.errors.last_mut().unwrap();
                        match field {
                            "statusCode" => e.0 = text,
                            "message" => e.1 = text,
                            "fields" => e.2.push(text),
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

fn ok(id: &str) -> Result {
    Result { id: Some(id.to_owned()), success: true, errors: Vec::new() }
}

fn failed(id: Option<&str>, code: &str, message: &str) -> Result {
    Result { id: id.map(str::to_owned), success: false, errors: vec![(code.to_owned(), message.to_owned(), Vec::new())] }
}

async fn create(org: &TestOrg, object: &str, body: J) -> String {
    let resp = org.post(&format!("/sobjects/{object}")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 201, "create {object}");
    resp.json::<J>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

async fn delete(org: &TestOrg, object: &str, id: &str) {
    assert_eq!(org.delete(&format!("/sobjects/{object}/{id}")).send().await.unwrap().status(), 204);
}

fn window(org: &TestOrg) -> String {
    let now = org.sim.state.org.read().clock().now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| {
        t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string().replace(':', "%3A").replace('+', "%2B")
    };
    format!("start={}&end={}", fmt(now - chrono::Duration::minutes(10)), fmt(now + chrono::Duration::minutes(1)))
}

#[tokio::test]
async fn undelete_restores_records_that_later_syncs_see_and_reports_each_failure() {
    let mut org = TestOrg::start_empty().await;
    let purged = create(&org, "Account", json!({"Name": "Purged"})).await;
    delete(&org, "Account", &purged).await;
    org.advance_clock(chrono::Duration::days(16));
    assert!(org.sim.state.org.read().was_removed(&SfId::parse(&purged).unwrap()), "the 15-day purge ran");

    let restored = create(&org, "Account", json!({"Name": "Restored Co", "Industry": "Energy", "AnnualRevenue": 1250000})).await;
    let child = create(&org, "Subscription__c", json!({"Account__c": restored, "Plan__c": "Starter", "Seats__c": 12})).await;
    let other = create(&org, "Account", json!({"Name": "Other"})).await;
    let live = create(&org, "Account", json!({"Name": "Live"})).await;
    let before = org.get_json(&format!("/sobjects/Account/{restored}"), 200).await;
    org.advance_clock(chrono::Duration::minutes(5));
    delete(&org, "Account", &restored).await;
    delete(&org, "Account", &other).await;
    assert_eq!(org.get(&format!("/sobjects/Subscription__c/{child}")).send().await.unwrap().status(), 404, "cascaded");
    org.advance_clock(chrono::Duration::minutes(5));
    let seq = org.sim.state.org.read().change_log().len();

    let never = SfId::from_parts("001", "Dn", 999_999).to_string();
    let ids = [restored.as_str(), &other[..15], purged.as_str(), live.as_str(), never.as_str(), "001nope", child.as_str()];
    let (status, xml) = soap(&org, envelope(Some(&org.token), false, &ids)).await;
    assert_eq!(status, 200, "{xml}");
    assert_eq!(
        results(&xml),
        vec![
            ok(&restored),
            ok(&other),
            failed(Some(&purged), "UNDELETE_FAILED", "Entity is not in the recycle bin"),
            failed(Some(&live), "UNDELETE_FAILED", "Entity is not in the recycle bin"),
            failed(None, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"),
            failed(None, "MALFORMED_ID", "malformed id 001nope"),
            ok(&child),
        ]
    );
    // The partner WSDL's element order: errors*, id, success; Error = fields*, message, statusCode.
    assert!(xml.contains(&format!("<undeleteResponse><result><id>{restored}</id><success>true</success></result>")), "{xml}");
    assert!(xml.contains(&format!(
        r#"<result><errors><fields xsi:nil="true"/><message>Entity is not in the recycle bin</message><statusCode>UNDELETE_FAILED</statusCode></errors><id>{live}</id><success>false</success></result>"#
    )));
    assert!(
        xml.contains(r#"<statusCode>MALFORMED_ID</statusCode></errors><id xsi:nil="true"/><success>false</success></result>"#)
    );
    assert!(xml.contains("<LimitInfoHeader><limitInfo><current>"), "{xml}");

    // Back with its id and values, and a new SystemModstamp and LastModifiedDate.
    let after = org.get_json(&format!("/sobjects/Account/{restored}"), 200).await;
    for f in ["Name", "Industry", "AnnualRevenue", "CreatedDate", "CreatedById", "OwnerId"] {
        assert_eq!(after[f], before[f], "{f}");
    }
    assert_eq!(after["IsDeleted"], false);
    let now = tidemark_sfsim::value::format_datetime_rest(org.sim.state.org.read().stamp_millis());
    assert_eq!(after["SystemModstamp"], now.as_str());
    assert_eq!(after["LastModifiedDate"], now.as_str());
    assert_eq!(org.get_json(&format!("/sobjects/Subscription__c/{child}"), 200).await["Seats__c"], 12.0);

    // What a later sync reads: queryAll, getUpdated, getDeleted and the change log.
    let q = format!("SELECT Id, IsDeleted FROM Account WHERE Id IN ('{restored}', '{other}')");
    let all = org.get_json(&format!("/queryAll?q={}", q.replace(' ', "+")), 200).await;
    assert!(all["records"].as_array().unwrap().iter().all(|r| r["IsDeleted"] == false), "{all}");
    let updated = org.get_json(&format!("/sobjects/Account/updated/?{}", window(&org)), 200).await;
    let ids: Vec<&str> = updated["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(ids.contains(&restored.as_str()) && ids.contains(&other.as_str()), "{updated}");
    let deleted = org.get_json(&format!("/sobjects/Account/deleted/?{}", window(&org)), 200).await;
    assert_eq!(deleted["deletedRecords"], json!([]), "no longer in the delete log");
    let changes = org.truth_lines(&format!("?records=false&since={seq}")).await;
    let undeletes: Vec<(&str, &str)> = changes.iter().map(|c| (c["op"].as_str().unwrap(), c["id"].as_str().unwrap())).collect();
    assert_eq!(undeletes, vec![("undelete", restored.as_str()), ("undelete", child.as_str()), ("undelete", other.as_str())]);
    assert_eq!(changes[0]["fields"]["Name"], "Restored Co");
}

#[tokio::test]
async fn undelete_refusals_all_or_none_lock_faults_and_sessions() {
    let org = TestOrg::start_empty().await;
    // Objects whose describe says undeletable: false refuse.
    assert_eq!(org.get_json("/sobjects/CampaignMember/describe", 200).await["undeletable"], false);
    assert_eq!(org.get_json("/sobjects/Account/describe", 200).await["undeletable"], true);
    let campaigns = org.get_json("/query?q=SELECT+Id+FROM+Campaign+LIMIT+1", 200).await;
    let campaign = campaigns["records"][0]["Id"].as_str().unwrap().to_owned();
    let lead = create(&org, "Lead", json!({"LastName": "Lee", "Company": "Leads Inc"})).await;
    let member = create(&org, "CampaignMember", json!({"CampaignId": campaign, "LeadId": lead})).await;
    delete(&org, "CampaignMember", &member).await;
    // A detail record cannot come back while its master is in the recycle bin.
    let master = create(&org, "Account", json!({"Name": "Master"})).await;
    let detail = create(&org, "Subscription__c", json!({"Account__c": master})).await;
    delete(&org, "Account", &master).await;
    // A unique value taken while the record was in the recycle bin.
    let old = create(&org, "Invoice__c", json!({"Invoice_Number__c": "INV-1"})).await;
    delete(&org, "Invoice__c", &old).await;
    let new = create(&org, "Invoice__c", json!({"Invoice_Number__c": "INV-1"})).await;
    let (_, xml) = soap(&org, envelope(Some(&org.token), false, &[&member, &detail, &old])).await;
    assert_eq!(
        results(&xml),
        vec![
            failed(Some(&member), "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", "Entity type is not undeletable"),
            failed(Some(&detail), "ENTITY_IS_DELETED", "entity is deleted"),
            failed(
                Some(&old),
                "DUPLICATE_VALUE",
                &format!("duplicate value found: Invoice_Number__c duplicates value on record with id: {}", &new[..15])
            ),
        ]
    );

    // All or none: one failure rolls the others back.
    let log = org.sim.state.org.read().change_log().len();
    let (_, xml) = soap(&org, envelope(Some(&org.token), true, &[&master, &lead])).await;
    let rolled_back = "Record rolled back because not all records were valid and the request was using AllOrNone header";
    assert_eq!(
        results(&xml),
        vec![
            failed(Some(&master), "ALL_OR_NONE_OPERATION_ROLLED_BACK", rolled_back),
            failed(Some(&lead), "UNDELETE_FAILED", "Entity is not in the recycle bin")
        ]
    );
    assert_eq!(org.sim.state.org.read().change_log().len(), log, "nothing happened");
    assert_eq!(org.get(&format!("/sobjects/Account/{master}")).send().await.unwrap().status(), 404);

    // Row-lock faults apply per id.
    org.admin_call(Method::PUT, "/faults", Some(json!({"lock_row_ids": [master], "lock_row_id_failures": 1})), 200).await;
    let (_, xml) = soap(&org, envelope(Some(&org.token), false, &[&master])).await;
    let message = format!("unable to obtain exclusive access to this record or 1 records: {master}");
    assert_eq!(results(&xml), vec![failed(Some(&master), "UNABLE_TO_LOCK_ROW", &message)]);
    let (_, xml) = soap(&org, envelope(Some(&org.token), false, &[&master, &detail])).await;
    assert_eq!(results(&xml), vec![ok(&master), ok(&detail)]);

    // Sessions: missing or unknown is the INVALID_SESSION_ID fault.
    for session in [None, Some("00Dbogus!session")] {
        let (status, xml) = soap(&org, envelope(session, false, &[&master])).await;
        assert_eq!(status, 500);
        assert!(xml.contains("<faultcode>sf:INVALID_SESSION_ID</faultcode>"), "{xml}");
        assert!(
            xml.contains("<sf:exceptionMessage>Invalid Session ID found in SessionHeader: Illegal Session</sf:exceptionMessage>")
        );
    }
    // The call counts against the daily allocation.
    org.admin_call(Method::PUT, "/limits", Some(json!({"max": 10, "used": 10})), 200).await;
    let (status, xml) = soap(&org, envelope(Some(&org.token), false, &[&master])).await;
    assert_eq!(status, 500);
    assert!(xml.contains("<faultcode>sf:REQUEST_LIMIT_EXCEEDED</faultcode>"), "{xml}");
}
