//! Access control, TLS and the query log of `tidemark serve-sql`, end to end with psql 15 and
//! psycopg 3 (docs/design/access-control.md §6), on one lake `tidemark demo` wrote.
//!
//! Three users: `alice` and `bob` are analysts (account and contact only; phone masked, annual
//! revenue denied, a row filter on the account's industry, which differs between them), `root`
//! reads everything. Every expected value comes from root's queries on the same server, with the
//! analyst's predicate and masks applied here by hand, so each assertion reads "exactly what the
//! grants allow": no count is written down.
//!
//! The demo lake (seed 7) has no account in "Technology": alice's and bob's industries are
//! picked from the lake (the most frequent industries that exist both now and at the pinned
//! table version), so that the row filter keeps some rows and drops others.
//!
//! One lake and one TLS server are shared by the tests (built on first use; the demo run costs
//! seconds). Statics are never dropped, so that server and the temporary folder are removed by
//! an `atexit` hook. The query-log scenario runs on its own server, stopped with SIGINT before
//! the shared server starts, so every record of `_tidemark/query_log` is one of its statements.
//!
//! Needs psql (`/usr/bin/psql`, libpq 15) and the interop venv's psycopg (`scripts/python-venv.sh`).
//!
//! The tests are grouped by topic: [`tls`], [`rows`], [`columns`], [`relations`], [`catalogs`],
//! [`psycopg`], [`pinned`] and [`query_log`] (which also holds the query-log scenario itself).

mod catalogs;
mod columns;
mod pinned;
mod psycopg;
mod query_log;
mod relations;
mod rows;
mod sources;
mod tls;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{LazyLock, Mutex, Once, mpsc};
use std::time::Duration;

use crate::sql::{instant, parse_csv, run, succeeded};
use query_log::LogSession;

const BIN: &str = env!("CARGO_BIN_EXE_tidemark");
const PSQL: &str = "/usr/bin/psql";
/// The pinned table version of the second server: account's first data commit (version 0 is
/// the empty table the first sync creates).
const PINNED_VERSION: &str = "1";

#[derive(Clone, Copy, Debug)]
struct Who {
    user: &'static str,
    password: &'static str,
}

const ALICE: Who = Who { user: "alice", password: "alice-Pw-1" };
const BOB: Who = Who { user: "bob", password: "bob-Pw-2" };
const ROOT: Who = Who { user: "root", password: "root-Pw-3" };

/// What the analyst role may read: every form of these objects.
const GRANTED: [&str; 6] = ["account", "account_history", "account_scd2", "contact", "contact_history", "contact_scd2"];
/// Columns the analyst role must not see, per object.
const DENIED_ACCOUNT: [&str; 1] = ["annualrevenue"];
const DENIED_CONTACT: [&str; 2] = ["homephone", "tax_id__c"];

// ---------------------------------------------------------------------------------------------
// The shared fixture

struct Fixture {
    dir: PathBuf,
    lake: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
    other_ca: PathBuf,
    /// alice's and bob's `industry` attribute.
    alice_industry: String,
    bob_industry: String,
    /// Just before account's first delete (a TIMESTAMP literal's text).
    before_delete: String,
    /// The query-log scenario, run before `server` started.
    log: LogSession,
    server: Server,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(Fixture::new);

fn fixture() -> &'static Fixture {
    &FIXTURE
}

/// Pids of the shared server and folders to remove when the test binary exits.
static AT_EXIT: Mutex<(Vec<i32>, Vec<PathBuf>)> = Mutex::new((Vec::new(), Vec::new()));

