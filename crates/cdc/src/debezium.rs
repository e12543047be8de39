//! Debezium change events, one JSON value per line (as Kafka Connect's S3 sink writes them with
//! the JSON converter), with or without the Connect schema (`schemas.enable`).
//!
//! - The envelope: `op` is `c` (insert), `u` (update), `d` (delete), `r` (a snapshot read, kept
//!   as a copied version) or `t` (truncate); the row image is `after`, for a delete `before`.
//! - The table is `source.schema` (or `source.db`) and `source.table`.
//! - `_version_at` is the commit time: `source.ts_us`, else `source.ts_ns`, else
//!   `source.ts_ms` (Debezium before 2.6, milliseconds only).
//! - `_lsn` is `source.lsn` where the connector reports one (PostgreSQL), else the event's
//!   place in the files.
//! - Tombstones (a `null` value, or an empty line) are skipped; `__debezium_unavailable_value`
//!   marks a value the lake fills from the record's previous version.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};
use tidemark_lake::arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, TimestampMicrosecondArray};
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema};
use tidemark_lake::columns::{DELETED, LSN, VERSION_AT, timestamp_type};
use tidemark_lake::source::{CaptureKind, TableSpec, Versions};

use crate::error::CdcError;
use crate::json_values::Conv;
use crate::segments::{Item, ROW_BITS, Segment, Tables};

/// A table's fields with their conversions.
type Fields = Arc<Vec<(String, Conv)>>;

struct Event {
    table: String,
    /// The source's `schema.table`, for the key and error messages.
    qualified: (String, String),
    op: u8,
    at: i64,
    lsn: i64,
    line: usize,
    image: Map<String, Value>,
    fields: Option<Fields>,
}

/// Reads one file of events. `ordinal` numbers the file among the source's files; `inferred`
/// keeps, per table, the fields inferred from earlier files of schema-less events (a column
/// null throughout one file keeps its earlier type).
pub fn parse(
    bytes: &[u8],
    label: &str,
    ordinal: i64,
    tables: &Tables,
    inferred: &mut HashMap<String, Vec<(String, Conv)>>,
) -> Result<Vec<Segment>, CdcError> {
    let mut events = Vec::new();
    for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line_no = index + 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let value: Value = serde_json::from_slice(text)
            .map_err(|e| CdcError::file(label, Some(line_no), format!("not a JSON value (column {})", e.column())))?;
        let lsn_fallback = (ordinal << ROW_BITS) | index as i64;
        if let Some(event) = event(value, tables, lsn_fallback, line_no).map_err(|d| CdcError::file(label, Some(line_no), d))? {
            events.push(event);
        }
    }
    infer_fields(&mut events, inferred);
    segments(events, tables, label)
}

/// One line's event; `None` for a tombstone or a table not kept.
fn event(value: Value, tables: &Tables, lsn_fallback: i64, line: usize) -> Result<Option<Event>, String> {
    let (mut envelope, schema) = match value {
        Value::Null => return Ok(None),
        Value::Object(mut o) if o.contains_key("payload") && o.contains_key("schema") => {
            let schema = o.remove("schema").unwrap_or(Value::Null);
            match o.remove("payload") {
                Some(Value::Object(p)) => (p, Some(schema)),
                Some(Value::Null) => return Ok(None),
                _ => return Err("a payload that is not an object".into()),
            }
        }
        Value::Object(o) => (o, None),
        _ => return Err("an event that is not a JSON object".into()),
    };
    let op = match envelope.get("op").and_then(Value::as_str) {
        Some(op @ ("c" | "u" | "d" | "r" | "t")) => op.as_bytes()[0],
        Some(_) => return Err("an unknown op (expected c, u, d, r or t)".into()),
        None => return Err("an event without its op (is this a Debezium envelope?)".into()),
    };
    let source = envelope.get("source").and_then(Value::as_object).ok_or("an event without its source block")?;
    let text = |k: &str| source.get(k).and_then(Value::as_str);
    let schema_name = text("schema").or_else(|| text("db")).unwrap_or("").to_owned();
    let table_name = text("table").ok_or("a source block without its table")?.to_owned();
    let Some(table) = tables.lake_name(&schema_name, &table_name) else { return Ok(None) };
    let number = |k: &str| source.get(k).and_then(Value::as_i64);
    let at = match (number("ts_us"), number("ts_ns"), number("ts_ms")) {
        (Some(us), _, _) => us,
        (None, Some(ns), _) => ns / 1000,
        (None, None, Some(ms)) => ms * 1000,
        _ => return Err("a source block without its commit time (ts_us, ts_ns or ts_ms)".into()),
    };
    let lsn = number("lsn").unwrap_or(lsn_fallback);
    let side = if op == b'd' { "before" } else { "after" };
    let image = match envelope.remove(side) {
        Some(Value::Object(image)) => image,
        _ if op == b't' => Map::new(),
        Some(Value::Null) | None if op == b'd' => {
            return Err("a delete without its before image (the record's key): check the table's replica identity".into());
        }
        _ => return Err(format!("a change without its {side} image")),
    };
    let fields = match &schema {
        Some(schema) if op != b't' => Some(fields_from_schema(schema, side)?),
        _ => None,
    };
    Ok(Some(Event { table, qualified: (schema_name, table_name), op, at, lsn, line, image, fields }))
}

