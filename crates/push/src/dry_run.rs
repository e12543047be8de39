//! A dry run's sample: the first rows of each operation, field by field against the record's
//! current values where a record is known (by `Id`, or by the upsert's external id). Reading
//! them is one query per operation; nothing is written.

use std::collections::HashMap;

use serde_json::Value as J;
use tidemark_salesforce::SalesforceClient;

use crate::error::Result;
use crate::journal::soql_literal;
use crate::mapping::Mapping;
use crate::send::{Operation, OutRow};

/// One field of a sampled row.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleField {
    pub field: String,
    pub value: J,
    /// The record's value now (`None`: no record known, or not read).
    pub current: Option<J>,
}

/// One sampled row.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    pub operation: Operation,
    pub key: String,
    /// The record the row goes to, when known.
    pub id: Option<String>,
    pub fields: Vec<SampleField>,
}

/// Collects the first rows of each operation.
pub struct Sample {
    limit: usize,
    rows: Vec<(Operation, OutRow)>,
}

impl Sample {
    pub fn new(limit: usize) -> Sample {
        Sample { limit, rows: Vec::new() }
    }

    pub fn offer(&mut self, operation: Operation, row: OutRow) {
        if self.rows.iter().filter(|(o, _)| *o == operation).count() < self.limit {
            self.rows.push((operation, row));
        }
    }

    /// The sample, with each row's record read from `object` where it can be found.
    pub async fn with_current_values(self, client: &SalesforceClient, object: &str, mapping: &Mapping) -> Result<Vec<SampleRow>> {
        let fields: Vec<&str> = mapping.columns.iter().map(|(_, f)| f.as_str()).filter(|f| *f != "Id").collect();
        let external = mapping
            .external_id_column
            .as_ref()
            .and_then(|c| mapping.columns.iter().find(|(col, _)| col == c))
            .map(|(_, f)| f.clone());
        let text = |v: Option<&J>| v.and_then(J::as_str).map(str::to_owned);
        let ids: Vec<String> = self.rows.iter().filter_map(|(_, r)| text(r.record.get("Id"))).collect();
        let by_id = current(client, object, "Id", &ids, &fields, false).await?;
        let by_external = match &external {
            Some(field) => {
                let values: Vec<String> = self.rows.iter().filter_map(|(_, r)| text(r.record.get(field))).collect();
                current(client, object, field, &values, &fields, false).await?
            }
            None => HashMap::new(),
        };
        let mut out = Vec::with_capacity(self.rows.len());
        for (operation, row) in self.rows {
            let found = text(row.record.get("Id"))
                .and_then(|id| by_id.get(&id))
                .or_else(|| external.as_ref().and_then(|f| text(row.record.get(f))).and_then(|v| by_external.get(&v)));
            let id = found.and_then(|r| text(r.get("Id"))).or_else(|| text(row.record.get("Id")));
            let fields = row
                .record
                .iter()
                .map(|(field, value)| SampleField {
                    field: field.clone(),
                    value: value.clone(),
                    current: found.map(|r| r.get(field).cloned().unwrap_or(J::Null)),
                })
                .collect();
            out.push(SampleRow { operation, key: row.key, id, fields });
        }
        Ok(out)
    }
}

/// `object`'s records whose `by` field is one of `values`, by that value (with the recycle
/// bin's when `include_deleted`: queryAll).
pub(crate) async fn current(
    client: &SalesforceClient,
    object: &str,
    by: &str,
    values: &[String],
    fields: &[&str],
    include_deleted: bool,
) -> Result<HashMap<String, serde_json::Map<String, J>>> {
    let mut out = HashMap::new();
    if values.is_empty() {
        return Ok(out);
    }
    let mut select: Vec<&str> = vec!["Id"];
    select.extend(fields.iter().filter(|f| !f.eq_ignore_ascii_case("Id")));
    if !select.iter().any(|f| f.eq_ignore_ascii_case(by)) {
        select.push(by);
    }
    for group in values.chunks(100) {
        let list: Vec<String> = group.iter().map(|v| soql_literal(v)).collect();
        let soql = format!("SELECT {} FROM {object} WHERE {by} IN ({})", select.join(", "), list.join(", "));
        let mut pages = client.query(&soql, include_deleted);
        while let Some(page) = pages.next_page().await? {
            for mut record in page.records {
                record.remove("attributes");
                let key = record.get(by).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
                if let Some(key) = key {
                    out.insert(key, record);
                }
            }
        }
    }
    Ok(out)
}
