//! A throwaway PostgreSQL server per test binary (`initdb` and `pg_ctl` from the Debian
//! packages, `wal_level = logical`, commit timestamps tracked for the [`oracle`], TLS with a
//! test CA's certificate beside plain connections), and a database per test.

pub mod oracle;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A role whose plain-text connections the server rejects (created by the test using it).
pub const TLS_ONLY_USER: &str = "tidemark_tls";

pub struct Server {
    pub port: u16,
    /// The test CA that signed the server's certificate, which names `localhost` only (PEM).
    #[allow(dead_code)] // Not every test binary tests TLS.
    pub ca_file: PathBuf,
    /// A second test CA, which signed nothing the server presents.
    #[allow(dead_code)]
    pub other_ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

/// Runs a server binary, as the `postgres` user when we are root (initdb refuses root).
fn run(program: &Path, args: &[&str]) {
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let out = command.args(args).output().expect("run a PostgreSQL binary");
    assert!(out.status.success(), "{} failed: {}", program.display(), String::from_utf8_lossy(&out.stderr));
}

/// Runs `openssl` in `dir` with whitespace-separated `args`.
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args.split_whitespace())
        .output()
        .expect("the openssl command (apt-get install openssl) to make the test server's certificates");
    assert!(out.status.success(), "openssl {args} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A test CA, a second one, and a server certificate for `localhost` (not `127.0.0.1`: a
/// verify-full connection to the address must be refused) signed by the first.
fn make_certificates(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let new_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    for ca in ["ca", "other_ca"] {
        openssl(
            dir,
            &format!(
                "req -x509 {new_key} -keyout {ca}.key -out {ca}.crt -days 3650 -subj /CN=Tidemark_test_{ca} \
                 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
            ),
        );
    }
    openssl(dir, &format!("req -new {new_key} -keyout server.key -out server.csr -subj /CN=localhost"));
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial 2 -days 3650 -extfile server.ext -out server.crt",
    );
    // The server refuses a key file others can read.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let bin = bin_dir();
        let dir = tempfile::Builder::new().prefix("tidemark-pg").tempdir_in("/tmp").unwrap();
        let data = dir.path().join("data");
        if is_root() {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().unwrap();
            assert!(status.success());
        }
        let data_s = data.to_str().unwrap();
        run(&bin.join("initdb"), &["-D", data_s, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        let tls = dir.path().join("tls");
        make_certificates(&tls);
        if is_root() {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&tls).status().unwrap();
            assert!(status.success());
        }
        let port = free_port();
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nwal_level = logical\n\
             max_replication_slots = 20\nmax_wal_senders = 20\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             track_commit_timestamp = on\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            dir.path().display(),
            tls.join("server.crt").display(),
            tls.join("server.key").display()
        );
        let mut existing = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        existing.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), existing).unwrap();
        if is_root() {
            Command::new("chown").args(["postgres:postgres"]).arg(data.join("postgresql.conf")).status().unwrap();
        }
        // The TLS test's user may not connect in plain text: its success proves TLS was used.
        let hba = data.join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(&hba, format!("hostnossl all {TLS_ONLY_USER} 127.0.0.1/32 reject\n{rules}")).unwrap();
        let log = dir.path().join("log");
        run(&bin.join("pg_ctl"), &["-D", data_s, "-l", log.to_str().unwrap(), "-w", "start"]);
        // Stops the server when this test process ends, however it ends.
        let pg_ctl = bin.join("pg_ctl");
        let watchdog = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {run}{pg_ctl} -D {data_s} -m immediate stop",
            pid = std::process::id(),
            run = if is_root() { "runuser -u postgres -- " } else { "" },
            pg_ctl = pg_ctl.display()
        );
        Command::new("setsid").args(["sh", "-c", &watchdog]).spawn().expect("start the server's watchdog");
        Server { port, ca_file: tls.join("ca.crt"), other_ca_file: tls.join("other_ca.crt"), _dir: dir }
    })
}

/// A fresh database on the shared server, and a client connected to it.
pub async fn database(name: &str) -> (tokio_postgres::Client, tidemark_postgres::PostgresConfig) {
    let server = server();
    let admin = connect(server.port, "postgres").await;
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let client = connect(server.port, name).await;
    (client, tidemark_postgres::PostgresConfig::new("127.0.0.1", server.port, "postgres", name))
}

pub async fn connect(port: u16, db: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname(db)
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}
