//! The truth dump: the org's actual state as NDJSON, for test oracles that compare what a
//! client replicated with what the org holds.
//!
//! One line per stored record (live and in the recycle bin):
//! `{"type":"record","object":"Account","id":"001…","deleted":false,"fields":{…}}`
//! then one line per change-log event:
//! `{"type":"change","seq":7,"at":"2025-01-06T09:00:00.000+0000","object":"Account","id":"001…","op":"update","fields":{…},"detail":null}`.
//! `fields` holds every stored field with canonical REST formatting and unmasked values (the
//! form of [`Org::truth_record_json`]); it is `null` for hard deletes, purges and schema events.
//!
//! The dump is taken as a snapshot (cheap `Row` clones) and rendered in chunks, so a server
//! streams it without holding the org lock or building one large string.

use std::io::Write;

use serde_json::{Map, Value as J, json};

use crate::org::{ChangeEvent, Org};
use crate::row::Row;
use crate::schema::ObjectDef;
use crate::value::format_datetime_rest;

/// What to include.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthFilter {
    /// Only this object (case-insensitive).
    pub object: Option<String>,
    /// Only change events with a greater `seq`.
    pub since: Option<u64>,
    pub records: bool,
    pub changes: bool,
}

impl Default for TruthFilter {
    fn default() -> Self {
        TruthFilter { object: None, since: None, records: true, changes: true }
    }
}

/// A record's stored fields as the truth dump renders them (same as
/// [`Org::truth_record_json`], without needing the org).
pub fn record_fields_json(def: &ObjectDef, row: &Row) -> J {
    let mut out = Map::new();
    for field in def.fields.iter().filter(|f| f.is_stored()) {
        let slot = field.slot.expect("stored fields have slots");
        out.insert(field.name.clone(), row.get(slot).to_json(field.field_type, field.scale));
    }
    J::Object(out)
}

/// A snapshot of the truth, rendered on demand.
#[derive(Debug)]
pub struct TruthDump {
    tables: Vec<(ObjectDef, Vec<Row>)>,
    events: Vec<ChangeEvent>,
    table: usize,
    row: usize,
    event: usize,
}

impl TruthDump {
    /// Takes the snapshot (call under the org lock; it only clones `Row` handles).
    pub fn snapshot(org: &Org, filter: &TruthFilter) -> TruthDump {
        let wanted = |name: &str| filter.object.as_deref().is_none_or(|o| o.eq_ignore_ascii_case(name));
        let tables = org
            .tables()
            .iter()
            .filter(|t| wanted(&t.def.name))
            .map(|t| (t.def.clone(), if filter.records { t.rows().to_vec() } else { Vec::new() }))
            .collect();
        let since = filter.since.unwrap_or(0);
        let events = if filter.changes {
            let log = org.change_log();
            // seq is 1-based and dense, so `since` indexes straight into the log.
            let start = usize::try_from(since).unwrap_or(usize::MAX).min(log.len());
            log[start..].iter().filter(|e| e.seq > since && wanted(&e.object)).cloned().collect()
        } else {
            Vec::new()
        };
        TruthDump { tables, events, table: 0, row: 0, event: 0 }
    }

    /// Appends whole lines to `buf` until it holds at least `target` bytes or the dump ends.
    /// Returns `false` once there is nothing left to append.
    pub fn fill(&mut self, buf: &mut Vec<u8>, target: usize) -> bool {
        let start = buf.len();
        while buf.len() < target {
            if let Some((def, rows)) = self.tables.get(self.table) {
                let Some(row) = rows.get(self.row) else {
                    self.table += 1;
                    self.row = 0;
                    continue;
                };
                self.row += 1;
                write_record_line(buf, def, row);
            } else if let Some(event) = self.events.get(self.event) {
                self.event += 1;
                let def = self.tables.iter().map(|(d, _)| d).find(|d| *d.name == *event.object);
                write_event_line(buf, event, def);
            } else {
                break;
            }
        }
        buf.len() > start
    }

