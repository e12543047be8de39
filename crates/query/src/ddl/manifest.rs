//! Symlink manifests: the data-file lists Redshift Spectrum (and other Hive-style readers) read a
//! Delta table through, since they cannot read its log.

use tidemark_lake::deltalake::Path;
use tidemark_lake::deltalake::logstore::object_store::{ObjectStoreExt as _, PutPayload};
use tidemark_lake::{HistoryTable, LakeError, LakeLocation};
use url::Url;

use super::DdlError;

/// Where a table's symlink manifest lives, relative to the table root.
pub const MANIFEST_PATH: &str = "_symlink_format_manifest/manifest";

/// What [`write_symlink_manifests`] wrote for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub object: String,
    /// `<table root>/_symlink_format_manifest/manifest`.
    pub location: Url,
    /// Data files listed: those of the table's current snapshot.
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
    let uris = data_file_uris(&table)?;
    let manifest = table_url.join(MANIFEST_PATH).map_err(|e| layout(object, format!("manifest location: {e}")))?;
    let body: String = uris.iter().map(|u| format!("{u}\n")).collect();
    let store = table.delta().object_store();
    let put = store.put(&Path::from(MANIFEST_PATH), PutPayload::from(body)).await;
    put.map_err(|e| DdlError::Manifest { manifest: manifest.to_string(), source: Box::new(e) })?;
    Ok(Manifest { object: object.to_owned(), location: manifest, files: uris.len() })
}

fn layout(object: &str, detail: String) -> DdlError {
    DdlError::Lake(LakeError::Layout { table: object.to_owned(), detail })
}

/// Absolute URIs of the current snapshot's data files, sorted.
fn data_file_uris(table: &HistoryTable) -> Result<Vec<String>, DdlError> {
    let object = table.object();
    let snapshot = table.delta().snapshot().map_err(|e| LakeError::Delta { table: object.to_owned(), source: Box::new(e) })?;
    let mut root = table.delta().table_url().clone();
    if !root.path().ends_with('/') {
        let path = format!("{}/", root.path());
        root.set_path(&path);
    }
    let mut uris = Vec::new();
    for file in snapshot.log_data() {
        // Log paths are decoded here; re-escape what a URL would otherwise read as syntax.
        let path = file.path().replace('%', "%25").replace('#', "%23").replace('?', "%3F");
        let uri = root.join(&path).map_err(|e| layout(object, format!("data file {path}: {e}")))?;
        uris.push(uri.to_string());
    }
    uris.sort();
    Ok(uris)
}
