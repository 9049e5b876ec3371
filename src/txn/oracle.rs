//! The oracle: a bounded record of recent commits' keys, against which a
//! transaction is certified at commit.
//!
//! It lives in the write path's sequencer (`write/pipeline.rs`), so it is
//! read and written only by the leader of the write queue, in the same
//! critical section that numbers the group: a transaction is certified
//! against every commit numbered before it, and every commit numbered
//! after it is certified against it. Two conflicting transactions can
//! therefore never both commit.
//!
//! What it holds: for each recent commit (a group member's batch) its
//! sequence number (the batch's last) and its [`Footprint`], in a ring,
//! oldest first, and a table from key fingerprint to the newest sequence
//! number that wrote the key. Invariant: **every write numbered after
//! `covered_from` is recorded.** The ring holds at most
//! [`ORACLE_MAX_KEYS`] keys; evicting the oldest commit raises
//! `covered_from` to its number. A write made with no footprint (a plain
//! write while no transaction was live, see [`OracleShared::recording`]),
//! or one left unrecorded because no other transaction was alive
//! ([`Oracle::record_needed`]), raises it too. A transaction whose
//! snapshot is older than `covered_from` is validated by per-key lookups
//! through the memtables and levels instead (`lookup.rs`), and pins the
//! oracle meanwhile.

use super::footprint::Footprint;
#[cfg(test)]
use super::footprint::KeyRange;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use strata_sstable::SeqNo;

/// The most keys the ring records before it evicts the oldest commits:
/// about 64 bytes each plus the key's bytes, so a few MiB. Enough for
/// thousands of small transactions in flight; a transaction whose
/// snapshot fell out of it pays a lookup per key instead of failing.
pub(crate) const ORACLE_MAX_KEYS: usize = 1 << 16;

/// The part of the oracle read outside the sequencer.
#[derive(Debug)]
pub(crate) struct OracleShared {
    /// Transactions alive: while there is one, plain writes bring their
    /// footprints (`recording`).
    live: AtomicUsize,
    /// Mirror of `Oracle::covered_from`, for a transaction deciding
    /// whether it must validate by lookups.
    covered_from: AtomicU64,
    /// Sequence numbers transactions validated through by lookups: the
    /// ring keeps every commit after the smallest (a leaf lock).
    pins: parking_lot::Mutex<Vec<SeqNo>>,
}

impl OracleShared {
    pub fn new(last_seq: SeqNo) -> Self {
        OracleShared {
            live: AtomicUsize::new(0),
            covered_from: AtomicU64::new(last_seq),
            pins: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// Whether a plain write must bring its footprint: a transaction is
    /// alive that may be certified against it. A write that misses a
    /// transaction starting meanwhile only raises `covered_from`.
    #[inline]
    pub fn recording(&self) -> bool {
        self.live.load(Ordering::Acquire) > 0
    }

    pub fn transaction_started(&self) {
        self.live.fetch_add(1, Ordering::AcqRel);
    }

    pub fn transaction_ended(&self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
    }

    /// Every write numbered after this is recorded (or will be: the
    /// leader stores it before it numbers the next group).
    pub fn covered_from(&self) -> SeqNo {
        self.covered_from.load(Ordering::Acquire)
    }

    /// Pin the oracle at `visible` or at `covered_from`, whichever is
    /// later: every commit numbered after the pin stays recorded until
    /// the pin is dropped. The caller validates by lookups up to the pin
    /// (after waiting until it is published) and the oracle does the rest.
    pub fn pin(self: &Arc<Self>, visible: SeqNo) -> Pin {
        let mut pins = self.pins.lock();
        // Under the pins lock, which eviction takes: no commit after
        // `at` can be evicted between this read and the push.
        let at = visible.max(self.covered_from());
        pins.push(at);
        Pin {
            shared: Arc::clone(self),
            at,
        }
    }
}

/// A transaction's pin on the oracle (see [`OracleShared::pin`]).
#[derive(Debug)]
pub(crate) struct Pin {
    shared: Arc<OracleShared>,
    pub at: SeqNo,
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut pins = self.shared.pins.lock();
        if let Some(i) = pins.iter().position(|&p| p == self.at) {
            pins.swap_remove(i);
        }
    }
}

/// What a transaction asks at commit: that nothing it names was written
/// after `from`.
#[derive(Debug)]
pub(crate) struct Certificate {
    /// Validated through this sequence number (its snapshot's, or a
    /// later one after lookups).
    pub from: SeqNo,
    /// Keys no later commit may have written; ranges no later commit may
    /// have written into.
    pub check: Footprint,
    /// The leader's answer.
    pub verdict: Verdict,
}

/// The leader's answer to a [`Certificate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not certified yet (the write failed before its group was numbered).
    Pending,
    /// Certified, numbered and recorded.
    Accepted,
    /// A commit after `from` wrote this key of the keyspace with this id.
    Conflict { keyspace: u32, key: Vec<u8> },
    /// The oracle no longer reaches back to `from`: validate by lookups
    /// and try again.
    Retry,
}