    /// Writes the whole dump.
    pub fn write_to(mut self, out: &mut impl Write) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(64 * 1024);
        while self.fill(&mut buf, 64 * 1024) {
            out.write_all(&buf)?;
            buf.clear();
        }
        out.flush()
    }
}

fn write_record_line(buf: &mut Vec<u8>, def: &ObjectDef, row: &Row) {
    let id_slot = def.slot("Id");
    let deleted_slot = def.slot("IsDeleted");
    let line = json!({
        "type": "record",
        "object": def.name,
        "id": row.get(id_slot).as_str(),
        "deleted": row.get(deleted_slot).as_bool() == Some(true),
        "fields": record_fields_json(def, row),
    });
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, &line);
    buf.push(b'\n');
}

fn write_event_line(buf: &mut Vec<u8>, e: &ChangeEvent, def: Option<&ObjectDef>) {
    let fields = match (&e.row, def) {
        (Some(row), Some(def)) => record_fields_json(def, row),
        _ => J::Null,
    };
    let op = serde_json::to_value(e.kind).unwrap_or(J::Null);
    let line = json!({
        "type": "change",
        "seq": e.seq,
        "at": format_datetime_rest(e.at_millis),
        "object": &*e.object,
        "id": e.id.map(|id| id.to_string()),
        "op": op,
        "fields": fields,
        "detail": e.detail,
    });
    let _ = serde_json::to_writer(&mut *buf, &line);
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::OrgClock;

    fn org() -> Org {
        let clock = OrgClock::Manual(tidemark_core::ManualClock::new(tidemark_core::ManualClock::default_start()));
        let mut org = Org::new(crate::catalog::standard_objects(), clock);
        crate::generate::generate(
            &mut org,
            &crate::generate::GenerateSpec { seed: 1, accounts: 8, username: "u@example.com".into() },
        );
        org
    }

    fn text(org: &Org, filter: &TruthFilter) -> String {
        let mut out = Vec::new();
        TruthDump::snapshot(org, filter).write_to(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn lines(org: &Org, filter: &TruthFilter) -> Vec<J> {
        text(org, filter).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn records_then_changes_filtered_by_object_and_seq() {
        let mut org = org();
        let all = lines(&org, &TruthFilter::default());
        let records: usize = org.tables().iter().map(|t| t.len()).sum();
        assert_eq!(all.len(), records, "generation leaves the change log empty");
        // Same rendering as the org's own truth_record_json.
        let t = org.table("Account").unwrap();
        let dump = text(&org, &TruthFilter::default());
        let first = dump.lines().find(|l| l.contains("\"object\":\"Account\"")).unwrap();
        let expected = serde_json::to_string(&org.truth_record_json(t, &t.rows()[0])).unwrap();
        assert!(first.contains(&format!("\"fields\":{expected}}}")), "{first}");
        let id = t.id_of(&t.rows()[0]);
        let name = t.def.slot("Name");
        org.update_record(&id, vec![(name, crate::value::Value::str("Renamed"))]).unwrap();
        org.soft_delete(&id).unwrap();
        let changes = lines(&org, &TruthFilter { records: false, ..TruthFilter::default() });
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0]["op"], "update");
        assert_eq!(changes[0]["fields"]["Name"], "Renamed");
        assert_eq!(changes[1]["op"], "delete");
        assert_eq!(changes[1]["at"], "2025-01-06T09:00:00.000+0000");
        let since = lines(&org, &TruthFilter { records: false, since: Some(1), ..TruthFilter::default() });
        assert_eq!(since.len(), 1);
        let contacts = lines(&org, &TruthFilter { object: Some("contact".into()), ..TruthFilter::default() });
        assert!(contacts.iter().all(|l| l["object"] == "Contact"));
        assert_eq!(contacts.len(), org.table("Contact").unwrap().len());
        let deleted = lines(&org, &TruthFilter { object: Some("Account".into()), changes: false, ..TruthFilter::default() });
        assert_eq!(deleted.iter().filter(|l| l["deleted"] == true).count(), 1);
    }
}