extern "C" fn clean_up_at_exit() {
    // No panics here: this runs inside libc's exit().
    if let Ok(mut state) = AT_EXIT.try_lock() {
        for pid in state.0.drain(..) {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        for dir in state.1.drain(..) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn at_exit(pid: Option<u32>, dir: Option<PathBuf>) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // SAFETY: registers a plain function that neither unwinds nor touches freed state.
        unsafe { libc::atexit(clean_up_at_exit) };
    });
    let mut state = AT_EXIT.lock().unwrap_or_else(|e| e.into_inner());
    state.0.extend(pid.map(|p| p as i32));
    state.1.extend(dir);
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::Builder::new().prefix("tidemark-sql-access").tempdir().expect("temp dir").keep();
        at_exit(None, Some(dir.clone()));
        let lake = dir.join("lake");
        let mut demo = Command::new(BIN);
        demo.args(["demo", "--quiet", "--accounts", "40", "--seed", "7", "--lake"]).arg(&lake);
        succeeded(&run(&mut demo), "tidemark demo");
        sources::add_sources(&dir, &lake);

        // Industries present now and at the pinned version, the most frequent first.
        let per_industry = |args: &[&str]| -> BTreeMap<String, u64> {
            let sql = "SELECT industry, count(*) AS n FROM account WHERE industry IS NOT NULL GROUP BY industry";
            tidemark_csv(&lake, args, sql).into_iter().map(|r| (r[0].clone(), r[1].parse().expect("a count"))).collect()
        };
        let now = per_industry(&[]);
        let pinned = per_industry(&["--table-version", PINNED_VERSION]);
        let mut candidates: Vec<(u64, String)> =
            now.iter().filter(|(i, _)| pinned.contains_key(*i)).map(|(i, n)| (*n, i.clone())).collect();
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        assert!(candidates.len() >= 2, "two industries in the demo lake now and at version {PINNED_VERSION}: {now:?} {pinned:?}");
        let alice_industry = candidates[0].1.clone();
        let bob_industry = candidates.iter().skip(1).find(|c| c.0 != candidates[0].0).unwrap_or(&candidates[1]).1.clone();

        let first_delete =
            tidemark_csv(&lake, &[], "SELECT CAST(min(_version_at) AS BIGINT) FROM account_history WHERE _deleted");
        let first_delete: i64 = first_delete[0][0].parse().expect("account has deleted versions");
        let before_delete = instant(first_delete - 1);

        let certificate = tidemark_sfsim::tls::SimCertificate::generate().expect("a certificate");
        let other = tidemark_sfsim::tls::SimCertificate::generate().expect("another CA");
        let [cert, key, ca, other_ca] = ["cert.pem", "key.pem", "ca.pem", "other-ca.pem"].map(|f| dir.join(f));
        std::fs::write(&cert, certificate.server_chain_pem()).expect("writes cert.pem");
        std::fs::write(&key, certificate.server_key_pem()).expect("writes key.pem");
        std::fs::write(&ca, certificate.ca_pem()).expect("writes ca.pem");
        std::fs::write(&other_ca, other.ca_pem()).expect("writes other-ca.pem");

        let mut fixture = Fixture {
            dir,
            lake,
            cert,
            key,
            ca,
            other_ca,
            alice_industry,
            bob_industry,
            before_delete,
            log: LogSession::default(),
            server: Server { child: None, port: 0, ca: PathBuf::new(), log: PathBuf::new() },
        };
        let logged = fixture.write_config("access-log.yaml", Some("lake"), true);
        fixture.log = LogSession::run(&fixture, &logged);
        // The shared server writes no query log: every record comes from the scenario above.
        let config = fixture.write_config("access.yaml", Some("off"), true);
        fixture.server = fixture.start(&config, &[], "serve-sql");
        at_exit(fixture.server.child.as_ref().map(Child::id), None);
        fixture
    }

    /// Writes the access configuration to `dir/name`.
    fn write_config(&self, name: &str, query_log: Option<&str>, tls: bool) -> PathBuf {
        let tls = match tls {
            true => format!(
                "  tls: {{cert_file: {}, key_file: {}, required: true}}\n",
                yaml_str(&self.cert.display().to_string()),
                yaml_str(&self.key.display().to_string())
            ),
            false => String::new(),
        };
        let query_log = query_log.map(|to| format!("  query_log: {{to: {to}}}\n")).unwrap_or_default();
        let text = format!(
            "sql:\n{tls}  users:\n    \
               alice: {{password: \"${{TM_ALICE}}\", role: analyst, attributes: {{industry: {alice}}}}}\n    \
               bob: {{password: \"${{TM_BOB}}\", role: analyst, attributes: {{industry: {bob}}}}}\n    \
               root: {{password: \"${{TM_ROOT}}\", role: admin}}\n  \
             roles:\n    \
               admin: {{objects: [\"*\", \"*.*\"], marts: [\"*\"], internal: [\"*\"]}}\n    \
               analyst:\n      \
                 objects: [account, contact, \"legacy.*\"]\n      \
                 marts: []\n      \
                 internal: []\n      \
                 columns:\n        \
                   account: {{phone: \"mask:last4\", annualrevenue: deny}}\n        \
                   contact: {{email: \"mask:email\", homephone: deny, \"tax_id*\": deny, firstname: \"mask:initial\", \
                              title: \"mask:redact\", mailingcity: \"null\"}}\n        \
                   \"legacy.*\": {{note: \"mask:redact\"}}\n      \
                 rows:\n        \
                   account: \"industry = user_attr('industry')\"\n        \
                   legacy.sales_orders: \"amount < 100\"\n\
             {query_log}",
            alice = yaml_str(&self.alice_industry),
            bob = yaml_str(&self.bob_industry),
        );
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("writes the config");
        path
    }

    /// `serve-sql --config <config> --lake <lake> --listen 127.0.0.1:0 <args>`.
    fn start(&self, config: &Path, args: &[&str], name: &str) -> Server {
        let mut command = Command::new(BIN);
        command.arg("serve-sql").arg("--config").arg(config).arg("--lake").arg(&self.lake);
        command.args(["--listen", "127.0.0.1:0"]).args(args);
        Server::start(command, &self.ca, &self.dir.join(format!("{name}.log")))
    }

    fn industry(&self, who: Who) -> &str {
        match who.user {
            "alice" => &self.alice_industry,
            "bob" => &self.bob_industry,
            other => panic!("{other} has no industry"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The server and psql

/// A `tidemark serve-sql` process, killed when dropped (a failing test included).
struct Server {
    child: Option<Child>,
    port: u16,
    /// The CA psql verifies the server with.
    ca: PathBuf,
    /// The server's standard error.
    log: PathBuf,
}

impl Server {
    fn start(mut command: Command, ca: &Path, log: &Path) -> Server {
        let mut child = command
            .envs([("TM_ALICE", ALICE.password), ("TM_BOB", BOB.password), ("TM_ROOT", ROOT.password)])
            .env("RUST_LOG", "info")
            .env_remove("TIDEMARK_CONFIG")
            .env_remove("TIDEMARK_SQL_PASSWORD")
            .env_remove("TIDEMARK_SQL_USER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("a log file"))
            .spawn()
            .expect("serve-sql starts");
        let first = first_line(&mut child, &log.with_extension("stdout"));
        let mut server = Server { child: Some(child), port: 0, ca: ca.to_owned(), log: log.to_owned() };
        let addr = first.as_deref().and_then(|l| l.strip_prefix("listening on ")).and_then(|r| r.split_once(' '));
        let addr: std::net::SocketAddr = addr.and_then(|(a, _)| a.parse().ok()).unwrap_or_else(|| {
            let status = server.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            panic!("'listening on ADDR …' expected, got {first:?} (exit: {status:?}); log:\n{}", server.log_text())
        });
        server.port = addr.port();
        server
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// psql with verified TLS (verify-full against the CA, host name `localhost`, address
    /// 127.0.0.1) as `who`, unaligned tuples only, fields split by U+001F, NULL as `(null)`.
    fn psql_command(&self, who: Who) -> Command {
        let mut command = Command::new(PSQL);
        command
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-F", "\x1f"])
            .args(["-P", "null=(null)", "-P", "footer=off", "-h", "localhost", "-p", &self.port.to_string()])
            .args(["-U", who.user, "-d", "tidemark"])
            .env("PGPASSWORD", who.password)
            .env("PGHOSTADDR", "127.0.0.1")
            .env("PGSSLMODE", "verify-full")
            .env("PGSSLROOTCERT", &self.ca)
            .env("PGSSLCERT", "/nonexistent/client.crt")
            .env("PGSSLKEY", "/nonexistent/client.key")
            .env("PGPASSFILE", "/nonexistent/pgpass")
            .env("PGCONNECT_TIMEOUT", "30")
            .env("PGAPPNAME", "sql_access")
            .env_remove("PGCHANNELBINDING")
            .env_remove("PGSERVICE")
            .env_remove("PGOPTIONS")
            .env_remove("PGSSLCRL")
            .env_remove("PGREQUIRESSL")
            .stdin(Stdio::null());
        command
    }

    fn psql(&self, who: Who, args: &[&str]) -> Output {
        self.psql_command(who).args(args).output().expect("psql runs")
    }

    /// The rows of statements that must succeed, each row's fields.
    fn rows(&self, who: Who, sql: &str) -> Vec<Vec<String>> {
        self.rows_of(who, &["-c", sql], sql)
    }

    fn rows_of(&self, who: Who, args: &[&str], what: &str) -> Vec<Vec<String>> {
        let out = self.psql(who, args);
        let text = self.ok(&out, &format!("{} ({}): {what}", who.user, self.port));
        text.lines().filter(|l| !l.is_empty()).map(|l| l.split('\x1f').map(str::to_owned).collect()).collect()
    }

    /// The first field of every row, sorted.
    fn sorted(&self, who: Who, sql: &str) -> Vec<String> {
        let mut rows: Vec<String> = self.rows(who, sql).into_iter().map(|r| r.join("|")).collect();
        rows.sort();
        rows
    }

    /// The single number a query returns.
    fn number(&self, who: Who, sql: &str) -> u64 {
        let rows = self.rows(who, sql);
        assert!(rows.len() == 1 && rows[0].len() == 1, "{} ({}): one value expected: {rows:?}", who.user, sql);
        rows[0][0].parse().unwrap_or_else(|e| panic!("{} ({}): a number expected ({e}): {rows:?}", who.user, sql))
    }

    /// The column names of a query's result (psql's header; the query's rows are left out).
    fn columns(&self, who: Who, sql: &str) -> Vec<String> {
        let out = self.psql_command(who).args(["-P", "tuples_only=off", "-c", sql]).output().expect("psql runs");
        let text = self.ok(&out, &format!("{} (header): {sql}", who.user));
        text.lines().next().unwrap_or_default().split('\x1f').map(str::to_owned).collect()
    }

    /// psql's standard error for a statement that must fail.
    fn error(&self, who: Who, sql: &str) -> String {
        self.error_of(who, &["-c", sql], sql)
    }

    fn error_of(&self, who: Who, args: &[&str], what: &str) -> String {
        let out = self.psql(who, args);
        assert!(
            !out.status.success(),
            "{} ({}): {what} succeeded but must fail:\n{}",
            who.user,
            self.port,
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn ok(&self, out: &Output, what: &str) -> String {
        assert!(
            out.status.success(),
            "{what}: psql {}\nstdout: {}\nstderr: {}\nserver log (tail):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log_text(), 30)
        );
        String::from_utf8(out.stdout.clone()).expect("utf-8 output")
    }

    /// SIGINT (Ctrl-C), then the wait for the process to end; `None` if it was gone already.
    fn interrupt(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if child.try_wait().ok().flatten().is_some() {
            return child.wait().ok();
        }
        // SAFETY: the pid is our child's, not reaped yet (try_wait above saw it running).
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        child.wait().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The first line the child prints (the wait for it to listen), or `None` when it exits first;
/// the rest of its standard output goes to `rest` (so later writes never hit a closed pipe).
fn first_line(child: &mut Child, rest: &Path) -> Option<String> {
    let stdout = child.stdout.take().expect("stdout");
    let mut rest = std::fs::File::create(rest).expect("a file for standard output");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let read = reader.read_line(&mut line);
        let _ = tx.send(match read {
            Ok(n) if n > 0 => Some(line.trim_end().to_owned()),
            _ => None,
        });
        let _ = std::io::copy(&mut reader, &mut rest);
    });
    rx.recv_timeout(Duration::from_secs(120)).expect("serve-sql prints a line or exits within two minutes")
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/// `tidemark sql --lake <lake> --format csv <args> <sql>`, header left out.
fn tidemark_csv(lake: &Path, args: &[&str], sql: &str) -> Vec<Vec<String>> {
    let mut command = Command::new(BIN);
    command.arg("sql").arg("--lake").arg(lake).args(["--format", "csv"]).args(args).arg(sql);
    let mut rows = parse_csv(&succeeded(&run(&mut command), sql));
    assert!(!rows.is_empty(), "{sql}: a CSV header");
    rows.remove(0);
    rows
}

/// A double-quoted YAML scalar.
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a JSON string is a YAML string")
}

/// An SQL string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// psql prints NULL as this.
const NULL: &str = "(null)";

/// The masks, as governance's `MaskPattern::apply` defines them; NULL stays NULL.
fn masked(value: &str, mask: fn(&str) -> String) -> String {
    if value == NULL { value.to_owned() } else { mask(value) }
}

fn last4(v: &str) -> String {
    let chars: Vec<char> = v.chars().collect();
    let keep = chars.len().saturating_sub(4);
    if chars.len() <= 4 { "*".repeat(chars.len()) } else { "*".repeat(keep) + &chars[keep..].iter().collect::<String>() }
}

fn email(v: &str) -> String {
    match v.rsplit_once('@') {
        Some((_, domain)) => format!("***@{domain}"),
        None => "***".to_owned(),
    }
}

fn initial(v: &str) -> String {
    v.chars().next().map(|c| format!("{c}.")).unwrap_or_default()
}

fn redact(_: &str) -> String {
    "[redacted]".to_owned()
}

fn null(_: &str) -> String {
    NULL.to_owned()
}

/// Asserts a refusal: SQLSTATE 42501 and `permission denied for table <relation>`.
fn assert_denied(stderr: &str, relation: &str, what: &str) {
    assert!(
        stderr.contains("42501") && stderr.contains(&format!("permission denied for table {relation}")),
        "{what}: 42501 'permission denied for table {relation}' expected, got:\n{stderr}"
    );
}
