//! The statements' shapes per engine for the post's model; DuckDB runs them in
//! `tests/models/engine_sql_duckdb.rs`.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use tidemark_core::models::{ColumnType, Compatibility, Dating, ModelConfig};
use tidemark_lake::arrow::datatypes::SchemaRef;

use super::*;

/// The post's model (crates/core's models.rs documents the same).
fn post() -> ModelConfig {
    serde_json::from_value(serde_json::json!({
        "key": ["customer_id"],
        "columns": {"effective": "rec_eff_dt", "expiry": "rec_exp_dt"},
        "sources": [
            {"name": "customer_master", "files": "s3://landing/customer_master/",
             "types": {"customer_id": "bigint", "row_audit_ts": "timestamp"}, "order_by": "row_audit_ts",
             "columns": ["first_name", "last_name", "employer_name"]},
            {"name": "customer_address", "files": "s3://landing/customer_address/",
             "types": {"customer_id": "bigint", "row_audit_ts": "timestamp"}, "order_by": "row_audit_ts",
             "columns": ["email_id", "city", "country"]}
        ]
    }))
    .expect("the post's model parses")
}

fn run_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 3, 19).unwrap()
}

fn sql(engine: Engine) -> String {
    load_statements("dim_customer", &post(), engine, run_date()).unwrap()
}

