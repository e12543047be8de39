//! The Postgres wire endpoint, driven by real clients: psql 15, psycopg 3 (server-side binding,
//! the extended protocol) and, where a client would hide what the server sends, raw protocol
//! messages.
//!
//! Helpers for other tests: [`start_server`] / [`start_with`] run a server on a free port,
//! [`psql`] runs psql against it, [`python`] is the interop venv's python.

use crate::common::{Harness, python};
use std::net::SocketAddr;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tidemark_lake::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray, StringViewArray,
    TimestampMicrosecondArray,
};
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use tidemark_lake::datafusion::datasource::MemTable;
use tidemark_lake::datafusion::prelude::{SessionConfig, SessionContext};
use tidemark_query::pg::{PgCredentials, PgServer, PgServerConfig, PgServerError};
use tidemark_query::{QuerySession, ReadOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const USER: &str = "analyst";
/// A quote, a space and a non-ASCII letter: psql and libpq must carry it untouched.
pub const PASSWORD: &str = "p'ss wörd";

/// A running endpoint. [`RunningServer::stop`] shuts it down and waits; dropping it aborts it.
pub struct RunningServer {
    /// Where clients connect (the loopback address when the server listens on every address).
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningServer {
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the server stops cleanly");
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub fn credentials() -> PgCredentials {
    PgCredentials::new(USER, SecretString::from(PASSWORD))
}

/// A server for `ctx` on a free loopback port.
pub async fn start_server(ctx: Arc<SessionContext>, credentials: Option<PgCredentials>) -> RunningServer {
    let mut config = PgServerConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.credentials = credentials;
    start_with(ctx, config).await
}

/// A server for `ctx` as configured. It is bound when this returns, so clients can connect.
pub async fn start_with(ctx: Arc<SessionContext>, config: PgServerConfig) -> RunningServer {
    let server = PgServer::bind(ctx, config).await.expect("the server binds");
    let mut addr = server.local_addr();
    if addr.ip().is_unspecified() {
        addr.set_ip([127, 0, 0, 1].into());
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    RunningServer { addr, stop: Some(stop), task: Some(task) }
}

/// Runs psql (no psqlrc, never prompting, stopping at the first error) as `user` against
/// `addr`, with `password` in `PGPASSWORD` when given, then `args`.
pub async fn psql(addr: SocketAddr, user: &str, password: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new("psql");
    command
        .args(["-X", "-w", "-v", "ON_ERROR_STOP=1", "-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(["-U", user, "-d", "tidemark"])
        .args(args)
        // Only what this call says may reach psql: no password file, service or client defaults.
        .env("PGPASSFILE", "/nonexistent/pgpass")
        .env("PGCONNECT_TIMEOUT", "30")
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE")
        .env_remove("PGSSLMODE")
        .env_remove("PGOPTIONS")
        .kill_on_drop(true);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    command.output().await.expect("psql runs (PostgreSQL client binaries on PATH)")
}

/// psql's stdout, after checking that it succeeded.
pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "psql failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8 output")
}

/// psql's stderr, after checking that it failed.
pub fn failed(output: &Output) -> String {
    assert!(!output.status.success(), "psql succeeded but should not have:\n{}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8(output.stderr.clone()).expect("utf-8 output")
}

/// A context with `public.account`: three rows covering every column type the lake writes
/// (strings read back from Parquet are Utf8View), nulls in the last.
pub fn account_context() -> Arc<SessionContext> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("employees", DataType::Int64, true),
        Field::new("revenue", DataType::Decimal128(18, 2), true),
        Field::new("created_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        Field::new("active", DataType::Boolean, true),
        Field::new("industry", DataType::Utf8View, true),
        Field::new("founded", DataType::Date32, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["001A", "001B", "001C"])),
        Arc::new(StringArray::from(vec![Some("Acme"), Some("O'Brien & Co"), Some("Zeta'; DROP TABLE account; --")])),
        Arc::new(Int64Array::from(vec![Some(120), Some(7), None])),
        Arc::new(
            Decimal128Array::from(vec![Some(123_456_789), Some(-50), None])
                .with_precision_and_scale(18, 2)
                .expect("valid decimal"),
        ),
        Arc::new(
            // 2024-01-02T03:04:05.123456Z and 2023-12-31T23:59:59Z
            TimestampMicrosecondArray::from(vec![Some(1_704_164_645_123_456), Some(1_704_067_199_000_000), None])
                .with_timezone("UTC"),
        ),
        Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        Arc::new(StringViewArray::from(vec![Some("Manufacturing"), Some("Consulting"), None])),
        // 1999-12-31 and 2010-06-15
        Arc::new(Date32Array::from(vec![Some(10_956), Some(14_775), None])),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).expect("valid batch");
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_default_catalog_and_schema("datafusion", "public"));
    let table = MemTable::try_new(schema, vec![vec![batch]]).expect("valid table");
    ctx.register_table("account", Arc::new(table)).expect("table registers");
    Arc::new(ctx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_psql_reads_every_column_type_with_a_password() {
    let server = start_server(account_context(), Some(credentials())).await;

    let csv = ok(&psql(server.addr, USER, Some(PASSWORD), &["--csv", "-c", "SELECT * FROM account ORDER BY id"]).await);
    // Postgres would print `23:59:59+00`; arrow-pg always writes the six fractional digits.
    assert_eq!(
        csv,
        "id,name,employees,revenue,created_at,active,industry,founded\n\
         001A,Acme,120,1234567.89,2024-01-02 03:04:05.123456+00,t,Manufacturing,1999-12-31\n\
         001B,O'Brien & Co,7,-0.50,2023-12-31 23:59:59.000000+00,f,Consulting,2010-06-15\n\
         001C,Zeta'; DROP TABLE account; --,,,,,,\n"
    );

    let tuples = ok(&psql(
        server.addr,
        USER,
        Some(PASSWORD),
        &["-A", "-t", "-c", "SELECT name, employees * 2 FROM account WHERE active ORDER BY name"],
    )
    .await);
    assert_eq!(tuples, "Acme|240\n");

    let aggregate = ok(&psql(
        server.addr,
        USER,
        Some(PASSWORD),
        &["-A", "-t", "-c", "SELECT count(*), sum(revenue), max(created_at) FROM account"],
    )
    .await);
    assert_eq!(aggregate, "3|1234567.39|2024-01-02 03:04:05.123456+00\n");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_psql_prepare_and_execute_bind_a_parameter() {
    let server = start_server(account_context(), Some(credentials())).await;
    let out = ok(&psql(
        server.addr,
        USER,
        Some(PASSWORD),
        &[
            "-A",
            "-t",
            "-c",
            "PREPARE by_name(text) AS SELECT id, employees FROM account WHERE name = $1",
            "-c",
            "EXECUTE by_name('O''Brien & Co')",
            "-c",
            "EXECUTE by_name('Zeta''; DROP TABLE account; --')",
        ],
    )
    .await);
    assert_eq!(out.lines().filter(|line| !line.is_empty()).collect::<Vec<_>>(), ["001B|7", "001C|"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_psycopg_binds_parameters_over_the_extended_protocol() {
    let server = start_server(account_context(), Some(credentials())).await;
    // psycopg 3's default cursor binds on the server: Parse with $1, then Bind with the value.
    let script = r#"
import json, sys
import psycopg
host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
out = {}
with psycopg.connect(host=host, port=port, user=user, password=password, dbname="tidemark") as conn:
    for name in ["O'Brien & Co", "Zeta'; DROP TABLE account; --", "nobody"]:
        rows = conn.execute("SELECT id FROM account WHERE name = %s ORDER BY id", (name,)).fetchall()
        out[name] = [r[0] for r in rows]
    out["more_than"] = [r[0] for r in conn.execute(
        "SELECT id FROM account WHERE employees > %s ORDER BY id", (10,)).fetchall()]
    row = conn.execute(
        "SELECT id, name, employees, revenue, created_at, active, industry, founded FROM account WHERE id = %s",
        ("001A",)).fetchone()
    out["text_types"] = [type(v).__name__ for v in row]
    out["text_values"] = [str(v) for v in row]
    with conn.cursor(binary=True) as cur:
        cur.execute(
            "SELECT id, name, employees, revenue, created_at, active, industry, founded FROM account WHERE name = %b",
            ("Acme",))
        row = cur.fetchone()
        out["binary_types"] = [type(v).__name__ for v in row]
        out["binary_values"] = [str(v) for v in row]
    out["count_after"] = conn.execute("SELECT count(*) FROM account").fetchone()[0]
print(json.dumps(out))
"#;
    let output = Command::new(python())
        .args(["-c", script, &server.addr.ip().to_string(), &server.addr.port().to_string(), USER, PASSWORD])
        .kill_on_drop(true)
        .output()
        .await
        .expect("python runs");
    assert!(
        output.status.success(),
        "psycopg script failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let out: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json from the script");
    assert_eq!(out["O'Brien & Co"], serde_json::json!(["001B"]));
    assert_eq!(out["Zeta'; DROP TABLE account; --"], serde_json::json!(["001C"]));
    assert_eq!(out["nobody"], serde_json::json!([]));
    assert_eq!(out["more_than"], serde_json::json!(["001A"]));
    let types = serde_json::json!(["str", "str", "int", "Decimal", "datetime", "bool", "str", "date"]);
    let values = serde_json::json!([
        "001A",
        "Acme",
        "120",
        "1234567.89",
        "2024-01-02 03:04:05.123456+00:00",
        "True",
        "Manufacturing",
        "1999-12-31"
    ]);
    assert_eq!(out["text_types"], types);
    assert_eq!(out["text_values"], values);
    assert_eq!(out["binary_types"], types);
    assert_eq!(out["binary_values"], values);
    assert_eq!(out["count_after"], 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_wrong_password_wrong_user_and_no_password_are_refused() {
    let server = start_server(account_context(), Some(credentials())).await;
    let query = ["-c", "SELECT 1"];

    let wrong_password = failed(&psql(server.addr, USER, Some("p'ss word"), &query).await);
    assert!(wrong_password.contains(&format!("password authentication failed for user \"{USER}\"")), "{wrong_password}");

    let wrong_user = failed(&psql(server.addr, "postgres", Some(PASSWORD), &query).await);
    assert!(wrong_user.contains("password authentication failed for user \"postgres\""), "{wrong_user}");

    // The server asks for a password; psql has none and may not prompt.
    let no_password = failed(&psql(server.addr, USER, None, &query).await);
    assert!(no_password.contains("no password supplied"), "{no_password}");

    // Still serving the right password afterwards.
    assert_eq!(ok(&psql(server.addr, USER, Some(PASSWORD), &["-A", "-t", "-c", "SELECT 1"]).await), "1\n");
    server.stop().await;
}

/// Startup for `user`, then a SCRAM exchange with a made-up proof, with a query pipelined right
/// behind it: returns every message the server sent after its SASL challenge, until it closed
/// the connection.
async fn scram_with_a_bad_proof(addr: SocketAddr, user: &str) -> Vec<(u8, Vec<u8>)> {
    let mut socket = connect_as(addr, user).await;
    let (tag, body) = read_message(&mut socket).await.expect("an authentication request");
    assert_eq!((tag, &body[..4]), (b'R', &10_i32.to_be_bytes()[..]), "AuthenticationSASL");
    assert!(body.windows(13).any(|w| w == b"SCRAM-SHA-256"), "SCRAM-SHA-256 offered");

    let client_first = b"n,,n=,r=clientnonce0123456789";
    let mut initial = b"SCRAM-SHA-256\0".to_vec();
    initial.extend_from_slice(&(client_first.len() as i32).to_be_bytes());
    initial.extend_from_slice(client_first);
    write_message(&mut socket, b'p', &initial).await;

    let (tag, body) = read_message(&mut socket).await.expect("a SASL challenge");
    assert_eq!((tag, &body[..4]), (b'R', &11_i32.to_be_bytes()[..]), "AuthenticationSASLContinue");
    let server_first = std::str::from_utf8(&body[4..]).expect("utf-8 challenge");
    let nonce = server_first.split(',').find_map(|part| part.strip_prefix("r=")).expect("a nonce");

    let client_final = format!("c=biws,r={nonce},p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let mut pipelined = frame(b'p', client_final.as_bytes());
    pipelined.extend(frame(b'Q', b"SELECT 42\0"));
    socket.write_all(&pipelined).await.expect("writes");

    let mut received = Vec::new();
    while let Some(message) = read_message(&mut socket).await {
        received.push(message);
    }
    received
}

/// A connection that has sent its startup message for `user`.
async fn connect_as(addr: SocketAddr, user: &str) -> TcpStream {
    let mut socket = TcpStream::connect(addr).await.expect("connects");
    let mut startup = Vec::new();
    startup.extend_from_slice(&196_608_i32.to_be_bytes()); // protocol 3.0
    for part in ["user", user, "database", "tidemark"] {
        startup.extend_from_slice(part.as_bytes());
        startup.push(0);
    }
    startup.push(0);
    socket.write_all(&(startup.len() as i32 + 4).to_be_bytes()).await.expect("writes");
    socket.write_all(&startup).await.expect("writes");
    socket
}

/// Reads messages up to and including the first of type `until`.
async fn read_until(socket: &mut TcpStream, until: u8) -> Vec<(u8, Vec<u8>)> {
    let mut received = Vec::new();
    loop {
        let message = read_message(socket).await.unwrap_or_else(|| panic!("closed before '{}': {received:?}", until as char));
        let done = message.0 == until;
        received.push(message);
        if done {
            return received;
        }
    }
}

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut framed = vec![tag];
    framed.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    framed.extend_from_slice(body);
    framed
}

async fn write_message(socket: &mut TcpStream, tag: u8, body: &[u8]) {
    socket.write_all(&frame(tag, body)).await.expect("writes");
}

/// The next backend message, or `None` once the server has closed the connection.
async fn read_message(socket: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    // A bound on a server that would hang, not a wait for something to happen.
    tokio::time::timeout(Duration::from_secs(30), async {
        let mut header = [0_u8; 5];
        socket.read_exact(&mut header).await.ok()?;
        let length = i32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut body = vec![0_u8; length - 4];
        socket.read_exact(&mut body).await.ok()?;
        Some((header[0], body))
    })
    .await
    .expect("the server answers or closes within 30 s")
}

/// The fields of an ErrorResponse body, by their one-letter code.
fn error_fields(body: &[u8]) -> Vec<(char, String)> {
    body.split(|b| *b == 0)
        .filter(|field| !field.is_empty())
        .map(|field| (field[0] as char, String::from_utf8_lossy(&field[1..]).into_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_refusal_is_28p01_and_runs_nothing_pipelined_behind_it() {
    let server = start_server(account_context(), Some(credentials())).await;
    for user in [USER, "someone_else"] {
        let received = scram_with_a_bad_proof(server.addr, user).await;
        assert_eq!(received.len(), 1, "only the refusal, no query result: {received:?}");
        let (tag, body) = &received[0];
        assert_eq!(*tag, b'E');
        let fields = error_fields(body);
        assert!(fields.contains(&('S', "FATAL".to_owned())), "{fields:?}");
        assert!(fields.contains(&('C', "28P01".to_owned())), "{fields:?}");
        assert!(fields.contains(&('M', format!("password authentication failed for user \"{user}\""))), "{fields:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_concurrent_clients_authenticate_independently() {
    let server = start_server(account_context(), Some(credentials())).await;
    let attempts = (0..6).map(|i| {
        let password = if i % 3 == 2 { "wrong" } else { PASSWORD };
        let sql = format!("SELECT {i} + count(*) FROM account");
        async move { (i, psql(server.addr, USER, Some(password), &["-A", "-t", "-c", &sql]).await) }
    });
    for (i, output) in futures::future::join_all(attempts).await {
        if i % 3 == 2 {
            assert!(failed(&output).contains("password authentication failed"));
        } else {
            assert_eq!(ok(&output), format!("{}\n", i + 3));
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_loopback_without_credentials_accepts_any_user() {
    let server = start_server(account_context(), None).await;
    for user in ["analyst", "anyone"] {
        let out = ok(&psql(server.addr, user, None, &["-A", "-t", "-c", "SELECT id FROM account ORDER BY id LIMIT 1"]).await);
        assert_eq!(out, "001A\n");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_non_loopback_listen_requires_a_password() {
    let everywhere = SocketAddr::from(([0, 0, 0, 0], 0));
    let error = PgServer::bind(account_context(), PgServerConfig::new(everywhere)).await.expect_err("refused");
    assert!(matches!(error, PgServerError::PasswordRequired { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "refusing to listen on 0.0.0.0:0 without a password: set a user and password, or listen on a loopback \
         address such as 127.0.0.1"
    );

    let empty = PgCredentials::new(USER, SecretString::from(""));
    let config = PgServerConfig { credentials: Some(empty), ..PgServerConfig::new(everywhere) };
    let error = PgServer::bind(account_context(), config).await.expect_err("refused");
    assert!(matches!(error, PgServerError::EmptyPassword), "{error:?}");

    // A password is not enough: rows would cross the network in clear.
    let config = PgServerConfig { credentials: Some(credentials()), ..PgServerConfig::new(everywhere) };
    let error = PgServer::bind(account_context(), config).await.expect_err("refused");
    assert!(matches!(error, PgServerError::TlsRequired { .. }), "{error:?}");
    assert!(error.to_string().contains("without TLS: give sql.tls"), "{error}");

    let dir = tempfile::tempdir().expect("a temp dir");
    let tls = tls_files(dir.path());
    let config = PgServerConfig { credentials: Some(credentials()), tls: Some(tls), ..PgServerConfig::new(everywhere) };
    let server = start_with(account_context(), config).await;
    assert_ne!(server.addr.port(), 0);
    // psql prefers TLS, and the server refuses anything else beyond loopback: this login is TLS.
    assert_eq!(ok(&psql(server.addr, USER, Some(PASSWORD), &["-A", "-t", "-c", "SELECT 'reachable'"]).await), "reachable\n");
    server.stop().await;
}

/// A certificate for localhost (the simulator's generator) written as the endpoint's PEM files.
pub fn tls_files(dir: &std::path::Path) -> tidemark_query::pg::PgTls {
    let certificate = tidemark_sfsim::tls::SimCertificate::generate().expect("a certificate");
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, certificate.server_chain_pem()).expect("writes the chain");
    std::fs::write(&key_file, certificate.server_key_pem()).expect("writes the key");
    tidemark_query::pg::PgTls { cert_file, key_file, required: true }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_tls_certificates_that_cannot_serve_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let good = tls_files(dir.path());
    let listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let bind = |tls: tidemark_query::pg::PgTls| async move {
        let config = PgServerConfig { credentials: Some(credentials()), tls: Some(tls), ..PgServerConfig::new(listen) };
        PgServer::bind(account_context(), config).await.map(|_| ())
    };
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").expect("writes");
    let error = bind(tidemark_query::pg::PgTls { cert_file: empty.clone(), ..good.clone() }).await.expect_err("no certificate");
    assert!(error.to_string().contains("empty.pem") && error.to_string().contains("no certificate"), "{error}");
    let error = bind(tidemark_query::pg::PgTls { key_file: empty, ..good.clone() }).await.expect_err("no key");
    assert!(error.to_string().contains("empty.pem") && error.to_string().contains("no private key"), "{error}");
    let other = tls_files(&{
        let d = dir.path().join("other");
        std::fs::create_dir(&d).expect("a dir");
        d
    });
    let error = bind(tidemark_query::pg::PgTls { key_file: other.key_file, ..good.clone() }).await.expect_err("mismatch");
    assert!(error.to_string().contains("does not match"), "{error}");
    bind(good).await.expect("a matching chain and key bind");
}

#[test]
fn pg_credentials_debug_hides_the_password() {
    let config =
        PgServerConfig { credentials: Some(credentials()), ..PgServerConfig::new(SocketAddr::from(([127, 0, 0, 1], 5433))) };
    let shown = format!("{config:?}");
    assert!(shown.contains(USER), "{shown}");
    assert!(!shown.contains(PASSWORD) && !shown.contains("wörd"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_catalog_queries_list_the_table() {
    let server = start_server(account_context(), None).await;
    let run = |args: &'static [&'static str]| psql(server.addr, USER, None, args);

    let tables = ok(&run(&["-A", "-t", "-c", "\\dt"]).await);
    assert!(tables.lines().any(|line| line.starts_with("public|account|table|")), "{tables}");

    let describe = ok(&run(&["-A", "-t", "-c", "\\d account"]).await);
    for column in ["id|text", "employees|bigint", "revenue|numeric", "created_at|timestamp with time zone", "active|boolean"] {
        assert!(describe.lines().any(|line| line.starts_with(column)), "{column} in:\n{describe}");
    }

    let pg_tables = ok(&run(&["-A", "-t", "-c", "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public'"]).await);
    assert_eq!(pg_tables, "account\n");

    let information_schema = ok(&run(&[
        "-A",
        "-t",
        "-c",
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    ])
    .await);
    assert_eq!(information_schema, "account\n");

    let columns = ok(&run(&[
        "-A",
        "-t",
        "-c",
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'account' ORDER BY ordinal_position",
    ])
    .await);
    assert_eq!(columns, "id\nname\nemployees\nrevenue\ncreated_at\nactive\nindustry\nfounded\n");

    let functions =
        ok(&run(&["-A", "-t", "-c", "SELECT current_database(), current_schema(), current_user, version() IS NOT NULL"]).await);
    assert_eq!(functions, "datafusion|public|analyst|t\n");

    // psql 15's other meta-commands: `ARRAY(SELECT …)` (\d+, \du), pg_function_is_visible and
    // pg_get_function_result (\df), the comment lookups of every `+` listing.
    let verbose = ok(&run(&["-A", "-t", "-c", "\\d+ account"]).await);
    for column in
        ["id|text||not null||extended|||", "employees|bigint||||plain|||", "created_at|timestamp with time zone||||plain|||"]
    {
        assert!(verbose.lines().any(|line| line == column), "{column} in:\n{verbose}");
    }
    // Without credentials every user name gets in: the roles are the users that connected.
    assert_eq!(ok(&run(&["-A", "-t", "-c", "\\du"]).await), "analyst||{}\n");
    let functions = ok(&run(&["-A", "-c", "\\df"]).await);
    assert!(
        functions.starts_with("List of functions\nSchema|Name|Result data type|Argument data types|Type\n(0 rows)"),
        "{functions}"
    );
    let databases = ok(&run(&["-A", "-t", "-c", "\\l"]).await);
    assert!(databases.lines().any(|line| line.starts_with("datafusion|")), "{databases}");
    assert_eq!(ok(&run(&["-A", "-t", "-c", "\\dn"]).await), "public|postgres\n");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_psql_describes_lake_views_with_a_definition_that_runs() {
    let mut h = Harness::start(20, 31).await;
    h.sync().await;
    let session = QuerySession::open(h.lake.clone(), ReadOptions::default()).await.expect("session opens");
    let server = start_server(session.context(), Some(credentials())).await;
    let run = async |args: &[&str]| ok(&psql(server.addr, USER, Some(PASSWORD), args).await);

    let view = run(&["-A", "-c", "\\d+ account"]).await;
    assert!(view.starts_with("View \"public.account\"\n"), "{view}");
    for line in ["id|text||not null||extended|", "_version_at|timestamp with time zone||not null||plain|", "View definition:"] {
        assert!(view.lines().any(|l| l == line), "{line} in:\n{view}");
    }
    assert!(view.contains("FROM \"account_history\""), "{view}");
    let table = run(&["-A", "-c", "\\d+ account_history"]).await;
    assert!(
        table.starts_with("Table \"public.account_history\"\n") && table.contains("\n_deleted|boolean||not null|"),
        "{table}"
    );
    // With credentials the one user is the role.
    assert_eq!(run(&["-A", "-t", "-c", "\\du"]).await, "analyst||{}\n");

    // The definition psql shows is SQL with the relation's rows.
    for relation in ["contact", "contact_scd2"] {
        let sql = format!("SELECT pg_get_viewdef('{relation}'::regclass, true)");
        let definition = run(&["-A", "-t", "-c", &sql]).await;
        let count = async |sql: String| {
            let batches = session.sql(&sql).await.expect("plans").collect().await.expect("runs");
            tidemark_lake::arrow::util::pretty::pretty_format_batches(&batches).expect("prints").to_string()
        };
        let direct = count(format!("SELECT count(*) AS n, count(DISTINCT id) AS ids FROM {relation}")).await;
        let defined =
            count(format!("SELECT count(*) AS n, count(DISTINCT id) AS ids FROM ({}) AS d", definition.trim_end())).await;
        assert_eq!(defined, direct, "{relation} defined as:\n{definition}");
    }
    assert_eq!(run(&["-A", "-t", "-c", "SELECT pg_get_viewdef('contact_history'::regclass) IS NULL"]).await, "t\n");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_bad_sql_is_an_error_and_the_server_goes_on() {
    let server = start_server(account_context(), None).await;
    let run = async |sql: &str| psql(server.addr, USER, None, &["-A", "-t", "-c", sql]).await;

    let missing = failed(&run("SELECT * FROM no_such_table").await);
    assert!(missing.contains("ERROR:") && missing.contains("no_such_table"), "{missing}");
    let syntax = failed(&run("SELEC 1").await);
    assert!(syntax.contains("ERROR:"), "{syntax}");
    let runtime = failed(&run("SELECT CAST(name AS BIGINT) FROM account").await);
    assert!(runtime.contains("ERROR:"), "{runtime}");

    // The same connection goes on after an error, and so does the server.
    let session = ok(&psql(
        server.addr,
        USER,
        None,
        &["-A", "-t", "-v", "ON_ERROR_STOP=0", "-c", "SELECT * FROM no_such_table", "-c", "SELECT 'still here'"],
    )
    .await);
    assert_eq!(session, "still here\n");
    assert_eq!(ok(&run("SELECT count(*) FROM account").await), "3\n");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_unknown_lake_table_lists_the_closest_names() {
    let mut h = Harness::start(20, 24).await;
    h.sync().await;
    let session = QuerySession::open(h.lake.clone(), ReadOptions::default()).await.expect("session opens");
    let server = start_server(session.context(), None).await;

    // Simple protocol.
    let typo = failed(&psql(server.addr, USER, None, &["-c", "SELECT name FROM acount"]).await);
    assert!(typo.contains("ERROR:") && typo.contains("did you mean 'account'"), "{typo}");

    // Extended protocol: psql 15 cannot send a Parse of its own, so the raw message.
    let mut socket = connect_as(server.addr, USER).await;
    read_until(&mut socket, b'Z').await;
    let mut parse = b"\0SELECT * FROM contact_histroy WHERE id = $1\0".to_vec();
    parse.extend_from_slice(&0_i16.to_be_bytes());
    let mut pipelined = frame(b'P', &parse);
    pipelined.extend(frame(b'S', b""));
    socket.write_all(&pipelined).await.expect("writes");
    let received = read_until(&mut socket, b'Z').await;
    let (_, body) = received.iter().find(|(tag, _)| *tag == b'E').unwrap_or_else(|| panic!("an error: {received:?}"));
    let message = error_fields(body).into_iter().find(|(code, _)| *code == 'M').expect("a message").1;
    assert!(message.contains("did you mean 'contact_history'"), "{message}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_endpoint_is_read_only() {
    let server = start_server(account_context(), None).await;
    let scratch = tempfile::tempdir().expect("temp dir");
    let copy_target = scratch.path().join("out.csv");
    let copy = format!("COPY (SELECT * FROM account) TO '{}'", copy_target.display());
    let writes = [
        "CREATE TABLE t AS SELECT 1 AS x",
        "CREATE VIEW v AS SELECT 1 AS x",
        "DROP TABLE account",
        "INSERT INTO account (id) VALUES ('x')",
        "DELETE FROM account",
        "SELECT id INTO copied FROM account",
        copy.as_str(),
        "EXPLAIN ANALYZE INSERT INTO account (id) VALUES ('x')",
        "PREPARE sneaky AS INSERT INTO account (id) VALUES ('x')",
        "DECLARE c CURSOR FOR SELECT id INTO copied2 FROM account",
    ];
    for sql in writes {
        let refused = failed(&psql(server.addr, USER, None, &["-v", "VERBOSITY=verbose", "-c", sql]).await);
        assert!(refused.contains("ERROR:  25006: the Tidemark Postgres endpoint is read-only"), "{sql}: {refused}");
    }
    assert!(!copy_target.exists(), "COPY wrote {}", copy_target.display());

    let still = ok(&psql(server.addr, USER, None, &["-A", "-t", "-c", "SELECT count(*) FROM account"]).await);
    assert_eq!(still, "3\n");
    let tables = ok(&psql(
        server.addr,
        USER,
        None,
        &["-A", "-t", "-c", "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"],
    )
    .await);
    assert_eq!(tables, "account\n");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_connections_beyond_the_limit_are_refused() {
    let config = PgServerConfig { max_connections: 1, ..PgServerConfig::new(SocketAddr::from(([127, 0, 0, 1], 0))) };
    let server = start_with(account_context(), config).await;
    // Accepted first (connections are accepted in order), it holds the only slot.
    let _holder = TcpStream::connect(server.addr).await.expect("connects");
    let refused = failed(&psql(server.addr, USER, None, &["-c", "SELECT 1"]).await);
    assert!(refused.contains("sorry, too many clients already"), "{refused}");
    server.stop().await;
}
