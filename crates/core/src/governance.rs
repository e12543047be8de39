//! Field policies: what happens to a personal field's values before they touch the lake.
//!
//! ```yaml
//! governance:
//!   hash_key: ${TIDEMARK_HASH_KEY}     # HMAC key of the `hash` policy (16 characters or more)
//!   policies:
//!     Contact:                         # table pattern: a Salesforce object, or `<source>.<table>`
//!       Email: hash                    # keyed HMAC-SHA-256, hex: joins and counts still work
//!       Phone: mask:last4              # or {mask: last4}
//!       Birthdate: null                # kept as a column, every value null
//!       SSN__c: exclude                # never read (Salesforce: not in the SELECT)
//!     "*":
//!       "*Email*": hash                # globs: `*` and `?`, case-insensitive
//! ```
//!
//! Which rule wins: a field name written out beats a glob; rules that match one field and
//! disagree are an error naming both. The record key and the timestamp a sync follows never
//! take a policy: a rule naming one is an error, a glob skips them. Likewise hash and mask
//! apply to text only: naming a date or a number is an error, a glob skips it.
//!
//! Each policy has a *token*, recorded in the column's Delta metadata (`tidemark.policy`) and in
//! the tags of every data file written under it, so `tidemark govern apply` knows which stored
//! versions are under an older policy: `exclude`, `null`, `mask:<pattern>`, `hash:<key id>`.
//! The key id is a digest of the key, so a lake hashed with one key refuses another.

use std::collections::BTreeMap;
use std::fmt;

use globset::{GlobBuilder, GlobMatcher};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use crate::config::ConfigError;

/// Column metadata key (Delta field metadata) holding the token of the policy in force.
pub const POLICY_METADATA: &str = "tidemark.policy";
/// Data-file tag holding the tokens its values were written under (a JSON object, column →
/// token; columns absent are unprotected).
pub const POLICY_TAG: &str = "tidemark.policies";

/// The `governance:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceConfig {
    /// The `hash` policy's HMAC key. Changing it changes every hash: a lake refuses a key other
    /// than the one its columns were hashed with.
    #[serde(default, deserialize_with = "crate::config::optional_secret")]
    pub hash_key: Option<SecretString>,
    /// Table pattern → field pattern → policy.
    #[serde(default)]
    pub policies: BTreeMap<String, BTreeMap<String, FieldPolicy>>,
}

/// What happens to a field's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldPolicy {
    /// Never read; the column (if it exists) gets nulls.
    Exclude,
    /// Keyed HMAC-SHA-256 of the text, lower-case hex.
    Hash,
    Mask(MaskPattern),
    /// Kept as a column, every value null.
    Null,
}

/// Documented masks. Each is idempotent (masking a masked value changes nothing), so a mask
/// can be re-applied to history without knowing which versions it already covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskPattern {
    /// `jane.doe@example.com` → `***@example.com`: the domain kept.
    Email,
    /// `+1 415 555 0134` → `***********0134`: the last four characters kept, the length too;
    /// values of four characters or fewer become all `*`.
    Last4,
    /// `Jane` → `J.`: the first character.
    Initial,
    /// Any value → `[redacted]`: only whether a value was present.
    Redact,
}

impl MaskPattern {
    pub const ALL: [MaskPattern; 4] = [MaskPattern::Email, MaskPattern::Last4, MaskPattern::Initial, MaskPattern::Redact];

    pub fn name(self) -> &'static str {
        match self {
            MaskPattern::Email => "email",
            MaskPattern::Last4 => "last4",
            MaskPattern::Initial => "initial",
            MaskPattern::Redact => "redact",
        }
    }

    pub fn apply(self, value: &str) -> String {
        match self {
            MaskPattern::Email => match value.rsplit_once('@') {
                Some((_, domain)) => format!("***@{domain}"),
                None => "***".to_owned(),
            },
            MaskPattern::Last4 => {
                let chars: Vec<char> = value.chars().collect();
                if chars.len() <= 4 {
                    "*".repeat(chars.len())
                } else {
                    let mut out = "*".repeat(chars.len() - 4);
                    out.extend(&chars[chars.len() - 4..]);
                    out
                }
            }
            MaskPattern::Initial => match value.chars().next() {
                Some(c) => format!("{c}."),
                None => String::new(),
            },
            MaskPattern::Redact => "[redacted]".to_owned(),
        }
    }
}

