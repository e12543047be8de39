//! Erasure in what push flows and restores keep: the entries of erased records forgotten from
//! a flow's snapshot and error table, a restore's error table and the restore Id map
//! (`tidemark erase` runs these with the erased object's record Ids).
//!
//! A snapshot entry or error row is an erased record's when
//! - the flow sends to the erased object and the entry's Salesforce Id is an erased Id, or
//! - one of its key values is an erased Id (a flow keyed by the source record's Id, the usual
//!   way to push an object's rows, or an external id holding it), or
//! - (error rows) its key is the key of a snapshot entry forgotten here.
//!
//! A forgotten snapshot entry is a key the flow never sent: were the record to come back
//! (its suppression lifted, synced again), the next run sends it as new. A flow keyed by some
//! other value of the record (its email, say) is not matched: key such flows by the record's Id.
//!
//! The snapshot is read in key order by the next run's diff, so it is rewritten whole, in
//! written order, when one of its files holds an entry. Each table is one scrub commit
//! ([`tidemark_lake::scrub`]), which a run's recovery looks past. The caller holds the flow's
//! lease (`push/<flow>`) or, for restores, `restore`.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value as J;
use tidemark_core::push::PushConfig;
use tidemark_lake::LakeLocation;
use tidemark_lake::arrow::array::{Array, BooleanArray, RecordBatch};
use tidemark_lake::arrow::compute::{filter_record_batch, not};
use tidemark_lake::deltalake::DeltaTable;
use tidemark_lake::history::open_table;
use tidemark_lake::keys::KeySet;
use tidemark_lake::policy::file_tokens;
use tidemark_lake::read::utf8;
use tidemark_lake::scrub::{self, RowTransform, Scrub, ScrubFile, ScrubMetrics};

use crate::error::{PushError, Result};
use crate::snapshot::{ROW_HASH, RUN, SF_ID};

/// What an erasure did to one flow's (or restores') tables.
#[derive(Debug, Clone, Default)]
pub struct PushErasure {
    /// Snapshot entries (or Id-map rows) and error rows forgotten.
    pub entries: u64,
    pub error_rows: u64,
    pub snapshot: ScrubMetrics,
    pub errors: ScrubMetrics,
}

/// Forgets the erased records (`ids` of `object`) in flow `flow`'s snapshot and error table
/// (`errors_only`, for a rectification: only the error rows, which quote the old values; the
/// snapshot's hashes make the next run send the new ones).
pub async fn forget_in_flow(
    lake: &LakeLocation,
    flow: &str,
    config: &PushConfig,
    object: &str,
    ids: &HashSet<String>,
    errors_only: bool,
) -> Result<PushErasure> {
    let mut out = PushErasure::default();
    nothing_in_flight(crate::journal::Journal::new(lake, flow)?, || PushError::Invalid {
        flow: flow.to_owned(),
        message: "inserts of an interrupted run are in flight; run `tidemark push` for it first, then the erasure again".into(),
    })
    .await?;
    let same_object = config.object.eq_ignore_ascii_case(object);
    let mut forgotten = KeySet::default();
    if let Some(mut table) = open_table(lake, crate::snapshot::url(lake, flow)).await?.filter(|_| !errors_only) {
        let label = format!("push {flow} snapshot");
        let key: Vec<String> = tidemark_lake::history::arrow_schema(&table, &label)?
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| ![ROW_HASH, SF_ID, RUN].contains(&n.as_str()))
            .collect();
        let ids = Arc::new(ids.clone());
        let key_names = key.clone();
        let erased: Picks = Arc::new(move |batch: &RecordBatch| {
            let sf_id = utf8(batch.column_by_name(SF_ID).expect("snapshot column"))?;
            let mut hit: Vec<bool> =
                (0..batch.num_rows()).map(|r| same_object && sf_id.is_valid(r) && ids.contains(sf_id.value(r))).collect();
            for name in &key_names {
                let text = tidemark_lake::arrow::compute::cast(
                    batch.column_by_name(name).expect("key"),
                    &tidemark_lake::arrow::datatypes::DataType::Utf8,
                )?;
                let text = utf8(&text)?;
                for (r, h) in hit.iter_mut().enumerate() {
                    *h |= text.is_valid(r) && ids.contains(text.value(r));
                }
            }
            Ok(hit.into_iter().map(Some).collect())
        });
        // The forgotten entries' keys (for the error table). The next run reads the snapshot in
        // key order, so it is rewritten whole, in written order, when it holds one.
        let names: Vec<&str> = key.iter().map(String::as_str).collect();
        scrub::scan_files(
            &table,
            &label,
            None,
            |_| false,
            |_, b| {
                forgotten.extend_from(&filter_record_batch(b, &erased(b)?)?, &names)?;
                Ok(false)
            },
        )
        .await?;
        let mut files = Vec::new();
        if !forgotten.is_empty() {
            files = file_tokens(&table, &label).await?;
            files.sort_by(|a, b| a.path.cmp(&b.path));
        }
        out.entries = forgotten.len() as u64;
        out.snapshot = Scrub::new("erase", files, dropping(erased)).run_on(&mut table, &label).await?;
    }
    let (rows, metrics) = forget_errors(lake, &crate::errors::errors_table(flow), same_object, ids, &forgotten).await?;
    (out.error_rows, out.errors) = (rows, metrics);
    Ok(out)
}

