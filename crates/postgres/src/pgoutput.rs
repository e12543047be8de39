//! `pgoutput` messages, protocol version 1 (PostgreSQL's "Logical Replication Message Formats").
//!
//! One XLogData payload is one message. Integers are big-endian, strings NUL-terminated, LSNs
//! 64-bit, timestamps microseconds since 2000-01-01 UTC. Relations are described by an `R`
//! message before the first change to them and again whenever their definition changes: the
//! caller keeps the latest per OID. A changed row's values come as [`Tuple`]s whose columns are
//! NULL, a value, or [`Datum::UnchangedToast`]: a large value the update left alone, which the
//! protocol does not send (the previous version's value stands).
//!
//! Streamed transactions (protocol version 2 and later: `S`, `E`, `c`, `A` and an xid inside
//! changes) and two-phase messages (version 3) are not requested, so not decoded: they are
//! refused as unknown messages rather than misread.

use chrono::{DateTime, TimeDelta, Utc};

/// A WAL position.
pub type Lsn = u64;

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Begin {
        final_lsn: Lsn,
        commit_time: DateTime<Utc>,
        xid: u32,
    },
    Commit {
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_time: DateTime<Utc>,
    },
    Origin {
        commit_lsn: Lsn,
        name: String,
    },
    Relation(Relation),
    Type {
        oid: u32,
        namespace: String,
        name: String,
    },
    Insert {
        relation: u32,
        new: Tuple,
    },
    /// `old`: the old key (when the update changed it) or the whole old row (`REPLICA IDENTITY
    /// FULL`); absent otherwise.
    Update {
        relation: u32,
        old: Option<OldTuple>,
        new: Tuple,
    },
    Delete {
        relation: u32,
        old: OldTuple,
    },
    Truncate {
        relations: Vec<u32>,
        cascade: bool,
        restart_identity: bool,
    },
    /// `pg_logical_emit_message()`.
    Message {
        transactional: bool,
        lsn: Lsn,
        prefix: String,
        content: Vec<u8>,
    },
}

/// A table's definition as the publication sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub oid: u32,
    pub namespace: String,
    pub name: String,
    pub replica_identity: ReplicaIdentity,
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Part of the replica identity key.
    pub key: bool,
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
}

/// `pg_class.relreplident`: which old values updates and deletes carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaIdentity {
    /// The primary key.
    Default,
    Nothing,
    /// The whole row.
    Full,
    /// A unique index.
    Index,
}

/// The old values an update or delete carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldTuple {
    /// The replica identity's key columns (the others NULL).
    Key(Tuple),
    /// The whole old row (`REPLICA IDENTITY FULL`).
    Full(Tuple),
}

