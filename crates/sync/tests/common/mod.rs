//! A simulated org, a lake in a temporary folder, and the oracle that checks the lake against
//! the org's truth after each sync.

#![allow(dead_code)]

pub mod moto;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use tidemark_core::governance::Governance;
use tidemark_lake::arrow::array::{Array, AsArray, RecordBatch};
use tidemark_lake::arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use tidemark_lake::arrow::datatypes::{Field, Schema, SchemaRef, TimestampMicrosecondType};
use tidemark_lake::read::{HISTORY, quote, utf8};
use tidemark_lake::schema_plan::plan;
use tidemark_lake::{HistoryTable, LakeLocation};
use tidemark_salesforce::{AuthConfig, ClientConfig, RetryPolicy, SalesforceClient};
use tidemark_sfsim::changes::{ChangeRoundSpec, apply_change_round};
use tidemark_sfsim::{SimConfig, SimHandle, SimServer};
use tidemark_sync::config::ObjectSettings;
use tidemark_sync::convert::json_batches;
use tidemark_sync::discovery::source_schema;
use tidemark_sync::{Sync, SyncReport, SyncSettings};

/// `(Id, version time µs, deleted)`.
pub type Key = (String, i64, bool);

pub struct Harness {
    pub sim: SimHandle,
    pub client: Arc<SalesforceClient>,
    pub lake: LakeLocation,
    pub dir: tempfile::TempDir,
    pub settings: SyncSettings,
    /// Per object: every record key the org held at any sync point so far.
    pub expected_keys: HashMap<String, HashSet<Key>>,
    /// Per object: Ids that vanished from the org between sync points while live.
    pub expected_vanished: HashMap<String, HashSet<String>>,
    /// Per object: live Ids at the last sync point.
    live_at_last_sync: HashMap<String, HashSet<String>>,
    pub syncs: u32,
    /// Field policies the syncs apply; the oracle expects the org's values under them.
    pub governance: Arc<Governance>,
}

/// Objects the oracle checks (every kind of field and change the simulator produces).
pub const CHECKED: [&str; 7] = ["Account", "Contact", "Opportunity", "Case", "Invoice__c", "Subscription__c", "Task"];

pub fn test_settings() -> SyncSettings {
    let mut settings = SyncSettings {
        reconcile_every: std::time::Duration::ZERO,
        // Small enough that both APIs and multi-commit reads are exercised at test scale.
        bulk_threshold: 100,
        commit_rows: 400,
        bulk_page_records: 250,
        ..SyncSettings::default()
    };
    // Formulas re-read on every run, so live state must equal the org's exactly.
    for object in CHECKED {
        settings.objects.insert(
            object.into(),
            ObjectSettings { formula_snapshot_every: Some(std::time::Duration::ZERO), ..Default::default() },
        );
    }
    settings
}

/// The interop venv's python (created on first use by `scripts/python-venv.sh`).
pub fn python() -> std::path::PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/python-venv.sh");
    let out = std::process::Command::new("bash").arg(script).output().expect("runs the venv script");
    assert!(out.status.success(), "venv set-up failed:\n{}", String::from_utf8_lossy(&out.stderr));
    std::path::PathBuf::from(String::from_utf8(out.stdout).expect("utf-8").trim())
}

pub async fn connect(sim: &SimHandle, retry: RetryPolicy) -> SalesforceClient {
    let auth = AuthConfig::ClientCredentials {
        login_url: sim.base_url().to_owned(),
        client_id: sim.credentials.client_id.clone(),
        client_secret: sim.credentials.client_secret.clone().into(),
    };
    SalesforceClient::connect(auth, ClientConfig { retry, ..ClientConfig::default() }).await.expect("client connects")
}

