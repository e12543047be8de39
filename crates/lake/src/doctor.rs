//! `Doctor`: finds what should never be in a lake (duplicate versions, a history table that
//! lost its append-only property) and, asked to, repairs it.
//!
//! A **duplicate version** is a version identical to the one before it with the same key
//! (`Id`, `_version_at`, `_deleted`): same `_origin`, same value in every field column. Two runs
//! writing one object at once (before leases) left such copies; a second save within one second
//! (same key, other content) and a save back to earlier content (A, B, A) are not duplicates.
//!
//! A repair holds the table's lease (so no sync writes meanwhile), lifts `delta.appendOnly`,
//! rewrites the table without the duplicates in **one** Delta commit (readers see the table
//! before or after, never in between), and sets `delta.appendOnly` again. A crash in between
//! leaves a table without the property, which the next doctor run reports and restores.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use deltalake::arrow::compute::filter_record_batch;
use deltalake::arrow::datatypes::TimestampMicrosecondType;
use deltalake::protocol::SaveMode;
use futures::StreamExt;
use tidemark_core::Clock;

use crate::columns::{DELETED, ID, INGESTED_AT, METADATA_COLUMNS, ORIGIN, RUN_ID, VERSION_AT};
use crate::content::content_digests;
use crate::error::{LakeError, Result};
use crate::history::HistoryTable;
use crate::lease::{Lease, LeaseOptions, ProcessIdentity};
use crate::location::LakeLocation;
use crate::read::{HISTORY, utf8};
use crate::writer::writer_properties;

/// What the doctor found in (and did to) one history table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableFindings {
    pub object: String,
    pub versions: u64,
    /// Versions identical to the previous version of their key.
    pub duplicate_versions: u64,
    /// Versions with no `Id` or no `_version_at`: reported, never removed.
    pub versions_without_key: u64,
    pub append_only_missing: bool,
    /// Whether this run repaired the table.
    pub repaired: bool,
}

impl TableFindings {
    pub fn is_healthy(&self) -> bool {
        self.duplicate_versions == 0 && self.versions_without_key == 0 && !self.append_only_missing
    }
}

/// Checks (and with [`Doctor::with_repair`] repairs) every history table of a lake.
pub struct Doctor {
    lake: LakeLocation,
    repair: bool,
    clock: Arc<dyn Clock>,
    lease_ttl: std::time::Duration,
}

impl Doctor {
    pub fn new(lake: LakeLocation) -> Doctor {
        Doctor {
            lake,
            repair: false,
            clock: Arc::new(tidemark_core::SystemClock),
            lease_ttl: std::time::Duration::from_secs(120),
        }
    }

