//! Marts (dimension models' tables, `<lake>/marts/<model>/`) in outside engines: each is
//! registered the way an object's history table is (the Delta table as one relation, every column
//! renamed to its SQL name), as `<m>`, plus the view `<m>_current` (`WHERE <current flag>`), the
//! two relations `tidemark sql` shows (see [`crate::marts`]).

use tidemark_lake::arrow::datatypes::{DataType, SchemaRef};
use tidemark_lake::history::open_table;
use tidemark_lake::{LakeError, LakeLocation};
use url::Url;

use super::{Column, DdlError, Dialect, Stored, Target, register};
use crate::marts::MartShape;
use crate::names::{CURRENT_SUFFIX, mart_column_names, table_name};

/// One mart to register.
#[derive(Debug, Clone)]
pub struct DdlMart {
    /// The model name (`dim_customer`), as its folder under `marts/` spells it.
    pub name: String,
    /// The Delta table root (`s3://bucket/lake/marts/dim_customer/`).
    pub location: Url,
    /// The table's schema in its declared order (the current flag where the model put it).
    pub schema: SchemaRef,
    /// The current-row flag (physical name): the table's BOOLEAN partition column.
    pub current: String,
}

impl DdlMart {
    /// Reads the mart `name`'s Delta metadata: its schema and its current-row flag.
    pub async fn read(lake: &LakeLocation, name: &str) -> Result<DdlMart, DdlError> {
        let location = lake.mart_table_url(name);
        let delta = open_table(lake, location.clone())
            .await?
            .ok_or_else(|| DdlError::NoMart { mart: name.to_owned(), location: location.to_string() })?;
        let shape = MartShape::of(&delta).map_err(|e| LakeError::delta(name, e))?;
        let Some(current) = shape.current().map(str::to_owned) else {
            return Err(DdlError::NotAMart {
                mart: name.to_owned(),
                partition_columns: format!("[{}]", shape.partition_columns.join(", ")),
            });
        };
        Ok(DdlMart { name: table_name(name), location, schema: shape.schema, current })
    }
}

/// Every mart of the lake (see [`LakeLocation::mart_tables`]), sorted by name.
pub async fn ddl_marts(lake: &LakeLocation) -> Result<Vec<DdlMart>, DdlError> {
    let mut marts = Vec::new();
    for name in lake.mart_tables().await? {
        marts.push(DdlMart::read(lake, &name).await?);
    }
    Ok(marts)
}

/// A mart checked and named for SQL.
pub(super) struct PreparedMart<'a> {
    pub(super) mart: &'a DdlMart,
    pub(super) columns: Vec<Column>,
    /// The index of the current-row flag in `columns`.
    current: usize,
}

/// A mart's columns in order, with their SQL names.
pub(super) fn mart_columns(schema: &SchemaRef) -> Vec<Column> {
    let sql = mart_column_names(schema.fields().iter().map(|f| f.name().as_str()));
    schema
        .fields()
        .iter()
        .zip(sql)
        .map(|(f, sql)| Column { physical: f.name().clone(), sql, data_type: f.data_type().clone() })
        .collect()
}

