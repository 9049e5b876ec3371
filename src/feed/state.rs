//! The change feed's durable state, kept in the file `CHANGEFEEDS` beside
//! the MANIFEST: the named cursors' acknowledged sequence numbers, the
//! floor below which writes may be gone from the WALs, the recovery
//! points of earlier opens, and the sequence numbers ingestions took
//! (docs/design/change-feed.md has the format).
//!
//! ```text
//! +----------+------------+------------+-----------------------------+
//! | "STRFEED3"| crc32 u32  | length u32 | body (length bytes)        |
//! +----------+------------+------------+-----------------------------+
//! body: floor_seq u64
//!       epochs u32,  then per epoch:  first_wal u64, last_seq u64
//!       cursors u32, then per cursor: name_len u32, name, acked u64
//!       ingestions u32, then per ingestion: first u64, last u64
//!       first_wal u64 (WALs below it were collected: never read again)
//! ```
//! All integers little-endian; the crc32 (crc32fast) covers the body.
//! A "STRFEED2" file has no first WAL (0), a "STRFEED1" file no ingestion
//! list either; both still load.
//! The file is replaced whole: written to `CHANGEFEEDS.new`, synced,
//! renamed over `CHANGEFEEDS`, the directory synced.

use crate::error::{Error, Result};
use crate::fs::FileSystem;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use strata_sstable::SeqNo;

const MAGIC: &[u8; 8] = b"STRFEED3";
const MAGIC_V2: &[u8; 8] = b"STRFEED2";
/// The format before ingestions were recorded: the same body without
/// the ingestion list.
const MAGIC_V1: &[u8; 8] = b"STRFEED1";
const FILE_NAME: &str = "CHANGEFEEDS";
const NEW_FILE_NAME: &str = "CHANGEFEEDS.new";

/// One open's recovery point: WALs numbered below `first_wal` (the WAL
/// that open started) hold, of the writes the database kept, exactly
/// those up to `last_seq`; any later batch in them is one that crash
/// lost, and the feed never shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Epoch {
    pub first_wal: u64,
    pub last_seq: SeqNo,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FeedState {
    /// Writes with a sequence number below this may be in deleted WALs.
    pub floor_seq: SeqNo,
    /// Recovery points, oldest first.
    pub epochs: Vec<Epoch>,
    /// Each cursor's last acknowledged sequence number.
    pub cursors: BTreeMap<String, SeqNo>,
    /// The sequence numbers ingestions took, oldest first: writes in no
    /// WAL, which a reader crossing them is told of as a gap.
    pub ingestions: Vec<Ingestion>,
    /// WALs numbered below this were collected (deleted, or
    /// a deletion failed or was undone by a power loss): never read.
    pub first_wal: u64,
}

/// The sequence numbers `first..=last` one ingestion took: its tables'
/// (and their range deletes'), or one of its own when its tables keep
/// sequence number 0. No write has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ingestion {
    pub first: SeqNo,
    pub last: SeqNo,
}

pub(crate) fn state_path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

impl FeedState {
    /// The largest sequence number a batch in WAL `wal` may have and
    /// still be one the database kept (`SeqNo::MAX`: no limit).
    pub fn cap_for(&self, wal: u64) -> SeqNo {
        self.epochs
            .iter()
            .filter(|e| e.first_wal > wal)
            .map(|e| e.last_seq)
            .min()
            .unwrap_or(SeqNo::MAX)
    }

    /// Forget the ingestions below the floor: the floor reports them.
    pub fn prune_ingestions(&mut self) {
        let floor = self.floor_seq;
        self.ingestions.retain(|i| i.last >= floor);
    }

