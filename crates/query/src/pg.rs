//! The Postgres wire protocol endpoint behind `tidemark serve-sql`.
//!
//! `psql`, BI tools and client libraries connect to a [`PgServer`] and run the same SQL as
//! `tidemark sql`, through the simple and the extended query protocol (bind parameters
//! included). Queries are planned and run by DataFusion through `datafusion-postgres`; the
//! `pg_catalog` schema and the functions clients call on connect (`current_schema()`,
//! `pg_table_is_visible`, `format_type`, ...) come from `datafusion-pg-catalog`.
//!
//! # psql's meta-commands
//!
//! `\d`, `\d+`, `\dt`, `\dv`, `\du`, `\df`, `\l` and `\dn` work. What psql 15 sends for them
//! and `datafusion-pg-catalog` lacks is added here:
//! - `ARRAY(<subquery>)` and `pg_get_viewdef(<oid>)` are rewritten before planning into SQL
//!   DataFusion plans (`rewrite`);
//! - `pg_function_is_visible`, `pg_get_function_result`, `pg_get_function_arguments`,
//!   `pg_size_pretty` and the comment lookups are registered as functions (`functions`);
//! - `pg_roles` lists the configured user (or, without credentials, the users that connected),
//!   and `pg_class` has `reloptions` (`catalog`).
//!
//! A view's definition (`\d+ account`, `information_schema.views`) is the SQL of the relation
//! over `<object>_history` ([`crate::ddl::view_definition`]).
//!
//! # What a connection sees
//!
//! Every connection gets its own DataFusion session, copied when it has authenticated from the
//! context its user reads through: `SET`, `PREPARE` and statement timeouts stay with the
//! connection. The catalogs are shared, so every connection sees the same tables, including
//! tables written after the server started. `information_schema` is switched on in every
//! session, because BI tools browse it, and `current_user` / `session_user` name the user the
//! connection logged in as.
//!
//! - Without users and roles ([`PgServer::bind`], or [`PgServer::bind_lake`] without
//!   `access`), everyone reads one context: the whole lake.
//! - With users and roles ([`PgServerConfig::access`]), each user reads a context of their own
//!   that holds only what their role is granted, through its column rules and row filters
//!   ([`crate::access`]); `pg_catalog`, `information_schema`, `\d` and `has_table_privilege`
//!   answer from it, and a query naming a relation not granted fails with SQLSTATE `42501`
//!   ("permission denied for table …").
//!
//! The endpoint is read-only: DDL (`CREATE`, `DROP`, `SELECT … INTO`), DML (`INSERT`,
//! `UPDATE`, `DELETE`) and `COPY` are refused with SQLSTATE `25006` before they are planned
//! into anything that runs. DataFusion would otherwise let any client change the tables every
//! other client sees, or write files on the server's disk with `COPY … TO`.
//!
//! Errors from DataFusion reach the client as an `ErrorResponse` carrying DataFusion's message;
//! the connection stays usable. When the default schema is a lake, an unknown table lists the
//! closest names the user can see, as `tidemark sql` does. Cancel requests are not supported
//! (`statement_timeout` is).
//!
//! # Authentication and TLS
//!
//! - With [`PgCredentials`] or users, every connection must authenticate with
//!   **SCRAM-SHA-256** (psql 10 and later, libpq-based drivers, JDBC, psycopg), or
//!   **SCRAM-SHA-256-PLUS** over TLS (channel binding: the login is tied to the TLS session, so
//!   a man in the middle holding another certificate cannot relay it). The salted passwords are
//!   computed once when the server binds; the server never sees a password on the wire. A
//!   wrong user or a wrong password is refused with SQLSTATE `28P01` ("password authentication
//!   failed for user …") after a complete exchange, so a wrong user name cannot be told from a
//!   wrong password. A refused connection never gets a session: anything it sends after the
//!   refusal is discarded and the connection is closed.
//! - Without credentials, any user name is accepted, without a password. That is only allowed
//!   on a loopback address (`127.0.0.0/8`, `::1`): binding any other address without
//!   credentials fails ([`PgServerError::PasswordRequired`]).
//! - With [`PgTls`] (a PEM certificate chain and key), clients negotiate TLS (`sslmode=require`,
//!   `verify-full`); when TLS is required, a connection without it is refused with SQLSTATE
//!   `28000` before authentication. Beyond loopback TLS is mandatory
//!   ([`PgServerError::TlsRequired`]) and always required.
//!
//! # Query log
//!
//! With [`PgServerConfig::query_log`], every statement is recorded in the lake's
//! `_tidemark/query_log` table: who, when, which relations, how many rows, how it ended, never
//! the text or values ([`log`]).
//!
//! # Logs
//!
//! Connections are logged with `tracing` at info (peer address, user, database) and refusals at
//! warn. Query text, parameter values and rows are never logged by this module, since they carry
//! customer data (datafusion-postgres logs query text at debug through the `log` crate).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::auth::sasl::scram::ScramAuth;
use datafusion_postgres::pgwire::api::auth::{DefaultServerParameterProvider, StartupHandler};
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::{PgWireServerHandlers, RandomPidSecretKeyGenerator};
use datafusion_postgres::pgwire::tokio::{TlsAcceptor, process_socket};
use datafusion_postgres::{DfSessionService, QueryHook};
use secrecy::SecretString;
use tidemark_core::access::Access;
use tidemark_lake::datafusion::arrow::datatypes::DataType;
use tidemark_lake::datafusion::common::{DataFusionError, ScalarValue};
use tidemark_lake::datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use tidemark_lake::datafusion::prelude::SessionContext;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::access::UserRules;

