//! Load-date models over landed files: the cases the post's data does not cover. Every load
//! is followed by the invariant checks of `crate::common::check_invariants`.

use crate::common::{Row, Scenario, model};

/// A two-source model (people + addresses), change-only with a status column.
const MODEL: &str = r#"key: [id]
columns: { effective: eff, expiry: exp }
type1: [note]
sources:
  - name: people
    files: people
    types: { id: bigint, ts: timestamp }
    order_by: ts
    status_column: op
    columns: [first, last, note]
  - name: address
    files: address
    types: { id: bigint, ts: timestamp }
    order_by: ts
    status_column: op
    columns: [city]
"#;

const PEOPLE: &str = "id,first,last,note,ts,op\n";
const ADDRESS: &str = "id,city,ts,op\n";

fn scenario(yaml: &str) -> Scenario {
    Scenario::new("dim_person", model(yaml))
}

fn rows_of<'a>(rows: &'a [Row], id: &str) -> Vec<&'a Row> {
    rows.iter().filter(|r| r["id"] == id).collect()
}

fn project(rows: &[&Row], columns: &[&str]) -> Vec<Vec<String>> {
    rows.iter().map(|r| columns.iter().map(|c| r[*c].clone()).collect()).collect()
}

#[tokio::test]
async fn several_versions_of_a_key_in_one_file_out_of_order_keep_the_latest() {
    let s = scenario(MODEL);
    s.land(
        "people",
        "1.csv",
        &format!(
            "{PEOPLE}1,Ann,Lee,,2024-01-03 00:00:00,U\n1,Ann,Old,,2024-01-01 00:00:00,I\n1,Ann,Mid,,2024-01-02 00:00:00,U\n"
        ),
    );
    s.land("address", "1.csv", &format!("{ADDRESS}1,Oslo,2024-01-01 00:00:00,I\n"));
    let m = s.run("2024-02-01").await;
    assert_eq!(m.counts.inserted, 1);
    let rows = s.dimension().await;
    assert_eq!(
        project(&rows_of(&rows, "1"), &["last", "city", "eff", "exp", "is_current"]),
        [["Lee", "Oslo", "2024-02-01", "9999-12-31", "true"]]
    );
}

#[tokio::test]
async fn a_stale_row_in_a_later_file_is_ignored_and_counted() {
    let s = scenario(MODEL);
    s.land("people", "1.csv", &format!("{PEOPLE}1,Ann,Lee,,2024-01-05 00:00:00,I\n"));
    s.run("2024-02-01").await;
    s.land("people", "2.csv", &format!("{PEOPLE}1,Ann,Stale,,2024-01-04 00:00:00,U\n"));
    let m = s.run("2024-02-02").await;
    assert_eq!((m.counts.stale_rows, m.counts.updated, m.files_read), (1, 0, 1));
    assert_eq!(project(&rows_of(&s.dimension().await, "1"), &["last"]), [["Lee"]]);
}

#[tokio::test]
async fn deletes_in_the_primary_and_in_a_secondary_source() {
    let s = scenario(MODEL);
    s.land("people", "1.csv", &format!("{PEOPLE}1,Ann,Lee,,2024-01-01 00:00:00,I\n2,Bo,Ek,,2024-01-01 00:00:00,I\n"));
    s.land("address", "1.csv", &format!("{ADDRESS}1,Oslo,2024-01-01 00:00:00,I\n2,Rome,2024-01-01 00:00:00,I\n"));
    s.run("2024-02-01").await;
    s.land("people", "2.csv", &format!("{PEOPLE}1,Ann,Lee,,2024-01-10 00:00:00,D\n"));
    s.land("address", "2.csv", &format!("{ADDRESS}2,Rome,2024-01-10 00:00:00,D\n"));
    let m = s.run("2024-02-10").await;
    assert_eq!((m.counts.deleted, m.counts.updated), (1, 1));
    let rows = s.dimension().await;
    assert_eq!(
        project(&rows_of(&rows, "1"), &["eff", "exp", "is_current"]),
        [["2024-02-01", "2024-02-09", "false"]],
        "a primary delete expires the key"
    );
    assert_eq!(
        project(&rows_of(&rows, "2"), &["city", "eff", "exp", "is_current"]),
        [["Rome", "2024-02-01", "2024-02-09", "false"], ["NULL", "2024-02-10", "9999-12-31", "true"]],
        "a secondary delete makes its attributes NULL"
    );
}

