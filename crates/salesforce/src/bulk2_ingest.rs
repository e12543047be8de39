//! Bulk API 2.0 ingest jobs (`/jobs/ingest`): insert, update, upsert, delete.
//!
//! A job is created (CSV, `lineEnding` LF, `columnDelimiter` COMMA), its CSV uploaded in one
//! `PUT …/batches` (`text/csv`), marked `UploadComplete`, polled with backoff until `JobComplete`,
//! `Failed` or `Aborted`, and its `successfulResults/`, `failedResults/` and
//! `unprocessedrecords/` are matched back to the input rows (see [`crate::ingest_plan`]).
//!
//! # Contract
//!
//! - **Per-row results, never raised.** Rows Salesforce refuses are [`RowOutcome::Failed`] with
//!   the `sf__Error` parsed into code, message and fields; rows of a job that ended `Failed` or
//!   `Aborted` before reaching them are [`RowOutcome::NotProcessed`] (safe to send again). A
//!   job's own failure is in its [`IngestJobInfo`] (`state`, `error_message`).
//! - **Crash safety.** Processing starts only at `UploadComplete`. Record a job's id as soon as
//!   it exists (the callback of [`SalesforceClient::bulk_ingest`], or the steps
//!   [`SalesforceClient::create_ingest_job`] then [`SalesforceClient::run_planned_job`]); after a
//!   crash, rebuild the same [`IngestPlan`] and call [`SalesforceClient::resume_planned_job`] with
//!   the recorded id: an `Open` job is aborted (nothing of it was processed: send it again), any
//!   other is waited for and its results read, never sent twice.
//! - **Retries.** Each call goes through [`SalesforceClient::execute`]. The upload is not safe to
//!   repeat (a second `PUT` appends the rows again), so a lost upload answer is never retried on
//!   the same job: the job is aborted (it never processes) and, in `bulk_ingest`, the data goes to
//!   a fresh job. Row errors (including `UNABLE_TO_LOCK_ROW`) are returned, not re-sent.
//! - **Idempotency.** Update, upsert and delete jobs may be re-run; an insert job re-run inserts
//!   again. Resume by job id instead.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::client::{Request, SalesforceClient};
use crate::error::{ErrorClass, SalesforceError};
use crate::ingest_plan::{IngestOperation, IngestPlan, IngestSpec, PlannedJob};
use crate::write::RowOutcome;

/// Ingest job info (the fields Tidemark reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestJobInfo {
    pub id: String,
    /// `Open`, `UploadComplete`, `InProgress`, `JobComplete`, `Failed`, `Aborted`.
    pub state: String,
    #[serde(default)]
    pub object: Option<String>,
    #[serde(default)]
    pub operation: Option<String>,
    #[serde(default)]
    pub external_id_field_name: Option<String>,
    #[serde(default)]
    pub number_records_processed: Option<u64>,
    #[serde(default)]
    pub number_records_failed: Option<u64>,
    #[serde(default)]
    pub error_message: Option<String>,
}

impl IngestJobInfo {
    /// `JobComplete`, `Failed` or `Aborted`.
    pub fn is_terminal(&self) -> bool {
        matches!(self.state.as_str(), "JobComplete" | "Failed" | "Aborted")
    }
}

/// What one job did: the job's final info and one `(input row, outcome)` per row it carried.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub info: IngestJobInfo,
    pub outcomes: Vec<(usize, RowOutcome)>,
}

/// The result of [`SalesforceClient::bulk_ingest`]: every job that ran (in plan order, with the
/// final info of each) and one outcome per input row, in input order.
#[derive(Debug, Clone)]
pub struct IngestReport {
    pub jobs: Vec<IngestJobInfo>,
    pub outcomes: Vec<RowOutcome>,
}

impl SalesforceClient {
    fn ingest_path(&self, job_id: Option<&str>) -> String {
        match job_id {
            Some(id) => format!("{}/jobs/ingest/{id}", self.data_path()),
            None => format!("{}/jobs/ingest", self.data_path()),
        }
    }

    /// Creates an `Open` job. Nothing is processed until [`close_ingest_job`](Self::close_ingest_job).
    pub async fn create_ingest_job(&self, spec: &IngestSpec) -> Result<IngestJobInfo, SalesforceError> {
        let mut body = json!({
            "object": spec.object,
            "operation": spec.operation.api_name(),
            "contentType": "CSV",
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
        });
        if let IngestOperation::Upsert { external_id_field } = &spec.operation {
            body["externalIdFieldName"] = json!(external_id_field);
        }
        self.execute(&Request::post_json(self.ingest_path(None), body)).await?.json("Bulk ingest job")
    }

