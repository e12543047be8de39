//! What a restore does to each selected record: the records' state at the instant (the lake's
//! `as_of`), compared with their state now.
//!
//! | record now | restore |
//! |---|---|
//! | live in the lake | update the fields whose value differs from the instant's |
//! | deleted in the lake, live in Salesforce (restored since the last sync) | the same, against Salesforce's values |
//! | in the recycle bin, object `undeletable` | `undelete()`, then update what differs |
//! | purged (or the object cannot be undeleted) | re-create with the instant's createable values; the new Id goes to the Id map |
//! | created after the instant | untouched: a restore sets records back, it does not delete |
//!
//! Lookup values are written through the Id map (see [`crate::id_map`]), so a record whose
//! parent was re-created points at the parent's new Id.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value as J;
use tidemark_lake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use tidemark_lake::arrow::datatypes::Schema;
use tidemark_lake::datafusion::prelude::SessionContext;
use tidemark_salesforce::SalesforceClient;
use tidemark_salesforce::describe::SObjectDescribe;
use tidemark_salesforce::write::Record;

use crate::error::{PushError, Result};
use crate::id_map::IdMap;
use crate::records::{RecordEncoder, convertible};

/// The in-memory tables a restore's queries join.
pub const ID_MAP_RELATION: &str = "__tm_restore_id_map";
pub const IDS_RELATION: &str = "__tm_restore_ids";
const NOW_PREFIX: &str = "__tm_now_";
const RESTORED_AS: &str = "__tm_restored_as";

/// The fields a restore writes, as (lake column, field as the describe spells it).
#[derive(Debug, Clone, Default)]
pub struct Fields {
    /// Set back on records that exist: updateable fields (those of `--fields` when given).
    pub update: Vec<(String, String)>,
    /// Sent when a record is re-created: every createable field the lake holds.
    pub create: Vec<(String, String)>,
    /// Lookup fields, whose values go through the Id map.
    pub references: HashSet<String>,
}

/// The fields of `describe` the lake's columns hold, checked against `only` (`--fields`).
pub fn fields(describe: &SObjectDescribe, columns: &Schema, only: Option<&[String]>) -> Result<Fields> {
    let object = &describe.name;
    let invalid = |message: String| PushError::Restore { object: object.clone(), message };
    let column_of = |field: &str| {
        columns
            .fields()
            .iter()
            .find(|c| c.name().eq_ignore_ascii_case(field) && convertible(c.data_type()))
            .map(|c| c.name().clone())
    };
    if let Some(only) = only {
        for name in only {
            let field = describe.field(name).ok_or_else(|| invalid(format!("--fields: {object} has no field {name}")))?;
            if !field.updateable {
                return Err(invalid(format!("--fields: {object}.{} cannot be updated, so it cannot be restored", field.name)));
            }
            if column_of(&field.name).is_none() {
                return Err(invalid(format!("--fields: the lake holds no values of {object}.{}", field.name)));
            }
        }
    }
    let mut out = Fields::default();
    for field in &describe.fields {
        let Some(column) = column_of(&field.name) else { continue };
        if field.name.eq_ignore_ascii_case("Id") {
            continue;
        }
        if !field.reference_to.is_empty() {
            out.references.insert(field.name.clone());
        }
        let chosen = only.is_none_or(|only| only.iter().any(|f| f.eq_ignore_ascii_case(&field.name)));
        if field.updateable && chosen {
            out.update.push((column.clone(), field.name.clone()));
        }
        if field.createable {
            out.create.push((column, field.name.clone()));
        }
    }
    if out.update.is_empty() && out.create.is_empty() {
        return Err(invalid("the lake holds no field of it that can be written".to_owned()));
    }
    Ok(out)
}

/// Which records of the instant a restore takes.
#[derive(Debug, Clone)]
pub struct Selection {
    pub as_of: DateTime<Utc>,
    /// A predicate over the instant's columns (lower-case names, as `tidemark sql` shows them).
    pub where_sql: Option<String>,
    /// Whether [`IDS_RELATION`] is registered: only the Ids it lists.
    pub ids: bool,
}

/// A record deleted since the instant (as far as the lake knows).
#[derive(Debug, Clone)]
pub struct Gone {
    /// The record's Id at the instant.
    pub old_id: String,
    /// The Id it lives under now (a re-created record's new Id).
    pub target: String,
    /// The instant's values of the fields to update (lookups not yet through the Id map).
    pub update: Record,
    /// The instant's non-null createable values (lookups not yet through the Id map).
    pub create: Record,
}

/// A live record whose fields differ from the instant's.
#[derive(Debug, Clone)]
pub struct Changed {
    pub old_id: String,
    pub target: String,
    /// `Id` and the fields to set back.
    pub record: Record,
    /// Lookups written with a re-created record's new Id.
    pub relinked: u64,
}