    pub fn with_repair(mut self, repair: bool) -> Doctor {
        self.repair = repair;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Doctor {
        self.clock = clock;
        self
    }

    /// Runs over every table, in name order.
    pub async fn run(self) -> Result<Vec<TableFindings>> {
        let mut out = Vec::new();
        for object in self.lake.history_tables().await? {
            out.push(self.table(&object).await?);
        }
        Ok(out)
    }

    async fn table(&self, object: &str) -> Result<TableFindings> {
        // A repair holds the lease from the first read: no sync may append in between.
        let lease = match self.repair {
            true => Some(
                Lease::acquire(
                    &self.lake,
                    &LakeLocation::table_resource(object),
                    LeaseOptions {
                        purpose: "doctor".into(),
                        run_id: format!("doctor-{}", self.clock.now().format("%Y%m%dT%H%M%SZ")),
                        ttl: self.lease_ttl,
                        clock: self.clock.clone(),
                        identity: ProcessIdentity::current(),
                    },
                )
                .await?,
            ),
            false => None,
        };
        let outcome = self.examine(object, lease.as_ref()).await;
        if let Some(lease) = &lease {
            lease.release().await?;
        }
        outcome
    }

    async fn examine(&self, object: &str, lease: Option<&Lease>) -> Result<TableFindings> {
        let mut table = HistoryTable::open(&self.lake, object)
            .await?
            .ok_or_else(|| LakeError::Layout { table: object.to_owned(), detail: "vanished during the check".into() })?;
        let mut findings = TableFindings { object: object.to_owned(), ..TableFindings::default() };
        let properties = table.delta().snapshot().map_err(|e| LakeError::delta(object, e))?.table_config().clone();
        findings.append_only_missing = properties.append_only != Some(true);
        let duplicates = find_duplicates(&table, &mut findings).await?;
        findings.duplicate_versions = duplicates.len() as u64;
        if !self.repair || (duplicates.is_empty() && !findings.append_only_missing) {
            return Ok(findings);
        }
        if !duplicates.is_empty() {
            table.set_append_only(false).await?;
            if let Some(lease) = lease {
                lease.ensure_held()?;
            }
            rewrite_without(&mut table, &duplicates).await?;
        }
        table.set_append_only(true).await?;
        findings.repaired = true;
        Ok(findings)
    }
}

/// A version's identity in the table: key, ingest time and run (two runs' copies differ there).
type Identity = (String, i64, bool, i64, String);

/// Each row's identity; `None` for a version without an `Id` or `_version_at`.
fn identities(b: &RecordBatch) -> Result<Vec<Option<Identity>>> {
    let col = |name: &str| b.column_by_name(name).cloned().expect("history tables have the metadata columns");
    let (ids, runs) = (utf8(&col(ID))?, utf8(&col(RUN_ID))?);
    let (at, ingested, deleted) = (col(VERSION_AT), col(INGESTED_AT), col(DELETED));
    let (at, ingested) = (at.as_primitive::<TimestampMicrosecondType>(), ingested.as_primitive::<TimestampMicrosecondType>());
    let deleted = deleted.as_boolean();
    Ok((0..b.num_rows())
        .map(|i| {
            (!ids.is_null(i) && !at.is_null(i))
                .then(|| (ids.value(i).to_owned(), at.value(i), deleted.value(i), ingested.value(i), runs.value(i).to_owned()))
        })
        .collect())
}

/// The identities of duplicate versions, each with how many copies of it to drop.
async fn find_duplicates(table: &HistoryTable, findings: &mut TableFindings) -> Result<HashMap<Identity, u64>> {
    let columns = table.column_names()?;
    let fields: Vec<String> = columns.iter().filter(|c| !METADATA_COLUMNS.contains(&c.as_str()) && *c != ID).cloned().collect();
    let ctx = table.session().await?;
    let err = |e| LakeError::query(table.object(), e);
    let mut stream = ctx.table(HISTORY).await.map_err(err)?.execute_stream().await.map_err(err)?;
    // Per key: (ingested at, run, origin, digest) of each version.
    let mut by_key: HashMap<(String, i64, bool), Vec<(i64, String, String, u64)>> = HashMap::new();
    while let Some(batch) = stream.next().await {
        let b = batch.map_err(err)?;
        findings.versions += b.num_rows() as u64;
        let origins = utf8(b.column_by_name(ORIGIN).expect("history tables have the metadata columns"))?;
        let digests = content_digests(&b, &fields)?;
        for (i, identity) in identities(&b)?.into_iter().enumerate() {
            let Some((id, at, deleted, ingested, run)) = identity else {
                findings.versions_without_key += 1;
                continue;
            };
            by_key.entry((id, at, deleted)).or_default().push((ingested, run, origins.value(i).to_owned(), digests[i]));
        }
    }
    let mut duplicates: HashMap<Identity, u64> = HashMap::new();
    for ((id, at, deleted), mut versions) in by_key {
        if versions.len() < 2 {
            continue;
        }
        versions.sort();
        for pair in versions.windows(2) {
            let (previous, this) = (&pair[0], &pair[1]);
            if previous.2 == this.2 && previous.3 == this.3 {
                *duplicates.entry((id.clone(), at, deleted, this.0, this.1.clone())).or_default() += 1;
            }
        }
    }
    Ok(duplicates)
}

/// Rewrites the table in one commit, dropping the given number of copies of each identity
/// (an identity whose copies are exactly alike keeps one).
async fn rewrite_without(table: &mut HistoryTable, duplicates: &HashMap<Identity, u64>) -> Result<()> {
    let ctx = table.session().await?;
    let err = |e| LakeError::query(table.object(), e);
    let mut stream = ctx.table(HISTORY).await.map_err(err)?.execute_stream().await.map_err(err)?;
    let schema = table.schema()?;
    let mut to_drop = duplicates.clone();
    let mut kept = Vec::new();
    while let Some(batch) = stream.next().await {
        let b = batch.map_err(err)?;
        let keep: BooleanArray = identities(&b)?
            .into_iter()
            .map(|identity| match identity.and_then(|id| to_drop.get_mut(&id)) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    Some(false)
                }
                _ => Some(true),
            })
            .collect();
        let filtered = filter_record_batch(&b, &keep)?;
        // Back to the table's own column types (scans read strings as views).
        let columns = schema
            .fields()
            .iter()
            .map(|f| {
                let c = filtered.column_by_name(f.name()).expect("every table column is scanned");
                deltalake::arrow::compute::cast(c, f.data_type())
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        kept.push(RecordBatch::try_new(schema.clone(), columns)?);
    }
    let rewritten = table
        .delta()
        .clone()
        .write(kept)
        .with_save_mode(SaveMode::Overwrite)
        .with_writer_properties(writer_properties())
        .await
        .map_err(|e| LakeError::delta(table.object(), e))?;
    *table.delta_mut() = rewritten;
    Ok(())
}

#[cfg(test)]
mod tests;
