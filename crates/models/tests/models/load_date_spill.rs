//! Load-date models over seeded random landed files, three loads: the dimension equals a naive
//! oracle written from the semantics (the post's algorithm, key by key), and a load under a
//! memory limit far below its input sorts by spilling and builds the same dimension (a load
//! that held a source whole would fail with "resources exhausted").
//!
//! The data covers what streaming must get right at batch boundaries: several rows per key
//! spread over files and out of order, keys whose byte order differs from their numeric order,
//! deletes in either source, orphans of the secondary source (kept in the state table until
//! their primary row arrives), reappearing keys, NULL versus the empty string, type-1 changes.

use std::collections::BTreeMap;

use crate::common::{Row, Scenario, day_before, model};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const MODEL: &str = r#"key: [id]
columns: { effective: eff, expiry: exp }
type1: [note]
sources:
  - name: people
    files: people
    types: { ts: timestamp }
    order_by: ts
    status_column: op
    columns: [first, last, note]
  - name: address
    files: address
    types: { ts: timestamp }
    order_by: ts
    status_column: op
    columns: [city]
"#;

const DATES: [&str; 3] = ["2024-01-01", "2024-02-01", "2024-03-01"];

type Value = Option<String>;

/// What a source says about a key in one load: its latest row (None: deleted).
#[derive(Clone)]
enum Said {
    People(Option<[Value; 3]>),
    Address(Option<Value>),
}

/// One load's landed rows: (key, what it says, its timestamp in seconds) per source, with the
/// older rows of the same key that lose to it.
struct Landing {
    people: Vec<(String, Option<[Value; 3]>, i64)>,
    address: Vec<(String, Option<Value>, i64)>,
}

fn value(rng: &mut ChaCha8Rng, words: &[&str]) -> Value {
    match rng.random_range(0..20) {
        0 => None,
        1 => Some(String::new()),
        _ => Some(words[rng.random_range(0..words.len())].to_owned()),
    }
}

fn note(rng: &mut ChaCha8Rng) -> Value {
    // Long, varied text: the bytes that make a source outgrow a small memory limit.
    let len = rng.random_range(80..200);
    Some((0..len).map(|_| b"abcdefghij klmnop,qrstuvwxyz\"0123"[rng.random_range(0..33)] as char).collect())
}

fn key_name(n: u32) -> String {
    // Unpadded, some non-ASCII: byte order is not numeric order.
    if n.is_multiple_of(7) { format!("ключ-{n}") } else { format!("k{n}") }
}

/// Three loads of seeded changes over `keys` keys (more appear later).
fn landings(seed: u64, keys: u32) -> Vec<Landing> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let first = ["Ann", "Bo", "Cy", "Di", "Ed", "Ana, Maria", "Zoë"];
    let last = ["Lee", "Ng", "O'Neil", "Smith \"Jr\"", "Åberg"];
    let city = ["Oslo", "Lima", "Paris, TX", "Köln", "Quito"];
    let mut out = Vec::new();
    for load in 0..3i64 {
        let base = 1_700_000_000 + load * 2_000_000;
        let mut landing = Landing { people: Vec::new(), address: Vec::new() };
        let universe = keys + (load as u32) * keys / 50;
        for n in 0..universe {
            let key = key_name(n);
            let touch_people = if load == 0 { rng.random_bool(0.95) } else { rng.random_bool(0.12) };
            let touch_address = if load == 0 { rng.random_bool(0.9) } else { rng.random_bool(0.08) };
            for (touch, is_people) in [(touch_people, true), (touch_address, false)] {
                if !touch {
                    continue;
                }
                // 1–3 rows; the latest wins, each at its own second.
                let rows = rng.random_range(1..4);
                let mut stamps: Vec<i64> = (0..rows).map(|_| base + rng.random_range(0..1_000_000)).collect();
                stamps.sort();
                stamps.dedup();
                for ts in stamps {
                    let deleted = load > 0 && rng.random_bool(0.15);
                    if is_people {
                        let said = (!deleted).then(|| [value(&mut rng, &first), value(&mut rng, &last), note(&mut rng)]);
                        landing.people.push((key.clone(), said, ts));
                    } else {
                        let said = (!deleted).then(|| value(&mut rng, &city));
                        landing.address.push((key.clone(), said, ts));
                    }
                }
            }
        }
        landing.people.shuffle(&mut rng);
        landing.address.shuffle(&mut rng);
        out.push(landing);
    }
    out
}

fn csv_value(v: &Value) -> String {
    match v {
        None => String::new(),
        Some(s) => format!("\"{}\"", s.replace('"', "\"\"")),
    }
}

fn timestamp(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0).unwrap().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Lands a load's rows, each source split over three files.
fn land(s: &Scenario, load: usize, landing: &Landing) {
    let people: Vec<String> = landing
        .people
        .iter()
        .map(|(k, said, ts)| match said {
            Some([f, l, n]) => format!("{k},{},{},{},{},U", csv_value(f), csv_value(l), csv_value(n), timestamp(*ts)),
            None => format!("{k},,,,{},D", timestamp(*ts)),
        })
        .collect();
    let address: Vec<String> = landing
        .address
        .iter()
        .map(|(k, said, ts)| match said {
            Some(c) => format!("{k},{},{},U", csv_value(c), timestamp(*ts)),
            None => format!("{k},,{},D", timestamp(*ts)),
        })
        .collect();
    for (folder, header, lines) in [("people", "id,first,last,note,ts,op", people), ("address", "id,city,ts,op", address)] {
        for (part, chunk) in lines.chunks(lines.len().div_ceil(3).max(1)).enumerate() {
            s.land(folder, &format!("{load}-{part}.csv"), &format!("{header}\n{}\n", chunk.join("\n")));
        }
    }
}

