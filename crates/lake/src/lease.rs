//! Leases: one writer per table at a time, kept in the lake itself.
//!
//! A lease on a resource (`objects/account`) is a series of small JSON files,
//! `<lake>/_tidemark/leases/<resource>/<generation>.json`, each created with a conditional
//! put that fails when the file exists (a local rename-without-replace, an S3 `If-None-Match`
//! write), so of two runs creating the same generation exactly one succeeds. The newest
//! generation is the lease:
//!
//! - **acquire**: no generation yet, or the newest is released, expired, or held by a process
//!   of this machine that no longer runs (a crashed or SIGKILLed run) → create the next
//!   generation. Otherwise [`LakeError::LeaseHeld`] names the holder and when it expires.
//! - **renew**: the holder rewrites its own file with a later expiry, then checks no newer
//!   generation exists (someone took an expired lease over: the holder has lost it).
//! - **release**: the holder marks its file released; the next run takes over at once.
//!
//! A lease is advisory for correctness: what makes a lost race harmless is that history
//! writes refuse to commit over a commit they did not read ([`crate::VersionWriter`]). The
//! lease makes the loser stop before it writes anything, with a clear message.
//!
//! Expiry compares the holder's clock with the reader's: machines sharing an S3 lake should
//! keep their clocks within a fraction of the lease's time to live.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deltalake::ObjectStore;
use deltalake::Path;
use deltalake::logstore::object_store::{ObjectStoreExt as _, PutMode, PutOptions, PutPayload};
use futures::TryStreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tidemark_core::Clock;

use crate::error::{LakeError, Result};
use crate::location::LakeLocation;

/// What one generation file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub resource: String,
    pub generation: u64,
    /// What holds it: `sync`, `doctor`, …
    pub purpose: String,
    pub run_id: String,
    pub host: String,
    /// Identifies the machine's current boot (Linux), so a pid is only trusted on it.
    pub boot_id: Option<String>,
    pub pid: u32,
    /// The process's start time in clock ticks since boot (Linux), against pid reuse.
    pub pid_start: Option<u64>,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub released: bool,
}

impl LeaseRecord {
    /// "run X (pid P on H)": who holds it, for messages.
    pub fn holder(&self) -> String {
        format!("{} run {} (pid {} on {})", self.purpose, self.run_id, self.pid, self.host)
    }

    /// Whether a new holder may take over at `now`.
    fn is_free(&self, now: DateTime<Utc>, me: &ProcessIdentity) -> bool {
        self.released || self.expires_at <= now || self.holder_is_dead(me)
    }

    /// The holder ran on this machine, in this boot, and is no longer running.
    fn holder_is_dead(&self, me: &ProcessIdentity) -> bool {
        if self.host != me.host || self.boot_id.is_none() || self.boot_id != me.boot_id {
            return false;
        }
        match process_start(self.pid) {
            None => true,
            Some(start) => self.pid_start.is_some_and(|s| s != start),
        }
    }
}

/// This process, as a lease records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessIdentity {
    pub host: String,
    pub boot_id: Option<String>,
    pub pid: u32,
    pub pid_start: Option<u64>,
}