    /// The last sequence number the state knows was taken (0: none): an
    /// ingestion's, or the last below the floor. The floor counts: an
    /// ingestion below it is forgotten, and the MANIFEST may not hold its
    /// number (a flush after it records its memtable's newest), so
    /// without the floor an open would give that number to a write, which
    /// the feed then reads as part of the floor's gap.
    pub fn last_taken(&self) -> SeqNo {
        let ingested = self.ingestions.iter().map(|i| i.last).max().unwrap_or(0);
        ingested.max(self.floor_seq.saturating_sub(1))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&self.floor_seq.to_le_bytes());
        body.extend_from_slice(&(self.epochs.len() as u32).to_le_bytes());
        for e in &self.epochs {
            body.extend_from_slice(&e.first_wal.to_le_bytes());
            body.extend_from_slice(&e.last_seq.to_le_bytes());
        }
        body.extend_from_slice(&(self.cursors.len() as u32).to_le_bytes());
        for (name, acked) in &self.cursors {
            body.extend_from_slice(&(name.len() as u32).to_le_bytes());
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(&acked.to_le_bytes());
        }
        body.extend_from_slice(&(self.ingestions.len() as u32).to_le_bytes());
        for i in &self.ingestions {
            body.extend_from_slice(&i.first.to_le_bytes());
            body.extend_from_slice(&i.last.to_le_bytes());
        }
        body.extend_from_slice(&self.first_wal.to_le_bytes());
        let mut out = Vec::with_capacity(16 + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decode `data`, read from `file`; damage is corruption naming it.
    pub fn decode(data: &[u8], file: &Path) -> Result<FeedState> {
        let bad = |offset: usize, reason: &str| Error::corruption(file, offset as u64, reason);
        let v1 = data.get(..8) == Some(&MAGIC_V1[..]);
        let v2 = data.get(..8) == Some(&MAGIC_V2[..]);
        if data.len() < 16 || (&data[..8] != MAGIC && !v1 && !v2) {
            return Err(bad(
                0,
                "not a change feed state file (bad magic or too short)",
            ));
        }
        let crc = u32_at(data, 8);
        let len = u32_at(data, 12) as usize;
        let body = data
            .get(16..)
            .filter(|b| b.len() == len)
            .ok_or_else(|| bad(12, "length does not match the file"))?;
        if crc32fast::hash(body) != crc {
            return Err(bad(8, "checksum mismatch"));
        }
        let mut r = BodyReader { body, at: 0 };
        let mut state = FeedState {
            floor_seq: r.u64().ok_or_else(|| bad(16, "truncated floor"))?,
            ..FeedState::default()
        };
        let epochs = r
            .u32()
            .ok_or_else(|| bad(16 + r.at, "truncated epoch count"))?;
        for _ in 0..epochs {
            let (Some(first_wal), Some(last_seq)) = (r.u64(), r.u64()) else {
                return Err(bad(16 + r.at, "truncated epoch"));
            };
            state.epochs.push(Epoch {
                first_wal,
                last_seq,
            });
        }
        let cursors = r
            .u32()
            .ok_or_else(|| bad(16 + r.at, "truncated cursor count"))?;
        for _ in 0..cursors {
            let at = 16 + r.at;
            let name_len = r.u32().ok_or_else(|| bad(at, "truncated cursor"))? as usize;
            let name = r
                .bytes(name_len)
                .and_then(|n| std::str::from_utf8(n).ok())
                .ok_or_else(|| bad(at, "truncated or non-UTF-8 cursor name"))?
                .to_owned();
            let acked = r
                .u64()
                .ok_or_else(|| bad(at, "truncated cursor position"))?;
            state.cursors.insert(name, acked);
        }
        if !v1 {
            let count = r
                .u32()
                .ok_or_else(|| bad(16 + r.at, "truncated ingestion count"))?;
            for _ in 0..count {
                let (Some(first), Some(last)) = (r.u64(), r.u64()) else {
                    return Err(bad(16 + r.at, "truncated ingestion"));
                };
                if first == 0 || first > last {
                    return Err(bad(r.at, "an ingestion's numbers are out of order"));
                }
                state.ingestions.push(Ingestion { first, last });
            }
        }
        if !v1 && !v2 {
            state.first_wal = r
                .u64()
                .ok_or_else(|| bad(16 + r.at, "truncated first WAL"))?;
        }
        if r.at != body.len() {
            return Err(bad(16 + r.at, "bytes after the last entry"));
        }
        Ok(state)
    }

    /// The state in `dir`, `None` if there is none.
    pub fn load(fs: &dyn FileSystem, dir: &Path) -> Result<Option<FeedState>> {
        let path = state_path(dir);
        if !fs.exists(&path) {
            return Ok(None);
        }
        let data = fs.read(&path).map_err(|e| Error::io("read", &path, e))?;
        FeedState::decode(&data, &path).map(Some)
    }

    /// Replace the state in `dir` durably.
    pub fn store(&self, fs: &dyn FileSystem, dir: &Path) -> Result<()> {
        let new = dir.join(NEW_FILE_NAME);
        let path = state_path(dir);
        let mut file = fs.create(&new).map_err(|e| Error::io("create", &new, e))?;
        file.append(&self.encode())
            .and_then(|()| file.sync())
            .map_err(|e| Error::io("write", &new, e))?;
        drop(file);
        fs.rename(&new, &path)
            .map_err(|e| Error::io("rename", &new, e))?;
        fs.sync_dir(dir)
            .map_err(|e| Error::io("sync directory", dir, e))
    }
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&data[at..at + 4]);
    u32::from_le_bytes(b)
}

