//! Projection of result rows: REST JSON records (nested parents, AggregateResult) and Bulk CSV
//! lines. These run once per returned row, so they avoid per-field allocations where they can.

use serde_json::{Map, Value as J};
use tidemark_core::FieldType;

use super::ast::AggFn;
use super::plan::{AggColumn, AggKind, FieldLookup, FieldPath, OutNode, follow};
use crate::org::read::FieldValue;
use crate::org::{ObjectTable, Org};
use crate::row::Row;
use crate::schema::FieldDef;
use crate::value::{ValueRef, format_datetime_bulk};

const MASK: &str = "************";

/// How a projected record writes its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// REST JSON: datetimes `2022-01-02T17:38:59.000+0000`.
    Rest,
    /// Bulk API 1.0 JSON results: dates and datetimes as epoch milliseconds (dates at midnight
    /// UTC), as clients such as dlt's Salesforce source expect when they divide them by 1000.
    Bulk1Json,
    /// Bulk API 1.0 XML results: datetimes with a trailing `Z`.
    Bulk1Xml,
}

impl RecordFormat {
    fn field_json(self, org: &Org, table: &ObjectTable, row: &Row, field: &FieldDef) -> J {
        if self != RecordFormat::Rest && matches!(field.field_type, FieldType::Date | FieldType::Datetime) {
            match (self, org.field_value(table, row, field).as_ref()) {
                (RecordFormat::Bulk1Json, ValueRef::DateTime(ms)) => return J::from(ms),
                (RecordFormat::Bulk1Json, ValueRef::Date(days)) => return J::from(i64::from(days) * 86_400_000),
                (RecordFormat::Bulk1Xml, ValueRef::DateTime(ms)) => return J::String(format_datetime_bulk(ms)),
                _ => {}
            }
        }
        org.field_json(table, row, field)
    }
}

/// Appends the fields and parents of `nodes` for `row` of `table` to `out`.
pub fn render_record(org: &Org, version: &str, table: &ObjectTable, row: &Row, nodes: &[OutNode], out: &mut Map<String, J>) {
    render_record_as(org, version, table, row, nodes, RecordFormat::Rest, out);
}

/// [`render_record`] in `format`.
pub fn render_record_as(
    org: &Org,
    version: &str,
    table: &ObjectTable,
    row: &Row,
    nodes: &[OutNode],
    format: RecordFormat,
    out: &mut Map<String, J>,
) {
    for node in nodes {
        match node {
            OutNode::Field { field } => match field.resolve(&table.def) {
                Some(f) => {
                    out.insert(f.name.clone(), format.field_json(org, table, row, f));
                }
                None => {
                    out.insert(field.name.clone(), J::Null);
                }
            },
            OutNode::Parent { key, hop, children } => {
                let parent = match follow(org, table, row, hop) {
                    Some((t, r)) => {
                        let mut m = Map::new();
                        let id = t.id_of(r);
                        m.insert("attributes".into(), Org::attributes_json(version, &t.def.name, Some(id.as_str())));
                        render_record_as(org, version, t, r, children, format, &mut m);
                        J::Object(m)
                    }
                    None => J::Null,
                };
                out.insert(key.clone(), parent);
            }
            OutNode::Children { key, reference, plan } => {
                out.insert(key.clone(), super::child_records(org, version, table, row, reference, plan));
            }
        }
    }
}

/// An AggregateResult record from a synthetic aggregate row (slot `i` = column `i`).
pub fn render_aggregate(row: &Row, columns: &[AggColumn]) -> J {
    let mut out = Map::new();
    out.insert("attributes".into(), serde_json::json!({ "type": "AggregateResult" }));
    for (i, col) in columns.iter().enumerate() {
        let v = row.get(i as u16);
        let json = match &col.kind {
            AggKind::Group(path) => v.to_json(path.field_type, path.scale),
            AggKind::Func { func: AggFn::Count | AggFn::CountDistinct, .. } => v.to_json(FieldType::Int, 0),
            AggKind::Func { func: AggFn::Sum | AggFn::Avg, .. } => v.to_json(FieldType::Double, 0),
            AggKind::Func { arg, .. } => v.to_json(arg.field_type, arg.scale),
        };
        out.insert(col.key.clone(), json);
    }
    J::Object(out)
}

