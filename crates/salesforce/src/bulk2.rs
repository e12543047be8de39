//! Bulk API 2.0 query jobs: create, wait with backoff, stream result pages by locator.

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::client::{Request, SalesforceClient};
use crate::error::SalesforceError;

/// Job info fields we read.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryJobInfo {
    pub id: String,
    pub state: String,
    #[serde(default)]
    pub number_records_processed: Option<u64>,
    #[serde(default)]
    pub error_message: Option<String>,
}

/// A Bulk 2.0 query job whose results are read page by page.
#[derive(Debug)]
pub struct BulkQuery<'c> {
    client: &'c SalesforceClient,
    job_id: String,
    locator: Option<String>,
    finished: bool,
    max_records: u64,
}

/// One page of CSV results (header row included, as Salesforce sends it).
#[derive(Debug, Clone)]
pub struct CsvPage {
    pub records: u64,
    pub csv: Bytes,
}

impl SalesforceClient {
    /// Creates a query job (`queryAll` when `include_deleted`) and waits until it completes.
    /// `poll_cap` bounds the wait between status checks.
    pub async fn bulk_query(
        &self,
        soql: &str,
        include_deleted: bool,
        poll_cap: Duration,
    ) -> Result<BulkQuery<'_>, SalesforceError> {
        let operation = if include_deleted { "queryAll" } else { "query" };
        let path = format!("{}/jobs/query", self.data_path());
        let created: QueryJobInfo = self
            .execute(&Request::post_json(path.clone(), json!({ "operation": operation, "query": soql })))
            .await?
            .json("Bulk query job")?;
        let mut wait = Duration::from_millis(50);
        loop {
            let info: QueryJobInfo =
                self.execute(&Request::get(format!("{path}/{}", created.id))).await?.json("Bulk job info")?;
            match info.state.as_str() {
                "JobComplete" => break,
                "Failed" | "Aborted" => {
                    return Err(SalesforceError::BulkJob {
                        job_id: info.id,
                        state: info.state,
                        message: info.error_message.unwrap_or_default(),
                    });
                }
                _ => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(poll_cap.max(Duration::from_millis(50)));
                }
            }
        }
        Ok(BulkQuery { client: self, job_id: created.id, locator: None, finished: false, max_records: 100_000 })
    }
}

impl BulkQuery<'_> {
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// Records per result page (Salesforce may return fewer).
    pub fn max_records(mut self, n: u64) -> Self {
        self.max_records = n.max(1);
        self
    }

    /// The next page of CSV, or `None` after the last one. Each page is retried as a whole, so
    /// a connection dropped mid-page never yields a partial page.
    pub async fn next_page(&mut self) -> Result<Option<CsvPage>, SalesforceError> {
        if self.finished {
            return Ok(None);
        }
        let mut req = Request::get(format!("{}/jobs/query/{}/results", self.client.data_path(), self.job_id))
            .query("maxRecords", self.max_records.to_string())
            .accept("text/csv");
        if let Some(l) = &self.locator {
            req = req.query("locator", l.clone());
        }
        let resp = self.client.execute(&req).await?;
        let records = resp.header("Sforce-NumberOfRecords").and_then(|v| v.parse().ok()).unwrap_or(0);
        match resp.header("Sforce-Locator") {
            Some("null") | None => self.finished = true,
            Some(l) => self.locator = Some(l.to_owned()),
        }
        Ok(Some(CsvPage { records, csv: resp.body }))
    }
}
