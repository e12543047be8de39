//! Saving an org to a directory and loading it back, so `serve --data-dir DIR` survives
//! restarts.
//!
//! The whole org lives in one file, `DIR/org.tmsim`, written to `org.tmsim.tmp` and renamed
//! into place, so a crash mid-save leaves the previous snapshot intact. Layout:
//! `TMSIM001` magic, a length-prefixed JSON header (org identity, clock, id counter, every
//! object's schema including slots), then per table its rows (`Row::as_bytes`) and delete log,
//! then the change log. Integers are little-endian.

mod schema_dto;

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tidemark_core::{ManualClock, SfId, SystemClock};

use crate::org::snapshot::{OrgParts, TableParts};
use crate::org::{ChangeEvent, ChangeKind, Org, OrgClock};
use crate::row::Row;
use schema_dto::ObjectDto;

const MAGIC: &[u8; 8] = b"TMSIM001";
const FILE_NAME: &str = "org.tmsim";

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not a simulator snapshot or is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

#[derive(Serialize, Deserialize)]
struct Header {
    org_id: SfId,
    instance: String,
    integration_user: SfId,
    next_id: u64,
    keep_change_log: bool,
    manual_clock: bool,
    clock_millis: i64,
    objects: Vec<ObjectDto>,
}

/// The snapshot file inside `dir`.
pub fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Whether `dir` holds a saved org.
pub fn exists(dir: &Path) -> bool {
    snapshot_path(dir).is_file()
}

/// Saves `org` into `dir` (created if missing), atomically replacing any previous snapshot.
pub fn save(org: &Org, dir: &Path) -> Result<(), PersistError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| PersistError::Io { path: path.clone(), source }
    };
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let final_path = snapshot_path(dir);
    let tmp_path = dir.join(format!("{FILE_NAME}.tmp"));
    let file = File::create(&tmp_path).map_err(io_err(&tmp_path))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    write_org(org, &mut w).map_err(io_err(&tmp_path))?;
    let file = w.into_inner().map_err(|e| PersistError::Io { path: tmp_path.clone(), source: e.into_error() })?;
    file.sync_all().map_err(io_err(&tmp_path))?;
    std::fs::rename(&tmp_path, &final_path).map_err(io_err(&final_path))?;
    tracing::info!(path = %final_path.display(), "org saved");
    Ok(())
}

/// Loads the org saved in `dir`. A saved manual clock resumes at the saved instant.
pub fn load(dir: &Path) -> Result<Org, PersistError> {
    let path = snapshot_path(dir);
    let file = File::open(&path).map_err(|source| PersistError::Io { path: path.clone(), source })?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    read_org(&mut r).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
            PersistError::Corrupt { path: path.clone(), reason: e.to_string() }
        }
        _ => PersistError::Io { path: path.clone(), source: e },
    })
}

fn write_org(org: &Org, w: &mut impl Write) -> io::Result<()> {
    let manual = matches!(org.clock(), OrgClock::Manual(_));
    let header = Header {
        org_id: org.org_id,
        instance: org.instance.clone(),
        integration_user: org.integration_user,
        next_id: org.id_counter(),
        keep_change_log: org.keep_change_log,
        manual_clock: manual,
        clock_millis: org.now_millis(),
        objects: org.tables().iter().map(|t| ObjectDto::from(&t.def)).collect(),
    };
    let header = serde_json::to_vec(&header).map_err(io::Error::other)?;
    w.write_all(MAGIC)?;
    put_bytes(w, &header)?;
    for (_, rows, delete_log) in org.table_parts() {
        put_u64(w, rows.len() as u64)?;
        for row in rows {
            put_bytes(w, row.as_bytes())?;
        }
        put_u64(w, delete_log.len() as u64)?;
        for (id, at) in delete_log {
            w.write_all(id.as_str().as_bytes())?;
            w.write_all(&at.to_le_bytes())?;
        }
    }
    let log = org.change_log();
    put_u64(w, log.len() as u64)?;
    for e in log {
        put_u64(w, e.seq)?;
        w.write_all(&e.at_millis.to_le_bytes())?;
        put_bytes(w, e.object.as_bytes())?;
        w.write_all(&[kind_code(e.kind)])?;
        match &e.id {
            Some(id) => {
                w.write_all(&[1])?;
                w.write_all(id.as_str().as_bytes())?;
            }
            None => w.write_all(&[0])?,
        }
        put_opt_bytes(w, e.row.as_ref().map(Row::as_bytes))?;
        put_opt_bytes(w, e.detail.as_ref().map(String::as_bytes))?;
    }
    w.flush()
}