mod catalog;
mod functions;
mod hook;
pub mod log;
mod rewrite;
mod session;
mod startup;
mod tls;

use catalog::{PgCatalog, Roles};
use hook::ReadOnly;
use log::QueryLog;
use session::LazySession;
use startup::{Phase, ScramVerifier, Startup};
pub use tls::PgTls;

/// Connections served at once unless configured otherwise (PostgreSQL's own default).
pub const DEFAULT_MAX_CONNECTIONS: usize = 100;

/// How long the accept loop waits after a failed `accept` (out of file descriptors, say)
/// before trying again, so that it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Where and how a [`PgServer`] listens.
#[derive(Debug, Clone)]
pub struct PgServerConfig {
    /// The address to listen on; port 0 picks a free port (see [`PgServer::local_addr`]).
    pub listen: SocketAddr,
    /// The one user allowed in, with its password; required unless `listen` is a loopback
    /// address.
    pub credentials: Option<PgCredentials>,
    /// Connections served at once; the ones beyond are refused with SQLSTATE `53300`, as
    /// PostgreSQL does. At least 1.
    pub max_connections: usize,
    /// Users, roles and what each may read (instead of `credentials`); only with
    /// [`PgServer::bind_lake`].
    pub access: Option<Arc<Access>>,
    /// TLS; required when `listen` is not a loopback address.
    pub tls: Option<PgTls>,
    /// Keep a query log in the lake ([`log`]) appended this often; only with
    /// [`PgServer::bind_lake`].
    pub query_log: Option<Duration>,
}

impl PgServerConfig {
    /// Listen on `listen` without credentials, with [`DEFAULT_MAX_CONNECTIONS`].
    pub fn new(listen: SocketAddr) -> PgServerConfig {
        PgServerConfig {
            listen,
            credentials: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            access: None,
            tls: None,
            query_log: None,
        }
    }
}

/// The user name and password clients must present. `Debug` never shows the password.
#[derive(Clone)]
pub struct PgCredentials {
    /// The user name, compared exactly (PostgreSQL user names are case-sensitive).
    pub user: String,
    /// The password.
    pub password: SecretString,
}

impl PgCredentials {
    /// Credentials for `user` with `password`.
    pub fn new(user: impl Into<String>, password: SecretString) -> PgCredentials {
        PgCredentials { user: user.into(), password }
    }
}

impl fmt::Debug for PgCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgCredentials").field("user", &self.user).field("password", &"[redacted]").finish()
    }
}

