//! JWT bearer assertions (RFC 7523) as Salesforce checks them: RS256 signed by the key of the
//! connected app's certificate, `iss` = consumer key, `sub` = username, `aud` = a login URL,
//! `exp` in the future.
//!
//! `exp` is compared with the **wall clock**, not the org clock: tools sign assertions with the
//! real time of the machine they run on, while the simulated org clock may be frozen or moved
//! years away. Access tokens obtained this way still age on the org clock like every session.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value as J;
use x509_parser::public_key::PublicKey;

/// Why an assertion was refused, in the order Salesforce checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    /// Unparseable, not RS256, or the signature does not verify.
    #[error("invalid assertion")]
    InvalidAssertion,
    /// `iss` is not a known consumer key.
    #[error("client identifier invalid")]
    UnknownClient,
    #[error("Audience validation failed")]
    Audience,
    /// `exp` missing or not in the future.
    #[error("expired authorization code")]
    Expired,
    /// `sub` is not a user who approved (or was pre-authorized for) the app.
    #[error("user hasn't approved this consumer")]
    UserNotApproved,
}

/// What a verified assertion grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub subject: String,
}

/// The certificate's RSA public key as a verification key.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("the JWT certificate is not a PEM X.509 certificate: {0}")]
    Parse(String),
    #[error("the JWT certificate's key is not an RSA key")]
    NotRsa,
}

pub fn decoding_key_from_certificate(pem: &str) -> Result<DecodingKey, CertificateError> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| CertificateError::Parse(e.to_string()))?;
    let cert = pem.parse_x509().map_err(|e| CertificateError::Parse(e.to_string()))?;
    match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => Ok(DecodingKey::from_rsa_raw_components(rsa.modulus, rsa.exponent)),
        Ok(_) => Err(CertificateError::NotRsa),
        Err(e) => Err(CertificateError::Parse(e.to_string())),
    }
}

/// What the connected app accepts.
pub struct Expectations<'a> {
    pub client_id: &'a str,
    pub username: &'a str,
    /// Audiences accepted besides the public login hosts (the simulator's own base URL).
    pub own_audience: &'a str,
    pub key: Option<&'a DecodingKey>,
    pub wall_now_secs: i64,
}

const LOGIN_AUDIENCES: [&str; 2] = ["https://login.salesforce.com", "https://test.salesforce.com"];

pub fn verify(assertion: &str, expect: &Expectations<'_>) -> Result<VerifiedAssertion, AssertionError> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| AssertionError::InvalidAssertion)?;
    if header.alg != Algorithm::RS256 {
        return Err(AssertionError::InvalidAssertion);
    }
    // The issuer selects the connected app whose certificate verifies the signature.
    let unverified = jsonwebtoken::dangerous::insecure_decode::<J>(assertion).map_err(|_| AssertionError::InvalidAssertion)?;
    if unverified.claims.get("iss").and_then(J::as_str) != Some(expect.client_id) {
        return Err(AssertionError::UnknownClient);
    }
    let key = expect.key.ok_or(AssertionError::InvalidAssertion)?;
    let mut validation = Validation::new(Algorithm::RS256);
    // Claims are checked below with Salesforce's error wording and its tolerance for string
    // numbers (simple-salesforce sends `exp` as a string).
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<J>(assertion, key, &validation).map_err(|_| AssertionError::InvalidAssertion)?.claims;

    let audience_ok = |aud: &str| {
        let aud = aud.trim_end_matches('/');
        LOGIN_AUDIENCES.contains(&aud) || aud == expect.own_audience.trim_end_matches('/')
    };
    let aud_matches = match claims.get("aud") {
        Some(J::String(a)) => audience_ok(a),
        Some(J::Array(list)) => list.iter().filter_map(J::as_str).any(audience_ok),
        _ => false,
    };
    if !aud_matches {
        return Err(AssertionError::Audience);
    }
    let exp = match claims.get("exp") {
        Some(J::Number(n)) => n.as_f64(),
        Some(J::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match exp {
        Some(exp) if exp > expect.wall_now_secs as f64 => {}
        _ => return Err(AssertionError::Expired),
    }
    match claims.get("sub").and_then(J::as_str) {
        Some(sub) if sub.eq_ignore_ascii_case(expect.username) => Ok(VerifiedAssertion { subject: sub.to_owned() }),
        _ => Err(AssertionError::UserNotApproved),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_invalid_assertion() {
        let expect = Expectations { client_id: "c", username: "u", own_audience: "http://x", key: None, wall_now_secs: 0 };
        assert_eq!(verify("not-a-jwt", &expect), Err(AssertionError::InvalidAssertion));
        // An unsigned (alg none) token is refused before anything else.
        let none = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJjIn0.";
        assert_eq!(verify(none, &expect), Err(AssertionError::InvalidAssertion));
    }

    #[test]
    fn certificate_parse_errors_are_reported() {
        assert!(matches!(decoding_key_from_certificate("nope"), Err(CertificateError::Parse(_))));
    }
}
