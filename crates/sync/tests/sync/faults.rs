//! Syncs under injected faults (5xx, concurrent-request limits, dropped connections, session
//! expiry) still land exactly every version; an exhausted API budget ends the run incomplete
//! and the next run finishes the job.

use std::sync::Arc;

use crate::common::{Harness, connect};
use serde_json::json;
use tidemark_lake::RunStatus;
use tidemark_salesforce::RetryPolicy;
use tidemark_sfsim::faults::FaultConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_do_not_change_the_result() {
    let mut h = Harness::start(80, 11).await;
    h.sim.state.faults.set(
        FaultConfig {
            http_500_rate: 0.04,
            http_503_rate: 0.04,
            concurrent_limit_rate: 0.04,
            drop_connection_rate: 0.04,
            ..FaultConfig::default()
        },
        5,
    );
    let first = h.sync().await;
    assert_eq!(first.status(), RunStatus::Complete, "{first:#?}");
    h.check().await;

    // Every session expires between the change round and the next sync; the client logs in again.
    h.advance(chrono::Duration::minutes(5));
    h.change(json!({"updates": {"share": 0.2}, "creates": 3, "deletes": 2, "hard_deletes": 1}), 9);
    h.sim.state.auth.expire_all();
    let second = h.sync().await;
    assert_eq!(second.status(), RunStatus::Complete, "{second:#?}");
    h.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_budget_ends_incomplete_and_the_next_run_finishes() {
    let mut h = Harness::start(80, 12).await;
    let now = h.sim.state.org.read().now_millis();
    // 80% of 1,000 is the client's budget: 10 requests left (a full run needs about 22).
    h.sim.state.usage.set_max(1_000);
    h.sim.state.usage.set_used(now, 790);
    let stopped = h.sync_builder().await.expect("the run itself does not error");
    assert_eq!(stopped.status(), RunStatus::Incomplete, "{stopped:#?}");
    let why = stopped.objects.iter().filter_map(|o| o.message.as_deref()).next().expect("a reason");
    assert!(why.contains("API budget") && why.contains("next run resumes"), "{why}");
    assert!(stopped.objects.iter().all(|o| o.status != RunStatus::Failed), "budget stops are not failures: {stopped:#?}");

    // A new day: the allocation is back. A new run (new client, as a new process) completes.
    h.sim.state.usage.set_used(now, 0);
    h.client = Arc::new(connect(&h.sim, RetryPolicy::immediate(8)).await);
    let finished = h.sync().await;
    assert_eq!(finished.status(), RunStatus::Complete, "{finished:#?}");
    h.check().await;
}