impl Harness {
    /// A simulated org and a lake in a temporary folder.
    pub async fn start(accounts: u64, seed: u64) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
        Harness::start_with_lake(accounts, seed, lake, dir).await
    }

    /// A simulated org and the lake at `lake` (an object store, say); `dir` is scratch space.
    pub async fn start_with_lake(accounts: u64, seed: u64, lake: LakeLocation, dir: tempfile::TempDir) -> Harness {
        let sim = SimServer::new(SimConfig { accounts, seed, ..SimConfig::default() })
            .start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("simulator starts");
        let client = Arc::new(connect(&sim, RetryPolicy::immediate(8)).await);
        Harness {
            sim,
            client,
            lake,
            dir,
            settings: test_settings(),
            expected_keys: HashMap::new(),
            expected_vanished: HashMap::new(),
            live_at_last_sync: HashMap::new(),
            syncs: 0,
            governance: Arc::new(Governance::none()),
        }
    }

    pub fn sync_builder(&self) -> Sync {
        Sync::new(self.client.clone(), self.lake.clone(), self.settings.clone())
            .with_governance(self.governance.clone())
            .with_objects(CHECKED.iter().map(|s| (*s).to_owned()).collect())
    }

    /// Syncs the checked objects and records what the org held at this sync point.
    pub async fn sync(&mut self) -> SyncReport {
        let report = self.sync_builder().await.expect("sync runs");
        self.syncs += 1;
        self.note_sync_point();
        report
    }

    /// Records the org's keys at a sync point (call after a sync that completed).
    pub fn note_sync_point(&mut self) {
        let org = self.sim.state.org.read();
        for object in CHECKED {
            let table = org.table(object).expect("object exists");
            let stamp_field = table.def.field("SystemModstamp").expect("SystemModstamp");
            let deleted_field = table.def.field("IsDeleted").expect("IsDeleted");
            let mut present = HashSet::new();
            let mut live = HashSet::new();
            for row in table.rows() {
                let id = table.id_of(row).to_string();
                let at = org.field_json(table, row, stamp_field);
                let at =
                    chrono::DateTime::parse_from_str(at.as_str().unwrap(), "%Y-%m-%dT%H:%M:%S%.3f%z").unwrap().timestamp_micros();
                let deleted = org.field_json(table, row, deleted_field).as_bool().unwrap();
                self.expected_keys.entry(object.to_owned()).or_default().insert((id.clone(), at, deleted));
                if !deleted {
                    live.insert(id.clone());
                }
                present.insert(id);
            }
            if let Some(before) = self.live_at_last_sync.get(object) {
                let gone = before.iter().filter(|id| !present.contains(*id)).cloned();
                self.expected_vanished.entry(object.to_owned()).or_default().extend(gone);
            }
            self.live_at_last_sync.insert(object.to_owned(), live);
        }
    }

    pub fn change(&self, spec: serde_json::Value, seed: u64) {
        let spec: ChangeRoundSpec = serde_json::from_value(spec).expect("valid change round");
        let mut org = self.sim.state.org.write();
        apply_change_round(&mut org, &spec, seed).expect("change round applies");
    }

    pub fn schema_change(&self, object: &str, change: serde_json::Value) {
        let change = serde_json::from_value(change).expect("valid schema change");
        self.sim.state.org.write().apply_schema_change(object, &change).expect("schema change applies");
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.sim.state.org.write().advance_clock(by);
    }

    /// The oracle: for every checked object, queried versions are exactly the org's keys at
    /// the sync points (no gaps, no duplicates), vanished records got exactly one delete
    /// version each, and the live state equals the org's records value for value.
    pub async fn check(&self) {
        for object in CHECKED {
            let table = HistoryTable::open(&self.lake, object).await.unwrap().expect("table exists");
            let ctx = table.session().await.unwrap();
            let sql = format!(
                "SELECT {}, {}, {}, {} FROM {HISTORY}",
                quote("Id"),
                quote("_version_at"),
                quote("_deleted"),
                quote("_origin")
            );
            let mut queried: Vec<Key> = Vec::new();
            let mut reconciled: Vec<String> = Vec::new();
            for b in table.collect(&ctx, &sql).await.unwrap() {
                let ids = utf8(b.column(0)).unwrap();
                let at = b.column(1).as_primitive::<TimestampMicrosecondType>();
                let del = b.column(2).as_boolean();
                let origin = utf8(b.column(3)).unwrap();
                for i in 0..b.num_rows() {
                    match origin.value(i) {
                        "query" => queried.push((ids.value(i).to_owned(), at.value(i), del.value(i))),
                        "reconcile" => reconciled.push(ids.value(i).to_owned()),
                        _ => {}
                    }
                }
            }
            let distinct: HashSet<Key> = queried.iter().cloned().collect();
            assert_eq!(distinct.len(), queried.len(), "{object}: duplicate versions in the lake");
            let expected = &self.expected_keys[object];
            let missing: Vec<_> = expected.difference(&distinct).take(3).collect();
            let extra: Vec<_> = distinct.difference(expected).take(3).collect();
            assert!(missing.is_empty() && extra.is_empty(), "{object}: versions missing {missing:?}, unexpected {extra:?}");
            let reconciled_set: HashSet<String> = reconciled.iter().cloned().collect();
            assert_eq!(reconciled_set.len(), reconciled.len(), "{object}: a record got two reconcile deletes");
            let vanished = self.expected_vanished.get(object).cloned().unwrap_or_default();
            assert_eq!(reconciled_set, vanished, "{object}: reconcile deletes differ from the records that vanished");
            self.check_live(object, &table).await;
        }
    }

    /// Live state only (for modes whose version keys differ, e.g. snapshot-and-diff).
    pub async fn check_live_all(&self) {
        for object in CHECKED {
            let table = HistoryTable::open(&self.lake, object).await.unwrap().expect("table exists");
            self.check_live(object, &table).await;
        }
    }

    async fn check_live(&self, object: &str, table: &HistoryTable) {
        let truth = self.org_truth(object).await;
        let ctx = table.session().await.unwrap();
        let live = table.live(&ctx).await.unwrap();
        let select = truth.targets.iter().map(|(f, c)| format!("{} AS {}", quote(c), quote(f))).collect::<Vec<_>>().join(", ");
        ctx.register_table("live", live.into_view()).unwrap();
        let got = table.collect(&ctx, &format!("SELECT {select} FROM live")).await.unwrap();
        truth.assert_equals(object, "live", got);
    }

    /// The org's live records now, as the API shows them (formulas computed, encrypted
    /// masked), in the lake's column types, sorted by Id.
    pub async fn org_truth(&self, object: &str) -> Truth {
        let table = HistoryTable::open(&self.lake, object).await.unwrap().expect("table exists");
        let describe = self.client.describe(object).await.unwrap();
        let (mut schema, _) = source_schema(&describe, &self.settings);
        let policies = tidemark_sync::discovery::field_policies(&self.governance, &schema).expect("policies resolve");
        schema.fields.retain(|f| !policies.is_excluded(&f.name));
        let targets = plan(&table.schema().unwrap(), &schema.fields, &HashSet::new()).targets;
        let read: SchemaRef =
            Arc::new(Schema::new(targets.iter().map(|(f, _, t)| Field::new(f, t.clone(), true)).collect::<Vec<_>>()));
        let records: Vec<Box<serde_json::value::RawValue>> = {
            let org = self.sim.state.org.read();
            let t = org.table(object).unwrap();
            t.rows()
                .iter()
                .filter(|r| !t.is_deleted(r))
                .map(|r| {
                    let fields: BTreeMap<&str, serde_json::Value> =
                        targets.iter().map(|(f, _, _)| (f.as_str(), org.field_json(t, r, t.def.field(f).unwrap()))).collect();
                    serde_json::value::to_raw_value(&fields).unwrap()
                })
                .collect()
        };
        let batch = policies.apply(&sorted_by_id(json_batches(&records, &read).unwrap(), &read)).unwrap();
        Truth { targets: targets.into_iter().map(|(f, c, _)| (f, c)).collect(), schema: read, batch }
    }
}

