//! Reading query results page by page from Bulk API 2.0 or REST.

use std::time::Duration;

use tidemark_lake::arrow::array::RecordBatch;
use tidemark_lake::arrow::datatypes::SchemaRef;
use tidemark_salesforce::bulk2::{BulkQuery, CsvPage};
use tidemark_salesforce::rest::{QueryPager, RawQueryPage};
use tidemark_salesforce::{ErrorClass, SalesforceClient};

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tidemark_lake::arrow::array::{AsArray, BooleanArray};
use tidemark_lake::arrow::compute::filter_record_batch;
use tidemark_lake::arrow::error::ArrowError;
use tidemark_lake::policy::ColumnPolicies;

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
    /// The page after the one being decoded, fetched meanwhile.
    ahead: Option<Page>,
    pub api: Api,
    /// Applied to each page as it is decoded: no value escapes its field's policy.
    policies: ColumnPolicies,
    suppressed: Suppressed,
}

/// Records erased from the lake that a read leaves out (see `tidemark_lake::suppression`),
/// and how many it left out.
#[derive(Debug, Clone, Default)]
pub struct Suppressed {
    pub ids: Arc<HashSet<String>>,
    pub count: Arc<AtomicU64>,
}

impl Suppressed {
    fn filter(&self, batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
        let Some(column) = batch.column_by_name("Id").filter(|_| !self.ids.is_empty()) else { return Ok(batch) };
        let ids = tidemark_lake::arrow::compute::cast(column, &tidemark_lake::arrow::datatypes::DataType::Utf8)?;
        let ids = ids.as_string::<i32>();
        let keep: BooleanArray = ids.iter().map(|id| Some(!id.is_some_and(|id| self.ids.contains(id)))).collect();
        let kept = filter_record_batch(&batch, &keep)?;
        self.count.fetch_add((batch.num_rows() - kept.num_rows()) as u64, Ordering::Relaxed);
        Ok(kept)
    }
}

enum Source<'c> {
    Bulk(BulkQuery<'c>),
    Rest(QueryPager<'c>),
}

/// One fetched, not yet decoded page.
enum Page {
    Bulk(CsvPage),
    Rest(RawQueryPage),
}

impl Source<'_> {
    async fn fetch(&mut self) -> Result<Option<Page>, SyncError> {
        Ok(match self {
            Source::Bulk(job) => job.next_page().await?.map(Page::Bulk),
            Source::Rest(pager) => pager.next_raw_page().await?.map(Page::Rest),
        })
    }
}

impl Page {
    fn decode(&self, schema: &SchemaRef) -> Result<Vec<RecordBatch>, tidemark_lake::arrow::error::ArrowError> {
        match self {
            Page::Bulk(page) => csv_batches(&page.csv, schema),
            Page::Rest(page) => json_batches(&page.records, schema),
        }
    }
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
                    return Ok(Extraction {
                        object: object.to_owned(),
                        schema,
                        source: Source::Bulk(job.max_records(page_records)),
                        ahead: None,
                        api: Api::Bulk,
                        policies: ColumnPolicies::none(),
                        suppressed: Suppressed::default(),
                    });
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
            source: Source::Rest(client.query(soql, include_deleted).batch_size(2000)),
            ahead: None,
            api: Api::Rest,
            policies: ColumnPolicies::none(),
            suppressed: Suppressed::default(),
        })
    }

    /// Applies `policies` to every page (see [`ColumnPolicies::apply`]).
    pub fn with_policies(mut self, policies: ColumnPolicies) -> Extraction<'c> {
        self.policies = policies;
        self
    }

    /// Leaves out the suppressed records (counting them).
    pub fn with_suppressed(mut self, suppressed: Suppressed) -> Extraction<'c> {
        self.suppressed = suppressed;
        self
    }

    /// The next page's records as Arrow batches, `None` when done. Decoding runs on the blocking
    /// pool so a large page never stalls other objects' I/O, and the next page is fetched
    /// meanwhile: the org renders (or the network carries) one page while we parse the other.
    /// Two pages are in memory at a time, besides the one the caller is writing.
    pub async fn next(&mut self) -> Result<Option<Vec<RecordBatch>>, SyncError> {
        let page = match self.ahead.take() {
            Some(page) => page,
            None => match self.source.fetch().await? {
                Some(page) => page,
                None => return Ok(None),
            },
        };
        let schema = self.schema.clone();
        let (policies, suppressed) = (self.policies.clone(), self.suppressed.clone());
        let decoding = tokio::task::spawn_blocking(move || {
            page.decode(&schema)?
                .into_iter()
                .map(|batch| policies.apply(&suppressed.filter(batch)?))
                .collect::<Result<Vec<_>, _>>()
        });
        let (fetched, decoded) = tokio::join!(self.source.fetch(), decoding);
        let batches = decoded
            .expect("page decoding does not panic")
            .map_err(|e| SyncError::Convert { object: self.object.clone(), source: e })?;
        self.ahead = fetched?;
        Ok(Some(batches))
    }
}
