//! Change files give the history logical replication gives: one seeded sequence of changes is
//! committed to a real PostgreSQL server, replicated by the Postgres source, recorded by the
//! database's own trigger oracle, and written out as Debezium events and as AWS DMS CSV and
//! Parquet files (produced here from the oracle, as the tools would write them). Every lake
//! table must equal the oracle's history, version for version.

#[path = "../../postgres/tests/common/mod.rs"]
#[allow(dead_code)]
mod common;

mod fixtures;

use std::collections::HashMap;

use common::oracle::{self, OracleChange};
use tidemark_cdc::{CdcFormat, CdcSource};
use tidemark_core::sources::{CdcFilesConfig, ValueType};
use tidemark_lake::LakeLocation;
use tidemark_lake::ingest::{Ingest, IngestMetrics};
use tidemark_lake::source::{Change, Position, Source, SourceError};
use tidemark_postgres::PostgresSource;

const TABLES: &str = "
    CREATE TABLE orders (id int PRIMARY KEY, customer text, amount numeric(10,2), placed date, at timestamptz,
        paid boolean, note text);
    ALTER TABLE orders ALTER COLUMN note SET STORAGE EXTERNAL;
    CREATE TABLE lines (order_id int, line int, qty bigint, tags text[], attrs jsonb, PRIMARY KEY (order_id, line));";

struct Lab {
    lake: LakeLocation,
    dir: tempfile::TempDir,
    config: tidemark_postgres::PostgresConfig,
    db: tokio_postgres::Client,
}

