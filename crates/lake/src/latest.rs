//! [`LatestVersionExec`]: each record's last version, in one pass over a history table's rows.
//!
//! The live state is what most queries read, so it gets its own operator instead of a plan of
//! stock ones. Window functions sort every version; an aggregate of the greatest version plus a
//! join back reads and hashes every `Id` twice. This operator reads each version once: a hash
//! table from `Id` to the best version seen so far, then one gather of the winners
//! (BENCHMARKS.md, "Querying the lake").

use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use deltalake::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch};
use deltalake::arrow::compute::{cast, interleave_record_batch};
use deltalake::arrow::datatypes::DataType;
use deltalake::datafusion::common::hash_utils::RandomState;
use deltalake::datafusion::common::tree_node::TreeNodeRecursion;
use deltalake::datafusion::common::{DataFusionError, Result};
use deltalake::datafusion::execution::TaskContext;
use deltalake::datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use deltalake::datafusion::physical_expr::EquivalenceProperties;
use deltalake::datafusion::physical_plan::execution_plan::{Boundedness, CardinalityEffect, EmissionType};
use deltalake::datafusion::physical_plan::expressions::Column;
use deltalake::datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use deltalake::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use deltalake::datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties, PhysicalExpr, PlanProperties,
    SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt, stream};
use hashbrown::HashTable;

use crate::columns::{DELETED, INGESTED_AT, LSN, VERSION_AT, key_column};

/// Input column positions of the record key and the version order.
#[derive(Debug, Clone, Copy)]
struct KeyColumns {
    /// The record key: `Id`, or `_key` for other sources' tables.
    id: usize,
    version_at: usize,
    /// The change position, in tables that have one.
    lsn: Option<usize>,
    ingested_at: usize,
    deleted: usize,
}

/// Keeps, of each record's versions in its input, the one that comes last in the version order
/// ([`crate::columns::version_order`]): greatest `_version_at`, then greatest `_lsn` (where the
/// table has one), then greatest `_ingested_at`,
/// then a delete after a non-delete (a delete captured in the same run as an update at the same
/// instant wins). Deletes are kept, so callers choose whether a record whose last version is a
/// delete counts (live state drops it).
///
/// - **Input**: any plan with `Id`, `_version_at`, `_ingested_at` and `_deleted` columns. Null
///   timestamps order first and a null `_deleted` counts as false; null `Id`s form one record.
/// - **Output**: the input's schema, one row per distinct `Id` per partition, emitted after the
///   input is exhausted (in order of first appearance). The input is required hash-partitioned
///   by `Id`, so partitions run independently and together hold each record once.
/// - **Ties**: two versions equal in all three columns cannot both come from a sync (it
///   de-duplicates on `Id`, `_version_at`, `_deleted`); if a hand-made table has them, the first
///   read wins.
/// - **Memory**: the retained input batches plus a hash table of one slot per record, registered
///   with the session's memory pool. Batches are compacted to the current winners whenever the
///   superseded versions outnumber the records, so memory stays within about three times the
///   output however many versions there are.
#[derive(Debug)]
pub struct LatestVersionExec {
    input: Arc<dyn ExecutionPlan>,
    columns: KeyColumns,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl KeyColumns {
    fn of(schema: &deltalake::arrow::datatypes::Schema) -> Result<KeyColumns> {
        Ok(KeyColumns {
            id: schema.index_of(key_column(schema))?,
            version_at: schema.index_of(VERSION_AT)?,
            lsn: schema.index_of(LSN).ok(),
            ingested_at: schema.index_of(INGESTED_AT)?,
            deleted: schema.index_of(DELETED)?,
        })
    }
}

impl LatestVersionExec {
    pub fn try_new(input: Arc<dyn ExecutionPlan>) -> Result<Self> {
        let schema = input.schema();
        let columns = KeyColumns::of(&schema)?;
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            input.output_partitioning().clone(),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(LatestVersionExec { input, columns, properties: Arc::new(properties), metrics: ExecutionPlanMetricsSet::new() })
    }
}

impl LatestVersionExec {
    fn key_name(&self) -> String {
        self.input.schema().field(self.columns.id).name().clone()
    }
}

impl DisplayAs for LatestVersionExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(f, "LatestVersionExec: per={}", self.key_name()),
            DisplayFormatType::TreeRender => write!(f, "per={}", self.key_name()),
        }
    }
}