/// Forgets the erased records (`ids` of `object`) in the restores' error table of the object
/// and (unless `errors_only`) in the restore Id map.
pub async fn forget_in_restores(
    lake: &LakeLocation,
    object: &str,
    ids: &HashSet<String>,
    errors_only: bool,
) -> Result<PushErasure> {
    let mut out = PushErasure::default();
    let folder = crate::restore::restore_folder(object);
    nothing_in_flight(crate::journal::Journal::at(lake, &format!("{folder}/inflight"))?, || PushError::Restore {
        object: object.to_owned(),
        message: "re-creations of an interrupted restore are in flight; run the restore again first, then the erasure".into(),
    })
    .await?;
    let errors = format!("{folder}/errors");
    (out.error_rows, out.errors) = forget_errors(lake, &errors, true, ids, &KeySet::default()).await?;
    if let Some(mut table) =
        open_table(lake, lake.internal_table_url(crate::id_map::ID_MAP_TABLE)).await?.filter(|_| !errors_only)
    {
        let label = "restore id map".to_owned();
        let (ids, object) = (Arc::new(ids.clone()), object.to_owned());
        let erased: Picks = Arc::new(move |batch: &RecordBatch| {
            let (of, old, new) = (utf8(batch.column(0))?, utf8(batch.column(1))?, utf8(batch.column(2))?);
            Ok((0..batch.num_rows())
                .map(|r| {
                    Some(of.value(r).eq_ignore_ascii_case(&object) && (ids.contains(old.value(r)) || ids.contains(new.value(r))))
                })
                .collect())
        });
        let (files, entries) = picked(&table, &label, &erased).await?;
        out.entries = entries;
        out.snapshot = Scrub::new("erase", files, dropping(erased)).run_on(&mut table, &label).await?;
    }
    Ok(out)
}

type Picks = Arc<dyn Fn(&RecordBatch) -> tidemark_lake::error::Result<BooleanArray> + Send + Sync>;

/// The rows of an error table (`_tidemark/<name>`) of erased records: their key holds an
/// erased Id or is a forgotten key, or (`by_record_id`) the record sent has an erased `Id`.
async fn forget_errors(
    lake: &LakeLocation,
    name: &str,
    by_record_id: bool,
    ids: &HashSet<String>,
    forgotten: &KeySet,
) -> Result<(u64, ScrubMetrics)> {
    let Some(mut table) = open_table(lake, lake.internal_table_url(name)).await? else { return Ok((0, ScrubMetrics::default())) };
    let label = name.to_owned();
    let (ids, forgotten) = (Arc::new(ids.clone()), Arc::new(forgotten.clone()));
    let erased: Picks = Arc::new(move |batch: &RecordBatch| {
        let (key, record) = (
            utf8(batch.column_by_name("key").expect("error table column"))?,
            utf8(batch.column_by_name("record").expect("error table column"))?,
        );
        Ok((0..batch.num_rows())
            .map(|r| {
                let values = key_values(key.value(r));
                let sent_id = || {
                    serde_json::from_str::<J>(record.value(r))
                        .ok()
                        .and_then(|v| v.get("Id").and_then(J::as_str).map(str::to_owned))
                        .is_some_and(|id| ids.contains(&id))
                };
                Some(
                    values.iter().flatten().any(|v| ids.contains(v))
                        || forgotten.contains(&values)
                        || (by_record_id && sent_id()),
                )
            })
            .collect())
    });
    let (files, rows) = picked(&table, &label, &erased).await?;
    let metrics = Scrub::new("erase", files, dropping(erased)).run_on(&mut table, &label).await?;
    Ok((rows, metrics))
}

