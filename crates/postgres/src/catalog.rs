//! The control connection: server checks, the publication, and what each published table
//! looks like (columns, types, key) read from the system catalogs.

use std::collections::HashMap;

use tidemark_lake::arrow::datatypes::Field;
use tidemark_lake::source::TableSpec;
use tokio_postgres::Client;

use crate::config::{PostgresConfig, SslMode};
use crate::error::PgError;
use crate::types::{PgType, TypeInfo};

/// Settings every connection uses, so text values parse one way: ISO dates, UTC, hex bytea,
/// floats printed exactly.
pub(crate) const SESSION_OPTIONS: &str = "-c TimeZone=UTC -c DateStyle=ISO -c bytea_output=hex -c extra_float_digits=3";

/// A published table as Tidemark replicates it.
#[derive(Debug, Clone)]
pub struct PgTable {
    pub schema: String,
    pub name: String,
    pub oid: u32,
    /// The lake table: the name for schema `public`, `<schema>_<name>` otherwise.
    pub lake_name: String,
    /// The lake's columns (name, type), in order.
    pub columns: Vec<(String, PgType)>,
    /// The source column each lake column reads (the same names, but for a mirror's `sfid`,
    /// stored as `Id`).
    pub source_columns: Vec<String>,
    /// The record key (lake column names): the primary key, else the replica identity index,
    /// else (identity `FULL`) every column; a mirror's `Id`.
    pub key: Vec<String>,
    /// Rows the lake leaves out (a mirror's rows without an `sfid` yet): a `WHERE` condition.
    pub copy_filter: Option<&'static str>,
}

/// Heroku Connect's own columns: left out of the lake.
const MIRROR_BOOKKEEPING: [&str; 3] = ["id", "_hc_lastop", "_hc_err"];

/// The lake column of a source column: itself, renamed (a mirror's `sfid` is the record's
/// `Id`), or `None` when left out (a mirror's bookkeeping).
pub(crate) fn lake_column(mirror: bool, column: &str) -> Option<String> {
    if !mirror {
        return Some(column.to_owned());
    }
    match column {
        "sfid" => Some(tidemark_lake::columns::ID.to_owned()),
        c if MIRROR_BOOKKEEPING.contains(&c) => None,
        c => Some(c.to_owned()),
    }
}

impl PgTable {
    pub fn spec(&self) -> TableSpec {
        TableSpec {
            name: self.lake_name.clone(),
            fields: self.columns.iter().map(|(n, t)| Field::new(n, t.arrow(), true)).collect(),
            key: self.key.clone(),
            policies: Vec::new(),
        }
    }