impl ExecutionPlan for LatestVersionExec {
    fn name(&self) -> &str {
        "LatestVersionExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        let id: Arc<dyn PhysicalExpr> = Arc::new(Column::new(&self.key_name(), self.columns.id));
        vec![Distribution::KeyPartitioned(vec![id])]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        match (children.pop(), children.is_empty()) {
            (Some(input), true) => Ok(Arc::new(LatestVersionExec::try_new(input)?)),
            _ => Err(DataFusionError::Internal("LatestVersionExec takes one input".into())),
        }
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::LowerEqual
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let reservation = MemoryConsumer::new(format!("LatestVersionExec[{partition}]")).register(context.memory_pool());
        let batch_size = context.session_config().batch_size().max(1);
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let columns = self.columns;
        let schema = self.schema();
        let latest = async move {
            let mut latest = Latest::new(columns, reservation);
            let mut input = input;
            while let Some(batch) = input.next().await {
                let batch = batch?;
                let _timer = metrics.elapsed_compute().timer();
                latest.push(batch)?;
            }
            Ok::<_, DataFusionError>(latest.into_output(batch_size, metrics))
        };
        let output = stream::once(latest).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, output)))
    }
}

/// Where a record's best version so far is, and its place in the version order.
#[derive(Debug, Clone, Copy)]
struct Slot {
    batch: u32,
    row: u32,
    order: (i64, i64, i64, bool),
}

