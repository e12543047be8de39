//! Records a sync must not bring back: Ids erased from the lake (`tidemark erase`) while the
//! record may still exist in the source. Kept in the ledger (`_tidemark/suppressions`): Ids
//! only, never a value.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::columns::timestamp_type;
use crate::error::Result;
use crate::ledger::Ledger;

const SUPPRESSIONS: &str = "suppressions";

/// One suppressed record (or, with `lifted`, the end of its suppression).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    pub at: DateTime<Utc>,
    /// The object (or `<source>.<table>`), as the erasure named it.
    pub object: String,
    pub id: String,
    /// The erasure that suppressed it.
    pub erasure_id: String,
    pub lifted: bool,
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("at", timestamp_type(), false),
        Field::new("object", DataType::Utf8, false),
        Field::new("id", DataType::Utf8, false),
        Field::new("erasure_id", DataType::Utf8, false),
        Field::new("lifted", DataType::Boolean, false),
    ]))
}

impl Ledger {
    pub async fn record_suppressions(&self, rows: &[Suppression]) -> Result<()> {
        self.append_rows(SUPPRESSIONS, schema(), rows).await
    }

    /// Suppressed Ids per object (lower case), the latest record of each Id deciding.
    pub async fn suppressed(&self) -> Result<HashMap<String, HashSet<String>>> {
        let mut rows: Vec<Suppression> = self.read_rows(SUPPRESSIONS).await?;
        rows.sort_by_key(|r| r.at);
        let mut out: HashMap<String, HashSet<String>> = HashMap::new();
        for row in rows {
            let ids = out.entry(row.object.to_ascii_lowercase()).or_default();
            if row.lifted {
                ids.remove(&row.id);
            } else {
                ids.insert(row.id);
            }
        }
        Ok(out)
    }
}
