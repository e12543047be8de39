//! The `tidemark` binary: wires the crates together behind one command line.

// Many small, short-lived allocations (rows, JSON records): mimalloc frees them far faster
// than the system allocator and fragments less, which the 1M-Account org's memory budget needs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "tidemark", version, about = "A self-hosted CRM data lakehouse")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The embedded Salesforce org simulator.
    Sim {
        #[command(subcommand)]
        command: tidemark_sfsim::cli::SimCommand,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let result = tokio::runtime::Runtime::new().map_err(anyhow::Error::from).and_then(|rt| {
        rt.block_on(async {
            match cli.command {
                Command::Sim { command } => tidemark_sfsim::cli::run(command).await,
            }
        })
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
