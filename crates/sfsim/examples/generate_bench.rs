//! Measures data generation: `cargo run --release -p tidemark-sfsim --example generate_bench --
//! [accounts] [--keep-change-log]`. Prints records, seconds and peak RSS (VmHWM).
//!
//! The target is 1,000,000 Accounts (≈9 M records with children) in under 30 s and 2 GB.

// Many small, short-lived allocations (rows, JSON records): mimalloc frees them far faster
// than the system allocator and fragments less, which the 1M-Account org's memory budget needs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use tidemark_sfsim::generate::{GenerateSpec, generate};
use tidemark_sfsim::org::{Org, OrgClock};

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let accounts: u64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    let keep_change_log = args.iter().any(|a| a == "--keep-change-log");
    let clock = OrgClock::Manual(tidemark_core::ManualClock::new(tidemark_core::ManualClock::default_start()));
    let mut org = Org::new(tidemark_sfsim::catalog::standard_objects(), clock);
    org.keep_change_log = keep_change_log;
    let start = Instant::now();
    let summary = generate(&mut org, &GenerateSpec { seed: 42, accounts, username: "integration@tidemark.example".into() });
    let secs = start.elapsed().as_secs_f64();
    if args.iter().any(|a| a == "--tables") {
        per_table(&org);
    }
    let bytes: usize = org.tables().iter().flat_map(|t| t.rows()).map(|r| r.encoded_len()).sum();
    println!(
        "{{\"accounts\":{accounts},\"records\":{},\"seconds\":{secs:.2},\"records_per_sec\":{:.0},\"row_bytes_mb\":{:.1},\"peak_rss_mb\":{:.1}}}",
        summary.total(),
        summary.total() as f64 / secs,
        bytes as f64 / 1_048_576.0,
        peak_rss_mb().unwrap_or(f64::NAN),
    );
}

#[allow(dead_code)]
fn per_table(org: &Org) {
    for t in org.tables() {
        let n = t.len().max(1);
        let bytes: usize = t.rows().iter().map(|r| r.encoded_len()).sum();
        eprintln!("{:>22} {:>8} rows {:>6} avg bytes", t.def.name, t.len(), bytes / n);
    }
}
