//! The tables derived from an object's records that an erasure clears too: dimensions with a
//! source on the object (their rows of the records' business keys, see
//! [`tidemark_models::erase`]), push flows' snapshots and error tables, and what restores keep
//! ([`tidemark_push::erase`]). Landed files a model reads are the user's, not the lake's: they
//! are out of reach (and out of scope).

use std::collections::{BTreeMap, HashSet};

use tidemark_core::models::ModelConfig;
use tidemark_core::push::PushConfig;
use tidemark_lake::arrow::array::{ArrayRef, RecordBatch};
use tidemark_lake::arrow::compute::filter_record_batch;
use tidemark_lake::columns::{ID, KEY};
use tidemark_lake::keys::KeySet;
use tidemark_lake::{HistoryTable, LakeLocation, scrub};

use crate::GovernError;

/// The models and flows an erasure of one object looks into.
#[derive(Debug, Clone, Default)]
pub struct Derived {
    /// Models with a source on the object, and those sources' positions.
    models: Vec<(String, ModelConfig, Vec<usize>)>,
    flows: Vec<(String, PushConfig)>,
}

impl Derived {
    /// Every model with a source on `object`, and every flow (a flow's key may hold the
    /// object's Ids whatever it sends to).
    pub fn of(object: &str, models: &BTreeMap<String, ModelConfig>, flows: &BTreeMap<String, PushConfig>) -> Derived {
        let models = models
            .iter()
            .filter_map(|(name, model)| {
                let sources: Vec<usize> = model
                    .sources
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.object.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(object)))
                    .map(|(i, _)| i)
                    .collect();
                (!sources.is_empty()).then(|| (name.clone(), model.clone(), sources))
            })
            .collect();
        Derived { models, flows: flows.iter().map(|(n, f)| (n.clone(), f.clone())).collect() }
    }

    /// The leases held while the erasure runs: no load or push run interleaves with it.
    pub fn leases(&self) -> Vec<String> {
        let mut out: Vec<String> = self.models.iter().map(|(name, ..)| LakeLocation::mart_resource(name)).collect();
        out.extend(self.flows.iter().map(|(name, _)| tidemark_push::run::lease_resource(name)));
        out.push("restore".to_owned());
        out
    }

    /// The derived tables looked into, as the audit names them.
    pub fn tables(&self) -> Vec<String> {
        let mut out: Vec<String> = self.models.iter().map(|(name, ..)| format!("model {name}")).collect();
        out.extend(self.flows.iter().map(|(name, _)| format!("push {name}")));
        out.push("restores".to_owned());
        out
    }

    /// Clears the rows of `ids` (records of `history`'s object) from every derived table, or
    /// (`rectify`: fields and their new values) rewrites those fields in the dimensions and
    /// drops the error rows quoting the old values; returns the rows removed or rewritten per
    /// table. Run before the history itself is rewritten: the dimensions' business keys are
    /// read from it.
    pub async fn erase(
        &self,
        lake: &LakeLocation,
        history: &HistoryTable,
        ids: &HashSet<String>,
        rectify: &[(String, ArrayRef)],
    ) -> Result<BTreeMap<String, u64>, GovernError> {
        let mut out = BTreeMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        // Records are named by `_key` in other sources' tables.
        let record_key = if history.schema()?.field_with_name(KEY).is_ok() { KEY } else { ID };
        let mut erased_ids = KeySet::default();
        for id in ids {
            erased_ids.insert(vec![Some(id.clone())]);
        }
        for (name, model, sources) in &self.models {
            for &source in sources {
                let in_model = |e: GovernError| match e {
                    GovernError::Unsupported(detail) => {
                        GovernError::Unsupported(format!("model {name}, source {}: {detail}", model.sources[source].name))
                    }
                    other => other,
                };
                let (matched, columns): (Vec<String>, Vec<String>) = join_columns(model, source).into_iter().unzip();
                let mut keys = values_where(history, &[record_key.to_owned()], &erased_ids, &columns).await.map_err(in_model)?;
                let mut matched = matched;
                let dimension = tidemark_models::erase::dimension_columns(lake, name).await?;
                if dimension.is_empty() {
                    continue; // never loaded
                }
                if source > 0 && !matched.iter().all(|c| dimension.contains(c)) {
                    // The primary columns the source joins on are not kept in the dimension
                    // (a Contact dimension joined to Account by AccountId): the rows are found
                    // through the primary object's versions that were joined to the records.
                    let primary = model.sources[0].object.as_deref().ok_or_else(|| {
                        in_model(GovernError::Unsupported(format!(
                            "the columns it joins on ({}) are not in the dimension, and its primary source is not a lake object",
                            matched.join(", ")
                        )))
                    })?;
                    let primary =
                        HistoryTable::open(lake, primary).await?.ok_or_else(|| GovernError::UnknownTable(primary.to_owned()))?;
                    keys = values_where(&primary, &matched, &keys, &model.key).await.map_err(in_model)?;
                    matched = model.key.clone();
                }
                let erased = tidemark_models::erase::erase_keys(lake, name, model, source, &matched, &keys, rectify).await?;
                *out.entry(format!("model {name}")).or_default() += erased.dimension_rows;
                *out.entry(format!("model {name} state")).or_default() += erased.state_rows;
            }
        }
        let object = history.object();
        let errors_only = !rectify.is_empty();
        for (name, flow) in &self.flows {
            let erased = tidemark_push::erase::forget_in_flow(lake, name, flow, object, ids, errors_only).await?;
            out.insert(format!("push {name}"), erased.entries);
            out.insert(format!("push {name} errors"), erased.error_rows);
        }
        let restores = tidemark_push::erase::forget_in_restores(lake, object, ids, errors_only).await?;
        out.insert("restore errors".to_owned(), restores.error_rows);
        out.insert("restore id map".to_owned(), restores.entries);
        out.retain(|_, rows| *rows > 0);
        Ok(out)
    }
}

