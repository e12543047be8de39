//! The statements of one load, in order, each built from the plan and spelled by the dialect:
//! the dimension table, each source's latest rows, the snapshot, the checks, the changes, and
//! the statements applying them.
//!
//! The changes carry one action per key:
//! - `I` a new key (a row with a new surrogate key);
//! - `U` a tracked change (the current row expires, a new row starts);
//! - `D` deleted in the primary source (the current row expires);
//! - `R` a tracked change to a row that started on the run date (replaced in place);
//! - `X` a delete of a row that started on the run date (removed);
//! - `T` only untracked (type-1) attributes changed (overwritten on the current row).

use chrono::NaiveDate;
use tidemark_core::models::SourceConfig;
use tidemark_lake::columns::ID;

use super::read::{self, SourceRead};
use super::{Apply, Column, Engine, Plan, ordering};

const DELETED: &str = "_tidemark_deleted";
const STATUS: &str = "_tidemark_status";
const RANK: &str = "_tidemark_rank";
/// Distinct rows of a key with the latest ordering value: more than one is a tie.
const ROWS: &str = "_tidemark_rows";
const TARGET_SK: &str = "_tidemark_target_sk";
const STARTED: &str = "_tidemark_started";
const GONE: &str = "_tidemark_gone";
const HASH: &str = "_tidemark_hash";
const OLD_HASH: &str = "_tidemark_old_hash";
const TYPE1: &str = "_tidemark_type1_changed";
const ACTION: &str = "_tidemark_action";
const NEW_SK: &str = "_tidemark_new_sk";
const TOP: &str = "_tidemark_top";
const MATCH: &str = "_tidemark_match";

fn open_end() -> NaiveDate {
    NaiveDate::from_ymd_opt(9999, 12, 31).expect("valid date")
}

pub(super) fn statements(p: &Plan<'_>) -> Vec<String> {
    let mut out = Vec::new();
    match p.engine() {
        Engine::DuckDb => {
            out.push("-- Naive timestamps in the files are UTC, as Tidemark reads them.\nSET TimeZone = 'UTC';\n".into())
        }
        Engine::Spark => out
            .push("-- Spark reads and prints timestamps in the session zone; Tidemark's are UTC.\nSET TIME ZONE 'UTC';\n".into()),
        Engine::Redshift | Engine::Trino => {}
    }
    out.push(create_table(p));
    let reads: Vec<(&SourceConfig, SourceRead)> = p.model.sources.iter().map(|s| (s, read::read(p, s))).collect();
    for (s, r) in &reads {
        out.extend(r.setup.clone());
        let comment = match &s.object {
            Some(object) => format!("-- {}: {object}'s live records, the latest per business key by {}.\n", s.name, ordering(s)),
            None => format!("-- {}: the latest row per business key by {}.\n", s.name, ordering(s)),
        };
        out.push(comment + &p.d.relation(&latest(p, s), &latest_query(p, s, r), false));
    }
    out.push(format!(
        "-- The snapshot: the primary source's live keys, the other sources left-joined on the key.\n{}",
        p.d.relation(&p.relation("snapshot"), &snapshot_query(p), false)
    ));
    for (s, r) in &reads {
        // A lake object keyed on its record Id has a key on every version: nothing to check.
        if s.object.is_none() || p.model.key != [ID] {
            out.push(row_check(p, s, r));
        }
        out.push(tie_check(p, s));
    }
    out.push(run_date_check(p));
    let staged = p.apply == Apply::Staged;
    out.push(format!(
        "-- The changes: the snapshot against the current rows, one action per key ({}).\n{}",
        if staged { "a table: its rows must not move while the dimension changes" } else { "the MERGE's source" },
        p.d.relation(&p.relation("changes"), &changes_query(p), staged)
    ));
    out.push(if staged { apply_staged(p) } else { apply_merge(p) });
    out
}

fn latest(p: &Plan<'_>, s: &SourceConfig) -> String {
    p.relation(&format!("{}_latest", s.name))
}

fn idents(p: &Plan<'_>, columns: &[Column], qualifier: &str) -> Vec<String> {
    columns.iter().map(|c| format!("{qualifier}{}", p.d.ident(&c.name))).collect()
}

fn key_idents(p: &Plan<'_>, qualifier: &str) -> Vec<String> {
    idents(p, &p.key, qualifier)
}

