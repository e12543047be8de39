//! REST resources: describe, query/queryAll with paging, getDeleted, getUpdated.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value as J};

use crate::client::{Request, SalesforceClient};
use crate::describe::{DescribeGlobal, SObjectDescribe};
use crate::error::SalesforceError;

/// One page of a REST query.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryPage {
    pub total_size: u64,
    pub done: bool,
    #[serde(default)]
    pub next_records_url: Option<String>,
    pub records: Vec<Map<String, J>>,
}

/// One page of a REST query with each record's JSON kept as sent, so numbers keep every
/// digit (decimal money must not pass through `f64`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawQueryPage {
    pub total_size: u64,
    pub done: bool,
    #[serde(default)]
    pub next_records_url: Option<String>,
    pub records: Vec<Box<serde_json::value::RawValue>>,
}

/// Walks a query's pages. Each `next_page` is one API call.
#[derive(Debug)]
pub struct QueryPager<'c> {
    client: &'c SalesforceClient,
    next: Option<Request>,
    batch_size: Option<u32>,
}

impl QueryPager<'_> {
    /// Asks for pages of `n` records (200–2000). Salesforce treats it as a hint.
    pub fn batch_size(mut self, n: u32) -> Self {
        self.batch_size = Some(n.clamp(200, 2000));
        self
    }

    /// The next page, or `None` when the query is exhausted.
    pub async fn next_page(&mut self) -> Result<Option<QueryPage>, SalesforceError> {
        let Some(req) = self.next_request() else { return Ok(None) };
        let page: QueryPage = self.client.execute(&req).await?.json("query page")?;
        self.follow(page.done, page.next_records_url.as_deref());
        Ok(Some(page))
    }

    /// Like [`next_page`](Self::next_page), records left as raw JSON.
    pub async fn next_raw_page(&mut self) -> Result<Option<RawQueryPage>, SalesforceError> {
        let Some(req) = self.next_request() else { return Ok(None) };
        let page: RawQueryPage = self.client.execute(&req).await?.json("query page")?;
        self.follow(page.done, page.next_records_url.as_deref());
        Ok(Some(page))
    }

    fn next_request(&mut self) -> Option<Request> {
        let mut req = self.next.take()?;
        if let Some(n) = self.batch_size {
            req = req.header("Sforce-Query-Options", format!("batchSize={n}"));
        }
        Some(req)
    }

    fn follow(&mut self, done: bool, next_records_url: Option<&str>) {
        if !done {
            self.next = next_records_url.map(|url| Request::get(url.to_owned()));
        }
    }
}

/// `getDeleted` result.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedRecords {
    pub deleted_records: Vec<DeletedRecord>,
    pub earliest_date_available: String,
    pub latest_date_covered: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedRecord {
    pub id: String,
    pub deleted_date: String,
}

/// `getUpdated` result.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatedRecords {
    pub ids: Vec<String>,
    pub latest_date_covered: String,
}

fn window(start: DateTime<Utc>, end: DateTime<Utc>) -> [(String, String); 2] {
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string();
    [("start".to_owned(), fmt(start)), ("end".to_owned(), fmt(end))]
}

impl SalesforceClient {
    pub async fn describe_global(&self) -> Result<DescribeGlobal, SalesforceError> {
        self.execute(&Request::get(format!("{}/sobjects", self.data_path()))).await?.json("describeGlobal")
    }

    pub async fn describe(&self, object: &str) -> Result<SObjectDescribe, SalesforceError> {
        self.execute(&Request::get(format!("{}/sobjects/{object}/describe", self.data_path()))).await?.json("describe")
    }

    /// Pages of `soql`; `include_deleted` uses queryAll (recycle-bin records included).
    pub fn query(&self, soql: &str, include_deleted: bool) -> QueryPager<'_> {
        let resource = if include_deleted { "queryAll" } else { "query" };
        QueryPager {
            client: self,
            next: Some(Request::get(format!("{}/{resource}", self.data_path())).query("q", soql)),
            batch_size: None,
        }
    }

    pub async fn get_deleted(
        &self,
        object: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<DeletedRecords, SalesforceError> {
        let mut req = Request::get(format!("{}/sobjects/{object}/deleted/", self.data_path()));
        req.query.extend(window(start, end));
        self.execute(&req).await?.json("getDeleted")
    }

    pub async fn get_updated(
        &self,
        object: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<UpdatedRecords, SalesforceError> {
        let mut req = Request::get(format!("{}/sobjects/{object}/updated/", self.data_path()));
        req.query.extend(window(start, end));
        self.execute(&req).await?.json("getUpdated")
    }
}
