//! Salesforce record ids: 15-character case-sensitive base-62 ids and their 18-character
//! case-insensitive form (the 15 characters plus a 3-character checksum of their letter case).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// Why a string is not a Salesforce id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SfIdError {
    #[error("a Salesforce id has 15 or 18 characters, this one has {0}")]
    Length(usize),
    #[error("a Salesforce id is made of letters and digits only")]
    Charset,
    #[error("the 3-character case suffix does not match the first 15 characters")]
    Suffix,
}

/// An 18-character Salesforce id. Always stored in its canonical 18-character form, so two ids
/// for the same record compare equal whichever form they were parsed from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SfId([u8; 18]);

impl SfId {
    /// Parses a 15- or 18-character id. An 18-character id whose suffix disagrees with its case is
    /// rejected; the comparison of the suffix is case-insensitive, as Salesforce's is.
    pub fn parse(s: &str) -> Result<SfId, SfIdError> {
        let bytes = s.as_bytes();
        if bytes.len() != 15 && bytes.len() != 18 {
            return Err(SfIdError::Length(s.chars().count()));
        }
        if !bytes.iter().all(u8::is_ascii_alphanumeric) {
            return Err(SfIdError::Charset);
        }
        let mut out = [0u8; 18];
        out[..15].copy_from_slice(&bytes[..15]);
        out[15..].copy_from_slice(&case_suffix(&bytes[..15]));
        if bytes.len() == 18 && !bytes[15..].eq_ignore_ascii_case(&out[15..]) {
            return Err(SfIdError::Suffix);
        }
        Ok(SfId(out))
    }

    /// Builds an id from a 3-character key prefix, a 2-character instance code and a counter.
    /// The counter is written in base 62 over the remaining 10 characters.
    pub fn from_parts(key_prefix: &str, instance: &str, counter: u64) -> SfId {
        assert_eq!(key_prefix.len(), 3, "key prefix has 3 characters");
        assert_eq!(instance.len(), 2, "instance code has 2 characters");
        let mut out = [b'0'; 18];
        out[..3].copy_from_slice(key_prefix.as_bytes());
        out[3..5].copy_from_slice(instance.as_bytes());
        let mut n = counter;
        for slot in out[5..15].iter_mut().rev() {
            *slot = BASE62[(n % 62) as usize];
            n /= 62;
        }
        assert_eq!(n, 0, "counter overflows 10 base-62 digits");
        let suffix = case_suffix(&out[..15]);
        out[15..].copy_from_slice(&suffix);
        SfId(out)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII alphanumerics are ever stored.
        std::str::from_utf8(&self.0).expect("ids are ASCII")
    }

    /// The case-sensitive 15-character form.
    pub fn short(&self) -> &str {
        &self.as_str()[..15]
    }

    /// The 3-character key prefix naming the object type (`001` Account, `003` Contact, …).
    pub fn key_prefix(&self) -> &str {
        &self.as_str()[..3]
    }
}

/// The Salesforce case-safety suffix: for each 5-character chunk, a bit per upper-case letter
/// (first character = lowest bit) picks one of 32 characters.
fn case_suffix(id15: &[u8]) -> [u8; 3] {
    let mut suffix = [0u8; 3];
    for (chunk_index, chunk) in id15.chunks(5).enumerate() {
        let mut bits = 0usize;
        for (i, c) in chunk.iter().enumerate() {
            if c.is_ascii_uppercase() {
                bits |= 1 << i;
            }
        }
        suffix[chunk_index] = SUFFIX_ALPHABET[bits];
    }
    suffix
}

impl fmt::Display for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SfId({})", self.as_str())
    }
}

impl std::str::FromStr for SfId {
    type Err = SfIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SfId::parse(s)
    }
}

impl Serialize for SfId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SfId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        SfId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ids_get_their_published_suffix() {
        // Pairs from Salesforce documentation and the conformance corpus.
        for (short, long) in [
            ("001D000000IqhSL", "001D000000IqhSLIAZ"),
            ("001xx000003DGb2", "001xx000003DGb2AAG"),
            ("003xx000004TmiQ", "003xx000004TmiQAAS"),
            ("a00Dm000002ph9C", "a00Dm000002ph9CIAQ"),
        ] {
            let id = SfId::parse(short).unwrap();
            assert_eq!(id.as_str(), long);
            assert_eq!(SfId::parse(long).unwrap(), id);
            assert_eq!(id.short(), short);
        }
    }

    #[test]
    fn rejects_bad_ids() {
        assert_eq!(SfId::parse("001"), Err(SfIdError::Length(3)));
        assert_eq!(SfId::parse("001D000000IqhS-"), Err(SfIdError::Charset));
        assert_eq!(SfId::parse("001D000000IqhSLAAA"), Err(SfIdError::Suffix));
        // The suffix itself is compared case-insensitively.
        assert!(SfId::parse("001D000000IqhSLiaz").is_ok());
    }

    #[test]
    fn generated_ids_are_valid_distinct_and_prefixed() {
        let a = SfId::from_parts("001", "Dn", 0);
        let b = SfId::from_parts("001", "Dn", 61);
        let c = SfId::from_parts("001", "Dn", 62);
        assert_eq!(a.as_str(), "001Dn0000000000AAA".replace("AAA", &a.as_str()[15..]));
        assert_ne!(b, c);
        assert_eq!(c.key_prefix(), "001");
        for id in [a, b, c] {
            assert_eq!(SfId::parse(id.as_str()).unwrap(), id);
            assert_eq!(SfId::parse(id.short()).unwrap(), id);
        }
    }
}