/// Why a [`PgServer`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum PgServerError {
    /// Listening beyond loopback without credentials would open the lake to the network.
    #[error(
        "refusing to listen on {listen} without a password: set a user and password, or listen on a \
         loopback address such as 127.0.0.1"
    )]
    PasswordRequired {
        /// The address asked for.
        listen: SocketAddr,
    },
    /// The credentials have an empty user name.
    #[error("the Postgres user name must not be empty")]
    EmptyUser,
    /// The credentials have an empty password.
    #[error("the Postgres password must not be empty")]
    EmptyPassword,
    /// `max_connections` is 0.
    #[error("max_connections must be at least 1")]
    NoConnectionsAllowed,
    /// Listening beyond loopback without TLS would send rows in clear.
    #[error(
        "refusing to listen on {listen} without TLS: give sql.tls (cert_file, key_file), or listen on a loopback \
         address such as 127.0.0.1"
    )]
    TlsRequired {
        /// The address asked for.
        listen: SocketAddr,
    },
    /// The certificate or key could not be used.
    #[error("sql.tls: {file}: {reason}")]
    Tls {
        /// The file at fault.
        file: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// Users and roles need a lake session ([`PgServer::bind_lake`]).
    #[error("users and roles need the lake's session: use PgServer::bind_lake")]
    AccessWithoutLake,
    /// A user's session could not be prepared (a row filter that does not parse).
    #[error("{0}")]
    Access(String),
    /// The address could not be bound (in use, not local, not permitted).
    #[error("cannot listen on {listen}: {source}")]
    Bind {
        /// The address asked for.
        listen: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// `pg_catalog` could not be added to the session's default catalog.
    #[error("cannot set up pg_catalog in catalog `{catalog}`: {source}")]
    Catalog {
        /// The session's default catalog.
        catalog: String,
        /// DataFusion's reason.
        #[source]
        source: Box<DataFusionError>,
    },
}

/// A bound Postgres endpoint; [`PgServer::serve`] runs it.
pub struct PgServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    log: Option<QueryLog>,
}

impl fmt::Debug for PgServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgServer")
            .field("local_addr", &self.local_addr)
            .field("password_required", &self.shared.scram.is_some())
            .finish_non_exhaustive()
    }
}

impl PgServer {
    /// Checks `config`, binds its address and adds `pg_catalog` (with the functions clients
    /// call on connect) to `ctx`'s default catalog.
    ///
    /// Fails when `config.listen` is not a loopback address and there are no credentials or no
    /// TLS, when the credentials are empty, when the certificate or key cannot be used, when
    /// `max_connections` is 0, or when the address cannot be bound; and when `config` has users
    /// or a query log, which need [`PgServer::bind_lake`]. Clients may connect as soon as this returns; they are served once
    /// [`PgServer::serve`] runs.
    pub async fn bind(ctx: Arc<SessionContext>, config: PgServerConfig) -> Result<PgServer, PgServerError> {
        if config.access.is_some() || config.query_log.is_some() {
            return Err(PgServerError::AccessWithoutLake);
        }
        let roles = Roles::new(config.credentials.as_ref().map(|c| c.user.clone()));
        prepare_context(&ctx, roles.clone()).await?;
        PgServer::listen(Contexts::Single { ctx, roles }, config, None).await
    }

    /// [`PgServer::bind`] over a lake session; with `config.access`, each user gets a context
    /// of their own that sees the lake through the role's grants, column rules and row
    /// filters (see [`crate::access`]).
    pub async fn bind_lake(session: &crate::QuerySession, config: PgServerConfig) -> Result<PgServer, PgServerError> {
        let log = config.query_log.map(|every| QueryLog::start(session.location().clone(), every));
        let Some(access) = config.access.clone() else {
            let ctx = session.context();
            let roles = Roles::new(config.credentials.as_ref().map(|c| c.user.clone()));
            prepare_context(&ctx, roles.clone()).await?;
            return PgServer::listen(Contexts::Single { ctx, roles }, config, log).await;
        };
        crate::access::check_row_filters(&access).map_err(|e| PgServerError::Access(e.to_string()))?;
        let mut contexts = HashMap::new();
        for principal in access.principals() {
            let rules = UserRules { principal: principal.clone(), hash_key: access.hash_key().cloned() };
            let ctx = crate::access::user_context(session, rules).map_err(|e| PgServerError::Access(e.to_string()))?;
            prepare_context(&ctx, Roles::new(Some(principal.user.clone()))).await?;
            contexts.insert(principal.user.clone(), (Arc::new(ctx), principal.role.name().to_owned()));
        }
        PgServer::listen(Contexts::PerUser(contexts), config, log).await
    }

