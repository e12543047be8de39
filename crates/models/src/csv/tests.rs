//! `read_csv` end to end: dialects, NULL rules, types, errors and the published sample files.

use std::collections::BTreeMap;

use tidemark_core::models::{ColumnType, CsvDialect};
use tidemark_lake::arrow::array::{Array, AsArray, RecordBatch};
use tidemark_lake::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};

use super::{arrow_type, read_csv};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/scd2-post");

fn types(list: &[(&str, ColumnType)]) -> BTreeMap<String, ColumnType> {
    list.iter().map(|(name, ty)| (name.to_string(), *ty)).collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn read_with(
    input: &[u8],
    dialect: &CsvDialect,
    typed: &[(&str, ColumnType)],
    wanted: &[&str],
) -> crate::Result<Vec<RecordBatch>> {
    read_csv(input, "landing/f.csv", dialect, &types(typed), &names(wanted), 1024)
}

fn read(input: &str, typed: &[(&str, ColumnType)], wanted: &[&str]) -> crate::Result<Vec<RecordBatch>> {
    read_with(input.as_bytes(), &CsvDialect::default(), typed, wanted)
}

/// The single batch of a small read.
fn one(input: &str, typed: &[(&str, ColumnType)], wanted: &[&str]) -> RecordBatch {
    let mut batches = read(input, typed, wanted).unwrap();
    assert_eq!(batches.len(), 1);
    batches.remove(0)
}

fn error(input: &str, typed: &[(&str, ColumnType)], wanted: &[&str]) -> String {
    read(input, typed, wanted).unwrap_err().to_string()
}

fn strings(batch: &RecordBatch, column: usize) -> Vec<Option<String>> {
    batch.column(column).as_string::<i32>().iter().map(|v| v.map(str::to_owned)).collect()
}

fn bigints(batch: &RecordBatch, column: usize) -> Vec<Option<i64>> {
    batch.column(column).as_primitive::<Int64Type>().iter().collect()
}

fn micros(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_micros()
}

#[test]
fn published_shape_with_crlf() {
    let input = "customer_id,first_name,row_audit_ts\r\n2,Yuki,2020-05-01 14:52:32\r\n";
    let typed = [("customer_id", ColumnType::Bigint), ("row_audit_ts", ColumnType::Timestamp)];
    let batch = one(input, &typed, &["customer_id", "first_name", "row_audit_ts"]);
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(bigints(&batch, 0), vec![Some(2)]);
    assert_eq!(strings(&batch, 1), vec![Some("Yuki".into())]);
    let ts = batch.column(2).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(ts.value(0), micros("2020-05-01T14:52:32Z"));
    assert_eq!(batch.schema().field(2).data_type(), &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())));
    assert!(batch.schema().fields().iter().all(|f| f.is_nullable()));
}

#[test]
fn wanted_order_and_skipped_columns() {
    // `junk` is typed but not wanted: it is never converted, so its bad value is no error.
    let input = "a,junk,b\n1,not a number,x\n";
    let batch = one(input, &[("a", ColumnType::Int), ("junk", ColumnType::Bigint)], &["b", "a", "b"]);
    assert_eq!(batch.schema().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(), vec!["b", "a", "b"]);
    assert_eq!(strings(&batch, 0), vec![Some("x".into())]);
    assert_eq!(batch.column(1).as_primitive::<Int32Type>().value(0), 1);
    assert_eq!(strings(&batch, 2), vec![Some("x".into())]);
    let none = one(input, &[], &[]);
    assert_eq!((none.num_rows(), none.num_columns()), (1, 0));
}

#[test]
fn quoted_empty_is_a_string_and_unquoted_empty_is_null() {
    let batch = one("a,b,n\n\"\",,\n,\"\",1\n", &[("n", ColumnType::Bigint)], &["a", "b", "n"]);
    assert_eq!(strings(&batch, 0), vec![Some(String::new()), None]);
    assert_eq!(strings(&batch, 1), vec![None, Some(String::new())]);
    assert_eq!(bigints(&batch, 2), vec![None, Some(1)]);
    assert_eq!(
        error("a,n\nx,\"\"\n", &[("n", ColumnType::Bigint)], &["n"]),
        "landing/f.csv: line 2, column n: quoted empty value is not a bigint"
    );
    assert_eq!(
        error("a,n\nx,\"\"\n", &[("n", ColumnType::Int)], &["n"]),
        "landing/f.csv: line 2, column n: quoted empty value is not an int"
    );
}