/// The query of the instant's selected records, joined to the Id map and the live relation.
fn query(relation: &str, selection: &Selection, columns: &[String], live: bool, now: &[(String, String)]) -> String {
    let instant = selection.as_of.format("%Y-%m-%dT%H:%M:%S%.6fZ");
    let mut select: Vec<String> = columns.iter().map(|c| format!("t.\"{c}\"")).collect();
    select.push(format!("m.new_id AS {RESTORED_AS}"));
    if live {
        select.extend(now.iter().map(|(c, _)| format!("n.\"{c}\" AS \"{NOW_PREFIX}{c}\"")));
    }
    let predicate = selection.where_sql.as_deref().map(|w| format!(" WHERE ({w})")).unwrap_or_default();
    let ids = if selection.ids { format!(" AND t.id IN (SELECT id FROM {IDS_RELATION})") } else { String::new() };
    format!(
        "SELECT {} FROM (SELECT * FROM as_of('{relation}', TIMESTAMP '{instant}'){predicate}) AS t \
         LEFT JOIN {ID_MAP_RELATION} AS m ON t.id = m.old_id \
         LEFT JOIN \"{relation}\" AS n ON n.id = coalesce(m.new_id, t.id) \
         WHERE n.id IS {} NULL{ids} ORDER BY t.id",
        select.join(", "),
        if live { "NOT" } else { "" },
    )
}

/// A batch's record Id and Id-map columns as plain strings (the scan may give any of Arrow's
/// string types), converted once per batch.
struct BatchIds {
    ids: ArrayRef,
    restored_as: ArrayRef,
}

impl BatchIds {
    fn new(batch: &RecordBatch) -> Result<BatchIds> {
        let utf8 = |name: &str| {
            let column = batch.column_by_name(name).expect("the restore query selects it");
            tidemark_lake::arrow::compute::cast(column, &tidemark_lake::arrow::datatypes::DataType::Utf8)
        };
        Ok(BatchIds { ids: utf8("id")?, restored_as: utf8(RESTORED_AS)? })
    }

    /// Row `row`'s Id at the instant, and the Id it lives under now.
    fn of(&self, row: usize) -> (String, String) {
        let old_id = self.ids.as_string::<i32>().value(row).to_owned();
        let restored = self.restored_as.as_string::<i32>();
        let target = if restored.is_null(row) { old_id.clone() } else { restored.value(row).to_owned() };
        (old_id, target)
    }
}

/// The selected records deleted since the instant, as far as the lake knows.
pub async fn deleted_since(ctx: &SessionContext, relation: &str, selection: &Selection, fields: &Fields) -> Result<Vec<Gone>> {
    let columns = query_columns(fields);
    let batches = ctx.sql(&query(relation, selection, &columns, false, &[])).await?.collect().await?;
    let mut out = Vec::new();
    for batch in batches {
        let update = RecordEncoder::new(relation, &batch.schema(), &fields.update)?.prepare(&batch)?;
        let create = RecordEncoder::new(relation, &batch.schema(), &fields.create)?.prepare(&batch)?;
        let ids = BatchIds::new(&batch)?;
        for row in 0..batch.num_rows() {
            let (old_id, target) = ids.of(row);
            let mut create = create.record(row)?;
            create.retain(|_, v| !v.is_null());
            out.push(Gone { old_id, target, update: update.record(row)?, create });
        }
    }
    Ok(out)
}

/// The selected live records whose update fields differ from the instant's (lookups compared
/// through the Id map), with how many were equal.
pub async fn changed_since(
    ctx: &SessionContext,
    relation: &str,
    selection: &Selection,
    fields: &Fields,
    map: &IdMap,
) -> Result<(Vec<Changed>, u64)> {
    use futures::TryStreamExt;

    let columns = query_columns(fields);
    let mut stream = ctx.sql(&query(relation, selection, &columns, true, &fields.update)).await?.execute_stream().await?;
    let now_columns: Vec<(String, String)> = fields.update.iter().map(|(c, f)| (format!("{NOW_PREFIX}{c}"), f.clone())).collect();
    let (mut out, mut unchanged) = (Vec::new(), 0);
    while let Some(batch) = stream.try_next().await? {
        let then = RecordEncoder::new(relation, &batch.schema(), &fields.update)?.prepare(&batch)?;
        let now = RecordEncoder::new(relation, &batch.schema(), &now_columns)?.prepare(&batch)?;
        let ids = BatchIds::new(&batch)?;
        for row in 0..batch.num_rows() {
            let (old_id, target) = ids.of(row);
            let mut wanted = then.record(row)?;
            let relinked = relink(&mut wanted, &fields.references, map);
            let record = differences(&target, &wanted, &now.record(row)?);
            match record {
                Some(record) => out.push(Changed { old_id, target, record, relinked }),
                None => unchanged += 1,
            }
        }
    }
    Ok((out, unchanged))
}

