//! A change oracle kept by the source database itself: triggers record every row change (its
//! `to_jsonb` images) with its transaction, and the commit timestamps Postgres tracks date it.
//! From it comes the history a lake table must hold — every committed version, in order,
//! dated by its commit — in the same canonical text as read back out of the lake, so a test
//! compares the two exactly.
//!
//! Shared by test crates: this crate's tests have it as `common::oracle`; another crate's take
//! it with a `#[path]` module declaration naming this file. It needs only
//! `tokio_postgres`, `serde_json` (with `raw_value`, as the workspace has it), `chrono` and
//! `tidemark_lake`, and nothing from the rest of `common`: keep it that way, and keep its API.
//!
//! **Use.** The server runs with `track_commit_timestamp = on`. [`install`] on tables that are
//! still empty, before the source's first run (a copied row is dated by its copy, which no
//! trigger sees). Commit the workload, sync, then per table: [`shape`], [`changes`],
//! [`expected_history`], [`lake_history`], [`assert_same_history`] — or [`assert_lake_matches`],
//! which does all of it.
//!
//! **What the lake must hold** ([`expected_history`]): an insert is a version; an update is a
//! version, and when it changes the key, first a delete version of the old key; a delete is a
//! delete version; a `TRUNCATE` is a delete version (origin `truncate`) of every record live at
//! that point. Delete versions carry the key columns only (under `REPLICA IDENTITY FULL` the
//! key is every column). Versions are ordered by key, then commit time, then the order of the
//! changes inside the transaction — the lake's `_key, _version_at, _lsn`.
//!
//! **The canonical text of a value** (one rule for the oracle's JSON and the lake's Arrow
//! values, so that equal texts mean equal values):
//! - null — and a column the version lacks (dropped before it, added after it) — is absent
//!   from [`RowVersion::values`];
//! - booleans: `true` / `false`;
//! - numbers (integer, `numeric` as Decimal128, floats): plain decimal digits, no exponent, no
//!   trailing fractional zeros (`1.50` and `1.500000000000000000` are `1.5`; `-0` is `0`);
//!   float NaN and infinities are the strings `"NaN"`, `"Infinity"`, `"-Infinity"`;
//! - text (also uuid, enums, intervals: whatever the lake keeps as text): a JSON string literal;
//! - `date`: `"YYYY-MM-DD"`; `timestamptz`: `"YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00"`, fraction
//!   without trailing zeros — `to_jsonb`'s form, which the triggers run under `TimeZone=UTC`
//!   for; `bytea`: `"\\x<hex>"`;
//! - arrays: `[item,item]` of canonical items (`null` for a null item);
//! - `json` / `jsonb` columns ([`TableShape::json`]): the JSON value itself, compact, object
//!   keys sorted, numbers as above (a JSON `null` is null: `to_jsonb` of a row cannot tell
//!   the two apart);
//! - a canonical text longer than 160 characters is shortened to its first 60 characters, its
//!   length and a hash (readable failures; still exact).
//!
//! A lake column of a later type generation (`qty_v2` after `qty`'s type changed) is the field
//! `qty`: each version's value is the one non-null generation (two are reported as a conflict).
//!
//! Not rendered as the lake renders them: plain `timestamp` columns (to_jsonb prints no offset,
//! the lake stores UTC), `json` values with duplicate keys, and generated columns (the source
//! leaves them out). `_key` follows the lake's rule (the key columns' values as text, a JSON
//! array of them for several) for text, integer, `numeric(p, s)`, boolean, date and uuid key
//! columns.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};

use serde_json::value::RawValue;
use tidemark_lake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use tidemark_lake::arrow::datatypes::{DataType, Date32Type, Int64Type, TimeUnit, TimestampMicrosecondType};
use tidemark_lake::arrow::util::display::array_value_to_string;
use tidemark_lake::{HistoryTable, LakeLocation};

/// Where the oracle lives: its own schema, so a publication of `public.*` never carries it.
pub const TABLE: &str = "oracle.changes";