impl FieldPolicy {
    pub(crate) fn parse(text: &str) -> Result<FieldPolicy, String> {
        let mask_names = || MaskPattern::ALL.map(MaskPattern::name).join(", ");
        match text.trim() {
            "exclude" => Ok(FieldPolicy::Exclude),
            "hash" => Ok(FieldPolicy::Hash),
            "null" => Ok(FieldPolicy::Null),
            other => match other.strip_prefix("mask:").map(str::trim) {
                Some(name) => MaskPattern::ALL
                    .into_iter()
                    .find(|m| m.name() == name)
                    .map(FieldPolicy::Mask)
                    .ok_or_else(|| format!("unknown mask '{name}' (masks: {})", mask_names())),
                None => Err(format!(
                    "unknown policy '{other}' (policies: exclude, hash, null, mask:<pattern> with a pattern of {})",
                    mask_names()
                )),
            },
        }
    }

    /// Hash and mask transform text; null and exclude fit any type.
    pub fn needs_text(self) -> bool {
        matches!(self, FieldPolicy::Hash | FieldPolicy::Mask(_))
    }

    /// The policy as configured (`hash`, `mask:last4`, …).
    pub fn name(self) -> String {
        match self {
            FieldPolicy::Exclude => "exclude".into(),
            FieldPolicy::Hash => "hash".into(),
            FieldPolicy::Null => "null".into(),
            FieldPolicy::Mask(m) => format!("mask:{}", m.name()),
        }
    }
}

impl<'de> Deserialize<'de> for FieldPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<FieldPolicy, D::Error> {
        /// `Email: hash`, `Phone: {mask: last4}`, and YAML's own `null`.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Word(Option<String>),
            Mask { mask: String },
        }
        match Written::deserialize(d)? {
            Written::Word(None) => Ok(FieldPolicy::Null),
            Written::Word(Some(text)) => FieldPolicy::parse(&text).map_err(serde::de::Error::custom),
            Written::Mask { mask } => FieldPolicy::parse(&format!("mask:{mask}")).map_err(serde::de::Error::custom),
        }
    }
}

/// The `hash` policy's key. Never shown by `Debug`.
pub struct HashKey {
    key: SecretString,
    id: String,
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HashKey({})", self.id)
    }
}

impl HashKey {
    pub fn new(key: SecretString) -> HashKey {
        let id = hex::encode(&hmac(key.expose_secret(), b"tidemark hash key id")[..6]);
        HashKey { key, id }
    }

    /// A digest of the key, safe to record: it tells two keys apart without revealing either.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// HMAC-SHA-256 of `value`, lower-case hex.
    pub fn hash(&self, value: &str) -> String {
        hex::encode(hmac(self.key.expose_secret(), value.as_bytes()))
    }
}

fn hmac(key: &str, value: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(value);
    mac.finalize().into_bytes().into()
}

/// A resolved policy with what applying it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved<'g> {
    pub policy: FieldPolicy,
    /// The rule's dotted path in the configuration, for messages.
    rule: (&'g str, &'g str),
}

impl Resolved<'_> {
    pub fn path(&self) -> String {
        format!("governance.policies.{}.{}", self.rule.0, self.rule.1)
    }
}

/// The compiled `governance:` section: answers "which policy does this field get".
pub struct Governance {
    key: Option<std::sync::Arc<HashKey>>,
    tables: Vec<TableRules>,
}

impl fmt::Debug for Governance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Governance").field("key", &self.key).field("tables", &self.tables.len()).finish()
    }
}

struct TableRules {
    pattern: String,
    matcher: GlobMatcher,
    fields: Vec<FieldRule>,
}

struct FieldRule {
    pattern: String,
    matcher: GlobMatcher,
    /// Written out rather than a glob.
    exact: bool,
    policy: FieldPolicy,
}

