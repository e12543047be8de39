//! A Postgres source's configuration lives in the light core (the `sources:` section is parsed
//! without this crate): see [`tidemark_core::sources`].

pub use tidemark_core::sources::{PostgresConfig, SslMode};