/// Creates the oracle table and its trigger functions (once per database), and the triggers on
/// `tables` (names as SQL takes them: `items`, `billing.invoices`).
pub async fn install(client: &tokio_postgres::Client, tables: &[&str]) {
    // `SET TimeZone`: `to_jsonb` prints timestamptz values in the session's zone; UTC makes
    // their text one per instant, whoever writes.
    client
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS oracle;
             CREATE TABLE IF NOT EXISTS oracle.changes (seq bigserial PRIMARY KEY, txid bigint NOT NULL, tbl text NOT NULL,
                 op text NOT NULL, before jsonb, after jsonb);
             CREATE OR REPLACE FUNCTION oracle.record_row() RETURNS trigger LANGUAGE plpgsql SET TimeZone = 'UTC' AS $$
             BEGIN
                 INSERT INTO oracle.changes (txid, tbl, op, before, after) VALUES (txid_current(),
                     TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, left(TG_OP, 1),
                     CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END, CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
                 RETURN NULL;
             END $$;
             CREATE OR REPLACE FUNCTION oracle.record_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 INSERT INTO oracle.changes (txid, tbl, op) VALUES (txid_current(), TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, 'T');
                 RETURN NULL;
             END $$;",
        )
        .await
        .expect("create the oracle table and its trigger functions");
    for table in tables {
        client
            .batch_execute(&format!(
                "DROP TRIGGER IF EXISTS tidemark_oracle_rows ON {table};
                 DROP TRIGGER IF EXISTS tidemark_oracle_truncate ON {table};
                 CREATE TRIGGER tidemark_oracle_rows AFTER INSERT OR UPDATE OR DELETE ON {table}
                     FOR EACH ROW EXECUTE FUNCTION oracle.record_row();
                 CREATE TRIGGER tidemark_oracle_truncate AFTER TRUNCATE ON {table}
                     FOR EACH STATEMENT EXECUTE FUNCTION oracle.record_truncate();"
            ))
            .await
            .unwrap_or_else(|e| panic!("oracle triggers on {table}: {e}"));
    }
}

/// One recorded row change (or a `TRUNCATE`).
#[derive(Debug, Clone, PartialEq)]
pub struct OracleChange {
    /// `schema.table`.
    pub table: String,
    /// `I`, `U`, `D`, or `T` (truncate: no images).
    pub op: char,
    /// The top-level transaction (`txid_current()`, epoch included).
    pub txid: i64,
    /// The transaction's commit timestamp, µs since the Unix epoch (UTC).
    pub commit_micros: i64,
    /// Order of the changes within the database (and so within a transaction).
    pub seq: i64,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    /// The images as JSON text: exact where a `Value` is not (its numbers are f64s).
    pub before_text: Option<String>,
    pub after_text: Option<String>,
}

/// Every committed change, in commit order: (commit time, transaction, order within it).
pub async fn changes(client: &tokio_postgres::Client) -> Vec<OracleChange> {
    // `txid_current()` carries the epoch above the 32-bit xid the commit-timestamp lookup takes.
    let rows = client
        .query(
            "SELECT c.seq, c.txid, c.tbl, c.op, c.before::text, c.after::text,
                    (extract(epoch FROM pg_xact_commit_timestamp((c.txid % 4294967296)::text::xid)) * 1000000)::bigint AS at
             FROM oracle.changes c ORDER BY at, c.txid, c.seq",
            &[],
        )
        .await
        .expect("read the oracle");
    rows.iter()
        .map(|r| {
            let commit: Option<i64> = r.get(6);
            let (before_text, after_text): (Option<String>, Option<String>) = (r.get(4), r.get(5));
            let value = |t: &Option<String>| t.as_deref().map(|t| serde_json::from_str(t).expect("jsonb text is JSON"));
            OracleChange {
                seq: r.get(0),
                txid: r.get(1),
                table: r.get(2),
                op: r.get::<_, String>(3).chars().next().expect("an op"),
                commit_micros: commit.expect("a commit timestamp: the server needs track_commit_timestamp = on"),
                before: value(&before_text),
                after: value(&after_text),
                before_text,
                after_text,
            }
        })
        .collect()
}

/// What the comparison needs to know of a table besides its changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableShape {
    /// `schema.table`, as the oracle records it.
    pub table: String,
    /// The record key, as the Postgres source takes it: the primary key, else the replica
    /// identity index, else (`REPLICA IDENTITY FULL`) every column.
    pub key: Vec<String>,
    /// Columns of type `json` or `jsonb`: the lake keeps their text, compared as JSON.
    pub json: Vec<String>,
}

