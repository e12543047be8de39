//! [`CdcSource`]: a folder or `s3://` prefix of change files as a [`Source`].

use std::collections::{HashMap, VecDeque};
use std::io::Read as _;
use std::sync::Arc;

use tidemark_core::sources::CdcFilesConfig;
use tidemark_core::{Clock, SystemClock};
use tidemark_lake::source::{Change, Position, Source, SourceError, TableSpec};
use tidemark_lake::{HistoryTable, LakeLocation};
use tidemark_models::files::{LandedFile, LandingZone};

use crate::claims::{Claim, Claims};
use crate::error::CdcError;
use crate::json_values::Conv;
use crate::segments::{Item, Segment, Tables, file_end, segment_position};

/// The format of a source's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdcFormat {
    /// Debezium change events, one JSON value per line (`.json`, `.jsonl`, `.ndjson`, gzipped
    /// with `.gz`).
    Debezium,
    /// AWS DMS output: CSV with a header row or Parquet (`.csv`, `.csv.gz`, `.parquet`).
    Dms,
}

impl CdcFormat {
    fn extensions(self) -> &'static [&'static str] {
        match self {
            CdcFormat::Debezium => &[".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz"],
            CdcFormat::Dms => &[".csv", ".csv.gz", ".parquet"],
        }
    }
}

/// Change files read in place, each once: files are claimed in the lake before they are read
/// and marked done once the lake acknowledged them (see [`crate::claims`]), so a crash at any
/// point re-reads only what the lake does not hold.
///
/// Order: full-load (DMS `LOAD*`) files first, then change files by path; a file that arrives
/// later is read on a later run, whatever its name. A file is one transaction (cut where a
/// table's columns change inside it).
pub struct CdcSource {
    name: String,
    format: CdcFormat,
    tables: Tables,
    zone: LandingZone,
    lake: LakeLocation,
    clock: Arc<dyn Clock>,
    claims: Option<Claims>,
    held: HashMap<String, Position>,
    queue: VecDeque<Claim>,
    out: VecDeque<Change>,
    /// The definition last given to the lake, per table.
    defined: HashMap<String, TableSpec>,
    /// Fields inferred from earlier schema-less Debezium files, per table.
    inferred: HashMap<String, Vec<(String, Conv)>>,
}