/// A row's values, in the relation's column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuple(pub Vec<Datum>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datum {
    Null,
    /// A TOASTed value the change left as it was; not sent.
    UnchangedToast,
    /// The value in the type's text form.
    Text(Vec<u8>),
    /// The value in the type's binary form (the `binary` option).
    Binary(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("pgoutput: the message ends inside {what} (byte {at} of {len})")]
    Truncated { what: &'static str, at: usize, len: usize },
    #[error("pgoutput: unknown message type {tag:?} (byte 0); only protocol version 1 is requested")]
    UnknownMessage { tag: char },
    #[error("pgoutput: {what} has the unexpected marker {marker:?} at byte {at}")]
    Marker { what: &'static str, marker: char, at: usize },
    #[error("pgoutput: {what} at byte {at} is not UTF-8")]
    Utf8 { what: &'static str, at: usize },
    #[error("pgoutput: {extra} bytes follow the end of a {tag:?} message")]
    Trailing { tag: char, extra: usize },
}

/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The instant of a PostgreSQL timestamp (microseconds since 2000-01-01 UTC).
pub fn postgres_time(micros: i64) -> DateTime<Utc> {
    DateTime::UNIX_EPOCH + TimeDelta::microseconds(micros.saturating_add(POSTGRES_EPOCH_MICROS))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(DecodeError::Truncated { what, at: self.at, len: self.bytes.len() })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.take(2, what)?.try_into().expect("2 bytes")))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }

    fn time(&mut self, what: &'static str) -> Result<DateTime<Utc>, DecodeError> {
        Ok(postgres_time(self.u64(what)? as i64))
    }

    fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let start = self.at;
        let len = self.bytes[start..].iter().position(|&b| b == 0);
        let len = len.ok_or(DecodeError::Truncated { what, at: start, len: self.bytes.len() })?;
        let text = std::str::from_utf8(&self.bytes[start..start + len]).map_err(|_| DecodeError::Utf8 { what, at: start })?;
        self.at = start + len + 1;
        Ok(text.to_owned())
    }

    fn marker(&mut self, what: &'static str, allowed: &[u8]) -> Result<u8, DecodeError> {
        let at = self.at;
        let marker = self.u8(what)?;
        if allowed.contains(&marker) { Ok(marker) } else { Err(DecodeError::Marker { what, marker: marker as char, at }) }
    }

    fn tuple(&mut self) -> Result<Tuple, DecodeError> {
        let n = self.i16("a tuple's column count")?;
        let mut values = Vec::with_capacity(n.max(0) as usize);
        for _ in 0..n {
            values.push(match self.marker("a tuple column", b"nutb")? {
                b'n' => Datum::Null,
                b'u' => Datum::UnchangedToast,
                kind => {
                    let len = self.i32("a column value's length")?;
                    let len = usize::try_from(len).map_err(|_| DecodeError::Marker {
                        what: "a column value's length",
                        marker: '-',
                        at: self.at - 4,
                    })?;
                    let value = self.take(len, "a column value")?.to_vec();
                    if kind == b't' { Datum::Text(value) } else { Datum::Binary(value) }
                }
            });
        }
        Ok(Tuple(values))
    }

    fn old_tuple(&mut self, marker: u8) -> Result<OldTuple, DecodeError> {
        let tuple = self.tuple()?;
        Ok(if marker == b'K' { OldTuple::Key(tuple) } else { OldTuple::Full(tuple) })
    }
}