#[test]
fn null_marker() {
    let dialect = CsvDialect { null: Some(r"\N".into()), ..CsvDialect::default() };
    let input = "s,n,d\n\\N,\\N,\\N\n\"\\N\",7,\n";
    let typed = [("n", ColumnType::Bigint), ("d", ColumnType::Date)];
    let batch = read_with(input.as_bytes(), &dialect, &typed, &["s", "n", "d"]).unwrap().remove(0);
    assert_eq!(strings(&batch, 0), vec![None, Some(r"\N".into())], "only an unquoted marker is NULL");
    assert_eq!(bigints(&batch, 1), vec![None, Some(7)]);
    assert_eq!(batch.column(2).null_count(), 2);
    // Without the option the marker is text.
    assert_eq!(strings(&one(input, &[], &["s"]), 0), vec![Some(r"\N".into()), Some(r"\N".into())]);
}

#[test]
fn quoted_values_hold_delimiters_quotes_and_line_ends() {
    let input = "id,note\n1,\"a, b\"\n2,\"say \"\"hi\"\"\"\n3,\"two\r\nlines\nand \"\"more\"\"\"\n4,\"\"\"\"\n";
    let batch = one(input, &[("id", ColumnType::Bigint)], &["id", "note"]);
    assert_eq!(bigints(&batch, 0), vec![Some(1), Some(2), Some(3), Some(4)]);
    let notes =
        vec![Some("a, b".into()), Some("say \"hi\"".into()), Some("two\r\nlines\nand \"more\"".into()), Some("\"".into())];
    assert_eq!(strings(&batch, 1), notes);
    // Line numbers stay physical after a multi-line value: record 5 starts on line 8.
    let bad = format!("{input}x,y\n");
    assert_eq!(
        error(&bad, &[("id", ColumnType::Bigint)], &["id"]),
        "landing/f.csv: line 8, column id: not a bigint (expected an integer)"
    );
}

#[test]
fn non_ascii_text() {
    let batch = one("name,city\n\"Zoë, \"\"ANNA\"\"\",東京\nJosé,\"São Paulo\"\n", &[], &["name", "city"]);
    assert_eq!(strings(&batch, 0), vec![Some("Zoë, \"ANNA\"".into()), Some("José".into())]);
    assert_eq!(strings(&batch, 1), vec![Some("東京".into()), Some("São Paulo".into())]);
}

