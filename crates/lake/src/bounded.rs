//! DataFusion sessions that run queries over data larger than memory under a memory limit.
//!
//! The queries of model loads (a source-time dimension, a load-date source's rows sorted by
//! key) and of push flows (a result diffed against its snapshot) run here: sorts, windows and
//! sort-merge joins spill to the system's temporary folder beyond the limit, and a plan guard
//! refuses the operators that would hold a whole input instead.

use std::sync::Arc;

use deltalake::datafusion::error::{DataFusionError, Result};
use deltalake::datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use deltalake::datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use deltalake::datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream, execute_stream};
use deltalake::datafusion::prelude::{SessionConfig, SessionContext};

/// The memory an operation's queries may hold together before they spill to disk.
pub const DEFAULT_MEMORY_LIMIT: usize = 256 * 1024 * 1024;

/// A session whose queries share one pool of `memory_limit` bytes.
pub fn session(memory_limit: usize) -> Result<SessionContext> {
    let (config, runtime) = session_parts(memory_limit)?;
    Ok(SessionContext::new_with_config_rt(config, runtime))
}

/// The configuration and runtime of [`session`], for a caller that adds its own settings.
pub fn session_parts(memory_limit: usize) -> Result<(SessionConfig, Arc<RuntimeEnv>)> {
    let pool = TrackConsumersPool::new(FairSpillPool::new(memory_limit), std::num::NonZeroUsize::new(5).expect("non-zero"));
    let runtime = RuntimeEnvBuilder::new().with_memory_pool(Arc::new(pool)).build_arc()?;
    // Batches small enough that every sort can hold a few under a small limit.
    let batch_size = (memory_limit >> 15).clamp(128, 8192);
    let mut config = SessionConfig::new().with_batch_size(batch_size);
    // Sort-merge joins spill; hash joins hold their build side whole.
    config.options_mut().optimizer.prefer_hash_join = false;
    // What a sort sets aside for merging its spills: DataFusion's 10 MiB would not fit a
    // small limit.
    config.options_mut().execution.sort_spill_reservation_bytes = (memory_limit / 128).min(10 << 20);
    Ok((config, runtime))
}

/// A running query: its output stream and its plan (for the spill metrics).
pub struct BoundedQuery {
    pub stream: SendableRecordBatchStream,
    plan: Arc<dyn ExecutionPlan>,
}

impl BoundedQuery {
    /// Plans `sql` in `ctx`, checks the plan is bounded, and starts it. `what` names the query
    /// in the plan guard's error.
    pub async fn start(ctx: &SessionContext, sql: &str, what: &str) -> Result<BoundedQuery> {
        let frame = ctx.sql(sql).await?;
        let task = Arc::new(frame.task_ctx());
        let plan = frame.create_physical_plan().await?;
        ensure_bounded(&plan, what)?;
        let stream = execute_stream(plan.clone(), task)?;
        Ok(BoundedQuery { stream, plan })
    }

    /// The bytes the query's operators spilled to disk so far.
    pub fn spilled_bytes(&self) -> u64 {
        spilled_bytes(&self.plan)
    }
}

fn spilled_bytes(plan: &Arc<dyn ExecutionPlan>) -> u64 {
    let own = plan.metrics().and_then(|m| m.spilled_bytes()).unwrap_or(0) as u64;
    own + plan.children().into_iter().map(spilled_bytes).sum::<u64>()
}

/// Refuses a plan with an operator that holds a whole input in memory (a hash join's build
/// side, a window over unbounded frames, a cross or nested-loop join): the model's queries are
/// written so DataFusion plans none, and this keeps a planner change from silently breaking
/// the bound.
pub fn ensure_bounded(plan: &Arc<dyn ExecutionPlan>, what: &str) -> Result<()> {
    const UNBOUNDED: [&str; 4] = ["HashJoinExec", "WindowAggExec", "CrossJoinExec", "NestedLoopJoinExec"];
    if UNBOUNDED.contains(&plan.name()) {
        return Err(DataFusionError::Plan(format!("the {what} plan has a {} and would hold an input in memory", plan.name())));
    }
    plan.children().into_iter().try_for_each(|child| ensure_bounded(child, what))
}
