//! Redshift Spectrum's external tables: Parquet over the symlink manifests
//! (see [`super::write_symlink_manifests`]), every column declared.

use tidemark_lake::arrow::datatypes::DataType;

use super::{DdlError, Stored, Target};

/// The Redshift type an external-table column is declared as.
fn redshift_type(t: &DataType) -> Option<String> {
    Some(match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR(65535)".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 | DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "REAL".into(),
        DataType::Float64 => "DOUBLE PRECISION".into(),
        DataType::Decimal128(p, s) if *p <= 38 && *s >= 0 => format!("DECIMAL({p},{s})"),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(_, _) => "TIMESTAMP".into(),
        _ => return None,
    })
}

/// A Parquet external table over the symlink manifest. Dropped first: its columns are declared,
/// so a schema change needs a new definition (late-binding views do not hold the table).
///
/// A mart's data files do not hold its partition column (Delta keeps partition values in the
/// log), so a mart's table declares its current flag as the partition key and reads each value
/// through its own manifest, `_symlink_format_manifest/<flag>=<value>/manifest`.
pub(super) fn redshift_external_table(target: &Target<'_>, stored: &Stored<'_>, external: &str) -> Result<String, DdlError> {
    let declare = |c: &super::Column| {
        redshift_type(&c.data_type).map(|t| format!("{} {t}", target.ident(&c.sql))).ok_or_else(|| DdlError::UnsupportedType {
            object: stored.label.to_owned(),
            column: c.physical.clone(),
            data_type: c.data_type.to_string(),
            engine: target.engine,
        })
    };
    let partition = stored.partition.map(|p| p.physical.as_str());
    let mut columns = Vec::with_capacity(stored.columns.len());
    for c in stored.columns.iter().filter(|c| Some(c.physical.as_str()) != partition) {
        columns.push(format!("  {}", declare(c)?));
    }
    let manifests = stored.location.join("_symlink_format_manifest/").unwrap_or_else(|_| stored.location.clone());
    let partitioned_by = match stored.partition {
        Some(p) => format!("PARTITIONED BY ({})\n", declare(p)?),
        None => String::new(),
    };
    let mut out = format!(
        "DROP TABLE IF EXISTS {external};\nCREATE EXTERNAL TABLE {external} (\n{}\n)\n{partitioned_by}\
         ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'\n\
         STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat'\n\
         OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\nLOCATION {};\n",
        columns.join(",\n"),
        target.string(manifests.as_str()),
    );
    if let Some(p) = stored.partition {
        for value in ["true", "false"] {
            let folder = manifests.join(&format!("{}={value}/", p.physical)).unwrap_or_else(|_| manifests.clone());
            out.push_str(&format!(
                "ALTER TABLE {external} ADD IF NOT EXISTS PARTITION ({}={}) LOCATION {};\n",
                target.ident(&p.sql),
                target.string(value),
                target.string(folder.as_str())
            ));
        }
    }
    Ok(out)
}
