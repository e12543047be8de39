//! Simulator benchmark: org generation, Bulk 2.0 CSV result throughput and REST query page
//! throughput, each beside a reference measured in the same run.
//!
//! The server runs on a single-threaded runtime (one core); the client on another thread.
//! References: the same bytes served pre-rendered by the same HTTP stack (the transport's
//! ceiling), so the gap is what rendering costs.
//!
//! `cargo run --release -p tidemark-sfsim --example sim_bench -- [--accounts N] [--out FILE]`

// Many small, short-lived allocations (rows, JSON records): mimalloc frees them far faster
// than the system allocator and fragments less, which the 1M-Account org's memory budget needs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::routing::get;
use serde_json::json;
use tidemark_sfsim::{SimConfig, SimServer};

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// The paging keys of a REST query page; records are counted, not decoded.
#[derive(serde::Deserialize)]
struct PageHead {
    done: bool,
    #[serde(rename = "nextRecordsUrl")]
    next_records_url: Option<String>,
    records: Counted,
}

struct Counted(usize);

impl<'de> serde::Deserialize<'de> for Counted {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Counted;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Counted, A::Error> {
                let mut n = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Counted(n))
            }
        }
        d.deserialize_seq(V)
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// Runs `fut` on a dedicated single-threaded runtime in its own OS thread (the "one core").
fn spawn_single_core<F>(fut: F) -> std::thread::JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    std::thread::spawn(move || tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(fut))
}

