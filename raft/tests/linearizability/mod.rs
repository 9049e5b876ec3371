//! A linearizability checker for a map of registers (the cluster test's
//! keys), with its own tests.
//!
//! The search is Wing and Gong's, with Lowe's memoization of the states
//! already tried, as Jepsen's Knossos and porcupine do: it extends a
//! linearization one operation at a time, taking only an operation that
//! began before every pending one ended, and never visits the same set
//! of done operations with the same register value twice. That bounds it
//! by the distinct states rather than the orders (stateright 0.31's
//! tester, used before, searches orders without memoization and took
//! minutes on some histories of this test). Linearizability is local
//! (Herlihy and Wing): a history of several keys is linearizable if each
//! key's is, so each key is checked alone.
//!
//! An operation that got no answer (it failed or timed out) may have
//! taken effect at any time after it began, or never: a write without an
//! answer ends "at infinity" (it can be placed after everything, where
//! it changes nothing anyone saw; one whose value no read saw is left
//! out, as never done), a read without one says nothing and is left out.

use std::collections::{BTreeMap, HashMap, HashSet};

/// What an operation asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Set the key to the value; `None` deletes it.
    Write(Option<String>),
    /// Read the key.
    Read,
}

/// One operation as its client saw it, on the history's logical clock.
#[derive(Debug, Clone)]
pub struct Op {
    pub key: String,
    pub kind: Kind,
    /// When it was invoked.
    pub call: u64,
    /// When it returned and, for a read, the value it read; `None`: no
    /// answer.
    pub ret: Option<(u64, Option<String>)>,
}

/// A history being recorded: invocations and returns in the order they
/// happen, on one clock (callers hold a lock around each record, taken
/// before a request is sent and after its answer came).
#[derive(Debug, Default)]
pub struct History {
    clock: u64,
    ops: Vec<Op>,
}

impl History {
    /// Record the invocation of `kind` on `key`; returns its id.
    pub fn invoke(&mut self, key: &str, kind: Kind) -> usize {
        self.clock += 1;
        self.ops.push(Op {
            key: key.to_owned(),
            kind,
            call: self.clock,
            ret: None,
        });
        self.ops.len() - 1
    }

    /// Record the answer to operation `id` (for a write, `read` is
    /// ignored).
    pub fn answer(&mut self, id: usize, read: Option<String>) {
        self.clock += 1;
        self.ops[id].ret = Some((self.clock, read));
    }

    /// Operations recorded, answered or not.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// `Ok` if the history is linearizable; otherwise the first key whose
    /// history is not, with its operations.
    pub fn check(&self) -> Result<(), String> {
        let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
        for op in &self.ops {
            by_key.entry(&op.key).or_default().push(op);
        }
        for (key, ops) in by_key {
            if !register_is_linearizable(&ops) {
                return Err(format!("key {key:?} is not linearizable: {ops:#?}"));
            }
        }
        Ok(())
    }
}

/// One operation of a register's history, as the search sees it.
struct Entry {
    call: u64,
    /// `u64::MAX` for a write without an answer.
    ret: u64,
    /// A write's value, or the value a read saw (interned).
    value: usize,
    write: bool,
}

/// Whether the operations on one register (initially absent) can be
/// ordered so that each takes effect between its call and its return and
/// every read sees the last write before it.
fn register_is_linearizable(ops: &[&Op]) -> bool {
    let mut values: HashMap<Option<String>, usize> = HashMap::new();
    values.insert(None, 0);
    let mut intern = |v: &Option<String>| {
        let next = values.len();
        *values.entry(v.clone()).or_insert(next)
    };
    let mut entries: Vec<Entry> = Vec::new();
    for op in ops {
        match (&op.kind, &op.ret) {
            (Kind::Write(v), ret) => entries.push(Entry {
                call: op.call,
                ret: ret.as_ref().map_or(u64::MAX, |(t, _)| *t),
                value: intern(v),
                write: true,
            }),
            (Kind::Read, Some((t, seen))) => entries.push(Entry {
                call: op.call,
                ret: *t,
                value: intern(seen),
                write: false,
            }),
            (Kind::Read, None) => {}
        }
    }
    // A write without an answer whose value no read saw can be taken as
    // never done: wherever a linearization puts it, no read follows it
    // before the next write, so the order without it is one too. Left
    // in, each would double the states to search.
    let read_values: HashSet<usize> = entries
        .iter()
        .filter(|e| !e.write)
        .map(|e| e.value)
        .collect();
    entries.retain(|e| !(e.write && e.ret == u64::MAX && !read_values.contains(&e.value)));
    // Answered operations first, earliest return first: a valid order is
    // usually found without backtracking.
    entries.sort_by_key(|e| (e.ret, e.call));
    // Writes without an answer of the same value (a delete's is shared)
    // are interchangeable: each may take effect any time after its call,
    // so in any valid order two of them can swap places so that the one
    // called first comes first. The search takes them in call order
    // (each waits for the one before it): k such writes then give k + 1
    // states instead of 2^k (one run of this test with many unanswered
    // deletes searched for ten minutes without it).
    let mut last_of_value: HashMap<usize, usize> = HashMap::new();
    let before: Vec<Option<usize>> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if e.write && e.ret == u64::MAX {
                last_of_value.insert(e.value, i)
            } else {
                None
            }
        })
        .collect();
    let mut search = Search {
        entries: &entries,
        before: &before,
        done: vec![0u64; entries.len().div_ceil(64)],
        seen: HashSet::new(),
    };
    search.extend(0, 0)
}