fn read_org(r: &mut impl Read) -> io::Result<Org> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(invalid("wrong magic"));
    }
    let header: Header = serde_json::from_slice(&get_bytes(r)?).map_err(|e| invalid(&format!("header: {e}")))?;
    let mut tables = Vec::with_capacity(header.objects.len());
    for dto in header.objects {
        let n = get_u64(r)?;
        let mut rows = Vec::with_capacity(n.min(1 << 24) as usize);
        for _ in 0..n {
            rows.push(Row::from_bytes(&get_bytes(r)?).ok_or_else(|| invalid("row does not decode"))?);
        }
        let n = get_u64(r)?;
        let mut delete_log = Vec::with_capacity(n.min(1 << 24) as usize);
        for _ in 0..n {
            let id = get_id(r)?;
            delete_log.push((id, get_i64(r)?));
        }
        tables.push(TableParts { def: dto.into(), rows, delete_log });
    }
    let n = get_u64(r)?;
    let mut change_log = Vec::with_capacity(n.min(1 << 24) as usize);
    for _ in 0..n {
        let seq = get_u64(r)?;
        let at_millis = get_i64(r)?;
        let object: Arc<str> = Arc::from(String::from_utf8(get_bytes(r)?).map_err(|_| invalid("object name"))?);
        let kind = kind_from(get_u8(r)?)?;
        let id = match get_u8(r)? {
            0 => None,
            _ => Some(get_id(r)?),
        };
        let row = match get_opt_bytes(r)? {
            Some(b) => Some(Row::from_bytes(&b).ok_or_else(|| invalid("logged row does not decode"))?),
            None => None,
        };
        let detail = get_opt_bytes(r)?.map(|b| String::from_utf8_lossy(&b).into_owned());
        change_log.push(ChangeEvent { seq, at_millis, object, id, kind, row, detail });
    }
    let clock = if header.manual_clock {
        let start = crate::value::millis_to_datetime(header.clock_millis);
        OrgClock::Manual(ManualClock::new(start))
    } else {
        OrgClock::Wall(SystemClock)
    };
    let parts = OrgParts {
        org_id: header.org_id,
        instance: header.instance,
        integration_user: header.integration_user,
        next_id: header.next_id,
        keep_change_log: header.keep_change_log,
        tables,
        change_log,
    };
    Ok(Org::from_parts(parts, clock))
}

fn kind_code(k: ChangeKind) -> u8 {
    match k {
        ChangeKind::Create => 0,
        ChangeKind::Update => 1,
        ChangeKind::Delete => 2,
        ChangeKind::Undelete => 3,
        ChangeKind::HardDelete => 4,
        ChangeKind::Purge => 5,
        ChangeKind::Schema => 6,
    }
}

fn kind_from(b: u8) -> io::Result<ChangeKind> {
    Ok(match b {
        0 => ChangeKind::Create,
        1 => ChangeKind::Update,
        2 => ChangeKind::Delete,
        3 => ChangeKind::Undelete,
        4 => ChangeKind::HardDelete,
        5 => ChangeKind::Purge,
        6 => ChangeKind::Schema,
        _ => return Err(invalid("change kind")),
    })
}

fn invalid(reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.to_owned())
}

fn put_u64(w: &mut impl Write, n: u64) -> io::Result<()> {
    w.write_all(&n.to_le_bytes())
}

fn put_bytes(w: &mut impl Write, b: &[u8]) -> io::Result<()> {
    w.write_all(&(b.len() as u32).to_le_bytes())?;
    w.write_all(b)
}

fn put_opt_bytes(w: &mut impl Write, b: Option<&[u8]>) -> io::Result<()> {
    match b {
        Some(b) => {
            w.write_all(&[1])?;
            put_bytes(w, b)
        }
        None => w.write_all(&[0]),
    }
}

fn get_u8(r: &mut impl Read) -> io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

fn get_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn get_i64(r: &mut impl Read) -> io::Result<i64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(i64::from_le_bytes(b))
}

fn get_id(r: &mut impl Read) -> io::Result<SfId> {
    let mut b = [0u8; 18];
    r.read_exact(&mut b)?;
    std::str::from_utf8(&b).ok().and_then(|s| SfId::parse(s).ok()).ok_or_else(|| invalid("record id"))
}

fn get_bytes(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let mut b = vec![0u8; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut b)?;
    Ok(b)
}

fn get_opt_bytes(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    match get_u8(r)? {
        0 => Ok(None),
        _ => get_bytes(r).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::truth::{TruthDump, TruthFilter};

    fn dump(org: &Org) -> Vec<u8> {
        let mut out = Vec::new();
        TruthDump::snapshot(org, &TruthFilter::default()).write_to(&mut out).unwrap();
        out
    }

    #[test]
    fn save_and_load_round_trip_everything() {
        let clock = OrgClock::Manual(ManualClock::new(ManualClock::default_start()));
        let mut org = Org::new(crate::catalog::standard_objects(), clock);
        crate::generate::generate(
            &mut org,
            &crate::generate::GenerateSpec { seed: 3, accounts: 20, username: "me@example.com".into() },
        );
        org.advance_clock(chrono::Duration::hours(3));
        let spec = crate::changes::ChangeRoundSpec {
            updates: crate::changes::Amount::Count(3),
            deletes: crate::changes::Amount::Count(2),
            hard_deletes: crate::changes::Amount::Count(1),
            creates: crate::changes::Amount::Count(1),
            parent_renames: crate::changes::Amount::Count(1),
            ..Default::default()
        };
        crate::changes::apply_change_round(&mut org, &spec, 9).unwrap();
        let add = crate::org::schema_change::SchemaChange::RemoveField { field: "Languages__c".into() };
        org.apply_schema_change("Contact", &add).unwrap();
        let dir = tempfile::tempdir().unwrap();
        save(&org, dir.path()).unwrap();
        assert!(exists(dir.path()));
        assert!(!dir.path().join("org.tmsim.tmp").exists());
        let loaded = load(dir.path()).unwrap();
        assert_eq!(dump(&loaded), dump(&org));
        assert_eq!(loaded.now_millis(), org.now_millis());
        assert_eq!(loaded.id_counter(), org.id_counter());
        assert_eq!(loaded.integration_user, org.integration_user);
        for (a, b) in loaded.tables().iter().zip(org.tables()) {
            assert_eq!(a.def, b.def);
            assert_eq!(a.delete_log(), b.delete_log());
            for row in b.rows() {
                assert_eq!(a.get(&b.id_of(row)), Some(row));
            }
        }
        std::fs::write(snapshot_path(dir.path()), b"TMSIM001garbage").unwrap();
        assert!(matches!(load(dir.path()), Err(PersistError::Corrupt { .. })));
    }
}
