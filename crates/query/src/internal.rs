//! Tables Tidemark keeps for itself under `<lake>/_tidemark/` that queries read as they are
//! stored: the push flows' run log, `push_runs` (`_tidemark/push_runs/`), and each flow's
//! rejected rows, `push_<flow>_errors` (`_tidemark/push/<flow>/errors/`).
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
    if name == PUSH_RUNS {
        return Some(PUSH_RUNS.to_owned());
    }
    let flow = name.strip_prefix("push_")?.strip_suffix("_errors")?;
    let valid = !flow.is_empty() && flow.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    valid.then(|| format!("push/{flow}/errors"))
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
    }
}
