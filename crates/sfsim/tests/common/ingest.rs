//! Running a Bulk API 2.0 ingest job end to end over HTTP and reading its result files.

use serde_json::Value as J;

use super::TestOrg;

/// Creates a job from `job` (the create-job JSON), uploads `csv`, closes it and waits for a
/// terminal state. Returns the job id and its final info.
pub async fn run_job(org: &TestOrg, job: J, csv: &str) -> (String, J) {
    let resp = org.post("/jobs/ingest").json(&job).send().await.expect("create job");
    assert_eq!(resp.status(), 200, "create ingest job");
    let created: J = resp.json().await.expect("job JSON");
    let id = created["id"].as_str().expect("job id").to_owned();
    upload(org, &id, csv).await;
    let resp = org
        .patch(&format!("/jobs/ingest/{id}"))
        .json(&serde_json::json!({"state": "UploadComplete"}))
        .send()
        .await
        .expect("close");
    assert_eq!(resp.status(), 200, "close");
    for _ in 0..5000 {
        let info = org.get_json(&format!("/jobs/ingest/{id}"), 200).await;
        if matches!(info["state"].as_str(), Some("JobComplete" | "Failed" | "Aborted")) {
            return (id, info);
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    panic!("job {id} did not finish");
}

/// Uploads `csv` as the job's data: 201 Created with an empty body.
pub async fn upload(org: &TestOrg, id: &str, csv: &str) {
    let resp = org
        .put(&format!("/jobs/ingest/{id}/batches"))
        .header("Content-Type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .expect("upload");
    assert_eq!(resp.status(), 201, "upload");
    assert!(resp.text().await.expect("upload answer").is_empty());
}

/// One of a job's result files (`successfulResults`, `failedResults`, `unprocessedrecords`).
pub async fn result_csv(org: &TestOrg, id: &str, kind: &str) -> String {
    let resp = org.get(&format!("/jobs/ingest/{id}/{kind}/")).header("Accept", "text/csv").send().await.expect("results");
    assert_eq!(resp.status(), 200);
    resp.text().await.expect("CSV")
}

/// The data lines of a result file (header dropped).
pub async fn result_rows(org: &TestOrg, id: &str, kind: &str) -> Vec<String> {
    result_csv(org, id, kind).await.lines().skip(1).map(str::to_owned).collect()
}