/// The table's shape from the catalog now (`table` as SQL names it). Under `REPLICA IDENTITY
/// FULL` the key is today's columns: compare such a table with no column change after it.
pub async fn shape(client: &tokio_postgres::Client, table: &str) -> TableShape {
    let row = client
        .query_one(
            "SELECT n.nspname || '.' || c.relname, c.oid, c.relreplident::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::text::regclass",
            &[&table],
        )
        .await
        .unwrap_or_else(|e| panic!("table {table}: {e}"));
    let (name, oid, identity): (String, u32, String) = (row.get(0), row.get(1), row.get(2));
    let index_key = |condition: &'static str| async move {
        let sql = format!(
            "SELECT a.attname::text FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indrelid = $1 AND {condition} ORDER BY k.n"
        );
        client.query(&sql, &[&oid]).await.unwrap().iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>()
    };
    let mut key = index_key("i.indisprimary").await;
    if key.is_empty() && identity == "i" {
        key = index_key("i.indisreplident").await;
    }
    let columns = client
        .query(
            "SELECT attname::text, atttypid IN ('json'::regtype, 'jsonb'::regtype) FROM pg_attribute
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            &[&oid],
        )
        .await
        .unwrap();
    if key.is_empty() && identity == "f" {
        key = columns.iter().map(|r| r.get(0)).collect();
    }
    assert!(!key.is_empty(), "table {table} has no key: the source refuses it");
    let json = columns.iter().filter(|r| r.get::<_, bool>(1)).map(|r| r.get(0)).collect();
    TableShape { table: name, key, json }
}

/// One version of one record, in canonical text (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowVersion {
    /// `_key`; `∅` for a null key.
    pub key: String,
    /// `_version_at`: µs since the Unix epoch.
    pub version_at: i64,
    pub deleted: bool,
    /// `_origin`: `change`, or `truncate` for the delete versions of a `TRUNCATE`.
    pub origin: String,
    /// Field → canonical text of its value; null values absent.
    pub values: BTreeMap<String, String>,
}

impl fmt::Display for RowVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let deleted = if self.deleted { " deleted" } else { "" };
        write!(f, "{} @{}{deleted} ({}) {{", self.key, self.version_at, self.origin)?;
        for (i, (k, v)) in self.values.iter().enumerate() {
            write!(f, "{}{k}: {v}", if i == 0 { "" } else { ", " })?;
        }
        write!(f, "}}")
    }
}

/// The versions the lake must hold for `shape.table`, ordered as [`lake_history`] reads them.
pub fn expected_history(changes: &[OracleChange], shape: &TableShape) -> Vec<RowVersion> {
    let mut out: Vec<RowVersion> = Vec::new();
    // Key → the record's live image.
    let mut live: BTreeMap<String, BTreeMap<String, Json>> = BTreeMap::new();
    let image = |text: &Option<String>| -> BTreeMap<String, Json> {
        let raw: BTreeMap<String, Box<RawValue>> =
            serde_json::from_str(text.as_deref().expect("a row change has its image")).expect("a row image is an object");
        raw.iter().map(|(k, v)| (k.clone(), Json::parse(v.get()))).collect()
    };
    let version = |key: &str, image: &BTreeMap<String, Json>, at: i64, deleted: bool, origin: &str| {
        // A delete version carries the key columns only.
        let values = image
            .iter()
            .filter(|(name, _)| !deleted || shape.key.contains(name))
            .filter_map(|(name, value)| value.canonical(false).map(|v| (name.clone(), v)))
            .collect();
        RowVersion { key: key.to_owned(), version_at: at, deleted, origin: origin.to_owned(), values }
    };
    for c in changes.iter().filter(|c| c.table == shape.table) {
        let at = c.commit_micros;
        match c.op {
            'I' => {
                let after = image(&c.after_text);
                let key = key_text(&after, &shape.key);
                out.push(version(&key, &after, at, false, "change"));
                live.insert(key, after);
            }
            'U' => {
                let (before, after) = (image(&c.before_text), image(&c.after_text));
                let (old, new) = (key_text(&before, &shape.key), key_text(&after, &shape.key));
                if old != new {
                    out.push(version(&old, &before, at, true, "change"));
                    live.remove(&old);
                }
                out.push(version(&new, &after, at, false, "change"));
                live.insert(new, after);
            }
            'D' => {
                let before = image(&c.before_text);
                let key = key_text(&before, &shape.key);
                out.push(version(&key, &before, at, true, "change"));
                live.remove(&key);
            }
            'T' => {
                for (key, row) in std::mem::take(&mut live) {
                    out.push(version(&key, &row, at, true, "truncate"));
                }
            }
            other => panic!("unknown oracle op {other}"),
        }
    }
    // Stable: versions of a key with one commit time keep the order of their changes.
    out.sort_by(|a, b| a.key.cmp(&b.key).then(a.version_at.cmp(&b.version_at)));
    out
}

