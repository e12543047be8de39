//! Sessions: the access tokens the OAuth endpoints and SOAP login issue, checked on every API
//! call. Expiry is measured on the org clock, so advancing the clock ages sessions too.

use std::collections::HashMap;

use parking_lot::Mutex;
use rand::Rng;
use tidemark_core::SfId;

/// An authenticated session.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: SfId,
    pub client_id: String,
    pub issued_millis: i64,
    pub expires_millis: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .field("client_id", &self.client_id)
            .field("expires_millis", &self.expires_millis)
            .finish()
    }
}

/// Issued access tokens. Tokens are opaque random strings shaped like Salesforce's
/// (`<orgId>!<random>`), so clients that split on `!` keep working.
pub struct AuthStore {
    org_id: SfId,
    lifetime_millis: i64,
    sessions: Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for AuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthStore({} sessions)", self.sessions.lock().len())
    }
}

impl AuthStore {
    pub fn new(org_id: SfId, lifetime_millis: i64) -> AuthStore {
        AuthStore { org_id, lifetime_millis, sessions: Mutex::new(HashMap::new()) }
    }

    pub fn lifetime_millis(&self) -> i64 {
        self.lifetime_millis
    }

    /// Issues a new access token for `user_id` through `client_id`.
    pub fn issue(&self, user_id: SfId, client_id: &str, now_millis: i64) -> String {
        let token = format!("{}!{}", self.org_id.short(), random_token(96));
        let session = Session {
            user_id,
            client_id: client_id.to_owned(),
            issued_millis: now_millis,
            expires_millis: now_millis + self.lifetime_millis,
        };
        self.sessions.lock().insert(token.clone(), session);
        token
    }

    /// The session of a valid, unexpired token. Expired tokens are forgotten.
    pub fn validate(&self, token: &str, now_millis: i64) -> Option<Session> {
        let mut sessions = self.sessions.lock();
        match sessions.get(token) {
            Some(s) if s.expires_millis > now_millis => Some(s.clone()),
            Some(_) => {
                sessions.remove(token);
                None
            }
            None => None,
        }
    }

    /// Revokes one token; returns whether it existed.
    pub fn revoke(&self, token: &str) -> bool {
        self.sessions.lock().remove(token).is_some()
    }

    /// Forces every session to expire (fault injection, admin API).
    pub fn expire_all(&self) -> usize {
        let mut sessions = self.sessions.lock();
        let n = sessions.len();
        sessions.clear();
        n
    }
}

/// A random token of `len` characters from Salesforce's token alphabet.
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
    let mut rng = rand::rng();
    (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_on_the_org_clock_and_can_be_revoked() {
        let org = SfId::from_parts("00D", "Dn", 1);
        let user = SfId::from_parts("005", "Dn", 1);
        let store = AuthStore::new(org, 1000);
        let t = store.issue(user, "app", 0);
        assert!(t.starts_with(&format!("{}!", org.short())));
        assert_eq!(store.validate(&t, 999).map(|s| s.user_id), Some(user));
        assert!(store.validate(&t, 1000).is_none());
        let t2 = store.issue(user, "app", 0);
        assert!(store.revoke(&t2));
        assert!(store.validate(&t2, 1).is_none());
        let _t3 = store.issue(user, "app", 0);
        assert_eq!(store.expire_all(), 1);
    }
}