    async fn listen(contexts: Contexts, config: PgServerConfig, log: Option<QueryLog>) -> Result<PgServer, PgServerError> {
        let PgServerConfig { listen, credentials, max_connections, access, tls, query_log: _ } = config;
        if max_connections == 0 {
            return Err(PgServerError::NoConnectionsAllowed);
        }
        let mut users: Vec<(String, SecretString)> = Vec::new();
        if let Some(credentials) = credentials {
            users.push((credentials.user, credentials.password));
        }
        if let Some(access) = &access {
            users.extend(access.passwords().iter().map(|(u, p)| (u.clone(), p.clone())));
        }
        if users.is_empty() && !is_loopback(listen.ip()) {
            return Err(PgServerError::PasswordRequired { listen });
        }
        let verifier = if users.is_empty() { None } else { Some(ScramVerifier::new(&users)?) };
        if tls.is_none() && !is_loopback(listen.ip()) {
            return Err(PgServerError::TlsRequired { listen });
        }
        let (acceptor, certificate) = match &tls {
            Some(tls) => {
                let (acceptor, pem) = tls::acceptor(tls)?;
                (Some(acceptor), Some(pem))
            }
            None => (None, None),
        };
        let require_tls = tls.as_ref().is_some_and(|t| t.required || !is_loopback(listen.ip()));
        let scram = if let Some(verifier) = verifier {
            let mut scram = ScramAuth::new(Arc::new(verifier));
            if let Some(pem) = &certificate {
                // Channel binding (SCRAM-SHA-256-PLUS) ties the login to this TLS session.
                scram.configure_certificate(pem).map_err(|e| PgServerError::Tls {
                    file: tls.as_ref().map(|t| t.cert_file.clone()).unwrap_or_default(),
                    reason: e.to_string(),
                })?;
            }
            Some(Arc::new(scram))
        } else {
            None
        };
        let listener = TcpListener::bind(listen).await.map_err(|source| PgServerError::Bind { listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| PgServerError::Bind { listen, source })?;

        let mut parameters = DefaultServerParameterProvider::default();
        // Tell clients the truth: nobody here is a superuser and nothing can be written.
        parameters.is_superuser = false;
        parameters.default_transaction_read_only = true;

        info!(
            listen = %local_addr,
            authentication = if scram.is_some() { "scram-sha-256" } else { "none (loopback)" },
            tls = if acceptor.is_none() { "off" } else if require_tls { "required" } else { "optional" },
            users = users.len(),
            max_connections,
            "postgres endpoint listening"
        );
        Ok(PgServer {
            listener,
            local_addr,
            shared: Arc::new(Shared {
                log: log.as_ref().map(QueryLog::sender),
                contexts,
                scram,
                tls: acceptor,
                require_tls,
                parameters: Arc::new(parameters),
                pids: Arc::new(RandomPidSecretKeyGenerator::default()),
                connections: Arc::new(Semaphore::new(max_connections)),
            }),
            log,
        })
    }

    /// The address clients connect to (the real port when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Accepts and serves connections, each on its own task, until `shutdown` completes; then
    /// stops listening and closes every open connection (a query in flight is dropped).
    ///
    /// A failed `accept` is logged and retried; one connection's failure never ends the server.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) {
        let PgServer { listener, local_addr, shared, log } = self;
        let mut connections = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(ended) = connections.join_next(), if !connections.is_empty() => {
                    if let Err(e) = ended
                        && e.is_panic()
                    {
                        error!(error = %e, "a postgres connection task panicked");
                    }
                }
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        connections.spawn(Arc::clone(&shared).connection(socket, peer));
                    }
                    Err(e) => {
                        warn!(error = %e, "accepting a postgres connection failed");
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                        }
                    }
                },
            }
        }
        drop(listener);
        let open = connections.len();
        connections.shutdown().await;
        drop(shared);
        if let Some(log) = log {
            log.close().await;
        }
        info!(listen = %local_addr, closed_connections = open, "postgres endpoint stopped");
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    // `::ffff:127.0.0.1` is loopback too, though `Ipv6Addr::is_loopback` only knows `::1`.
    ip.to_canonical().is_loopback()
}

/// Adds `pg_catalog` (over `ctx`'s catalogs, so it lists what `ctx` can see) and the
/// functions clients call on connect to `ctx`.
async fn prepare_context(ctx: &SessionContext, roles: Roles) -> Result<(), PgServerError> {
    let name = ctx.state().config().options().catalog.default_catalog.clone();
    let failed = |source: DataFusionError| PgServerError::Catalog { catalog: name.clone(), source: Box::new(source) };
    setup_pg_catalog(ctx, &name, roles).map_err(|source| failed(*source))?;
    if let Some(catalog) = ctx.catalog(&name)
        && let Some(pg_catalog) = catalog.schema("pg_catalog")
    {
        catalog.register_schema("pg_catalog", Arc::new(PgCatalog::new(pg_catalog))).map_err(failed)?;
    }
    functions::register(ctx).await.map_err(failed)?;
    if let Some(catalog) = ctx.catalog(&name) {
        // datafusion-pg-catalog answers true to everything; here a hidden table is not granted.
        ctx.register_udf(functions::has_table_privilege(catalog));
    }
    Ok(())
}

