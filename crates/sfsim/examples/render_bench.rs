//! Bulk CSV rendering alone, without HTTP: how fast `render_page` turns a query's rows into
//! result pages. `cargo run --release -p tidemark-sfsim --example render_bench -- [accounts]`

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use tidemark_sfsim::bulk::CsvFormat;
use tidemark_sfsim::{SimConfig, SimServer};

fn main() -> anyhow::Result<()> {
    let accounts: u64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(300_000);
    let org = SimServer::build_org(&SimConfig { accounts, keep_change_log: false, ..SimConfig::default() });
    let soql = "SELECT Id, Name, Type, Industry, AnnualRevenue, NumberOfEmployees, Phone, Website, BillingStreet, BillingCity, BillingState, BillingPostalCode, BillingCountry, CreatedDate, LastModifiedDate, SystemModstamp, IsDeleted FROM Account";
    let query = tidemark_sfsim::soql::compile(&org, soql).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rows = query.execute(&org, false).map_err(|e| anyhow::anyhow!("{e}"))?.rows;
    let columns = query.columns();
    for round in 0..3 {
        let started = Instant::now();
        let mut bytes = 0;
        for page in rows.chunks(100_000) {
            let body = tidemark_sfsim::bulk::results::render_page(&org, &query, &columns, page, CsvFormat::default());
            bytes += body.len();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "round {round}: {} rows, {:.1} MB in {secs:.3}s = {:.0} MB/s",
            rows.len(),
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs
        );
    }
    Ok(())
}
