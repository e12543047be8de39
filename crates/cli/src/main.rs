//! The `tidemark` binary: wires the crates together behind one command line.

// Many small, short-lived allocations (rows, JSON records): mimalloc frees them far faster
// than the system allocator and fragments less, which the 1M-Account org's memory budget needs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod demo;
mod lake_cmd;
mod progress;

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
        /// Where to write the lake.
        #[arg(long, default_value = "./tidemark-demo")]
        lake: String,
        /// Size of the simulated org.
        #[arg(long, default_value_t = 2_000)]
        accounts: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Replicate Salesforce objects into the lake (incremental; resumes where the lake ends).
    Sync {
        #[arg(long, short, default_value = "tidemark.yaml", env = "TIDEMARK_CONFIG")]
        config: PathBuf,
        /// Lake location (folder or s3:// URL); overrides lake.location.
        #[arg(long)]
        lake: Option<String>,
        /// Only these objects (comma-separated API names).
        #[arg(long, value_delimiter = ',')]
        objects: Vec<String>,
        /// Re-read everything and reconcile Ids (appends only what the lake lacks).
        #[arg(long)]
        full: bool,
        #[arg(long)]
        quiet: bool,
    },
    /// Per object: last sync, bookmark, versions, live records, schema changes.
    Status {
        #[arg(long, short, env = "TIDEMARK_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long)]
        lake: Option<String>,
        /// List the schema events instead.
        #[arg(long)]
        events: bool,
    },
    /// The org's objects and whether they are synced (and why not).
    Objects {
        #[arg(long, short, default_value = "tidemark.yaml", env = "TIDEMARK_CONFIG")]
        config: PathBuf,
    },
    /// The embedded Salesforce org simulator.
    Sim {
        #[command(subcommand)]
        command: tidemark_sfsim::cli::SimCommand,
    },
}

async fn run(command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Demo { lake, accounts, seed, quiet } => demo::demo(demo::DemoArgs { lake, accounts, seed, progress: !quiet }).await,
        Command::Sync { config, lake, objects, full, quiet } => {
            lake_cmd::sync(lake_cmd::SyncArgs { config, lake, objects, full, progress: !quiet }).await
        }
        Command::Status { config, lake, events } => {
            let config = config.map(|c| lake_cmd::load_config(&c)).transpose()?;
            let lake = lake_cmd::lake_location(lake.as_deref(), config.as_ref())?;
            lake_cmd::status(&lake, events).await
        }
        Command::Objects { config } => lake_cmd::objects(&config).await,
        Command::Sim { command } => tidemark_sfsim::cli::run(command).await.map(|()| Outcome::Complete),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // On a terminal the progress bars tell the story and only warnings are logged; otherwise
    // (cron, CI, containers) progress goes to the log at info level. RUST_LOG overrides both.
    use std::io::IsTerminal;
    let default = if std::io::stderr().is_terminal() { "warn" } else { "warn,tidemark=info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
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
            ExitCode::FAILURE
        }
    }
}
