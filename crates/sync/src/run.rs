//! A sync run over many objects: discovery, then objects in parallel.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use std::collections::HashMap;
use tidemark_core::governance::Governance;
use tidemark_core::{Clock, SystemClock};

use tidemark_lake::{LakeLocation, Lease, LeaseKeeper, LeaseOptions, Ledger, ProcessIdentity};
use tidemark_salesforce::SalesforceClient;

use crate::config::SyncSettings;
use crate::discovery::{DiscoveredObject, discover};
use crate::error::SyncError;
use crate::object_sync::{RunContext, sync_object};
use crate::report::{Quiet, SyncObserver, SyncReport};

/// Builds and runs a sync, the way delta-rs builds its operations:
///
/// ```no_run
/// # async fn f(client: std::sync::Arc<tidemark_salesforce::SalesforceClient>, lake: tidemark_lake::LakeLocation) -> Result<(), tidemark_sync::SyncError> {
/// let report = tidemark_sync::Sync::new(client, lake, Default::default())
///     .with_objects(vec!["Account".into()])
///     .await?;
/// println!("{} versions", report.versions_written());
/// # Ok(()) }
/// ```
///
/// Delivery contract: every version the org exposes between two completed runs is appended
/// exactly once (re-reads are de-duplicated against the lake), whatever crashed in between.
/// Objects run concurrently up to `settings.parallelism`; one object is written by one task,
/// and by one run: a run holds a lease on each object it writes (see [`tidemark_lake::lease`])
/// and fails with [`tidemark_lake::LakeError::LeaseHeld`], having written nothing, when another
/// run holds one of them.
/// Memory per object is bounded by one result page plus the open Parquet file's buffers.
pub struct Sync {
    client: Arc<SalesforceClient>,
    lake: LakeLocation,
    settings: SyncSettings,
    objects: Option<Vec<String>>,
    full: bool,
    clock: Arc<dyn Clock>,
    observer: Arc<dyn SyncObserver>,
    run_id: Option<String>,
    governance: Arc<Governance>,
}

impl Sync {
    pub fn new(client: Arc<SalesforceClient>, lake: LakeLocation, settings: SyncSettings) -> Sync {
        Sync {
            client,
            lake,
            settings,
            objects: None,
            full: false,
            clock: Arc::new(SystemClock),
            observer: Arc::new(Quiet),
            run_id: None,
            governance: Arc::new(Governance::none()),
        }
    }

    /// Only these objects (API names, case-insensitive).
    pub fn with_objects(mut self, objects: Vec<String>) -> Sync {
        self.objects = Some(objects);
        self
    }

