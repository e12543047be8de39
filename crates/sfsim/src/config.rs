//! Simulator configuration: credentials, limits, token lifetime, scale.

use chrono::Duration;
use secrecy::SecretString;

/// Everything that shapes a simulated org. `Debug` never shows secrets.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed for data generation and fault injection.
    pub seed: u64,
    /// Accounts to generate; children are proportional (see [`crate::generate`]).
    pub accounts: u64,
    pub username: String,
    pub password: SecretString,
    /// Appended to the password by clients that log in from untrusted networks.
    pub security_token: SecretString,
    pub client_id: String,
    pub client_secret: SecretString,
    /// PEM of the X.509 certificate whose key signs JWT bearer assertions (RS256).
    pub jwt_certificate_pem: Option<String>,
    /// How long an access token stays valid, measured on the org clock.
    pub token_lifetime: Duration,
    /// Rolling 24-hour REST/Bulk request allocation.
    pub daily_api_requests: u64,
    /// Frozen org clock moved by the admin API (`true`), or the wall clock.
    pub manual_clock: bool,
    /// Keep the change log (needed by the truth dump).
    pub keep_change_log: bool,
    /// Stamp `CreatedDate`, `LastModifiedDate`, `SystemModstamp` and the other audit datetimes
    /// with milliseconds. Off by default: Salesforce stores them to the whole second.
    pub millisecond_stamps: bool,
    /// Where `POST /__admin/save` (and `serve` on shutdown) persists the org; `None` = memory only.
    pub data_dir: Option<std::path::PathBuf>,
    /// When set, `/__admin/*` requires this value in the `X-Admin-Token` header.
    pub admin_token: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            accounts: 100,
            username: "integration@tidemark.example".to_owned(),
            password: SecretString::from("tidemark-sim-password"),
            security_token: SecretString::from("SIMTOKEN0000000000000000"),
            client_id: "3MVG9TidemarkSimulatorConsumerKey".to_owned(),
            client_secret: SecretString::from("TIDEMARKSIMSECRET0000000000000000"),
            jwt_certificate_pem: None,
            token_lifetime: Duration::hours(2),
            daily_api_requests: 1_000_000,
            manual_clock: true,
            keep_change_log: true,
            millisecond_stamps: false,
            data_dir: None,
            admin_token: None,
        }
    }
}
