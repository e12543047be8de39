//! Command line of the simulator, shared by `tidemark-sfsim` and `tidemark sim`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use clap::{Args, Parser, Subcommand};

use crate::{SimConfig, SimServer};

#[derive(Debug, Parser)]
#[command(name = "tidemark-sfsim", version, about = "An offline Salesforce org (REST, Bulk API, OAuth)")]
pub struct Cli {
    #[command(subcommand)]
    pub command: SimCommand,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve a simulated org over HTTP(S). Prints one JSON line with the URL and credentials.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Seed for generated data and fault injection.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Accounts to generate (children are proportional).
    #[arg(long, default_value_t = 100)]
    pub accounts: u64,
    /// Rolling 24-hour API request allocation.
    #[arg(long, default_value_t = 1_000_000)]
    pub daily_api_requests: u64,
    /// How long access tokens stay valid, in minutes of org time (then 401 INVALID_SESSION_ID).
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..))]
    pub token_lifetime_minutes: u32,
    /// Use the wall clock instead of a frozen org clock moved through the admin API.
    #[arg(long)]
    pub wall_clock: bool,
    /// Stamp SystemModstamp and the other audit datetimes with milliseconds (Salesforce, and
    /// the default, truncate them to the whole second).
    #[arg(long)]
    pub millisecond_stamps: bool,
    /// Serve HTTPS with a generated certificate; the CA to trust is written to `--cert-dir`.
    #[arg(long)]
    pub tls: bool,
    /// Where `--tls` writes the CA certificate (default: a fresh directory under the temp dir).
    #[arg(long, requires = "tls")]
    pub cert_dir: Option<std::path::PathBuf>,
    /// PEM X.509 certificate of the connected app, enabling the OAuth JWT bearer flow.
    #[arg(long)]
    pub jwt_certificate: Option<std::path::PathBuf>,
    /// Persist the org here: loaded at start when a snapshot exists, saved on shutdown and by
    /// `POST /__admin/save`.
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// Require this value in `X-Admin-Token` on `/__admin/*`.
    #[arg(long, env = "TIDEMARK_SIM_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
}

impl ServeArgs {
    pub fn config(&self) -> SimConfig {
        SimConfig {
            seed: self.seed,
            accounts: self.accounts,
            daily_api_requests: self.daily_api_requests,
            manual_clock: !self.wall_clock,
            millisecond_stamps: self.millisecond_stamps,
            token_lifetime: chrono::Duration::minutes(i64::from(self.token_lifetime_minutes)),
            data_dir: self.data_dir.clone(),
            admin_token: self.admin_token.clone(),
            ..SimConfig::default()
        }
    }
}

/// Runs a parsed simulator command to completion.
pub async fn run(command: SimCommand) -> anyhow::Result<()> {
    match command {
        SimCommand::Serve(args) => {
            let addr = SocketAddr::new(args.host, args.port);
            let mut config = args.config();
            if let Some(path) = &args.jwt_certificate {
                let pem = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("reading --jwt-certificate {}: {e}", path.display()))?;
                config.jwt_certificate_pem = Some(pem);
            }
            let org = SimServer::load_or_build_org(&config)?;
            let mut server = SimServer::new(config);
            if args.tls {
                server = server.with_tls(args.cert_dir.clone().unwrap_or_else(|| crate::tls::default_cert_dir(addr)));
            }
            let handle = server.start_with_org(org, addr).await?;
            println!("{}", serde_json::to_string(&handle.credentials)?);
            tokio::signal::ctrl_c().await?;
            if let Some(dir) = &handle.state.config.data_dir {
                crate::persist::save(&handle.state.org.read(), dir)?;
            }
            handle.shutdown().await;
            Ok(())
        }
    }
}

/// Entry point of the `tidemark-sfsim` binary.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run(cli.command))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_flags_shape_the_config() {
        let cli =
            Cli::try_parse_from(["tidemark-sfsim", "serve", "--accounts", "7", "--seed", "9", "--token-lifetime-minutes", "5"])
                .expect("parses");
        let SimCommand::Serve(args) = cli.command;
        let config = args.config();
        assert_eq!((config.accounts, config.seed), (7, 9));
        assert_eq!(config.token_lifetime, chrono::Duration::minutes(5));
        assert!(!config.millisecond_stamps, "whole-second stamps unless asked");
        let cli = Cli::try_parse_from(["tidemark-sfsim", "serve", "--millisecond-stamps"]).expect("parses");
        let SimCommand::Serve(args) = cli.command;
        assert!(args.config().millisecond_stamps);
        assert!(Cli::try_parse_from(["tidemark-sfsim", "serve", "--token-lifetime-minutes", "0"]).is_err());
        assert!(Cli::try_parse_from(["tidemark-sfsim", "serve", "--cert-dir", "/tmp/x"]).is_err(), "--cert-dir needs --tls");
    }
}
