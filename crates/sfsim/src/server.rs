//! Running the simulator: in-process on an ephemeral port (tests, the demo) or as a server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use secrecy::ExposeSecret;
use serde::Serialize;

use crate::api::{self, AppState, SimState};
use crate::config::SimConfig;
use crate::org::{Org, OrgClock};

/// What a client needs to reach and log in to a running simulator. Printed as one JSON line by
/// `serve`; secrets are deliberately included (they are the simulator's own fake credentials).
#[derive(Clone, Serialize)]
pub struct Credentials {
    pub base_url: String,
    pub instance_url: String,
    pub username: String,
    pub password: String,
    pub security_token: String,
    pub client_id: String,
    pub client_secret: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_path: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Builds and starts simulators.
#[derive(Debug, Default)]
pub struct SimServer {
    config: SimConfig,
    /// Serve HTTPS, writing the CA certificate clients must trust into this directory.
    tls_cert_dir: Option<PathBuf>,
}

/// A running simulator. Dropping it shuts the server down.
pub struct SimHandle {
    pub state: AppState,
    pub addr: SocketAddr,
    pub credentials: Credentials,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl SimServer {
    pub fn new(config: SimConfig) -> SimServer {
        SimServer { config, tls_cert_dir: None }
    }

    /// Serves HTTPS instead of HTTP with a freshly generated certificate (see [`crate::tls`]);
    /// the CA certificate to trust is written into `cert_dir` and reported as
    /// `credentials.certificate_path`.
    pub fn with_tls(mut self, cert_dir: impl Into<PathBuf>) -> SimServer {
        self.tls_cert_dir = Some(cert_dir.into());
        self
    }

    /// Builds the org for this configuration (catalog + generated data).
    pub fn build_org(config: &SimConfig) -> Org {
        let clock = if config.manual_clock {
            OrgClock::Manual(tidemark_core::ManualClock::new(tidemark_core::ManualClock::default_start()))
        } else {
            OrgClock::Wall(tidemark_core::SystemClock)
        };
        let mut org = Org::new(crate::catalog::standard_objects(), clock);
        org.keep_change_log = config.keep_change_log;
        org.millisecond_stamps = config.millisecond_stamps;
        crate::generate::generate(
            &mut org,
            &crate::generate::GenerateSpec { seed: config.seed, accounts: config.accounts, username: config.username.clone() },
        );
        org
    }

    /// The org saved in `config.data_dir` when there is one, else a freshly built org (which
    /// is then saved there, so the next start finds it).
    pub fn load_or_build_org(config: &SimConfig) -> Result<Org, crate::persist::PersistError> {
        match &config.data_dir {
            Some(dir) if crate::persist::exists(dir) => {
                let mut org = crate::persist::load(dir)?;
                org.millisecond_stamps = config.millisecond_stamps;
                Ok(org)
            }
            Some(dir) => {
                let org = Self::build_org(config);
                crate::persist::save(&org, dir)?;
                Ok(org)
            }
            None => Ok(Self::build_org(config)),
        }
    }

    /// Starts on `addr` (port 0 for an ephemeral port) over plain HTTP.
    pub async fn start(self, addr: SocketAddr) -> std::io::Result<SimHandle> {
        let org = Self::build_org(&self.config);
        self.start_with_org(org, addr).await
    }

    /// Starts with a prepared org (e.g. one loaded from disk).
    pub async fn start_with_org(self, org: Org, addr: SocketAddr) -> std::io::Result<SimHandle> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let scheme = if self.tls_cert_dir.is_some() { "https" } else { "http" };
        let base_url = format!("{scheme}://{addr}");
        let state = Arc::new(SimState::new(org, self.config));
        let _ = state.base_url.set(base_url.clone());
        let app = api::router(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut certificate_path = None;
        let task = if let Some(dir) = &self.tls_cert_dir {
            let cert = crate::tls::SimCertificate::generate()?;
            certificate_path = Some(cert.write_ca(dir)?.display().to_string());
            crate::tls::spawn_server(listener, app, cert.server_config()?, rx)?
        } else {
            tokio::spawn(async move {
                let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                    let _ = rx.await;
                });
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "simulator server stopped");
                }
            })
        };
        let credentials = credentials(&state, &base_url, certificate_path);
        Ok(SimHandle { state, addr, credentials, shutdown: Some(tx), task: Some(task) })
    }
}

pub(crate) fn credentials(state: &SimState, base_url: &str, certificate_path: Option<String>) -> Credentials {
    let c = &state.config;
    Credentials {
        base_url: base_url.to_owned(),
        instance_url: base_url.to_owned(),
        username: c.username.clone(),
        password: c.password.expose_secret().to_owned(),
        security_token: c.security_token.expose_secret().to_owned(),
        client_id: c.client_id.clone(),
        client_secret: c.client_secret.expose_secret().to_owned(),
        certificate_path,
    }
}

impl SimHandle {
    pub fn base_url(&self) -> &str {
        &self.credentials.base_url
    }

    /// Issues an access token directly (tests that are not about OAuth).
    pub fn issue_token(&self) -> String {
        let org = self.state.org.read();
        self.state.auth.issue(org.integration_user, &self.state.config.client_id, org.now_millis())
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