fn main() -> anyhow::Result<()> {
    let accounts: u64 = arg("--accounts").map(|s| s.parse()).transpose()?.unwrap_or(1_000_000);
    let out_path = arg("--out").unwrap_or_else(|| "bench/results/sfsim.json".to_owned());
    let config = SimConfig { accounts, keep_change_log: false, daily_api_requests: u64::MAX / 2, ..SimConfig::default() };

    // 1. Generation.
    let started = Instant::now();
    let org = SimServer::build_org(&config);
    let generate_secs = started.elapsed().as_secs_f64();
    let rss_after_generate = peak_rss_mb();
    let records: usize = org.tables().iter().map(|t| t.len()).sum();
    let account_rows = org.table("Account").map(|t| t.len()).unwrap_or(0);
    eprintln!(
        "generated {records} records ({account_rows} accounts) in {generate_secs:.2}s, peak RSS {rss_after_generate:.0} MB"
    );

    // 2. Serve on one core.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = spawn_single_core(async move {
        let handle = SimServer::new(config).start_with_org(org, SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("starts");
        addr_tx.send((handle.base_url().to_owned(), handle.issue_token())).expect("report address");
        let _ = stop_rx.await;
        handle.shutdown().await;
    });
    let (base, token) = addr_rx.recv()?;

    let client_rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Plain transfers unless a measurement asks for gzip: reqwest would otherwise negotiate gzip
    // on its own and the figure would be the compressor's speed.
    let http = reqwest::Client::builder().no_gzip().build()?;
    let fields = "Id, Name, Type, Industry, AnnualRevenue, NumberOfEmployees, Phone, Website, BillingStreet, BillingCity, BillingState, BillingPostalCode, BillingCountry, CreatedDate, LastModifiedDate, SystemModstamp, IsDeleted";
    let soql = format!("SELECT {fields} FROM Account");

    // 3. Bulk 2.0 query results.
    let (bulk_bytes, bulk_rows, bulk_secs, bulk_pages, gzip_bytes, gzip_secs) = client_rt.block_on(async {
        let api = format!("{base}/services/data/v66.0");
        let job: serde_json::Value = http
            .post(format!("{api}/jobs/query"))
            .bearer_auth(&token)
            .json(&json!({"operation": "query", "query": soql}))
            .send()
            .await?
            .json()
            .await?;
        let id = job["id"].as_str().ok_or_else(|| anyhow::anyhow!("no job id: {job}"))?.to_owned();
        loop {
            let info: serde_json::Value =
                http.get(format!("{api}/jobs/query/{id}")).bearer_auth(&token).send().await?.json().await?;
            match info["state"].as_str() {
                Some("JobComplete") => break,
                Some("Failed" | "Aborted") => anyhow::bail!("job ended {info}"),
                _ => tokio::task::yield_now().await,
            }
        }
        let fetch_all = |gzip: bool| {
            let (http, api, token, id) = (http.clone(), api.clone(), token.clone(), id.clone());
            async move {
                let started = Instant::now();
                let (mut bytes, mut rows, mut pages) = (0usize, 0usize, 0usize);
                let mut locator: Option<String> = None;
                loop {
                    let mut req =
                        http.get(format!("{api}/jobs/query/{id}/results")).bearer_auth(&token).query(&[("maxRecords", "100000")]);
                    if gzip {
                        req = req.header("Accept-Encoding", "gzip");
                    }
                    if let Some(l) = &locator {
                        req = req.query(&[("locator", l)]);
                    }
                    let resp = req.send().await?;
                    let next = resp.headers().get("Sforce-Locator").and_then(|v| v.to_str().ok()).unwrap_or("null").to_owned();
                    rows += resp
                        .headers()
                        .get("Sforce-NumberOfRecords")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    bytes += resp.bytes().await?.len();
                    pages += 1;
                    if next == "null" {
                        break;
                    }
                    locator = Some(next);
                }
                Ok::<_, anyhow::Error>((bytes, rows, started.elapsed().as_secs_f64(), pages))
            }
        };
        let (gz_bytes, _, gz_secs, _) = fetch_all(true).await?;
        let (bytes, rows, secs, pages) = fetch_all(false).await?;
        eprintln!(
            "bulk gzip: {:.1} MB compressed in {gz_secs:.2}s ({:.0} MB/s of CSV)",
            gz_bytes as f64 / 1e6,
            bytes as f64 / 1e6 / gz_secs
        );
        Ok::<_, anyhow::Error>((bytes, rows, secs, pages, gz_bytes, gz_secs))
    })?;
    let bulk_mb_s = bulk_bytes as f64 / 1e6 / bulk_secs;
    eprintln!(
        "bulk: {bulk_rows} rows, {:.1} MB in {bulk_secs:.2}s over {bulk_pages} pages = {bulk_mb_s:.0} MB/s",
        bulk_bytes as f64 / 1e6
    );

    // 4. REST query pages (`--skip-rest` leaves them out, e.g. to profile the Bulk path alone).
    let rest_limit = if std::env::args().any(|a| a == "--skip-rest") { 0 } else { (account_rows as u64).min(200_000) };
    let (rest_rows, rest_secs, rest_bytes) = client_rt.block_on(async {
        let started = Instant::now();
        let first = http
            .get(format!("{base}/services/data/v66.0/query"))
            .query(&[("q", format!("{soql} LIMIT {rest_limit}"))])
            .build()?;
        let mut url = first.url().to_string();
        let (mut rows, mut bytes) = (0usize, 0usize);
        loop {
            let body = http.get(&url).bearer_auth(&token).send().await?.bytes().await?;
            bytes += body.len();
            // Only the paging keys are decoded: the measurement is the server's, not the client's.
            let page: PageHead = serde_json::from_slice(&body)?;
            rows += page.records.0;
            match page.next_records_url {
                Some(next) if !page.done => url = format!("{base}{next}"),
                _ => break,
            }
        }
        Ok::<_, anyhow::Error>((rows, started.elapsed().as_secs_f64(), bytes))
    })?;
    let rest_rps = rest_rows as f64 / rest_secs;
    eprintln!("rest: {rest_rows} records in {rest_secs:.2}s = {rest_rps:.0} records/s");

    let _ = stop_tx.send(());
    server.join().map_err(|_| anyhow::anyhow!("server thread panicked"))?;

    // 5. References: the same volumes served pre-rendered by the same stack on one core.
    let bulk_page = Arc::new(vec![b'x'; (bulk_bytes / bulk_pages.max(1)).max(1)]);
    let rest_page = Arc::new(vec![b'y'; (rest_bytes / (rest_rows / 2000).max(1)).max(1)]);
    let (ref_addr_tx, ref_addr_rx) = std::sync::mpsc::channel();
    let (ref_stop_tx, ref_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (bp, rp) = (bulk_page.clone(), rest_page.clone());
    let ref_server = spawn_single_core(async move {
        let app = axum::Router::new()
            .route(
                "/bulk",
                get(move || {
                    let p = bp.clone();
                    async move { p.as_ref().clone() }
                }),
            )
            .route(
                "/rest",
                get(move || {
                    let p = rp.clone();
                    async move { p.as_ref().clone() }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        ref_addr_tx.send(listener.local_addr().expect("addr")).expect("report");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = ref_stop_rx.await;
            })
            .await
            .expect("serves");
    });
    let ref_addr = ref_addr_rx.recv()?;
    let (ref_bulk_secs, ref_rest_secs) = client_rt.block_on(async {
        let t = Instant::now();
        for _ in 0..bulk_pages {
            http.get(format!("http://{ref_addr}/bulk")).send().await?.bytes().await?;
        }
        let bulk = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..(rest_rows / 2000).max(1) {
            let body = http.get(format!("http://{ref_addr}/rest")).send().await?.bytes().await?;
            // The client parses JSON in the measured loop above; charge the reference the same.
            std::hint::black_box(body.len());
        }
        Ok::<_, anyhow::Error>((bulk, t.elapsed().as_secs_f64()))
    })?;
    let _ = ref_stop_tx.send(());
    ref_server.join().map_err(|_| anyhow::anyhow!("reference server panicked"))?;
    let ref_bulk_mb_s = bulk_bytes as f64 / 1e6 / ref_bulk_secs;
    let ref_rest_rps = rest_rows as f64 / ref_rest_secs;
    eprintln!("reference: static {ref_bulk_mb_s:.0} MB/s, static JSON pages {ref_rest_rps:.0} records/s");

    let result = json!({
        "benchmark": "sfsim",
        "accounts": accounts,
        "records_generated": records,
        "generate_seconds": generate_secs,
        "generate_peak_rss_mb": rss_after_generate,
        "bulk_csv": { "rows": bulk_rows, "bytes": bulk_bytes, "pages": bulk_pages, "seconds": bulk_secs, "mb_per_s": bulk_mb_s,
                      "reference_static_mb_per_s": ref_bulk_mb_s,
                      "gzip": { "compressed_bytes": gzip_bytes, "seconds": gzip_secs, "csv_mb_per_s": bulk_bytes as f64 / 1e6 / gzip_secs } },
        "rest_query": { "records": rest_rows, "seconds": rest_secs, "records_per_s": rest_rps,
                        "reference_static_records_per_s": ref_rest_rps },
        "targets": { "generate_seconds_max": 30, "generate_rss_mb_max": 2048, "bulk_mb_per_s_min": 150, "rest_records_per_s_min": 50000 },
    });
    if let Some(parent) = std::path::Path::new(&out_path).parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out_path, serde_json::to_string_pretty(&result)?)?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
