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
//! Every connection gets its own DataFusion session, copied from the [`SessionContext`] given
//! to [`PgServer::bind`] when the connection opens: `SET`, `PREPARE` and statement timeouts
//! stay with the connection. The catalogs are shared, so every connection sees the same tables,
//! including tables registered after the server started. `information_schema` is switched on
//! in every session, because BI tools browse it, and `current_user` / `session_user` name the
//! user the connection logged in as.
//!
//! The endpoint is read-only: DDL (`CREATE`, `DROP`, `SELECT … INTO`), DML (`INSERT`,
//! `UPDATE`, `DELETE`) and `COPY` are refused with SQLSTATE `25006` before they are planned
//! into anything that runs. DataFusion would otherwise let any client change the tables every
//! other client sees, or write files on the server's disk with `COPY … TO`.
//!
//! Errors from DataFusion reach the client as an `ErrorResponse` carrying DataFusion's message;
//! the connection stays usable. When the default schema is a lake, an unknown table lists the
//! closest names, as `tidemark sql` does. Cancel requests are not supported
//! (`statement_timeout` is).
//!
//! # Authentication
//!
//! - With [`PgCredentials`], every connection must authenticate with **SCRAM-SHA-256** (psql
//!   10 and later, libpq-based drivers, JDBC, psycopg). The salted password is computed once in
//!   [`PgServer::bind`]; the server never sees the password on the wire. A wrong user or a
//!   wrong password is refused with SQLSTATE `28P01` ("password authentication failed for user
//!   …") after a complete exchange, so a wrong user name cannot be told from a wrong password.
//!   A refused connection never gets a session: anything it sends after the refusal is
//!   discarded and the connection is closed.
//! - Without credentials, any user name is accepted, without a password. That is only allowed
//!   on a loopback address (`127.0.0.0/8`, `::1`): [`PgServer::bind`] refuses any other address
//!   without credentials ([`PgServerError::PasswordRequired`]).
//!
//! There is no TLS: the password itself never crosses the wire, but rows do, in clear. Across
//! an untrusted network, reach the endpoint through an SSH tunnel or a TLS-terminating proxy.
//!
//! # Logs
//!
//! Connections are logged with `tracing` at info (peer address, user, database) and refusals at
//! warn. Query text, parameter values and rows are never logged by this module, since they carry
//! customer data (datafusion-postgres logs query text at debug through the `log` crate).

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::auth::sasl::scram::{SCRAM_ITERATIONS, ScramAuth, gen_salted_password, random_nonce};
use datafusion_postgres::pgwire::api::auth::sasl::{SASLState, SCRAM_SHA_256_METHOD};
use datafusion_postgres::pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::{
    ClientInfo, METADATA_DATABASE, METADATA_USER, PgWireConnectionState, PgWireServerHandlers, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator,
};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::startup::{Authentication, PasswordMessageFamily};
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use datafusion_postgres::pgwire::tokio::process_socket;
use datafusion_postgres::{DfSessionService, QueryHook};
use futures::{Sink, SinkExt};
use secrecy::{ExposeSecret, SecretString};
use tidemark_lake::datafusion::arrow::datatypes::DataType;
use tidemark_lake::datafusion::common::{DataFusionError, ScalarValue};
use tidemark_lake::datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use tidemark_lake::datafusion::prelude::SessionContext;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

mod catalog;
mod functions;
mod hook;
mod rewrite;

use catalog::{PgCatalog, Roles};
use hook::ReadOnly;

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
}