fn create_table(p: &Plan<'_>) -> String {
    let d = p.d;
    let mut columns = vec![format!("{} BIGINT", d.ident(&p.surrogate_key))];
    columns.extend(p.key.iter().chain(&p.attributes).map(|c| format!("{} {}", d.ident(&c.name), d.sql_type(c.ty))));
    columns.push(format!("{} DATE", d.ident(&p.effective)));
    columns.push(format!("{} DATE", d.ident(&p.expiry)));
    columns.push(format!("{} BOOLEAN", d.ident(&p.current)));
    columns.push(format!("{} {}", d.ident(&p.hash), d.hash_type()));
    let tail = super::table_options(d, p.name, p.options, &p.current);
    format!(
        "-- The dimension, created by the first load.\nCREATE TABLE IF NOT EXISTS {} (\n  {}\n){tail};\n",
        p.target(),
        columns.join(",\n  ")
    )
}

/// `text` with every line but the first indented by `by` spaces, to nest it in a query.
fn indent(text: &str, by: usize) -> String {
    text.replace('\n', &format!("\n{}", " ".repeat(by)))
}

/// Every row of the source, typed, with its delete flag and status.
fn rows_query(p: &Plan<'_>, r: &SourceRead) -> String {
    let d = p.d;
    let mut columns = r.columns.clone();
    match &r.status {
        Some(status) => {
            let normalized = format!("upper(trim(CAST({status} AS {})))", d.text_type());
            columns.push(format!("COALESCE({normalized} = 'D', false) AS {}", d.ident(DELETED)));
            columns.push(format!("{normalized} AS {}", d.ident(STATUS)));
        }
        None => columns.push(format!("false AS {}", d.ident(DELETED))),
    }
    let mut out = format!("SELECT\n  {}\nFROM {}", columns.join(",\n  "), r.from);
    if !r.conditions.is_empty() {
        out.push_str(&format!("\nWHERE {}", r.conditions.join("\n  AND ")));
    }
    out
}

/// Identical rows count once (DISTINCT); the rest of a key's rows with its latest ordering
/// value are counted so that the tie check can stop the run.
fn latest_query(p: &Plan<'_>, s: &SourceConfig, r: &SourceRead) -> String {
    let d = p.d;
    let keys = key_idents(p, "").join(", ");
    let order = d.ident(ordering(s));
    let mut content = vec![keys.clone()];
    if !p.model.key.iter().any(|k| k == ordering(s)) {
        content.push(order.clone());
    }
    content.extend(s.columns.iter().map(|c| d.ident(c)));
    content.push(d.ident(DELETED));
    let content = content.join(", ");
    format!(
        "SELECT {content}, {rows}\nFROM (\n  SELECT l.*,\n    rank() OVER (PARTITION BY {keys} ORDER BY {order} DESC NULLS LAST) AS {rank},\n    \
         count(*) OVER (PARTITION BY {keys}, {order}) AS {rows}\n  FROM (\n    SELECT DISTINCT {content}\n    FROM (\n      {}\n    ) r\n  ) l\n) l\n\
         WHERE {rank} = 1",
        indent(&rows_query(p, r), 6),
        rows = d.ident(ROWS),
        rank = d.ident(RANK),
    )
}

fn snapshot_query(p: &Plan<'_>) -> String {
    let d = p.d;
    let mut columns = key_idents(p, "src0.");
    let mut from = String::new();
    for (i, s) in p.model.sources.iter().enumerate() {
        let alias = format!("src{i}");
        columns.extend(s.columns.iter().map(|c| format!("{alias}.{}", d.ident(c))));
        let live = format!("(SELECT * FROM {} WHERE NOT {})", latest(p, s), d.ident(DELETED));
        if i == 0 {
            from = format!("FROM {live} {alias}");
        } else {
            let on: Vec<String> = key_idents(p, "").iter().map(|k| format!("src0.{k} = {alias}.{k}")).collect();
            from.push_str(&format!("\nLEFT JOIN {live} {alias} ON {}", on.join(" AND ")));
        }
    }
    format!("SELECT\n  {}\n{from}", columns.join(",\n  "))
}

/// A string expression of the key's values, for messages (business keys are identifiers).
fn key_text(p: &Plan<'_>) -> String {
    p.key.iter().map(|c| format!("CAST({} AS {})", p.d.ident(&c.name), p.d.text_type())).collect::<Vec<_>>().join(" || ', ' || ")
}

/// One way a check fails: its column name, the condition, and the message.
struct Failure {
    name: &'static str,
    condition: String,
    /// The message as a string expression (it may name the offending key).
    message: String,
    /// What the message says, for Redshift's comment.
    plain: String,
}

