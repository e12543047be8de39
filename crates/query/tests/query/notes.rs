//! What a session tells about a result that the result cannot show (`QuerySession::notes`), and
//! the errors of lake time and unreadable tables: an as-of instant before an object's first
//! version, a live state whose initial sync never completed, a table version some tables do
//! not have, a corrupt commit file.

use chrono::{DateTime, Utc};
use tidemark_lake::arrow::array::AsArray;
use tidemark_lake::arrow::datatypes::Int64Type;
use tidemark_lake::{Ledger, RunStatus};
use tidemark_query::notes::{Note, Severity};
use tidemark_query::{QuerySession, ReadOptions, TableVersion};

use crate::common::Harness;

async fn notes(session: &QuerySession, sql: &str) -> (i64, Vec<Note>) {
    let frame = session.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let notes = session.notes(&frame).await.expect("notes");
    let batches = frame.collect().await.expect("runs");
    (batches.first().map_or(0, |b| b.column(0).as_primitive::<Int64Type>().value(0)), notes)
}

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("an instant").with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instant_before_the_first_version_is_noted() {
    let mut h = Harness::start(20, 43).await;
    h.sync().await;
    let options = ReadOptions { as_of: Some(instant("2000-01-01T00:00:00Z")), ..ReadOptions::default() };
    let session = QuerySession::open(h.lake.clone(), options).await.expect("session opens");
    let (count, said) = notes(&session, "SELECT count(*) FROM contact").await;
    assert_eq!(count, 0);
    let [note] = said.as_slice() else { panic!("one note: {said:?}") };
    assert_eq!(note.severity, Severity::Note);
    assert!(note.text.starts_with("2000-01-01T00:00:00Z is before the first version of contact ("), "{note}");
    assert!(note.text.ends_with("); no record existed yet in the lake"), "{note}");
    // History is not as of anything; as_of() is, with its own instant.
    assert!(notes(&session, "SELECT count(*) FROM contact_history").await.1.is_empty());
    let (_, said) = notes(&session, "SELECT count(*) FROM as_of('account', TIMESTAMP '1999-12-31T00:00:00Z')").await;
    assert!(said.iter().any(|n| n.text.starts_with("1999-12-31T00:00:00Z is before the first version of account")), "{said:?}");

    let now =
        QuerySession::open(h.lake.clone(), ReadOptions { as_of: Some(Utc::now()), ..ReadOptions::default() }).await.unwrap();
    let (count, said) = notes(&now, "SELECT count(*) FROM contact").await;
    assert!(count > 0 && said.is_empty(), "{count} records, {said:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_state_without_a_complete_initial_sync_is_warned_about_once() {
    let mut h = Harness::start(20, 44).await;
    h.sync().await;
    // The ledger as an interrupted first sync of Account leaves it: no complete run for it.
    let ledger = Ledger::new(h.lake.clone());
    let runs = ledger.runs().await.expect("the ledger");
    assert!(runs.iter().any(|r| r.object == "Account"), "{runs:?}");
    std::fs::remove_dir_all(h.lake.root().to_file_path().unwrap().join("_tidemark/sync_runs")).expect("removes the ledger");
    for mut run in runs {
        if run.object == "Account" {
            run.status = RunStatus::Incomplete;
            run.bookmark = None;
        }
        ledger.record_run(&run).await.expect("records");
    }

    let session = QuerySession::open(h.lake.clone(), ReadOptions::default()).await.expect("session opens");
    let (records, said) = notes(&session, "SELECT count(*) FROM account").await;
    let [warning] = said.as_slice() else { panic!("one warning: {said:?}") };
    assert_eq!(warning.severity, Severity::Warning);
    assert_eq!(
        warning.text,
        format!(
            "account's initial sync has not completed (the lake's ledger has no complete run for it): the live state \
             holds only the {records} records read so far"
        )
    );
    assert!(notes(&session, "SELECT count(*) FROM account WHERE id IS NOT NULL").await.1.is_empty(), "warned once per session");
    assert!(notes(&session, "SELECT count(*) FROM contact").await.1.is_empty(), "contact's sync completed");
    assert!(notes(&session, "SELECT count(*) FROM account_history").await.1.is_empty(), "history is what was read, no less");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_version_names_every_table_it_does_not_apply_to() {
    let mut h = Harness::start(20, 45).await;
    h.sync().await;
    // A second sync of Account alone: its table has a commit the others have not.
    h.change(serde_json::json!({"objects": ["Account"], "updates": 5}), 1);
    let report = h.sync_builder().with_objects(vec!["Account".into()]).await.expect("sync runs");
    assert_eq!(report.status(), RunStatus::Complete, "{report:#?}");
    let versions = |table: &str| {
        let log = h.lake.root().to_file_path().unwrap().join("objects").join(table).join("_delta_log");
        std::fs::read_dir(log).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json")).count()
            as u64
    };
    let (last_account, last_contact) = (versions("account") - 1, versions("contact") - 1);
    assert!(last_account > last_contact, "account has commits contact has not: {last_account} vs {last_contact}");
    let pinned = ReadOptions { table_version: Some(TableVersion::Version(last_account)), ..ReadOptions::default() };
    let session = QuerySession::open(h.lake.clone(), pinned).await.expect("session opens");
    let (count, _) = notes(&session, "SELECT count(*) FROM account").await;
    assert!(count > 0, "account has that version");

    let one = session.sql("SELECT count(*) FROM contact").await.expect_err("contact has no such version").to_string();
    assert!(
        one.starts_with(&format!("table 'contact' has no version {last_account}: its last version is {last_contact}; ")),
        "{one}"
    );
    let sql = "SELECT count(*) FROM account a JOIN contact c ON c.accountid = a.id JOIN opportunity_scd2 o ON o.accountid = a.id";
    let many = session.sql(sql).await.expect_err("two tables lack it").to_string();
    assert!(many.starts_with("tables contact (its last version is "), "{many}");
    assert!(
        many.contains("), opportunity (its last version is ") && many.contains(&format!(") have no version {last_account}")),
        "{many}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_commit_names_the_table_and_where_it_is() {
    let mut h = Harness::start(20, 46).await;
    h.sync().await;
    let table = h.lake.root().to_file_path().unwrap().join("objects").join("contact");
    std::fs::write(table.join("_delta_log/00000000000000000001.json"), "{not json").expect("corrupts the commit");
    let session = QuerySession::open(h.lake.clone(), ReadOptions::default()).await.expect("session opens");
    let error = session.sql("SELECT count(*) FROM contact").await.expect_err("the log is corrupt").to_string();
    let location = table.display().to_string();
    assert!(error.starts_with(&format!("cannot read table 'contact' at {location}")), "{error}");
    assert!(!error.contains("\n"), "one line, no backtrace: {error}");
    assert!(session.sql("SELECT count(*) FROM account").await.is_ok(), "the other tables still answer");
}