#[test]
fn escape_character() {
    let dialect = CsvDialect { escape: Some('\\'), ..CsvDialect::default() };
    let input = r#"id,note
1,"say \"hi\", twice"
2,"back\\slash"
3,C:\temp
"#;
    let batch = read_with(input.as_bytes(), &dialect, &[], &["note"]).unwrap().remove(0);
    assert_eq!(strings(&batch, 0), vec![Some(r#"say "hi", twice"#.into()), Some(r"back\slash".into()), Some(r"C:\temp".into())]);
    // With an escape character a doubled quote is not an escape.
    let err = read_with(b"id\n\"a\"\"b\"\n", &dialect, &[], &["id"]).unwrap_err().to_string();
    assert!(err.starts_with("landing/f.csv: line 2, column id: text after a closing quote"), "{err}");
}

#[test]
fn semicolon_delimiter() {
    let dialect = CsvDialect { delimiter: ';', ..CsvDialect::default() };
    let input = "id;amount;name\n1;2.5;\"a;b\"\n2;-1e3;c,d\n";
    let batch = read_with(input.as_bytes(), &dialect, &[("amount", ColumnType::Double)], &["amount", "name"]).unwrap().remove(0);
    assert_eq!(batch.column(0).as_primitive::<Float64Type>().values().to_vec(), vec![2.5, -1000.0]);
    assert_eq!(strings(&batch, 1), vec![Some("a;b".into()), Some("c,d".into())]);
}

#[test]
fn byte_order_mark_is_skipped() {
    let batch = read_with(b"\xEF\xBB\xBFid,name\n1,x\n", &CsvDialect::default(), &[], &["id"]).unwrap().remove(0);
    assert_eq!(strings(&batch, 0), vec![Some("1".into())]);
}

#[test]
fn every_type() {
    let input = "b,i,d,f,dt,ts\nTRUE,-5,0.25,no,2024-02-29,2024-02-29T23:59:59.5Z\n0,2147483647,-0,Yes,1969-12-31,2020-05-01 16:52:32.123+02:00\n";
    let typed = [
        ("b", ColumnType::Boolean),
        ("i", ColumnType::Int),
        ("d", ColumnType::Double),
        ("f", ColumnType::Boolean),
        ("dt", ColumnType::Date),
        ("ts", ColumnType::Timestamp),
    ];
    let batch = one(input, &typed, &["b", "i", "d", "f", "dt", "ts"]);
    for (field, (_, ty)) in batch.schema().fields().iter().zip(typed) {
        assert_eq!(field.data_type(), &arrow_type(ty));
    }
    assert_eq!(batch.column(0).as_boolean().iter().collect::<Vec<_>>(), vec![Some(true), Some(false)]);
    assert_eq!(batch.column(1).as_primitive::<Int32Type>().values().to_vec(), vec![-5, i32::MAX]);
    assert_eq!(batch.column(2).as_primitive::<Float64Type>().values().to_vec(), vec![0.25, -0.0]);
    assert_eq!(batch.column(3).as_boolean().iter().collect::<Vec<_>>(), vec![Some(false), Some(true)]);
    assert_eq!(batch.column(4).as_primitive::<Date32Type>().values().to_vec(), vec![19782, -1]);
    let ts = batch.column(5).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(ts.values().to_vec(), vec![micros("2024-02-29T23:59:59.5Z"), micros("2020-05-01T14:52:32.123Z")]);
}

#[test]
fn timestamp_fractions_and_offsets() {
    let input =
        "ts\n2020-05-01 14:52:32.1\n2020-05-01T14:52:32.123456\n2020-05-01 14:52:32.123456000Z\n2020-05-01 09:52:32-05:00\n";
    let batch = one(input, &[("ts", ColumnType::Timestamp)], &["ts"]);
    let expected =
        ["2020-05-01T14:52:32.1Z", "2020-05-01T14:52:32.123456Z", "2020-05-01T14:52:32.123456Z", "2020-05-01T14:52:32Z"];
    let values = batch.column(0).as_primitive::<TimestampMicrosecondType>().values().to_vec();
    assert_eq!(values, expected.map(micros).to_vec());
    assert_eq!(
        error("id,ts\n1,2020-05-01 14:52:32.123456789\n", &[("ts", ColumnType::Timestamp)], &["ts"]),
        "landing/f.csv: line 2, column ts: timestamp more precise than microseconds (digits after the sixth fractional digit must be 0)"
    );
}

#[test]
fn bad_timestamp_names_line_and_column() {
    let input = "customer_id,note,row_audit_ts\n1,\"multi\nline\",2020-05-01 14:52:32\n2,secret-value,2020-05-01 14:5\n";
    let typed = [("row_audit_ts", ColumnType::Timestamp)];
    let message = error(input, &typed, &["row_audit_ts"]);
    assert_eq!(message, "landing/f.csv: line 4, column row_audit_ts: not a timestamp (expected YYYY-MM-DD HH:MM:SS)");
    let message = error("id,ts\n1,2020-02-30 10:00:00\n", &[("ts", ColumnType::Timestamp)], &["ts"]);
    assert!(message.starts_with("landing/f.csv: line 2, column ts: not a calendar date and time"), "{message}");
}

#[test]
fn typed_values_are_strict_and_errors_never_show_them() {
    let cases: [(&str, ColumnType, &str); 7] = [
        (" 42", ColumnType::Bigint, "spaces around the value, which is not allowed for a bigint"),
        ("\"42 \"", ColumnType::Int, "spaces around the value, which is not allowed for an int"),
        ("99999999999", ColumnType::Int, "out of range for an int (32-bit)"),
        ("4x2", ColumnType::Double, "not a double (expected a number)"),
        ("yep", ColumnType::Boolean, "not a boolean (expected true/false, t/f, 1/0 or yes/no)"),
        ("2024-02-30", ColumnType::Date, "not a calendar date (month or day out of range)"),
        ("01/02/2024", ColumnType::Date, "not a date (expected YYYY-MM-DD)"),
    ];
    for (value, ty, expected) in cases {
        let message = error(&format!("id,v\n1,{value}\n"), &[("v", ty)], &["v"]);
        assert_eq!(message, format!("landing/f.csv: line 2, column v: {expected}"));
    }
    // Strings keep their spaces.
    assert_eq!(strings(&one("v\n  padded \n", &[], &["v"]), 0), vec![Some("  padded ".into())]);
}

#[test]
fn batches_split_at_batch_rows() {
    let input: String = std::iter::once("id\n".to_string()).chain((1..=5).map(|i| format!("{i}\n"))).collect();
    let typed = types(&[("id", ColumnType::Bigint)]);
    let batches = read_csv(input.as_bytes(), "f", &CsvDialect::default(), &typed, &names(&["id"]), 2).unwrap();
    assert_eq!(batches.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(), vec![2, 2, 1]);
    let all: Vec<_> = batches.iter().flat_map(|b| bigints(b, 0)).collect();
    assert_eq!(all, (1..=5).map(Some).collect::<Vec<_>>());
    let exact = read_csv(input.as_bytes(), "f", &CsvDialect::default(), &typed, &names(&["id"]), 5).unwrap();
    assert_eq!(exact.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(), vec![5]);
    let zero = read_csv(input.as_bytes(), "f", &CsvDialect::default(), &typed, &names(&["id"]), 0).unwrap();
    assert_eq!(zero.len(), 5);
}

#[test]
fn line_ends() {
    let expected = vec![Some("1".into()), Some("2".into())];
    for input in ["id\n1\n2", "id\r\n1\r\n2", "id\n1\n2\n", "id\n1\n2\n\n", "id\r\n1\r\n2\r\n\r\n"] {
        assert_eq!(strings(&one(input, &[], &["id"]), 0), expected, "{input:?}");
    }
    assert_eq!(strings(&one("id,x\n1,\"a\"", &[], &["x"]), 0), vec![Some("a".into())]);
    let message = error("id,x\n1,a\r\r\n", &[], &["x"]);
    assert!(message.starts_with("landing/f.csv: line 2, column x: a carriage return not followed by a line feed"), "{message}");
    let message = error("id,x\r1,a\r", &[], &["x"]);
    assert!(message.starts_with("landing/f.csv: line 1 (header): a carriage return"), "{message}");
    // An empty line inside the file is a record: here one field of two.
    assert_eq!(error("id,x\n\n1,a\n", &[], &["x"]), "landing/f.csv: line 2: 1 field, the header has 2");
}

#[test]
fn header_only_and_empty_files() {
    assert!(read("id,name\n", &[], &["id"]).unwrap().is_empty());
    assert!(read("id,name", &[], &["id"]).unwrap().is_empty());
    assert_eq!(error("", &[], &["id"]), "landing/f.csv: empty file: a header row is required");
    assert_eq!(error("\u{feff}\r\n", &[], &["id"]), "landing/f.csv: empty file: a header row is required");
}

#[test]
fn missing_and_duplicate_columns() {
    assert_eq!(
        error("customer_id,first_name\n1,x\n", &[], &["customer_id", "last_name"]),
        "landing/f.csv: column last_name is not in the header (its columns: customer_id, first_name)"
    );
    assert_eq!(error("id,Id,id\n1,2,3\n", &[], &["id"]), "landing/f.csv: line 1 (header): column id appears twice");
    // Matching is exact: no trimming, no case folding.
    assert!(error("ID, name\n1,x\n", &[], &["name"]).contains("column name is not in the header"));
}

#[test]
fn wrong_field_count_does_not_show_values() {
    let too_many = error("id,name\n1,x\n2,Secret Person,extra-secret\n", &[], &["id"]);
    assert_eq!(too_many, "landing/f.csv: line 3: 3 fields, the header has 2");
    let too_few = error("id,name,email\n1,Secret Person\n", &[], &["id"]);
    assert_eq!(too_few, "landing/f.csv: line 2: 2 fields, the header has 3");
    for message in [too_many, too_few] {
        assert!(!message.contains("Secret") && !message.contains("extra"), "{message}");
    }
}

#[test]
fn malformed_quoting_and_utf8() {
    let message = error("id,name\n1,Jo\"hn\n", &[], &["id"]);
    assert!(message.starts_with("landing/f.csv: line 2, column name: a quote inside an unquoted field"), "{message}");
    assert!(!message.contains("Jo"));
    let message = error("id,name\n1,\"never closed\n2,x\n", &[], &["id"]);
    assert_eq!(message, "landing/f.csv: line 2, column name: a quoted field is not closed before the end of the file");
    let latin1 = b"id,name\n1,Zo\xeb\n";
    let message = read_with(latin1, &CsvDialect::default(), &[], &["name"]).unwrap_err().to_string();
    assert_eq!(message, "landing/f.csv: line 2, column name: not valid UTF-8");
    // A column that is not wanted is not decoded.
    assert_eq!(read_with(latin1, &CsvDialect::default(), &[], &["id"]).unwrap()[0].num_rows(), 1);
}

#[test]
fn dialect_checks() {
    let cases = [
        (CsvDialect { header: false, ..CsvDialect::default() }, "csv.header: false"),
        (CsvDialect { delimiter: '§', ..CsvDialect::default() }, "csv.delimiter must be a single ASCII character"),
        (CsvDialect { quote: ',', ..CsvDialect::default() }, "csv.delimiter and csv.quote must differ"),
        (CsvDialect { escape: Some(','), ..CsvDialect::default() }, "csv.escape and csv.delimiter must differ"),
    ];
    for (dialect, expected) in cases {
        let message = read_with(b"id\n1\n", &dialect, &[], &["id"]).unwrap_err().to_string();
        assert!(message.contains(expected), "{message}");
    }
    // An escape equal to the quote is the default doubled quote.
    let doubled = CsvDialect { escape: Some('"'), ..CsvDialect::default() };
    let batch = read_with(b"id\n\"a\"\"b\"\n", &doubled, &[], &["id"]).unwrap().remove(0);
    assert_eq!(strings(&batch, 0), vec![Some("a\"b".into())]);
}

/// The Redshift post's files (see `/work/shared/scd2-post/README.md`), when this checkout sits
/// next to them.
#[test]
fn published_sample_files() {
    if !std::path::Path::new(SAMPLES).is_dir() {
        eprintln!("skipped: no sample files at {SAMPLES}");
        return;
    }
    let typed = [("customer_id", ColumnType::Bigint), ("row_audit_ts", ColumnType::Timestamp)];
    let sources = [
        ("customer_master_with_ts.csv", "first_name", 5),
        ("customer_master_with_ts_incr.csv", "first_name", 5),
        ("customer_address_with_ts.csv", "city", 5),
        ("customer_address_with_ts_incr.csv", "city", 5),
    ];
    for (name, attribute, rows) in sources {
        let path = format!("{SAMPLES}/{name}");
        let bytes = std::fs::read(&path).unwrap();
        let batches = read_csv(
            &bytes,
            &path,
            &CsvDialect::default(),
            &types(&typed),
            &names(&["customer_id", attribute, "row_audit_ts"]),
            3,
        )
        .unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), rows, "{name}");
        assert!(batches.iter().all(|b| b.columns().iter().all(|c| c.null_count() == 0)), "{name}");
    }
    let bytes = std::fs::read(format!("{SAMPLES}/customer_master_with_ts_incr.csv")).unwrap();
    let batch = read_csv(
        &bytes,
        "incr",
        &CsvDialect::default(),
        &types(&typed),
        &names(&["customer_id", "employer_name", "row_audit_ts"]),
        100,
    )
    .unwrap()
    .remove(0);
    assert_eq!(bigints(&batch, 0), [2, 101, 102, 4, 103].map(Some).to_vec());
    assert_eq!(strings(&batch, 1)[0].as_deref(), Some("Collectica Inc"), "the CRLF file's values carry no CR");
    assert_eq!(batch.column(2).as_primitive::<TimestampMicrosecondType>().value(4), micros("2020-05-05T14:52:31Z"));

    let published = std::fs::read(format!("{SAMPLES}/published_dim_customer_after_incremental.csv")).unwrap();
    let typed = [("customer_sk", ColumnType::Bigint), ("rec_eff_dt", ColumnType::Date), ("rec_exp_dt", ColumnType::Date)];
    let batch =
        read_csv(&published, "published", &CsvDialect::default(), &types(&typed), &names(&["customer_sk", "rec_exp_dt"]), 100)
            .unwrap()
            .remove(0);
    assert_eq!(batch.num_rows(), 10);
    let open_end = chrono::NaiveDate::from_ymd_opt(9999, 12, 31).unwrap() - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    assert_eq!(batch.column(1).as_primitive::<Date32Type>().value(0), open_end.num_days() as i32);
}