#[tokio::test]
async fn a_deleted_key_that_reappears_gets_a_new_row_and_key_with_its_secondary_attributes() {
    let s = scenario(MODEL);
    s.land("people", "1.csv", &format!("{PEOPLE}1,Ann,Lee,,2024-01-01 00:00:00,I\n"));
    s.land("address", "1.csv", &format!("{ADDRESS}1,Oslo,2024-01-01 00:00:00,I\n"));
    s.run("2024-02-01").await;
    s.land("people", "2.csv", &format!("{PEOPLE}1,Ann,Lee,,2024-01-10 00:00:00,D\n"));
    s.run("2024-02-10").await;
    s.land("people", "3.csv", &format!("{PEOPLE}1,Ann,Lee,,2024-01-20 00:00:00,I\n"));
    let m = s.run("2024-02-20").await;
    assert_eq!(m.counts.inserted, 1);
    let rows = s.dimension().await;
    let ann = rows_of(&rows, "1");
    assert_eq!(
        project(&ann, &["city", "eff", "exp", "is_current"]),
        [["Oslo", "2024-02-01", "2024-02-09", "false"], ["Oslo", "2024-02-20", "9999-12-31", "true"]]
    );
    assert_ne!(ann[0]["person_sk"], ann[1]["person_sk"]);
}

#[tokio::test]
async fn a_secondary_row_waits_for_its_primary_row() {
    let s = scenario(MODEL);
    s.land("people", "1.csv", PEOPLE);
    s.land("address", "1.csv", &format!("{ADDRESS}7,Lima,2024-01-01 00:00:00,I\n"));
    s.run("2024-02-01").await;
    assert!(s.dimension().await.is_empty(), "the primary source decides whether a key exists");
    s.land("people", "2.csv", &format!("{PEOPLE}7,Eve,Ng,,2024-01-02 00:00:00,I\n"));
    s.run("2024-02-02").await;
    assert_eq!(project(&rows_of(&s.dimension().await, "7"), &["first", "city"]), [["Eve", "Lima"]]);
}

#[tokio::test]
async fn type1_columns_are_overwritten_on_the_current_row() {
    let s = scenario(MODEL);
    s.land("people", "1.csv", &format!("{PEOPLE}1,Ann,Lee,vip,2024-01-01 00:00:00,I\n"));
    s.run("2024-02-01").await;
    s.land("people", "2.csv", &format!("{PEOPLE}1,Ann,Lee,churned,2024-01-02 00:00:00,U\n"));
    let m = s.run("2024-02-02").await;
    assert_eq!((m.counts.type1_updated, m.counts.updated), (1, 0));
    assert_eq!(project(&rows_of(&s.dimension().await, "1"), &["note", "eff"]), [["churned", "2024-02-01"]]);
}

const TRAP: &str = r#"key: [id]
compatibility: COMPAT
sources:
  - name: names
    files: names
    types: { id: bigint, ts: timestamp }
    order_by: ts
    columns: [a, b]
"#;

async fn trap(compat: &str) -> Vec<Vec<String>> {
    let s = Scenario::new("dim_name", model(&TRAP.replace("COMPAT", compat)));
    // ANNA+BELLE, then ANNABELLE+NULL; "" then NULL.
    s.land("names", "1.csv", "id,a,b,ts\n1,ANNA,BELLE,2024-01-01 00:00:00\n2,\"\",x,2024-01-01 00:00:00\n");
    s.run("2024-02-01").await;
    s.land("names", "2.csv", "id,a,b,ts\n1,ANNABELLE,,2024-01-02 00:00:00\n2,,x,2024-01-02 00:00:00\n");
    s.run("2024-02-02").await;
    let rows = s.dimension().await;
    project(&rows.iter().collect::<Vec<_>>(), &["id", "a", "b", "valid_from"])
}

#[tokio::test]
async fn the_concatenation_trap_and_null_versus_empty_make_new_rows_by_default() {
    let rows = trap("default").await;
    assert_eq!(
        rows,
        [
            ["1", "ANNA", "BELLE", "2024-02-01"],
            ["1", "ANNABELLE", "NULL", "2024-02-02"],
            ["2", "", "x", "2024-02-01"],
            ["2", "NULL", "x", "2024-02-02"],
        ]
    );
}