struct BodyReader<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> BodyReader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.body.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(b)
    }
    fn u32(&mut self) -> Option<u32> {
        self.bytes(4).map(|b| u32_at(b, 0))
    }
    fn u64(&mut self) -> Option<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_le_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFileSystem;

    fn sample() -> FeedState {
        FeedState {
            floor_seq: 42,
            epochs: vec![
                Epoch {
                    first_wal: 7,
                    last_seq: 40,
                },
                Epoch {
                    first_wal: 12,
                    last_seq: 99,
                },
            ],
            cursors: [("replica".to_owned(), 41), ("cdc".to_owned(), 90)]
                .into_iter()
                .collect(),
            ingestions: vec![
                Ingestion {
                    first: 50,
                    last: 50,
                },
                Ingestion {
                    first: 60,
                    last: 62,
                },
            ],
            first_wal: 5,
        }
    }

    #[test]
    fn a_state_file_from_before_ingestions_were_recorded_still_loads() {
        // "STRFEED1": the body stops after the cursors.
        let old = FeedState {
            ingestions: Vec::new(),
            first_wal: 0,
            ..sample()
        };
        let mut body = old.encode()[16..].to_vec();
        // The first WAL (8 bytes) and the empty ingestion list's count.
        body.truncate(body.len() - 12);
        let mut data = MAGIC_V1.to_vec();
        data.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        data.extend_from_slice(&(body.len() as u32).to_le_bytes());
        data.extend_from_slice(&body);
        let path = Path::new("/db/CHANGEFEEDS");
        assert_eq!(FeedState::decode(&data, path).unwrap(), old);
    }

    #[test]
    fn a_state_file_from_before_the_first_wal_was_recorded_still_loads() {
        // "STRFEED2": the body stops after the ingestions.
        let old = FeedState {
            first_wal: 0,
            ..sample()
        };
        let mut body = old.encode()[16..].to_vec();
        body.truncate(body.len() - 8);
        let mut data = MAGIC_V2.to_vec();
        data.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        data.extend_from_slice(&(body.len() as u32).to_le_bytes());
        data.extend_from_slice(&body);
        let path = Path::new("/db/CHANGEFEEDS");
        assert_eq!(FeedState::decode(&data, path).unwrap(), old);
    }

    #[test]
    fn ingestions_below_the_floor_are_forgotten() {
        let mut s = sample();
        s.floor_seq = 55;
        s.prune_ingestions();
        assert_eq!(
            s.ingestions,
            vec![Ingestion {
                first: 60,
                last: 62
            }]
        );
        assert_eq!(s.last_taken(), 62);
        // With every ingestion below it forgotten, the floor says what
        // was taken.
        s.floor_seq = 70;
        s.prune_ingestions();
        assert!(s.ingestions.is_empty());
        assert_eq!(s.last_taken(), 69);
    }

    #[test]
    fn state_round_trips_through_the_filesystem() {
        let fs = MemFileSystem::new();
        let dir = Path::new("/db");
        fs.create_dir_all(dir).unwrap();
        assert_eq!(FeedState::load(&fs, dir).unwrap(), None);
        sample().store(&fs, dir).unwrap();
        assert_eq!(FeedState::load(&fs, dir).unwrap(), Some(sample()));
    }

    #[test]
    fn every_flipped_byte_or_cut_is_corruption_naming_the_file() {
        let data = sample().encode();
        let path = Path::new("/db/CHANGEFEEDS");
        for i in 0..data.len() {
            let mut d = data.clone();
            d[i] ^= 0x10;
            let e = FeedState::decode(&d, path).unwrap_err();
            assert!(
                matches!(&e, Error::Corruption { file, .. } if file == path),
                "byte {i}: {e:?}"
            );
        }
        for cut in 0..data.len() {
            assert!(
                FeedState::decode(&data[..cut], path).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_batch_is_capped_by_every_later_recovery_point() {
        let s = sample();
        assert_eq!(s.cap_for(3), 40);
        assert_eq!(s.cap_for(7), 99);
        assert_eq!(s.cap_for(11), 99);
        assert_eq!(s.cap_for(12), SeqNo::MAX);
    }
}
