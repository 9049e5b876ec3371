//! The expected state: what the database must hold, kept in a file beside
//! it so that it survives the process being killed (RocksDB db_stress's
//! expected-state file).
//!
//! One fixed-size slot per key, updated with `pwrite`:
//!
//! ```text
//! header (64 bytes): magic "STRXSTAT" | version u32 | keys u32 | runs u64 | crc32 | zero padding
//! slot (32 bytes), little-endian:
//!   0..4   crc32 of bytes 4..32
//!   4..8   gen: writes of the key acknowledged so far
//!   8      present (1) or absent (0)
//!   9      a write is pending (1)
//!   10     the pending write leaves the key present (1) or absent (0)
//!   11     zero
//!   12..16 the pending write's gen
//!   16..24 batch id of the last acknowledged write
//!   24..32 batch id of the pending write
//! ```
//! The committed part (`gen`, `present`, `batch`) is the state of the last
//! acknowledged write. Before a write is issued its slot is marked pending
//! with the new state (and, for a sync write, the file is fsynced first);
//! after the write is acknowledged the pending state becomes committed.
//! After a crash, a pending key may hold the old or the new state; every
//! other key must hold exactly its committed state.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

const MAGIC: &[u8; 8] = b"STRXSTAT";
const VERSION: u32 = 1;
const HEADER_BYTES: u64 = 64;
const SLOT_BYTES: u64 = 32;

/// One key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Slot {
    /// Writes of this key acknowledged so far (puts and deletes).
    pub gen: u32,
    /// Whether the key holds a value (false: never written, or deleted).
    pub present: bool,
    /// The batch of the last acknowledged write.
    pub batch: u64,
    /// A write is in flight (or was when the process died).
    pub pending: Option<Pending>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub gen: u32,
    pub present: bool,
    pub batch: u64,
}

