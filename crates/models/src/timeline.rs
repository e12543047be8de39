//! Source-time dimensions: rows dated by the source records' own version times.
//!
//! A key's timeline has an instant for each version of its primary record and, while the
//! primary record points at a secondary record (`join`), for each version of that record. At
//! each instant the key's state is the primary version then in force joined with the secondary
//! versions then in force; consecutive instants with the same tracked hash make one row, valid
//! from the first instant up to (not including) the next row's, or to 9999-12-31 when current.
//! A deleted primary record ends its row (no current row); an undelete starts a new one.
//!
//! The dimension is a function of the sources' histories: each load recomputes it whole, so a
//! version that arrives late takes its place in the timeline (splitting the row it falls in)
//! and the result never depends on arrival order. A row whose key and start instant existed
//! before keeps its surrogate key.
//!
//! The dimension is computed by one SQL query ([`query`]) run in DataFusion with a memory
//! limit: its sorts, windows and sort-merge joins spill to disk beyond it, so a dimension larger
//! than memory builds without being held whole, and the rows stream into the Delta writer.

use std::sync::Arc;

use futures::StreamExt;
use tidemark_core::models::{ModelConfig, SourceConfig};
use tidemark_lake::arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch};
use tidemark_lake::arrow::datatypes::{DataType, Field, Int64Type, SchemaRef};
use tidemark_lake::columns::{DELETED, INGESTED_AT, VERSION_AT};
use tidemark_lake::datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use tidemark_lake::deltalake::DeltaTable;
use tidemark_lake::read::quote;
use tidemark_lake::{HistoryTable, LakeError, LakeLocation};

use crate::bounded::BoundedQuery;
use crate::error::{ModelError, Result};
use crate::mart::{Layout, timestamp_type};
use tidemark_lake::plain::{cast_to, plain_type};

pub mod query;

pub use query::{KEPT, join_of};

/// 9999-12-31T00:00:00Z in µs: the open end of a current row.
pub const OPEN_END_MICROS: i64 = 253_402_214_400_000_000;

pub use crate::bounded::DEFAULT_MEMORY_LIMIT;

/// The Delta versions of the sources read, by source name (a load with the same versions as
/// the last one has nothing new).
pub type SourceVersions = std::collections::BTreeMap<String, u64>;

/// The sources of a source-time model, opened and checked.
pub struct Sources {
    tables: Vec<HistoryTable>,
    pub versions: SourceVersions,
}

impl Sources {
    /// Opens every source's history table and checks it has the columns the model reads.
    pub async fn open(lake: &LakeLocation, name: &str, model: &ModelConfig) -> Result<Sources> {
        let mut tables = Vec::new();
        let mut versions = SourceVersions::new();
        for (i, source) in model.sources.iter().enumerate() {
            let object = source.object.as_deref().expect("source-time sources are lake objects");
            let table = HistoryTable::open_named(lake, object).await?.ok_or_else(|| ModelError::Invalid {
                model: name.to_owned(),
                message: format!("source {}: object {object} has not been synced into this lake", source.name),
            })?;
            let present = table.column_names()?;
            let mut wanted: Vec<String> = if i == 0 {
                let mut k = model.key.clone();
                k.extend(model.sources[1..].iter().map(|s| join_of(model, s).0));
                k
            } else {
                vec![join_of(model, source).1]
            };
            wanted.extend(source.columns.iter().cloned());
            wanted.extend([VERSION_AT, DELETED, INGESTED_AT].map(str::to_owned));
            if let Some(missing) = wanted.iter().find(|c| !present.contains(c)) {
                return Err(ModelError::Invalid {
                    model: name.to_owned(),
                    message: format!("source {}: {object} has no column {missing}", source.name),
                });
            }
            versions.insert(source.name.clone(), table.version().unwrap_or_default());
            tables.push(table);
        }
        Ok(Sources { tables, versions })
    }

    /// The dimension's schema: key and attribute types from the sources (strings plain).
    pub fn dimension_schema(&self, model: &ModelConfig, layout: &Layout) -> Result<SchemaRef> {
        let schemas = self.tables.iter().map(HistoryTable::schema).collect::<Result<Vec<_>, _>>()?;
        let field = |schema: &SchemaRef, name: &str| -> Result<Field> {
            Ok(Field::new(name, plain_type(schema.field_with_name(name)?.data_type()), true))
        };
        let key = model.key.iter().map(|k| field(&schemas[0], k)).collect::<Result<Vec<_>>>()?;
        let mut attributes = Vec::new();
        for (source, schema) in model.sources.iter().zip(&schemas) {
            for c in &source.columns {
                attributes.push(field(schema, c)?);
            }
        }
        Ok(layout.dimension_schema(&key, &attributes, timestamp_type()))
    }
}

/// How DataFusion spells the query: the history tables registered as `source_<i>`, the
/// previous dimension as `previous`, the change hash as a function computing
/// [`crate::hash::change_hashes`].
struct DataFusionSpelling {
    issued: i64,
    load: i64,
    previous: bool,
}