/// The contexts connections copy their session from.
enum Contexts {
    /// One for everyone (no users and roles configured).
    Single { ctx: Arc<SessionContext>, roles: Roles },
    /// One per configured user (with the user's role), seeing what that role may.
    PerUser(HashMap<String, (Arc<SessionContext>, String)>),
}

impl Contexts {
    fn for_user(&self, user: &str) -> Option<&Arc<SessionContext>> {
        match self {
            Contexts::Single { ctx, .. } => Some(ctx),
            Contexts::PerUser(contexts) => contexts.get(user).map(|(ctx, _)| ctx),
        }
    }

    /// The user's role; empty without users and roles.
    fn role(&self, user: &str) -> String {
        match self {
            Contexts::Single { .. } => String::new(),
            Contexts::PerUser(contexts) => contexts.get(user).map(|(_, role)| role.clone()).unwrap_or_default(),
        }
    }

    fn connected(&self, user: &str) {
        if let Contexts::Single { roles, .. } = self {
            roles.connected(user);
        }
    }
}

/// What every connection shares.
struct Shared {
    contexts: Contexts,
    /// Where connections send their query log records.
    log: Option<tokio::sync::mpsc::UnboundedSender<log::QueryLogRecord>>,
    scram: Option<Arc<ScramAuth>>,
    tls: Option<TlsAcceptor>,
    require_tls: bool,
    parameters: Arc<DefaultServerParameterProvider>,
    // One generator for the server, so that process ids (which cancel requests name) are unique.
    pids: Arc<RandomPidSecretKeyGenerator>,
    connections: Arc<Semaphore>,
}

impl Shared {
    async fn connection(self: Arc<Self>, socket: TcpStream, peer: SocketAddr) {
        // The extended protocol sends several small messages per query; Nagle would delay them.
        if let Err(e) = socket.set_nodelay(true) {
            debug!(%peer, error = %e, "cannot set TCP_NODELAY on a postgres connection");
        }
        let permit = Arc::clone(&self.connections).try_acquire_owned().ok();
        let session = Arc::new(LazySession::new());
        let startup = Arc::new(Startup {
            peer,
            admitted: permit.is_some(),
            shared: Arc::clone(&self),
            phase: Mutex::new(Phase::Startup),
            refused: Notify::new(),
            session: Arc::clone(&session),
        });
        let handlers = ConnectionHandlers { session, startup: Arc::clone(&startup) };
        tokio::select! {
            biased;
            // pgwire would keep reading a refused connection; dropping it here closes the socket.
            () = startup.refused.notified() => {}
            ended = process_socket(socket, self.tls.clone(), handlers) => {
                if let Err(e) = ended {
                    debug!(%peer, error = %e, "postgres connection ended by an I/O error");
                }
            }
        }
        if let Phase::Ready { user } = &*startup.phase.lock().await {
            info!(%peer, user = ?user, "postgres client disconnected");
        }
        drop(permit);
    }
}

/// A session of its own for one connection of `user`, copied from `ctx`: `SET`, `PREPARE`
/// and timeouts stay with the connection, the catalogs are shared.
fn connection_session(ctx: &SessionContext, user: &str, notes: Arc<session::StatementNotes>) -> DfSessionService {
    let mut state = ctx.state();
    state.config_mut().options_mut().catalog.information_schema = true;
    let hooks: Vec<Arc<dyn QueryHook>> = vec![
        // First, so that nothing runs before it has looked (DECLARE CURSOR runs its query).
        Arc::new(ReadOnly::new(notes)),
        Arc::new(CursorStatementHook),
        Arc::new(SetShowHook),
        Arc::new(TransactionStatementHook),
    ];
    let ctx = SessionContext::new_with_state(state);
    ctx.register_udf(session_user(user));
    DfSessionService::new_with_hooks(Arc::new(ctx), hooks)
}

/// `session_user`, and `current_user` which datafusion-pg-catalog rewrites to it: the user this
/// connection authenticated as (datafusion-pg-catalog's own answers "postgres" to everyone).
fn session_user(user: &str) -> ScalarUDF {
    let user = ScalarValue::Utf8(Some(user.to_owned()));
    create_udf(
        "session_user",
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_| Ok(ColumnarValue::Scalar(user.clone()))),
    )
}

/// One connection's handlers: the startup handler holds that connection's authentication state
/// and fills in the session once the user is known.
struct ConnectionHandlers {
    session: Arc<LazySession>,
    startup: Arc<Startup>,
}

impl PgWireServerHandlers for ConnectionHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.session)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.session)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.startup)
    }
}
