//! Seeded random version histories of two objects (people in teams), written with the lake's
//! own writer, for source-time models.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tidemark_lake::arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray};
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema};
use tidemark_lake::columns::metadata_fields;
use tidemark_lake::{HistoryTable, LakeLocation, VersionWriter};

/// A source-time model over [`histories`]: Person joined to its Team, Note as type 1.
pub const PERSON_MODEL: &str = r#"dating: source_time
key: [Id]
type1: [Note]
sources:
  - { name: person, object: Person, columns: [Name, Note, TeamId] }
  - { name: team, object: Team, join: { TeamId: Id }, columns: [TeamName] }
"#;

/// Writes both objects' histories into `lake`.
pub async fn write_people(lake: &LakeLocation, people: &[Version], teams: &[Version]) {
    write(lake, "Person", &["Name", "Note", "TeamId"], people).await;
    write(lake, "Team", &["TeamName"], teams).await;
}

/// One version: record id, second, ingestion order, deleted, then the object's columns.
#[derive(Debug, Clone)]
pub struct Version {
    pub id: String,
    pub at: i64,
    pub ingested: i64,
    pub deleted: bool,
    pub values: Vec<Option<String>>,
}

pub async fn write(lake: &LakeLocation, object: &str, columns: &[&str], versions: &[Version]) {
    let meta: Vec<(&str, i64, i64, bool)> = versions.iter().map(|v| (v.id.as_str(), v.at, v.ingested, v.deleted)).collect();
    let typed = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let values: ArrayRef = Arc::new(StringArray::from(versions.iter().map(|v| v.values[i].clone()).collect::<Vec<_>>()));
            (Field::new(*c, DataType::Utf8, true), values)
        })
        .collect();
    append(lake, object, &meta, typed).await;
}

/// Appends versions to `object`'s history table, created on first use: per version (record id,
/// second, ingestion instant in µs, deleted), and the object's columns, any type, with one value
/// per version each.
pub async fn append(lake: &LakeLocation, object: &str, meta: &[(&str, i64, i64, bool)], columns: Vec<(Field, ArrayRef)>) {
    let mut fields = metadata_fields();
    fields.push(Field::new("Id", DataType::Utf8, false));
    fields.extend(columns.iter().map(|(f, _)| f.clone()));
    let schema = Arc::new(Schema::new(fields));
    let mut table = match HistoryTable::open(lake, object).await.unwrap() {
        Some(table) => table,
        None => HistoryTable::create(lake, object, &schema).await.unwrap(),
    };
    let ts = |v: Vec<i64>| -> ArrayRef { Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC")) };
    let n = meta.len();
    let mut arrays: Vec<ArrayRef> = vec![
        ts(meta.iter().map(|m| m.1 * 1_000_000).collect()),
        Arc::new(BooleanArray::from(meta.iter().map(|m| m.3).collect::<Vec<_>>())),
        Arc::new(StringArray::from(vec!["query"; n])),
        Arc::new(StringArray::from(vec!["run"; n])),
        ts(meta.iter().map(|m| m.2).collect()),
        Arc::new(StringArray::from(meta.iter().map(|m| m.0).collect::<Vec<_>>())),
    ];
    arrays.extend(columns.into_iter().map(|(_, values)| values));
    let mut writer = VersionWriter::new(&table, format!("tidemark-test:{object}"), Vec::new()).await.unwrap();
    writer.write(RecordBatch::try_new(schema, arrays).unwrap()).await.unwrap();
    writer.commit(&mut table).await.unwrap();
}

/// Histories with collisions on purpose: few distinct seconds, several versions per instant
/// (some ingested together, a delete then winning), deletes and undeletes, people moving
/// between teams, NULLs and empty strings. Never two versions of a record equal in instant,
/// ingestion and delete flag: a sync cannot write those.
pub fn histories(seed: u64, people: usize, teams: usize) -> (Vec<Version>, Vec<Version>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ingested = 0;
    let mut push = |rng: &mut ChaCha8Rng, list: &mut Vec<Version>, mut v: Version| {
        ingested += rng.random_range(0..2);
        let tie = |w: &Version, i: i64| w.id == v.id && w.at == v.at && w.deleted == v.deleted && w.ingested == i;
        if list.iter().rev().take(8).any(|w| tie(w, ingested)) {
            ingested += 1;
        }
        v.ingested = ingested;
        list.push(v);
    };
    let pick = |rng: &mut ChaCha8Rng, choices: &[&str]| -> Option<String> {
        let i = rng.random_range(0..=choices.len());
        choices.get(i).map(|s| (*s).to_owned())
    };
    let mut team_versions = Vec::new();
    for t in 0..teams {
        for _ in 0..rng.random_range(1..6) {
            let at = rng.random_range(0..40);
            let deleted = rng.random_bool(0.15);
            let name = pick(&mut rng, &["Red", "Blue", "", "Grün"]);
            let v = Version { id: format!("T{t:04}"), at, ingested: 0, deleted, values: vec![name] };
            push(&mut rng, &mut team_versions, v);
        }
    }
    let mut person_versions = Vec::new();
    for p in 0..people {
        for _ in 0..rng.random_range(1..5) {
            let at = rng.random_range(0..40);
            let deleted = rng.random_bool(0.1);
            let team = rng.random_bool(0.9).then(|| format!("T{:04}", rng.random_range(0..teams + 2)));
            let values = vec![pick(&mut rng, &["Ann", "Bo", ""]), pick(&mut rng, &["x", "y"]), team];
            push(&mut rng, &mut person_versions, Version { id: format!("P{p:05}"), at, ingested: 0, deleted, values });
        }
    }
    (person_versions, team_versions)
}