struct Search<'a> {
    entries: &'a [Entry],
    /// For a write without an answer: the one of the same value called
    /// just before it, which must be linearized first.
    before: &'a [Option<usize>],
    /// The operations linearized so far, a bit each.
    done: Vec<u64>,
    /// (done, value) states already explored, which led nowhere.
    seen: HashSet<(Vec<u64>, usize)>,
}

impl Search<'_> {
    fn is_done(&self, i: usize) -> bool {
        self.done[i / 64] & (1 << (i % 64)) != 0
    }

    fn flip(&mut self, i: usize) {
        self.done[i / 64] ^= 1 << (i % 64);
    }

    /// Linearize the rest, `count` done and the register holding `value`.
    fn extend(&mut self, count: usize, value: usize) -> bool {
        if count == self.entries.len() {
            return true;
        }
        // An operation can come next only if it began before every
        // operation not yet linearized ended.
        let first_end = (0..self.entries.len())
            .filter(|&i| !self.is_done(i))
            .map(|i| self.entries[i].ret)
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..self.entries.len() {
            let entry = &self.entries[i];
            if self.is_done(i)
                || entry.call > first_end
                || self.before[i].is_some_and(|j| !self.is_done(j))
            {
                continue;
            }
            let next = if entry.write {
                entry.value
            } else if entry.value == value {
                value
            } else {
                continue;
            };
            self.flip(i);
            if self.seen.insert((self.done.clone(), next)) && self.extend(count + 1, next) {
                return true;
            }
            self.flip(i);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::{History, Kind};

    fn write(h: &mut History, key: &str, value: Option<&str>) {
        let id = h.invoke(key, Kind::Write(value.map(str::to_owned)));
        h.answer(id, None);
    }

    fn read(h: &mut History, key: &str, value: Option<&str>) {
        let id = h.invoke(key, Kind::Read);
        h.answer(id, value.map(str::to_owned));
    }

    #[test]
    fn sequential_histories_are_checked_against_the_register() {
        let mut h = History::default();
        read(&mut h, "a", None);
        write(&mut h, "a", Some("1"));
        read(&mut h, "a", Some("1"));
        write(&mut h, "b", Some("2"));
        write(&mut h, "a", None);
        read(&mut h, "a", None);
        read(&mut h, "b", Some("2"));
        assert!(h.check().is_ok());

        // A read that misses a write acknowledged before it began.
        let mut stale = History::default();
        write(&mut stale, "a", Some("1"));
        read(&mut stale, "a", None);
        assert!(stale.check().is_err());

        // A deleted value read back.
        let mut undeleted = History::default();
        write(&mut undeleted, "a", Some("1"));
        write(&mut undeleted, "a", None);
        read(&mut undeleted, "a", Some("1"));
        assert!(undeleted.check().is_err());

        // A value no one wrote; another key's value.
        let mut invented = History::default();
        write(&mut invented, "b", Some("1"));
        read(&mut invented, "a", Some("1"));
        assert!(invented.check().is_err());
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order_but_not_twice() {
        // A write overlapping two reads: both may see it, or the first not.
        let mut h = History::default();
        let w = h.invoke("a", Kind::Write(Some("1".to_owned())));
        read(&mut h, "a", None);
        read(&mut h, "a", Some("1"));
        h.answer(w, None);
        assert!(h.check().is_ok());

        // Seen, then not seen, while the write is still under way.
        let mut flicker = History::default();
        let w = flicker.invoke("a", Kind::Write(Some("1".to_owned())));
        read(&mut flicker, "a", Some("1"));
        read(&mut flicker, "a", None);
        flicker.answer(w, None);
        assert!(flicker.check().is_err());

        // Two overlapping writes, then reads that disagree on the winner.
        let mut split = History::default();
        let w1 = split.invoke("a", Kind::Write(Some("1".to_owned())));
        let w2 = split.invoke("a", Kind::Write(Some("2".to_owned())));
        split.answer(w1, None);
        split.answer(w2, None);
        read(&mut split, "a", Some("2"));
        read(&mut split, "a", Some("1"));
        assert!(split.check().is_err());
    }

    #[test]
    fn a_write_without_an_answer_may_have_happened_or_not() {
        let pending = || {
            let mut h = History::default();
            h.invoke("a", Kind::Write(Some("1".to_owned())));
            h
        };
        let mut seen = pending();
        read(&mut seen, "a", Some("1"));
        assert!(seen.check().is_ok());
        let mut unseen = pending();
        read(&mut unseen, "a", None);
        write(&mut unseen, "a", Some("2"));
        read(&mut unseen, "a", Some("2"));
        assert!(unseen.check().is_ok());
        // Late, even after a later write: it may land at any time.
        let mut late = pending();
        write(&mut late, "a", Some("2"));
        read(&mut late, "a", Some("1"));
        assert!(late.check().is_ok());
        // But once seen, it cannot be unseen without another write.
        let mut flicker = pending();
        read(&mut flicker, "a", Some("1"));
        read(&mut flicker, "a", None);
        assert!(flicker.check().is_err());
        // A read without an answer says nothing.
        let mut silent = History::default();
        write(&mut silent, "a", Some("1"));
        silent.invoke("a", Kind::Read);
        assert!(silent.check().is_ok());
    }

    /// Deletes without an answer share one value, and are taken in call
    /// order. Thirty of them pending from the start, then writes each
    /// read back: any subset of the deletes may fall between any two
    /// rounds (2^30 states to refute a bad history without the order).
    /// A read of nothing at the end is fine (a delete may land last); a
    /// read of the first value again is not.
    #[test]
    fn many_deletes_without_an_answer_are_interchangeable() {
        let build = |last: Option<&str>| {
            let mut h = History::default();
            for _ in 0..30 {
                h.invoke("a", Kind::Write(None));
            }
            // Nothing there yet: a read sees the deletes' value, so they
            // count (one whose value no read saw is left out).
            read(&mut h, "a", None);
            for i in 0..30 {
                write(&mut h, "a", Some(&format!("v{i}")));
                read(&mut h, "a", Some(&format!("v{i}")));
            }
            read(&mut h, "a", last);
            h
        };
        assert!(build(None).check().is_ok());
        assert!(build(Some("v29")).check().is_ok());
        assert!(build(Some("v0")).check().is_err());
    }

    /// Many clients' overlapping operations on one key, linearizable by
    /// construction (each takes effect at a point inside its interval),
    /// some writes unanswered: accepted, quickly; the same history with
    /// one read changed to a value never written is rejected.
    #[test]
    fn a_long_concurrent_history_is_accepted_and_one_bad_read_rejected() {
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        // Events: each client's op is invoked, takes effect, returns, in
        // that order, interleaved with other clients' at random.
        const CLIENTS: usize = 8;
        const OPS: usize = 300;
        let mut h = History::default();
        let mut value: Option<String> = None;
        // Per client: its operation in progress (id, kind, and once it
        // took effect, what it read).
        type InProgress = (usize, Kind, Option<Option<String>>);
        let mut running: Vec<Option<InProgress>> = vec![None; CLIENTS];
        let mut started = 0;
        let mut reads = Vec::new();
        while started < OPS || running.iter().any(Option::is_some) {
            let c = next(CLIENTS as u64) as usize;
            match running[c].take() {
                None if started < OPS => {
                    let kind = match next(4) {
                        0 | 1 => Kind::Write(Some(format!("{c}-{started}"))),
                        2 => Kind::Write(None),
                        _ => Kind::Read,
                    };
                    started += 1;
                    let id = h.invoke("k", kind.clone());
                    running[c] = Some((id, kind, None));
                }
                None => {}
                Some((id, kind, None)) => {
                    // The effect.
                    let seen = match &kind {
                        Kind::Write(v) => {
                            value = v.clone();
                            None
                        }
                        Kind::Read => Some(value.clone()),
                    };
                    running[c] = Some((id, kind, Some(seen.flatten())));
                }
                Some((id, kind, Some(seen))) => {
                    // The answer; one write in ten never gets one.
                    match kind {
                        Kind::Write(_) if next(10) == 0 => {}
                        Kind::Write(_) => h.answer(id, None),
                        Kind::Read => {
                            h.answer(id, seen);
                            reads.push(id);
                        }
                    }
                }
            }
        }
        assert!(h.check().is_ok());
        let bad = reads[reads.len() / 2];
        h.ops[bad].ret.as_mut().expect("answered").1 = Some("never written".to_owned());
        assert!(h.check().is_err());
    }
}
