//! `tidemark-sfsim`: run the Salesforce org simulator as a server.

fn main() -> anyhow::Result<()> {
    tidemark_sfsim::cli::main()
}