impl<'a> PreparedMart<'a> {
    pub(super) fn new(mart: &'a DdlMart) -> Result<PreparedMart<'a>, DdlError> {
        let columns = mart_columns(&mart.schema);
        let current = columns
            .iter()
            .position(|c| c.physical == mart.current && c.data_type == DataType::Boolean)
            .ok_or_else(|| DdlError::MissingColumn { object: mart.name.clone(), column: mart.current.clone() })?;
        Ok(PreparedMart { mart, columns, current })
    }

    pub(super) fn flag(&self) -> &Column {
        &self.columns[self.current]
    }
}

/// `<m>_current`: every column of `<m>`, the rows whose flag is true.
pub(super) fn current_query(d: &Dialect, columns: &[Column], flag: &Column, source: &str) -> String {
    let list: Vec<String> = columns.iter().map(|c| (d.ident)(&c.sql)).collect();
    format!("SELECT {}\nFROM {source}\nWHERE {}", list.join(", "), (d.ident)(&flag.sql))
}

/// One mart: its registration as `<m>`, then the `<m>_current` view over it.
pub(super) fn mart_statements(target: &Target<'_>, mart: &PreparedMart<'_>) -> Result<String, DdlError> {
    let name = &mart.mart.name;
    let mut out = format!("\n-- {name} (mart; current rows: {}): {}\n", mart.flag().sql, mart.mart.location);
    out.push_str(&register(
        target,
        &Stored {
            label: name,
            base: name,
            relation: name.clone(),
            location: &mart.mart.location,
            columns: &mart.columns,
            partition: Some(mart.flag()),
        },
    )?);
    let query = current_query(&target.dialect, &mart.columns, mart.flag(), &target.qualified(name));
    out.push_str(&target.create_view(&format!("{name}{CURRENT_SUFFIX}"), &query));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tidemark_lake::arrow::datatypes::{Field, Schema, TimeUnit};

    use super::super::{DdlOptions, Engine, ddl};
    use super::*;

    /// A load-date model's table, its flag named `active_row` and placed mid-table.
    fn mart(location: &str) -> DdlMart {
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let schema = Schema::new(vec![
            Field::new("customer_sk", DataType::Int64, false),
            Field::new("customer_id", DataType::Int64, false),
            Field::new("City", DataType::Utf8, true),
            Field::new("valid_from", DataType::Date32, false),
            Field::new("valid_to", DataType::Date32, false),
            Field::new("active_row", DataType::Boolean, false),
            Field::new("change_hash", DataType::Utf8, false),
            Field::new("_load_id", DataType::Int64, false),
            Field::new("_customers_at", ts, true),
        ]);
        DdlMart {
            name: "dim_customer".into(),
            location: Url::parse(location).unwrap(),
            schema: Arc::new(schema),
            current: "active_row".into(),
        }
    }

    #[test]
    fn every_engine_registers_the_mart_and_its_current_view() {
        let marts = [mart("s3://acme/lake/marts/dim_customer/")];
        for engine in Engine::ALL {
            let out = ddl(engine, &[], &marts, &DdlOptions::default()).unwrap();
            let q = engine.dialect().ident;
            assert!(out.contains("-- Lake: s3://acme/lake/\n") && out.contains("-- Marts: dim_customer\n"), "{engine}:\n{out}");
            assert!(!out.contains("-- Objects:"), "{engine}: no objects, no line:\n{out}");
            let namespace = match engine {
                Engine::Trino => "\"delta\".\"default\".",
                Engine::RedshiftSpectrum => "\"public\".",
                _ => "",
            };
            let columns = [
                "customer_sk",
                "customer_id",
                "city",
                "valid_from",
                "valid_to",
                "active_row",
                "change_hash",
                "_load_id",
                "_customers_at",
            ]
            .map(q)
            .join(", ");
            let view = format!(
                "VIEW {namespace}{} AS\nSELECT {columns}\nFROM {namespace}{}\nWHERE {}",
                q("dim_customer_current"),
                q("dim_customer"),
                q("active_row")
            );
            assert!(out.contains(&view), "{engine}: {view}\n{out}");
            assert!(!out.contains("_history") && !out.contains("_scd2"), "{engine}: marts have no object relations");
        }
    }

    #[test]
    fn engines_register_the_mart_as_they_register_history_tables() {
        let marts = [mart("s3://acme/lake/marts/dim_customer/")];
        let render = |engine| ddl(engine, &[], &marts, &DdlOptions::default()).unwrap();
        let duckdb = render(Engine::DuckDb);
        assert!(duckdb.contains(
            "CREATE OR REPLACE VIEW \"dim_customer\" AS\nSELECT \"customer_sk\" AS \"customer_sk\", \"customer_id\" AS \"customer_id\", \"City\" AS \"city\""
        ), "{duckdb}");
        assert!(duckdb.contains("FROM delta_scan('s3://acme/lake/marts/dim_customer');\n"), "{duckdb}");
        assert!(render(Engine::Athena).contains(
            "CREATE EXTERNAL TABLE IF NOT EXISTS `dim_customer`\nLOCATION 's3://acme/lake/marts/dim_customer/'\nTBLPROPERTIES ('table_type' = 'DELTA');\n"
        ));
        assert!(render(Engine::Trino).contains(
            "CALL \"delta\".system.register_table(schema_name => 'default', table_name => 'dim_customer', table_location => 's3://acme/lake/marts/dim_customer/');\n"
        ));
        let spark = render(Engine::Spark);
        assert!(spark.contains(
            "CREATE TABLE IF NOT EXISTS `dim_customer_delta` USING DELTA LOCATION 's3://acme/lake/marts/dim_customer/';\n"
        ));
        assert!(spark.contains("CREATE OR REPLACE VIEW `dim_customer` AS\nSELECT `customer_sk` AS `customer_sk`"), "{spark}");

        // Spectrum reads the data files, which do not hold the partition column: it is declared
        // as the partition key, each value read through its own manifest.
        let redshift = render(Engine::RedshiftSpectrum);
        let external = "\"tidemark_lake\".\"dim_customer\"";
        assert!(redshift.contains(&format!("CREATE EXTERNAL TABLE {external} (\n  \"customer_sk\" BIGINT,")), "{redshift}");
        assert!(
            redshift.contains("  \"valid_to\" DATE,\n  \"change_hash\" VARCHAR(65535),"),
            "the flag is no data column:\n{redshift}"
        );
        assert!(redshift.contains(")\nPARTITIONED BY (\"active_row\" BOOLEAN)\nROW FORMAT SERDE"), "{redshift}");
        assert!(redshift.contains("LOCATION 's3://acme/lake/marts/dim_customer/_symlink_format_manifest/';\n"));
        for value in ["true", "false"] {
            assert!(redshift.contains(&format!(
                "ALTER TABLE {external} ADD IF NOT EXISTS PARTITION (\"active_row\"='{value}') LOCATION 's3://acme/lake/marts/dim_customer/_symlink_format_manifest/active_row={value}/';\n"
            )), "{value}:\n{redshift}");
        }
        assert!(redshift.contains("\"active_row\" AS \"active_row\", \"change_hash\" AS \"change_hash\""), "{redshift}");
        assert_eq!(redshift.matches(" WITH NO SCHEMA BINDING;").count(), 2, "{redshift}");
        assert!(redshift.contains("partitioned by its current-row flag, each value read through its own"), "{redshift}");
    }

    #[test]
    fn a_mart_needs_its_boolean_flag() {
        let mut m = mart("s3://acme/lake/marts/dim_customer/");
        m.current = "is_current".into();
        let err = ddl(Engine::DuckDb, &[], &[m], &DdlOptions::default()).unwrap_err();
        assert!(
            matches!(&err, DdlError::MissingColumn { object, column } if object == "dim_customer" && column == "is_current"),
            "{err}"
        );
        let mut m = mart("s3://acme/lake/marts/dim_customer/");
        m.current = "change_hash".into();
        assert!(ddl(Engine::DuckDb, &[], &[m], &DdlOptions::default()).is_err(), "a text column is no flag");
    }
}