/// A check statement: a `-- why` line, then a query that fails when a condition holds.
fn check(p: &Plan<'_>, why: &str, failures: &[Failure], from: &str) -> String {
    let d = p.d;
    let mut out = format!("-- {why}\n");
    if p.engine() == Engine::Redshift {
        out.push_str("-- Redshift cannot raise an error from a query: a division by zero here stops the script. It means:\n");
        for f in failures {
            out.push_str(&format!("--   {}\n", f.plain));
        }
    }
    let select: Vec<String> =
        failures.iter().map(|f| format!("{} AS {}", d.fail_when(&f.condition, &f.message), d.ident(f.name))).collect();
    out.push_str(&format!("SELECT\n  {}\nFROM {from};\n", select.join(",\n  ")));
    out
}

/// A failure whose message is a literal.
fn failure(p: &Plan<'_>, name: &'static str, condition: String, message: String) -> Failure {
    Failure { name, condition, message: p.d.string(&message), plain: message }
}

fn row_check(p: &Plan<'_>, s: &SourceConfig, r: &SourceRead) -> String {
    let d = p.d;
    let at = format!("model {}, source {}: ", p.name, s.name);
    let null_key = key_idents(p, "").iter().map(|k| format!("{k} IS NULL")).collect::<Vec<_>>().join(" OR ");
    let mut failures = vec![failure(
        p,
        "_tidemark_no_key",
        format!("count(CASE WHEN {null_key} THEN 1 END) > 0"),
        format!("{at}a row has no value in a key column ({})", p.model.key.join(", ")),
    )];
    // A lake version always has its _version_at.
    if s.object.is_none() {
        failures.push(failure(
            p,
            "_tidemark_no_order",
            format!("count(CASE WHEN {} IS NULL THEN 1 END) > 0", d.ident(ordering(s))),
            format!("{at}a row has no value in {}, which orders a key's rows", ordering(s)),
        ));
    }
    if let Some(status) = &s.status_column {
        let st = d.ident(STATUS);
        failures.push(failure(
            p,
            "_tidemark_bad_status",
            format!("count(CASE WHEN {st} IS NULL OR {st} NOT IN ('I', 'U', 'D') THEN 1 END) > 0"),
            format!("{at}{status} must be I, U or D on every row"),
        ));
    }
    let why = match (&s.object, &s.status_column) {
        (Some(_), _) => format!("{}: stop on a live record without a key value.", s.name),
        (None, Some(_)) => {
            format!("{}: stop on a row without a key or ordering value, or a status other than I, U or D.", s.name)
        }
        (None, None) => format!("{}: stop on a row without a key or ordering value.", s.name),
    };
    // A lake object's NULL keys survive its reduction to the latest row per key: read them there
    // rather than ranking the history a second time.
    let from = match s.object {
        Some(_) => latest(p, s),
        None => format!("(\n  {}\n) r", indent(&rows_query(p, r), 2)),
    };
    check(p, &why, &failures, &from)
}

fn tie_check(p: &Plan<'_>, s: &SourceConfig) -> String {
    let d = p.d;
    let (before, after) = (
        format!("model {}, source {}: two different rows of key ", p.name, s.name),
        format!(" have the same {}; which is latest cannot be decided (fix the source data, then run again)", ordering(s)),
    );
    let tie = Failure {
        name: "_tidemark_tie",
        condition: "count(*) > 0".into(),
        message: format!("{} || min({}) || {}", d.string(&before), key_text(p), d.string(&after)),
        plain: format!("{before}<key>{after}"),
    };
    let from = format!("{} WHERE {} > 1", latest(p, s), d.ident(ROWS));
    check(p, &format!("{}: stop on a tie (two different latest rows of a key).", s.name), &[tie], &from)
}

fn run_date_check(p: &Plan<'_>) -> String {
    let d = p.d;
    let run = d.date(p.run_date);
    let message = format!("model {}: run date {} is before the last load's date; loads move forward in time", p.name, p.run_date);
    let from = format!(
        "{} WHERE {eff} > {run} OR ({exp} < {} AND {exp} >= {run})",
        p.target(),
        d.date(open_end()),
        eff = d.ident(&p.effective),
        exp = d.ident(&p.expiry),
    );
    let why = "Stop on a run date before the last load's (a row starts after it, or ended on or after it).";
    check(p, why, &[failure(p, "_tidemark_run_date", "count(*) > 0".into(), message)], &from)
}

