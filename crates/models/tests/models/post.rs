//! The Redshift post's own sample files reproduce its published `dim_customer`, in the
//! `redshift-post` compatibility mode and in the default mode.

use std::collections::BTreeMap;

use crate::common::{Row, Scenario, model, post_data};

const POST_MODEL: &str = r#"key: [customer_id]
columns: { effective: rec_eff_dt, expiry: rec_exp_dt }
compatibility: COMPAT
sources:
  - name: customer_master
    files: landing/customer_master
    types: { customer_id: bigint, row_audit_ts: timestamp }
    order_by: row_audit_ts
    columns: [first_name, last_name, employer_name]
  - name: customer_address
    files: landing/customer_address
    types: { customer_id: bigint, row_audit_ts: timestamp }
    order_by: row_audit_ts
    columns: [email_id, city, country]
"#;

fn published() -> Vec<Row> {
    let mut reader = csv::Reader::from_path(post_data().join("published_dim_customer_after_incremental.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    reader.records().map(|r| headers.iter().zip(r.unwrap().iter()).map(|(h, v)| (h.to_owned(), v.to_owned())).collect()).collect()
}

async fn reproduce(compat: &str) {
    let s = Scenario::new("dim_customer", model(&POST_MODEL.replace("COMPAT", compat)));
    let data = post_data();
    s.land_copy("landing/customer_master", "customer_master_with_ts.csv", &data.join("customer_master_with_ts.csv"));
    s.land_copy("landing/customer_address", "customer_address_with_ts.csv", &data.join("customer_address_with_ts.csv"));
    let initial = s.run("2022-07-01").await;
    assert_eq!((initial.counts.inserted, initial.files_read), (5, 2));
    let after_initial: BTreeMap<String, String> =
        s.dimension().await.into_iter().map(|r| (r["customer_id"].clone(), r["customer_sk"].clone())).collect();

    s.land_copy("landing/customer_master", "customer_master_with_ts_incr.csv", &data.join("customer_master_with_ts_incr.csv"));
    s.land_copy("landing/customer_address", "customer_address_with_ts_incr.csv", &data.join("customer_address_with_ts_incr.csv"));
    let incremental = s.run("2023-03-19").await;
    assert_eq!((incremental.counts.inserted, incremental.counts.updated, incremental.counts.deleted), (3, 2, 0));
    assert_eq!(incremental.files_read, 2, "the initial files are not read again");

    let ours = s.dimension().await;
    let mut theirs = published();
    theirs.sort_by_key(|r| (r["customer_id"].parse::<i64>().unwrap(), r["rec_eff_dt"].clone()));
    let columns =
        ["customer_id", "first_name", "last_name", "employer_name", "email_id", "city", "country", "rec_eff_dt", "rec_exp_dt"];
    let project =
        |rows: &[Row]| -> Vec<Vec<String>> { rows.iter().map(|r| columns.iter().map(|c| r[*c].clone()).collect()).collect() };
    assert_eq!(project(&ours), project(&theirs), "the same rows and dates as the published dimension");

    // Surrogate keys by the post's contract: unique (invariants), stable, growing per load.
    let initial_max = after_initial.values().map(|v| v.parse::<i64>().unwrap()).max().unwrap();
    for r in &ours {
        let sk: i64 = r["customer_sk"].parse().unwrap();
        if r["rec_eff_dt"] == "2022-07-01" {
            assert_eq!(after_initial[&r["customer_id"]], r["customer_sk"], "existing keys never change");
        } else {
            assert!(sk > initial_max, "new keys grow from one load to the next");
        }
    }

    let again = s.run("2023-03-19").await;
    assert_eq!((again.load, again.files_read), (None, 0), "a second run with no new input changes nothing");
    assert_eq!(s.dimension().await, ours);
}

#[tokio::test]
async fn the_post_files_reproduce_the_published_dimension_in_compatibility_mode() {
    reproduce("redshift-post").await;
}

#[tokio::test]
async fn the_default_mode_gives_the_same_dimension_on_the_post_files() {
    reproduce("default").await;
}
