//! `tidemark serve-sql` and `tidemark catalog …`: the lake for other programs.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use secrecy::SecretString;
use tidemark_core::access::{QueryLogConfig, QueryLogTarget};
use tidemark_lake::{HistoryTable, LakeLocation};
use tidemark_query::ddl::{DdlOptions, DdlTable, Engine, ddl, ddl_marts, write_mart_manifests, write_symlink_manifests};
use tidemark_query::pg::{PgCredentials, PgServer, PgServerConfig, PgTls};
use tidemark_query::{QuerySession, ReadOptions};
use tidemark_sync::TidemarkConfig;

use crate::sql_cmd::existing_lake;

/// Where `serve-sql` listens unless told otherwise (PostgreSQL's port plus one, so a local
/// PostgreSQL keeps its own).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5433";

pub struct ServeArgs {
    pub listen: Option<SocketAddr>,
    pub user: Option<String>,
    pub password: Option<SecretString>,
}

/// The endpoint's settings: flags and environment first, then the config file's `sql` section.
pub fn serve_config(args: ServeArgs, config: Option<&TidemarkConfig>) -> anyhow::Result<PgServerConfig> {
    let settings = config.and_then(|c| c.sql.as_ref());
    let listen = match args.listen.or(settings.and_then(|s| s.listen)) {
        Some(l) => l,
        None => DEFAULT_LISTEN.parse()?,
    };
    let access = match (config, settings) {
        (Some(config), Some(settings)) => settings.access(&config.governance()?)?.map(Arc::new),
        _ => None,
    };
    let credentials = if access.is_some() {
        if args.user.is_some() || args.password.is_some() {
            bail!("--user and TIDEMARK_SQL_PASSWORD name one login; with sql.users, users log in as configured");
        }
        None
    } else {
        let user = args.user.or(settings.and_then(|s| s.user.clone()));
        let password = args.password.or(settings.and_then(|s| s.password.clone()));
        match (user, password) {
            (user, Some(password)) => Some(PgCredentials::new(user.unwrap_or_else(|| "tidemark".into()), password)),
            (Some(user), None) => bail!("sql user '{user}' has no password: set TIDEMARK_SQL_PASSWORD or sql.password"),
            (None, None) => None,
        }
    };
    let tls = settings.and_then(|s| s.tls.as_ref()).map(|tls| PgTls {
        cert_file: tls.cert_file.clone(),
        key_file: tls.key_file.clone(),
        required: tls.required.unwrap_or(true),
    });
    // Kept by default once users and roles say who may read what; otherwise when asked for.
    let query_log = match settings.and_then(|s| s.query_log.clone()) {
        Some(log) if log.to == QueryLogTarget::Off => None,
        Some(log) => Some(log.flush_every),
        None => access.is_some().then(|| QueryLogConfig::default().flush_every),
    };
    Ok(PgServerConfig { credentials, access, tls, query_log, ..PgServerConfig::new(listen) })
}

pub async fn serve(lake: LakeLocation, options: ReadOptions, config: PgServerConfig) -> anyhow::Result<()> {
    existing_lake(&lake)?;
    let session = QuerySession::open(lake, options).await?;
    let server = PgServer::bind_lake(&session, config).await?;
    // Scripts (and tests) read the address from this line, so it goes out first and whole.
    println!("listening on {} (postgres protocol); Ctrl-C stops", server.local_addr());
    server
        .serve(async {
            // If the signal cannot be watched the server runs until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await;
    Ok(())
}

async fn ddl_tables(lake: &LakeLocation) -> anyhow::Result<Vec<DdlTable>> {
    let mut tables = Vec::new();
    for table in lake.history_tables().await? {
        let history = HistoryTable::open(lake, &table).await?.with_context(|| format!("table {table} vanished while listing"))?;
        tables.push(DdlTable { object: table.clone(), location: lake.object_table_url(&table), schema: history.schema()? });
    }
    // A source's tables as `<source>_<table>`: an engine's schema is one namespace.
    for source in lake.sources().await? {
        for table in lake.source_tables(&source).await? {
            let history = HistoryTable::open_source(lake, &source, &table)
                .await?
                .with_context(|| format!("table {source}.{table} vanished while listing"))?;
            tables.push(DdlTable {
                object: format!("{source}_{table}"),
                location: lake.source_table_url(&source, &table),
                schema: history.schema()?,
            });
        }
    }
    Ok(tables)
}

pub async fn print_ddl(lake: LakeLocation, engine: Engine, options: DdlOptions) -> anyhow::Result<()> {
    existing_lake(&lake)?;
    let tables = ddl_tables(&lake).await?;
    let marts = ddl_marts(&lake).await?;
    if tables.is_empty() && marts.is_empty() {
        bail!("the lake at {} has no tables yet", lake.root());
    }
    print!("{}", ddl(engine, &tables, &marts, &options)?);
    Ok(())
}

pub async fn manifests(lake: LakeLocation) -> anyhow::Result<()> {
    existing_lake(&lake)?;
    let tables = lake.history_tables().await?;
    let marts = lake.mart_tables().await?;
    for m in write_symlink_manifests(&lake, &tables).await?.into_iter().chain(write_mart_manifests(&lake, &marts).await?) {
        println!("{}: {} files listed in {}", m.object, m.files, m.location);
    }
    Ok(())
}