/// An error row's key (a JSON array) as the text of each value.
fn key_values(key: &str) -> Vec<Option<String>> {
    match serde_json::from_str::<J>(key) {
        Ok(J::Array(values)) => values
            .into_iter()
            .map(|v| match v {
                J::Null => None,
                J::String(s) => Some(s),
                other => Some(other.to_string()),
            })
            .collect(),
        _ => vec![Some(key.to_owned())],
    }
}

fn dropping(erased: Picks) -> RowTransform {
    Arc::new(move |_, batch: RecordBatch| Ok(filter_record_batch(&batch, &not(&erased(&batch)?)?)?))
}

/// The files holding an erased row, and how many they hold.
async fn picked(table: &DeltaTable, label: &str, erased: &Picks) -> Result<(Vec<ScrubFile>, u64)> {
    let picked = scrub::rows_picked(table, label, None, |b| erased(b)).await?;
    let rows = picked.iter().map(|(_, n)| n).sum();
    Ok((picked.into_iter().map(|(f, _)| f).collect(), rows))
}

async fn nothing_in_flight(journal: crate::journal::Journal, refused: impl FnOnce() -> PushError) -> Result<()> {
    if journal.chunks().await?.is_empty() { Ok(()) } else { Err(refused()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(run: i64, key: &str, record: &str) -> crate::ErrorRow {
        crate::ErrorRow {
            run,
            failed_at: chrono::Utc::now(),
            key: key.to_owned(),
            operation: "insert".into(),
            record: record.to_owned(),
            status_code: "REQUIRED_FIELD_MISSING".into(),
            message: "m".into(),
            fields: String::new(),
            attempt: 0,
            delivered_run: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn restores_forget_the_erased_records_error_rows_and_id_mappings() {
        let dir = tempfile::tempdir().unwrap();
        let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
        let pairs = [("003A", "003X"), ("003B", "003Y"), ("003E", "003Z")].map(|(a, b)| (a.to_owned(), b.to_owned()));
        crate::id_map::IdMap::load(&lake).await.unwrap().add("Contact", 1, chrono::Utc::now(), &pairs).await.unwrap();
        let errors = crate::ErrorTable::at(&lake, &format!("{}/errors", crate::restore::restore_folder("Contact")));
        let failed =
            vec![error(1, r#"["003A"]"#, "{}"), error(1, r#"["003C"]"#, r#"{"Id":"003Y"}"#), error(1, r#"["003D"]"#, "{}")];
        errors.record(1, &HashSet::new(), failed).await.unwrap();

        let ids: HashSet<String> = ["003A", "003Y"].map(str::to_owned).into();
        let out = forget_in_restores(&lake, "Contact", &ids, false).await.unwrap();
        assert_eq!((out.error_rows, out.entries), (2, 2));
        let left: Vec<String> = errors.rows().await.unwrap().into_iter().map(|r| r.key).collect();
        assert_eq!(left, vec![r#"["003D"]"#.to_owned()]);
        let map = crate::id_map::IdMap::load(&lake).await.unwrap();
        assert!(!map.is_mapped("003A") && !map.is_mapped("003B") && map.is_mapped("003E"));
        // Again: nothing left to forget.
        let again = forget_in_restores(&lake, "Contact", &ids, false).await.unwrap();
        assert_eq!((again.error_rows, again.entries), (0, 0));
    }

    #[test]
    fn error_keys_read_as_the_text_of_each_value() {
        assert_eq!(key_values(r#"["003A",5,null]"#), vec![Some("003A".into()), Some("5".into()), None]);
        assert_eq!(key_values("not json"), vec![Some("not json".into())]);
    }
}
