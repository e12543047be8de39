//! Where a lake lives: a local folder or an object-store URL (`s3://bucket/prefix`), and the
//! layout inside it.
//!
//! ```text
//! <lake>/objects/<object>/          one history table per Salesforce object (lower-case API name)
//! <lake>/sources/<source>/<table>/  one history table per table of another source (Postgres, CDC files)
//! <lake>/_tidemark/sync_runs/       one row per object per sync run (bookmarks, outcomes)
//! <lake>/_tidemark/schema_events/   every schema change Tidemark applied
//! <lake>/marts/<model>/             one dimension table per model
//! <lake>/_tidemark/model_loads/     one row per model load (files consumed, counts)
//! <lake>/_tidemark/model_state/<model>/  a model's source rows for keys without a current row
//! ```

use std::collections::HashMap;

use url::Url;

use crate::error::{LakeError, Result};

/// A lake root plus the storage options for it (credentials and endpoints for object stores;
/// by default taken from the standard `AWS_*` environment variables by the S3 backend).
#[derive(Clone)]
pub struct LakeLocation {
    root: Url,
    storage_options: HashMap<String, String>,
}

impl std::fmt::Debug for LakeLocation {
    // Storage options hold credentials: show only their keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<&String> = self.storage_options.keys().collect();
        keys.sort();
        f.debug_struct("LakeLocation").field("root", &self.root.as_str()).field("storage_option_keys", &keys).finish()
    }
}

impl LakeLocation {
    /// Parses a location: a URL with a scheme (`s3://`, `file://`, `memory://`) or a local path.
    /// Nothing is created: a writer creates folders as it writes, and readers check
    /// [`LakeLocation::exists`] first.
    pub fn parse(location: &str) -> Result<LakeLocation> {
        let err = |reason: String| LakeError::Location { location: location.to_owned(), reason };
        if location.trim().is_empty() {
            return Err(err("empty".into()));
        }
        let root = match Url::parse(location) {
            Ok(url) if url.scheme().len() > 1 => url,
            _ => {
                let path = std::path::Path::new(location);
                // Symlinks resolved where the folder exists; a new lake's path made absolute.
                let abs = std::fs::canonicalize(path).or_else(|_| std::path::absolute(path)).map_err(|e| err(e.to_string()))?;
                if abs.exists() && !abs.is_dir() {
                    return Err(err("not a folder".into()));
                }
                Url::from_directory_path(&abs).map_err(|()| err("not an absolute path".into()))?
            }
        };
        let mut root = root;
        if !root.path().ends_with('/') {
            let p = format!("{}/", root.path());
            root.set_path(&p);
        }
        Ok(LakeLocation { root, storage_options: HashMap::new() })
    }