pub(crate) fn glob(pattern: &str, path: &str) -> Result<GlobMatcher, ConfigError> {
    GlobBuilder::new(pattern)
        .case_insensitive(true)
        .literal_separator(false)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| ConfigError::invalid(path, e.to_string()))
}

pub(crate) fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{'])
}

/// A field as resolution sees it.
#[derive(Debug, Clone, Copy)]
pub struct FieldFacts<'a> {
    pub name: &'a str,
    /// Its values are text (hash and mask apply).
    pub text: bool,
    /// The record key or the timestamp a sync follows: never under a policy.
    pub protected: bool,
    /// The source's own type name, for messages.
    pub type_name: &'a str,
}

impl Default for Governance {
    fn default() -> Governance {
        Governance::none()
    }
}

impl Governance {
    /// No policies at all.
    pub fn none() -> Governance {
        Governance { key: None, tables: Vec::new() }
    }

    /// Compiles and checks the section (offline: no table is known yet).
    pub fn compile(config: &GovernanceConfig) -> Result<Governance, ConfigError> {
        let key = match &config.hash_key {
            Some(key) if key.expose_secret().chars().count() < 16 => {
                return Err(ConfigError::invalid("governance.hash_key", "must be at least 16 characters"));
            }
            Some(key) => Some(std::sync::Arc::new(HashKey::new(key.clone()))),
            None => None,
        };
        let mut tables = Vec::new();
        for (table, fields) in &config.policies {
            let path = format!("governance.policies.{table}");
            let matcher = glob(table, &path)?;
            let mut rules = Vec::new();
            for (field, policy) in fields {
                let path = format!("{path}.{field}");
                if *policy == FieldPolicy::Hash && key.is_none() {
                    return Err(ConfigError::invalid(
                        path,
                        "the hash policy needs governance.hash_key (e.g. hash_key: ${TIDEMARK_HASH_KEY})",
                    ));
                }
                rules.push(FieldRule {
                    pattern: field.clone(),
                    matcher: glob(field, &path)?,
                    exact: !is_glob(field),
                    policy: *policy,
                });
            }
            tables.push(TableRules { pattern: table.clone(), matcher, fields: rules });
        }
        Ok(Governance { key, tables })
    }

    pub fn is_empty(&self) -> bool {
        self.tables.iter().all(|t| t.fields.is_empty())
    }

    pub fn key(&self) -> Option<&std::sync::Arc<HashKey>> {
        self.key.as_ref()
    }