/// Appends one quoted CSV line for `row`: every value quoted, `"` doubled, LF-terminated.
pub fn write_csv(org: &Org, table: &ObjectTable, row: &Row, columns: &[FieldPath], out: &mut String) {
    for (i, col) in columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        let value = if col.hops.is_empty() {
            col.field.resolve(&table.def).map(|f| (f, org.field_value(table, row, f)))
        } else {
            let mut at = Some((table, row));
            for hop in &col.hops {
                at = at.and_then(|(t, r)| follow(org, t, r, hop));
            }
            at.and_then(|(t, r)| col.field.resolve(&t.def).map(|f| (f, org.field_value(t, r, f))))
        };
        if let Some((field, v)) = value {
            if field.field_type.is_compound() {
                // Bulk refuses compound fields before it gets here.
            } else if field.encrypted && !v.as_ref().is_null() {
                out.push_str(MASK);
            } else {
                write_csv_value(v, field.field_type, field.scale, out);
            }
        }
        out.push('"');
    }
    out.push('\n');
}

/// Decodes rows once into a slot-indexed buffer, so that reading many fields of a row costs one
/// scan of its encoding instead of one scan per field.
struct SlotDecoder<'r> {
    decoded: Vec<ValueRef<'r>>,
    /// Slots set by the previous row: clearing only those is cheaper than clearing them all.
    touched: Vec<usize>,
    /// Decoding stops after this slot (slots are stored in ascending order).
    last_slot: usize,
}

impl<'r> SlotDecoder<'r> {
    fn new(table: &ObjectTable, last_slot: usize) -> SlotDecoder<'r> {
        let slots = usize::from(table.def.next_slot);
        SlotDecoder { decoded: vec![ValueRef::Null; slots], touched: Vec::with_capacity(slots), last_slot }
    }

    fn decode(&mut self, row: &'r Row) {
        for slot in self.touched.drain(..) {
            self.decoded[slot] = ValueRef::Null;
        }
        for (slot, v) in row.iter() {
            let slot = usize::from(slot);
            if slot > self.last_slot {
                break;
            }
            if let Some(cell) = self.decoded.get_mut(slot) {
                *cell = v;
                self.touched.push(slot);
            }
        }
    }

    fn get(&self, slot: usize) -> ValueRef<'r> {
        self.decoded[slot]
    }
}

/// The stored, non-compound field behind a root-row column, if it is one.
fn stored_slot<'d>(table: &'d ObjectTable, field: &FieldLookup) -> Option<(usize, &'d FieldDef)> {
    let f = field.resolve(&table.def)?;
    let slot = f.slot?;
    (!f.field_type.is_compound()).then_some((usize::from(slot), f))
}

/// [`write_csv`] for many rows of one table. Columns that are stored fields of the root row are
/// read from one decode of each row instead of one scan of the encoding per column.
pub fn write_csv_rows(org: &Org, table: &ObjectTable, rows: &[Row], columns: &[FieldPath], out: &mut String) {
    let direct: Vec<Option<(usize, &FieldDef)>> =
        columns.iter().map(|c| if c.hops.is_empty() { stored_slot(table, &c.field) } else { None }).collect();
    if direct.iter().any(Option::is_none) {
        // Parent paths and computed fields: the general per-column path.
        for row in rows {
            write_csv(org, table, row, columns, out);
        }
        return;
    }
    let last_slot = direct.iter().flatten().map(|(slot, _)| *slot).max().unwrap_or(0);
    let mut decoder = SlotDecoder::new(table, last_slot);
    for row in rows {
        decoder.decode(row);
        for (i, (slot, field)) in direct.iter().flatten().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            let v = decoder.get(*slot);
            if field.encrypted && !v.is_null() {
                out.push_str(MASK);
            } else {
                write_csv_value(FieldValue::Stored(v), field.field_type, field.scale, out);
            }
            out.push('"');
        }
        out.push('\n');
    }
}