impl PgServerConfig {
    /// Listen on `listen` without credentials, with [`DEFAULT_MAX_CONNECTIONS`].
    pub fn new(listen: SocketAddr) -> PgServerConfig {
        PgServerConfig { listen, credentials: None, max_connections: DEFAULT_MAX_CONNECTIONS }
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
    /// Fails when `config.listen` is not a loopback address and there are no credentials, when
    /// the credentials are empty, when `max_connections` is 0, or when the address cannot be
    /// bound. Clients may connect as soon as this returns; they are served once
    /// [`PgServer::serve`] runs.
    pub async fn bind(ctx: Arc<SessionContext>, config: PgServerConfig) -> Result<PgServer, PgServerError> {
        let PgServerConfig { listen, credentials, max_connections } = config;
        if max_connections == 0 {
            return Err(PgServerError::NoConnectionsAllowed);
        }
        let roles = Roles::new(credentials.as_ref().map(|c| c.user.clone()));
        let scram = match credentials {
            Some(credentials) => Some(Arc::new(ScramAuth::new(Arc::new(ScramVerifier::new(&credentials)?)))),
            None if is_loopback(listen.ip()) => None,
            None => return Err(PgServerError::PasswordRequired { listen }),
        };
        let listener = TcpListener::bind(listen).await.map_err(|source| PgServerError::Bind { listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| PgServerError::Bind { listen, source })?;

        let name = ctx.state().config().options().catalog.default_catalog.clone();
        let failed = |source: DataFusionError| PgServerError::Catalog { catalog: name.clone(), source: Box::new(source) };
        setup_pg_catalog(&ctx, &name, roles.clone()).map_err(|source| failed(*source))?;
        if let Some(catalog) = ctx.catalog(&name)
            && let Some(pg_catalog) = catalog.schema("pg_catalog")
        {
            catalog.register_schema("pg_catalog", Arc::new(PgCatalog::new(pg_catalog))).map_err(failed)?;
        }
        functions::register(&ctx).await.map_err(failed)?;

        let mut parameters = DefaultServerParameterProvider::default();
        // Tell clients the truth: nobody here is a superuser and nothing can be written.
        parameters.is_superuser = false;
        parameters.default_transaction_read_only = true;

        info!(
            listen = %local_addr,
            authentication = if scram.is_some() { "scram-sha-256" } else { "none (loopback)" },
            max_connections,
            "postgres endpoint listening"
        );
        Ok(PgServer {
            listener,
            local_addr,
            shared: Arc::new(Shared {
                ctx,
                scram,
                roles,
                parameters: Arc::new(parameters),
                pids: Arc::new(RandomPidSecretKeyGenerator::default()),
                connections: Arc::new(Semaphore::new(max_connections)),
            }),
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
        let PgServer { listener, local_addr, shared } = self;
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
        info!(listen = %local_addr, closed_connections = open, "postgres endpoint stopped");
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    // `::ffff:127.0.0.1` is loopback too, though `Ipv6Addr::is_loopback` only knows `::1`.
    ip.to_canonical().is_loopback()
}

/// What every connection shares.
struct Shared {
    ctx: Arc<SessionContext>,
    scram: Option<Arc<ScramAuth>>,
    roles: Roles,
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
        let user = Arc::new(OnceLock::new());
        let startup = Arc::new(Startup {
            peer,
            admitted: permit.is_some(),
            scram: self.scram.clone(),
            roles: self.roles.clone(),
            parameters: Arc::clone(&self.parameters),
            pids: Arc::clone(&self.pids),
            phase: Mutex::new(Phase::Startup),
            refused: Notify::new(),
            user: Arc::clone(&user),
        });
        let handlers = ConnectionHandlers { session: Arc::new(self.session(user)), startup: Arc::clone(&startup) };
        tokio::select! {
            biased;
            // pgwire would keep reading a refused connection; dropping it here closes the socket.
            () = startup.refused.notified() => {}
            ended = process_socket(socket, None, handlers) => {
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

    /// A session of its own for one connection, over the shared catalogs; `user` is filled in
    /// once the connection has authenticated.
    fn session(&self, user: Arc<OnceLock<String>>) -> DfSessionService {
        let mut state = self.ctx.state();
        state.config_mut().options_mut().catalog.information_schema = true;
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            // First, so that nothing runs before it has looked (DECLARE CURSOR runs its query).
            Arc::new(ReadOnly),
            Arc::new(CursorStatementHook),
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
        ];
        let ctx = SessionContext::new_with_state(state);
        ctx.register_udf(session_user(user));
        DfSessionService::new_with_hooks(Arc::new(ctx), hooks)
    }
}

/// `session_user`, and `current_user` which datafusion-pg-catalog rewrites to it: the user this
/// connection authenticated as (datafusion-pg-catalog's own answers "postgres" to everyone).
fn session_user(user: Arc<OnceLock<String>>) -> ScalarUDF {
    create_udf(
        "session_user",
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(user.get().cloned())))),
    )
}

/// One connection's handlers: the startup handler holds that connection's authentication state.
struct ConnectionHandlers {
    session: Arc<DfSessionService>,
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

/// The server side of SCRAM-SHA-256 for the configured user.
struct ScramVerifier {
    user: String,
    salt: Vec<u8>,
    salted_password: Vec<u8>,
    // What any other user name is checked against: the exchange runs to the end and fails like
    // a wrong password does, so a client cannot learn which user names exist.
    decoy: Vec<u8>,
}

impl ScramVerifier {
    fn new(credentials: &PgCredentials) -> Result<ScramVerifier, PgServerError> {
        if credentials.user.is_empty() {
            return Err(PgServerError::EmptyUser);
        }
        let password = credentials.password.expose_secret();
        if password.is_empty() {
            return Err(PgServerError::EmptyPassword);
        }
        let salt = random_nonce().into_bytes();
        Ok(ScramVerifier {
            user: credentials.user.clone(),
            salted_password: gen_salted_password(password, &salt, SCRAM_ITERATIONS),
            decoy: gen_salted_password(&random_nonce(), &salt, SCRAM_ITERATIONS),
            salt,
        })
    }
}

impl fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The salted password is as good as the password to a SCRAM client: never print it.
        f.debug_struct("ScramVerifier").field("user", &self.user).finish_non_exhaustive()
    }
}

#[async_trait]
impl AuthSource for ScramVerifier {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let key = if login.user() == Some(self.user.as_str()) { &self.salted_password } else { &self.decoy };
        Ok(Password::new(Some(self.salt.clone()), key.clone()))
    }
}

/// Where one connection is in its startup.
enum Phase {
    Startup,
    Sasl { user: String, sasl: SASLState },
    Ready { user: String },
    Refused,
}

/// Why a connection is turned away during startup.
enum Refusal {
    /// Tell the client (a FATAL error with this SQLSTATE and message), then close.
    Tell { code: String, message: String },
    /// The connection is unusable (the client went away mid-startup): just close.
    Broken(PgWireError),
}

impl Refusal {
    fn tell(code: &str, message: impl Into<String>) -> Refusal {
        Refusal::Tell { code: code.to_owned(), message: message.into() }
    }