/// Fingerprints are already mixed: the table uses them as they are.
#[derive(Default)]
pub(crate) struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The leader's side (see the module comment). REQUIRES: used only
/// under the sequencer.
pub(crate) struct Oracle {
    shared: Arc<OracleShared>,
    /// Fingerprint to the newest sequence number that wrote it.
    newest: HashMap<u64, SeqNo, BuildHasherDefault<Identity>>,
    /// Recent commits, oldest first.
    ring: VecDeque<(SeqNo, Footprint)>,
    /// Keys and range deletes in the ring (`weight`).
    keys: usize,
    /// Commits in the ring with range deletes (checked against every
    /// certificate's keys).
    range_deletes: usize,
    covered_from: SeqNo,
}

impl Oracle {
    pub fn new(shared: Arc<OracleShared>) -> Self {
        let covered_from = shared.covered_from();
        Oracle {
            shared,
            newest: HashMap::default(),
            ring: VecDeque::new(),
            keys: 0,
            range_deletes: 0,
            covered_from,
        }
    }

    #[cfg(test)]
    pub fn shared(&self) -> &Arc<OracleShared> {
        &self.shared
    }

    /// Whether a transaction validated through `cert.from` may commit now,
    /// after every commit recorded: nothing in `cert.check` nor among the
    /// keys it writes (`writes`, its batch's footprint) was written after.
    pub fn certify(&self, cert: &Certificate, writes: Option<&Footprint>) -> Verdict {
        if self.covered_from > cert.from {
            return Verdict::Retry;
        }
        let from = cert.from;
        let checked = std::iter::once(&cert.check).chain(writes);
        for fp in checked.clone() {
            for (keyspace, f, key) in fp.keys() {
                if self.newest.get(&f).is_some_and(|&s| s > from) {
                    return Verdict::Conflict {
                        keyspace,
                        key: key.to_vec(),
                    };
                }
            }
        }
        // Ranges: those read, and the transaction's own range deletes
        // (which write every key in them).
        let has_ranges = |fp: &Footprint| !fp.ranges.is_empty();
        if self.range_deletes == 0 && !checked.clone().any(has_ranges) {
            return Verdict::Accepted;
        }
        // Ranges: against each commit after `from`, newest first.
        for (seq, written) in self.ring.iter().rev() {
            if *seq <= from {
                break;
            }
            for fp in checked.clone() {
                if let Some(v) = range_conflict(fp, written) {
                    return v;
                }
            }
        }
        Verdict::Accepted
    }

    /// Whether a group with `certifying` transactions must record its
    /// writes: unless its one transaction is the only one alive, some
    /// transaction may be certified against them (a later member of the
    /// group, or one alive elsewhere). A transaction that starts while the
    /// group is numbered and takes a snapshot older than it finds the
    /// record moved past (`unrecorded`) and validates by lookups. So a
    /// lone thread's transactions never touch the table.
    pub fn record_needed(&self, certifying: usize) -> bool {
        certifying > 1 || self.shared.live.load(Ordering::Acquire) > certifying
    }

    /// The write numbered `seq` (its batch's last number) wrote `fp`.
    pub fn record(&mut self, seq: SeqNo, fp: Footprint) {
        for (_, f, _) in fp.keys() {
            self.newest.insert(f, seq);
        }
        self.keys += weight(&fp);
        if !fp.ranges.is_empty() {
            self.range_deletes += 1;
        }
        self.ring.push_back((seq, fp));
        if self.keys > ORACLE_MAX_KEYS {
            self.evict();
        }
    }

