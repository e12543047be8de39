//! The source-time dimension as one SQL query over the sources' version histories.
//!
//! The same query runs in DataFusion for `tidemark model run` (where sorts, windows and
//! sort-merge joins spill to disk, so memory stays bounded) and is printed for other engines
//! by `tidemark model sql`; a [`Spelling`] supplies what differs between them.
//!
//! Its steps, as common table expressions (the semantics are the module doc of
//! [`crate::timeline`]):
//! 1. `p_versions`, `s<j>_versions`: each source's versions, the last one of an instant kept
//!    (by ingestion, a delete after an update ingested with it).
//! 2. `p`, `s<j>`: each version with the instant its successor starts (its end).
//! 3. `instants`: per key, each primary version's instant and, while that version is live, each
//!    instant a joined secondary record changes, carrying the primary version in force.
//! 4. `states`: each instant with the joined secondary versions in force (their attributes
//!    NULL while deleted) and the change hash.
//! 5. `marked`, `grouped`: an instant starts a row when the key comes to exist or its hash
//!    changes; consecutive instants of one row share a group number.
//! 6. `ranges`: one row per group, valid until the next group starts (a delete ends it).
//! 7. The output: rows of existing keys, each keeping the surrogate key of the previous
//!    dimension's row with the same key and start, new ones numbered above the largest ever
//!    issued in (key, start) order.

use tidemark_core::models::{ModelConfig, SourceConfig};

use crate::mart::{LOAD_ID, Layout};

/// What differs between the engines the query is written for.
pub trait Spelling {
    /// A quoted identifier.
    fn ident(&self, name: &str) -> String;
    /// The relation holding the versions of source `index` (0 the primary).
    fn history(&self, source: &SourceConfig, index: usize) -> String;
    /// A column of a history relation, quoted (a catalog may have renamed it).
    fn source_column(&self, name: &str) -> String;
    /// The change hash of the tracked attributes, given as the names they have in `states`.
    fn change_hash(&self, tracked: &[String]) -> String;
    /// The open end of a current row, a timestamp literal of the version times' type.
    fn open_end(&self) -> String;
    /// The dimension as the previous load left it, if there is one.
    fn previous(&self) -> Option<String>;
    /// A scalar expression for the largest surrogate key issued so far (0 when none).
    fn issued_surrogate_keys(&self) -> String;
    /// The load number written to `_load_id` for new rows, when the bookkeeping is written.
    fn load_id(&self) -> Option<i64>;
    /// `CAST(NULL AS BIGINT)` in the engine's spelling.
    fn null_bigint(&self) -> String {
        "CAST(NULL AS BIGINT)".into()
    }
}

/// The name of the output column telling whether a row kept a previous row's surrogate key.
pub const KEPT: &str = "_kept";

/// A secondary source's join: (primary column, its column); default the key on both sides.
pub fn join_of(model: &ModelConfig, source: &SourceConfig) -> (String, String) {
    match source.join.iter().next() {
        Some((p, s)) => (p.clone(), s.clone()),
        None => (model.key[0].clone(), model.key[0].clone()),
    }
}

