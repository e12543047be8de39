//! Source-time dimensions over seeded random histories: the result equals a naive oracle
//! written from the semantics (instants, versions in force, collapsing), and a load under a
//! memory limit far below the sources' size builds the same dimension by spilling (a plan that
//! held a source or the dimension whole would fail with "resources exhausted").

use std::collections::BTreeMap;

use crate::common::histories::{Version, histories, write_people};
use crate::common::{Row, check_invariants, model, to_rows};
use tidemark_lake::LakeLocation;
use tidemark_models::ModelLoad;

const MODEL: &str = crate::common::histories::PERSON_MODEL;

/// A record's versions, one per instant (the last ingested; a delete after an update ingested
/// with it), in time order.
fn by_instant(versions: &[Version]) -> BTreeMap<String, Vec<Version>> {
    let mut out: BTreeMap<String, Vec<Version>> = BTreeMap::new();
    for v in versions {
        out.entry(v.id.clone()).or_default().push(v.clone());
    }
    for list in out.values_mut() {
        list.sort_by_key(|v| (v.at, v.ingested, v.deleted));
        let mut kept: Vec<Version> = Vec::new();
        for v in list.drain(..) {
            if kept.last().is_some_and(|k| k.at == v.at) {
                kept.pop();
            }
            kept.push(v);
        }
        *list = kept;
    }
    out
}

/// The version of `versions` in force at `t`.
fn in_force(versions: &[Version], t: i64) -> Option<&Version> {
    versions.iter().rev().find(|v| v.at <= t)
}

/// (Id, Name, Note, TeamId, TeamName, from second, to second or None): the dimension as the
/// semantics define it, instant by instant.
type OracleRow = (String, Option<String>, Option<String>, Option<String>, Option<String>, i64, Option<i64>);

fn oracle(people: &[Version], teams: &[Version]) -> Vec<OracleRow> {
    let people = by_instant(people);
    let teams = by_instant(teams);
    let mut rows = Vec::new();
    for (id, versions) in &people {
        let mut instants: Vec<i64> = versions.iter().map(|v| v.at).collect();
        for (i, v) in versions.iter().enumerate() {
            let end = versions.get(i + 1).map_or(i64::MAX, |n| n.at);
            if let (false, Some(team)) = (v.deleted, v.values[2].as_ref().and_then(|t| teams.get(t))) {
                instants.extend(team.iter().map(|t| t.at).filter(|at| *at > v.at && *at < end));
            }
        }
        instants.sort();
        instants.dedup();
        // (state at the instant: None when the person does not exist, Note apart as type-1)
        let mut current: Option<(Vec<Option<String>>, Option<String>, i64)> = None;
        let mut close = |current: &mut Option<(Vec<Option<String>>, Option<String>, i64)>, to: Option<i64>| {
            if let Some((tracked, note, from)) = current.take() {
                rows.push((id.clone(), tracked[0].clone(), note, tracked[1].clone(), tracked[2].clone(), from, to));
            }
        };
        for t in instants {
            let person = in_force(versions, t).expect("an instant follows a version");
            if person.deleted {
                close(&mut current, Some(t));
                continue;
            }
            let team = person.values[2].as_ref().and_then(|id| teams.get(id)).and_then(|vs| in_force(vs, t));
            let team_name = team.filter(|v| !v.deleted).and_then(|v| v.values[0].clone());
            let tracked = vec![person.values[0].clone(), person.values[2].clone(), team_name];
            match &mut current {
                Some((same, note, _)) if *same == tracked => *note = person.values[1].clone(),
                _ => {
                    close(&mut current, Some(t));
                    current = Some((tracked, person.values[1].clone(), t));
                }
            }
        }
        close(&mut current, None);
    }
    rows
}

async fn build(lake: &LakeLocation, memory_limit: usize) -> (Vec<Row>, u64) {
    let m = model(MODEL);
    let metrics = ModelLoad::new(lake.clone(), "dim_person", m.clone()).with_memory_limit(memory_limit).run().await;
    let metrics = metrics.unwrap_or_else(|e| panic!("load under a {memory_limit}-byte limit: {e}"));
    let table = tidemark_lake::history::open_table(lake, lake.mart_table_url("dim_person")).await.unwrap().unwrap();
    let ctx = tidemark_lake::datafusion::prelude::SessionContext::new();
    table.update_datafusion_session(&ctx.state()).unwrap();
    let rows = to_rows(&ctx.read_table(table.table_provider().await.unwrap()).unwrap().collect().await.unwrap());
    check_invariants(&rows, &m, "dim_person");
    (rows, metrics.spilled_bytes)
}

fn seconds(text: &str) -> i64 {
    let text = text.trim_end_matches('Z');
    let at = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
        .unwrap_or_else(|e| panic!("timestamp {text}: {e}"));
    at.and_utc().timestamp()
}

fn shape(rows: &[Row]) -> Vec<OracleRow> {
    let text = |r: &Row, c: &str| r.get(c).filter(|v| *v != "NULL").cloned();
    let mut out: Vec<OracleRow> = rows
        .iter()
        .map(|r| {
            let to = seconds(&r["valid_to"]);
            (
                r["Id"].clone(),
                text(r, "Name"),
                text(r, "Note"),
                text(r, "TeamId"),
                text(r, "TeamName"),
                seconds(&r["valid_from"]),
                (to < 253_402_214_400).then_some(to),
            )
        })
        .collect();
    out.sort();
    out
}

/// Equal, or a panic showing the first key whose rows differ (the whole lists are too long).
fn same(got: &[OracleRow], expected: &[OracleRow]) {
    let group = |rows: &[OracleRow]| {
        let mut by: BTreeMap<String, Vec<OracleRow>> = BTreeMap::new();
        for r in rows {
            by.entry(r.0.clone()).or_default().push(r.clone());
        }
        by
    };
    let (got, expected) = (group(got), group(expected));
    let keys: std::collections::BTreeSet<&String> = got.keys().chain(expected.keys()).collect();
    for k in keys {
        assert_eq!(got.get(k), expected.get(k), "the dimension's rows of {k} follow the semantics");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_histories_match_the_oracle_with_and_without_spilling() {
    let (people, teams) = histories(7, 20_000, 400);
    let mut expected = oracle(&people, &teams);
    expected.sort();
    let dir = tempfile::tempdir().unwrap();
    let lake = |name: &str| LakeLocation::parse(dir.path().join(name).to_str().unwrap()).unwrap();
    let (roomy, tight) = (lake("roomy"), lake("tight"));
    for l in [&roomy, &tight] {
        write_people(l, &people, &teams).await;
    }
    let (unlimited, none) = build(&roomy, 4 << 30).await;
    assert_eq!(none, 0, "nothing spills without a limit");
    same(&shape(&unlimited), &expected);
    // ~50,000 person versions become ~70,000 instants of ~150 bytes: each of the plan's
    // twenty-odd sorts gets about 2 MiB of a 64 MiB pool, so the large ones spill.
    let (spilled, bytes) = build(&tight, 64 << 20).await;
    assert!(bytes > 10 << 20, "the sorts spilled their inputs ({bytes} bytes)");
    let strip = |rows: Vec<Row>| -> Vec<Row> {
        let mut rows: Vec<Row> = rows
            .into_iter()
            .map(|mut r| {
                r.remove("_load_id");
                r
            })
            .collect();
        rows.sort_by(|a, b| (&a["Id"], &a["valid_from"]).cmp(&(&b["Id"], &b["valid_from"])));
        rows
    };
    assert_eq!(strip(spilled), strip(unlimited), "spilling changes nothing, surrogate keys included");
}
