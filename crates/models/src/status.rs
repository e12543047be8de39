//! `tidemark model status`: per model, its last load and what waits for the next one.

use std::collections::HashMap;
use std::path::Path;

use tidemark_core::models::ModelConfig;
use tidemark_lake::LakeLocation;

use crate::error::Result;
use crate::files::{LandingZone, unconsumed};
use crate::ledger::{LoadLedger, LoadRecord};
use crate::load::files_location;

/// What `model status` shows for one model.
#[derive(Debug, Clone)]
pub struct ModelStatus {
    pub name: String,
    pub loads: usize,
    pub last: Option<LoadRecord>,
    /// Rows of the dimension and its current rows, by the table's file statistics.
    pub rows: Option<u64>,
    pub current_rows: Option<u64>,
    /// Per source: files landed and not consumed yet.
    pub pending_files: Vec<(String, usize)>,
}

pub async fn model_status(lake: &LakeLocation, name: &str, model: &ModelConfig, base_dir: &Path) -> Result<ModelStatus> {
    let records = LoadLedger::new(lake.clone()).loads(name).await?;
    let mut consumed: HashMap<String, HashMap<String, u64>> = HashMap::new();
    for record in &records {
        for c in record.consumed() {
            consumed.entry(c.source).or_default().insert(c.file.path, c.file.size);
        }
    }
    let mut pending_files = Vec::new();
    for source in &model.sources {
        let Some(files) = &source.files else { continue };
        let zone = LandingZone::new(source, files_location(lake, base_dir, files)?)?;
        let new = unconsumed(zone.list().await?, consumed.get(&source.name).unwrap_or(&HashMap::new()));
        pending_files.push((source.name.clone(), new.len()));
    }
    let (mut rows, mut current_rows) = (None, None);
    if let Some(table) = crate::mart::open_dimension(lake, name).await? {
        use futures::StreamExt;
        let (mut all, mut current) = (0u64, 0u64);
        let mut files = table.get_active_add_actions_by_partitions(&[]);
        while let Some(file) = files.next().await {
            let file = file.map_err(|e| tidemark_lake::LakeError::delta(name, e))?;
            let n = file.num_records().unwrap_or(0) as u64;
            all += n;
            if file.partition_values_map().get(&model.columns.current).and_then(|v| v.as_deref()) == Some("true") {
                current += n;
            }
        }
        (rows, current_rows) = (Some(all), Some(current));
    }
    Ok(ModelStatus {
        name: name.to_owned(),
        loads: records.len(),
        last: records.last().cloned(),
        rows,
        current_rows,
        pending_files,
    })
}