    /// Re-read everything (still appending only versions the lake lacks) and reconcile Ids.
    pub fn with_full(mut self, full: bool) -> Sync {
        self.full = full;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Sync {
        self.clock = clock;
        self
    }

    pub fn with_observer(mut self, observer: Arc<dyn SyncObserver>) -> Sync {
        self.observer = observer;
        self
    }

    /// Field policies (`governance:`): applied to every value read, before it is compared with
    /// the lake or written; excluded fields are never selected.
    pub fn with_governance(mut self, governance: Arc<Governance>) -> Sync {
        self.governance = governance;
        self
    }

    pub fn with_run_id(mut self, run_id: impl Into<String>) -> Sync {
        self.run_id = Some(run_id.into());
        self
    }

    /// Takes the lease on each object's table, in name order; on the first held one, releases
    /// those taken and fails.
    async fn acquire_leases(&self, objects: &[String], run_id: &str) -> Result<HashMap<String, Arc<Lease>>, SyncError> {
        let options = LeaseOptions {
            purpose: "sync".into(),
            run_id: run_id.to_owned(),
            ttl: self.settings.lease_ttl,
            clock: self.clock.clone(),
            identity: ProcessIdentity::current(),
        };
        let mut sorted: Vec<&String> = objects.iter().collect();
        sorted.sort_by_key(|o| o.to_ascii_lowercase());
        let mut leases = HashMap::new();
        for object in sorted {
            match Lease::acquire(&self.lake, &LakeLocation::table_resource(object), options.clone()).await {
                Ok(lease) => {
                    leases.insert(object.to_ascii_lowercase(), Arc::new(lease));
                }
                Err(e) => {
                    for taken in leases.values() {
                        let _ = taken.release().await;
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(leases)
    }

    /// The objects the run would sync (and the ones it would skip, with reasons).
    pub async fn discover(client: &SalesforceClient, settings: &SyncSettings) -> Result<Vec<DiscoveredObject>, SyncError> {
        let global = client.describe_global().await?;
        let patterns = settings.object_patterns()?;
        Ok(discover(&global, &patterns))
    }

    pub async fn run(self) -> Result<SyncReport, SyncError> {
        let timer = Instant::now();
        let calls_before = self.client.requests_sent();
        let discovered = Sync::discover(&self.client, &self.settings).await?;
        let selected: Vec<String> = match &self.objects {
            None => discovered.iter().filter(|o| o.skipped.is_none()).map(|o| o.name.clone()).collect(),
            Some(wanted) => wanted.iter().map(|w| resolve(w, &discovered)).collect::<Result<_, _>>()?,
        };
        let run_id = self.run_id.clone().unwrap_or_else(|| tidemark_lake::ledger::new_run_id(self.clock.now()));
        // Every object's lease before anything is written: a run that meets another stops
        // here, having written nothing.
        let leases = self.acquire_leases(&selected, &run_id).await?;
        let keeper = LeaseKeeper::start(leases.values().cloned().collect(), self.settings.lease_ttl / 3);
        self.observer.run_started(selected.len());
        let ledger = Ledger::new(self.lake.clone());
        let ledger_suppressed = ledger.suppressed().await?.into_iter().map(|(o, ids)| (o, Arc::new(ids))).collect();
        let cx = RunContext {
            client: self.client.clone(),
            lake: self.lake.clone(),
            past_runs: ledger.runs().await?,
            ledger,
            settings: self.settings.clone(),
            clock: self.clock.clone(),
            observer: self.observer.clone(),
            run_id: run_id.clone(),
            full: self.full,
            leases,
            governance: self.governance.clone(),
            suppressed: ledger_suppressed,
        };
        tracing::info!(run_id, objects = selected.len(), parallelism = self.settings.parallelism, "sync started");
        let cx = &cx;
        let mut objects: Vec<_> = futures::stream::iter(selected.into_iter().map(|o| async move { sync_object(cx, &o).await }))
            .buffer_unordered(self.settings.parallelism)
            .collect()
            .await;
        objects.sort_by(|a, b| a.object.cmp(&b.object));
        drop(keeper);
        for lease in cx.leases.values() {
            if let Err(e) = lease.release().await {
                tracing::warn!(resource = lease.resource(), error = %e, "could not release the lease (it expires on its own)");
            }
        }
        let report = SyncReport {
            run_id,
            objects,
            duration: timer.elapsed(),
            api_calls: self.client.requests_sent().saturating_sub(calls_before),
        };
        tracing::info!(run_id = report.run_id, status = ?report.status(), versions = report.versions_written(), "sync finished");
        Ok(report)
    }
}

impl std::future::IntoFuture for Sync {
    type Output = Result<SyncReport, SyncError>;
    type IntoFuture = futures::future::BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

fn resolve(wanted: &str, discovered: &[DiscoveredObject]) -> Result<String, SyncError> {
    match discovered.iter().find(|o| o.name.eq_ignore_ascii_case(wanted)) {
        Some(o) => match &o.skipped {
            // Asking by name overrides the include/exclude patterns, not Salesforce's limits.
            Some(reason) if !reason.starts_with("excluded") && !reason.starts_with("not in the include") => {
                Err(SyncError::SkippedObject { name: o.name.clone(), reason: reason.clone() })
            }
            _ => Ok(o.name.clone()),
        },
        None => {
            let lower = wanted.to_ascii_lowercase();
            let close: Vec<&str> = discovered
                .iter()
                .filter(|o| {
                    let n = o.name.to_ascii_lowercase();
                    n.contains(&lower) || lower.contains(&n) || n.starts_with(&lower[..lower.len().min(3)])
                })
                .map(|o| o.name.as_str())
                .take(5)
                .collect();
            let hint = if close.is_empty() { String::new() } else { format!(" (did you mean {}?)", close.join(", ")) };
            Err(SyncError::UnknownObject { name: wanted.to_owned(), hint })
        }
    }
}
