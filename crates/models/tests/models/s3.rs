//! Landed files and the lake on S3 (a local moto server): the post's files under `s3://`
//! prefixes load into a dimension on S3 exactly as from local folders, and nothing is written
//! locally.

use crate::sync_common::moto::Moto;
use chrono::NaiveDate;
use tidemark_lake::LakeLocation;
use tidemark_models::ModelLoad;

const MODEL: &str = r#"key: [customer_id]
columns: { effective: rec_eff_dt, expiry: rec_exp_dt }
sources:
  - name: customer_master
    files: s3://tidemark-test/landing/customer_master/
    types: { customer_id: bigint, row_audit_ts: timestamp }
    order_by: row_audit_ts
    columns: [first_name, last_name, employer_name]
  - name: customer_address
    files: s3://tidemark-test/landing/customer_address/
    types: { customer_id: bigint, row_audit_ts: timestamp }
    order_by: row_audit_ts
    columns: [email_id, city, country]
"#;

async fn put(lake: &LakeLocation, key: &str, file: &str) {
    use tidemark_lake::deltalake::logstore::object_store::ObjectStoreExt as _;
    let bytes = std::fs::read(format!("{}/../../../shared/scd2-post/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    lake.object_store().unwrap().put(&tidemark_lake::deltalake::Path::from(key), bytes.into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_post_files_on_s3_load_into_a_dimension_on_s3() {
    let moto = Moto::start(&crate::sync_common::python());
    assert_eq!(moto.request("PUT", "/tidemark-test").unwrap().0, 200, "bucket created");
    let bucket = LakeLocation::parse("s3://tidemark-test").unwrap().with_storage_options(moto.storage_options());
    let lake = LakeLocation::parse("s3://tidemark-test/lake").unwrap().with_storage_options(moto.storage_options());
    let models: std::collections::BTreeMap<String, tidemark_core::models::ModelConfig> = tidemark_core::config::load_str(
        &format!("dim_customer:\n{}", MODEL.lines().map(|l| format!("  {l}\n")).collect::<String>()),
        &|_| None,
    )
    .unwrap();
    let model = models["dim_customer"].clone();
    model.validate("dim_customer").unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let run = |date: &str| {
        ModelLoad::new(lake.clone(), "dim_customer", model.clone())
            .with_base_dir(scratch.path().to_path_buf())
            .with_run_date(NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap())
            .run()
    };
    put(&bucket, "landing/customer_master/customer_master_with_ts.csv", "customer_master_with_ts.csv").await;
    put(&bucket, "landing/customer_address/customer_address_with_ts.csv", "customer_address_with_ts.csv").await;
    let first = run("2022-07-01").await.unwrap();
    assert_eq!((first.files_read, first.counts.inserted), (2, 5));
    put(&bucket, "landing/customer_master/customer_master_with_ts_incr.csv", "customer_master_with_ts_incr.csv").await;
    put(&bucket, "landing/customer_address/customer_address_with_ts_incr.csv", "customer_address_with_ts_incr.csv").await;
    let second = run("2023-03-19").await.unwrap();
    assert_eq!((second.files_read, second.counts.inserted, second.counts.updated), (2, 3, 2));
    assert_eq!(run("2023-03-19").await.unwrap().load, None, "nothing new");
    let (status, listing) = moto.request("GET", "/tidemark-test?list-type=2&prefix=lake/marts/dim_customer/_delta_log/").unwrap();
    assert_eq!(status, 200);
    assert!(listing.contains("00000000000000000002.json"), "the dimension's commits are on S3: {listing}");
    assert!(scratch.path().read_dir().unwrap().next().is_none(), "nothing was written locally");
    let status = tidemark_models::model_status(&lake, "dim_customer", &model, scratch.path()).await.unwrap();
    assert_eq!((status.loads, status.rows, status.current_rows), (2, Some(10), Some(8)));
}
