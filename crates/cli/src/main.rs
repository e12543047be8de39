//! The `tidemark` binary: wires the crates together behind one command line.

// Many small, short-lived allocations (rows, JSON records): mimalloc frees them far faster
// than the system allocator and fragments less, which the 1M-Account org's memory budget needs.
// Built without transparent huge pages (`no_thp`): on hosts that grant them on request, a touch
// of a mostly free arena region faults in 2 MiB at a time; without them a 1M-key model load
// peaks about 80 MB lower at the same speed (BENCHMARKS.md, "Dimension models").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod catalog_cmd;
mod demo;
mod govern_cmd;
mod lake_cmd;
mod maintain_cmd;
mod model_cmd;
mod progress;
mod push_cmd;
mod restore_cmd;
mod shell;
mod source_cmd;
mod sql_cmd;
mod validate_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::lake_cmd::Outcome;

#[derive(Debug, Parser)]
#[command(name = "tidemark", version, about = "A self-hosted CRM data lakehouse")]
struct Cli {
    /// Log lines as JSON objects (for log collectors) instead of text.
    #[arg(long, global = true, env = "TIDEMARK_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the main job on a simulated org: sync, a round of changes, sync again.
    Demo {
        /// Where to write the lake (a new or empty folder, or an earlier demo's with --fresh).
        #[arg(long, default_value = "./tidemark-demo")]
        lake: String,
        /// Size of the simulated org.
        #[arg(long, default_value_t = 2_000)]
        accounts: u64,
        /// Seed of the simulated org's data and changes (same seed, same lake).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Delete the lake an earlier demo left in --lake and start afresh.
        #[arg(long)]
        fresh: bool,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Replicate Salesforce objects into the lake (incremental; resumes where the lake ends).
    Sync {
        /// The configuration file (YAML: salesforce, lake, sync).
        #[arg(long, short, default_value = "tidemark.yaml", env = "TIDEMARK_CONFIG")]
        config: PathBuf,
        /// Lake location (folder or s3:// URL); overrides lake.location.
        #[arg(long)]
        lake: Option<String>,
        /// Only these objects (comma-separated API names).
        #[arg(long, value_delimiter = ',')]
        objects: Vec<String>,
        /// Only these sources of the config's `sources:` (comma-separated names), not Salesforce.
        #[arg(long = "source", value_delimiter = ',')]
        sources: Vec<String>,
        /// Re-read everything and reconcile Ids (appends only what the lake lacks).
        #[arg(long)]
        full: bool,
        /// With `--source` (logical replication sources): keep streaming until SIGINT or
        /// SIGTERM, committing to the lake within about a second of each change's commit.
        #[arg(long, requires = "sources")]
        follow: bool,
        /// No progress bars (progress goes to the log instead).
        #[arg(long)]
        quiet: bool,
    },
    /// Per object: last sync, bookmark, versions, live records, schema changes.
    Status {
        /// The configuration file, for lake.location.
        #[arg(long, short, env = "TIDEMARK_CONFIG")]
        config: Option<PathBuf>,
        /// Lake location (folder or s3:// URL); overrides lake.location.
        #[arg(long)]
        lake: Option<String>,
        /// List the schema events instead.
        #[arg(long)]
        events: bool,
    },
    /// Check the lake for duplicate versions and other damage; --repair fixes what it finds.
    Doctor {
        /// The configuration file, for lake.location.
        #[arg(long, short, env = "TIDEMARK_CONFIG")]
        config: Option<PathBuf>,
        /// Lake location (folder or s3:// URL); overrides lake.location.
        #[arg(long)]
        lake: Option<String>,
        /// Remove duplicate versions (one commit per table, under the table's lease) and restore
        /// the append-only property.
        #[arg(long)]
        repair: bool,
    },
    /// Compact small files, write checkpoints, vacuum unreferenced files and clean up expired
    /// log entries, table by table (settings: the config's `maintenance:` section).
    ///
    /// A table a writer holds is skipped (exit code 2) and a writer waits for the table
    /// maintenance holds, so it is safe beside running syncs.
    Maintain {
        /// The configuration file, for lake.location and maintenance.
        #[arg(long, short, env = "TIDEMARK_CONFIG")]
        config: Option<PathBuf>,
        /// Lake location (folder or s3:// URL); overrides lake.location.
        #[arg(long)]
        lake: Option<String>,
        /// Only these tables (comma-separated paths in the lake: objects/account,marts/contact_dim).
        #[arg(long, value_delimiter = ',')]
        tables: Option<Vec<String>>,
        /// Report what would be compacted and vacuumed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Query the lake with SQL: one query, a script (--file or stdin), or an interactive shell.
    ///
    /// Every object is three tables: `account` (live records), `account_history` (every
    /// version) and `account_scd2` (validity windows); `as_of('account', TIMESTAMP '...')`
    /// gives the state at an instant.
    Sql {
        /// The query (several statements may be separated by ';'). None: the shell.
        query: Option<String>,
        /// Run the statements in this file.
        #[arg(long, short)]
        file: Option<PathBuf>,
        /// The configuration file, for lake.location.
        #[arg(long, short, env = "TIDEMARK_CONFIG")]
        config: Option<PathBuf>,
        /// Lake location (folder or s3:// URL); overrides lake.location.
        #[arg(long)]
        lake: Option<String>,
        /// Record time: every `<object>` table shows the state at this instant
        /// (2025-01-31T00:00:00Z, 2025-01-31 12:00:00 in UTC, or 2025-01-31).
        #[arg(long)]
        as_of: Option<String>,
        /// Lake time: read each Delta table at its own commit number N; a query naming tables with
        /// fewer commits fails and lists them (--table-timestamp reads every table at one instant).
        #[arg(long)]
        table_version: Option<u64>,
        /// Lake time: read each Delta table as it was at this commit time.
        #[arg(long)]
        table_timestamp: Option<String>,
        /// table, csv, json (one object per line) or parquet (needs --out).
        #[arg(long, default_value = "table")]
        format: tidemark_query::Format,
        /// Write the result to this file instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Print each statement's time to standard error.
        #[arg(long)]
        timing: bool,
    },
    /// Serve the lake over the Postgres wire protocol (psql, BI tools): the same SQL as `sql`.
    ///
    /// One login reading everything (TIDEMARK_SQL_PASSWORD or sql.password; user: --user,
    /// TIDEMARK_SQL_USER, sql.user, or "tidemark"), or sql.users with roles granting objects,
    /// columns and rows. Beyond loopback a password and TLS (sql.tls) are required.
    ServeSql {
        /// The configuration file, for lake.location and the sql section.
        #[arg(long, short, env = "TIDEMARK_CONFIG")]
        config: Option<PathBuf>,
        /// Lake location (folder or s3:// URL); overrides lake.location.
        #[arg(long)]
        lake: Option<String>,
        /// Address to listen on [default: 127.0.0.1:5433, or sql.listen].
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// The user clients log in as [default: sql.user, or "tidemark"].
        #[arg(long, env = "TIDEMARK_SQL_USER")]
        user: Option<String>,
        /// Record time for every `<object>` table, as `sql --as-of`.
        #[arg(long)]
        as_of: Option<String>,
        /// Lake time: read every table at this Delta version, as `sql --table-version` (grants,
        /// column rules and row filters are today's).
        #[arg(long, conflicts_with = "table_timestamp")]
        table_version: Option<u64>,
        /// Lake time: read every table as of this commit time, as `sql --table-timestamp`.
        #[arg(long)]
        table_timestamp: Option<String>,
    },
    /// Register the lake in other engines.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Erase records (the GDPR right to be forgotten): every version of them removed from the
    /// object's history, with no trace left under the lake (data files, log statistics,
    /// checkpoints); the Ids suppressed from later syncs; an audit record in
    /// `_tidemark/erasures` (Ids and counts, never values). Re-run after a crash to complete it.
    Erase {
        /// The Salesforce object.
        object: String,
        /// A file of record Ids, one per line.
        #[arg(long, required_unless_present = "where")]
        ids: Option<PathBuf>,
        /// A SQL predicate over the object's history: every record with a version matching it.
        #[arg(long = "where", id = "where", conflicts_with = "ids")]
        predicate: Option<String>,
        /// Say how many records and versions would be erased; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Why, for the audit record (a ticket number, say; never the subject's data).
        #[arg(long, default_value = "")]
        reason: String,
        /// Rectify instead of erase: set FIELD to VALUE in every version of the records (which
        /// stay, and keep syncing); the old values leave no trace. Repeatable.
        #[arg(long, value_name = "FIELD=VALUE")]
        rectify: Vec<String>,
        /// Instead, lift the suppression of the Ids (erased earlier): syncs read them again, and
        /// `tidemark sync --full` brings back their current state.
        #[arg(long, requires = "ids", conflicts_with_all = ["rectify", "dry_run"])]
        lift: bool,
        /// Who asks, for the audit record [default: $USER].
        #[arg(long, env = "USER", default_value = "unknown")]
        by: String,
        #[command(flatten)]
        args: model_cmd::ModelArgs,
    },
    /// Governance (config `governance:`): field policies over the stored history.
    Govern {
        #[command(subcommand)]
        command: GovernCommand,
    },
    /// Dimension models: SCD Type 2 dimensions built from landed files (config `models:`).
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Push flows (config `push:`): send what changed in a query's result to Salesforce.
    ///
    /// `tidemark push FLOW` runs one flow (`--dry-run`: show what would be sent, send nothing);
    /// `tidemark push status [FLOW]` lists the runs and the rows Salesforce rejected. The run log
    /// and the rejected rows are also tables: `tidemark sql "SELECT * FROM push_runs"` and
    /// `push_<flow>_errors`.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Push {
        #[command(subcommand)]
        command: Option<PushCommand>,
        #[command(flatten)]
        run: push_cmd::RunArgs,
    },
    /// Set records back to their state at an instant of the lake's history: changed fields
    /// updated back, deleted records undeleted (or re-created, lookups re-linked to new Ids).
    ///
    /// The objects are synced first (unless --no-sync), since a restore compares the instant
    /// with the lake's latest state. Records not restored are in `restore_<object>_errors`; re-created records' new Ids in
    /// `restore_id_map`; runs in `restore_runs` (all three readable by `tidemark sql`).
    Restore(restore_cmd::RestoreArgs),
    /// The org's objects and whether they are synced (and why not).
    Objects {
        /// The configuration file (YAML: salesforce, sync).
        #[arg(long, short, default_value = "tidemark.yaml", env = "TIDEMARK_CONFIG")]
        config: PathBuf,
        /// Instead, suggest field policies for the synced objects' personal fields (emails,
        /// phones, names, addresses, encrypted fields), as a `governance:` section to review.
        #[arg(long)]
        pii: bool,
    },
    /// Check the configuration offline (every section, pipelines included) and summarise it;
    /// errors name the field. With --env (or TIDEMARK_ENV), `tidemark.<env>.yaml` beside the
    /// config is laid over it first, as every command does.
    Validate {
        /// The configuration file to check.
        #[arg(long, short, default_value = "tidemark.yaml", env = "TIDEMARK_CONFIG")]
        config: PathBuf,
        /// The environment whose overlay to apply (`prod`: tidemark.prod.yaml).
        #[arg(long)]
        env: Option<String>,
    },
    /// The embedded Salesforce org simulator.
    Sim {
        #[command(subcommand)]
        command: tidemark_sfsim::cli::SimCommand,
    },
}

#[derive(Debug, Subcommand)]
enum GovernCommand {
    /// Bring every stored version under the field policies its columns record (those of the
    /// last sync: change the configuration, sync, then apply). Rewrites only the files written
    /// under another policy, then deletes the old files and their log statistics at once.
    Apply {
        /// Only these tables (`Object` or `<source>.<table>`) [default: all].
        tables: Vec<String>,
        /// Say what would be rewritten; write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        args: model_cmd::ModelArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Load the models' new input into their dimensions (one Delta commit per model).
    Run {
        /// Models to load [default: every model, in name order].
        names: Vec<String>,
        /// The load's date (YYYY-MM-DD) [default: today, UTC]; never before the last load's.
        #[arg(long)]
        run_date: Option<chrono::NaiveDate>,
        /// The memory a load's sorts and joins may hold before they spill to disk: bytes, or a
        /// number with KiB, MiB or GiB [default: 256MiB].
        #[arg(long, value_parser = model_cmd::parse_memory_limit)]
        memory_limit: Option<usize>,
        #[command(flatten)]
        args: model_cmd::ModelArgs,
    },
    /// Print the statements that perform one load of a model in another engine.
    Sql {
        /// The model.
        name: String,
        /// duckdb, redshift, spark or trino.
        #[arg(long)]
        engine: tidemark_models::engine_sql::Engine,
        /// The load's date (YYYY-MM-DD) [default: today, UTC].
        #[arg(long)]
        run_date: Option<chrono::NaiveDate>,
        #[command(flatten)]
        args: model_cmd::ModelArgs,
    },
    /// Per model: loads so far, the last run date, rows, and files waiting for the next load.
    Status {
        #[command(flatten)]
        args: model_cmd::ModelArgs,
    },
}

/// `tidemark push status`; a flow is run by `tidemark push FLOW`, so no flow is named `status`.
#[derive(Debug, Subcommand)]
enum PushCommand {
    /// Per flow: its runs (newest last) and the rows not delivered yet, by key.
    Status {
        /// Only this flow [default: every flow in the config].
        flow: Option<String>,
        /// Runs shown per flow, the latest; 0 shows every run.
        #[arg(long, default_value_t = 20)]
        last: usize,
        #[command(flatten)]
        args: push_cmd::PushArgs,
    },
}

#[derive(Debug, Subcommand)]
enum CatalogCommand {
    /// Print the statements that register the lake's tables and the live/SCD2 views.
    Ddl {
        /// The configuration file, for lake.location.
        #[arg(long, short, env = "TIDEMARK_CONFIG")]
        config: Option<PathBuf>,
        /// Lake location (folder or s3:// URL); overrides lake.location.
        #[arg(long)]
        lake: Option<String>,
        /// duckdb, athena, trino, spark or redshift-spectrum.
        #[arg(long)]
        engine: tidemark_query::ddl::Engine,
        /// Database or schema to create the relations in.
        #[arg(long)]
        schema: Option<String>,
        /// Trino: the Delta Lake connector's catalog [default: delta].
        #[arg(long)]
        trino_catalog: Option<String>,
        /// Redshift: the IAM role ARN for the external schema.
        #[arg(long)]
        iam_role: Option<String>,
        /// DuckDB: LOAD the delta extension from this file (offline machines).
        #[arg(long)]
        duckdb_extension: Option<String>,
    },
    /// Write each table's symlink manifest (what Redshift Spectrum reads); run after each sync.
    Manifest {
        /// The configuration file, for lake.location.
        #[arg(long, short, env = "TIDEMARK_CONFIG")]
        config: Option<PathBuf>,
        /// Lake location (folder or s3:// URL); overrides lake.location.
        #[arg(long)]
        lake: Option<String>,
    },
}

async fn run(command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Demo { lake, accounts, seed, fresh, quiet } => {
            demo::demo(demo::DemoArgs { lake, accounts, seed, fresh, progress: !quiet }).await
        }
        Command::Sync { config, lake, objects, sources, full, follow, quiet } => {
            lake_cmd::sync(lake_cmd::SyncArgs { config, lake, objects, sources, full, follow, progress: !quiet }).await
        }
        Command::Status { config, lake, events } => {
            let config = config.map(|c| lake_cmd::load_config(&c)).transpose()?;
            let lake = lake_cmd::existing_lake(lake.as_deref(), config.as_ref()).await?;
            lake_cmd::status(&lake, events).await
        }
        Command::Doctor { config, lake, repair } => {
            let config = config.map(|c| lake_cmd::load_config(&c)).transpose()?;
            let lake = lake_cmd::existing_lake(lake.as_deref(), config.as_ref()).await?;
            lake_cmd::doctor(lake, repair).await
        }
        Command::Maintain { config, lake, tables, dry_run } => {
            let config = config.map(|c| lake_cmd::load_config(&c)).transpose()?;
            let lake = lake_cmd::existing_lake(lake.as_deref(), config.as_ref()).await?;
            let settings = config.map(|c| c.maintenance).unwrap_or_default();
            maintain_cmd::maintain(lake, settings, tables, dry_run).await
        }
        Command::Sql { query, file, config, lake, as_of, table_version, table_timestamp, format, out, timing } => {
            let config = config.map(|c| lake_cmd::load_config(&c)).transpose()?;
            let lake = lake_cmd::existing_lake(lake.as_deref(), config.as_ref()).await?;
            let args = sql_cmd::SqlArgs { query, file, as_of, table_version, table_timestamp, format, out, timing };
            sql_cmd::sql(lake, args).await.map(|()| Outcome::Complete)
        }
        Command::ServeSql { config, lake, listen, user, as_of, table_version, table_timestamp } => {
            let config = config.map(|c| lake_cmd::load_config(&c)).transpose()?;
            let lake = lake_cmd::existing_lake(lake.as_deref(), config.as_ref()).await?;
            let password = std::env::var("TIDEMARK_SQL_PASSWORD").ok().map(secrecy::SecretString::from);
            let server = catalog_cmd::serve_config(catalog_cmd::ServeArgs { listen, user, password }, config.as_ref())?;
            let options = sql_cmd::read_options(as_of.as_deref(), table_version, table_timestamp.as_deref())?;
            catalog_cmd::serve(lake, options, server).await.map(|()| Outcome::Complete)
        }
        Command::Catalog { command } => {
            let (config, lake) = match &command {
                CatalogCommand::Ddl { config, lake, .. } | CatalogCommand::Manifest { config, lake } => (config, lake),
            };
            let config = config.as_ref().map(|c| lake_cmd::load_config(c)).transpose()?;
            let lake = lake_cmd::existing_lake(lake.as_deref(), config.as_ref()).await?;
            match command {
                CatalogCommand::Ddl { engine, schema, trino_catalog, iam_role, duckdb_extension, .. } => {
                    let options = tidemark_query::ddl::DdlOptions {
                        schema,
                        trino_catalog,
                        iam_role,
                        duckdb_extension,
                        ..Default::default()
                    };
                    catalog_cmd::print_ddl(lake, engine, options).await
                }
                CatalogCommand::Manifest { .. } => catalog_cmd::manifests(lake).await,
            }
            .map(|()| Outcome::Complete)
        }
        Command::Erase { object, ids, predicate, dry_run, reason, rectify, lift, by, args } => {
            let request = govern_cmd::EraseRequest { object, ids, predicate, dry_run, by, reason, rectify, lift };
            govern_cmd::erase(args, request).await
        }
        Command::Govern { command: GovernCommand::Apply { tables, dry_run, args } } => {
            govern_cmd::apply(args, tables, dry_run).await
        }
        Command::Model { command } => match command {
            ModelCommand::Run { names, run_date, memory_limit, args } => {
                model_cmd::run(args, names, run_date, memory_limit).await
            }
            ModelCommand::Status { args } => model_cmd::status(args).await,
            ModelCommand::Sql { name, engine, run_date, args } => model_cmd::sql(args, &name, engine, run_date).await,
        },
        Command::Push { command, run } => match command {
            Some(PushCommand::Status { flow, last, args }) => push_cmd::status(args, flow, last).await,
            None => push_cmd::run(run).await,
        },
        Command::Restore(args) => restore_cmd::run(args).await,
        Command::Objects { config, pii } => lake_cmd::objects(&config, pii).await,
        Command::Validate { config, env } => validate_cmd::validate(&config, env.as_deref()),
        Command::Sim { command } => tidemark_sfsim::cli::run(command).await.map(|()| Outcome::Complete),
    }
}

/// Dependencies whose debug and trace logs carry record values (file statistics, plan literals,
/// request bodies): capped at `info` unless `RUST_LOG` names them itself.
const CAPPED_TARGETS: [&str; 12] = [
    "deltalake",
    "datafusion",
    "parquet",
    "arrow",
    "object_store",
    "hyper",
    "h2",
    "reqwest",
    "rustls",
    "aws",
    "sqlparser",
    "pgwire",
];

/// delta-kernel's own log lines: every error it logs also reaches us as an error, which the
/// command prints with its cause chain; its copy would add a backtrace (with `RUST_BACKTRACE`)
/// and, for corrupt files, their content. Silent unless `RUST_LOG` names it.
const SILENCED_TARGETS: [&str; 2] = ["buoyant_kernel", "delta_kernel"];

/// The log filter: `RUST_LOG` when set, else `default`; [`SILENCED_TARGETS`] off and
/// [`CAPPED_TARGETS`] at most `info` (when the default level is more verbose), each unless the
/// filter names it.
fn log_filter(rust_log: Option<&str>, default: &str) -> String {
    let spec = rust_log.map(str::trim).filter(|s| !s.is_empty()).unwrap_or(default);
    let directives: Vec<&str> = spec.split(',').map(str::trim).filter(|d| !d.is_empty()).collect();
    let named = |target: &str| directives.iter().any(|d| d.split(['=', '[']).next().is_some_and(|t| t == target));
    // The last bare level is the default for every target no directive names.
    let global = directives.iter().rev().find(|d| !d.contains('=') && !d.contains('[')).map(|d| d.to_ascii_lowercase());
    let verbose = matches!(global.as_deref(), Some("debug" | "trace"));
    let mut filter = spec.to_owned();
    for target in SILENCED_TARGETS.into_iter().filter(|t| !named(t)) {
        filter.push_str(&format!(",{target}=off"));
    }
    for target in CAPPED_TARGETS.into_iter().filter(|t| verbose && !named(t) && !SILENCED_TARGETS.contains(t)) {
        filter.push_str(&format!(",{target}=info"));
    }
    filter
}

/// The exit code of a command that failed: 3 when another run holds what it needed.
fn failure_code(e: &anyhow::Error) -> u8 {
    let concurrent = e.chain().any(|c| {
        c.downcast_ref::<tidemark_lake::LakeError>().is_some_and(tidemark_lake::LakeError::is_concurrent_run)
            || c.downcast_ref::<tidemark_models::ModelError>()
                .is_some_and(|m| matches!(m, tidemark_models::ModelError::Lake(l) if l.is_concurrent_run()))
            || c.downcast_ref::<tidemark_sync::SyncError>()
                .is_some_and(|s| matches!(s, tidemark_sync::SyncError::Lake(l) if l.is_concurrent_run()))
            || c.downcast_ref::<tidemark_push::PushError>()
                .is_some_and(|p| matches!(p, tidemark_push::PushError::Lake(l) if l.is_concurrent_run()))
    });
    if concurrent { 3 } else { 1 }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Printing commands end quietly when their reader goes away (`tidemark status | head`),
    // as Unix tools do. Servers keep ignoring SIGPIPE: a client hanging up must not stop them.
    if !matches!(cli.command, Command::ServeSql { .. } | Command::Sim { .. }) {
        // SAFETY: called before any thread starts; restores the default disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    // On a terminal the progress bars tell the story and only warnings are logged; otherwise
    // (cron, CI, containers) progress goes to the log at info level. RUST_LOG overrides both.
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    let default = if terminal { "warn" } else { "warn,tidemark=info" };
    let spec = log_filter(std::env::var("RUST_LOG").ok().as_deref(), default);
    let filter = tracing_subscriber::EnvFilter::try_new(&spec).unwrap_or_else(|e| {
        eprintln!("warning: RUST_LOG is not a valid filter ({e}); logging warnings only");
        tracing_subscriber::EnvFilter::new("warn")
    });
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(terminal).with_writer(std::io::stderr);
    if cli.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    let result = tokio::runtime::Runtime::new().map_err(anyhow::Error::from).and_then(|rt| rt.block_on(run(cli.command)));
    match result {
        Ok(Outcome::Complete) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::FAILURE,
        Ok(Outcome::Incomplete) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(failure_code(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_flag_and_command_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} --{}", arg.get_long().unwrap_or(arg.get_id().as_str())));
                }
            }
            for sub in cmd.get_subcommands() {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(sub_path.clone());
                }
                walk(sub, &sub_path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "tidemark", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }

    #[test]
    fn push_takes_a_flow_or_the_status_subcommand() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        let Command::Push { command: None, run } =
            parse(&["tidemark", "push", "tier", "--dry-run", "--sample", "3"]).unwrap().command
        else {
            panic!("not a run")
        };
        assert_eq!((run.flow.as_deref(), run.dry_run, run.sample), (Some("tier"), true, 3));
        let Command::Push { command: None, run } = parse(&["tidemark", "push", "tier"]).unwrap().command else {
            panic!("not a run")
        };
        assert_eq!((run.dry_run, run.sample, run.memory_limit), (false, 10, None));
        let Command::Push { command: Some(PushCommand::Status { flow, last, .. }), .. } =
            parse(&["tidemark", "push", "status", "tier"]).unwrap().command
        else {
            panic!("not status")
        };
        assert_eq!((flow.as_deref(), last), (Some("tier"), 20));
        let Command::Push { command: Some(PushCommand::Status { flow: None, .. }), .. } =
            parse(&["tidemark", "push", "status"]).unwrap().command
        else {
            panic!("not status")
        };
        // A flow is required without `status`. After a run's option `status` is no subcommand
        // but a flow name, which the config refuses: never status with the option ignored.
        assert!(parse(&["tidemark", "push"]).is_err());
        let Command::Push { command: None, run } = parse(&["tidemark", "push", "--dry-run", "status"]).unwrap().command else {
            panic!("not a run")
        };
        assert_eq!(run.flow.as_deref(), Some("status"));
        assert!(parse(&["tidemark", "push", "status", "--dry-run"]).is_err());
        assert!(parse(&["tidemark", "push", "tier", "--sample", "3"]).is_err());
        assert!(parse(&["tidemark", "push", "tier", "other"]).is_err());
    }

    #[test]
    fn a_push_flow_held_by_another_run_exits_3() {
        let held = tidemark_lake::LakeError::LeaseLost { resource: "push/tier".into(), reason: "taken over".into() };
        let e = anyhow::Error::from(tidemark_push::PushError::Lake(held)).context("push tier");
        assert_eq!(failure_code(&e), 3);
    }

    #[test]
    fn dependency_logs_are_capped_unless_named() {
        assert_eq!(log_filter(None, "warn"), "warn,buoyant_kernel=off,delta_kernel=off");
        // Never raised above the user's own level.
        assert_eq!(log_filter(Some("warn"), "info"), "warn,buoyant_kernel=off,delta_kernel=off");
        let f = log_filter(Some("info,tidemark_sync=trace"), "warn");
        assert!(!f.contains("=info"), "{f}");
        let f = log_filter(Some("trace"), "warn");
        assert!(f.starts_with("trace,") && f.contains(",deltalake=info") && f.contains(",datafusion=info"), "{f}");
        let f = log_filter(Some("debug,datafusion=trace,buoyant_kernel=debug"), "warn");
        assert!(!f.contains("datafusion=info") && !f.contains("buoyant_kernel=off") && f.contains("delta_kernel=off"), "{f}");
        // The capped filter parses.
        tracing_subscriber::EnvFilter::try_new(log_filter(Some("trace,tidemark_sync=debug"), "warn")).unwrap();
    }
}
