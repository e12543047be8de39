//! A local S3 server for tests: moto (a real S3 API over HTTP, state in memory) from the
//! interop venv.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A moto S3 server child process, killed on drop.
pub struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// Starts moto on a port it picks itself (`-p 0`) and reads the port from the line Werkzeug
    /// prints once the socket listens, so there is no free-port race.
    pub fn start(python: &Path) -> Moto {
        let mut child = Command::new(python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("moto starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep draining stderr after the port line: moto logs every request there, and a full
        // pipe would block it.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(port) = line.split("Running on http://127.0.0.1:").nth(1) {
                    if let (Some(tx), Ok(port)) = (tx.take(), port.trim().parse::<u16>()) {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(port) => port,
            Err(e) => {
                let _ = child.kill();
                panic!("moto did not report its port: {e}");
            }
        };
        let moto = Moto { child, port };
        // The socket listens already; wait until moto answers its own API.
        let deadline = Instant::now() + Duration::from_secs(30);
        while moto.request("GET", "/moto-api/data.json").map(|(s, _)| s).ok() != Some(200) {
            assert!(Instant::now() < deadline, "moto did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A bare HTTP/1.1 request (moto does not check signatures): status code and body.
    pub fn request(&self, method: &str, path: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let status = response.split_whitespace().nth(1).and_then(|c| c.parse().ok());
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        status.map(|s| (s, body)).ok_or_else(|| std::io::Error::other("not an HTTP response"))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Storage options for an `s3://` location on this server.
    pub fn storage_options(&self) -> std::collections::HashMap<String, String> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            // Any key works with moto; without one the S3 client asks the instance metadata service.
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}