/// The hash table's key for a 32-bit tag of an `Id`'s hash. Entries carry the tag, so growing
/// the table rehashes without touching the slots (random reads that cost as much as the
/// inserts); multiplying by an odd constant spreads the tag into the high bits hashbrown probes
/// with.
fn table_hash(tag: u32) -> u64 {
    u64::from(tag).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A retained input batch and its `Id` column in a layout rows can be compared in.
struct Retained {
    batch: RecordBatch,
    ids: Ids,
}

/// The `Id` column of one batch, read as bytes; `None` for a null.
enum Ids {
    Utf8(deltalake::arrow::array::StringArray),
    Large(deltalake::arrow::array::LargeStringArray),
    View(deltalake::arrow::array::StringViewArray),
}

impl Ids {
    fn new(array: &ArrayRef) -> Result<Ids> {
        Ok(match array.data_type() {
            DataType::Utf8 => Ids::Utf8(array.as_string::<i32>().clone()),
            DataType::LargeUtf8 => Ids::Large(array.as_string::<i64>().clone()),
            DataType::Utf8View => Ids::View(array.as_string_view().clone()),
            // Other sources' keys (numbers, say) compare by their text.
            _ => Ids::Utf8(cast(array, &DataType::Utf8)?.as_string::<i32>().clone()),
        })
    }

    fn get(&self, row: usize) -> Option<&[u8]> {
        match self {
            Ids::Utf8(a) => a.is_valid(row).then(|| a.value(row).as_bytes()),
            Ids::Large(a) => a.is_valid(row).then(|| a.value(row).as_bytes()),
            Ids::View(a) => a.is_valid(row).then(|| a.value(row).as_bytes()),
        }
    }
}

fn micros(array: &ArrayRef) -> Result<Int64Array> {
    Ok(cast(array, &DataType::Int64)?.as_primitive().clone())
}

/// The per-partition state of [`LatestVersionExec`].
struct Latest {
    columns: KeyColumns,
    /// (slot index, tag) per record.
    table: HashTable<(u32, u32)>,
    slots: Vec<Slot>,
    retained: Vec<Retained>,
    hasher: RandomState,
    reservation: MemoryReservation,
}

impl Latest {
    fn new(columns: KeyColumns, reservation: MemoryReservation) -> Latest {
        Latest {
            columns,
            table: HashTable::new(),
            slots: Vec::new(),
            retained: Vec::new(),
            hasher: RandomState::default(),
            reservation,
        }
    }

    fn push(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let c = self.columns;
        let version_at = micros(batch.column(c.version_at))?;
        let ingested_at = micros(batch.column(c.ingested_at))?;
        let lsn = c.lsn.map(|i| micros(batch.column(i))).transpose()?;
        let deleted: BooleanArray = batch.column(c.deleted).as_boolean().clone();
        let ids = Ids::new(batch.column(c.id))?;
        let rows = batch.num_rows();
        // Slots address rows with 32-bit numbers, which keeps the hash table's entries small.
        if self.slots.len() + rows > u32::MAX as usize {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "LatestVersionExec holds at most {} records per partition: raise datafusion.execution.target_partitions",
                u32::MAX
            )));
        }
        let index = u32::try_from(self.retained.len()).map_err(|_| DataFusionError::Internal("too many batches".into()))?;
        self.retained.push(Retained { batch, ids });
        let Latest { table, slots, retained, hasher, .. } = self;
        let ids = &retained[index as usize].ids;
        for row in 0..rows {
            let id = ids.get(row);
            let full = hasher.hash_one(id);
            let tag = (full ^ (full >> 32)) as u32;
            let hash = table_hash(tag);
            let order = (
                if version_at.is_valid(row) { version_at.value(row) } else { i64::MIN },
                lsn.as_ref().filter(|l| l.is_valid(row)).map_or(i64::MIN, |l| l.value(row)),
                if ingested_at.is_valid(row) { ingested_at.value(row) } else { i64::MIN },
                deleted.is_valid(row) && deleted.value(row),
            );
            let found = table.find(hash, |&(s, t)| {
                let slot = &slots[s as usize];
                t == tag && retained[slot.batch as usize].ids.get(slot.row as usize) == id
            });
            let candidate = Slot { batch: index, row: row as u32, order };
            match found {
                Some(&(s, _)) => {
                    let slot = &mut slots[s as usize];
                    if order > slot.order {
                        *slot = candidate;
                    }
                }
                None => {
                    table.insert_unique(hash, (slots.len() as u32, tag), |&(_, t)| table_hash(t));
                    slots.push(candidate);
                }
            }
        }
        if self.retained_rows() >= 2 * self.slots.len() + 8192 {
            self.compact()?;
        }
        let size = self.retained.iter().map(|r| r.batch.get_array_memory_size()).sum::<usize>()
            + self.slots.capacity() * size_of::<Slot>()
            + self.table.capacity() * size_of::<(u32, u32)>();
        self.reservation.try_resize(size)
    }

    /// Replaces the retained batches with one holding only the current winners.
    fn compact(&mut self) -> Result<()> {
        let winners = self.gather(&self.slots)?;
        let winners = gc_views(winners)?;
        let ids = Ids::new(winners.column(self.columns.id))?;
        for (row, slot) in self.slots.iter_mut().enumerate() {
            slot.batch = 0;
            slot.row = row as u32;
        }
        self.retained = vec![Retained { batch: winners, ids }];
        Ok(())
    }

    fn retained_rows(&self) -> usize {
        self.retained.iter().map(|r| r.batch.num_rows()).sum()
    }

    fn gather(&self, slots: &[Slot]) -> Result<RecordBatch> {
        let batches: Vec<&RecordBatch> = self.retained.iter().map(|r| &r.batch).collect();
        let indices: Vec<(usize, usize)> = slots.iter().map(|s| (s.batch as usize, s.row as usize)).collect();
        Ok(interleave_record_batch(&batches, &indices)?)
    }

    /// The winners, `batch_size` rows at a time; the state is dropped with the last batch.
    fn into_output(self, batch_size: usize, metrics: BaselineMetrics) -> impl futures::Stream<Item = Result<RecordBatch>> {
        let chunks = self.slots.len().div_ceil(batch_size);
        stream::iter(0..chunks).map(move |chunk| {
            let _timer = metrics.elapsed_compute().timer();
            let end = ((chunk + 1) * batch_size).min(self.slots.len());
            let batch = self.gather(&self.slots[chunk * batch_size..end])?;
            metrics.record_output(batch.num_rows());
            Ok(batch)
        })
    }
}

