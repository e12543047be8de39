//! TLS and authentication: a plaintext startup is refused with 28000 before authentication and
//! `sslmode=disable` fails; encryption only, verify-full against the CA by name and channel
//! binding succeed, another CA fails; a wrong password and an unknown user fail with the same
//! message; and beyond loopback with users, serve-sql does not start without `sql.tls`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::{ALICE, BIN, BOB, ROOT, Who, first_line, fixture};

#[test]
fn tls_is_required_verified_and_authenticates_alike() {
    let fx = fixture();
    let server = &fx.server;
    let with = |env: &[(&str, Option<&str>)], who: Who| {
        let mut command = server.psql_command(who);
        for (k, v) in env {
            match v {
                Some(v) => command.env(k, v),
                None => command.env_remove(k),
            };
        }
        command.args(["-c", "SELECT 41 + 1"]).output().expect("psql runs")
    };

    // Plaintext is refused before authentication, with SQLSTATE 28000.
    let (code, message) = plaintext_startup(server.port, ALICE.user).unwrap_or_else(|e| panic!("plaintext startup: {e}"));
    assert_eq!(code, "28000", "plaintext startup refused with 28000: {message}");
    assert!(message.contains("SSL"), "the refusal mentions SSL: {message}");
    let out = with(&[("PGSSLMODE", Some("disable"))], ALICE);
    assert!(!out.status.success(), "sslmode=disable must be refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SSL"), "sslmode=disable: the refusal mentions SSL:\n{stderr}");

    // Encryption only; verified against the CA by name; channel binding.
    let ok = |out: Output, what: &str| assert_eq!(server.ok(&out, what), "42\n", "{what}");
    ok(with(&[("PGSSLMODE", Some("require")), ("PGSSLROOTCERT", Some("/nonexistent/root.crt"))], ALICE), "sslmode=require");
    ok(with(&[("PGHOSTADDR", None)], ALICE), "verify-full to localhost");
    ok(with(&[("PGCHANNELBINDING", Some("require"))], ALICE), "channel binding required (SCRAM-SHA-256-PLUS)");
    ok(with(&[], ROOT), "root over verify-full");
    let out = with(&[("PGSSLROOTCERT", Some(fx.other_ca.to_str().expect("utf-8 path")))], ALICE);
    assert!(!out.status.success(), "verify-full against another CA must fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("certificate verify failed"), "another CA:\n{stderr}");

    // A wrong password and an unknown user fail alike (28P01's message; libpq shows no SQLSTATE
    // for connection failures).
    let wrong = with(&[("PGPASSWORD", Some("not-the-password"))], ALICE);
    let unknown = with(&[("PGPASSWORD", Some("not-the-password"))], Who { user: "mallory", password: "x" });
    assert!(!wrong.status.success() && !unknown.status.success(), "both logins must fail");
    let wrong = String::from_utf8_lossy(&wrong.stderr).replace("\"alice\"", "\"<user>\"");
    let unknown = String::from_utf8_lossy(&unknown.stderr).replace("\"mallory\"", "\"<user>\"");
    assert!(wrong.contains("password authentication failed for user \"<user>\""), "{wrong}");
    assert_eq!(wrong, unknown, "a wrong password and an unknown user must be indistinguishable");

    // Beyond loopback with users, TLS is mandatory: the server does not start.
    let config = fx.write_config("no-tls.yaml", None, false);
    let mut child = Command::new(BIN)
        .arg("serve-sql")
        .arg("--config")
        .arg(&config)
        .arg("--lake")
        .arg(&fx.lake)
        .args(["--listen", "0.0.0.0:0"])
        .envs([("TM_ALICE", ALICE.password), ("TM_BOB", BOB.password), ("TM_ROOT", ROOT.password)])
        .env_remove("TIDEMARK_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve-sql runs");
    let first = first_line(&mut child, &fx.dir.join("no-tls.stdout"));
    if let Some(line) = first {
        let _ = child.kill();
        let _ = child.wait();
        panic!("serve-sql on 0.0.0.0 without sql.tls must not start, but printed {line:?}");
    }
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("reads stderr");
    let status = child.wait().expect("waits");
    assert!(!status.success(), "serve-sql on 0.0.0.0 without sql.tls: {status}");
    assert!(stderr.contains("sql.tls"), "the error names sql.tls:\n{stderr}");
}

/// Opens a plaintext connection and sends a startup message for `user`: the SQLSTATE and
/// message of the server's ErrorResponse, or what it sent instead.
fn plaintext_startup(port: u16, user: &str) -> Result<(String, String), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let mut body = 196_608u32.to_be_bytes().to_vec(); // protocol 3.0
    for (k, v) in [("user", user), ("database", "tidemark")] {
        body.extend(k.as_bytes());
        body.push(0);
        body.extend(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut message = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    message.extend(body);
    stream.write_all(&message).map_err(|e| e.to_string())?;
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).map_err(|e| format!("no answer: {e}"))?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut payload = vec![0u8; len.saturating_sub(4).min(1 << 16)];
    stream.read_exact(&mut payload).map_err(|e| e.to_string())?;
    if head[0] != b'E' {
        return Err(format!("message {:?} instead of an ErrorResponse: {payload:?}", head[0] as char));
    }
    let mut fields = BTreeMap::new();
    for field in payload.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        fields.insert(field[0], String::from_utf8_lossy(&field[1..]).into_owned());
    }
    Ok((fields.remove(&b'C').unwrap_or_default(), fields.remove(&b'M').unwrap_or_default()))
}