impl query::Spelling for DataFusionSpelling {
    fn ident(&self, name: &str) -> String {
        quote(name)
    }
    fn history(&self, _: &SourceConfig, index: usize) -> String {
        format!("source_{index}")
    }
    fn source_column(&self, name: &str) -> String {
        quote(name)
    }
    fn change_hash(&self, tracked: &[String]) -> String {
        let args: Vec<String> = tracked.iter().map(|c| quote(c)).collect();
        format!("{}({})", ChangeHash::NAME, args.join(", "))
    }
    fn open_end(&self) -> String {
        format!("arrow_cast({OPEN_END_MICROS}, 'Timestamp(Microsecond, Some(\"UTC\"))')")
    }
    fn previous(&self) -> Option<String> {
        self.previous.then(|| "previous".to_owned())
    }
    fn issued_surrogate_keys(&self) -> String {
        format!("CAST({} AS BIGINT)", self.issued)
    }
    fn load_id(&self) -> Option<i64> {
        Some(self.load)
    }
}

/// The change hash as a DataFusion function, so the query hashes exactly as load-date loads do.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ChangeHash {
    signature: Signature,
    compatibility: tidemark_core::models::Compatibility,
}

impl ChangeHash {
    const NAME: &str = "tidemark_change_hash";
}

impl ScalarUDFImpl for ChangeHash {
    fn name(&self) -> &str {
        Self::NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> tidemark_lake::datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> tidemark_lake::datafusion::error::Result<ColumnarValue> {
        let rows = args.number_rows;
        let columns: Vec<ArrayRef> =
            args.args.iter().map(|a| a.to_array(rows)).collect::<tidemark_lake::datafusion::error::Result<_>>()?;
        let hashes = crate::hash::change_hashes(&columns, rows, self.compatibility)
            .map_err(|e| tidemark_lake::datafusion::error::DataFusionError::External(Box::new(e)))?;
        Ok(ColumnarValue::Array(Arc::new(hashes)))
    }
}

/// One source-time computation: the dimension's rows as a stream, in the dimension's schema.
pub struct DimensionRows {
    query: BoundedQuery,
    schema: SchemaRef,
    /// The position of the current flag.
    current: usize,
}

/// What a stream of rows held, for the load's counts.
#[derive(Debug, Default, Clone, Copy)]
pub struct RowTally {
    pub rows: u64,
    pub kept: u64,
    pub current: u64,
    pub max_surrogate_key: i64,
}

impl DimensionRows {
    /// Starts the query over `sources` and the previous dimension (`previous`); new surrogate
    /// keys are numbered above `issued`, new rows stamped with `load`.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        model: &ModelConfig,
        layout: &Layout,
        sources: &Sources,
        schema: SchemaRef,
        previous: Option<&DeltaTable>,
        issued: i64,
        load: i64,
        memory_limit: usize,
    ) -> Result<DimensionRows> {
        let ctx = crate::bounded::session(memory_limit)?;
        for (i, table) in sources.tables.iter().enumerate() {
            let delta = table.delta();
            delta.update_datafusion_session(&ctx.state()).map_err(|e| LakeError::delta(table.object(), e))?;
            let provider = delta.table_provider().await?;
            ctx.register_table(format!("source_{i}"), provider)?;
        }
        if let Some(previous) = previous {
            ctx.register_table("previous", previous.table_provider().await?)?;
        }
        ctx.register_udf(ScalarUDF::new_from_impl(ChangeHash {
            signature: Signature::variadic_any(Volatility::Immutable),
            compatibility: model.compatibility,
        }));
        let spelling = DataFusionSpelling { issued, load, previous: previous.is_some() };
        let sql = query::dimension_query(model, layout, &spelling);
        let query = BoundedQuery::start(&ctx, &sql, "source-time").await?;
        let current = schema.index_of(&layout.current)?;
        Ok(DimensionRows { query, schema, current })
    }

    /// The bytes the query's operators spilled to disk so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.query.spilled_bytes()
    }

    /// The next batch in the dimension's schema, counted into `tally`.
    pub async fn next(&mut self, tally: &mut RowTally) -> Result<Option<RecordBatch>> {
        let Some(batch) = self.query.stream.next().await.transpose()? else { return Ok(None) };
        let kept = batch.column_by_name(KEPT).expect("query output").as_boolean();
        tally.rows += batch.num_rows() as u64;
        tally.kept += kept.true_count() as u64;
        let current: &BooleanArray = batch.column(self.current).as_boolean();
        tally.current += current.true_count() as u64;
        if let Some(max) = tidemark_lake::arrow::compute::max(batch.column(0).as_primitive::<Int64Type>()) {
            tally.max_surrogate_key = tally.max_surrogate_key.max(max);
        }
        // The query's extra `_kept` column is left out: the schema ends before it.
        Ok(Some(cast_to(&batch, &self.schema)?))
    }
}
