//! `tidemark-sfsim`: run the Salesforce org simulator as a server.

// Many small, short-lived allocations (rows, JSON records): mimalloc frees them far faster
// than the system allocator and fragments less, which the 1M-Account org's memory budget needs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    tidemark_sfsim::cli::main()
}