    /// Uploads CSV data to an `Open` job. Not repeated after a lost answer (a repeat would append
    /// the rows twice): that failure is [`SalesforceError::OutcomeUnknown`]; abort the job then.
    pub async fn upload_ingest_data(&self, job_id: &str, csv: Bytes) -> Result<(), SalesforceError> {
        let path = format!("{}/batches/", self.ingest_path(Some(job_id)));
        let req = Request::raw(reqwest::Method::PUT, path, "text/csv", csv).non_idempotent();
        self.execute(&req).await.map(drop)
    }

    /// Marks the upload complete: Salesforce starts processing. A repeat of a request that did
    /// pass (its answer lost) is refused by Salesforce; the job's state then shows it passed.
    pub async fn close_ingest_job(&self, job_id: &str) -> Result<IngestJobInfo, SalesforceError> {
        let req = Request::patch_json(self.ingest_path(Some(job_id)), json!({ "state": "UploadComplete" }));
        match self.execute(&req).await {
            Ok(resp) => resp.json("Bulk ingest job"),
            Err(e) if e.class() == ErrorClass::InvalidRequest => {
                let info = self.ingest_job_info(job_id).await?;
                if info.state == "Open" { Err(e) } else { Ok(info) }
            }
            Err(e) => Err(e),
        }
    }

    /// Aborts a job (records already processed stay written).
    pub async fn abort_ingest_job(&self, job_id: &str) -> Result<IngestJobInfo, SalesforceError> {
        let req = Request::patch_json(self.ingest_path(Some(job_id)), json!({ "state": "Aborted" }));
        self.execute(&req).await?.json("Bulk ingest job")
    }

    pub async fn ingest_job_info(&self, job_id: &str) -> Result<IngestJobInfo, SalesforceError> {
        self.execute(&Request::get(self.ingest_path(Some(job_id)))).await?.json("Bulk ingest job")
    }

