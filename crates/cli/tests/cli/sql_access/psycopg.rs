//! psycopg 3 over verify-full TLS: server-side bound parameters (text and binary results) see
//! the same columns, masks and row filters as psql, a bound real value matches nothing, and a
//! hidden relation is refused with 42501 while a denied column is simply absent.

use std::process::{Command, Stdio};

use serde_json::Value as J;

use super::{ALICE, DENIED_ACCOUNT, DENIED_CONTACT, ROOT, email, fixture, last4, lit, tail};
use crate::common::python;

#[test]
fn psycopg_binds_parameters_over_verified_tls() {
    let fx = fixture();
    let server = &fx.server;
    let industry = lit(&fx.alice_industry);
    let visible = server.rows(
        ROOT,
        &format!("SELECT id, phone FROM account WHERE industry = {industry} AND phone IS NOT NULL ORDER BY id LIMIT 1"),
    );
    let hidden = server.rows(ROOT, &format!("SELECT id FROM account WHERE industry <> {industry} ORDER BY id LIMIT 1"));
    let contact = server.rows(ROOT, "SELECT id, email FROM contact WHERE email IS NOT NULL ORDER BY id LIMIT 1");
    let root_columns = server.columns(ROOT, "SELECT * FROM account LIMIT 0");
    let root_contact_columns = server.columns(ROOT, "SELECT * FROM contact LIMIT 0");

    // psycopg 3's default cursor binds on the server (Parse with $1, Bind, Describe, Execute).
    let script = r#"
import json, sys
import psycopg
port, ca, user, password, visible, hidden, real_phone, other_industry, contact = sys.argv[1:]
out = {}
with psycopg.connect(host="localhost", hostaddr="127.0.0.1", port=int(port), user=user, password=password,
                     dbname="tidemark", sslmode="verify-full", sslrootcert=ca, sslcert="/nonexistent/client.crt",
                     sslkey="/nonexistent/client.key", autocommit=True, connect_timeout=30) as conn:
    out["ssl"] = conn.pgconn.ssl_in_use
    cur = conn.execute("SELECT * FROM account WHERE id = %s", (visible,))
    out["columns"] = [d.name for d in cur.description]
    out["visible_rows"] = len(cur.fetchall())
    out["phone_visible"] = [r[0] for r in conn.execute("SELECT phone FROM account WHERE id = %s", (visible,))]
    out["phone_hidden"] = [r[0] for r in conn.execute("SELECT phone FROM account WHERE id = %s", (hidden,))]
    out["by_real_phone"] = conn.execute("SELECT count(*) FROM account WHERE phone = %s", (real_phone,)).fetchone()[0]
    out["other_industry"] = conn.execute("SELECT count(*) FROM account WHERE industry = %s", (other_industry,)).fetchone()[0]
    cur = conn.execute("SELECT * FROM contact WHERE id = %s", (contact,))
    out["contact_columns"] = [d.name for d in cur.description]
    out["contact_email"] = [r[0] for r in conn.execute("SELECT email FROM contact WHERE id = %s", (contact,))]
    with conn.cursor(binary=True) as cur:
        cur.execute("SELECT id, phone FROM account WHERE id = %b", (visible,))
        out["binary"] = [list(r) for r in cur.fetchall()]
    try:
        conn.execute("SELECT id FROM opportunity WHERE id = %s", (visible,))
        out["denied"] = None
    except psycopg.Error as e:
        out["denied"] = [e.sqlstate, str(e)]
    try:
        conn.execute("SELECT annualrevenue FROM account WHERE id = %s", (visible,))
        out["denied_column"] = None
    except psycopg.Error as e:
        out["denied_column"] = [e.sqlstate, str(e)]
print(json.dumps(out))
"#;
    let (id, phone) = (&visible[0][0], &visible[0][1]);
    let output = Command::new(python())
        .args(["-c", script, &server.port.to_string(), fx.ca.to_str().expect("utf-8 path"), ALICE.user, ALICE.password])
        .args([id, &hidden[0][0], phone, &fx.bob_industry, &contact[0][0]])
        .env_remove("PGSSLMODE")
        .env_remove("PGCHANNELBINDING")
        .stdin(Stdio::null())
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "psycopg script failed:\n{}{}\nserver log (tail):\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        tail(&server.log_text(), 30)
    );
    let out: J = serde_json::from_slice(&output.stdout).expect("JSON from the script");
    assert_eq!(out["ssl"], J::Bool(true), "psycopg's connection is TLS");
    let want: Vec<&String> = root_columns.iter().filter(|c| !DENIED_ACCOUNT.contains(&c.as_str())).collect();
    assert_eq!(out["columns"], serde_json::json!(want), "cursor.description of SELECT * FROM account");
    assert_eq!(out["visible_rows"], 1);
    let want: Vec<&String> = root_contact_columns.iter().filter(|c| !DENIED_CONTACT.contains(&c.as_str())).collect();
    assert_eq!(out["contact_columns"], serde_json::json!(want), "cursor.description of SELECT * FROM contact");
    assert_eq!(out["phone_visible"], serde_json::json!([last4(phone)]), "a bound visible id: the masked phone");
    assert_eq!(out["phone_hidden"], serde_json::json!([]), "a bound hidden id: nothing");
    assert_eq!(out["by_real_phone"], 0, "a bound real phone matches nothing");
    assert_eq!(out["other_industry"], 0, "a bound other industry matches nothing");
    assert_eq!(out["contact_email"], serde_json::json!([email(&contact[0][1])]), "the masked email");
    assert_eq!(out["binary"], serde_json::json!([[id, last4(phone)]]), "binary results are masked too");
    let denied = &out["denied"];
    assert_eq!(denied[0], "42501", "a bound query over opportunity: {denied}");
    assert!(denied[1].as_str().is_some_and(|m| m.contains("permission denied for table opportunity")), "{denied}");
    let denied = &out["denied_column"];
    assert!(denied.is_array() && denied[0] != "42501", "a denied column is absent: {denied}");
}