#[tokio::test]
async fn the_redshift_post_mode_keeps_the_posts_blind_spots() {
    // As documented: the post's hash sees no change, so no new row (its type-1 like overwrite
    // does not happen either: the row keeps the first values).
    let rows = trap("redshift-post").await;
    assert_eq!(rows, [["1", "ANNA", "BELLE", "2024-02-01"], ["2", "", "x", "2024-02-01"]]);
}

#[tokio::test]
async fn a_re_delivered_file_changes_nothing() {
    let s = scenario(MODEL);
    let people = format!("{PEOPLE}1,Ann,Lee,,2024-01-01 00:00:00,I\n");
    s.land("people", "1.csv", &people);
    s.run("2024-02-01").await;
    let before = s.dimension().await;
    s.land("people", "1-again.csv", &people);
    let m = s.run("2024-02-02").await;
    assert_eq!((m.files_read, m.counts.stale_rows, m.counts.updated, m.counts.inserted), (1, 1, 0, 0));
    assert_eq!(s.dimension().await, before);
}

#[tokio::test]
async fn a_same_date_re_run_replaces_the_days_row_and_never_expires_a_row_before_it_starts() {
    let s = scenario(MODEL);
    s.land("people", "1.csv", &format!("{PEOPLE}1,Ann,Lee,,2024-01-01 00:00:00,I\n2,Bo,Ek,,2024-01-01 00:00:00,I\n"));
    s.run("2024-02-01").await;
    s.land("people", "2.csv", &format!("{PEOPLE}1,Ann,Lim,,2024-01-02 00:00:00,U\n2,Bo,Ox,,2024-01-02 00:00:00,U\n"));
    s.run("2024-02-05").await;
    let first = s.dimension().await;
    s.land("people", "3.csv", &format!("{PEOPLE}1,Ann,Lam,,2024-01-03 00:00:00,U\n2,Bo,Ox,,2024-01-03 00:00:00,D\n"));
    let m = s.run("2024-02-05").await;
    assert_eq!(m.counts.same_day_replaced, 2);
    let rows = s.dimension().await;
    let ann = rows_of(&rows, "1");
    assert_eq!(
        project(&ann, &["last", "eff", "exp"]),
        [["Lee", "2024-02-01", "2024-02-04"], ["Lam", "2024-02-05", "9999-12-31"]]
    );
    assert_eq!(ann[1]["person_sk"], rows_of(&first, "1")[1]["person_sk"], "replaced in place, same surrogate key");
    assert_eq!(
        project(&rows_of(&rows, "2"), &["last", "eff", "exp", "is_current"]),
        [["Ek", "2024-02-01", "2024-02-04", "false"]]
    );
}

#[tokio::test]
async fn a_full_extract_deletes_keys_missing_from_the_newest_file() {
    let full = r#"key: [id]
sources:
  - name: accounts
    files: accounts
    extract: full
    types: { id: bigint, ts: timestamp }
    order_by: ts
    columns: [name]
"#;
    let s = Scenario::new("dim_account", model(full));
    s.land(
        "accounts",
        "2024-01-01.csv",
        "id,name,ts\n1,A,2024-01-01 00:00:00\n2,B,2024-01-01 00:00:00\n3,C,2024-01-01 00:00:00\n",
    );
    s.run("2024-01-01").await;
    // Two extracts landed before the next load: only the newest counts.
    s.land("accounts", "2024-01-02.csv", "id,name,ts\n1,A,2024-01-01 00:00:00\n");
    s.land("accounts", "2024-01-03.csv", "id,name,ts\n1,A,2024-01-01 00:00:00\n3,C,2024-01-01 00:00:00\n");
    let m = s.run("2024-01-03").await;
    assert_eq!((m.files_read, m.files_superseded, m.counts.deleted), (1, 1, 1));
    let rows = s.dimension().await;
    let current: Vec<&str> = rows.iter().filter(|r| r["is_current"] == "true").map(|r| r["id"].as_str()).collect();
    assert_eq!(current, ["1", "3"]);
    // Key 2 comes back in a later extract, with its old row.
    s.land(
        "accounts",
        "2024-01-04.csv",
        "id,name,ts\n1,A,2024-01-01 00:00:00\n2,B,2024-01-01 00:00:00\n3,C,2024-01-01 00:00:00\n",
    );
    let m = s.run("2024-01-04").await;
    assert_eq!(m.counts.inserted, 1);
}