impl ProcessIdentity {
    pub fn current() -> ProcessIdentity {
        let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let host = read("/proc/sys/kernel/hostname")
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown-host".to_owned());
        let pid = std::process::id();
        ProcessIdentity { host, boot_id: read("/proc/sys/kernel/random/boot_id"), pid, pid_start: process_start(pid) }
    }
}

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`), `None` when no such
/// process runs (or on systems without `/proc`).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The purpose of table maintenance's leases, which other writers wait for.
pub const MAINTENANCE_PURPOSE: &str = "maintain";

/// How often a writer waiting for maintenance looks at the lease again.
const MAINTENANCE_POLL: Duration = Duration::from_millis(250);

enum Attempt {
    Taken(Box<Lease>),
    Held(Option<LeaseRecord>),
}

/// How to take a lease.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    pub purpose: String,
    pub run_id: String,
    /// How long the lease lasts without a renewal (a holder renews every third of it).
    pub ttl: Duration,
    pub clock: Arc<dyn Clock>,
    pub identity: ProcessIdentity,
}

/// A held lease. Renew it (or let a [`LeaseKeeper`] do so) well within its time to live, and
/// release it when done; dropping it without releasing leaves it to expire.
#[derive(Debug)]
pub struct Lease {
    store: Arc<dyn ObjectStore>,
    location: String,
    resource: String,
    generation: u64,
    options: LeaseOptions,
    state: Mutex<LeaseState>,
}

#[derive(Debug, Clone)]
struct LeaseState {
    record: LeaseRecord,
    lost: Option<String>,
}

fn folder(resource: &str) -> Path {
    Path::from(format!("_tidemark/leases/{resource}"))
}

fn generation_path(resource: &str, generation: u64) -> Path {
    Path::from(format!("_tidemark/leases/{resource}/{generation:020}.json"))
}

impl Lease {
    /// Takes the lease on `resource` (a path-like name: `objects/account`). A lease held by
    /// table maintenance ([`MAINTENANCE_PURPOSE`]) is waited for: maintenance holds a table for
    /// one compaction at a time and yields to writers, never the other way round.
    pub async fn acquire(lake: &LakeLocation, resource: &str, options: LeaseOptions) -> Result<Lease> {
        let mut waiting = false;
        loop {
            match Lease::attempt(lake, resource, &options).await? {
                Attempt::Taken(lease) => return Ok(*lease),
                Attempt::Held(Some(holder))
                    if holder.purpose == MAINTENANCE_PURPOSE && options.purpose != MAINTENANCE_PURPOSE =>
                {
                    if !waiting {
                        tracing::info!(resource, holder = %holder.holder(), "waiting for table maintenance to finish");
                        waiting = true;
                    }
                    tokio::time::sleep(MAINTENANCE_POLL).await;
                }
                Attempt::Held(holder) => {
                    return Err(LakeError::LeaseHeld {
                        resource: resource.to_owned(),
                        holder: holder.as_ref().map_or_else(|| "another run".to_owned(), LeaseRecord::holder),
                        expires_at: holder.map_or_else(|| options.clock.now() + ttl(&options), |h| h.expires_at),
                    });
                }
            }
        }
    }

    /// One try at taking the lease: taken, or held (by the holder read back, when readable).
    async fn attempt(lake: &LakeLocation, resource: &str, options: &LeaseOptions) -> Result<Attempt> {
        let options = options.clone();
        let store = lake.object_store()?;
        let location = lake.root().to_string();
        let newest = newest_generation(&store, &location, resource).await?;
        let now = options.clock.now();
        let generation = match newest {
            Some(current) if !current.is_free(now, &options.identity) => return Ok(Attempt::Held(Some(current))),
            Some(current) => current.generation + 1,
            None => 1,
        };
        let record = LeaseRecord {
            resource: resource.to_owned(),
            generation,
            purpose: options.purpose.clone(),
            run_id: options.run_id.clone(),
            host: options.identity.host.clone(),
            boot_id: options.identity.boot_id.clone(),
            pid: options.identity.pid,
            pid_start: options.identity.pid_start,
            acquired_at: now,
            expires_at: now + ttl(&options),
            released: false,
        };
        let path = generation_path(resource, generation);
        let put = store.put_opts(&path, payload(&record), PutOptions::from(PutMode::Create)).await;
        match put {
            Ok(_) => {}
            Err(deltalake::ObjectStoreError::AlreadyExists { .. }) => {
                // Another run created this generation first: it holds the lease now.
                return Ok(Attempt::Held(read_record(&store, &location, &path).await?));
            }
            Err(e) => return Err(LakeError::store(&location, e)),
        }
        // Generations before the previous one no holder can still be checking against.
        if generation > 2 {
            let stale: Vec<Path> = store
                .list(Some(&folder(resource)))
                .map_ok(|m| m.location)
                .try_filter(|p| futures::future::ready(generation_of(p).is_some_and(|g| g + 1 < generation)))
                .try_collect()
                .await
                .map_err(|e| LakeError::store(&location, e))?;
            for p in stale {
                let _ = store.delete(&p).await;
            }
        }
        tracing::debug!(resource, generation, "lease acquired");
        Ok(Attempt::Taken(Box::new(Lease {
            store,
            location,
            resource: resource.to_owned(),
            generation,
            options,
            state: Mutex::new(LeaseState { record, lost: None }),
        })))
    }

    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The lease's current record.
    pub fn record(&self) -> LeaseRecord {
        self.state.lock().record.clone()
    }

    /// Extends the lease by its time to live. Fails (and the lease counts as lost from then on)
    /// when another holder took it over.
    pub async fn renew(&self) -> Result<()> {
        self.ensure_held()?;
        let mut record = self.record();
        record.expires_at = self.options.clock.now() + ttl(&self.options);
        let path = generation_path(&self.resource, self.generation);
        self.store.put(&path, payload(&record)).await.map_err(|e| LakeError::store(&self.location, e))?;
        let next = generation_path(&self.resource, self.generation + 1);
        match self.store.head(&next).await {
            Ok(_) => {
                let taker = read_record(&self.store, &self.location, &next).await?;
                let why = format!("taken over by {}", taker.map_or_else(|| "another run".to_owned(), |t| t.holder()));
                self.state.lock().lost = Some(why);
                self.ensure_held()
            }
            Err(deltalake::ObjectStoreError::NotFound { .. }) => {
                self.state.lock().record = record;
                Ok(())
            }
            Err(e) => Err(LakeError::store(&self.location, e)),
        }
    }

    /// Fails when the lease was lost or has expired without a renewal: a writer checks this
    /// before each commit.
    pub fn ensure_held(&self) -> Result<()> {
        let state = self.state.lock();
        let reason = match &state.lost {
            Some(why) => why.clone(),
            None if state.record.expires_at <= self.options.clock.now() => {
                format!("it expired at {} without a renewal", state.record.expires_at.to_rfc3339())
            }
            None => return Ok(()),
        };
        Err(LakeError::LeaseLost { resource: self.resource.clone(), reason })
    }

    /// Marks the lease released so the next run takes it at once.
    pub async fn release(&self) -> Result<()> {
        if self.ensure_held().is_err() {
            return Ok(());
        }
        let mut record = self.record();
        record.released = true;
        let path = generation_path(&self.resource, self.generation);
        self.store.put(&path, payload(&record)).await.map_err(|e| LakeError::store(&self.location, e))?;
        self.state.lock().lost = Some("released".to_owned());
        Ok(())
    }
}

/// Runs `work` holding the lease on `resource` for one run of a capability (`purpose`:
/// `push`, `model`, …): acquired first (a holder elsewhere is an error naming it), renewed every
/// third of `ttl` while `work` runs, released after it whatever it returned.
pub async fn with_lease<T, E: From<LakeError>>(
    lake: &LakeLocation,
    resource: &str,
    purpose: &str,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    work: impl AsyncFnOnce(&Lease) -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    with_leases(lake, &[resource.to_owned()], purpose, ttl, clock, async |leases: &[Arc<Lease>]| work(&leases[0]).await).await
}

/// [`with_lease`] over several resources, acquired in the order given (all or none: those
/// acquired are released when one is held elsewhere).
pub async fn with_leases<T, E: From<LakeError>>(
    lake: &LakeLocation,
    resources: &[String],
    purpose: &str,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    work: impl AsyncFnOnce(&[Arc<Lease>]) -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let run_id = format!("{purpose}-{}", uuid::Uuid::new_v4());
    let mut leases: Vec<Arc<Lease>> = Vec::with_capacity(resources.len());
    for resource in resources {
        let options = LeaseOptions {
            purpose: purpose.to_owned(),
            run_id: run_id.clone(),
            ttl,
            clock: clock.clone(),
            identity: ProcessIdentity::current(),
        };
        match Lease::acquire(lake, resource, options).await {
            Ok(lease) => leases.push(Arc::new(lease)),
            Err(e) => {
                for lease in &leases {
                    let _ = lease.release().await;
                }
                return Err(e.into());
            }
        }
    }
    let keeper = LeaseKeeper::start(leases.clone(), ttl / 3);
    let outcome = work(&leases).await;
    drop(keeper);
    for lease in &leases {
        let _ = lease.release().await;
    }
    outcome
}

fn ttl(options: &LeaseOptions) -> chrono::Duration {
    chrono::Duration::from_std(options.ttl).unwrap_or(chrono::Duration::MAX)
}

fn payload(record: &LeaseRecord) -> PutPayload {
    PutPayload::from(serde_json::to_vec_pretty(record).expect("a lease record serialises"))
}

fn generation_of(path: &Path) -> Option<u64> {
    path.filename()?.strip_suffix(".json")?.parse().ok()
}

async fn read_record(store: &Arc<dyn ObjectStore>, location: &str, path: &Path) -> Result<Option<LeaseRecord>> {
    let bytes = match store.get(path).await {
        Ok(got) => got.bytes().await.map_err(|e| LakeError::store(location, e))?,
        Err(deltalake::ObjectStoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(LakeError::store(location, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| LakeError::Layout { table: path.to_string(), detail: format!("unreadable lease file: {e}") })
}

/// The newest generation's record of `resource`, if any.
pub async fn newest_generation(store: &Arc<dyn ObjectStore>, location: &str, resource: &str) -> Result<Option<LeaseRecord>> {
    let newest = store
        .list(Some(&folder(resource)))
        .map_ok(|m| m.location)
        .try_fold(None::<(u64, Path)>, |best, p| async move {
            Ok(match generation_of(&p) {
                Some(g) if best.as_ref().is_none_or(|(b, _)| g > *b) => Some((g, p)),
                _ => best,
            })
        })
        .await
        .map_err(|e| LakeError::store(location, e))?;
    match newest {
        Some((_, path)) => read_record(store, location, &path).await,
        None => Ok(None),
    }
}

/// Renews leases in the background every third of their time to live until dropped. A failed
/// renewal is logged; the writer finds out at its next commit through [`Lease::ensure_held`].
#[derive(Debug)]
pub struct LeaseKeeper {
    task: tokio::task::JoinHandle<()>,
}

impl LeaseKeeper {
    pub fn start(leases: Vec<Arc<Lease>>, every: Duration) -> LeaseKeeper {
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                for lease in &leases {
                    if let Err(e) = lease.renew().await {
                        tracing::warn!(resource = lease.resource(), error = %e, "lease renewal failed");
                    }
                }
            }
        });
        LeaseKeeper { task }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use tidemark_core::ManualClock;

    use super::*;

    fn options(clock: &ManualClock, run: &str, identity: ProcessIdentity) -> LeaseOptions {
        LeaseOptions {
            purpose: "sync".into(),
            run_id: run.into(),
            ttl: Duration::from_secs(60),
            clock: Arc::new(clock.clone()),
            identity,
        }
    }

    /// A process on another machine (one per run id, so no two runs share a host).
    fn elsewhere(run: &str) -> ProcessIdentity {
        ProcessIdentity { host: format!("host-of-{run}"), boot_id: Some("b".into()), pid: 1, pid_start: Some(1) }
    }

    fn lake() -> (tempfile::TempDir, LakeLocation) {
        let dir = tempfile::tempdir().unwrap();
        let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
        (dir, lake)
    }

    #[tokio::test]
    async fn a_held_lease_refuses_a_second_holder_until_released_or_expired() {
        let (_dir, lake) = lake();
        let clock = ManualClock::new(ManualClock::default_start());
        let first = Lease::acquire(&lake, "objects/account", options(&clock, "r1", elsewhere("r1"))).await.unwrap();
        let err = Lease::acquire(&lake, "objects/account", options(&clock, "r2", elsewhere("r2"))).await.unwrap_err();
        assert!(matches!(&err, LakeError::LeaseHeld { holder, .. } if holder.contains("r1")), "{err}");
        assert!(err.to_string().contains("another run holds"), "{err}");
        // Another resource is independent.
        Lease::acquire(&lake, "objects/contact", options(&clock, "r2", elsewhere("r2"))).await.unwrap();

        first.release().await.unwrap();
        let second = Lease::acquire(&lake, "objects/account", options(&clock, "r2", elsewhere("r2"))).await.unwrap();
        assert_eq!(second.record().generation, 2);

        // The holder stops renewing: after the time to live the lease is free.
        clock.advance(chrono::Duration::seconds(59));
        assert!(Lease::acquire(&lake, "objects/account", options(&clock, "r3", elsewhere("r3"))).await.is_err());
        clock.advance(chrono::Duration::seconds(2));
        assert!(second.ensure_held().is_err(), "an unrenewed lease is not held past its expiry");
        let third = Lease::acquire(&lake, "objects/account", options(&clock, "r3", elsewhere("r3"))).await.unwrap();
        assert!(second.renew().await.is_err(), "the old holder learns it lost the lease");
        assert!(matches!(second.ensure_held(), Err(LakeError::LeaseLost { .. })));
        third.renew().await.unwrap();
        third.ensure_held().unwrap();
    }

    #[tokio::test]
    async fn renewal_extends_the_lease() {
        let (_dir, lake) = lake();
        let clock = ManualClock::new(ManualClock::default_start());
        let lease = Lease::acquire(&lake, "objects/account", options(&clock, "r1", elsewhere("r1"))).await.unwrap();
        clock.advance(chrono::Duration::seconds(50));
        lease.renew().await.unwrap();
        clock.advance(chrono::Duration::seconds(50));
        lease.ensure_held().unwrap();
        assert!(Lease::acquire(&lake, "objects/account", options(&clock, "r2", elsewhere("r2"))).await.is_err());
    }

    #[tokio::test]
    async fn a_dead_holder_on_this_machine_does_not_block() {
        let (_dir, lake) = lake();
        let clock = ManualClock::new(ManualClock::default_start());
        let me = ProcessIdentity::current();
        // A process of this boot that has exited: its pid no longer runs.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let dead = ProcessIdentity { pid: dead_pid, pid_start: Some(1), ..me.clone() };
        let _held = Lease::acquire(&lake, "objects/account", options(&clock, "r1", dead)).await.unwrap();
        let taken = Lease::acquire(&lake, "objects/account", options(&clock, "r2", me.clone())).await;
        if me.boot_id.is_some() {
            taken.unwrap();
            // A live holder on this machine blocks.
            let err = Lease::acquire(&lake, "objects/account", options(&clock, "r3", me)).await.unwrap_err();
            assert!(matches!(err, LakeError::LeaseHeld { .. }));
        } else {
            assert!(taken.is_err(), "without /proc the pid is not trusted: only expiry frees the lease");
        }
    }

    #[tokio::test]
    async fn racing_acquirers_get_one_lease() {
        let (_dir, lake) = lake();
        let clock = ManualClock::new(ManualClock::default_start());
        let attempts = (0..8).map(|i| {
            let run = format!("r{i}");
            let (lake, opts) = (lake.clone(), options(&clock, &run, elsewhere(&run)));
            tokio::spawn(async move { Lease::acquire(&lake, "objects/account", opts).await })
        });
        let results = futures::future::join_all(attempts).await;
        let won = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        assert_eq!(won, 1, "exactly one of the racing runs holds the lease");
    }

    #[test]
    fn process_start_reads_this_process() {
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(process_start(std::process::id()).is_some());
            assert!(process_start(u32::MAX).is_none());
        }
    }
}
