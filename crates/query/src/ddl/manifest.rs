//! Symlink manifests: the data-file lists Redshift Spectrum (and other Hive-style readers) read a
//! Delta table through, since they cannot read its log.

use std::collections::BTreeMap;

use tidemark_lake::deltalake::logstore::object_store::{ObjectStoreExt as _, PutPayload};
use tidemark_lake::deltalake::{DeltaTable, ObjectStoreError, Path};
use tidemark_lake::history::open_table;
use tidemark_lake::{HistoryTable, LakeError, LakeLocation};
use url::Url;

use super::DdlError;
use crate::marts::MartShape;

/// Where a table's symlink manifest lives, relative to the table root.
pub const MANIFEST_PATH: &str = "_symlink_format_manifest/manifest";

/// What [`write_symlink_manifests`] or [`write_mart_manifests`] wrote for one table (or one
/// partition of a mart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The object (or the mart's model name).
    pub object: String,
    /// `<table root>/_symlink_format_manifest/manifest`; for a mart
    /// `<table root>/_symlink_format_manifest/<flag>=<true|false>/manifest`.
    pub location: Url,
    /// Data files listed: those of the table's current snapshot (in that partition).
    pub files: usize,
}

/// Writes each object's symlink manifest, `<table root>/`[`MANIFEST_PATH`]: the absolute URI of
/// every data file of the table's current snapshot, one per line, sorted. Redshift Spectrum
/// (and other Hive-style readers) read the table through it, so it must be written again after
/// every sync. The manifest is replaced in one put, so readers see the old list or the new one;
/// an empty table gets an empty manifest, which Spectrum refuses until the first sync writes rows.
pub async fn write_symlink_manifests(location: &LakeLocation, objects: &[String]) -> Result<Vec<Manifest>, DdlError> {
    let mut written = Vec::with_capacity(objects.len());
    for object in objects {
        written.push(write_manifest(location, object).await?);
    }
    Ok(written)
}

async fn write_manifest(location: &LakeLocation, object: &str) -> Result<Manifest, DdlError> {
    let table_url = location.object_table_url(object);
    let table = HistoryTable::open(location, object)
        .await?
        .ok_or_else(|| DdlError::NoTable { object: object.to_owned(), location: table_url.to_string() })?;
    let uris: Vec<String> = data_files(table.delta(), object)?.into_iter().map(|(uri, _)| uri).collect();
    put_manifest(table.delta(), object, MANIFEST_PATH, &uris).await
}

/// Replaces the manifest at `path` (relative to the table root) with `uris` in one put.
async fn put_manifest(delta: &DeltaTable, label: &str, path: &str, uris: &[String]) -> Result<Manifest, DdlError> {
    let manifest = table_root(delta).join(path).map_err(|e| layout(label, format!("manifest location: {e}")))?;
    let body: String = uris.iter().map(|u| format!("{u}\n")).collect();
    let put = delta.object_store().put(&Path::from(path), PutPayload::from(body)).await;
    put.map_err(|e| DdlError::Manifest { manifest: manifest.to_string(), source: Box::new(e) })?;
    Ok(Manifest { object: label.to_owned(), location: manifest, files: uris.len() })
}

/// Writes each mart's symlink manifests, one per value of its current-row flag (its partition
/// column), at `<table root>/_symlink_format_manifest/<flag>=<value>/manifest`: the data files
/// do not hold the flag, so the external table `catalog ddl` declares is partitioned by it, each
/// partition reading its own manifest. A value without files has no manifest (a stale one is
/// removed), so its partition reads no rows rather than an empty manifest Spectrum refuses.
/// Like the history tables', they must be written again after every model load.
pub async fn write_mart_manifests(location: &LakeLocation, marts: &[String]) -> Result<Vec<Manifest>, DdlError> {
    let mut written = Vec::new();
    for mart in marts {
        let url = location.mart_table_url(mart);
        let delta = open_table(location, url.clone())
            .await?
            .ok_or_else(|| DdlError::NoMart { mart: mart.to_owned(), location: url.to_string() })?;
        let shape = MartShape::of(&delta).map_err(|e| LakeError::delta(mart, e))?;
        let Some(flag) = shape.current() else {
            return Err(DdlError::NotAMart {
                mart: mart.to_owned(),
                partition_columns: format!("[{}]", shape.partition_columns.join(", ")),
            });
        };
        let mut by_value: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (uri, partition) in data_files(&delta, mart)? {
            let value = partition.get(flag).cloned().flatten().unwrap_or_default();
            by_value.entry(value).or_default().push(uri);
        }
        if let Some(other) = by_value.keys().find(|v| !matches!(v.as_str(), "true" | "false")) {
            return Err(layout(mart, format!("a data file's {flag} partition value is '{other}', not true or false")));
        }
        for value in ["true", "false"] {
            let path = format!("_symlink_format_manifest/{flag}={value}/manifest");
            match by_value.get(value) {
                Some(uris) => written.push(put_manifest(&delta, mart, &path, uris).await?),
                None => match delta.object_store().delete(&Path::from(path.as_str())).await {
                    Ok(()) | Err(ObjectStoreError::NotFound { .. }) => {}
                    Err(e) => return Err(DdlError::Manifest { manifest: format!("{url}{path}"), source: Box::new(e) }),
                },
            }
        }
    }
    Ok(written)
}

fn layout(object: &str, detail: String) -> DdlError {
    DdlError::Lake(LakeError::Layout { table: object.to_owned(), detail })
}

/// Absolute URIs of the current snapshot's data files, sorted, with their partition values.
fn data_files(delta: &DeltaTable, object: &str) -> Result<Vec<(String, PartitionValues)>, DdlError> {
    let snapshot = delta.snapshot().map_err(|e| LakeError::Delta { table: object.to_owned(), source: Box::new(e) })?;
    let root = table_root(delta);
    let mut uris = Vec::new();
    for file in snapshot.log_data() {
        // Log paths are decoded here; re-escape what a URL would otherwise read as syntax.
        let path = file.path().replace('%', "%25").replace('#', "%23").replace('?', "%3F");
        let uri = root.join(&path).map_err(|e| layout(object, format!("data file {path}: {e}")))?;
        uris.push((uri.to_string(), file.partition_values_map()));
    }
    uris.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(uris)
}

/// The table's root URL, ending with `/` so that paths join below it.
fn table_root(delta: &DeltaTable) -> Url {
    let mut root = delta.table_url().clone();
    if !root.path().ends_with('/') {
        let path = format!("{}/", root.path());
        root.set_path(&path);
    }
    root
}

type PartitionValues = std::collections::HashMap<String, Option<String>>;