/// The query. Its columns are the dimension's in [`Layout::dimension_schema`] order (the
/// bookkeeping columns `_load_id` and `_<source>_at` only when [`Spelling::load_id`] is
/// given), then [`KEPT`].
pub fn dimension_query(model: &ModelConfig, layout: &Layout, s: &dyn Spelling) -> String {
    let q = |n: &str| s.ident(n);
    let list = |names: &[String], prefix: &str| names.iter().map(|n| format!("{prefix}{}", q(n))).collect::<Vec<_>>();
    let key = &model.key;
    let keys = |prefix: &str| list(key, prefix).join(", ");
    let primary = &model.sources[0];
    let secondaries: Vec<&SourceConfig> = model.sources[1..].iter().collect();
    let joins: Vec<String> = secondaries.iter().map(|src| join_of(model, src).0).collect();
    let book = s.load_id().is_some();
    let at = |j: usize| format!("t{j}");
    let mut ctes: Vec<(String, String)> = Vec::new();

    // 1–2. Versions, the last of each instant, with their ends.
    let mut primary_columns: Vec<String> = key.clone();
    for c in joins.iter().chain(&primary.columns) {
        if !primary_columns.contains(c) {
            primary_columns.push(c.clone());
        }
    }
    ctes.push(("p_versions".into(), versions(s, primary, 0, &primary_columns, key)));
    ctes.push(("p".into(), ends(s, &primary_columns, key, 0)));
    for (j, src) in secondaries.iter().enumerate() {
        let target = join_of(model, src).1;
        let mut columns = vec![target.clone()];
        columns.extend(src.columns.iter().filter(|c| **c != target).cloned());
        let name = format!("s{}", j + 1);
        ctes.push((format!("{name}_versions"), versions(s, src, j + 1, &columns, std::slice::from_ref(&target))));
        ctes.push((name, ends(s, &columns, std::slice::from_ref(&target), j + 1)));
    }

    // 3. Instants, each carrying the primary version in force.
    let p_columns = |prefix: &str| {
        let mut c = list(&primary_columns, prefix);
        c.extend([format!("{prefix}t0"), format!("{prefix}d0")]);
        c.join(", ")
    };
    let mut instants = vec![format!("SELECT {}, t0 AS t FROM p", p_columns(""))];
    for (j, _) in secondaries.iter().enumerate() {
        let (sj, tj) = (format!("s{}", j + 1), at(j + 1));
        let target = q(&join_of(model, secondaries[j]).1);
        instants.push(format!(
            "SELECT {}, {sj}.{tj} AS t FROM p JOIN {sj} ON {sj}.{target} = p.{}\n  \
             AND {sj}.{tj} > p.t0 AND (p.e0 IS NULL OR {sj}.{tj} < p.e0)\n  WHERE NOT p.d0",
            p_columns("p."),
            q(&joins[j])
        ));
    }
    ctes.push(("instants".into(), instants.join("\n  UNION ALL\n  ")));

    // 4. States at the instants.
    let mut select = vec![keys("i."), "i.t".into(), "NOT i.d0 AS present".into()];
    select.extend(primary.columns.iter().map(|c| format!("i.{}", q(c))));
    let mut from = "instants i".to_owned();
    for (j, src) in secondaries.iter().enumerate() {
        let (sj, tj) = (format!("s{}", j + 1), at(j + 1));
        let live = format!("NOT i.d0 AND NOT {sj}.d{}", j + 1);
        select.extend(src.columns.iter().map(|c| format!("CASE WHEN {live} THEN {sj}.{} END AS {}", q(c), q(c))));
        select.push(format!("CASE WHEN {live} THEN {sj}.{tj} END AS {}", q(&layout.source_at[j + 1])));
        from.push_str(&format!(
            "\n  LEFT JOIN {sj} ON {sj}.{} = i.{}\n    AND {sj}.{tj} <= i.t AND ({sj}.e{} IS NULL OR i.t < {sj}.e{})",
            q(&join_of(model, src).1),
            q(&joins[j]),
            j + 1,
            j + 1
        ));
    }
    select.push(format!("CASE WHEN NOT i.d0 THEN i.t0 END AS {}", q(&layout.source_at[0])));
    ctes.push(("joined".into(), format!("SELECT {}\n  FROM {from}", select.join(",\n    "))));
    let tracked = model.tracked_columns();
    ctes.push(("states".into(), format!("SELECT joined.*, {} AS h FROM joined", s.change_hash(&tracked))));

    // 5. Row starts and groups.
    let by_key = format!("PARTITION BY {} ORDER BY t", keys(""));
    let previous = |c: &str| format!("LAG({c}) OVER ({by_key})");
    ctes.push((
        "marked".into(),
        format!(
            "SELECT states.*, CASE WHEN {} IS NULL OR {} <> present OR (present AND {} <> h) THEN 1 ELSE 0 END AS starts\n  FROM states",
            previous("present"),
            previous("present"),
            previous("h")
        ),
    ));
    let running = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW";
    ctes.push(("grouped".into(), format!("SELECT marked.*, SUM(starts) OVER ({by_key} {running}) AS grp FROM marked")));
    // Type-1 attributes take the value at the row's last instant: the first one backwards.
    let type1: Vec<String> = layout.type1.clone();
    let lasts: Vec<String> = type1
        .iter()
        .map(|c| {
            format!("FIRST_VALUE({}) OVER (PARTITION BY {}, grp ORDER BY t DESC {running}) AS {}", q(c), keys(""), q(&last(c)))
        })
        .collect();
    let ended_from = if lasts.is_empty() {
        "grouped".to_owned()
    } else {
        ctes.push(("ended".into(), format!("SELECT grouped.*, {} FROM grouped", lasts.join(", "))));
        "ended".to_owned()
    };

    // 6. One row per group.
    let mut range = vec![keys("")];
    range.extend(layout.attributes.iter().map(|c| if type1.contains(c) { format!("{} AS {}", q(&last(c)), q(c)) } else { q(c) }));
    range.extend(["t AS valid_from".into(), format!("LEAD(t) OVER ({by_key}) AS ends"), "present".into(), "h".into()]);
    range.extend(layout.source_at.iter().map(|c| q(c)));
    ctes.push(("ranges".into(), format!("SELECT {}\n  FROM {ended_from} WHERE starts = 1", range.join(", "))));

    // 7. Surrogate keys kept from the previous dimension, new ones issued in order.
    let on_key: Vec<String> = key.iter().map(|k| format!("o.{} = r.{}", q(k), q(k))).collect();
    let (old_sk, old_load, previous_join) = match s.previous() {
        Some(relation) => (
            format!("o.{}", q(&layout.surrogate_key)),
            format!("o.{}", q(LOAD_ID)),
            format!("\n  LEFT JOIN {relation} o ON {} AND o.{} = r.valid_from", on_key.join(" AND "), q(&layout.effective)),
        ),
        None => (s.null_bigint(), s.null_bigint(), String::new()),
    };
    ctes.push((
        "matched".into(),
        format!(
            "SELECT r.*, {old_sk} AS old_sk{} FROM ranges r{previous_join}\n  WHERE r.present",
            if book { format!(", {old_load} AS old_load") } else { String::new() }
        ),
    ));
    let mut out = vec![format!(
        "COALESCE(m.old_sk, {} + SUM(CASE WHEN m.old_sk IS NULL THEN 1 ELSE 0 END) OVER (ORDER BY {}, m.valid_from {running})) AS {}",
        s.issued_surrogate_keys(),
        keys("m."),
        q(&layout.surrogate_key)
    )];
    out.push(keys("m."));
    out.extend(layout.attributes.iter().map(|c| format!("m.{}", q(c))));
    out.push(format!("m.valid_from AS {}", q(&layout.effective)));
    out.push(format!("COALESCE(m.ends, {}) AS {}", s.open_end(), q(&layout.expiry)));
    out.push(format!("m.ends IS NULL AS {}", q(&layout.current)));
    out.push(format!("m.h AS {}", q(&layout.hash)));
    if let Some(load) = s.load_id() {
        out.push(format!("COALESCE(m.old_load, {load}) AS {}", q(LOAD_ID)));
        out.extend(layout.source_at.iter().map(|c| format!("m.{}", q(c))));
    }
    out.push(format!("m.old_sk IS NOT NULL AS {}", q(KEPT)));

    let with: Vec<String> = ctes.into_iter().map(|(name, body)| format!("{name} AS (\n  {body}\n)")).collect();
    format!("WITH\n{}\nSELECT {}\nFROM matched m", with.join(",\n"), out.join(",\n  "))
}