/// The row's fields from the envelope's Connect schema.
fn fields_from_schema(schema: &Value, side: &str) -> Result<Fields, String> {
    let row = schema
        .get("fields")
        .and_then(Value::as_array)
        .and_then(|f| f.iter().find(|f| f.get("field").and_then(Value::as_str) == Some(side)))
        .and_then(|f| f.get("fields"))
        .and_then(Value::as_array)
        .ok_or_else(|| format!("a schema without the fields of {side}"))?;
    let mut fields = Vec::with_capacity(row.len());
    for f in row {
        let name = f.get("field").and_then(Value::as_str).ok_or("a schema field without its name")?;
        let conv = Conv::from_schema(f).ok_or_else(|| format!("column {name}: a schema type Tidemark cannot read"))?;
        fields.push((name.to_owned(), conv));
    }
    Ok(Arc::new(fields))
}

/// Fields of schema-less events: per table, every column seen in the file, in first-seen
/// order, typed by its values (else its earlier type, else text).
fn infer_fields(events: &mut [Event], inferred: &mut HashMap<String, Vec<(String, Conv)>>) {
    let mut columns: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.fields.is_none() && e.op != b't') {
        let seen = columns.entry(&e.table).or_default();
        for k in e.image.keys() {
            if !seen.contains(k) {
                seen.push(k.clone());
            }
        }
    }
    let mut resolved: HashMap<String, Fields> = HashMap::new();
    for (table, names) in columns {
        let earlier = inferred.get(table);
        let fields: Vec<(String, Conv)> = names
            .into_iter()
            .map(|name| {
                let values = events.iter().filter(|e| e.table == table).filter_map(|e| e.image.get(&name));
                let conv = Conv::infer(values)
                    .or_else(|| earlier.and_then(|f| f.iter().find(|(n, _)| *n == name)).map(|(_, c)| c.clone()))
                    .unwrap_or(Conv::Text);
                (name, conv)
            })
            .collect();
        resolved.insert(table.to_owned(), Arc::new(fields));
    }
    for (table, fields) in &resolved {
        inferred.insert(table.clone(), fields.as_ref().clone());
    }
    for e in events.iter_mut().filter(|e| e.fields.is_none() && e.op != b't') {
        e.fields = resolved.get(&e.table).cloned();
    }
}

/// Versions of one table waiting in a segment: one kind, one definition.
struct Open<'a> {
    kind: CaptureKind,
    fields: Fields,
    rows: Vec<&'a Event>,
}