/// Statements (text between `;` line ends), comments dropped.
fn statements(sql: &str) -> Vec<String> {
    let code: String = sql.lines().filter(|l| !l.trim_start().starts_with("--")).map(|l| format!("{l}\n")).collect();
    code.split(";\n").map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

#[test]
fn engine_names_parse_ignoring_case() {
    for engine in Engine::ALL {
        assert_eq!(engine.name().parse::<Engine>().unwrap(), engine);
        assert_eq!(engine.name().to_uppercase().parse::<Engine>().unwrap(), engine);
    }
    let err = "athena".parse::<Engine>().unwrap_err().to_string();
    assert!(err.contains("unknown engine 'athena'") && err.contains("duckdb, redshift, spark, trino"), "{err}");
}

#[test]
fn duckdb_reads_the_files_and_merges() {
    let out = sql(Engine::DuckDb);
    assert!(out.starts_with("-- Tidemark model dim_customer: one load dated 2023-03-19, as DuckDB statements\n"), "{out}");
    assert!(out.contains("SET TimeZone = 'UTC';"), "{out}");
    assert!(out.contains("CREATE TABLE IF NOT EXISTS \"dim_customer\" (\n  \"customer_sk\" BIGINT,\n  \"customer_id\" BIGINT,\n  \"first_name\" VARCHAR,"), "{out}");
    assert!(
        out.contains("\"rec_eff_dt\" DATE,\n  \"rec_exp_dt\" DATE,\n  \"is_current\" BOOLEAN,\n  \"change_hash\" VARCHAR\n);"),
        "{out}"
    );
    assert!(
        out.contains("FROM read_csv('s3://landing/customer_master/**/*.[ct][sx][vt]', header = true, all_varchar = true,"),
        "{out}"
    );
    assert!(out.contains("nullstr = [''], allow_quoted_nulls = false"), "{out}");
    assert!(out.contains("CAST(CAST(\"row_audit_ts\" AS TIMESTAMPTZ) AS TIMESTAMP) AS \"row_audit_ts\""), "{out}");
    assert!(out.contains("CREATE OR REPLACE TEMP VIEW \"dim_customer__customer_master_latest\" AS"), "{out}");
    assert!(out.contains("CREATE OR REPLACE TEMP VIEW \"dim_customer__snapshot\" AS"), "{out}");
    assert!(out.contains("error('model dim_customer, source customer_address: two different rows of key ' || min(CAST(\"customer_id\" AS VARCHAR))"), "{out}");
    assert!(out.contains("sha256(CASE WHEN s.\"first_name\" IS NULL THEN 'N' ELSE 'V' || CAST(strlen(s.\"first_name\") AS VARCHAR) || ':' || s.\"first_name\" END"), "{out}");
    assert!(out.contains("MERGE INTO \"dim_customer\" t\nUSING ("), "{out}");
    assert!(out.contains("WHEN MATCHED AND c.\"_tidemark_action\" IN ('U', 'D') THEN UPDATE SET \"rec_exp_dt\" = DATE '2023-03-18', \"is_current\" = false"), "{out}");
    assert!(out.contains("WHEN MATCHED AND c.\"_tidemark_action\" = 'X' THEN DELETE"), "{out}");
    assert!(out.contains("DATE '2023-03-19', DATE '9999-12-31', true, c.\"_tidemark_hash\")"), "{out}");
    assert!(!out.contains("'T' THEN"), "every attribute is tracked: no type-1 clause\n{out}");
    assert!(!out.contains("_load_id") || out.contains("are not written"), "{out}");
    assert!(statements(&out).iter().all(|s| !s.is_empty()));
}

#[test]
fn duckdb_staged_uses_a_temp_table_and_a_transaction() {
    let options = SqlOptions { apply: Some(Apply::Staged), ..SqlOptions::default() };
    let out = load_statements_with("dim_customer", &post(), Engine::DuckDb, run_date(), &options).unwrap();
    assert!(out.contains("CREATE OR REPLACE TEMP TABLE \"dim_customer__changes\" AS"), "{out}");
    assert!(out.contains("BEGIN TRANSACTION;\n"), "{out}");
    assert!(out.contains("DELETE FROM \"dim_customer\" USING \"dim_customer__changes\" c WHERE \"dim_customer\".\"customer_sk\" = c.\"_tidemark_target_sk\" AND c.\"_tidemark_action\" = 'X';"), "{out}");
    assert!(out.trim_end().ends_with("COMMIT;"), "{out}");
    assert!(!out.contains("MERGE"), "{out}");
}

#[test]
fn redshift_has_the_posts_shape() {
    let out = sql(Engine::Redshift);
    assert!(out.contains("one external table per source, tidemark_landing.<source>"), "{out}");
    assert!(out.contains("FROM \"tidemark_landing\".\"customer_master\""), "{out}");
    assert!(
        out.contains("DROP TABLE IF EXISTS \"dim_customer__changes\";\nCREATE TEMP TABLE \"dim_customer__changes\" AS"),
        "{out}"
    );
    assert!(out.contains("\"first_name\" VARCHAR(65535)"), "{out}");
    assert!(out.contains("\"change_hash\" VARCHAR(128)"), "{out}");
    assert!(
        out.contains(
            "sha2(CASE WHEN s.\"first_name\" IS NULL THEN 'N' ELSE 'V' || CAST(octet_length(s.\"first_name\") AS VARCHAR)"
        ),
        "{out}"
    );
    assert!(out.contains("UPDATE \"dim_customer\" SET \"rec_exp_dt\" = DATE '2023-03-18', \"is_current\" = false\nFROM \"dim_customer__changes\" c"), "{out}");
    assert!(out.contains("INSERT INTO \"dim_customer\" (\"customer_sk\", \"customer_id\", \"first_name\""), "{out}");
    // No function raises an error: checks divide by zero, and say so.
    assert!(out.contains("1 / CASE WHEN count(*) > 0 THEN 0 ELSE 1 END AS \"_tidemark_tie\""), "{out}");
    assert!(out.contains("-- Redshift cannot raise an error from a query"), "{out}");
    assert!(!out.contains("error(") && !out.contains("MERGE"), "{out}");
    let post_mode = ModelConfig { compatibility: Compatibility::RedshiftPost, ..post() };
    let out = load_statements("dim_customer", &post_mode, Engine::Redshift, run_date()).unwrap();
    assert!(out.contains("sha2(COALESCE(s.\"first_name\", '')\n      || COALESCE(s.\"last_name\", '')"), "{out}");
    assert!(out.contains(", 512)"), "{out}");
}

#[test]
fn spark_merges_into_the_delta_table_with_backquotes() {
    let options = SqlOptions { lake: Some("s3://acme/lake/".into()), ..SqlOptions::default() };
    let out = load_statements_with("dim_customer", &post(), Engine::Spark, run_date(), &options).unwrap();
    assert!(out.contains("SET TIME ZONE 'UTC';"), "{out}");
    assert!(
        out.contains("CREATE TABLE IF NOT EXISTS delta.`s3://acme/lake/marts/dim_customer` (\n  `customer_sk` BIGINT,"),
        "{out}"
    );
    assert!(out.contains("`first_name` STRING"), "{out}");
    assert!(out.contains("USING DELTA\nPARTITIONED BY (`is_current`);"), "{out}");
    assert!(out.contains("CREATE OR REPLACE TEMPORARY VIEW `dim_customer__customer_master_files`\nUSING csv\nOPTIONS (\n  path 's3://landing/customer_master',"), "{out}");
    assert!(out.contains("emptyValue '<tidemark:quoted-empty>'"), "{out}");
    assert!(out.contains("raise_error('model dim_customer, source customer_master: two different rows of key '"), "{out}");
    assert!(out.contains("sha2(CASE WHEN s.`first_name` IS NULL THEN 'N'"), "{out}");
    assert!(out.contains("MERGE INTO delta.`s3://acme/lake/marts/dim_customer` t"), "{out}");
    assert!(out.contains("WHEN NOT MATCHED THEN INSERT (`customer_sk`, `customer_id`"), "{out}");
    assert!(!out.contains("\"customer_id\"") && !out.contains("\"dim_customer"), "Spark quotes names with backquotes\n{out}");
    let out = sql(Engine::Spark);
    assert!(out.contains("MERGE INTO `dim_customer` t"), "without a lake, a table name\n{out}");
    let staged = SqlOptions { apply: Some(Apply::Staged), ..SqlOptions::default() };
    assert!(load_statements_with("dim_customer", &post(), Engine::Spark, run_date(), &staged).is_err());
}

#[test]
fn trino_merges_with_its_own_functions() {
    let options =
        SqlOptions { lake: Some("s3://acme/lake".into()), source_schema: Some("hive.landing".into()), ..SqlOptions::default() };
    let out = load_statements_with("dim_customer", &post(), Engine::Trino, run_date(), &options).unwrap();
    assert!(
        out.contains("WITH (location = 's3://acme/lake/marts/dim_customer', partitioned_by = ARRAY['is_current']);"),
        "{out}"
    );
    assert!(out.contains("FROM \"hive\".\"landing\".\"customer_master\""), "{out}");
    assert!(out.contains("CREATE OR REPLACE VIEW \"dim_customer__snapshot\" AS"), "{out}");
    assert!(out.contains("lower(to_hex(sha256(to_utf8(CASE WHEN s.\"first_name\" IS NULL THEN 'N' ELSE 'V' || CAST(length(to_utf8(s.\"first_name\")) AS VARCHAR)"), "{out}");
    assert!(out.contains("CAST(CAST(s.\"row_audit_ts\"") || !out.contains("row_audit_ts\" AS TIMESTAMP(6)"), "{out}");
    assert!(
        out.contains(
            "fail('model dim_customer: run date 2023-03-19 is before the last load''s date; loads move forward in time')"
        ),
        "{out}"
    );
    assert!(out.contains("MERGE INTO \"dim_customer\" t"), "{out}");
    assert!(out.contains("\"row_audit_ts\" TIMESTAMP(6)") || !out.contains("TIMESTAMP(6)"), "{out}");
}

#[test]
fn source_time_models_and_bad_options_are_refused_clearly() {
    let mut model = post();
    model.dating = Dating::SourceTime;
    let err = load_statements("dim_customer", &model, Engine::DuckDb, run_date()).unwrap_err().to_string();
    assert_eq!(
        err,
        "model dim_customer: dating: source_time models are rebuilt from the lake's history relations: see source_time_statements"
    );
    let err = load_statements("dim_customer", &ModelConfig { key: vec![], ..post() }, Engine::Spark, run_date()).unwrap_err();
    assert!(err.to_string().contains("models.dim_customer.key"), "config errors name the field: {err}");
    let merge = SqlOptions { apply: Some(Apply::Merge), ..SqlOptions::default() };
    let err = load_statements_with("dim_customer", &post(), Engine::Redshift, run_date(), &merge).unwrap_err().to_string();
    assert!(err.contains("staged"), "{err}");
}

/// A load-date model over the lake object Account's live records, a file source joined.
fn lake_model() -> ModelConfig {
    serde_json::from_value(serde_json::json!({
        "key": ["Id"],
        "type1": ["Rating"],
        "sources": [
            {"name": "account", "object": "Account", "columns": ["Name", "AnnualRevenue", "Rating"]},
            {"name": "segment", "files": "s3://landing/segment/", "order_by": "ts", "types": {"ts": "timestamp"},
             "columns": ["segment"]}
        ]
    }))
    .expect("the model parses")
}

/// Account's history table schema, as the lake stores it.
fn lake_schemas() -> BTreeMap<String, SchemaRef> {
    use tidemark_lake::arrow::datatypes::{DataType, Field, Schema};
    let mut fields = tidemark_lake::columns::metadata_fields();
    fields.extend([
        Field::new("Id", DataType::Utf8, false),
        Field::new("Name", DataType::Utf8, true),
        Field::new("AnnualRevenue", DataType::Decimal128(18, 2), true),
        Field::new("Rating", DataType::Utf8, true),
    ]);
    BTreeMap::from([("Account".to_owned(), std::sync::Arc::new(Schema::new(fields)))])
}

fn lake_sql(engine: Engine, options: &SqlOptions) -> String {
    load_statements_over("dim_account", &lake_model(), engine, run_date(), options, &lake_schemas()).unwrap()
}

#[test]
fn a_lake_object_is_read_as_its_live_records_in_every_engine() {
    for engine in Engine::ALL {
        let out = lake_sql(engine, &SqlOptions::default());
        let q = |s: &str| Dialect(engine).ident(s);
        // The live rule of `catalog ddl`'s <object> view: the last version in VERSION_ORDER, then
        // the delete filter, after the ranking.
        let ranked = format!(
            "row_number() OVER (PARTITION BY {} ORDER BY {} DESC, {} DESC, {} DESC) AS {}\n",
            q("id"),
            q("_version_at"),
            q("_ingested_at"),
            q("_deleted"),
            q("_tidemark_version")
        );
        assert_eq!(out.matches(&ranked).count(), 1, "{engine}: the history is ranked once\n{out}");
        assert!(out.contains(&format!("  FROM {}\n", q("account_history"))), "{engine}\n{out}");
        assert!(out.contains(&format!("WHERE v.{} = 1\n", q("_tidemark_version"))), "{engine}\n{out}");
        assert!(out.contains(&format!("AND NOT v.{}", q("_deleted"))), "{engine}\n{out}");
        // Lower-case stored names, the model's names in the statements, typed as stored.
        let text = Dialect(engine).column_type(ColumnType::String);
        assert!(out.contains(&format!("CAST(v.{} AS {text}) AS {}", q("id"), q("Id"))), "{engine}\n{out}");
        assert!(out.contains(&format!("CAST(v.{} AS DECIMAL(18, 2)) AS {}", q("annualrevenue"), q("AnnualRevenue"))), "{engine}");
        assert!(out.contains(&format!("{} DECIMAL(18, 2)", q("AnnualRevenue"))), "{engine}: the dimension's column\n{out}");
        assert!(out.contains(&format!("v.{} AS {}", q("_version_at"), q("_version_at"))), "{engine}");
        // Ordered by _version_at, no status, no check of an ordering value the lake always has.
        assert!(out.contains(&format!("ORDER BY {} DESC NULLS LAST", q("_version_at"))), "{engine}");
        assert!(out.contains("false AS"), "{engine}: no row of a lake object is a delete");
        assert!(!out.contains("source account: a row has no value in"), "{engine}: Ids are never NULL\n{out}");
        assert!(out.contains("source segment: a row has no value in ts"), "{engine}");
        assert!(out.contains("source account: two different rows of key "), "{engine}: ties between live records are checked");
        // A decimal hashes by its exact text.
        assert!(out.contains(&Dialect(engine).cast_text(&format!("s.{}", q("AnnualRevenue")))), "{engine}\n{out}");
        assert!(out.contains("-- Source account (primary: decides which keys exist): "), "{engine}");
        assert!(out.contains("the lake object Account's live records: a full extract."), "{engine}\n{out}");
        assert!(out.contains("each id's last version by _version_at, _ingested_at, _deleted"), "{engine}\n{out}");
        assert!(out.contains("`tidemark catalog ddl --engine"), "{engine}");
        assert!(statements(&out).iter().all(|s| !s.is_empty()));
    }
    let redshift = lake_sql(Engine::Redshift, &SqlOptions::default());
    assert!(redshift.contains("`tidemark catalog ddl --engine redshift-spectrum` registers"), "{redshift}");
    assert!(redshift.contains("FROM \"tidemark_landing\".\"segment\""), "file sources keep their schema\n{redshift}");
    let schema = SqlOptions { source_schema: Some("crm".into()), ..SqlOptions::default() };
    let trino = lake_sql(Engine::Trino, &schema);
    assert!(trino.contains("  FROM crm.\"account_history\"\n"), "as source-time models name it\n{trino}");
}

#[test]
fn a_model_of_lake_objects_only_leaves_out_the_notes_on_files() {
    let mut model = lake_model();
    model.sources.truncate(1);
    let out =
        load_statements_over("dim_account", &model, Engine::DuckDb, run_date(), &SqlOptions::default(), &lake_schemas()).unwrap();
    assert!(!out.contains("prefix") && !out.contains("EVERY file"), "{out}");
    assert!(out.contains("Each lake object's state is its live records"), "{out}");
    assert!(!out.contains("read_csv"), "{out}");
}

#[test]
fn a_lake_source_needs_its_schema_and_columns() {
    let err = load_statements("dim_account", &lake_model(), Engine::Trino, run_date()).unwrap_err().to_string();
    assert_eq!(err, "model dim_account: source account: object Account has not been synced into this lake (no history table)");
    let mut model = lake_model();
    model.sources[0].columns.push("Missing__c".into());
    let err = load_statements_over("dim_account", &model, Engine::Spark, run_date(), &SqlOptions::default(), &lake_schemas())
        .unwrap_err()
        .to_string();
    assert_eq!(err, "model dim_account: source account: Account has no column Missing__c");
    // A lake object joined to a file primary: its key columns must exist and take the primary's type.
    let mut model = lake_model();
    model.sources.swap(0, 1);
    model.sources[0].types.insert("Id".into(), ColumnType::Bigint);
    let out =
        load_statements_over("dim_account", &model, Engine::DuckDb, run_date(), &SqlOptions::default(), &lake_schemas()).unwrap();
    assert!(out.contains("CAST(v.\"id\" AS BIGINT) AS \"Id\""), "{out}");
    // Keyed on another column, a NULL key stops the run (checked on the live records).
    model.key = vec!["Name".into()];
    model.sources[0].types.clear();
    model.sources[1].columns.retain(|c| c != "Name");
    let out =
        load_statements_over("dim_account", &model, Engine::DuckDb, run_date(), &SqlOptions::default(), &lake_schemas()).unwrap();
    assert!(
        out.contains("error('model dim_account, source account: a row has no value in a key column (Name)') END AS \"_tidemark_no_key\"\nFROM \"dim_account__account_latest\";"),
        "{out}"
    );
    model.key = vec!["Region".into()];
    let err = load_statements_over("dim_account", &model, Engine::DuckDb, run_date(), &SqlOptions::default(), &lake_schemas())
        .unwrap_err()
        .to_string();
    assert_eq!(err, "model dim_account: source account: Account has no column Region");
}

#[test]
fn typed_text_forms_follow_the_readme() {
    let (d, s) = (Dialect(Engine::DuckDb), "x");
    assert_eq!(d.text_form(s, ColumnType::String), "x");
    assert_eq!(d.text_form(s, ColumnType::Bigint), "CAST(x AS VARCHAR)");
    assert_eq!(d.text_form(s, ColumnType::Boolean), "CASE WHEN x THEN 'true' WHEN NOT x THEN 'false' END");
    assert_eq!(d.text_form(s, ColumnType::Date), "strftime(x, '%Y-%m-%d')");
    assert_eq!(
        d.text_form(s, ColumnType::Timestamp),
        "regexp_replace(regexp_replace(strftime(x, '%Y-%m-%d %H:%M:%S.%f'), '0+$', ''), '[.]$', '')"
    );
    assert!(Dialect(Engine::Redshift).text_form(s, ColumnType::Timestamp).contains("to_char(x, 'YYYY-MM-DD HH24:MI:SS.US')"));
    assert!(Dialect(Engine::Spark).text_form(s, ColumnType::Timestamp).contains("date_format(x, 'yyyy-MM-dd HH:mm:ss.SSSSSS')"));
    assert!(Dialect(Engine::Trino).text_form(s, ColumnType::Timestamp).contains("CAST(CAST(x AS TIMESTAMP(6)) AS VARCHAR)"));
    assert_eq!(Dialect(Engine::Spark).text_form(s, ColumnType::Int), "CAST(x AS STRING)");
    let double = d.text_form(s, ColumnType::Double);
    assert!(double.starts_with("CASE WHEN lower(CAST(x AS VARCHAR)) LIKE '%nan%' THEN 'NaN'"), "{double}");
}

#[test]
fn identifiers_and_strings_are_quoted_per_engine() {
    assert_eq!(Dialect(Engine::DuckDb).ident("we\"ird"), "\"we\"\"ird\"");
    assert_eq!(Dialect(Engine::Spark).ident("we`ird"), "`we``ird`");
    assert_eq!(Dialect(Engine::Trino).string("it's"), "'it''s'");
    assert_eq!(Dialect(Engine::Spark).string("it's \\N"), "'it\\'s \\\\N'");
}

#[test]
#[ignore = "prints the statements: cargo test -p tidemark-models --lib engine_sql::tests::print -- --ignored --nocapture"]
fn print() {
    for engine in Engine::ALL {
        println!("{}\n", sql(engine));
        println!("{}\n", lake_sql(engine, &SqlOptions::default()));
    }
}