/// The name of a type-1 attribute's value at the end of its row.
fn last(column: &str) -> String {
    format!("{column}__last")
}

/// A source's versions, one per instant (the one ingested last; a delete after an update
/// ingested with it), as `columns`, `t<index>` and `d<index>`.
fn versions(s: &dyn Spelling, source: &SourceConfig, index: usize, columns: &[String], key: &[String]) -> String {
    let c = |n: &str| s.source_column(n);
    let mut select: Vec<String> = columns.iter().map(|n| format!("{} AS {}", c(n), s.ident(n))).collect();
    select.push(format!("{} AS t{index}", c("_version_at")));
    select.push(format!("{} AS d{index}", c("_deleted")));
    let partition: Vec<String> = key.iter().map(|k| c(k)).chain([c("_version_at")]).collect();
    select.push(format!(
        "ROW_NUMBER() OVER (PARTITION BY {} ORDER BY {} DESC, {} DESC) AS rn",
        partition.join(", "),
        c("_ingested_at"),
        c("_deleted")
    ));
    format!("SELECT {}\n  FROM {}", select.join(", "), s.history(source, index))
}

/// Versions with the instant the next one of their key starts (`e<index>`, NULL for the last).
fn ends(s: &dyn Spelling, columns: &[String], key: &[String], index: usize) -> String {
    let names: Vec<String> = columns.iter().map(|n| s.ident(n)).collect();
    let partition: Vec<String> = key.iter().map(|k| s.ident(k)).collect();
    // The instant and flag as nullable columns (a CASE without ELSE): DataFusion's sort-merge
    // left join otherwise fills a secondary's missing match with NULLs in non-null columns.
    format!(
        "SELECT {}, CASE WHEN rn = 1 THEN t{index} END AS t{index}, CASE WHEN rn = 1 THEN d{index} END AS d{index}, \
         LEAD(t{index}) OVER (PARTITION BY {} ORDER BY t{index}) AS e{index}\n  \
         FROM {} WHERE rn = 1",
        names.join(", "),
        partition.join(", "),
        if index == 0 { "p_versions".to_owned() } else { format!("s{index}_versions") }
    )
}