/// `_key` of an image: the key columns' values as text; a JSON array of them for several.
fn key_text(image: &BTreeMap<String, Json>, key: &[String]) -> String {
    let parts: Vec<serde_json::Value> = key
        .iter()
        .map(|k| match image.get(k) {
            None | Some(Json::Null) => serde_json::Value::Null,
            Some(Json::Str(s)) => s.clone().into(),
            // The number as jsonb printed it: `numeric(p, s)` keeps its scale, as the lake does.
            Some(Json::Num(n)) => n.clone().into(),
            Some(Json::Bool(b)) => b.to_string().into(),
            Some(other) => other.canonical(false).unwrap_or_default().into(),
        })
        .collect();
    match parts.as_slice() {
        [serde_json::Value::String(s)] => s.clone(),
        [_] => "∅".to_owned(),
        _ => serde_json::Value::Array(parts).to_string(),
    }
}

/// Every version of a source's lake table (`None` when it does not exist), in canonical text,
/// ordered by `_key, _version_at, _lsn`.
pub async fn lake_history(lake: &LakeLocation, source: &str, table: &str, shape: &TableShape) -> Option<Vec<RowVersion>> {
    let t = HistoryTable::open_source(lake, source, table).await.expect("open the lake table")?;
    let ctx = t.session().await.unwrap();
    let batches: Vec<RecordBatch> =
        t.collect(&ctx, "SELECT * FROM history ORDER BY _key, _version_at, _lsn").await.expect("read the lake table");
    let mut out = Vec::new();
    for b in &batches {
        let column = |name: &str| b.column_by_name(name).unwrap_or_else(|| panic!("lake table {table} without {name}"));
        // Strings may come back as Utf8 or Utf8View, depending on the reader.
        let text = |name: &str, r: usize| {
            let c = column(name);
            c.is_valid(r).then(|| array_value_to_string(c, r).expect("a displayable value"))
        };
        let at = column("_version_at").as_primitive::<TimestampMicrosecondType>();
        let deleted = column("_deleted").as_boolean();
        for r in 0..b.num_rows() {
            let mut values = BTreeMap::new();
            for (field, array) in b.schema().fields().iter().zip(b.columns()) {
                if tidemark_lake::columns::METADATA_COLUMNS.contains(&field.name().as_str()) {
                    continue;
                }
                let (name, _) = tidemark_lake::columns::parse_column_name(field.name());
                let json = shape.json.iter().any(|j| j == name);
                let Some(value) = arrow_canonical(array, r, json) else { continue };
                if let Some(other) = values.insert(name.to_owned(), value.clone()) {
                    values.insert(name.to_owned(), format!("conflict: {other} and {value} in two type generations"));
                }
            }
            out.push(RowVersion {
                key: text("_key", r).unwrap_or_else(|| "∅".to_owned()),
                version_at: at.value(r),
                deleted: deleted.value(r),
                origin: text("_origin", r).expect("an origin"),
                values,
            });
        }
    }
    Some(out)
}

/// Panics with the first difference (and its neighbours) when the histories differ.
pub fn assert_same_history(what: &str, expected: &[RowVersion], lake: &[RowVersion]) {
    if expected == lake {
        return;
    }
    let first = expected.iter().zip(lake).position(|(e, l)| e != l).unwrap_or(expected.len().min(lake.len()));
    let around = |v: &[RowVersion]| -> String {
        let from = first.saturating_sub(2);
        v.iter()
            .enumerate()
            .skip(from)
            .take(5)
            .map(|(i, r)| format!("\n  {}{i}: {r}", if i == first { "> " } else { "  " }))
            .collect()
    };
    let differing = expected.iter().zip(lake).filter(|(e, l)| e != l).count();
    panic!(
        "{what}: the lake's history differs from the oracle's at version {first} ({} expected, {} in the lake, {differing} of the \
         common prefix differ)\nexpected:{}\nlake:{}",
        expected.len(),
        lake.len(),
        around(expected),
        around(lake)
    );
}

