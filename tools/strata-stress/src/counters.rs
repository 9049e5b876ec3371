//! Merge counters: the crash test's check that merge operands survive a
//! kill -9 like any other write, each counted once.
//!
//! `COUNTERS` keys live in keyspace `counters`, whose merge operator is
//! `uint64add`. Thread `t` writes the counters `j` with
//! `j % threads == t`: mostly increments (`merge` of a small amount),
//! sometimes several counters' increments in one batch, now and then a
//! put that resets a counter or a delete; so reads walk operands down to
//! a put, a delete or nothing, across memtables, flushes and compactions.
//!
//! Their expected state is the file `D/counters`, kept as `expected.rs`
//! keeps the keys': before a write its counters' slots are marked pending
//! with the write (and, for a sync write, the file is fsynced first);
//! once acknowledged, the write is applied to the committed value. After
//! a kill every counter must hold exactly its committed value, except one
//! with a write in flight, which holds the value before or after it (an
//! increment lost or counted twice is neither), all of one in-flight
//! batch the same way.
//!
//! ```text
//! header (64 bytes): magic "STRXCNTR" | version u32 | counters u32 | crc32 | zero padding
//! slot (40 bytes), little-endian:
//!   0..4   crc32 of bytes 4..40
//!   4      present (1) or absent (0)
//!   5      pending write: 0 none, 1 increment, 2 put, 3 delete
//!   6..8   zero
//!   8..16  committed value
//!   16..24 the pending write's amount (increment) or value (put)
//!   24..32 batch id of the pending write
//!   32..40 writes acknowledged so far
//! ```

use crate::expected::AnyError;
use crate::rng::Rng;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use strata::{Db, Keyspace, KeyspaceOptions, Options, WriteBatch, WriteOptions};

pub const COUNTERS: u32 = 64;
pub const KEYSPACE: &str = "counters";

const MAGIC: &[u8; 8] = b"STRXCNTR";
const VERSION: u32 = 1;
const HEADER_BYTES: u64 = 64;
const SLOT_BYTES: u64 = 40;

pub fn counter_key(j: u32) -> Vec<u8> {
    format!("counter{j:05}").into_bytes()
}

/// The counters' keyspace, with the `uint64add` operator and otherwise
/// the keyspace options of `options` (the run's, or the defaults).
pub fn open(db: &Db, options: &Options) -> Result<Keyspace, AnyError> {
    Ok(db.keyspace_with(
        KEYSPACE,
        KeyspaceOptions {
            merge_operator: Some(Arc::new(strata::UInt64Add)),
            ..options.keyspace_options()
        },
    )?)
}

/// One write of a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterWrite {
    Increment(u64),
    Put(u64),
    Delete,
}

impl CounterWrite {
    /// The value after this write, given the one before (`None`: absent).
    pub fn apply(self, before: Option<u64>) -> Option<u64> {
        match self {
            CounterWrite::Increment(n) => Some(before.unwrap_or(0).wrapping_add(n)),
            CounterWrite::Put(v) => Some(v),
            CounterWrite::Delete => None,
        }
    }
}

/// One counter's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterSlot {
    /// The value after every acknowledged write (`None`: absent).
    pub value: Option<u64>,
    /// Writes acknowledged so far.
    pub acked: u64,
    /// A write in flight (or in flight when the process died), and its batch.
    pub pending: Option<(CounterWrite, u64)>,
}

