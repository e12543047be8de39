//! [`ModelLoad`]: one load of a load-date model, start to commit.
//!
//! Contract:
//! - One writer per model: the load holds the lease `marts/<name>` while it runs.
//! - Atomic: the dimension changes in one Delta commit (`txn` = model and load number). A
//!   crash at any point leaves it as before or as after; a re-run completes the load.
//! - Each file is consumed once: the files a load read are recorded with it, and a later load
//!   reads only files not recorded. With no new file, a load changes nothing.
//! - Run dates move forward: an earlier run date than the last load's is refused.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use tidemark_core::models::{Dating, ModelConfig};
use tidemark_core::{Clock, SystemClock};
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tidemark_lake::{LakeLocation, Lease, with_lease};

use crate::error::{ModelError, Result};
use crate::extract::{KeyCodec, SourceRows};
use crate::files::{LandingZone, unconsumed};
use crate::ledger::{COMMIT_KEY, ConsumedFile, LoadLedger, LoadRecord};
use crate::mart::{self, DimensionWriter, Layout, StateTable};
use crate::merge::{Emitted, Merge, MergeCounts, SourceInput};

/// What one load did.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadMetrics {
    pub model: String,
    /// The load's number; `None` when nothing new arrived (no commit).
    pub load: Option<i64>,
    pub run_date: NaiveDate,
    pub table_version: Option<u64>,
    pub files_read: u64,
    pub files_superseded: u64,
    pub rows_read: u64,
    pub counts: MergeCounts,
    /// Bytes a source-time load's query spilled to disk under its memory limit.
    pub spilled_bytes: u64,
    pub millis: u64,
}

impl LoadMetrics {
    /// A load that found nothing new (no commit).
    fn nothing(model: &str, run_date: NaiveDate) -> LoadMetrics {
        LoadMetrics {
            model: model.to_owned(),
            load: None,
            run_date,
            table_version: None,
            files_read: 0,
            files_superseded: 0,
            rows_read: 0,
            counts: MergeCounts::default(),
            spilled_bytes: 0,
            millis: 0,
        }
    }
}

/// Runs one load of a model.
pub struct ModelLoad {
    lake: LakeLocation,
    name: String,
    model: ModelConfig,
    run_date: Option<NaiveDate>,
    base_dir: PathBuf,
    clock: Arc<dyn Clock>,
    lease_ttl: Duration,
    target_file_size: u64,
    memory_limit: usize,
}

impl ModelLoad {
    pub fn new(lake: LakeLocation, name: &str, model: ModelConfig) -> ModelLoad {
        ModelLoad {
            lake,
            name: name.to_owned(),
            model,
            run_date: None,
            base_dir: PathBuf::from("."),
            clock: Arc::new(SystemClock),
            lease_ttl: Duration::from_secs(120),
            target_file_size: tidemark_lake::writer::TARGET_FILE_SIZE,
            memory_limit: crate::timeline::DEFAULT_MEMORY_LIMIT,
        }
    }

    /// The size at which the dimension's data files roll over (default 128 MiB, as history
    /// tables): smaller files let a reader skip more, larger ones mean fewer files per load.
    pub fn with_target_file_size(mut self, bytes: u64) -> ModelLoad {
        self.target_file_size = bytes.max(1);
        self
    }

    /// The memory a source-time load's query may hold before it spills sorts, windows and
    /// joins to the system's temporary folder (default 256 MiB).
    pub fn with_memory_limit(mut self, bytes: usize) -> ModelLoad {
        self.memory_limit = bytes;
        self
    }

    /// The load's date (default: today, UTC, by the clock).
    pub fn with_run_date(mut self, date: NaiveDate) -> ModelLoad {
        self.run_date = Some(date);
        self
    }