    /// The write numbered up to `seq` came without a footprint: the
    /// oracle no longer covers anything before it.
    pub fn unrecorded(&mut self, seq: SeqNo) {
        if seq > self.covered_from {
            self.covered_from = seq;
            self.shared.covered_from.store(seq, Ordering::Release);
        }
    }

    /// The group certified against this oracle was not numbered after all
    /// (its record was not logged): `covered_from` comes back to at most
    /// `last_seq`, the last number handed out. Its certification may have
    /// raised it to numbers the group was to get; left there, a
    /// transaction validating by lookups would wait for those numbers to
    /// be published, and they may never be (docs/design/transactions.md).
    /// Every legitimate raise is to a number already handed out, so none
    /// is undone; the records the group left are above every real number
    /// and only ever overstate.
    pub fn not_numbered(&mut self, last_seq: SeqNo) {
        if self.covered_from > last_seq {
            self.covered_from = last_seq;
            self.shared.covered_from.store(last_seq, Ordering::Release);
        }
    }

    /// Drop the oldest commits until the ring is within its budget, but
    /// none a pin needs.
    fn evict(&mut self) {
        let shared = Arc::clone(&self.shared);
        let pins = shared.pins.lock();
        let pinned = pins.iter().copied().min();
        while self.keys > ORACLE_MAX_KEYS {
            let Some(&(seq, _)) = self.ring.front() else {
                break;
            };
            if pinned.is_some_and(|p| seq > p) {
                break;
            }
            let Some((seq, fp)) = self.ring.pop_front() else {
                break;
            };
            for (_, f, _) in fp.keys() {
                if self.newest.get(&f) == Some(&seq) {
                    self.newest.remove(&f);
                }
            }
            self.keys -= weight(&fp);
            if !fp.ranges.is_empty() {
                self.range_deletes -= 1;
            }
            // Under the pins lock: a pin taken now sees the new value.
            self.unrecorded(seq);
        }
        drop(pins);
    }

    /// Commits recorded (tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ring.len()
    }
}

/// What a commit costs the ring's budget: its keys, and a range delete
/// as one (else commits of range deletes alone would never evict).
fn weight(fp: &Footprint) -> usize {
    fp.key_count() + fp.ranges.len()
}

/// A conflict between what a transaction checks and one later commit's
/// writes, through ranges: a key it wrote in a range read, or a range it
/// deleted over a key or range read.
fn range_conflict(check: &Footprint, written: &Footprint) -> Option<Verdict> {
    for range in &check.ranges {
        for (keyspace, _, key) in written.keys() {
            if range.contains(keyspace, key) {
                return Some(Verdict::Conflict {
                    keyspace,
                    key: key.to_vec(),
                });
            }
        }
    }
    for deleted in &written.ranges {
        for (keyspace, _, key) in check.keys() {
            if deleted.contains(keyspace, key) {
                return Some(Verdict::Conflict {
                    keyspace,
                    key: key.to_vec(),
                });
            }
        }
        if let Some(read) = check.ranges.iter().find(|r| r.overlaps(deleted)) {
            return Some(Verdict::Conflict {
                keyspace: read.keyspace,
                key: deleted.start.clone().max(read.start.clone()),
            });
        }
    }
    None
}