/// The changes, one row per key that changes, with its action and, for `I` and `U`, its new
/// surrogate key. Both sides are hashed here: comparing against the current row's rehashed
/// attributes rather than its stored hash keeps a table written by Tidemark or another
/// engine (DuckDB spells the redshift-post hash differently) from versioning every row.
fn changes_query(p: &Plan<'_>) -> String {
    let d = p.d;
    let run = d.date(p.run_date);
    let hashed = |q: &str| -> String {
        let values: Vec<(String, _)> = p.tracked.iter().map(|c| (format!("{q}{}", d.ident(&c.name)), c.ty)).collect();
        d.change_hash(&values, p.model.compatibility)
    };
    let mut columns: Vec<String> = key_idents(p, "").iter().map(|k| format!("COALESCE(s.{k}, c.{k}) AS {k}")).collect();
    columns.extend(idents(p, &p.attributes, "s."));
    columns.push(format!("c.{} AS {}", d.ident(&p.surrogate_key), d.ident(TARGET_SK)));
    columns.push(format!("c.{} AS {}", d.ident(&p.effective), d.ident(STARTED)));
    let first_key = d.ident(&p.key[0].name);
    columns.push(format!("s.{first_key} IS NULL AS {}", d.ident(GONE)));
    columns.push(format!("{} AS {}", hashed("s."), d.ident(HASH)));
    columns.push(format!("{} AS {}", hashed("c."), d.ident(OLD_HASH)));
    // NULL-safe inequality spelled so every engine has it (Redshift lacks IS DISTINCT FROM).
    let type1: Vec<String> = p
        .type1
        .iter()
        .map(|c| {
            let (s, c) = (format!("s.{}", d.ident(&c.name)), format!("c.{}", d.ident(&c.name)));
            format!("({s} <> {c} OR ({s} IS NULL) <> ({c} IS NULL))")
        })
        .collect();
    let type1 = if type1.is_empty() { "false".to_owned() } else { format!("COALESCE({}, false)", type1.join("\n      OR ")) };
    columns.push(format!("{type1} AS {}", d.ident(TYPE1)));
    let on: Vec<String> = key_idents(p, "").iter().map(|k| format!("s.{k} = c.{k}")).collect();
    let (target_sk, started, action) = (d.ident(TARGET_SK), d.ident(STARTED), d.ident(ACTION));
    let classify = format!(
        "CASE\n      WHEN {target_sk} IS NULL THEN 'I'\n      WHEN {gone} THEN CASE WHEN {started} = {run} THEN 'X' ELSE 'D' END\n      \
         WHEN {hash} <> {old} THEN CASE WHEN {started} = {run} THEN 'R' ELSE 'U' END\n      WHEN {type1} THEN 'T'\n    END",
        gone = d.ident(GONE),
        hash = d.ident(HASH),
        old = d.ident(OLD_HASH),
        type1 = d.ident(TYPE1),
    );
    let new_row = format!("x.{action} IN ('I', 'U')");
    let by_key = key_idents(p, "x.").join(", ");
    format!(
        "SELECT x.*,\n  CASE WHEN {new_row} THEN m.{top} + row_number() OVER (ORDER BY CASE WHEN {new_row} THEN 0 ELSE 1 END, {by_key}) END AS {}\n\
         FROM (\n  SELECT y.*,\n    {classify} AS {action}\n  FROM (\n    SELECT\n      {}\n    FROM {} s\n    \
         FULL OUTER JOIN (SELECT * FROM {} WHERE {}) c ON {}\n  ) y\n) x\n\
         CROSS JOIN (SELECT COALESCE(MAX({}), 0) AS {top} FROM {}) m\nWHERE x.{action} IS NOT NULL",
        d.ident(NEW_SK),
        columns.join(",\n      "),
        p.relation("snapshot"),
        p.target(),
        d.ident(&p.current),
        on.join(" AND "),
        d.ident(&p.surrogate_key),
        p.target(),
        top = d.ident(TOP),
    )
}

/// `SET` assignments of `columns` from the changes row `c`.
fn assignments(p: &Plan<'_>, columns: &[Column], hash: bool) -> String {
    let d = p.d;
    let mut out: Vec<String> = columns.iter().map(|c| format!("{n} = c.{n}", n = d.ident(&c.name))).collect();
    if hash {
        out.push(format!("{} = c.{}", d.ident(&p.hash), d.ident(HASH)));
    }
    out.join(", ")
}

