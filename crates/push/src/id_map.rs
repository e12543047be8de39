//! The Ids restores gave to re-created records: `<lake>/_tidemark/restore_id_map`, a Delta
//! table `tidemark sql` reads as `restore_id_map` (object, old_id, new_id, run, restored_at).
//!
//! A record deleted and purged from the recycle bin comes back under a new Id. Every later
//! restore reads the map: a lookup that held the old Id is written with the new one (children
//! restored in a later run are re-linked to their re-created parent), and the record itself is
//! found again under its new Id rather than created a second time.
//!
//! Rows are appended once the creation is known, before the journal forgets the chunk, so a
//! crash in between only appends the same pairs again; readers take the latest pair per old Id.
//! A re-created record that is deleted, purged and restored again gets a second pair, and the
//! first new Id then maps on to the second, so lookups set by earlier restores follow it too.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tidemark_lake::arrow::array::{RecordBatch, StringArray};
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tidemark_lake::columns::timestamp_type;
use tidemark_lake::{LakeLocation, Ledger};

use crate::error::Result;

/// The internal table, and its SQL name.
pub const ID_MAP_TABLE: &str = "restore_id_map";

/// One re-created record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdMapping {
    pub object: String,
    pub old_id: String,
    pub new_id: String,
    pub run: i64,
    pub restored_at: DateTime<Utc>,
}

impl IdMapping {
    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("object", DataType::Utf8, false),
            Field::new("old_id", DataType::Utf8, false),
            Field::new("new_id", DataType::Utf8, false),
            Field::new("run", DataType::Int64, false),
            Field::new("restored_at", timestamp_type(), false),
        ]))
    }
}

/// The map, read once per restore and extended as records are re-created.
pub struct IdMap {
    ledger: Ledger,
    by_old: HashMap<String, String>,
}

/// Longest chain of re-creations followed (a cycle cannot arise, but a corrupt table could).
const MAX_CHAIN: usize = 64;

impl IdMap {
    pub async fn load(lake: &LakeLocation) -> Result<IdMap> {
        let ledger = Ledger::new(lake.clone());
        let mut rows: Vec<IdMapping> = ledger.read_rows(ID_MAP_TABLE).await?;
        rows.sort_by(|a, b| a.restored_at.cmp(&b.restored_at).then(a.run.cmp(&b.run)));
        let by_old = rows.into_iter().map(|r| (r.old_id, r.new_id)).collect();
        Ok(IdMap { ledger, by_old })
    }

    /// The Id a record of `id` lives under now: `id` itself unless it was re-created (the last
    /// of a chain of re-creations).
    pub fn resolve<'a>(&'a self, id: &'a str) -> &'a str {
        let mut current = id;
        for _ in 0..MAX_CHAIN {
            match self.by_old.get(current) {
                Some(next) if next != current => current = next,
                _ => break,
            }
        }
        current
    }

    /// Whether `id` was re-created under another Id.
    pub fn is_mapped(&self, id: &str) -> bool {
        self.resolve(id) != id
    }

    /// Records re-created records (old Id, new Id) of `object`, in one commit.
    pub async fn add(&mut self, object: &str, run: i64, at: DateTime<Utc>, pairs: &[(String, String)]) -> Result<()> {
        let mut rows = Vec::with_capacity(pairs.len());
        for (old, new) in pairs {
            if self.resolve(old) == new.as_str() {
                continue;
            }
            let mapping = |old: &str| IdMapping {
                object: object.to_owned(),
                old_id: old.to_owned(),
                new_id: new.clone(),
                run,
                restored_at: at,
            };
            // The record lived under an earlier new Id: that one now leads here too.
            let previous = self.resolve(old).to_owned();
            if previous != *old {
                rows.push(mapping(&previous));
            }
            rows.push(mapping(old));
        }
        self.ledger.append_rows(ID_MAP_TABLE, IdMapping::schema(), &rows).await?;
        for row in rows {
            self.by_old.insert(row.old_id, row.new_id);
        }
        Ok(())
    }

    /// The map as a batch (`old_id`, `new_id`, resolved to the latest Id) for a query to join.
    pub fn batch(&self) -> RecordBatch {
        let schema =
            Arc::new(Schema::new(vec![Field::new("old_id", DataType::Utf8, false), Field::new("new_id", DataType::Utf8, false)]));
        let old: Vec<&str> = self.by_old.keys().map(String::as_str).collect();
        let new: Vec<&str> = old.iter().map(|o| self.resolve(o)).collect();
        RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(old)), Arc::new(StringArray::from(new))])
            .expect("two string columns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chains_of_re_creations_resolve_to_the_latest_id_and_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut map = IdMap::load(&lake).await.unwrap();
        assert_eq!(map.resolve("A"), "A");
        map.add("Account", 1, at, &[("A".into(), "B".into())]).await.unwrap();
        map.add("Account", 2, at, &[("A".into(), "C".into())]).await.unwrap();
        // Appending a pair already known writes nothing.
        map.add("Account", 3, at, &[("A".into(), "C".into())]).await.unwrap();
        let reloaded = IdMap::load(&lake).await.unwrap();
        for m in [&map, &reloaded] {
            assert_eq!(m.resolve("A"), "C");
            assert_eq!(m.resolve("B"), "C", "a lookup set to the first new Id follows the record");
            assert!(!m.is_mapped("C"));
        }
        let rows: Vec<IdMapping> = Ledger::new(lake).read_rows(ID_MAP_TABLE).await.unwrap();
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(reloaded.batch().num_rows(), 2);
    }
}