/// An object's live records at one moment: `(field, lake column)` pairs (Id first) and the
/// records' values with columns named by field, sorted by Id.
#[derive(Debug, Clone)]
pub struct Truth {
    pub targets: Vec<(String, String)>,
    pub schema: SchemaRef,
    pub batch: RecordBatch,
}

impl Truth {
    /// Asserts that `got` (columns in `targets` order, any string layout) holds exactly these
    /// records, value for value.
    pub fn assert_equals(&self, object: &str, what: &str, got: Vec<RecordBatch>) {
        let got = sorted_by_id(got, &self.schema);
        let expected = &self.batch;
        assert_eq!(got.num_rows(), expected.num_rows(), "{object} {what}: record count");
        for (i, (f, _)) in self.targets.iter().enumerate() {
            let (a, b) = (got.column(i), expected.column(i));
            if a.as_ref() != b.as_ref() {
                let ids = utf8(expected.column(0)).unwrap();
                let row = (0..a.len()).find(|&r| a.slice(r, 1) != b.slice(r, 1)).unwrap_or(0);
                panic!(
                    "{object} {what}.{f}: value differs from the org, first at {} (lake {:?}, org {:?})",
                    ids.value(row),
                    a.slice(row, 1),
                    b.slice(row, 1)
                );
            }
        }
    }
}