    /// Where relative `files:` folders are resolved (the config file's folder).
    pub fn with_base_dir(mut self, dir: PathBuf) -> ModelLoad {
        self.base_dir = dir;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> ModelLoad {
        self.clock = clock;
        self
    }

    pub fn layout(name: &str, model: &ModelConfig) -> Layout {
        Layout {
            surrogate_key: model.surrogate_key(name),
            key: model.key.clone(),
            attributes: model.attribute_columns(),
            type1: model.type1.clone(),
            effective: model.effective_column(),
            expiry: model.expiry_column(),
            current: model.columns.current.clone(),
            hash: model.columns.hash.clone(),
            source_at: model.sources.iter().map(|s| format!("_{}_at", s.name)).collect(),
        }
    }

    pub async fn run(self) -> Result<LoadMetrics> {
        let started = Instant::now();
        let started_at = self.clock.now();
        let resource = LakeLocation::mart_resource(&self.name);
        with_lease(&self.lake, &resource, "model", self.lease_ttl, self.clock.clone(), async |lease| {
            self.load(started, started_at, lease).await
        })
        .await
    }

    fn invalid(&self, message: impl Into<String>) -> ModelError {
        ModelError::Invalid { model: self.name.clone(), message: message.into() }
    }

    async fn load(&self, started: Instant, started_at: chrono::DateTime<chrono::Utc>, lease: &Lease) -> Result<LoadMetrics> {
        let ledger = LoadLedger::new(self.lake.clone());
        let mut table = mart::open_dimension(&self.lake, &self.name).await?;
        let last_load = match &table {
            Some(t) => mart::last_load(t, &self.name).await?,
            None => 0,
        };
        let mut records = ledger.loads(&self.name).await?;
        if records.last().map_or(0, |r| r.load) < last_load {
            // The dimension committed but the ledger row was lost to a crash: restore it.
            let record = self.record_from_commit(table.as_ref().expect("a load committed")).await?;
            ledger.record(&record).await?;
            records.push(record);
        }
        let last = records.iter().rev().find(|r| r.load == last_load);
        let run_date = self.run_date.unwrap_or_else(|| self.clock.now().date_naive());
        if let Some(last) = last {
            if run_date < last.run_date {
                return Err(ModelError::RunDateBeforeLastLoad { model: self.name.clone(), run_date, last: last.run_date });
            }
        }
        if self.model.dating == Dating::SourceTime {
            return self.load_history(started, started_at, lease, &ledger, last_load, last, run_date, table).await;
        }
        let mut consumed: HashMap<String, HashMap<String, u64>> = HashMap::new();
        for record in &records {
            for c in record.consumed() {
                consumed.entry(c.source).or_default().insert(c.file.path, c.file.size);
            }
        }
        let ctx = crate::bounded::session(self.memory_limit)?;
        let extraction = crate::extract::Extraction { ctx: &ctx, model: &self.name, key: &self.model.key };
        let mut extracted = Vec::new();
        let last_versions = last.map(LoadRecord::source_versions).unwrap_or_default();
        for (index, source) in self.model.sources.iter().enumerate() {
            if source.object.is_some() {
                let last_version = last_versions.get(&source.name).copied();
                extracted.push(extraction.live(index, &self.lake, source, last_version).await?);
                continue;
            }
            let zone = LandingZone::new(source, self.files_location(source.files.as_deref().expect("file source"))?)?;
            let listed = zone.list().await?;
            let new = unconsumed(listed, consumed.get(&source.name).unwrap_or(&HashMap::new()));
            let full = source.extract == tidemark_core::models::ExtractKind::Full && !new.is_empty();
            extracted.push(extraction.landed(index, source, &zone, new, full).await?);
        }
        let run_date_days = (run_date - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32;
        let files_read: u64 = extracted.iter().map(|e| e.files_read.len() as u64).sum();
        let files_superseded: u64 = extracted.iter().map(|e| e.files_superseded.len() as u64).sum();
        let mut metrics = LoadMetrics { files_read, files_superseded, ..LoadMetrics::nothing(&self.name, run_date) };
        let objects_changed = extracted.iter().any(|e| e.object_version.is_some());
        if files_read + files_superseded == 0 && !objects_changed {
            tracing::info!(model = %self.name, "no new input since the last load");
            metrics.millis = started.elapsed().as_millis() as u64;
            return Ok(metrics);
        }
        let layout = ModelLoad::layout(&self.name, &self.model);
        let dating_type = DataType::Date32;
        let dimension: SchemaRef = match &table {
            Some(t) => {
                use tidemark_lake::deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
                let snapshot = t.snapshot().map_err(|e| tidemark_lake::LakeError::delta(&self.name, e))?;
                let schema: Schema = snapshot.schema().as_ref().try_into_arrow()?;
                self.check_layout(&schema, &layout)?;
                Arc::new(schema)
            }
            None => {
                let (key, attributes) = self.fields_from(&extracted);
                layout.dimension_schema(&key, &attributes, dating_type)
            }
        };
        let dimension = order_like(&dimension, &layout);
        let state_schema = layout.state_schema(&dimension);
        let key_fields: Vec<Field> = layout.key.iter().map(|k| dimension.field_with_name(k).expect("key").clone()).collect();
        let codec = KeyCodec::new(key_fields)?;
        let mut inputs = Vec::new();
        let mut object_versions = Vec::new();
        let mut files = Vec::new();
        for (source, mut rows) in self.model.sources.iter().zip(extracted) {
            rows.rows.cast_to(&dimension).map_err(|e| self.invalid(format!("source {}: {e}", source.name)))?;
            object_versions.push(rows.object_version);
            files.extend(consumed_files(&source.name, &rows));
            inputs.push(SourceInput {
                name: source.name.clone(),
                attributes: source.columns.clone(),
                at_column: format!("_{}_at", source.name),
                rows: rows.rows,
                full: rows.full,
                authoritative: source.object.is_some(),
            });
        }
        let mut table = match table.take() {
            Some(t) => t,
            None => mart::create_dimension(&self.lake, &self.name, &dimension, &layout.current).await?,
        };
        let side = StateTable::read(&self.lake, &self.name, last_load, state_schema.clone()).await?;
        let current_files = mart::current_files(&table, &layout.current).await?;
        let current = mart::read_current(&table, &current_files, dimension.clone()).await?;
        let load = last_load + 1;
        let next_sk = last.map_or(0, |r| r.max_surrogate_key) + 1;
        let merge = Merge {
            model: &self.name,
            layout: &layout,
            dimension: dimension.clone(),
            state: state_schema.clone(),
            codec: &codec,
            sources: inputs,
            run_date: run_date_days,
            load,
            next_surrogate_key: next_sk,
            tracked: self.model.tracked_columns(),
            compatibility: self.model.compatibility,
        };
        let writer = DimensionWriter::new(&table, &layout.unique_columns(), self.target_file_size)?;
        let state_writer = StateTable::writer(&self.lake, &self.name, &state_schema, self.target_file_size).await?;
        // Encoding runs in its own task: the merge (and the decoding beside it) keep one core
        // busy while Parquet encoding and compression, the heaviest step, keep the other.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Emitted>(4);
        let writing = tokio::spawn(async move {
            let (mut writer, mut state_writer) = (writer, state_writer);
            while let Some(emitted) = rx.recv().await {
                match emitted {
                    Emitted::Dimension(batch) => writer.write(batch).await?,
                    Emitted::State(batch) => state_writer.write(batch).await?,
                }
            }
            Ok::<_, ModelError>((writer, state_writer))
        });
        let merged = merge
            .run(current, side, |emitted| {
                let tx = tx.clone();
                // A closed channel means the writer stopped; its own error is reported below.
                async move { tx.send(emitted).await.map_err(|_| self.invalid("the dimension writer stopped")) }
            })
            .await;
        drop(tx);
        let written = writing.await.map_err(|e| self.invalid(format!("the dimension writer failed: {e}")))?;
        // The writer's error is the cause when both stopped.
        let (writer, state_writer) = written?;
        let output = merged?;
        lease.ensure_held()?;
        state_writer.commit(load).await?;
        metrics.rows_read = output.rows_read;
        metrics.spilled_bytes = output.spilled_bytes;
        let rows_read = output.rows_read;
        // Objects keep the version read last; one unchanged this load keeps its earlier one.
        let mut versions = last_versions.clone();
        for (source, version) in self.model.sources.iter().zip(object_versions) {
            if let Some(v) = version {
                versions.insert(source.name.clone(), v);
            }
        }
        let versions = serde_json::to_string(&versions).expect("serialisable");
        let record =
            self.record(load, run_date, started_at, output.next_surrogate_key - 1, rows_read, &files, &output.counts, versions);
        let removes = current_files.into_iter().map(|(_, _, remove)| remove).collect();
        metrics.counts = output.counts;
        self.commit(writer, &mut table, lease, &ledger, record, removes, &layout, metrics, started).await
    }

    /// A source-time load: the dimension recomputed from the sources' histories, written whole.
    #[allow(clippy::too_many_arguments)]
    async fn load_history(
        &self,
        started: Instant,
        started_at: chrono::DateTime<chrono::Utc>,
        lease: &Lease,
        ledger: &LoadLedger,
        last_load: i64,
        last: Option<&LoadRecord>,
        run_date: NaiveDate,
        table: Option<tidemark_lake::deltalake::DeltaTable>,
    ) -> Result<LoadMetrics> {
        let layout = ModelLoad::layout(&self.name, &self.model);
        let mut metrics = LoadMetrics::nothing(&self.name, run_date);
        let sources = crate::timeline::Sources::open(&self.lake, &self.name, &self.model).await?;
        if table.is_some() && last.is_some_and(|l| l.source_versions() == sources.versions) {
            metrics.millis = started.elapsed().as_millis() as u64;
            return Ok(metrics);
        }
        let load = last_load + 1;
        let issued = last.map_or(0, |r| r.max_surrogate_key);
        let schema = sources.dimension_schema(&self.model, &layout)?;
        let previous_rows = match &table {
            Some(t) => mart::row_count(t).await?,
            None => 0,
        };
        let mut rows = crate::timeline::DimensionRows::start(
            &self.model,
            &layout,
            &sources,
            schema.clone(),
            table.as_ref(),
            issued,
            load,
            self.memory_limit,
        )
        .await?;
        let mut table = match table {
            Some(t) => t,
            None => mart::create_dimension(&self.lake, &self.name, &schema, &layout.current).await?,
        };
        let removes = mart::all_files(&table).await?;
        let mut writer = DimensionWriter::new(&table, &layout.unique_columns(), self.target_file_size)?;
        let mut tally = crate::timeline::RowTally { max_surrogate_key: issued, ..Default::default() };
        while let Some(batch) = rows.next(&mut tally).await? {
            writer.write(batch).await?;
        }
        metrics.spilled_bytes = rows.spilled_bytes();
        let counts = MergeCounts {
            inserted: tally.rows - tally.kept,
            deleted: previous_rows - tally.kept,
            unchanged: tally.kept,
            current_rows: tally.current,
            ..MergeCounts::default()
        };
        let versions = serde_json::to_string(&sources.versions).expect("serialisable");
        let record = self.record(load, run_date, started_at, tally.max_surrogate_key, 0, &[], &counts, versions);
        metrics.counts = counts;
        self.commit(writer, &mut table, lease, ledger, record, removes, &layout, metrics, started).await
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        load: i64,
        run_date: NaiveDate,
        started_at: chrono::DateTime<chrono::Utc>,
        max_surrogate_key: i64,
        rows_read: u64,
        files: &[ConsumedFile],
        counts: &MergeCounts,
        source_versions: String,
    ) -> LoadRecord {
        LoadRecord {
            model: self.name.clone(),
            load,
            run_date,
            started_at,
            finished_at: self.clock.now(),
            table_version: 0,
            max_surrogate_key,
            rows_read: rows_read as i64,
            files: serde_json::to_string(files).expect("serialisable"),
            counts: serde_json::to_string(counts).expect("serialisable"),
            source_versions,
        }
    }

    /// The load's one dimension commit (carrying its record), then its ledger row.
    #[allow(clippy::too_many_arguments)]
    async fn commit(
        &self,
        writer: DimensionWriter,
        table: &mut tidemark_lake::deltalake::DeltaTable,
        lease: &Lease,
        ledger: &LoadLedger,
        mut record: LoadRecord,
        removes: Vec<tidemark_lake::deltalake::kernel::Action>,
        layout: &Layout,
        mut metrics: LoadMetrics,
        started: Instant,
    ) -> Result<LoadMetrics> {
        let metadata = HashMap::from([(COMMIT_KEY.to_owned(), serde_json::to_value(&record).expect("serialisable"))]);
        lease.ensure_held()?;
        let version = writer.commit(table, &self.name, record.load, removes, metadata, &layout.current).await?;
        record.table_version = version as i64;
        ledger.record(&record).await?;
        metrics.load = Some(record.load);
        metrics.table_version = Some(version);
        metrics.millis = started.elapsed().as_millis() as u64;
        let c = &metrics.counts;
        tracing::info!(
            model = %self.name, load = record.load, run_date = %record.run_date, table_version = version,
            inserted = c.inserted, updated = c.updated, deleted = c.deleted, unchanged = c.unchanged,
            stale_rows = c.stale_rows, files = metrics.files_read, millis = metrics.millis,
            "model load committed"
        );
        Ok(metrics)
    }

    fn files_location(&self, files: &str) -> Result<LakeLocation> {
        files_location(&self.lake, &self.base_dir, files)
    }

    /// Key and attribute fields for a new dimension: declared types, else what the files held.
    fn fields_from(&self, extracted: &[SourceRows]) -> (Vec<Field>, Vec<Field>) {
        let primary = extracted[0].rows.schema();
        let key = self.model.key.iter().map(|k| primary.field_with_name(k).expect("key read").clone()).collect();
        let mut attributes = Vec::new();
        for (source, rows) in self.model.sources.iter().zip(extracted) {
            for column in &source.columns {
                attributes.push(rows.rows.schema().field_with_name(column).expect("attribute read").clone());
            }
        }
        (key, attributes)
    }

    fn check_layout(&self, schema: &Schema, layout: &Layout) -> Result<()> {
        let wanted = layout.key.iter().chain(&layout.attributes).chain(&layout.source_at).chain([
            &layout.surrogate_key,
            &layout.effective,
            &layout.expiry,
            &layout.current,
            &layout.hash,
        ]);
        for name in wanted {
            if schema.field_with_name(name).is_err() {
                return Err(ModelError::Layout {
                    model: self.name.clone(),
                    detail: format!("it has no column {name} (the model's columns changed since it was built)"),
                });
            }
        }
        Ok(())
    }

    async fn record_from_commit(&self, table: &tidemark_lake::deltalake::DeltaTable) -> Result<LoadRecord> {
        // An erasure's scrub may have committed since.
        if let Some(info) = tidemark_lake::scrub::last_commit_besides_housekeeping(table, &self.name).await?
            && let Some(v) = info.info.get(COMMIT_KEY)
        {
            let mut record: LoadRecord = serde_json::from_value(v.clone()).map_err(|e| ModelError::Layout {
                model: self.name.clone(),
                detail: format!("its last commit's load record: {e}"),
            })?;
            record.table_version = table.version().unwrap_or_default() as i64;
            return Ok(record);
        }
        Err(ModelError::Layout { model: self.name.clone(), detail: "its last commit carries no load record".into() })
    }
}

/// A source's landing zone: a URL, an absolute folder, or a folder relative to `base_dir`;
/// object-store options as the lake's.
pub fn files_location(lake: &LakeLocation, base_dir: &std::path::Path, files: &str) -> Result<LakeLocation> {
    let is_url = url::Url::parse(files).is_ok_and(|u| u.scheme().len() > 1);
    let path = if is_url || std::path::Path::new(files).is_absolute() {
        files.to_owned()
    } else {
        base_dir.join(files).display().to_string()
    };
    Ok(LakeLocation::parse(&path)?.with_storage_options(lake.storage_options().clone()))
}

/// The dimension's columns in the model's order (a table read back lists partition columns last).
fn order_like(schema: &SchemaRef, layout: &Layout) -> SchemaRef {
    let mut names: Vec<&String> = vec![&layout.surrogate_key];
    names.extend(&layout.key);
    names.extend(&layout.attributes);
    names.extend([&layout.effective, &layout.expiry, &layout.current, &layout.hash]);
    let load_id = mart::LOAD_ID.to_owned();
    names.push(&load_id);
    names.extend(&layout.source_at);
    let fields: Vec<Field> = names.iter().filter_map(|n| schema.field_with_name(n).ok().cloned()).collect();
    Arc::new(Schema::new(fields))
}

fn consumed_files(source: &str, rows: &SourceRows) -> Vec<ConsumedFile> {
    let read = rows.files_read.iter().map(|f| ConsumedFile { source: source.to_owned(), file: f.clone(), superseded: false });
    let skipped =
        rows.files_superseded.iter().map(|f| ConsumedFile { source: source.to_owned(), file: f.clone(), superseded: true });
    read.chain(skipped).collect()
}