/// Copies string and binary views out of the buffers they share with superseded rows, so
/// compaction actually frees them.
fn gc_views(batch: RecordBatch) -> Result<RecordBatch> {
    if !batch.columns().iter().any(|c| matches!(c.data_type(), DataType::Utf8View | DataType::BinaryView)) {
        return Ok(batch);
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8View => Arc::new(c.as_string_view().gc()) as ArrayRef,
            DataType::BinaryView => Arc::new(c.as_binary_view().gc()) as ArrayRef,
            _ => Arc::clone(c),
        })
        .collect();
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use deltalake::arrow::array::{StringViewArray, TimestampMicrosecondArray};
    use deltalake::arrow::datatypes::{Field, Schema, SchemaRef, TimeUnit};
    use deltalake::datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool};

    use super::*;
    use crate::columns::ID;

    /// One version: Id, `_version_at`, `_ingested_at`, `_deleted`, and a payload telling it apart.
    pub(crate) type Version = (Option<&'static str>, Option<i64>, Option<i64>, Option<bool>, String);

    pub(crate) fn schema() -> SchemaRef {
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        Arc::new(Schema::new(vec![
            Field::new(ID, DataType::Utf8View, true),
            Field::new("Name", DataType::Utf8, true),
            Field::new(VERSION_AT, ts.clone(), true),
            Field::new(DELETED, DataType::Boolean, true),
            Field::new(INGESTED_AT, ts, true),
        ]))
    }

    pub(crate) fn batch(versions: &[Version]) -> RecordBatch {
        let ts = |f: fn(&Version) -> Option<i64>| {
            Arc::new(TimestampMicrosecondArray::from(versions.iter().map(f).collect::<Vec<_>>()).with_timezone("UTC")) as ArrayRef
        };
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringViewArray::from(versions.iter().map(|v| v.0).collect::<Vec<_>>())),
                Arc::new(deltalake::arrow::array::StringArray::from(
                    versions.iter().map(|v| Some(v.4.clone())).collect::<Vec<_>>(),
                )),
                ts(|v| v.1),
                Arc::new(BooleanArray::from(versions.iter().map(|v| v.3).collect::<Vec<_>>())),
                ts(|v| v.2),
            ],
        )
        .unwrap()
    }

    fn columns() -> KeyColumns {
        KeyColumns { id: 0, version_at: 2, lsn: None, ingested_at: 4, deleted: 3 }
    }

    fn reservation() -> MemoryReservation {
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(usize::MAX / 2));
        MemoryConsumer::new("test").register(&pool)
    }

    /// Id → Name of each winner, running `Latest` over `batches` with output chunks of `chunk`.
    async fn winners(batches: Vec<RecordBatch>, chunk: usize) -> HashMap<Option<String>, String> {
        let mut latest = Latest::new(columns(), reservation());
        for b in batches {
            latest.push(b).unwrap();
        }
        let metrics = BaselineMetrics::new(&ExecutionPlanMetricsSet::new(), 0);
        let out: Vec<RecordBatch> = latest.into_output(chunk, metrics).try_collect().await.unwrap();
        assert!(out.iter().all(|b| b.num_rows() <= chunk));
        let mut names = HashMap::new();
        for b in &out {
            let ids = Ids::new(b.column(0)).unwrap();
            for row in 0..b.num_rows() {
                let id = ids.get(row).map(|v| String::from_utf8(v.to_vec()).unwrap());
                let name = b.column(1).as_string::<i32>().value(row).to_owned();
                assert!(names.insert(id, name).is_none(), "one row per record");
            }
        }
        names
    }

    fn v(id: Option<&'static str>, at: Option<i64>, ingested: Option<i64>, deleted: Option<bool>, name: &str) -> Version {
        (id, at, ingested, deleted, name.to_owned())
    }

    #[tokio::test]
    async fn other_sources_tables_key_on_key_and_order_changes_of_one_commit_by_lsn() {
        use deltalake::arrow::array::{Int64Array, StringArray};
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let schema = Arc::new(Schema::new(vec![
            Field::new(crate::columns::KEY, DataType::Utf8, false),
            Field::new("id", DataType::Int64, true),
            Field::new(VERSION_AT, ts.clone(), false),
            Field::new(crate::columns::LSN, DataType::Int64, true),
            Field::new(DELETED, DataType::Boolean, false),
            Field::new(INGESTED_AT, ts, false),
        ]));
        let columns = KeyColumns::of(&schema).unwrap();
        assert_eq!((columns.id, columns.lsn), (0, Some(3)));
        // One transaction (one commit time, one ingest) inserted key 1, updated it, deleted it,
        // and inserted key 2 twice over; rows arrive out of LSN order across batches.
        let make = |keys: &[&str], ids: &[i64], lsns: &[i64], deleted: &[bool]| {
            let n = keys.len();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(keys.to_vec())),
                    Arc::new(Int64Array::from(ids.to_vec())),
                    Arc::new(TimestampMicrosecondArray::from(vec![100; n]).with_timezone("UTC")),
                    Arc::new(Int64Array::from(lsns.to_vec())),
                    Arc::new(BooleanArray::from(deleted.to_vec())),
                    Arc::new(TimestampMicrosecondArray::from(vec![7; n]).with_timezone("UTC")),
                ],
            )
            .unwrap()
        };
        let mut latest = Latest::new(columns, reservation());
        latest.push(make(&["1", "2"], &[1, 20], &[30, 50], &[true, false])).unwrap();
        latest.push(make(&["1", "2", "1"], &[10, 2, 11], &[20, 40, 10], &[false, false, false])).unwrap();
        let metrics = BaselineMetrics::new(&ExecutionPlanMetricsSet::new(), 0);
        let out: Vec<RecordBatch> = latest.into_output(10, metrics).try_collect().await.unwrap();
        let mut rows: Vec<(String, i64, bool)> = Vec::new();
        for b in &out {
            for r in 0..b.num_rows() {
                rows.push((
                    b.column(0).as_string::<i32>().value(r).to_owned(),
                    b.column(3).as_primitive::<deltalake::arrow::datatypes::Int64Type>().value(r),
                    b.column(4).as_boolean().value(r),
                ));
            }
        }
        rows.sort();
        assert_eq!(rows, [("1".to_owned(), 30, true), ("2".to_owned(), 50, false)]);
    }

    #[tokio::test]
    async fn last_version_in_version_order_wins_across_batches() {
        let batches = vec![
            batch(&[
                v(Some("a"), Some(20), Some(1), Some(false), "a-late"),
                v(Some("b"), Some(10), Some(1), Some(false), "b-first-run"),
                v(Some("c"), Some(10), Some(5), Some(false), "c-update"),
                v(None, Some(1), Some(1), Some(false), "null-old"),
            ]),
            batch(&[
                v(Some("a"), Some(10), Some(9), Some(false), "a-early-ingested-later"),
                // Same instant, later run: the later ingest wins.
                v(Some("b"), Some(10), Some(2), Some(false), "b-second-run"),
                // Same instant, same run: the delete comes last.
                v(Some("c"), Some(10), Some(5), Some(true), "c-delete"),
                v(Some("d"), None, None, None, "d-nulls"),
                v(None, Some(2), Some(1), Some(false), "null-new"),
            ]),
            batch(&[v(Some("d"), Some(i64::MIN + 1), None, Some(false), "d-dated")]),
        ];
        let names = winners(batches, 2).await;
        let expect = [
            (Some("a"), "a-late"),
            (Some("b"), "b-second-run"),
            (Some("c"), "c-delete"),
            (Some("d"), "d-dated"),
            (None, "null-new"),
        ];
        assert_eq!(names, expect.iter().map(|(id, n)| (id.map(str::to_owned), (*n).to_owned())).collect());
    }

    #[test]
    fn a_memory_limit_is_an_error_not_an_abort() {
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1024));
        let mut latest = Latest::new(columns(), MemoryConsumer::new("test").register(&pool));
        let versions: Vec<Version> = (0..100).map(|i| v(Some("r"), Some(i), Some(i), Some(false), "a name")).collect();
        let err = latest.push(batch(&versions)).unwrap_err();
        assert!(matches!(err, DataFusionError::ResourcesExhausted(_)), "{err}");
    }

    #[tokio::test]
    async fn compaction_keeps_the_winners_and_bounds_retained_rows() {
        const IDS: [&str; 7] = ["r0", "r1", "r2", "r3", "r4", "r5", "r6"];
        let mut expected: HashMap<Option<String>, (i64, String)> = HashMap::new();
        let mut latest = Latest::new(columns(), reservation());
        let mut seed = 7u64;
        let mut batches = Vec::new();
        for b in 0..40 {
            let versions: Vec<Version> = (0..1000)
                .map(|i| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let id = IDS[(seed >> 33) as usize % IDS.len()];
                    let at = (seed >> 40) as i64 % 100_000;
                    let name = format!("{b}-{i}");
                    let best = expected.entry(Some(id.to_owned())).or_insert((i64::MIN, String::new()));
                    // Ingest times only grow, so among equal instants the version read last wins.
                    if at >= best.0 {
                        *best = (at, name.clone());
                    }
                    v(Some(id), Some(at), Some((b * 1000 + i) as i64), Some(false), &name)
                })
                .collect();
            let batch = batch(&versions);
            latest.push(batch.clone()).unwrap();
            batches.push(batch);
            assert!(latest.retained_rows() < 2 * IDS.len() + 8192 + 1000, "compaction keeps retained rows bounded");
        }
        assert!(latest.reservation.size() > 0);
        let names = winners(batches, 3).await;
        assert_eq!(names, expected.into_iter().map(|(id, (_, n))| (id, n)).collect());
    }
}