#[cfg(test)]
fn key_range(keyspace: u32, start: Vec<u8>, end: Option<Vec<u8>>) -> KeyRange {
    KeyRange {
        keyspace,
        start,
        end,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fp(keys: &[&str]) -> Footprint {
        let mut f = Footprint::default();
        for k in keys {
            f.push_key(0, k.as_bytes());
        }
        f
    }

    fn cert(from: SeqNo, keys: &[&str]) -> Certificate {
        Certificate {
            from,
            check: fp(keys),
            verdict: Verdict::Pending,
        }
    }

    fn oracle(last: SeqNo) -> Oracle {
        Oracle::new(Arc::new(OracleShared::new(last)))
    }

    #[test]
    fn a_key_written_after_the_snapshot_conflicts() {
        let mut o = oracle(0);
        o.record(5, fp(&["a"]));
        assert_eq!(o.certify(&cert(5, &["a"]), None), Verdict::Accepted);
        assert_eq!(
            o.certify(&cert(4, &["b", "a"]), None),
            Verdict::Conflict {
                keyspace: 0,
                key: b"a".to_vec()
            }
        );
        assert_eq!(o.certify(&cert(4, &["b"]), None), Verdict::Accepted);
        // The batch's own keys are checked as the certificate's are.
        assert!(matches!(
            o.certify(&cert(4, &["b"]), Some(&fp(&["a"]))),
            Verdict::Conflict { .. }
        ));
    }

    #[test]
    fn a_lone_transaction_is_not_recorded_a_pair_is() {
        let o = oracle(0);
        assert!(!o.record_needed(0) && !o.record_needed(1));
        o.shared().transaction_started();
        assert!(o.record_needed(0), "a plain write while one is alive");
        assert!(!o.record_needed(1), "the one alive commits alone");
        assert!(
            o.record_needed(2),
            "a second in the group is certified against the first"
        );
        o.shared().transaction_started();
        assert!(o.record_needed(1), "another is alive");
    }

    #[test]
    fn a_snapshot_older_than_the_record_must_retry() {
        let mut o = oracle(10);
        assert_eq!(o.certify(&cert(9, &["a"]), None), Verdict::Retry);
        assert_eq!(o.certify(&cert(10, &["a"]), None), Verdict::Accepted);
        o.unrecorded(12);
        assert_eq!(o.certify(&cert(11, &[]), None), Verdict::Retry);
    }

    #[test]
    fn eviction_raises_covered_from_but_not_past_a_pin() {
        let mut o = oracle(0);
        let keys: Vec<String> = (0..ORACLE_MAX_KEYS / 2).map(|i| i.to_string()).collect();
        let half: Vec<&str> = keys.iter().map(String::as_str).collect();
        o.record(1, fp(&half));
        o.record(2, fp(&half));
        assert_eq!(o.shared().covered_from(), 0);
        let pin = o.shared().pin(1);
        o.record(3, fp(&["x"]));
        // Commit 1 goes (not after the pin); 2 stays for the pin.
        assert_eq!(o.shared().covered_from(), 1);
        assert_eq!(o.len(), 2);
        assert_eq!(
            o.certify(&cert(1, &["x"]), None),
            Verdict::Conflict {
                keyspace: 0,
                key: b"x".to_vec()
            }
        );
        drop(pin);
        let others: Vec<String> = keys.iter().map(|k| format!("z{k}")).collect();
        o.record(
            4,
            fp(&others.iter().map(String::as_str).collect::<Vec<_>>()),
        );
        assert_eq!(o.shared().covered_from(), 2);
        assert_eq!(o.certify(&cert(1, &["q"]), None), Verdict::Retry);
        // Key "0" was last written by 2, now evicted: not in the table.
        assert_eq!(o.certify(&cert(2, &["0"]), None), Verdict::Accepted);
    }

    #[test]
    fn ranges_conflict_with_keys_written_into_them_and_range_deletes() {
        let mut o = oracle(0);
        o.record(3, fp(&["m"]));
        let mut c = cert(2, &[]);
        c.check
            .ranges
            .push(key_range(0, b"a".to_vec(), Some(b"n".to_vec())));
        assert!(matches!(o.certify(&c, None), Verdict::Conflict { .. }));
        c.check.ranges[0] = key_range(0, b"n".to_vec(), None);
        assert_eq!(o.certify(&c, None), Verdict::Accepted);
        let mut deletes = Footprint::default();
        deletes
            .ranges
            .push(key_range(0, b"x".to_vec(), Some(b"z".to_vec())));
        o.record(4, deletes);
        assert!(matches!(o.certify(&c, None), Verdict::Conflict { .. }));
        assert!(matches!(
            o.certify(&cert(3, &["y"]), None),
            Verdict::Conflict { .. }
        ));
        assert_eq!(o.certify(&cert(4, &["y"]), None), Verdict::Accepted);
    }

    #[test]
    fn a_transactions_own_range_delete_conflicts_with_a_key_written_into_it() {
        let mut o = oracle(0);
        o.record(3, fp(&["m"]));
        let mut deletes = Footprint::default();
        deletes
            .ranges
            .push(key_range(0, b"a".to_vec(), Some(b"n".to_vec())));
        // Only in the batch's footprint, and no range delete recorded:
        // still checked against the ring.
        assert_eq!(
            o.certify(&cert(2, &[]), Some(&deletes)),
            Verdict::Conflict {
                keyspace: 0,
                key: b"m".to_vec()
            }
        );
        assert_eq!(o.certify(&cert(3, &[]), Some(&deletes)), Verdict::Accepted);
    }
}