    pub fn qualified(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Opens an ordinary (non-replication) connection.
pub(crate) async fn connect(cfg: &PostgresConfig) -> Result<Client, PgError> {
    let mut c = tokio_postgres::Config::new();
    c.host(&cfg.host).port(cfg.port).user(&cfg.user).dbname(&cfg.database).application_name("tidemark").options(SESSION_OPTIONS);
    let password = cfg.password();
    if !password.is_empty() {
        c.password(password);
    }
    let client = match cfg.sslmode {
        SslMode::Disable => {
            c.ssl_mode(tokio_postgres::config::SslMode::Disable);
            spawned(c.connect(tokio_postgres::NoTls).await.map_err(|e| PgError::connect(cfg, e))?)
        }
        mode => {
            c.ssl_mode(tokio_postgres::config::SslMode::Require);
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(crate::tls::client_config(mode, cfg.ca_file.as_deref())?);
            spawned(c.connect(tls).await.map_err(|e| PgError::connect(cfg, e))?)
        }
    };
    Ok(client)
}

/// Runs a connection's I/O on its own task; the client is what the caller keeps.
fn spawned<S, T>((client, connection): (Client, tokio_postgres::Connection<S, T>)) -> Client
where
    tokio_postgres::Connection<S, T>: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
    client
}

/// Refuses servers that cannot serve logical replication, naming the setting.
pub(crate) async fn check_server(client: &Client) -> Result<(), PgError> {
    let version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(PgError::query("server version"))?
        .get(0);
    if version < 140000 {
        return Err(PgError::Setup(format!(
            "PostgreSQL {}.{} is too old: logical replication as Tidemark reads it needs 14 or later",
            version / 10000,
            version % 10000 / 100
        )));
    }
    let wal_level: String = client.query_one("SHOW wal_level", &[]).await.map_err(PgError::query("wal_level"))?.get(0);
    if wal_level != "logical" {
        return Err(PgError::Setup(format!(
            "wal_level is '{wal_level}': set wal_level = logical in postgresql.conf (it takes a restart)"
        )));
    }
    Ok(())
}

/// The tables matching `patterns` (`schema.table` globs), sorted by schema and name.
/// A mirror's tables whose names start with `_` (`_trigger_log`, `_trigger_log_archive`,
/// `_hcmeta`, `_sf_event_log`) are Heroku Connect's own and left out.
pub(crate) async fn matching_tables(
    client: &Client,
    patterns: &[String],
    mirror: bool,
) -> Result<Vec<(String, String, u32, char)>, PgError> {
    let globs = patterns
        .iter()
        .map(|p| globset::Glob::new(p).map(|g| g.compile_matcher()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PgError::Setup(format!("tables: {e}")))?;
    let rows = client
        .query(
            "SELECT n.nspname, c.relname, c.oid, c.relreplident::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(PgError::query("tables"))?;
    let mut out = Vec::new();
    for row in rows {
        let (schema, name): (String, String) = (row.get(0), row.get(1));
        let oid: u32 = row.get(2);
        let ident: String = row.get(3);
        let full = format!("{schema}.{name}");
        if globs.iter().any(|g| g.is_match(&full)) && !(mirror && name.starts_with('_')) {
            out.push((schema, name, oid, ident.chars().next().unwrap_or('d')));
        }
    }
    Ok(out)
}

/// Makes sure `publication` exists and publishes every table in `tables`.
pub(crate) async fn ensure_publication(client: &Client, publication: &str, tables: &[PgTable]) -> Result<(), PgError> {
    let exists = client
        .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&publication])
        .await
        .map_err(PgError::query("publication"))?
        .is_some();
    let list = |ts: &[&PgTable]| ts.iter().map(|t| t.qualified()).collect::<Vec<_>>().join(", ");
    if !exists {
        let all: Vec<&PgTable> = tables.iter().collect();
        let sql = format!("CREATE PUBLICATION {} FOR TABLE {}", quote_ident(publication), list(&all));
        client.batch_execute(&sql).await.map_err(PgError::query("CREATE PUBLICATION (the user must own the tables)"))?;
        return Ok(());
    }
    let published: Vec<(String, String)> = client
        .query("SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1", &[&publication])
        .await
        .map_err(PgError::query("publication tables"))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let missing: Vec<&PgTable> =
        tables.iter().filter(|t| !published.iter().any(|(s, n)| *s == t.schema && *n == t.name)).collect();
    if !missing.is_empty() {
        let sql = format!("ALTER PUBLICATION {} ADD TABLE {}", quote_ident(publication), list(&missing));
        client.batch_execute(&sql).await.map_err(PgError::query("ALTER PUBLICATION … ADD TABLE"))?;
    }
    Ok(())
}

/// Catalog facts about type oids beyond the built-in ones.
pub(crate) async fn type_infos(client: &Client, oids: &[u32]) -> Result<HashMap<u32, TypeInfo>, PgError> {
    let rows = client
        .query(
            "SELECT oid, typname::text, typtype::text, typelem, typbasetype FROM pg_type WHERE oid = ANY($1)",
            &[&oids.to_vec()],
        )
        .await
        .map_err(PgError::query("types"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let info = TypeInfo {
                oid: r.get(0),
                name: r.get(1),
                typtype: r.get::<_, String>(2).chars().next().unwrap_or('b'),
                element: r.get(3),
                base: r.get(4),
            };
            (info.oid, info)
        })
        .collect())
}