    /// Adds storage options (e.g. `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`).
    pub fn with_storage_options(mut self, options: HashMap<String, String>) -> LakeLocation {
        self.storage_options.extend(options);
        self
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    pub fn storage_options(&self) -> &HashMap<String, String> {
        &self.storage_options
    }

    /// The folder name of an object's history table.
    pub fn table_name(object: &str) -> String {
        object.to_ascii_lowercase()
    }

    /// The lease name of an object's history table (see [`crate::lease`]).
    pub fn table_resource(object: &str) -> String {
        format!("objects/{}", LakeLocation::table_name(object))
    }

    pub fn object_table_url(&self, object: &str) -> Url {
        self.join(&format!("objects/{}/", LakeLocation::table_name(object)))
    }

    /// The history table of `table` from the source named `source` (a `sources:` entry of the
    /// configuration). Salesforce objects keep their own folder, `objects/`.
    pub fn source_table_url(&self, source: &str, table: &str) -> Url {
        self.join(&format!("sources/{}/{}/", LakeLocation::table_name(source), LakeLocation::table_name(table)))
    }

    /// The lease (and label) name of a source table: `sources/<source>/<table>`.
    pub fn source_resource(source: &str, table: &str) -> String {
        format!("sources/{}/{}", LakeLocation::table_name(source), LakeLocation::table_name(table))
    }

    /// The folder names of a source's history tables, sorted (as [`LakeLocation::history_tables`]).
    pub async fn source_tables(&self, source: &str) -> Result<Vec<String>> {
        self.delta_folders(&format!("sources/{}", LakeLocation::table_name(source))).await
    }

    /// The sources that have a folder under `sources/`, sorted.
    pub async fn sources(&self) -> Result<Vec<String>> {
        use deltalake::ObjectStore;
        let label = self.root.to_string();
        let store = self.object_store()?;
        let listing =
            store.list_with_delimiter(Some(&deltalake::Path::from("sources"))).await.map_err(|e| LakeError::store(&label, e))?;
        let mut names: Vec<String> = listing.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_owned)).collect();
        names.sort();
        Ok(names)
    }

    /// A dimension model's table.
    pub fn mart_table_url(&self, model: &str) -> Url {
        self.join(&format!("marts/{}/", LakeLocation::table_name(model)))
    }

    /// The lease name of a model's tables.
    pub fn mart_resource(model: &str) -> String {
        format!("marts/{}", LakeLocation::table_name(model))
    }

    pub fn internal_table_url(&self, name: &str) -> Url {
        self.join(&format!("_tidemark/{name}/"))
    }

    /// The object store rooted at the lake (paths inside it are relative to the root).
    pub fn object_store(&self) -> Result<std::sync::Arc<dyn deltalake::ObjectStore>> {
        let label = self.root.to_string();
        Ok(deltalake::DeltaTableBuilder::from_url(self.root.clone())
            .map_err(|e| LakeError::delta(&label, e))?
            .with_storage_options(self.storage_options.clone())
            .build_storage()
            .map_err(|e| LakeError::delta(&label, e))?
            .object_store(None))
    }

    /// Whether anything is stored at the lake's location: a local folder that exists, or at
    /// least one object under the prefix. Read-only commands refuse a lake that does not.
    pub async fn exists(&self) -> Result<bool> {
        use futures::TryStreamExt;
        if let Ok(path) = self.root.to_file_path() {
            return Ok(path.is_dir());
        }
        let store = self.object_store()?;
        let mut listing = store.list(None);
        Ok(listing.try_next().await.map_err(|e| LakeError::store(self.root.as_str(), e))?.is_some())
    }

    /// The folder names (lower-case object names) of the history tables in the lake, sorted.
    /// A folder counts once it holds a Delta log, so a table being created is left out.
    pub async fn history_tables(&self) -> Result<Vec<String>> {
        self.delta_folders("objects").await
    }

    /// The folder names (lower-case model names) of the dimension tables under `marts/`,
    /// sorted. As for history tables, a folder counts once it holds a Delta log.
    pub async fn mart_tables(&self) -> Result<Vec<String>> {
        self.delta_folders("marts").await
    }

    /// Every Delta table of the lake, as paths relative to its root (`objects/account`,
    /// `sources/app/orders`, `marts/contact_dim`, `_tidemark/sync_runs`,
    /// `_tidemark/push/vendors/snapshot`), sorted. Leases and landing folders are not tables.
    pub async fn all_tables(&self) -> Result<Vec<String>> {
        use deltalake::ObjectStore;
        let label = self.root.to_string();
        let store = self.object_store()?;
        let mut tables = Vec::new();
        // (folder, how many levels further a table may be)
        let mut pending: Vec<(deltalake::Path, usize)> =
            [("objects", 1), ("sources", 2), ("marts", 1), ("_tidemark", 3)].map(|(f, d)| (deltalake::Path::from(f), d)).into();
        while let Some((folder, depth)) = pending.pop() {
            let listing = match store.list_with_delimiter(Some(&folder)).await {
                Ok(l) => l,
                Err(deltalake::ObjectStoreError::NotFound { .. }) => continue,
                Err(e) => return Err(LakeError::store(&label, e)),
            };
            if listing.common_prefixes.iter().any(|p| p.filename() == Some("_delta_log")) {
                tables.push(folder.to_string());
                continue;
            }
            if depth == 0 || folder.as_ref() == "_tidemark/leases" {
                continue;
            }
            for prefix in listing.common_prefixes {
                // `key=value` folders are a table's partitions, never tables.
                if prefix.filename().is_some_and(|n| !n.contains('=')) {
                    pending.push((prefix, depth - 1));
                }
            }
        }
        tables.sort();
        Ok(tables)
    }

    /// The URL of a table [`LakeLocation::all_tables`] named.
    pub fn table_url(&self, relative: &str) -> Url {
        self.join(&format!("{}/", relative.trim_end_matches('/')))
    }

    /// The sub-folders of `folder` (relative to the root) that hold a Delta log, sorted.
    async fn delta_folders(&self, folder: &str) -> Result<Vec<String>> {
        use deltalake::ObjectStore;
        use deltalake::Path;
        use futures::TryStreamExt;

        let label = self.root.to_string();
        let store = self.object_store()?;
        let listing = store.list_with_delimiter(Some(&Path::from(folder))).await.map_err(|e| LakeError::store(&label, e))?;
        let mut tables = Vec::new();
        for prefix in listing.common_prefixes {
            let Some(name) = prefix.filename() else { continue };
            let mut entries = store.list(Some(&prefix.clone().join("_delta_log")));
            if entries.try_next().await.map_err(|e| LakeError::store(&label, e))?.is_some() {
                tables.push(name.to_owned());
            }
        }
        tables.sort();
        Ok(tables)
    }

    fn join(&self, rel: &str) -> Url {
        self.root.join(rel).expect("relative path joins a directory URL")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_and_urls_become_directory_urls() {
        let dir = tempfile::tempdir().unwrap();
        let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
        assert!(lake.root().as_str().starts_with("file:///") && lake.root().as_str().ends_with("/lake/"));
        assert!(lake.object_table_url("Invoice__c").as_str().ends_with("/lake/objects/invoice__c/"));
        let s3 = LakeLocation::parse("s3://bucket/prefix").unwrap();
        assert_eq!(s3.object_table_url("Account").as_str(), "s3://bucket/prefix/objects/account/");
        assert_eq!(s3.internal_table_url("sync_runs").as_str(), "s3://bucket/prefix/_tidemark/sync_runs/");
        assert!(LakeLocation::parse(" ").is_err());
    }

    #[tokio::test]
    async fn parsing_creates_nothing_and_exists_tells_a_missing_lake() {
        let dir = tempfile::tempdir().unwrap();
        let typo = LakeLocation::parse(dir.path().join("typo").to_str().unwrap()).unwrap();
        assert!(!dir.path().join("typo").exists(), "parsing a location must not create it");
        assert!(!typo.exists().await.unwrap());
        assert!(LakeLocation::parse(dir.path().to_str().unwrap()).unwrap().exists().await.unwrap());
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        assert!(LakeLocation::parse(dir.path().join("file").to_str().unwrap()).is_err(), "a file is not a lake");
    }

    #[tokio::test]
    async fn history_tables_lists_folders_with_a_delta_log() {
        use deltalake::arrow::datatypes::{DataType, Field, Schema};
        let dir = tempfile::tempdir().unwrap();
        let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
        assert!(lake.history_tables().await.unwrap().is_empty());
        let schema = Schema::new(vec![Field::new("Id", DataType::Utf8, false)]);
        crate::HistoryTable::create(&lake, "Invoice__c", &schema).await.unwrap();
        crate::HistoryTable::create(&lake, "Account", &schema).await.unwrap();
        std::fs::create_dir_all(dir.path().join("lake/objects/half_made")).unwrap();
        assert_eq!(lake.history_tables().await.unwrap(), ["account", "invoice__c"]);
    }

    #[tokio::test]
    async fn mart_tables_lists_model_folders_with_a_delta_log() {
        use deltalake::arrow::datatypes::{DataType, Field, Schema};
        let dir = tempfile::tempdir().unwrap();
        let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
        assert!(lake.mart_tables().await.unwrap().is_empty(), "no marts/ folder at all");
        let schema = Schema::new(vec![Field::new("Id", DataType::Utf8, false)]);
        for model in ["dim_customer", "Dim_Account"] {
            crate::history::create_table(&lake, lake.mart_table_url(model), model, &schema, &[]).await.unwrap();
        }
        crate::HistoryTable::create(&lake, "Account", &schema).await.unwrap();
        std::fs::create_dir_all(dir.path().join("lake/marts/half_made")).unwrap();
        assert_eq!(lake.mart_tables().await.unwrap(), ["dim_account", "dim_customer"]);
        assert_eq!(lake.history_tables().await.unwrap(), ["account"], "marts are not history tables");
    }

    #[test]
    fn debug_hides_storage_option_values() {
        let lake = LakeLocation::parse("s3://b/p")
            .unwrap()
            .with_storage_options(HashMap::from([("AWS_SECRET_ACCESS_KEY".to_owned(), "hunter2".to_owned())]));
        let shown = format!("{lake:?}");
        assert!(shown.contains("AWS_SECRET_ACCESS_KEY") && !shown.contains("hunter2"));
    }
}