impl CdcSource {
    /// The source `name` reading `files` (a [`LakeLocation`] for the configured `path`, with the
    /// lake's storage options) into `lake`.
    pub fn new(
        name: impl Into<String>,
        format: CdcFormat,
        config: &CdcFilesConfig,
        patterns: &[String],
        files: LakeLocation,
        lake: LakeLocation,
    ) -> Result<CdcSource, CdcError> {
        Ok(CdcSource {
            name: name.into(),
            format,
            tables: Tables::new(config, patterns)?,
            zone: LandingZone::with_extensions(files, format.extensions())?,
            lake,
            clock: Arc::new(SystemClock),
            claims: None,
            held: HashMap::new(),
            queue: VecDeque::new(),
            out: VecDeque::new(),
            defined: HashMap::new(),
            inferred: HashMap::new(),
        })
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> CdcSource {
        self.clock = clock;
        self
    }

    async fn plan(&mut self) -> Result<(), CdcError> {
        let mut claims = Claims::load(&self.lake, &self.name).await?;
        let listed = self.zone.list().await?;
        let listed_paths: HashMap<&str, u64> = listed.iter().map(|f| (f.path.as_str(), f.size)).collect();
        for claim in claims.files.values() {
            match listed_paths.get(claim.path.as_str()) {
                Some(&now) if now != claim.size => {
                    return Err(CdcError::Rewritten { file: self.label(&claim.path), was: claim.size, now });
                }
                None if !claim.done => {
                    return Err(CdcError::file(
                        &self.label(&claim.path),
                        None,
                        "claimed by an interrupted run but gone: restore it, or the lake misses its changes",
                    ));
                }
                _ => {}
            }
        }
        let mut new: Vec<&LandedFile> = listed.iter().filter(|f| !claims.files.contains_key(&f.path)).collect();
        new.sort_by_key(|f| (!crate::dms::is_full_load(&f.path) || self.format != CdcFormat::Dms, f.path.clone()));
        let mut pending: Vec<Claim> = claims.files.values().filter(|c| !c.done).cloned().collect();
        pending.sort_by_key(|c| c.ordinal);
        if !new.is_empty() {
            let files: Vec<(String, u64)> = new.iter().map(|f| (f.path.clone(), f.size)).collect();
            pending.extend(claims.claim(&files, self.clock.now()).await?);
        }
        tracing::info!(source = self.name, files = pending.len(), "change files to read");
        self.queue = pending.into();
        self.claims = Some(claims);
        Ok(())
    }

    fn label(&self, path: &str) -> String {
        self.zone.label(&LandedFile { path: path.to_owned(), size: 0 })
    }

    /// Reads the next file into `out`; false when none is left.
    async fn read_next(&mut self) -> Result<bool, CdcError> {
        let Some(claim) = self.queue.pop_front() else { return Ok(false) };
        let label = self.label(&claim.path);
        let bytes = self.zone.read(&LandedFile { path: claim.path.clone(), size: claim.size }).await?;
        let bytes = if claim.path.to_ascii_lowercase().ends_with(".gz") {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(bytes.as_ref())
                .read_to_end(&mut out)
                .map_err(|e| CdcError::file(&label, None, format!("not a readable gzip file: {e}")))?;
            bytes::Bytes::from(out)
        } else {
            bytes
        };
        let segments = match self.format {
            CdcFormat::Debezium => crate::debezium::parse(&bytes, &label, claim.ordinal, &self.tables, &mut self.inferred)?,
            CdcFormat::Dms => crate::dms::parse(&bytes, &claim.path, &label, claim.ordinal, &self.tables, self.clock.now())?,
        };
        self.emit(claim.ordinal, segments).await?;
        Ok(true)
    }

    /// A file's segments as changes, skipping per table what the lake holds.
    async fn emit(&mut self, ordinal: i64, segments: Vec<Segment>) -> Result<(), CdcError> {
        let count = segments.len();
        if count == 0 {
            self.out.push_back(Change::Commit { position: file_end(ordinal), table: None });
            return Ok(());
        }
        for (index, segment) in segments.into_iter().enumerate() {
            let position = segment_position(ordinal, index, count);
            for item in segment.items {
                let table = item.table().to_owned();
                if self.held.get(&table).is_some_and(|&held| held >= position) {
                    continue;
                }
                let spec = match segment.specs.get(&table) {
                    Some(spec) => Some(spec.clone()),
                    None if self.defined.contains_key(&table) => None,
                    // A truncate of a table this file has no rows of.
                    None => match &item {
                        Item::Truncate { key, .. } => self.spec_in_lake(&table, key).await?,
                        Item::Versions(_) => unreachable!("a segment defines every table it has versions of"),
                    },
                };
                if let Some(spec) = spec {
                    if self.defined.get(&table) != Some(&spec) {
                        self.defined.insert(table.clone(), spec.clone());
                        self.out.push_back(Change::Table(spec));
                    }
                }
                match item {
                    Item::Versions(v) => self.out.push_back(Change::Versions(v)),
                    Item::Truncate { table, at, lsn, .. } => {
                        if self.defined.contains_key(&table) {
                            self.out.push_back(Change::Truncate { table, at, lsn });
                        }
                    }
                }
            }
            self.out.push_back(Change::Commit { position, table: None });
        }
        Ok(())
    }

    /// The definition of a table as the lake holds it (its columns but the metadata ones), or
    /// `None` when the lake has no such table (a truncate of it deletes nothing).
    async fn spec_in_lake(&self, table: &str, key: &[String]) -> Result<Option<TableSpec>, CdcError> {
        let Some(t) = HistoryTable::open_source(&self.lake, &self.name, table).await? else { return Ok(None) };
        let schema = t.schema()?;
        let fields = schema
            .fields()
            .iter()
            .filter(|f| !tidemark_lake::columns::METADATA_COLUMNS.contains(&f.name().as_str()))
            .map(|f| f.as_ref().clone())
            .collect();
        Ok(Some(TableSpec { name: table.to_owned(), fields, key: key.to_vec(), policies: Vec::new() }))
    }
}

#[async_trait::async_trait]
impl Source for CdcSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn start(&mut self, held: &HashMap<String, Position>) -> Result<(), SourceError> {
        self.held = held.clone();
        self.plan().await?;
        Ok(())
    }

    async fn next(&mut self) -> Result<Option<Change>, SourceError> {
        loop {
            if let Some(change) = self.out.pop_front() {
                return Ok(Some(change));
            }
            if !self.read_next().await? {
                return Ok(None);
            }
        }
    }

    async fn acknowledge(&mut self, position: Position) -> Result<(), SourceError> {
        let now = self.clock.now();
        if let Some(claims) = &mut self.claims {
            claims.acknowledge(position, now).await?;
        }
        Ok(())
    }
}
