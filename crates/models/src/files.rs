//! A file source's landing zone: the data files under its folder or `s3://` prefix, and which
//! of them a load has not consumed yet.
//!
//! A file is identified by its path under the prefix and its size. A consumed path is skipped;
//! a consumed path whose size changed (the file was replaced) is read again, which is safe
//! because rows already loaded are recognised as stale. Names starting with `_` or `.`
//! (markers such as `_SUCCESS`, temporary uploads) are not data.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tidemark_core::models::{FileFormat, SourceConfig};
use tidemark_lake::deltalake::logstore::object_store::ObjectStoreExt as _;
use tidemark_lake::deltalake::{ObjectStore, Path};
use tidemark_lake::{LakeError, LakeLocation};

use crate::error::{ModelError, Result};

/// One landed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandedFile {
    /// Path under the source's prefix.
    pub path: String,
    pub size: u64,
}

/// A source's landing zone.
#[derive(Clone)]
pub struct LandingZone {
    location: LakeLocation,
    store: Arc<dyn ObjectStore>,
    format: Option<FileFormat>,
    /// Instead of CSV/Parquet detection: the (lower-case) name endings that are data files.
    extensions: Option<&'static [&'static str]>,
}

impl std::fmt::Debug for LandingZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LandingZone").field("location", &self.location).finish()
    }
}

impl LandingZone {
    /// The zone of `source` (`files:`), with the lake's storage options for `s3://` prefixes.
    pub fn new(source: &SourceConfig, location: LakeLocation) -> Result<LandingZone> {
        let store = location.object_store()?;
        Ok(LandingZone { location, store, format: source.format, extensions: None })
    }

    /// The zone at `location` whose data files are those ending in one of `extensions`
    /// (lower case, e.g. `.json`): change files of a CDC source.
    pub fn with_extensions(location: LakeLocation, extensions: &'static [&'static str]) -> Result<LandingZone> {
        let store = location.object_store()?;
        Ok(LandingZone { location, store, format: None, extensions: Some(extensions) })
    }

    /// The folder or prefix the zone lists.
    pub fn location(&self) -> &LakeLocation {
        &self.location
    }

    pub fn label(&self, file: &LandedFile) -> String {
        format!("{}{}", self.location.root(), file.path)
    }

    /// Every data file, sorted by path. A missing local folder is an error (a typo must not
    /// look like an empty extract).
    pub async fn list(&self) -> Result<Vec<LandedFile>> {
        if let Ok(path) = self.location.root().to_file_path() {
            if !path.is_dir() {
                return Err(ModelError::file(self.location.root().as_str(), "no such folder"));
            }
        }
        let root = self.location.root().to_string();
        let mut files: Vec<LandedFile> = self
            .store
            .list(None)
            .map_err(|e| LakeError::store(&root, e))
            .try_filter_map(|meta| async move {
                let path = meta.location.to_string();
                let hidden = path.split('/').any(|part| part.starts_with('_') || part.starts_with('.'));
                Ok((!hidden && self.is_data(&path)).then_some(LandedFile { path, size: meta.size }))
            })
            .try_collect()
            .await?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    fn is_data(&self, path: &str) -> bool {
        match self.extensions {
            Some(endings) => {
                let lower = path.to_ascii_lowercase();
                endings.iter().any(|e| lower.ends_with(e))
            }
            None => self.format_of(path).is_some(),
        }
    }

    /// The format of a file: the configured one, else by extension; `None` for other files.
    pub fn format_of(&self, path: &str) -> Option<FileFormat> {
        let lower = path.to_ascii_lowercase();
        let by_extension = if lower.ends_with(".csv") || lower.ends_with(".txt") {
            Some(FileFormat::Csv)
        } else if lower.ends_with(".parquet") {
            Some(FileFormat::Parquet)
        } else {
            None
        };
        match self.format {
            Some(format) if by_extension.is_some() || !lower.contains('.') => Some(format),
            Some(_) => None,
            None => by_extension,
        }
    }

    pub async fn read(&self, file: &LandedFile) -> Result<bytes::Bytes> {
        let root = self.location.root().to_string();
        let got = self.store.get(&Path::from(file.path.as_str())).await.map_err(|e| LakeError::store(&root, e))?;
        Ok(got.bytes().await.map_err(|e| LakeError::store(&root, e))?)
    }
}

/// Which files to read now: those not consumed before (by path and size), in path order.
pub fn unconsumed(listed: Vec<LandedFile>, consumed: &HashMap<String, u64>) -> Vec<LandedFile> {
    listed.into_iter().filter(|f| consumed.get(&f.path) != Some(&f.size)).collect()
}

/// Consumed files of one source: path → size at the time, from the load ledger.
pub fn consumed_by_path<'a>(files: impl IntoIterator<Item = &'a LandedFile>) -> HashMap<String, u64> {
    files.into_iter().map(|f| (f.path.clone(), f.size)).collect::<BTreeMap<_, _>>().into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lists_data_files_in_path_order_and_skips_markers() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.csv", "a.csv", "_SUCCESS", ".tmp.csv", "notes.md", "sub/c.csv"] {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x,y\n").unwrap();
        }
        let source: SourceConfig = serde_yaml_ng::from_str("{name: s, files: x, columns: [y]}").unwrap();
        let zone = LandingZone::new(&source, LakeLocation::parse(dir.path().to_str().unwrap()).unwrap()).unwrap();
        let files = zone.list().await.unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["a.csv", "b.csv", "sub/c.csv"]);
        let consumed = HashMap::from([("a.csv".to_owned(), 4), ("b.csv".to_owned(), 99)]);
        let new: Vec<String> = unconsumed(files, &consumed).into_iter().map(|f| f.path).collect();
        assert_eq!(new, ["b.csv", "sub/c.csv"], "a replaced file (new size) is read again");
        let missing = LandingZone::new(&source, LakeLocation::parse(dir.path().join("typo").to_str().unwrap()).unwrap()).unwrap();
        assert!(missing.list().await.unwrap_err().to_string().contains("no such folder"));
    }
}