/// Reads one table's columns and key.
pub(crate) async fn describe(
    client: &Client,
    schema: &str,
    name: &str,
    oid: u32,
    identity: char,
    mirror: bool,
) -> Result<PgTable, PgError> {
    let label = format!("{schema}.{name}");
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid, a.atttypmod FROM pg_attribute a \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(PgError::query("columns"))?;
    let raw: Vec<(String, u32, i32)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    let oids: Vec<u32> = raw.iter().map(|(_, t, _)| *t).collect();
    let mut infos = type_infos(client, &oids).await?;
    // Element and base types of arrays and domains.
    let more: Vec<u32> = infos.values().flat_map(|i| [i.element, i.base]).filter(|o| *o != 0 && !infos.contains_key(o)).collect();
    if !more.is_empty() {
        infos.extend(type_infos(client, &more).await?);
    }
    let mut columns = Vec::new();
    for (column, type_oid, typmod) in raw {
        let t = PgType::resolve(type_oid, typmod, &|o| infos.get(&o).cloned())
            .map_err(|e| PgError::Setup(format!("table {label}, column {column}: {e}")))?;
        if tidemark_lake::columns::METADATA_COLUMNS.contains(&column.as_str()) {
            return Err(PgError::Setup(format!("table {label}, column {column}: the name of a Tidemark metadata column")));
        }
        columns.push((column, t));
    }
    let index_key = |condition: &'static str| async move {
        let sql = format!(
            "SELECT a.attname::text FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indrelid = $1 AND {condition} ORDER BY k.n"
        );
        client.query(&sql, &[&oid]).await.map(|rows| rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<String>>())
    };
    let mut key = index_key("i.indisprimary").await.map_err(PgError::query("primary key"))?;
    if key.is_empty() && identity == 'i' {
        key = index_key("i.indisreplident").await.map_err(PgError::query("replica identity index"))?;
    }
    if key.is_empty() {
        if identity == 'f' {
            key = columns.iter().map(|(c, _)| c.clone()).collect();
        } else {
            return Err(PgError::Setup(format!(
                "table {label} has no primary key: add one, or run ALTER TABLE {} REPLICA IDENTITY FULL \
                 (its rows are then keyed by all their values)",
                format_args!("{}.{}", quote_ident(schema), quote_ident(name))
            )));
        }
    }
    if identity == 'n' {
        return Err(PgError::Setup(format!(
            "table {label} has REPLICA IDENTITY NOTHING: its updates and deletes carry no key; set it to DEFAULT or FULL"
        )));
    }
    if mirror {
        return mirror_table(schema, name, oid, identity, columns);
    }
    let lake_name = if schema == "public" { name.to_ascii_lowercase() } else { format!("{schema}_{name}").to_ascii_lowercase() };
    let source_columns = columns.iter().map(|(c, _)| c.clone()).collect();
    Ok(PgTable {
        schema: schema.to_owned(),
        name: name.to_owned(),
        oid,
        lake_name,
        columns,
        source_columns,
        key,
        copy_filter: None,
    })
}

/// A Heroku Connect table: under its object's name, keyed by `sfid` (as `Id`), its bookkeeping
/// columns left out.
fn mirror_table(schema: &str, name: &str, oid: u32, identity: char, all: Vec<(String, PgType)>) -> Result<PgTable, PgError> {
    let label = format!("{schema}.{name}");
    if !all.iter().any(|(c, _)| c == "sfid") {
        return Err(PgError::Setup(format!("table {label} has no sfid column: it is not a Heroku Connect mapping")));
    }
    if identity != 'f' {
        return Err(PgError::Setup(format!(
            "Heroku Connect table {label}: a delete would carry only the row's internal id, not its sfid; run \
             ALTER TABLE {}.{} REPLICA IDENTITY FULL",
            quote_ident(schema),
            quote_ident(name)
        )));
    }
    let (mut columns, mut source_columns) = (Vec::new(), Vec::new());
    for (column, t) in all {
        if let Some(lake) = lake_column(true, &column) {
            columns.push((lake, t));
            source_columns.push(column);
        }
    }
    Ok(PgTable {
        schema: schema.to_owned(),
        name: name.to_owned(),
        oid,
        lake_name: name.to_ascii_lowercase(),
        columns,
        source_columns,
        key: vec![tidemark_lake::columns::ID.to_owned()],
        copy_filter: Some("sfid IS NOT NULL"),
    })
}

/// Whether the slot exists, and its confirmed position.
pub(crate) async fn slot_position(client: &Client, slot: &str) -> Result<Option<Option<u64>>, PgError> {
    let row = client
        .query_opt("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", &[&slot])
        .await
        .map_err(PgError::query("replication slot"))?;
    Ok(row.map(|r| r.get::<_, Option<String>>(0).and_then(|t| crate::parse_lsn(&t))))
}

/// Emits a marker into the WAL; the stream is caught up once it arrives. Its position.
pub(crate) async fn emit_marker(client: &Client, prefix: &str) -> Result<u64, PgError> {
    let sql = format!("SELECT pg_logical_emit_message(false, {}, 'caught up')::text", quote_literal(prefix));
    let text: String = client.query_one(&sql, &[]).await.map_err(PgError::query("pg_logical_emit_message"))?.get(0);
    crate::parse_lsn(&text).ok_or_else(|| PgError::Setup(format!("unreadable WAL position {text}")))
}