fn expire_assignments(p: &Plan<'_>) -> String {
    let day_before = p.run_date.pred_opt().expect("run date after the first day");
    format!("{} = {}, {} = false", p.d.ident(&p.expiry), p.d.date(day_before), p.d.ident(&p.current))
}

/// The inserted row's columns and values, from the changes row `c`.
fn insert_lists(p: &Plan<'_>) -> (String, String) {
    let d = p.d;
    let mut names = vec![d.ident(&p.surrogate_key)];
    let mut values = vec![format!("c.{}", d.ident(NEW_SK))];
    for c in p.key.iter().chain(&p.attributes) {
        names.push(d.ident(&c.name));
        values.push(format!("c.{}", d.ident(&c.name)));
    }
    names.extend([&p.effective, &p.expiry, &p.current, &p.hash].map(|n| d.ident(n)));
    values.extend([d.date(p.run_date), d.date(open_end()), "true".into(), format!("c.{}", d.ident(HASH))]);
    (names.join(", "), values.join(", "))
}

/// One MERGE: each change matched to its current row by surrogate key, and the rows to insert
/// (new keys, new versions) once more with no match, so that `U` both expires and inserts.
fn apply_merge(p: &Plan<'_>) -> String {
    let d = p.d;
    let changes = p.relation("changes");
    let (action, m) = (format!("c.{}", d.ident(ACTION)), d.ident(MATCH));
    let mut whens = vec![
        format!("WHEN MATCHED AND {action} IN ('U', 'D') THEN UPDATE SET {}", expire_assignments(p)),
        format!("WHEN MATCHED AND {action} = 'R' THEN UPDATE SET {}", assignments(p, &p.attributes, true)),
    ];
    if !p.type1.is_empty() {
        whens.push(format!("WHEN MATCHED AND {action} = 'T' THEN UPDATE SET {}", assignments(p, &p.type1, false)));
    }
    whens.push(format!("WHEN MATCHED AND {action} = 'X' THEN DELETE"));
    let (names, values) = insert_lists(p);
    whens.push(format!("WHEN NOT MATCHED THEN INSERT ({names})\n  VALUES ({values})"));
    format!(
        "-- Apply the changes in one statement{}.\nMERGE INTO {} t\nUSING (\n  \
         SELECT c.{target} AS {m}, c.* FROM {changes} c WHERE {action} <> 'I'\n  UNION ALL\n  \
         SELECT CAST(NULL AS BIGINT) AS {m}, c.* FROM {changes} c WHERE {action} IN ('I', 'U')\n) c\nON t.{} = c.{m}\n{};\n",
        if p.engine() == Engine::DuckDb { "" } else { " (one Delta commit)" },
        p.target(),
        d.ident(&p.surrogate_key),
        whens.join("\n"),
        target = d.ident(TARGET_SK),
    )
}

/// The post's shape: UPDATE, DELETE and INSERT from the changes table, in one transaction.
fn apply_staged(p: &Plan<'_>) -> String {
    let d = p.d;
    let (target, changes) = (p.target(), p.relation("changes"));
    let matched = format!("{target}.{} = c.{}", d.ident(&p.surrogate_key), d.ident(TARGET_SK));
    let action = format!("c.{}", d.ident(ACTION));
    let update = |set: String, actions: &str| {
        format!("UPDATE {target} SET {set}\nFROM {changes} c WHERE {matched} AND {action} {actions};\n")
    };
    let mut out = String::from("-- Apply the changes in one transaction.\nBEGIN TRANSACTION;\n");
    out.push_str("-- Changed and deleted keys: the current row ends the day before the run date.\n");
    out.push_str(&update(expire_assignments(p), "IN ('U', 'D')"));
    out.push_str("-- Rows that started on the run date: the day's last state replaces them in place.\n");
    out.push_str(&update(assignments(p, &p.attributes, true), "= 'R'"));
    if !p.type1.is_empty() {
        out.push_str("-- Type-1 changes: overwritten on the current row.\n");
        out.push_str(&update(assignments(p, &p.type1, false), "= 'T'"));
    }
    out.push_str("-- Deleted keys whose row started on the run date: the row goes (the key lived less than a day).\n");
    out.push_str(&format!("DELETE FROM {target} USING {changes} c WHERE {matched} AND {action} = 'X';\n"));
    let (names, values) = insert_lists(p);
    out.push_str("-- New keys and new versions.\n");
    out.push_str(&format!("INSERT INTO {target} ({names})\nSELECT {values}\nFROM {changes} c WHERE {action} IN ('I', 'U');\n"));
    out.push_str("COMMIT;\n");
    out
}