    /// A malformed or out-of-order SASL message. pgwire's message would quote the client's
    /// message, proof included; there is nothing in it the client does not know already.
    fn protocol(_error: PgWireError) -> Refusal {
        Refusal::tell("08P01", "invalid SCRAM-SHA-256 authentication exchange")
    }

    /// A startup message pgwire could not accept (an unknown protocol version), as pgwire puts it.
    fn pgwire(error: PgWireError) -> Refusal {
        let info = ErrorInfo::from(error);
        Refusal::Tell { code: info.code, message: info.message }
    }
}

/// One connection's startup: admission, SCRAM (or none on loopback), then the connection log.
///
/// pgwire's own startup handlers keep their SASL state in the handler, which is shared by every
/// connection, and after a failed authentication pgwire puts the connection into the state that
/// runs queries. This handler lives for one connection and never lets pgwire see an error:
/// it answers a refusal itself, then has the connection dropped (see [`Shared::connection`]).
struct Startup {
    peer: SocketAddr,
    admitted: bool,
    scram: Option<Arc<ScramAuth>>,
    roles: Roles,
    parameters: Arc<DefaultServerParameterProvider>,
    pids: Arc<RandomPidSecretKeyGenerator>,
    phase: Mutex<Phase>,
    refused: Notify,
    /// Read by this connection's `session_user()`.
    user: Arc<OnceLock<String>>,
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut phase = self.phase.lock().await;
        let current = std::mem::replace(&mut *phase, Phase::Refused);
        *phase = match self.advance(client, current, message).await {
            Ok(next) => next,
            Err(refusal) => {
                self.refuse(client, refusal).await;
                Phase::Refused
            }
        };
        Ok(())
    }
}