fn segments(events: Vec<Event>, tables: &Tables, label: &str) -> Result<Vec<Segment>, CdcError> {
    let mut done = Vec::new();
    let mut segment = Segment::default();
    let mut open: BTreeMap<String, Open> = BTreeMap::new();
    let flush = |open: &mut BTreeMap<String, Open>, table: &str, segment: &mut Segment| -> Result<(), CdcError> {
        if let Some(o) = open.remove(table) {
            segment.items.push(Item::Versions(versions(table, o, label)?));
        }
        Ok(())
    };
    let flush_all = |open: &mut BTreeMap<String, Open>, segment: &mut Segment| -> Result<(), CdcError> {
        for (table, o) in std::mem::take(open) {
            segment.items.push(Item::Versions(versions(&table, o, label)?));
        }
        Ok(())
    };
    let mut defined: BTreeMap<String, Fields> = BTreeMap::new();
    for e in &events {
        if e.op == b't' {
            flush(&mut open, &e.table, &mut segment)?;
            if let Some(fields) = defined.get(&e.table).filter(|_| !segment.specs.contains_key(&e.table)) {
                segment.specs.insert(e.table.clone(), spec(e, fields, tables, label)?);
            }
            let at = chrono::DateTime::from_timestamp_micros(e.at)
                .ok_or_else(|| CdcError::file(label, Some(e.line), "a commit time out of range"))?;
            let key = tables.key(&e.qualified.0, &e.qualified.1);
            segment.items.push(Item::Truncate { table: e.table.clone(), at, lsn: e.lsn, key });
            continue;
        }
        let fields = e.fields.clone().expect("resolved for every row event");
        let changed = defined.get(&e.table).is_some_and(|f| f != &fields);
        if changed && segment.specs.contains_key(&e.table) {
            flush_all(&mut open, &mut segment)?;
            done.push(std::mem::take(&mut segment));
        }
        if changed || !segment.specs.contains_key(&e.table) {
            segment.specs.insert(e.table.clone(), spec(e, &fields, tables, label)?);
        }
        defined.insert(e.table.clone(), fields.clone());
        let kind = if e.op == b'r' { CaptureKind::Copy } else { CaptureKind::Change };
        if open.get(&e.table).is_some_and(|o| o.kind != kind) {
            flush(&mut open, &e.table, &mut segment)?;
        }
        open.entry(e.table.clone()).or_insert_with(|| Open { kind, fields, rows: Vec::new() }).rows.push(e);
    }
    flush_all(&mut open, &mut segment)?;
    if !segment.items.is_empty() {
        done.push(segment);
    }
    Ok(done)
}

fn spec(e: &Event, fields: &Fields, tables: &Tables, label: &str) -> Result<TableSpec, CdcError> {
    let key = tables.key(&e.qualified.0, &e.qualified.1);
    for k in &key {
        if !fields.iter().any(|(n, _)| n.eq_ignore_ascii_case(k)) {
            return Err(CdcError::file(
                label,
                Some(e.line),
                format!(
                    "table {}.{} has no key column {k} (set the source's `keys: {{{}.{}: [...]}}`)",
                    e.qualified.0, e.qualified.1, e.qualified.0, e.qualified.1
                ),
            ));
        }
    }
    Ok(TableSpec {
        name: e.table.clone(),
        fields: fields.iter().map(|(n, c)| Field::new(n, c.data_type(), true)).collect(),
        key,
        policies: Vec::new(),
    })
}

fn versions(table: &str, open: Open, label: &str) -> Result<Versions, CdcError> {
    let rows = &open.rows;
    let mut fields = vec![
        Field::new(VERSION_AT, timestamp_type(), false),
        Field::new(DELETED, DataType::Boolean, false),
        Field::new(LSN, DataType::Int64, true),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from(rows.iter().map(|e| e.at).collect::<Vec<_>>()).with_timezone("UTC")),
        Arc::new(BooleanArray::from(rows.iter().map(|e| e.op == b'd').collect::<Vec<_>>())),
        Arc::new(Int64Array::from(rows.iter().map(|e| e.lsn).collect::<Vec<_>>())),
    ];
    let mut unchanged = Vec::new();
    for (name, conv) in open.fields.iter() {
        let mut missing = Vec::new();
        let values: Vec<Option<&Value>> = rows
            .iter()
            .enumerate()
            .map(|(r, e)| {
                let v = e.image.get(name);
                if v.is_some_and(|v| conv.is_unavailable(v)) {
                    missing.push(r as u32);
                    return None;
                }
                v
            })
            .collect();
        let array = conv.build(&values).map_err(|detail| {
            let line = rows.first().map(|e| e.line);
            CdcError::file(label, line, format!("table {table}, column {name}: {detail}"))
        })?;
        fields.push(Field::new(name, conv.data_type(), true));
        columns.push(array);
        if !missing.is_empty() {
            unchanged.push((name.clone(), missing));
        }
    }
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| CdcError::file(label, None, e.to_string()))?;
    Ok(Versions { table: table.to_owned(), kind: open.kind, batch, unchanged, continues: Vec::new() })
}

#[cfg(test)]
mod tests;