/// The dimension the semantics define: per load, each source's latest row per key updates the
/// key's state; a key exists while its people row does; a change of a tracked value (first,
/// last, city; NULL-safe) ends the current row the day before and starts a new one, a change
/// of the type-1 note overwrites the current row; new surrogate keys in key order.
fn oracle(loads: &[Landing]) -> Vec<Row> {
    #[derive(Default, Clone)]
    struct State {
        people: Option<[Value; 3]>,
        city: Value,
    }
    let mut state: BTreeMap<String, State> = BTreeMap::new();
    let mut closed: Vec<Row> = Vec::new();
    let mut current: BTreeMap<String, Row> = BTreeMap::new();
    let mut next_sk = 1;
    let text = |v: &Value| v.clone().unwrap_or_else(|| "NULL".into());
    for (landing, date) in loads.iter().zip(DATES) {
        let mut latest: BTreeMap<String, Vec<(i64, Said)>> = BTreeMap::new();
        for (k, said, ts) in &landing.people {
            latest.entry(k.clone()).or_default().push((*ts, Said::People(said.clone())));
        }
        for (k, said, ts) in &landing.address {
            latest.entry(k.clone()).or_default().push((*ts, Said::Address(said.clone())));
        }
        for (key, mut rows) in latest {
            rows.sort_by_key(|(ts, _)| *ts);
            let entry = state.entry(key.clone()).or_default();
            let (mut people, mut address) = (None, None);
            for (_, said) in rows {
                match said {
                    Said::People(p) => people = Some(p),
                    Said::Address(a) => address = Some(a),
                }
            }
            if let Some(p) = people {
                entry.people = p;
            }
            if let Some(a) = address {
                entry.city = a.flatten();
            }
            let wanted = entry.people.as_ref().map(|[f, l, n]| (text(f), text(l), text(n), text(&entry.city)));
            let open = current.get(&key).cloned();
            match (wanted, open) {
                (None, None) => {}
                (None, Some(mut row)) => {
                    row.insert("exp".into(), day_before(date));
                    row.insert("is_current".into(), "false".into());
                    closed.push(row);
                    current.remove(&key);
                }
                (Some((f, l, n, c)), open) => {
                    if let Some(mut row) = open.clone() {
                        if row["first"] == f && row["last"] == l && row["city"] == c {
                            row.insert("note".into(), n);
                            current.insert(key.clone(), row);
                            continue;
                        }
                        row.insert("exp".into(), day_before(date));
                        row.insert("is_current".into(), "false".into());
                        closed.push(row);
                    }
                    let row: Row = [
                        ("person_sk", next_sk.to_string()),
                        ("id", key.clone()),
                        ("first", f),
                        ("last", l),
                        ("note", n),
                        ("city", c),
                        ("eff", date.to_owned()),
                        ("exp", "9999-12-31".to_owned()),
                        ("is_current", "true".to_owned()),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect();
                    next_sk += 1;
                    current.insert(key.clone(), row);
                }
            }
        }
    }
    let mut rows: Vec<Row> = closed.into_iter().chain(current.into_values()).collect();
    rows.sort_by(|a, b| a["person_sk"].parse::<u64>().unwrap().cmp(&b["person_sk"].parse::<u64>().unwrap()));
    rows
}

fn comparable(rows: Vec<Row>) -> Vec<Row> {
    const COLUMNS: [&str; 9] = ["person_sk", "id", "first", "last", "note", "city", "eff", "exp", "is_current"];
    let mut out: Vec<Row> = rows.into_iter().map(|r| COLUMNS.iter().map(|c| (c.to_string(), r[*c].clone())).collect()).collect();
    out.sort_by(|a, b| a["person_sk"].parse::<u64>().unwrap().cmp(&b["person_sk"].parse::<u64>().unwrap()));
    out
}

/// Runs the three loads under `memory_limit`; the dimension after them and the bytes spilled.
async fn run_all(loads: &[Landing], memory_limit: usize) -> (Vec<Row>, u64) {
    let s = Scenario::new("dim_person", model(MODEL));
    let mut spilled = 0;
    for (i, (landing, date)) in loads.iter().zip(DATES).enumerate() {
        land(&s, i, landing);
        let metrics = s.load(date).with_memory_limit(memory_limit).run().await.unwrap();
        assert_eq!(metrics.rows_read, (landing.people.len() + landing.address.len()) as u64);
        spilled += metrics.spilled_bytes;
        crate::common::check_invariants(&s.dimension().await, &s.model, &s.name);
    }
    (comparable(s.dimension().await), spilled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_date_loads_equal_the_oracle_and_spill_under_a_small_memory_limit() {
    let loads = landings(17, 25_000);
    let expected = oracle(&loads);
    let (rows, _) = run_all(&loads, tidemark_models::bounded::DEFAULT_MEMORY_LIMIT).await;
    assert_eq!(rows.len(), expected.len());
    for (got, want) in rows.iter().zip(&expected) {
        assert_eq!(got, want);
    }
    // The initial files hold about 10 MB of notes per source: a 4 MiB limit must sort them by
    // spilling, and give the same rows, surrogate keys included.
    let (small, spilled) = run_all(&loads, 4 << 20).await;
    assert!(spilled > 1 << 20, "spilled {spilled} bytes");
    assert!(small == rows, "the dimension built under a small limit differs");
}
