//! Tidemark's Postgres source: logical replication with the `pgoutput` plugin.
//!
//! - [`pgoutput`]: the decoder of the plugin's messages (protocol version 1).

pub mod pgoutput;