#[tokio::test]
async fn non_ascii_commas_and_quotes_survive() {
    let s = scenario(MODEL);
    s.land("people", "1.csv", &format!("{PEOPLE}1,\"Zoë, \"\"Z\"\"\",東京,,2024-01-01 00:00:00,I\n"));
    s.land("address", "1.csv", &format!("{ADDRESS}1,\"São Paulo\r\nSP\",2024-01-01 00:00:00,I\n"));
    s.run("2024-02-01").await;
    assert_eq!(
        project(&rows_of(&s.dimension().await, "1"), &["first", "last", "city"]),
        [["Zoë, \"Z\"", "東京", "São Paulo\r\nSP"]]
    );
}

#[tokio::test]
async fn a_tie_is_an_error_naming_the_key_and_nothing_is_written() {
    let s = scenario(MODEL);
    s.land("people", "1.csv", &format!("{PEOPLE}41,Ann,Lee,,2024-01-01 00:00:00,I\n41,Ann,Lim,,2024-01-01 00:00:00,I\n"));
    let err = s.load("2024-02-01").run().await.unwrap_err().to_string();
    assert!(err.contains("key 41") && err.contains("same ts"), "{err}");
    assert!(!err.contains("Lee") && !err.contains("Lim"), "no record value in errors: {err}");
    assert!(s.dimension().await.is_empty());
}

#[tokio::test]
async fn a_run_date_before_the_last_load_is_refused() {
    let s = scenario(MODEL);
    s.land("people", "1.csv", &format!("{PEOPLE}1,Ann,Lee,,2024-01-01 00:00:00,I\n"));
    s.run("2024-02-01").await;
    s.land("people", "2.csv", &format!("{PEOPLE}1,Ann,Lim,,2024-01-02 00:00:00,U\n"));
    let err = s.load("2024-01-15").run().await.unwrap_err().to_string();
    assert!(err.contains("2024-01-15") && err.contains("2024-02-01"), "{err}");
}

#[tokio::test]
async fn bad_input_names_the_file_line_and_column() {
    let s = scenario(MODEL);
    s.land("people", "1.csv", &format!("{PEOPLE}1,Ann,Lee,,yesterday,I\n"));
    let err = s.load("2024-02-01").run().await.unwrap_err().to_string();
    assert!(err.contains("1.csv") && err.contains("line 2") && err.contains("ts"), "{err}");
    assert!(!err.contains("yesterday"), "{err}");
}

#[tokio::test]
async fn a_dimension_in_many_files_loads_like_one_in_a_single_file() {
    let build = |target: u64| async move {
        let s = scenario(MODEL);
        let mut people = String::from(PEOPLE);
        let mut address = String::from(ADDRESS);
        for k in 1..=3000 {
            people.push_str(&format!("{k},First{k},Last{},,2024-01-01 00:00:00,I\n", k % 7));
            address.push_str(&format!("{k},City{},2024-01-01 00:00:00,I\n", k % 11));
        }
        s.land("people", "1.csv", &people);
        s.land("address", "1.csv", &address);
        s.load("2024-02-01").with_target_file_size(target).run().await.unwrap();
        let mut changes = String::from(PEOPLE);
        for k in (1..=3300).step_by(10) {
            changes.push_str(&format!("{k},First{k},Changed,,2024-01-02 00:00:00,U\n"));
        }
        s.land("people", "2.csv", &changes);
        let m = s.load("2024-02-02").with_target_file_size(target).run().await.unwrap();
        assert_eq!((m.counts.updated, m.counts.inserted), (300, 30));
        let files = std::fs::read_dir(s.dir.path().join("lake/marts/dim_person/is_current=true")).unwrap().count();
        (s.dimension().await, files)
    };
    let (one, one_files) = build(1 << 30).await;
    let (many, many_files) = build(4 * 1024).await;
    assert_eq!(one_files, 2, "one current file per load (the older one awaits vacuum)");
    assert!(many_files > 6, "small files: {many_files}");
    assert_eq!(many, one);
}