/// How a model source's rows are matched: (dimension column, the object's column) pairs — the
/// business key for the primary source, the `join` (default: the business key) for another.
fn join_columns(model: &ModelConfig, source: usize) -> Vec<(String, String)> {
    let join = &model.sources[source].join;
    if source == 0 || join.is_empty() {
        return model.key.iter().map(|k| (k.clone(), k.clone())).collect();
    }
    join.iter().map(|(primary, own)| (primary.clone(), own.clone())).collect()
}

/// The values `columns` take in every version of `history` whose `matching` columns hold one
/// of `wanted`.
async fn values_where(
    history: &HistoryTable,
    matching: &[String],
    wanted: &KeySet,
    columns: &[String],
) -> Result<KeySet, GovernError> {
    let schema = history.schema()?;
    if let Some(missing) = columns.iter().chain(matching).find(|c| schema.field_with_name(c).is_err()) {
        return Err(GovernError::Unsupported(format!("{} has no column {missing}", history.object())));
    }
    let mut read: Vec<&str> = columns.iter().map(String::as_str).collect();
    read.extend(matching.iter().map(String::as_str).filter(|c| !columns.iter().any(|k| k == c)));
    let names: Vec<&str> = columns.iter().map(String::as_str).collect();
    let by: Vec<&str> = matching.iter().map(String::as_str).collect();
    // Records picked by Id: the log's Id ranges rule most files out without reading them.
    let mut sorted: Vec<String> = Vec::new();
    if let [column] = by[..]
        && (column == ID || column == KEY)
    {
        sorted = wanted_ids(wanted);
        sorted.sort();
    }
    let mut keys = KeySet::default();
    let collect = |_: &scrub::ScrubFile, batch: &RecordBatch| {
        keys.extend_from(&filter_record_batch(batch, &wanted.matches(batch, &by)?)?, &names)?;
        Ok(false)
    };
    let skip = |f: &scrub::ScrubFile| !sorted.is_empty() && f.excludes(by[0], &sorted);
    scrub::scan_files(history.delta(), history.object(), Some(&read), skip, collect).await?;
    Ok(keys)
}

fn wanted_ids(wanted: &KeySet) -> Vec<String> {
    wanted.iter().filter_map(|k| k.first().cloned().flatten()).collect()
}
