//! Tables Tidemark keeps for itself under `<lake>/_tidemark/` that queries read as they are
//! stored: the push flows' run log, `push_runs` (`_tidemark/push_runs/`), and each flow's
//! rejected rows, `push_<flow>_errors` (`_tidemark/push/<flow>/errors/`); the restores' run
//! log, `restore_runs`, their Id map, `restore_id_map`, and each object's rejected rows,
//! `restore_<object>_errors` (`_tidemark/restore/<object>/errors/`); and the SQL endpoint's
//! `query_log` (`_tidemark/query_log/`).
//!
//! They are found by name when a query names them, not listed with the lake's relations: a
//! lake with many flows would otherwise list the `_tidemark/push/` folder on every session.
//! Only `push_runs`, one per lake, is looked for when the lake is listed.

use tidemark_lake::LakeLocation;

/// The SQL name of the push run log, and its folder under `_tidemark/`.
pub const PUSH_RUNS: &str = "push_runs";

/// The folder under `_tidemark/` of the internal table a lower-case SQL name refers to, if
/// any. Flow names are letters, digits and `_` (the config refuses others), so the flow is
/// whatever lies between `push_` and `_errors`.
pub fn internal_table(name: &str) -> Option<String> {
    if [PUSH_RUNS, "restore_runs", "restore_id_map", "query_log"].contains(&name) {
        return Some(name.to_owned());
    }
    let (folder, rest) = match name.strip_prefix("push_") {
        Some(rest) => ("push", rest),
        None => ("restore", name.strip_prefix("restore_")?),
    };
    let owner = rest.strip_suffix("_errors")?;
    let valid = !owner.is_empty() && owner.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    valid.then(|| format!("{folder}/{owner}/errors"))
}

/// Whether `_tidemark/<table>/` holds a Delta log: one listing request, no log read, so that
/// a name whose table was never written is "not found" rather than an unreadable table.
pub async fn exists(location: &LakeLocation, table: &str) -> tidemark_lake::error::Result<bool> {
    use futures::TryStreamExt;
    use tidemark_lake::deltalake::Path;

    let store = location.object_store()?;
    let mut entries = store.list(Some(&Path::from(format!("_tidemark/{table}/_delta_log"))));
    let first = entries.try_next().await.map_err(|e| tidemark_lake::LakeError::store(location.root().as_str(), e))?;
    Ok(first.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_names_map_to_their_folders() {
        assert_eq!(internal_table("push_runs").as_deref(), Some("push_runs"));
        assert_eq!(internal_table("push_tier_errors").as_deref(), Some("push/tier/errors"));
        assert_eq!(internal_table("push_account_tier_errors").as_deref(), Some("push/account_tier/errors"));
        assert_eq!(internal_table("push__errors"), None);
        assert_eq!(internal_table("push_errors"), None);
        assert_eq!(internal_table("push_a-b_errors"), None);
        assert_eq!(internal_table("account"), None);
        assert_eq!(internal_table("restore_runs").as_deref(), Some("restore_runs"));
        assert_eq!(internal_table("restore_id_map").as_deref(), Some("restore_id_map"));
        assert_eq!(internal_table("query_log").as_deref(), Some("query_log"));
        assert_eq!(internal_table("restore_invoice__c_errors").as_deref(), Some("restore/invoice__c/errors"));
        assert_eq!(internal_table("restore_errors"), None);
    }
}