impl CounterSlot {
    fn encode(&self) -> [u8; SLOT_BYTES as usize] {
        let mut b = [0u8; SLOT_BYTES as usize];
        b[4] = u8::from(self.value.is_some());
        b[8..16].copy_from_slice(&self.value.unwrap_or(0).to_le_bytes());
        if let Some((write, batch)) = self.pending {
            let (kind, amount) = match write {
                CounterWrite::Increment(n) => (1, n),
                CounterWrite::Put(v) => (2, v),
                CounterWrite::Delete => (3, 0),
            };
            b[5] = kind;
            b[16..24].copy_from_slice(&amount.to_le_bytes());
            b[24..32].copy_from_slice(&batch.to_le_bytes());
        }
        b[32..40].copy_from_slice(&self.acked.to_le_bytes());
        let crc = crc32fast::hash(&b[4..]);
        b[..4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<CounterSlot> {
        let u64_at = |o: usize| -> u64 {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        if b.len() != SLOT_BYTES as usize
            || crc32fast::hash(&b[4..]).to_le_bytes() != b[..4]
            || b[4] > 1
        {
            return None;
        }
        let pending = match b[5] {
            0 => None,
            1 => Some(CounterWrite::Increment(u64_at(16))),
            2 => Some(CounterWrite::Put(u64_at(16))),
            3 => Some(CounterWrite::Delete),
            _ => return None,
        };
        Some(CounterSlot {
            value: (b[4] == 1).then(|| u64_at(8)),
            acked: u64_at(32),
            pending: pending.map(|w| (w, u64_at(24))),
        })
    }
}

/// The counters' expected-state file and an in-memory copy of its slots,
/// one lock each (thread `t` writes only its own counters' slots).
pub struct CounterState {
    file: File,
    slots: Vec<parking_lot::Mutex<CounterSlot>>,
}

impl CounterState {
    /// Open the file, or create it with every counter absent (through a
    /// temporary file and a rename, so a kill leaves no half of it).
    pub fn open_or_create(path: &Path) -> Result<CounterState, AnyError> {
        if !path.exists() {
            let temp = path.with_extension("tmp");
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&temp)?;
            let mut all = header(COUNTERS).to_vec();
            for _ in 0..COUNTERS {
                all.extend_from_slice(&CounterSlot::default().encode());
            }
            file.write_all_at(&all, 0)?;
            file.sync_all()?;
            std::fs::rename(&temp, path)?;
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut head = [0u8; HEADER_BYTES as usize];
        file.read_exact_at(&mut head, 0)?;
        if head != header(COUNTERS) {
            return Err(format!(
                "{}: not a counters file for {COUNTERS} counters",
                path.display()
            )
            .into());
        }
        let mut all = vec![0u8; (SLOT_BYTES * u64::from(COUNTERS)) as usize];
        file.read_exact_at(&mut all, HEADER_BYTES)?;
        let mut slots = Vec::with_capacity(COUNTERS as usize);
        for (j, chunk) in all.chunks(SLOT_BYTES as usize).enumerate() {
            let slot = CounterSlot::decode(chunk)
                .ok_or_else(|| format!("{}: counter slot {j} is damaged", path.display()))?;
            slots.push(parking_lot::Mutex::new(slot));
        }
        Ok(CounterState { file, slots })
    }

    pub fn get(&self, j: u32) -> CounterSlot {
        *self.slots[j as usize].lock()
    }

    /// Replace a slot and write it (no fsync: see [`CounterState::sync`]).
    pub fn set(&self, j: u32, slot: CounterSlot) -> std::io::Result<()> {
        let mut s = self.slots[j as usize].lock();
        *s = slot;
        self.file
            .write_all_at(&slot.encode(), HEADER_BYTES + SLOT_BYTES * u64::from(j))
    }

    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// A counter left in flight by a run that did not finish, if any.
    pub fn first_pending(&self) -> Option<u32> {
        (0..COUNTERS).find(|&j| self.get(j).pending.is_some())
    }
}

fn header(counters: u32) -> [u8; HEADER_BYTES as usize] {
    let mut h = [0u8; HEADER_BYTES as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&counters.to_le_bytes());
    let crc = crc32fast::hash(&h[..16]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

/// A counter's stored value: 8 bytes little-endian.
fn decode_value(j: u32, v: &[u8]) -> Result<u64, AnyError> {
    let bytes: [u8; 8] = v
        .try_into()
        .map_err(|_| format!("counter {j} holds {} bytes, not 8: {v:?}", v.len()))?;
    Ok(u64::from_le_bytes(bytes))
}

/// Read counter `j` through `get`.
pub fn read(
    j: u32,
    get: impl FnOnce(&[u8]) -> strata::Result<Option<strata::Bytes>>,
) -> Result<Option<u64>, AnyError> {
    get(&counter_key(j))?
        .map(|v| decode_value(j, &v))
        .transpose()
}

/// `got` must be the committed value of counter `j`.
pub fn check_exact(
    j: u32,
    slot: &CounterSlot,
    got: Option<u64>,
    what: &str,
) -> Result<(), AnyError> {
    if got != slot.value {
        return Err(format!(
            "{what}: counter {j} holds {got:?}, expected {:?} after {} acknowledged writes{}",
            slot.value,
            slot.acked,
            match (got, slot.value) {
                (Some(g), Some(w)) if g < w => " (acknowledged increments lost)",
                (Some(g), Some(w)) if g > w => " (increments counted twice, or unacknowledged)",
                _ => "",
            }
        )
        .into());
    }
    Ok(())
}

/// One thread's writer of its own counters.
pub struct CounterWriter {
    pub keyspace: Keyspace,
    pub state: Arc<CounterState>,
    pub thread: u32,
    pub threads: u32,
}

impl CounterWriter {
    fn own_counter(&self, rng: &mut Rng) -> u32 {
        let n = self.threads.min(COUNTERS);
        let per = COUNTERS.div_ceil(n);
        loop {
            let j = rng.below(u64::from(per)) as u32 * n + self.thread;
            if j < COUNTERS {
                return j;
            }
        }
    }

    /// One random write of own counters, acknowledged: mostly an
    /// increment, one in eight a batch of increments of 2-4 counters, one
    /// in 40 a put and one in 80 a delete. Returns the counters written.
    pub fn write(
        &self,
        db: &Db,
        rng: &mut Rng,
        batch_id: u64,
        sync: bool,
    ) -> Result<u32, AnyError> {
        if self.thread >= COUNTERS {
            return Ok(0);
        }
        let n = if rng.one_in(8) { 2 + rng.below(3) } else { 1 };
        let mut picked: Vec<u32> = Vec::new();
        for _ in 0..n * 4 {
            let j = self.own_counter(rng);
            if picked.len() < n as usize && !picked.contains(&j) {
                picked.push(j);
            }
        }
        let mut batch = WriteBatch::new();
        let mut planned = Vec::with_capacity(picked.len());
        for &j in &picked {
            let write = match rng.below(80) {
                0 => CounterWrite::Delete,
                1 | 2 => CounterWrite::Put(rng.below(1 << 20)),
                _ => CounterWrite::Increment(1 + rng.below(1000)),
            };
            let key = counter_key(j);
            match write {
                CounterWrite::Increment(n) => batch.merge_in(&self.keyspace, &key, n.to_le_bytes()),
                CounterWrite::Put(v) => batch.put_in(&self.keyspace, &key, v.to_le_bytes()),
                CounterWrite::Delete => batch.delete_in(&self.keyspace, &key),
            }
            let slot = self.state.get(j);
            self.state.set(
                j,
                CounterSlot {
                    pending: Some((write, batch_id)),
                    ..slot
                },
            )?;
            planned.push((j, write));
        }
        if sync {
            // The expected state must be durable before a write that will be.
            self.state.sync()?;
        }
        db.write_opt(
            batch,
            &WriteOptions {
                sync,
                ..Default::default()
            },
        )?;
        for (j, write) in planned {
            let slot = self.state.get(j);
            self.state.set(
                j,
                CounterSlot {
                    value: write.apply(slot.value),
                    acked: slot.acked + 1,
                    pending: None,
                },
            )?;
        }
        Ok(picked.len() as u32)
    }

    /// Read an own counter, by `get` or through a snapshot taken before
    /// an increment: exactly its committed value.
    pub fn check(&self, db: &Db, rng: &mut Rng, batch_id: u64) -> Result<(), AnyError> {
        if self.thread >= COUNTERS {
            return Ok(());
        }
        let j = self.own_counter(rng);
        let slot = self.state.get(j);
        if rng.one_in(4) {
            let snap = db.snapshot();
            self.state.set(
                j,
                CounterSlot {
                    pending: Some((CounterWrite::Increment(1), batch_id)),
                    ..slot
                },
            )?;
            self.keyspace.merge(counter_key(j), 1u64.to_le_bytes())?;
            let got = read(j, |k| snap.keyspace(&self.keyspace).get(k))?;
            check_exact(j, &slot, got, "counter snapshot get")?;
            self.state.set(
                j,
                CounterSlot {
                    value: CounterWrite::Increment(1).apply(slot.value),
                    acked: slot.acked + 1,
                    pending: None,
                },
            )?;
            return Ok(());
        }
        let got = read(j, |k| self.keyspace.get(k))?;
        check_exact(j, &slot, got, "counter get")
    }
}

/// What verification found.
#[derive(Debug, Default)]
pub struct CounterReport {
    /// Counters present, and their acknowledged writes in all.
    pub present: u32,
    pub acked: u64,
    /// Counters with a write in flight at the kill: found after or before it.
    pub pending_new: u32,
    pub pending_old: u32,
}

/// After a reopen: every counter holds its committed value, or, with a
/// write in flight, the value before or after it, all of one batch alike;
/// then a scan in each direction returns exactly the present counters.
/// The state found is recorded as committed.
pub fn verify(keyspace: &Keyspace, state: &CounterState) -> Result<CounterReport, AnyError> {
    let mut report = CounterReport::default();
    // Per in-flight batch: whether each of its counters was found after it.
    let mut batches: BTreeMap<u64, Vec<(u32, Option<bool>)>> = BTreeMap::new();
    let mut resolved = Vec::new();
    for j in 0..COUNTERS {
        let slot = state.get(j);
        let got = read(j, |k| keyspace.get(k))?;
        let Some((write, batch)) = slot.pending else {
            check_exact(j, &slot, got, "verify")?;
            continue;
        };
        let old = slot.value;
        let new = write.apply(old);
        let after = match (got == old, got == new) {
            (true, true) => None,
            (true, false) => Some(false),
            (false, true) => Some(true),
            (false, false) => {
                return Err(format!(
                    "verify: counter {j} with {write:?} in flight holds {got:?}: neither {old:?} \
                     before it nor {new:?} after it (an increment lost or counted twice)"
                )
                .into())
            }
        };
        if after == Some(true) {
            report.pending_new += 1;
        } else {
            report.pending_old += 1;
        }
        batches.entry(batch).or_default().push((j, after));
        resolved.push((
            j,
            CounterSlot {
                value: got,
                acked: slot.acked + u64::from(after == Some(true)),
                pending: None,
            },
        ));
    }
    for (batch, found) in &batches {
        let any_new = found.iter().any(|(_, a)| *a == Some(true));
        let any_old = found.iter().any(|(_, a)| *a == Some(false));
        if any_new && any_old {
            return Err(format!(
                "verify: counter batch {batch:#x} is torn (counter, found after it): {found:?}"
            )
            .into());
        }
    }
    for (j, slot) in resolved {
        state.set(j, slot)?;
    }
    state.sync()?;
    let present: Vec<u32> = (0..COUNTERS)
        .filter(|&j| state.get(j).value.is_some())
        .collect();
    report.present = present.len() as u32;
    report.acked = (0..COUNTERS).map(|j| state.get(j).acked).sum();
    for reverse in [false, true] {
        let it = keyspace.iter();
        let entries: Vec<_> = if reverse {
            it.rev().collect::<strata::Result<_>>()?
        } else {
            it.collect::<strata::Result<_>>()?
        };
        let mut want = present.clone();
        if reverse {
            want.reverse();
        }
        if entries.len() != want.len() {
            return Err(format!(
                "verify: a scan of the counters (reverse: {reverse}) returned {} entries, {} are present",
                entries.len(),
                want.len()
            )
            .into());
        }
        for ((key, value), &j) in entries.iter().zip(&want) {
            if key.as_ref() != counter_key(j).as_slice() {
                return Err(format!(
                    "verify: a scan of the counters (reverse: {reverse}) returned {key:?} where counter {j} was due"
                )
                .into());
            }
            check_exact(
                j,
                &state.get(j),
                Some(decode_value(j, value)?),
                "verify scan",
            )?;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counters");
        let state = CounterState::open_or_create(&path).unwrap();
        let slot = CounterSlot {
            value: Some(41),
            acked: 7,
            pending: Some((CounterWrite::Increment(3), 0x55)),
        };
        state.set(5, slot).unwrap();
        drop(state);
        let state = CounterState::open_or_create(&path).unwrap();
        assert_eq!(state.get(5), slot);
        assert_eq!(state.get(6), CounterSlot::default());
        assert_eq!(state.first_pending(), Some(5));
        drop(state);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[9], HEADER_BYTES + 5 * SLOT_BYTES + 8)
            .unwrap();
        let e = CounterState::open_or_create(&path)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("counter slot 5 is damaged"), "{e}");
    }

    /// The verifier takes the value before or after an in-flight
    /// increment and nothing else: one counted twice, or an acknowledged
    /// one lost, is reported.
    #[test]
    fn an_increment_lost_or_counted_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db"), Options::default()).unwrap();
        let ks = open(&db, &Options::default()).unwrap();
        let state = CounterState::open_or_create(&dir.path().join("counters")).unwrap();
        let writer = CounterWriter {
            keyspace: ks.clone(),
            state: Arc::new(state),
            thread: 0,
            threads: 1,
        };
        let mut rng = Rng::new(3);
        for b in 0..200 {
            writer.write(&db, &mut rng, b, false).unwrap();
            writer.check(&db, &mut rng, 1000 + b).unwrap();
        }
        let state = &writer.state;
        let report = verify(&ks, state).unwrap();
        assert!(report.present > 0 && report.acked >= 200, "{report:?}");
        // An increment in flight, not applied: the value before it.
        let j = (0..COUNTERS)
            .find(|&j| state.get(j).value.is_some())
            .unwrap();
        let slot = state.get(j);
        let inc = CounterSlot {
            pending: Some((CounterWrite::Increment(5), 1)),
            ..slot
        };
        state.set(j, inc).unwrap();
        assert_eq!(verify(&ks, state).unwrap().pending_old, 1);
        // Applied: the value after it.
        state.set(j, inc).unwrap();
        ks.merge(counter_key(j), 5u64.to_le_bytes()).unwrap();
        assert_eq!(verify(&ks, state).unwrap().pending_new, 1);
        // Applied twice: refused.
        let slot = state.get(j);
        state
            .set(
                j,
                CounterSlot {
                    pending: Some((CounterWrite::Increment(5), 2)),
                    ..slot
                },
            )
            .unwrap();
        ks.merge(counter_key(j), 5u64.to_le_bytes()).unwrap();
        ks.merge(counter_key(j), 5u64.to_le_bytes()).unwrap();
        let e = verify(&ks, state).unwrap_err().to_string();
        assert!(
            e.contains(&format!("counter {j} with Increment(5) in flight")),
            "{e}"
        );
        // An acknowledged increment lost: refused.
        let slot = state.get(j);
        state
            .set(
                j,
                CounterSlot {
                    pending: None,
                    value: Some(slot.value.unwrap() + 20),
                    ..slot
                },
            )
            .unwrap();
        let e = verify(&ks, state).unwrap_err().to_string();
        assert!(e.contains("acknowledged increments lost"), "{e}");
    }
}