/// How one key of a REST record is rendered.
enum JsonColumn<'q> {
    /// A stored field of the row itself, read from the decoded slots.
    Slot(usize, &'q FieldDef),
    /// Anything else (formulas, compounds, parents, subqueries, unknown fields): the general path.
    Node(&'q OutNode),
}

/// Appends `rows` as REST query records separated by commas, exactly as
/// [`render_record`] under an `attributes` object renders each one, without building JSON
/// values: the REST query hot path.
pub fn write_json_rows(org: &Org, version: &str, table: &ObjectTable, rows: &[Row], nodes: &[OutNode], out: &mut Vec<u8>) {
    let columns: Vec<(Vec<u8>, JsonColumn<'_>)> = nodes
        .iter()
        .map(|node| {
            let (key, column) = match node {
                OutNode::Field { field } => match stored_slot(table, field) {
                    Some((slot, f)) => (f.name.as_str(), JsonColumn::Slot(slot, f)),
                    None => (field.resolve(&table.def).map_or(field.name.as_str(), |f| f.name.as_str()), JsonColumn::Node(node)),
                },
                OutNode::Parent { key, .. } | OutNode::Children { key, .. } => (key.as_str(), JsonColumn::Node(node)),
            };
            (json_bytes(key), column)
        })
        .collect();
    let id_slot = usize::from(table.def.slot("Id"));
    let last_slot = columns
        .iter()
        .filter_map(|(_, c)| if let JsonColumn::Slot(s, _) = c { Some(*s) } else { None })
        .fold(id_slot, usize::max);
    let type_json = json_bytes(&table.def.name);
    let url_prefix = format!("\"/services/data/v{version}/sobjects/{}/", table.def.name);
    let mut decoder = SlotDecoder::new(table, last_slot);
    let mut scratch = String::new();
    for (i, row) in rows.iter().enumerate() {
        decoder.decode(row);
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"attributes\":{\"type\":");
        out.extend_from_slice(&type_json);
        out.extend_from_slice(b",\"url\":");
        out.extend_from_slice(url_prefix.as_bytes());
        // Ids are alphanumeric: nothing to escape.
        out.extend_from_slice(decoder.get(id_slot).as_str().unwrap_or_default().as_bytes());
        out.extend_from_slice(b"\"}");
        for (key, column) in &columns {
            out.push(b',');
            out.extend_from_slice(key);
            out.push(b':');
            match column {
                JsonColumn::Slot(slot, field) => {
                    let v = decoder.get(*slot);
                    if field.encrypted && !v.is_null() {
                        out.extend_from_slice(b"\"************\"");
                    } else {
                        write_json_value(v, field.field_type, field.scale, &mut scratch, out);
                    }
                }
                JsonColumn::Node(node) => {
                    let mut one = Map::new();
                    render_record(org, version, table, row, std::slice::from_ref(*node), &mut one);
                    let value = one.into_iter().next().map_or(J::Null, |(_, v)| v);
                    // Serialising a JSON value into memory cannot fail.
                    let _ = serde_json::to_writer(&mut *out, &value);
                }
            }
        }
        out.push(b'}');
    }
}

fn json_bytes(s: &str) -> Vec<u8> {
    // Serialising a string into memory cannot fail.
    serde_json::to_vec(s).unwrap_or_default()
}

/// Appends `v` as [`ValueRef::to_json`] renders it for a field of type `ty`.
fn write_json_value(v: ValueRef<'_>, ty: FieldType, scale: u8, scratch: &mut String, out: &mut Vec<u8>) {
    // Writes into a Vec cannot fail.
    match v {
        ValueRef::Null => out.extend_from_slice(b"null"),
        ValueRef::Str(s) => {
            let _ = serde_json::to_writer(&mut *out, s);
        }
        ValueRef::DateTime(ms) => {
            scratch.clear();
            write_datetime(ms, "+0000", scratch);
            push_json_plain_string(scratch, out);
        }
        ValueRef::Date(d) => {
            scratch.clear();
            write_date(d, scratch);
            push_json_plain_string(scratch, out);
        }
        other => {
            let _ = serde_json::to_writer(&mut *out, &other.to_json(ty, scale));
        }
    }
}

/// A string known to need no escaping (digits and punctuation), quoted.
fn push_json_plain_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

fn write_csv_value(v: FieldValue<'_>, ty: FieldType, scale: u8, out: &mut String) {
    match v.as_ref() {
        ValueRef::Null => {}
        ValueRef::Str(s) => push_escaped(s, out),
        ValueRef::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        ValueRef::DateTime(ms) => write_datetime_bulk(ms, out),
        ValueRef::Date(d) => write_date(d, out),
        // Numbers and times never contain a quote: no escaping pass.
        other => other.write_csv_text(ty, scale, out),
    }
}

fn push_escaped(s: &str, out: &mut String) {
    let mut rest = s;
    while let Some(p) = memchr::memchr(b'"', rest.as_bytes()) {
        out.push_str(&rest[..=p]);
        out.push('"');
        rest = &rest[p + 1..];
    }
    out.push_str(rest);
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn push_digits(out: &mut String, n: u32, width: usize) {
    let mut buf = [b'0'; 4];
    let mut n = n;
    for i in (0..width).rev() {
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[..width]).unwrap_or("0"));
}

fn push_date(out: &mut String, y: i64, m: u32, d: u32) {
    push_digits(out, y as u32, 4);
    out.push('-');
    push_digits(out, m, 2);
    out.push('-');
    push_digits(out, d, 2);
}

/// `2022-01-02`
pub fn write_date(days: i32, out: &mut String) {
    let (y, m, d) = civil_from_days(i64::from(days));
    if (0..=9999).contains(&y) {
        push_date(out, y, m, d);
    } else {
        out.push_str(&crate::value::format_date(days));
    }
}

/// `2022-01-02T17:38:59.000Z`, as [`format_datetime_bulk`] renders it, without allocating.
pub fn write_datetime_bulk(ms: i64, out: &mut String) {
    write_datetime(ms, "Z", out);
}

/// `2022-01-02T17:38:59.000` followed by `zone` (`Z` in Bulk CSV, `+0000` in REST JSON).
fn write_datetime(ms: i64, zone: &str, out: &mut String) {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000) as u32;
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        let text = format_datetime_bulk(ms);
        out.push_str(text.strip_suffix('Z').unwrap_or(&text));
        out.push_str(zone);
        return;
    }
    push_date(out, y, m, d);
    out.push('T');
    push_digits(out, in_day / 3_600_000, 2);
    out.push(':');
    push_digits(out, in_day / 60_000 % 60, 2);
    out.push(':');
    push_digits(out, in_day / 1000 % 60, 2);
    out.push('.');
    push_digits(out, in_day % 1000, 3);
    out.push_str(zone);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{format_date, parse_datetime};

    #[test]
    fn fast_formatters_agree_with_the_reference_ones() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2024-02-29T23:59:59.999Z",
            "1969-12-31T23:59:59.001Z",
            "2000-03-01T12:34:56.078Z",
            "1600-02-29T00:00:00Z",
        ] {
            let ms = parse_datetime(s).unwrap();
            let mut out = String::new();
            write_datetime_bulk(ms, &mut out);
            assert_eq!(out, format_datetime_bulk(ms), "{s}");
        }
        for days in [-800_000, -1, 0, 59, 11_016, 19_782, 2_932_896] {
            let mut out = String::new();
            write_date(days, &mut out);
            assert_eq!(out, format_date(days), "{days}");
        }
        let mut out = String::new();
        push_escaped("say \"hi\"", &mut out);
        assert_eq!(out, "say \"\"hi\"\"");
    }
}