/// The columns a restore reads of the instant: `id` and every field it may write.
fn query_columns(fields: &Fields) -> Vec<String> {
    let mut columns = vec!["id".to_owned()];
    for (c, _) in fields.update.iter().chain(&fields.create) {
        if !columns.contains(c) {
            columns.push(c.clone());
        }
    }
    columns
}

/// `Id` and the fields of `wanted` whose value differs from `now`'s; `None` when none does.
pub fn differences(id: &str, wanted: &Record, now: &Record) -> Option<Record> {
    let mut record = Record::new();
    for (field, value) in wanted {
        if !same_value(value, now.get(field).unwrap_or(&J::Null)) {
            record.insert(field.clone(), value.clone());
        }
    }
    if record.is_empty() {
        return None;
    }
    record.insert("Id".to_owned(), J::String(id.to_owned()));
    Some(record)
}

/// Writes the lookups of `record` through the Id map; how many pointed at a re-created record.
pub fn relink(record: &mut Record, references: &HashSet<String>, map: &IdMap) -> u64 {
    let mut relinked = 0;
    for field in references {
        if let Some(J::String(id)) = record.get_mut(field) {
            let resolved = map.resolve(id);
            if resolved != id.as_str() {
                *id = resolved.to_owned();
                relinked += 1;
            }
        }
    }
    relinked
}

/// Whether two values of one field are the same value: the lake's values and Salesforce's
/// JSON spell some differently (a decimal's text and its number, `…Z` and `…+0000`, no value
/// and an empty text).
pub fn same_value(a: &J, b: &J) -> bool {
    let blank = |v: &J| v.is_null() || v.as_str() == Some("");
    if blank(a) || blank(b) {
        return blank(a) && blank(b);
    }
    if a == b {
        return true;
    }
    if a.is_number() || b.is_number() {
        let number = |v: &J| v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse::<f64>().ok()));
        if let (Some(x), Some(y)) = (number(a), number(b)) {
            return (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0);
        }
        return false;
    }
    let instant = |v: &J| {
        let s = v.as_str()?;
        DateTime::parse_from_rfc3339(s).or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")).ok()
    };
    matches!((instant(a), instant(b)), (Some(x), Some(y)) if x == y)
}

/// A record as Salesforce holds it now.
#[derive(Debug, Clone)]
pub enum OrgState {
    Live(Record),
    InRecycleBin(Record),
}

/// The records of `ids` as Salesforce holds them (queryAll, so the recycle bin too), with the
/// given fields; an Id absent from the answer was purged or never existed.
pub async fn org_states(
    client: &SalesforceClient,
    object: &str,
    ids: &[String],
    fields: &[&str],
) -> Result<HashMap<String, OrgState>> {
    let mut select = vec!["IsDeleted"];
    select.extend(fields.iter().filter(|f| !f.eq_ignore_ascii_case("IsDeleted")));
    let found = crate::dry_run::current(client, object, "Id", ids, &select, true).await?;
    Ok(found
        .into_iter()
        .map(|(id, mut record)| {
            let deleted = record.remove("IsDeleted").and_then(|v| v.as_bool()).unwrap_or(false);
            (id, if deleted { OrgState::InRecycleBin(record) } else { OrgState::Live(record) })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_spelled_differently_by_the_lake_and_salesforce_are_the_same() {
        assert!(same_value(&json!("12.50"), &json!(12.5)));
        assert!(same_value(&json!(null), &json!("")));
        assert!(same_value(&json!("2025-01-06T09:00:00.000Z"), &json!("2025-01-06T09:00:00.000+0000")));
        assert!(!same_value(&json!("2025-01-06T09:00:00.000Z"), &json!("2025-01-06T09:00:01.000+0000")));
        assert!(!same_value(&json!("007"), &json!("7")), "texts are compared as texts");
        assert!(!same_value(&json!("Gold"), &json!(null)));
        assert!(!same_value(&json!(true), &json!(false)));
        assert!(!same_value(&json!(1.0), &json!(1.5)));
    }

    #[test]
    fn differences_name_only_the_fields_to_set_back() {
        let wanted = Record::from_iter([("Name".to_owned(), json!("Acme")), ("Rating".to_owned(), json!("Hot"))]);
        let now = Record::from_iter([("Name".to_owned(), json!("Acme")), ("Rating".to_owned(), json!("Cold"))]);
        let d = differences("001", &wanted, &now).unwrap();
        assert_eq!(J::Object(d), json!({"Id": "001", "Rating": "Hot"}));
        assert!(differences("001", &wanted, &wanted).is_none());
    }
}
