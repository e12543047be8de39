//! The SQL of an object's live and SCD2 relations, and of a mart's `_current` view, as Postgres
//! clients of `serve-sql` read it (`pg_get_viewdef`, psql's `\d+`, `information_schema.views`):
//! the query [`super::ddl`] gives outside engines, over `<object>_history` (or `<mart>`), in
//! Postgres's dialect. DataFusion plans the relations its own way (see [`crate::views`],
//! [`crate::marts`]); this text has the same rows.

use chrono::{DateTime, Utc};
use tidemark_lake::arrow::datatypes::SchemaRef;
use tidemark_lake::columns::VERSION_AT;
use url::Url;

use super::mart::{current_query, mart_columns};
use super::{DdlTable, Dialect, Prepared, double_quoted, live_query, scd2_query, standard_string};
use crate::names::{HISTORY_SUFFIX, column_name};
use crate::views::Relation;

/// The definition of `relation` of the lake table `table` (whose Delta schema is `schema`), the
/// live relation as of `as_of` when given; `None` for the history relation, which is a table,
/// and for a table that is not a Tidemark history table.
pub fn view_definition(
    relation: Relation,
    table: &str,
    location: Url,
    schema: SchemaRef,
    as_of: Option<DateTime<Utc>>,
) -> Option<String> {
    let ddl_table = DdlTable { object: table.to_owned(), location, schema };
    let prepared = Prepared::new(&ddl_table).ok()?;
    let d = postgres();
    let history = double_quoted(&format!("{}{HISTORY_SUFFIX}", prepared.name));
    match relation {
        Relation::Live => {
            let source = match as_of {
                None => history,
                Some(at) => format!(
                    "(SELECT * FROM {history} WHERE {} <= {}) AS h",
                    double_quoted(&column_name(VERSION_AT)),
                    timestamptz(&at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                ),
            };
            Some(live_query(&d, &prepared, &source))
        }
        Relation::Scd2 => Some(scd2_query(&d, &prepared, &history)),
        Relation::History | Relation::Mart | Relation::MartCurrent => None,
    }
}

/// The definition of the mart `mart`'s `_current` view, given its Delta schema (declared order)
/// and its current-row flag (physical name); `None` when the flag is no column of the schema.
pub fn mart_current_definition(mart: &str, schema: &SchemaRef, flag: &str) -> Option<String> {
    let columns = mart_columns(schema);
    let flag = columns.iter().find(|c| c.physical == flag)?;
    Some(current_query(&postgres(), &columns, flag, &double_quoted(mart)))
}

fn postgres() -> Dialect {
    Dialect {
        ident: double_quoted,
        string: standard_string,
        end_of_time: |day| timestamptz(&format!("{day} 00:00:00+00")),
        view_tail: "",
    }
}

/// An instant literal Postgres and DataFusion both read as microseconds (DataFusion's
/// `TIMESTAMPTZ '…'` is in nanoseconds, which cannot hold 9999-12-31).
fn timestamptz(instant: &str) -> String {
    format!("CAST({} AS TIMESTAMP(6) WITH TIME ZONE)", standard_string(instant))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;

    #[test]
    fn live_and_scd2_read_the_history_relation() {
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let schema = Arc::new(Schema::new(vec![
            Field::new("_version_at", utc.clone(), false),
            Field::new("_deleted", DataType::Boolean, false),
            Field::new("_ingested_at", utc, false),
            Field::new("Id", DataType::Utf8, false),
            Field::new("Name", DataType::Utf8, true),
        ]));
        let url = Url::parse("file:///lake/objects/account/").unwrap();
        let live = view_definition(Relation::Live, "account", url.clone(), schema.clone(), None).unwrap();
        assert!(live.starts_with("SELECT \"id\", \"name\", \"_version_at\"\nFROM ("), "{live}");
        assert!(live.contains("FROM \"account_history\"") && live.contains("row_number() OVER (PARTITION BY \"id\""), "{live}");
        let at = DateTime::parse_from_rfc3339("2025-01-31T00:00:00Z").unwrap().with_timezone(&Utc);
        let then = view_definition(Relation::Live, "account", url.clone(), schema.clone(), Some(at)).unwrap();
        assert!(
            then.contains("WHERE \"_version_at\" <= CAST('2025-01-31T00:00:00Z' AS TIMESTAMP(6) WITH TIME ZONE)) AS h"),
            "{then}"
        );
        let scd2 = view_definition(Relation::Scd2, "account", url.clone(), schema.clone(), None).unwrap();
        assert!(scd2.contains("CAST('9999-12-31 00:00:00+00' AS TIMESTAMP(6) WITH TIME ZONE)"), "{scd2}");
        assert_eq!(view_definition(Relation::History, "account", url, schema, None), None);
    }
}