/// Decodes one message (one XLogData payload).
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { bytes, at: 0 };
    let tag = r.u8("the message type")?;
    let message = match tag {
        b'B' => {
            Message::Begin { final_lsn: r.u64("Begin's LSN")?, commit_time: r.time("Begin's time")?, xid: r.u32("Begin's xid")? }
        }
        b'C' => {
            r.u8("Commit's flags")?;
            Message::Commit {
                commit_lsn: r.u64("Commit's LSN")?,
                end_lsn: r.u64("Commit's end LSN")?,
                commit_time: r.time("Commit's time")?,
            }
        }
        b'O' => Message::Origin { commit_lsn: r.u64("Origin's LSN")?, name: r.string("Origin's name")? },
        b'R' => {
            let oid = r.u32("Relation's OID")?;
            let namespace = r.string("Relation's namespace")?;
            let name = r.string("Relation's name")?;
            let replica_identity = match r.marker("Relation's replica identity", b"dnfi")? {
                b'd' => ReplicaIdentity::Default,
                b'n' => ReplicaIdentity::Nothing,
                b'f' => ReplicaIdentity::Full,
                _ => ReplicaIdentity::Index,
            };
            let n = r.i16("Relation's column count")?;
            let mut columns = Vec::with_capacity(n.max(0) as usize);
            for _ in 0..n {
                columns.push(Column {
                    key: r.u8("a column's flags")? & 1 == 1,
                    name: r.string("a column's name")?,
                    type_oid: r.u32("a column's type")?,
                    type_modifier: r.i32("a column's type modifier")?,
                });
            }
            Message::Relation(Relation { oid, namespace, name, replica_identity, columns })
        }
        b'Y' => {
            Message::Type { oid: r.u32("Type's OID")?, namespace: r.string("Type's namespace")?, name: r.string("Type's name")? }
        }
        b'I' => {
            let relation = r.u32("Insert's relation")?;
            r.marker("Insert's new tuple", b"N")?;
            Message::Insert { relation, new: r.tuple()? }
        }
        b'U' => {
            let relation = r.u32("Update's relation")?;
            let old = match r.marker("Update's tuple", b"KON")? {
                b'N' => None,
                marker => {
                    let old = r.old_tuple(marker)?;
                    r.marker("Update's new tuple", b"N")?;
                    Some(old)
                }
            };
            Message::Update { relation, old, new: r.tuple()? }
        }
        b'D' => {
            let relation = r.u32("Delete's relation")?;
            let marker = r.marker("Delete's old tuple", b"KO")?;
            Message::Delete { relation, old: r.old_tuple(marker)? }
        }
        b'T' => {
            let n = r.u32("Truncate's relation count")?;
            let flags = r.u8("Truncate's options")?;
            let relations = (0..n).map(|_| r.u32("a truncated relation")).collect::<Result<_, _>>()?;
            Message::Truncate { relations, cascade: flags & 1 != 0, restart_identity: flags & 2 != 0 }
        }
        b'M' => {
            let transactional = r.u8("Message's flags")? & 1 == 1;
            let lsn = r.u64("Message's LSN")?;
            let prefix = r.string("Message's prefix")?;
            let len = r.u32("Message's length")? as usize;
            Message::Message { transactional, lsn, prefix, content: r.take(len, "Message's content")?.to_vec() }
        }
        other => return Err(DecodeError::UnknownMessage { tag: other as char }),
    };
    if r.at != bytes.len() {
        return Err(DecodeError::Trailing { tag: tag as char, extra: bytes.len() - r.at });
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds messages the way the protocol documentation lays them out.
    #[derive(Default)]
    struct Wire(Vec<u8>);

    impl Wire {
        fn u8(mut self, v: u8) -> Self {
            self.0.push(v);
            self
        }
        fn i16(mut self, v: i16) -> Self {
            self.0.extend(v.to_be_bytes());
            self
        }
        fn u32(mut self, v: u32) -> Self {
            self.0.extend(v.to_be_bytes());
            self
        }
        fn u64(mut self, v: u64) -> Self {
            self.0.extend(v.to_be_bytes());
            self
        }
        fn s(mut self, v: &str) -> Self {
            self.0.extend(v.as_bytes());
            self.0.push(0);
            self
        }
        fn text(self, v: &str) -> Self {
            let mut w = self.u8(b't').u32(v.len() as u32);
            w.0.extend(v.as_bytes());
            w
        }
    }

    /// 2025-01-06T09:00:00.123456Z in PostgreSQL's microseconds.
    const AT: u64 = 789_469_200_123_456;

    #[test]
    fn transactions_relations_and_changes_decode_as_documented() {
        let begin = Wire::default().u8(b'B').u64(0x16B_3748).u64(AT).u32(731);
        let Message::Begin { final_lsn, commit_time, xid } = decode(&begin.0).unwrap() else { panic!() };
        assert_eq!((final_lsn, xid), (0x16B_3748, 731));
        assert_eq!(commit_time.to_rfc3339(), "2025-01-06T09:00:00.123456+00:00");

        let relation = Wire::default().u8(b'R').u32(16_384).s("public").s("accounts").u8(b'f').i16(2);
        let relation = relation.u8(1).s("id").u32(20).u32(u32::MAX).u8(0).s("notes").u32(25).u32(u32::MAX);
        let Message::Relation(r) = decode(&relation.0).unwrap() else { panic!() };
        assert_eq!((r.oid, r.name.as_str(), r.replica_identity), (16_384, "accounts", ReplicaIdentity::Full));
        assert_eq!(r.columns[0], Column { key: true, name: "id".into(), type_oid: 20, type_modifier: -1 });
        assert!(!r.columns[1].key);

        let insert = Wire::default().u8(b'I').u32(16_384).u8(b'N').i16(2).text("7").u8(b'n');
        let expected = Tuple(vec![Datum::Text(b"7".to_vec()), Datum::Null]);
        assert_eq!(decode(&insert.0).unwrap(), Message::Insert { relation: 16_384, new: expected });

        // An update that left the TOASTed column alone, with the full old row (REPLICA IDENTITY FULL).
        let update = Wire::default().u8(b'U').u32(16_384).u8(b'O').i16(2).text("7").text("long");
        let update = update.u8(b'N').i16(2).text("8").u8(b'u');
        let Message::Update { old, new, .. } = decode(&update.0).unwrap() else { panic!() };
        assert_eq!(old, Some(OldTuple::Full(Tuple(vec![Datum::Text(b"7".to_vec()), Datum::Text(b"long".to_vec())]))));
        assert_eq!(new.0[1], Datum::UnchangedToast, "an unchanged TOAST value is not a NULL");
        let plain = Wire::default().u8(b'U').u32(1).u8(b'N').i16(1).u8(b'b').u32(2).u8(0).u8(9);
        assert_eq!(
            decode(&plain.0).unwrap(),
            Message::Update { relation: 1, old: None, new: Tuple(vec![Datum::Binary(vec![0, 9])]) }
        );

        let delete = Wire::default().u8(b'D').u32(16_384).u8(b'K').i16(2).text("8").u8(b'n');
        let Message::Delete { old: OldTuple::Key(key), .. } = decode(&delete.0).unwrap() else { panic!() };
        assert_eq!(key.0[0], Datum::Text(b"8".to_vec()));

        let truncate = Wire::default().u8(b'T').u32(2).u8(3).u32(16_384).u32(16_390);
        assert_eq!(
            decode(&truncate.0).unwrap(),
            Message::Truncate { relations: vec![16_384, 16_390], cascade: true, restart_identity: true }
        );

        let commit = Wire::default().u8(b'C').u8(0).u64(0x16B_3748).u64(0x16B_3778).u64(AT);
        let Message::Commit { commit_lsn, end_lsn, .. } = decode(&commit.0).unwrap() else { panic!() };
        assert_eq!((commit_lsn, end_lsn), (0x16B_3748, 0x16B_3778));

        let message = Wire::default().u8(b'M').u8(1).u64(5).s("tidemark").u32(2).u8(b'h').u8(b'i');
        assert_eq!(
            decode(&message.0).unwrap(),
            Message::Message { transactional: true, lsn: 5, prefix: "tidemark".into(), content: b"hi".to_vec() }
        );
        let origin = Wire::default().u8(b'O').u64(9).s("upstream");
        assert_eq!(decode(&origin.0).unwrap(), Message::Origin { commit_lsn: 9, name: "upstream".into() });
        let ty = Wire::default().u8(b'Y').u32(70_000).s("public").s("mood");
        assert_eq!(decode(&ty.0).unwrap(), Message::Type { oid: 70_000, namespace: "public".into(), name: "mood".into() });
    }

    #[test]
    fn malformed_messages_name_what_and_where() {
        let e = decode(&Wire::default().u8(b'I').u32(1).u8(b'N').i16(1).u8(b't').u32(10).s("short").0).unwrap_err();
        assert_eq!(e, DecodeError::Truncated { what: "a column value", at: 13, len: 19 });
        let e = decode(&Wire::default().u8(b'I').u32(1).u8(b'X').0).unwrap_err();
        assert_eq!(e, DecodeError::Marker { what: "Insert's new tuple", marker: 'X', at: 5 });
        assert_eq!(decode(b"S").unwrap_err(), DecodeError::UnknownMessage { tag: 'S' }, "streamed transactions are refused");
        let e = decode(&Wire::default().u8(b'O').u64(1).s("x").u8(7).0).unwrap_err();
        assert_eq!(e, DecodeError::Trailing { tag: 'O', extra: 1 });
        let e = decode(&Wire::default().u8(b'Y').u32(1).u8(0xff).u8(0).s("t").0).unwrap_err();
        assert_eq!(e, DecodeError::Utf8 { what: "Type's namespace", at: 5 });
        assert!(decode(&[]).is_err());
    }
}