impl Lab {
    fn folder(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn cdc(&self, name: &str, format: CdcFormat, folder: &str) -> CdcSource {
        let mut config = CdcFilesConfig::new(folder);
        config.keys.insert("public.lines".into(), vec!["order_id".into(), "line".into()]);
        if format == CdcFormat::Dms {
            config.timestamp_column = Some("commit_ts".into());
            let types = [
                ("id", ValueType::Integer),
                ("amount", ValueType::Decimal { precision: 10, scale: 2 }),
                ("placed", ValueType::Date),
                ("at", ValueType::Timestamp),
                ("paid", ValueType::Boolean),
            ];
            config.column_types.insert("public.orders".into(), types.iter().map(|(c, t)| (c.to_string(), *t)).collect());
        }
        let files = LakeLocation::parse(self.folder(folder).to_str().unwrap()).unwrap();
        CdcSource::new(name, format, &config, &["public.*".to_owned()], files, self.lake.clone()).unwrap()
    }

    async fn ingest(&self, source: Box<dyn Source>) -> Result<IngestMetrics, tidemark_lake::ingest::IngestError> {
        Ingest::new(self.lake.clone(), source).with_commit_rows(50).await
    }

    async fn replicate(&self) -> IngestMetrics {
        self.ingest(Box::new(PostgresSource::new("parity_pg", self.config.clone()))).await.unwrap()
    }

    /// Writes the changes after `from` as files of every format; returns how many there were.
    fn land(&self, changes: &[OracleChange], from: usize, batch: usize) -> usize {
        let new = &changes[from..];
        fixtures::debezium_files(&self.folder("debezium"), new, batch);
        fixtures::dms_files(&self.folder("dms_csv"), new, batch, fixtures::DmsFormat::Csv);
        fixtures::dms_files(&self.folder("dms_parquet"), new, batch, fixtures::DmsFormat::Parquet);
        new.len()
    }

    fn sources(&self) -> Vec<(&'static str, Box<dyn Source>)> {
        vec![
            ("parity_deb", Box::new(self.cdc("parity_deb", CdcFormat::Debezium, "debezium")) as Box<dyn Source>),
            ("parity_csv", Box::new(self.cdc("parity_csv", CdcFormat::Dms, "dms_csv"))),
            ("parity_pq", Box::new(self.cdc("parity_pq", CdcFormat::Dms, "dms_parquet"))),
        ]
    }

    /// Every lake equals the oracle: orders from all four sources, lines (with its truncate
    /// and key changes, which DMS files cannot express) from replication and Debezium.
    async fn assert_all_match(&self) -> usize {
        let mut compared = 0;
        for source in ["parity_pg", "parity_deb", "parity_csv", "parity_pq"] {
            compared += oracle::assert_lake_matches(&self.db, &self.lake, source, "orders", "orders").await;
        }
        for source in ["parity_pg", "parity_deb"] {
            compared += oracle::assert_lake_matches(&self.db, &self.lake, source, "lines", "lines").await;
        }
        compared
    }
}

/// A source that fails its first acknowledgement: the lake has committed, the files are not
/// yet marked read, as after a crash at that point.
struct FailFirstAck(CdcSource, bool);

#[async_trait::async_trait]
impl Source for FailFirstAck {
    fn name(&self) -> &str {
        self.0.name()
    }
    async fn start(&mut self, held: &HashMap<String, Position>) -> Result<(), SourceError> {
        self.0.start(held).await
    }
    async fn next(&mut self) -> Result<Option<Change>, SourceError> {
        self.0.next().await
    }
    async fn acknowledge(&mut self, position: Position) -> Result<(), SourceError> {
        if !self.1 {
            self.1 = true;
            return Err(SourceError::new("simulated crash after the commit", true));
        }
        self.0.acknowledge(position).await
    }
}

#[tokio::test]
async fn debezium_and_dms_files_give_the_history_replication_gives() {
    let (db, config) = common::database("cdc_parity").await;
    db.batch_execute(TABLES).await.unwrap();
    oracle::install(&db, &["orders", "lines"]).await;
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
    let lab = Lab { lake, dir, config, db };
    assert_eq!(lab.replicate().await.versions(), 0, "empty tables: an empty copy");

    // Round 1: inserts, updates (some leaving the TOASTed note unchanged), deletes, key changes.
    let mut workload = fixtures::Workload::new(7);
    workload.run(&lab.db, 60, false).await;
    lab.replicate().await;
    let changes = oracle::changes(&lab.db).await;
    let landed = lab.land(&changes, 0, 40);
    for (name, source) in lab.sources() {
        let m = lab.ingest(source).await.unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(m.versions() > 0, "{name} read the first files");
    }
    let compared = lab.assert_all_match().await;
    assert!(compared > 200, "a real workload was compared: {compared} versions");

    // Round 2 lands new files after the first were read, with a TRUNCATE among the changes.
    workload.run(&lab.db, 50, true).await;
    lab.replicate().await;
    let changes = oracle::changes(&lab.db).await;
    assert!(changes.iter().any(|c| c.op == 'T'));
    let landed = landed + lab.land(&changes, landed, 25);
    for (name, source) in lab.sources() {
        lab.ingest(source).await.unwrap_or_else(|e| panic!("{name}: {e:#}"));
    }
    lab.assert_all_match().await;

    // Nothing is read twice.
    for (name, source) in lab.sources() {
        assert_eq!(lab.ingest(source).await.unwrap().versions(), 0, "{name}: files already read are not read again");
    }

    // Round 3: a run that stops after its commit and before its files are marked read. The
    // re-run reads those files again and the lake's positions keep out what landed.
    workload.run(&lab.db, 20, false).await;
    lab.replicate().await;
    let changes = oracle::changes(&lab.db).await;
    lab.land(&changes, landed, 200);
    let failing = FailFirstAck(lab.cdc("parity_deb", CdcFormat::Debezium, "debezium"), false);
    let err = lab.ingest(Box::new(failing)).await.unwrap_err();
    assert!(err.to_string().contains("simulated crash"), "{err}");
    let claims = tidemark_cdc::claims::file_records(&lab.lake, "parity_deb").await.unwrap();
    assert!(claims.iter().any(|c| !c.done), "the interrupted run left its files claimed, not read");
    for (name, source) in lab.sources() {
        lab.ingest(source).await.unwrap_or_else(|e| panic!("{name}: {e:#}"));
    }
    lab.assert_all_match().await;
    let claims = tidemark_cdc::claims::file_records(&lab.lake, "parity_deb").await.unwrap();
    assert!(claims.iter().all(|c| c.done), "every file read once the lake holds it");
}