/// Compares a source's lake table with the oracle's history of `table` (as SQL names it), and
/// returns how many versions matched.
pub async fn assert_lake_matches(
    client: &tokio_postgres::Client,
    lake: &LakeLocation,
    source: &str,
    lake_table: &str,
    table: &str,
) -> usize {
    let shape = shape(client, table).await;
    let expected = expected_history(&changes(client).await, &shape);
    let actual = lake_history(lake, source, lake_table, &shape).await.unwrap_or_default();
    assert_same_history(&format!("{source}.{lake_table}"), &expected, &actual);
    expected.len()
}

/// A JSON value that keeps numbers as their text (`serde_json::Value` reads them as f64s).
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    fn parse(raw: &str) -> Json {
        let raw = raw.trim();
        fn bad<T>(raw: &str) -> impl FnOnce(serde_json::Error) -> T + '_ {
            move |e| panic!("not JSON ({e}): {raw}")
        }
        match raw.as_bytes().first() {
            None => panic!("empty JSON"),
            Some(b'n') => Json::Null,
            Some(b't') => Json::Bool(true),
            Some(b'f') => Json::Bool(false),
            Some(b'"') => Json::Str(serde_json::from_str(raw).unwrap_or_else(bad(raw))),
            Some(b'[') => {
                let items: Vec<&RawValue> = serde_json::from_str(raw).unwrap_or_else(bad(raw));
                Json::Arr(items.iter().map(|i| Json::parse(i.get())).collect())
            }
            Some(b'{') => {
                let members: BTreeMap<String, &RawValue> = serde_json::from_str(raw).unwrap_or_else(bad(raw));
                Json::Obj(members.into_iter().map(|(k, v)| (k, Json::parse(v.get()))).collect())
            }
            Some(_) => Json::Num(raw.to_owned()),
        }
    }

    /// The canonical text; `None` for a top-level null (`nested`: inside an array or object,
    /// where null is written).
    fn canonical(&self, nested: bool) -> Option<String> {
        let text = match self {
            Json::Null if !nested => return None,
            Json::Null => "null".to_owned(),
            Json::Bool(b) => b.to_string(),
            Json::Num(n) => number(n),
            Json::Str(s) => serde_json::to_string(s).expect("a string serializes"),
            Json::Arr(items) => {
                format!("[{}]", items.iter().map(|i| i.canonical(true).expect("nested")).collect::<Vec<_>>().join(","))
            }
            Json::Obj(members) => format!(
                "{{{}}}",
                members
                    .iter()
                    .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).expect("a key"), v.canonical(true).expect("nested")))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        Some(if nested { text } else { shorten(text) })
    }
}

/// A number's text as plain decimal digits: exponent applied, trailing fractional zeros and
/// a trailing point dropped, `-0` as `0`.
fn number(text: &str) -> String {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().unwrap_or_else(|_| panic!("number {text}"))),
        None => (text, 0),
    };
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    assert!(whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()), "not a number: {text}");
    let digits = format!("{whole}{fraction}");
    // The decimal point's place in `digits`.
    let point = whole.len() as i64 + exponent;
    let (int_part, frac_part) = if point <= 0 {
        (String::new(), format!("{}{digits}", "0".repeat((-point) as usize)))
    } else if point as usize >= digits.len() {
        (format!("{digits}{}", "0".repeat(point as usize - digits.len())), String::new())
    } else {
        (digits[..point as usize].to_owned(), digits[point as usize..].to_owned())
    };
    let int_part = int_part.trim_start_matches('0');
    let frac_part = frac_part.trim_end_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let body = if frac_part.is_empty() { int_part.to_owned() } else { format!("{int_part}.{frac_part}") };
    if negative && body != "0" { format!("-{body}") } else { body }
}

