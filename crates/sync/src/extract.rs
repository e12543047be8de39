//! Reading query results page by page from Bulk API 2.0 or REST.

use std::time::Duration;

use tidemark_lake::arrow::array::RecordBatch;
use tidemark_lake::arrow::datatypes::SchemaRef;
use tidemark_salesforce::bulk2::BulkQuery;
use tidemark_salesforce::rest::{QueryPager, RawQueryPage};
use tidemark_salesforce::{ErrorClass, SalesforceClient};

use crate::config::ApiChoice;
use crate::convert::{csv_batches, json_batches};
use crate::error::SyncError;

/// The API an object is read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Bulk,
    Rest,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Bulk => "bulk",
            Api::Rest => "rest",
        }
    }
}

/// A query being read.
pub struct Extraction<'c> {
    object: String,
    schema: SchemaRef,
    source: Source<'c>,
    pub api: Api,
}

enum Source<'c> {
    Bulk(BulkQuery<'c>),
    Rest {
        pager: QueryPager<'c>,
        /// The page after the one being decoded, fetched meanwhile.
        ahead: Option<RawQueryPage>,
    },
}

/// Counts the records a query's WHERE clause matches (one REST call).
pub async fn count(client: &SalesforceClient, object: &str, where_clause: &str, include_deleted: bool) -> Result<u64, SyncError> {
    let soql = format!("SELECT COUNT() FROM {object}{where_clause}");
    let page = client.query(&soql, include_deleted).next_page().await?;
    Ok(page.map_or(0, |p| p.total_size))
}

impl<'c> Extraction<'c> {
    /// Starts `soql`. With [`ApiChoice::Auto`], Bulk when `expected` exceeds `bulk_threshold`;
    /// an object Bulk refuses falls back to REST.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        client: &'c SalesforceClient,
        object: &str,
        soql: &str,
        include_deleted: bool,
        schema: SchemaRef,
        choice: ApiChoice,
        expected: Option<u64>,
        bulk_threshold: u64,
        page_records: u64,
    ) -> Result<Extraction<'c>, SyncError> {
        let want_bulk = match choice {
            ApiChoice::Bulk => true,
            ApiChoice::Rest => false,
            ApiChoice::Auto => expected.is_none_or(|n| n > bulk_threshold),
        };
        if want_bulk {
            match client.bulk_query(soql, include_deleted, Duration::from_secs(5)).await {
                Ok(job) => {
                    tracing::info!(object, api = "bulk", expected, job_id = job.job_id(), "reading with Bulk API 2.0");
                    return Ok(Extraction { object: object.to_owned(), schema, source: Source::Bulk(job.max_records(page_records)), api: Api::Bulk });
                }
                Err(e) if e.class() == ErrorClass::InvalidRequest && choice == ApiChoice::Auto => {
                    tracing::info!(object, error = %e, "Bulk API refused the object; reading with REST");
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            tracing::info!(object, api = "rest", expected, threshold = bulk_threshold, "reading with REST");
        }
        Ok(Extraction {
            object: object.to_owned(),
            schema,
            source: Source::Rest { pager: client.query(soql, include_deleted).batch_size(2000), ahead: None },
            api: Api::Rest,
        })
    }

    /// The next page's records as Arrow batches, `None` when done. Decoding runs on the blocking
    /// pool so a large page never stalls other objects' I/O. A REST page is decoded while the
    /// next one is fetched (two small pages in memory); a Bulk page, up to `page_records` rows,
    /// is not, to keep memory bounded.
    pub async fn next(&mut self) -> Result<Option<Vec<RecordBatch>>, SyncError> {
        let schema = self.schema.clone();
        let object = self.object.clone();
        let convert = |e| SyncError::Convert { object: object.clone(), source: e };
        match &mut self.source {
            Source::Bulk(job) => {
                let Some(page) = job.next_page().await? else { return Ok(None) };
                let batches = tokio::task::spawn_blocking(move || csv_batches(&page.csv, &schema))
                    .await
                    .expect("CSV decoding does not panic")
                    .map_err(convert)?;
                Ok(Some(batches))
            }
            Source::Rest { pager, ahead } => {
                let page = match ahead.take() {
                    Some(page) => page,
                    None => match pager.next_raw_page().await? {
                        Some(page) => page,
                        None => return Ok(None),
                    },
                };
                // REST pages come one after another (each names the next), so the next request
                // goes out while this page decodes: the org renders while we parse.
                let decoding = tokio::task::spawn_blocking(move || json_batches(&page.records, &schema));
                let (fetched, decoded) = tokio::join!(pager.next_raw_page(), decoding);
                let batches = decoded.expect("JSON decoding does not panic").map_err(convert)?;
                *ahead = fetched?;
                Ok(Some(batches))
            }
        }
    }
}