    /// The policy of each field of `table` that has one, in `fields` order. Errors name the
    /// rule's dotted path: a protected field named outright, hash or mask of a field that is
    /// not text, rules that disagree.
    pub fn resolve(&self, table: &str, fields: &[FieldFacts<'_>]) -> Result<Vec<(String, Resolved<'_>)>, ConfigError> {
        let rules: Vec<(&TableRules, &FieldRule)> =
            self.tables.iter().filter(|t| t.matcher.is_match(table)).flat_map(|t| t.fields.iter().map(move |f| (t, f))).collect();
        let mut out = Vec::new();
        for field in fields {
            let matching: Vec<&(&TableRules, &FieldRule)> =
                rules.iter().filter(|(_, f)| f.matcher.is_match(field.name)).collect();
            let exact: Vec<_> = matching.iter().filter(|(_, f)| f.exact).copied().collect();
            let chosen = if exact.is_empty() { matching } else { exact };
            let Some(&&(first_table, first)) = chosen.first() else { continue };
            let resolved = Resolved { policy: first.policy, rule: (&first_table.pattern, &first.pattern) };
            if let Some((t, f)) = chosen.iter().find(|(_, f)| f.policy != first.policy) {
                return Err(ConfigError::invalid(
                    resolved.path(),
                    format!(
                        "{table}.{} is also matched by governance.policies.{}.{} ({}): the rules disagree ({} here); name the field outright to choose",
                        field.name,
                        t.pattern,
                        f.pattern,
                        f.policy.name(),
                        first.policy.name()
                    ),
                ));
            }
            if field.protected {
                if first.exact {
                    return Err(ConfigError::invalid(
                        resolved.path(),
                        format!(
                            "{table}.{} is the record key or the timestamp syncs follow: it cannot take a policy",
                            field.name
                        ),
                    ));
                }
                continue;
            }
            if first.policy.needs_text() && !field.text {
                // A glob means "the text fields like this" (`*Email` is not `HasOptedOutOfEmail`).
                if !first.exact {
                    continue;
                }
                return Err(ConfigError::invalid(
                    resolved.path(),
                    format!(
                        "{table}.{} is {}, not text: {} applies to text fields (null or exclude fit any type)",
                        field.name,
                        field.type_name,
                        first.policy.name()
                    ),
                ));
            }
            out.push((field.name.to_owned(), resolved));
        }
        Ok(out)
    }

    /// The token recorded for `policy` (see the module docs).
    pub fn token(&self, policy: FieldPolicy) -> String {
        match policy {
            FieldPolicy::Hash => format!("hash:{}", self.key.as_ref().map_or("?", |k| k.id())),
            other => other.name(),
        }
    }

    /// The text `policy` turns `value` into (`None` for null and exclude).
    pub fn apply_text(&self, policy: FieldPolicy, value: &str) -> Option<String> {
        match policy {
            FieldPolicy::Hash => Some(self.key.as_ref().expect("a hash policy compiles only with a key").hash(value)),
            FieldPolicy::Mask(m) => Some(m.apply(value)),
            FieldPolicy::Null | FieldPolicy::Exclude => None,
        }
    }
}

/// The policy a token names, and for `hash` the key id.
pub fn parse_token(token: &str) -> Option<(FieldPolicy, Option<&str>)> {
    match token.split_once(':') {
        Some(("hash", id)) => Some((FieldPolicy::Hash, Some(id))),
        _ => FieldPolicy::parse(token).ok().map(|p| (p, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Result<Governance, ConfigError> {
        let c: GovernanceConfig = crate::config::load_str(yaml, &|v| (v == "KEY").then(|| "a key of sixteen+ chars".to_owned()))?;
        Governance::compile(&c)
    }

    fn text(name: &str) -> FieldFacts<'_> {
        FieldFacts { name, text: true, protected: false, type_name: "string" }
    }

    #[test]
    fn masks_keep_what_they_promise_and_are_idempotent() {
        let cases = [
            (MaskPattern::Email, "jane.doe@example.com", "***@example.com"),
            (MaskPattern::Email, "no-at-sign", "***"),
            (MaskPattern::Last4, "+1 415 555 0134", "***********0134"),
            (MaskPattern::Last4, "0134", "****"),
            (MaskPattern::Last4, "zoë-1234", "****1234"),
            (MaskPattern::Initial, "Jane", "J."),
            (MaskPattern::Initial, "", ""),
            (MaskPattern::Redact, "anything", "[redacted]"),
        ];
        for (mask, raw, masked) in cases {
            assert_eq!(mask.apply(raw), masked, "{mask:?} of {raw}");
            assert_eq!(mask.apply(masked), masked, "{mask:?} is not idempotent on {masked}");
        }
    }

    #[test]
    fn hashes_are_keyed_stable_and_hide_the_key() {
        let a = HashKey::new("a key of sixteen+ chars".to_owned().into());
        let b = HashKey::new("another key, also long".to_owned().into());
        assert_eq!(a.hash("jane@example.com"), a.hash("jane@example.com"));
        assert_ne!(a.hash("jane@example.com"), b.hash("jane@example.com"));
        assert_eq!(a.hash("x").len(), 64);
        assert_ne!(a.id(), b.id());
        // RFC 4231 test case 2: the hash is plain HMAC-SHA-256, reproducible in any language.
        let rfc = HashKey::new("Jefe".to_owned().into());
        assert_eq!(rfc.hash("what do ya want for nothing?"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(!format!("{a:?}").contains("sixteen"));
    }

    #[test]
    fn policies_parse_in_every_written_form() {
        let g = config(
            "hash_key: ${KEY}\npolicies:\n  Contact:\n    Email: hash\n    Phone: mask:last4\n    Fax: {mask: email}\n    Birthdate: null\n    Title: \"null\"\n    SSN__c: exclude\n",
        )
        .unwrap();
        let fields = ["Email", "Phone", "Fax", "Birthdate", "Title", "SSN__c", "Name"].map(text);
        let got: Vec<(String, String)> =
            g.resolve("contact", &fields).unwrap().into_iter().map(|(f, r)| (f, r.policy.name())).collect();
        let want = [
            ("Email", "hash"),
            ("Phone", "mask:last4"),
            ("Fax", "mask:email"),
            ("Birthdate", "null"),
            ("Title", "null"),
            ("SSN__c", "exclude"),
        ];
        assert_eq!(got, want.map(|(f, p)| (f.to_owned(), p.to_owned())));
        assert!(g.token(FieldPolicy::Hash).starts_with("hash:") && g.token(FieldPolicy::Hash).len() == 17);
        assert_eq!(parse_token(&g.token(FieldPolicy::Hash)).unwrap().0, FieldPolicy::Hash);
        assert_eq!(parse_token("mask:last4"), Some((FieldPolicy::Mask(MaskPattern::Last4), None)));
    }

    #[test]
    fn errors_name_the_rule() {
        let e = config("policies:\n  Contact:\n    Email: hash\n").unwrap_err();
        assert!(e.to_string().starts_with("governance.policies.Contact.Email:") && e.to_string().contains("hash_key"), "{e}");
        let e = config("policies:\n  Contact:\n    Email: scramble\n").unwrap_err();
        // Loaded alone here; under the whole file the path starts with `governance.`.
        assert!(e.to_string().starts_with("policies.Contact.Email") && e.to_string().contains("unknown policy"), "{e}");
        let e = config("policies:\n  Contact:\n    Email: mask:middle\n").unwrap_err();
        assert!(e.to_string().contains("unknown mask 'middle'"), "{e}");
        let e = config("hash_key: short\npolicies: {}\n").unwrap_err();
        assert!(e.to_string().starts_with("governance.hash_key:") && !e.to_string().contains("short"), "{e}");

        let g = config("hash_key: ${KEY}\npolicies:\n  Contact:\n    Id: hash\n    Birthdate: hash\n").unwrap();
        let id = FieldFacts { name: "Id", text: true, protected: true, type_name: "id" };
        let e = g.resolve("Contact", &[id]).unwrap_err();
        assert!(e.to_string().starts_with("governance.policies.Contact.Id:") && e.to_string().contains("record key"), "{e}");
        let birth = FieldFacts { name: "Birthdate", text: false, protected: false, type_name: "date" };
        let e = g.resolve("Contact", &[birth]).unwrap_err();
        assert!(e.to_string().contains("Contact.Birthdate is date, not text"), "{e}");
    }

    #[test]
    fn a_written_name_beats_a_glob_and_disagreeing_globs_are_refused() {
        let g = config(
            "hash_key: ${KEY}\npolicies:\n  \"*\":\n    \"*Phone\": mask:last4\n    \"*\": null\n  Contact:\n    MobilePhone: hash\n  \"app.*\":\n    \"*email*\": hash\n",
        )
        .unwrap();
        let id = FieldFacts { name: "Id", text: true, protected: true, type_name: "id" };
        // A glob skips the key; the written-out rule wins over both globs.
        let got = g.resolve("Contact", &[id, text("MobilePhone")]).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.policy, FieldPolicy::Hash);
        assert_eq!(got[0].1.path(), "governance.policies.Contact.MobilePhone");
        // `*Phone` and `*` both match HomePhone with different policies.
        let e = g.resolve("Contact", &[text("HomePhone")]).unwrap_err();
        assert!(e.to_string().contains("disagree"), "{e}");
        let got = g.resolve("app.public.users", &[text("Primary_Email")]).unwrap_err();
        assert!(got.to_string().contains("disagree"), "{got}");
        assert!(g.resolve("Lead", &[]).unwrap().is_empty());
    }
}