fn sorted_by_id(batches: Vec<RecordBatch>, schema: &SchemaRef) -> RecordBatch {
    // Scans return strings as Utf8View: compare in the schema's own types.
    let batches: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            let cols = b
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(c, f)| tidemark_lake::arrow::compute::cast(c, f.data_type()).unwrap())
                .collect();
            RecordBatch::try_new(schema.clone(), cols).unwrap()
        })
        .collect();
    let all = concat_batches(schema, &batches).unwrap();
    let order = sort_to_indices(all.column(0), None, None).unwrap();
    take_record_batch(&all, &order).unwrap()
}

/// Every value under `dir` that is one of `raw`: each Parquet file decoded (every column, nested
/// ones too, as text: a cell equal to a raw value, or holding it as a JSON string, as
/// checkpoints' statistics do), every other file (Delta log entries, leases) read as text (the
/// value as a JSON string). Returns the values found, with where.
pub fn find_anywhere(dir: &std::path::Path, raw: &std::collections::BTreeSet<String>) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_some_and(|e| e == "parquet") {
            let file = std::fs::File::open(&path).unwrap();
            for batch in tidemark_lake::deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap()
            {
                let batch = batch.unwrap();
                for column in batch.columns() {
                    for value in texts(column) {
                        if raw.contains(&value) || raw.iter().any(|r| value.contains(&format!("\"{r}\""))) {
                            found.push(format!("{}: {value}", path.display()));
                        }
                    }
                }
            }
        } else {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            // As a JSON string, or inside one (a log entry's `stats` are JSON in a JSON string).
            let quoted = |r: &String| text.contains(&format!("\"{r}\"")) || text.contains(&format!("\\\"{r}\\\""));
            found.extend(raw.iter().filter(|r| quoted(r)).map(|r| format!("{}: {r}", path.display())));
        }
    }
    found
}

/// Every value of `array` as text, through structs, lists and maps (a checkpoint's `add.stats`).
fn texts(array: &tidemark_lake::arrow::array::ArrayRef) -> Vec<String> {
    use tidemark_lake::arrow::datatypes::DataType;
    match array.data_type() {
        DataType::Struct(_) => array.as_struct().columns().iter().flat_map(texts).collect(),
        DataType::List(_) => texts(array.as_list::<i32>().values()),
        DataType::LargeList(_) => texts(array.as_list::<i64>().values()),
        DataType::Map(_, _) => {
            let map = array.as_map();
            let mut out = texts(map.keys());
            out.extend(texts(map.values()));
            out
        }
        _ => match tidemark_lake::arrow::compute::cast(array, &DataType::Utf8) {
            Ok(text) => text.as_string::<i32>().iter().flatten().map(str::to_owned).collect(),
            Err(_) => Vec::new(),
        },
    }
}
