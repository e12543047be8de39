//! A connection's startup: admission, TLS enforcement, SCRAM (or none on loopback), then the
//! session the connection's user reads through.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion_postgres::pgwire::api::auth::sasl::scram::{SCRAM_ITERATIONS, gen_salted_password, random_nonce};
use datafusion_postgres::pgwire::api::auth::sasl::{SASLState, SCRAM_SHA_256_METHOD, SCRAM_SHA_256_PLUS_METHOD};
use datafusion_postgres::pgwire::api::auth::{
    AuthSource, LoginInfo, Password, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use datafusion_postgres::pgwire::api::{
    ClientInfo, METADATA_DATABASE, METADATA_USER, PgWireConnectionState, PidSecretKeyGenerator,
};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::startup::{Authentication, PasswordMessageFamily};
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use futures::{Sink, SinkExt};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Mutex, Notify};
use tracing::{debug, info, warn};

use super::log::ConnectionLog;
use super::session::LazySession;
use super::{PgServerError, Shared, connection_session};

/// The server side of SCRAM-SHA-256 for the configured users.
pub(super) struct ScramVerifier {
    salt: Vec<u8>,
    /// Each user's salted password.
    users: HashMap<String, Vec<u8>>,
    // What any other user name is checked against: the exchange runs to the end and fails like
    // a wrong password does, so a client cannot learn which user names exist.
    decoy: Vec<u8>,
}

impl ScramVerifier {
    pub(super) fn new(users: &[(String, SecretString)]) -> Result<ScramVerifier, PgServerError> {
        let salt = random_nonce().into_bytes();
        let mut salted = HashMap::new();
        for (user, password) in users {
            if user.is_empty() {
                return Err(PgServerError::EmptyUser);
            }
            let password = password.expose_secret();
            if password.is_empty() {
                return Err(PgServerError::EmptyPassword);
            }
            salted.insert(user.clone(), gen_salted_password(password, &salt, SCRAM_ITERATIONS));
        }
        Ok(ScramVerifier { users: salted, decoy: gen_salted_password(&random_nonce(), &salt, SCRAM_ITERATIONS), salt })
    }
}

impl fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The salted password is as good as the password to a SCRAM client: never print it.
        f.debug_struct("ScramVerifier").field("users", &self.users.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

#[async_trait]
impl AuthSource for ScramVerifier {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let key = login.user().and_then(|user| self.users.get(user)).unwrap_or(&self.decoy);
        Ok(Password::new(Some(self.salt.clone()), key.clone()))
    }
}

/// Where one connection is in its startup.
pub(super) enum Phase {
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
pub(super) struct Startup {
    pub(super) peer: SocketAddr,
    pub(super) admitted: bool,
    pub(super) shared: Arc<Shared>,
    pub(super) phase: Mutex<Phase>,
    pub(super) refused: Notify,
    /// Filled in when the connection has authenticated.
    pub(super) session: Arc<LazySession>,
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
                if self.shared.require_tls && !client.is_secure() {
                    return Err(Refusal::tell("28000", "SSL is required: connect with sslmode=require or verify-full"));
                }
                let Some(scram) = &self.shared.scram else {
                    self.finish(client, &user).await?;
                    return Ok(Phase::Ready { user });
                };
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                let mut methods = vec![SCRAM_SHA_256_METHOD.to_owned()];
                if client.is_secure() && scram.supports_channel_binding() {
                    methods.push(SCRAM_SHA_256_PLUS_METHOD.to_owned());
                }
                let offer = Authentication::SASL(methods);
                client.send(PgWireBackendMessage::Authentication(offer)).await.map_err(|e| Refusal::Broken(e.into()))?;
                Ok(Phase::Sasl { user, sasl: SASLState::Initial })
            }
            (Phase::Sasl { user, sasl }, PgWireFrontendMessage::PasswordMessageFamily(message)) => {
                let Some(scram) = &self.shared.scram else {
                    return Err(Refusal::tell("28000", "no authentication exchange is in progress"));
                };
                let (message, sasl) = match sasl {
                    SASLState::Initial => {
                        let initial = message.into_sasl_initial_response().map_err(Refusal::protocol)?;
                        let plus = initial.auth_method == SCRAM_SHA_256_PLUS_METHOD && client.is_secure();
                        if initial.auth_method != SCRAM_SHA_256_METHOD && !plus {
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
        // A user with a password but no context cannot happen (both come from one list); refuse
        // like a wrong password rather than serve a session without grants.
        let Some(ctx) = self.shared.contexts.for_user(user) else {
            return Err(Refusal::tell("28P01", format!("password authentication failed for user \"{user}\"")));
        };
        let (pid, secret_key) = self.shared.pids.generate(&*client);
        client.set_pid_and_secret_key(pid, secret_key);
        // Before AuthenticationOk: the client may query as soon as it reads it.
        let log = self.shared.log.as_ref().map(|sender| ConnectionLog {
            user: user.to_owned(),
            role: self.shared.contexts.role(user),
            peer: self.peer.to_string(),
            sender: sender.clone(),
        });
        self.session.set(connection_session(ctx, user, self.session.notes()), log);
        self.shared.contexts.connected(user);
        finish_authentication(client, self.shared.parameters.as_ref()).await.map_err(Refusal::Broken)?;
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