    /// Polls until the job is `JobComplete`, `Failed` or `Aborted` (a `Failed` job is returned,
    /// not raised: its rows have outcomes). Waits grow from 50 ms to `poll_cap`.
    pub async fn wait_ingest_job(&self, job_id: &str, poll_cap: Duration) -> Result<IngestJobInfo, SalesforceError> {
        let mut wait = Duration::from_millis(50);
        loop {
            let info = self.ingest_job_info(job_id).await?;
            if info.is_terminal() {
                return Ok(info);
            }
            if info.state == "Open" {
                return Err(SalesforceError::BulkJob {
                    job_id: info.id,
                    state: info.state,
                    message: "the job is still Open: its upload was never completed".into(),
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(poll_cap.max(Duration::from_millis(50)));
        }
    }

    /// One result file of a job: `successfulResults`, `failedResults` or `unprocessedrecords`.
    pub async fn ingest_job_results(&self, job_id: &str, file: &str) -> Result<Bytes, SalesforceError> {
        let req = Request::get(format!("{}/{file}/", self.ingest_path(Some(job_id)))).accept("text/csv");
        Ok(self.execute(&req).await?.body)
    }

    /// Reads a finished job's three result files and matches them to `job`'s rows.
    pub async fn planned_job_outcomes(
        &self,
        plan: &IngestPlan,
        job: &PlannedJob,
        info: IngestJobInfo,
    ) -> Result<JobOutcome, SalesforceError> {
        let ok = self.ingest_job_results(&info.id, "successfulResults").await?;
        let failed = self.ingest_job_results(&info.id, "failedResults").await?;
        let unprocessed = self.ingest_job_results(&info.id, "unprocessedrecords").await?;
        let nothing = info.number_records_processed.unwrap_or(0) == 0;
        let outcomes = plan.match_results(job, &ok, &failed, &unprocessed, nothing)?;
        Ok(JobOutcome { info, outcomes })
    }

    /// Runs planned job `job` on the created, `Open` job `job_id`: upload, complete, wait, read
    /// and match results. If the upload fails the job is aborted (best effort: an `Open` job
    /// never processes anyway) and the error returned; its rows can then be sent again in a new
    /// job. If the job's state cannot be known after a failed completion it is left as is:
    /// [`resume_planned_job`](Self::resume_planned_job) sorts it out.
    pub async fn run_planned_job(
        &self,
        plan: &IngestPlan,
        job: &PlannedJob,
        job_id: &str,
    ) -> Result<JobOutcome, SalesforceError> {
        self.start_planned_job(job, job_id).await.map_err(|(e, _)| e)?;
        let info = self.wait_ingest_job(job_id, plan.options.poll_cap).await?;
        self.planned_job_outcomes(plan, job, info).await
    }

    /// Upload and `UploadComplete`. On failure, the flag says the job is known not to process
    /// (it was aborted, or is still `Open`), so its rows may go to a new job.
    async fn start_planned_job(&self, job: &PlannedJob, job_id: &str) -> Result<(), (SalesforceError, bool)> {
        let abort = async || {
            if let Err(e) = self.abort_ingest_job(job_id).await {
                tracing::warn!(job_id, error = %e, "aborting an unfinished ingest job failed (an Open job never processes)");
            }
        };
        if let Err(e) = self.upload_ingest_data(job_id, job.csv.clone()).await {
            abort().await;
            return Err((e, true));
        }
        match self.close_ingest_job(job_id).await {
            Ok(_) => Ok(()),
            Err(e) => match self.ingest_job_info(job_id).await {
                Ok(info) if info.state == "Open" => {
                    abort().await;
                    Err((e, true))
                }
                // The completion passed after all (its answer was lost): the job runs.
                Ok(_) => Ok(()),
                Err(_) => Err((e, false)),
            },
        }
    }

    /// Picks up planned job `job` from a job created earlier (its id recorded before a crash).
    /// `None`: the job was still `Open`, so nothing of it was processed; it is aborted now and its
    /// rows must be sent again (e.g. with [`run_planned_job`](Self::run_planned_job) on a new
    /// job). Otherwise the job is waited for and its outcomes read; nothing is sent again.
    pub async fn resume_planned_job(
        &self,
        plan: &IngestPlan,
        job: &PlannedJob,
        job_id: &str,
    ) -> Result<Option<JobOutcome>, SalesforceError> {
        let info = self.ingest_job_info(job_id).await?;
        if info.state == "Open" {
            self.abort_ingest_job(job_id).await?;
            return Ok(None);
        }
        let info = if info.is_terminal() { info } else { self.wait_ingest_job(job_id, plan.options.poll_cap).await? };
        self.planned_job_outcomes(plan, job, info).await.map(Some)
    }

    /// Runs every job of `plan`, one after the other. `on_created` is awaited with each job's id
    /// as soon as the job exists, before any data is uploaded: record it there (durably) to
    /// resume after a crash; an error from it stops the run before the upload. A job whose
    /// upload failed transiently (or whose answer was lost) is aborted and its rows go to a new
    /// job (announced to `on_created` too), up to the retry policy's attempts.
    ///
    /// On error, the outcomes of jobs already run are not returned: read them again with
    /// [`resume_planned_job`](Self::resume_planned_job) and the recorded ids.
    pub async fn bulk_ingest<F, Fut, E>(&self, plan: &IngestPlan, mut on_created: F) -> Result<IngestReport, E>
    where
        F: FnMut(&PlannedJob, &IngestJobInfo) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: From<SalesforceError>,
    {
        let mut outcomes = vec![RowOutcome::NotProcessed; plan.row_count()];
        let mut jobs = Vec::with_capacity(plan.jobs().len());
        let max_attempts = self.config().retry.max_attempts.max(1);
        for job in plan.jobs() {
            let mut attempt = 1;
            let job_id = loop {
                let created = self.create_ingest_job(&plan.spec).await?;
                on_created(job, &created).await?;
                match self.start_planned_job(job, &created.id).await {
                    Ok(()) => break created.id,
                    Err((e, unprocessed)) if unprocessed && attempt < max_attempts && worth_new_job(&e) => {
                        tracing::warn!(job = job.index, attempt, error = %e, "ingest upload failed; sending the rows in a new job");
                        tokio::time::sleep(self.config().retry.backoff(attempt, None)).await;
                        attempt += 1;
                    }
                    Err((e, _)) => return Err(e.into()),
                }
            };
            let info = self.wait_ingest_job(&job_id, plan.options.poll_cap).await?;
            let done = self.planned_job_outcomes(plan, job, info).await?;
            for (row, outcome) in done.outcomes {
                outcomes[row] = outcome;
            }
            jobs.push(done.info);
        }
        Ok(IngestReport { jobs, outcomes })
    }
}

/// Whether an upload failure is worth a new job: a transient failure or a lost answer (quota,
/// auth and bad requests would fail again).
fn worth_new_job(e: &SalesforceError) -> bool {
    matches!(e.class(), ErrorClass::Retryable | ErrorClass::OutcomeUnknown)
}