/// Long texts as their start, length and hash: failures stay readable, equality stays exact.
fn shorten(text: String) -> String {
    if text.chars().count() <= 160 {
        return text;
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    let start: String = text.chars().take(60).collect();
    format!("{start}…[{} chars, hash {:016x}]", text.chars().count(), hasher.finish())
}

/// The canonical text of a lake cell; `None` for null. A JSON `null` in a json column is null
/// too: `to_jsonb` of the row cannot tell it from SQL NULL.
fn arrow_canonical(array: &ArrayRef, row: usize, json: bool) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    let text = arrow_text(array, row, json);
    if json && text == "null" {
        return None;
    }
    Some(shorten(text))
}

fn arrow_text(array: &ArrayRef, row: usize, json: bool) -> String {
    let display = || array_value_to_string(array, row).expect("a displayable value");
    let string = |s: &str| serde_json::to_string(s).expect("a string serializes");
    match array.data_type() {
        DataType::Boolean => array.as_boolean().value(row).to_string(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::UInt8 | DataType::UInt16 => display(),
        DataType::UInt32 | DataType::UInt64 | DataType::Decimal128(..) | DataType::Decimal256(..) => number(&display()),
        DataType::Float32 | DataType::Float64 => {
            let v: f64 = display().parse().expect("a float");
            match v {
                v if v.is_nan() => string("NaN"),
                v if v.is_infinite() => string(if v > 0.0 { "Infinity" } else { "-Infinity" }),
                v => number(&format!("{v:e}")),
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let text = display();
            if json { Json::parse(&text).canonical(true).expect("nested") } else { string(&text) }
        }
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(i64::from(days));
            string(&date.format("%Y-%m-%d").to_string())
        }
        DataType::Timestamp(TimeUnit::Microsecond, zone) => {
            let micros = array.as_primitive::<TimestampMicrosecondType>().value(row);
            let at = chrono::DateTime::from_timestamp_micros(micros).expect("a representable instant");
            let mut text = at.format("%Y-%m-%dT%H:%M:%S").to_string();
            let fraction = format!("{:06}", micros.rem_euclid(1_000_000));
            let fraction = fraction.trim_end_matches('0');
            if !fraction.is_empty() {
                text.push('.');
                text.push_str(fraction);
            }
            if zone.is_some() {
                text.push_str("+00:00");
            }
            string(&text)
        }
        DataType::Binary | DataType::LargeBinary => {
            let bytes: Vec<u8> = match array.data_type() {
                DataType::Binary => array.as_binary::<i32>().value(row).to_vec(),
                _ => array.as_binary::<i64>().value(row).to_vec(),
            };
            string(&format!("\\x{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
        }
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(row);
            let texts: Vec<String> = (0..items.len())
                .map(|i| if items.is_null(i) { "null".to_owned() } else { arrow_text(&items, i, false) })
                .collect();
            format!("[{}]", texts.join(","))
        }
        _ => string(&display()),
    }
}

/// Counts, at every Delta version of a lake table, its versions with `_version_at` = `at`: a
/// transaction landed whole when each count is 0 or all of them.
pub async fn versions_at_each_commit(lake: &LakeLocation, source: &str, table: &str, at: i64) -> Vec<i64> {
    let t = HistoryTable::open_source(lake, source, table).await.unwrap().expect("the lake table");
    let mut counts = Vec::new();
    for version in 0..=t.version().expect("a committed table") {
        let mut delta = t.delta().clone();
        delta.load_version(version).await.expect("time travel");
        let ctx = tidemark_lake::datafusion::prelude::SessionContext::new();
        delta.update_datafusion_session(&ctx.state()).unwrap();
        ctx.register_table("h", delta.table_provider().await.unwrap()).unwrap();
        let sql = format!("SELECT count(*) FROM h WHERE CAST(_version_at AS BIGINT) = {at}");
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        counts.push(batches[0].column(0).as_primitive::<Int64Type>().value(0));
    }
    counts
}

/// Per oracle transaction (by commit time), how many changes it made to `table`
/// (`schema.table`): finds a workload's large transaction.
pub fn changes_per_commit(changes: &[OracleChange], table: &str) -> HashMap<i64, usize> {
    let mut out = HashMap::new();
    for c in changes.iter().filter(|c| c.table == table) {
        *out.entry(c.commit_micros).or_default() += 1;
    }
    out
}