impl Startup {
    async fn advance<C>(&self, client: &mut C, phase: Phase, message: PgWireFrontendMessage) -> Result<Phase, Refusal>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match (phase, message) {
            (Phase::Startup, PgWireFrontendMessage::Startup(startup)) => {
                protocol_negotiation(client, &startup).await.map_err(Refusal::pgwire)?;
                save_startup_parameters_to_metadata(client, &startup);
                let user = match client.metadata().get(METADATA_USER) {
                    Some(user) if !user.is_empty() => user.clone(),
                    _ => return Err(Refusal::tell("28000", "no PostgreSQL user name specified in startup packet")),
                };
                if !self.admitted {
                    return Err(Refusal::tell("53300", "sorry, too many clients already"));
                }
                if self.scram.is_none() {
                    self.finish(client, &user).await?;
                    return Ok(Phase::Ready { user });
                }
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                let offer = Authentication::SASL(vec![SCRAM_SHA_256_METHOD.to_owned()]);
                client.send(PgWireBackendMessage::Authentication(offer)).await.map_err(|e| Refusal::Broken(e.into()))?;
                Ok(Phase::Sasl { user, sasl: SASLState::Initial })
            }
            (Phase::Sasl { user, sasl }, PgWireFrontendMessage::PasswordMessageFamily(message)) => {
                let Some(scram) = &self.scram else {
                    return Err(Refusal::tell("28000", "no authentication exchange is in progress"));
                };
                let (message, sasl) = match sasl {
                    SASLState::Initial => {
                        let initial = message.into_sasl_initial_response().map_err(Refusal::protocol)?;
                        if initial.auth_method != SCRAM_SHA_256_METHOD {
                            return Err(Refusal::tell("28000", "only SCRAM-SHA-256 authentication is supported"));
                        }
                        (PasswordMessageFamily::SASLInitialResponse(initial), SASLState::ScramClientFirstReceived)
                    }
                    waiting => {
                        let response = message.into_sasl_response().map_err(Refusal::protocol)?;
                        (PasswordMessageFamily::SASLResponse(response), waiting)
                    }
                };
                match scram.process_scram_message(client, message, &sasl).await {
                    Ok((reply, next)) => {
                        client.send(PgWireBackendMessage::Authentication(reply)).await.map_err(|e| Refusal::Broken(e.into()))?;
                        if matches!(next, SASLState::Finished) {
                            self.finish(client, &user).await?;
                            Ok(Phase::Ready { user })
                        } else {
                            Ok(Phase::Sasl { user, sasl: next })
                        }
                    }
                    // PostgreSQL's wording, naming the user of the startup message (SCRAM's own
                    // user field is empty with libpq).
                    Err(PgWireError::InvalidPassword(_)) => {
                        Err(Refusal::tell("28P01", format!("password authentication failed for user \"{user}\"")))
                    }
                    Err(e) => Err(Refusal::protocol(e)),
                }
            }
            // Anything else during startup means nothing here; pgwire ignores it too.
            (phase, _) => Ok(phase),
        }
    }

    async fn finish<C>(&self, client: &mut C, user: &str) -> Result<(), Refusal>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (pid, secret_key) = self.pids.generate(&*client);
        client.set_pid_and_secret_key(pid, secret_key);
        // Before AuthenticationOk: the client may query as soon as it reads it.
        let _ = self.user.set(user.to_owned());
        self.roles.connected(user);
        finish_authentication(client, self.parameters.as_ref()).await.map_err(Refusal::Broken)?;
        let database = client.metadata().get(METADATA_DATABASE).map_or("", String::as_str);
        info!(peer = %self.peer, user = ?user, database = ?database, "postgres client connected");
        Ok(())
    }

    async fn refuse<C>(&self, client: &mut C, refusal: Refusal)
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let user = client.metadata().get(METADATA_USER).map_or("", String::as_str);
        match refusal {
            Refusal::Tell { code, message } => {
                warn!(peer = %self.peer, user = ?user, sqlstate = %code, "postgres client refused: {message}");
                let error = ErrorInfo::new("FATAL".to_owned(), code, message);
                if let Err(e) = client.send(PgWireBackendMessage::ErrorResponse(error.into())).await {
                    debug!(peer = %self.peer, error = ?e, "cannot tell a refused postgres client why");
                }
                // Half-close, so that the client reads the error before the socket is dropped.
                if let Err(e) = SinkExt::<PgWireBackendMessage>::close(client).await {
                    debug!(peer = %self.peer, error = ?e, "cannot close a refused postgres connection");
                }
            }
            Refusal::Broken(e) => debug!(peer = %self.peer, error = %e, "postgres connection broke during startup"),
        }
        self.refused.notify_one();
    }
}
