//! Shared by the models tests: landing files, running loads, reading the dimension back with
//! DataFusion over the Delta table, and the invariants every load must keep.

#![allow(dead_code)]

pub mod histories;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use tidemark_core::models::ModelConfig;
use tidemark_lake::LakeLocation;
use tidemark_lake::arrow::array::RecordBatch;
use tidemark_lake::arrow::util::display::{ArrayFormatter, FormatOptions};
use tidemark_models::{LoadMetrics, ModelLoad};

pub type Row = BTreeMap<String, String>;

/// The post's sample data folder.
pub fn post_data() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/scd2-post"))
}

pub fn model(yaml: &str) -> ModelConfig {
    #[derive(serde::Deserialize)]
    struct Doc {
        models: BTreeMap<String, ModelConfig>,
    }
    let text = format!("models:\n  m:\n{}", yaml.lines().map(|l| format!("    {l}\n")).collect::<String>());
    let doc: Doc = tidemark_core::config::load_str(&text, &|_| None).unwrap();
    let m = doc.models.into_values().next().unwrap();
    m.validate("m").unwrap();
    m
}

pub struct Scenario {
    pub dir: tempfile::TempDir,
    pub lake: LakeLocation,
    pub name: String,
    pub model: ModelConfig,
}

impl Scenario {
    /// A lake and a landing folder in a temporary directory; `files:` paths are relative to it.
    pub fn new(name: &str, model: ModelConfig) -> Scenario {
        let dir = tempfile::tempdir().unwrap();
        let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
        for source in &model.sources {
            if let Some(f) = &source.files {
                std::fs::create_dir_all(dir.path().join(f)).unwrap();
            }
        }
        Scenario { dir, lake, name: name.to_owned(), model }
    }

    pub fn land(&self, folder: &str, file: &str, text: &str) {
        std::fs::write(self.dir.path().join(folder).join(file), text).unwrap();
    }

    pub fn land_copy(&self, folder: &str, file: &str, from: &Path) {
        std::fs::copy(from, self.dir.path().join(folder).join(file)).unwrap();
    }

    pub fn load(&self, date: &str) -> ModelLoad {
        ModelLoad::new(self.lake.clone(), &self.name, self.model.clone())
            .with_base_dir(self.dir.path().to_path_buf())
            .with_run_date(NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap())
    }

    /// Runs a load and checks the invariants afterwards.
    pub async fn run(&self, date: &str) -> LoadMetrics {
        let metrics = self.load(date).run().await.unwrap();
        let rows = self.dimension().await;
        check_invariants(&rows, &self.model, &self.name);
        metrics
    }

    /// The dimension's rows as text, sorted by key and effective date.
    pub async fn dimension(&self) -> Vec<Row> {
        let Some(table) = tidemark_lake::history::open_table(&self.lake, self.lake.mart_table_url(&self.name)).await.unwrap()
        else {
            return Vec::new();
        };
        let ctx = tidemark_lake::datafusion::prelude::SessionContext::new();
        table.update_datafusion_session(&ctx.state()).unwrap();
        let provider = table.table_provider().await.unwrap();
        let batches = ctx.read_table(provider).unwrap().collect().await.unwrap();
        let mut rows = to_rows(&batches);
        let eff = self.model.effective_column();
        let sk = self.model.surrogate_key(&self.name);
        rows.sort_by(|a, b| {
            let key = |r: &Row| self.model.key.iter().map(|k| pad(&r[k])).collect::<Vec<_>>();
            key(a).cmp(&key(b)).then_with(|| a[&eff].cmp(&b[&eff])).then_with(|| pad(&a[&sk]).cmp(&pad(&b[&sk])))
        });
        rows
    }
}

/// Numbers sort as numbers when padded.
fn pad(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_digit()) { format!("{s:0>20}") } else { s.to_owned() }
}

pub fn to_rows(batches: &[RecordBatch]) -> Vec<Row> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for b in batches {
        let formatters: Vec<_> = b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap()).collect();
        for i in 0..b.num_rows() {
            let mut row = Row::new();
            for (f, field) in formatters.iter().zip(b.schema().fields()) {
                row.insert(field.name().clone(), f.value(i).to_string());
            }
            rows.push(row);
        }
    }
    rows
}

/// One current row per key; surrogate keys unique; a key's ranges never overlap, and those
/// that follow one another (updates) leave no gap.
pub fn check_invariants(rows: &[Row], model: &ModelConfig, name: &str) {
    let sk = model.surrogate_key(name);
    let (eff, exp, cur) = (model.effective_column(), model.expiry_column(), model.columns.current.clone());
    let mut sks = HashSet::new();
    let mut by_key: BTreeMap<Vec<String>, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        assert!(sks.insert(r[&sk].clone()), "surrogate key {} repeats", r[&sk]);
        assert!(r[&exp] >= r[&eff], "a row expires before it starts: {r:?}");
        by_key.entry(model.key.iter().map(|k| r[k].clone()).collect()).or_default().push(r);
    }
    for (key, mut versions) in by_key {
        versions.sort_by(|a, b| a[&eff].cmp(&b[&eff]));
        let current: Vec<_> = versions.iter().filter(|r| r[&cur] == "true").collect();
        assert!(current.len() <= 1, "key {key:?} has {} current rows", current.len());
        if let Some(c) = current.first() {
            assert!(c[&exp].starts_with("9999-12-31"), "the current row of {key:?} is open");
            assert_eq!(c[&eff], versions.last().unwrap()[&eff], "the current row of {key:?} is its latest");
        }
        let half_open = model.dating == tidemark_core::models::Dating::SourceTime;
        for pair in versions.windows(2) {
            // Load dates are inclusive days; source times end where the next row starts.
            let apart = if half_open { pair[0][&exp] <= pair[1][&eff] } else { pair[0][&exp] < pair[1][&eff] };
            assert!(apart, "ranges of {key:?} overlap: {:?}", pair);
            assert_eq!(pair[0][&cur], "false");
        }
    }
}

/// The day before a `YYYY-MM-DD` date.
pub fn day_before(date: &str) -> String {
    (NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap() - chrono::Duration::days(1)).to_string()
}