impl Slot {
    fn encode(&self) -> [u8; SLOT_BYTES as usize] {
        let mut b = [0u8; SLOT_BYTES as usize];
        b[4..8].copy_from_slice(&self.gen.to_le_bytes());
        b[8] = u8::from(self.present);
        b[16..24].copy_from_slice(&self.batch.to_le_bytes());
        if let Some(p) = self.pending {
            b[9] = 1;
            b[10] = u8::from(p.present);
            b[12..16].copy_from_slice(&p.gen.to_le_bytes());
            b[24..32].copy_from_slice(&p.batch.to_le_bytes());
        }
        let crc = crc32fast::hash(&b[4..]);
        b[..4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Slot> {
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        if b.len() != SLOT_BYTES as usize || crc32fast::hash(&b[4..]) != u32_at(0) {
            return None;
        }
        Some(Slot {
            gen: u32_at(4),
            present: b[8] == 1,
            batch: u64_at(16),
            pending: (b[9] == 1).then(|| Pending {
                gen: u32_at(12),
                present: b[10] == 1,
                batch: u64_at(24),
            }),
        })
    }
}

/// The expected-state file and an in-memory copy of its slots.
pub struct ExpectedState {
    file: File,
    slots: Vec<Slot>,
    runs: u64,
}

pub type AnyError = Box<dyn std::error::Error + Send + Sync>;

impl ExpectedState {
    /// Open the file, or create it for `keys` keys (all absent). Creation
    /// writes a temporary file and renames it, so a process killed
    /// meanwhile leaves no half-written state behind.
    pub fn open_or_create(path: &Path, keys: u32) -> Result<ExpectedState, AnyError> {
        if path.exists() {
            return Self::open(path);
        }
        let temp = path.with_extension("tmp");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        let state = ExpectedState {
            file,
            slots: vec![Slot::default(); keys as usize],
            runs: 0,
        };
        let mut all = Vec::with_capacity((SLOT_BYTES * u64::from(keys)) as usize);
        for s in &state.slots {
            all.extend_from_slice(&s.encode());
        }
        state.file.write_all_at(&all, HEADER_BYTES)?;
        state.write_header()?;
        state.file.sync_all()?;
        std::fs::rename(&temp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(state)
    }

    pub fn open(path: &Path) -> Result<ExpectedState, AnyError> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut header = [0u8; HEADER_BYTES as usize];
        file.read_exact_at(&mut header, 0)?;
        let u32_at =
            |o: usize| u32::from_le_bytes([header[o], header[o + 1], header[o + 2], header[o + 3]]);
        let mut runs = [0u8; 8];
        runs.copy_from_slice(&header[16..24]);
        if &header[..8] != MAGIC
            || u32_at(8) != VERSION
            || crc32fast::hash(&header[..24]) != u32_at(24)
        {
            return Err(format!("{}: not a valid expected-state file", path.display()).into());
        }
        let keys = u32_at(12);
        let mut all = vec![0u8; (SLOT_BYTES * u64::from(keys)) as usize];
        file.read_exact_at(&mut all, HEADER_BYTES)?;
        let mut slots = Vec::with_capacity(keys as usize);
        for (i, chunk) in all.chunks(SLOT_BYTES as usize).enumerate() {
            let slot = Slot::decode(chunk)
                .ok_or_else(|| format!("{}: slot {i} is damaged", path.display()))?;
            slots.push(slot);
        }
        Ok(ExpectedState {
            file,
            slots,
            runs: u64::from_le_bytes(runs),
        })
    }

    fn write_header(&self) -> std::io::Result<()> {
        let mut h = [0u8; HEADER_BYTES as usize];
        h[..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&(self.slots.len() as u32).to_le_bytes());
        h[16..24].copy_from_slice(&self.runs.to_le_bytes());
        let crc = crc32fast::hash(&h[..24]);
        h[24..28].copy_from_slice(&crc.to_le_bytes());
        self.file.write_all_at(&h, 0)
    }

    /// Count a new run (its number keeps batch ids unique across runs).
    pub fn begin_run(&mut self) -> std::io::Result<u64> {
        self.runs += 1;
        self.write_header()?;
        self.file.sync_all()?;
        Ok(self.runs)
    }

    pub fn keys(&self) -> u32 {
        self.slots.len() as u32
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Split into per-thread writers: thread `t` of `n` owns the keys with
    /// `index % n == t`, so no two threads write one slot.
    pub fn into_shared(self) -> SharedState {
        SharedState {
            file: self.file,
            slots: self
                .slots
                .into_iter()
                .map(parking_lot::Mutex::new)
                .collect(),
        }
    }

    /// Replace a slot and write it (no fsync: see [`ExpectedState::sync`]).
    pub fn set(&mut self, index: u32, slot: Slot) -> std::io::Result<()> {
        self.slots[index as usize] = slot;
        write_slot(&self.file, index, &slot)
    }

    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

fn write_slot(file: &File, index: u32, slot: &Slot) -> std::io::Result<()> {
    file.write_all_at(&slot.encode(), HEADER_BYTES + SLOT_BYTES * u64::from(index))
}

/// The expected state shared by the stress threads.
pub struct SharedState {
    file: File,
    slots: Vec<parking_lot::Mutex<Slot>>,
}

impl SharedState {
    pub fn get(&self, index: u32) -> Slot {
        *self.slots[index as usize].lock()
    }

    pub fn set(&self, index: u32, slot: Slot) -> std::io::Result<()> {
        let mut s = self.slots[index as usize].lock();
        *s = slot;
        write_slot(&self.file, index, &slot)
    }

    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    pub fn keys(&self) -> u32 {
        self.slots.len() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("expected");
        let mut s = ExpectedState::open_or_create(&path, 10).unwrap();
        let slot = Slot {
            gen: 7,
            present: true,
            batch: 99,
            pending: Some(Pending {
                gen: 8,
                present: false,
                batch: 100,
            }),
        };
        s.set(3, slot).unwrap();
        assert_eq!(s.begin_run().unwrap(), 1);
        drop(s);
        let s = ExpectedState::open(&path).unwrap();
        assert_eq!(s.slots()[3], slot);
        assert_eq!(s.slots()[4], Slot::default());
        assert_eq!(s.runs, 1);
    }
}
