//! The writes acknowledged since the database last recovered, and the rule
//! every crash test checks after a power loss: the recovered state is the
//! state after a prefix of those writes that holds every durable one
//! (synced, or followed by a flush or a clean reopen), or after all of them
//! plus the one write whose outcome was never reported (it failed with an
//! injected fault or a crash).
//!
//! Shared by tests/simulation.rs, tests/model.rs and the `db_model` fuzz
//! target (which includes this file by `#[path]`), so the rule is written
//! once. It uses nothing but std. A write's operations are puts, deletes,
//! merges (the tests' operator appends with `,`) and range deletes, on
//! model keys.

// Each includer uses part of it (the fuzz target no salvage).
#![allow(dead_code)]

use std::collections::BTreeMap;

/// What the database should hold: key to value.
pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// One operation of a write, on model keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    /// A merge of this operand: the key's value, if any, then `,` and the
    /// operand (`strata::Append` with separator `,`).
    Merge(Vec<u8>, Vec<u8>),
    /// Every key `k` with `start <= k < end`; `None`: no end. (Model keys
    /// carry their keyspace, so a range of one keyspace has an end:
    /// `keyspaces::model_range`.)
    DeleteRange(Vec<u8>, Option<Vec<u8>>),
}

impl WriteOp {
    /// The key a point operation writes, or where a range starts: with
    /// model keys, it names the keyspace the operation is in.
    pub fn first_key(&self) -> &[u8] {
        match self {
            WriteOp::Put(k, _)
            | WriteOp::Delete(k)
            | WriteOp::Merge(k, _)
            | WriteOp::DeleteRange(k, _) => k,
        }
    }

    /// A range delete whose end is not after its start: the database
    /// writes no record for it, so it makes nothing durable.
    pub fn is_empty_range(&self) -> bool {
        matches!(self, WriteOp::DeleteRange(start, Some(end)) if end <= start)
    }

    /// Whether this operation writes `key`.
    pub fn touches(&self, key: &[u8]) -> bool {
        match self {
            WriteOp::Put(k, _) | WriteOp::Delete(k) | WriteOp::Merge(k, _) => k.as_slice() == key,
            WriteOp::DeleteRange(start, end) => in_range(key, start, end.as_deref()),
        }
    }
}

/// `start <= key < end` (`end` `None`: no end).
pub fn in_range(key: &[u8], start: &[u8], end: Option<&[u8]>) -> bool {
    start <= key && end.is_none_or(|e| key < e)
}

/// One atomic write: its operations, applied in order.
pub type Write = Vec<WriteOp>;

pub fn apply(m: &mut Model, w: &Write) {
    for op in w {
        match op {
            WriteOp::Put(k, v) => {
                m.insert(k.clone(), v.clone());
            }
            WriteOp::Delete(k) => {
                m.remove(k);
            }
            WriteOp::Merge(k, operand) => match m.get_mut(k) {
                Some(value) => {
                    value.push(b',');
                    value.extend_from_slice(operand);
                }
                None => {
                    m.insert(k.clone(), operand.clone());
                }
            },
            WriteOp::DeleteRange(start, end) => {
                // Cut out [start, end) and put back what follows it.
                let mut from_start = m.split_off(start.as_slice());
                if let Some(end) = end {
                    let mut after = from_start.split_off(end.as_slice());
                    m.append(&mut after);
                }
            }
        }
    }
}

/// What a recovery kept of the acknowledged writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// How many acknowledged writes survived (the longest matching prefix).
    pub prefix: usize,
    /// Acknowledged writes since the last recovery.
    pub acknowledged: usize,
    /// The write in doubt was there (`None`: there was none).
    pub in_doubt_applied: Option<bool>,
}

/// The ledger of one epoch (from one recovery to the next).
#[derive(Debug, Default)]
pub struct AckLog {
    base: Model,
    log: Vec<Write>,
    durable: usize,
    in_doubt: Option<Write>,
}

impl AckLog {
    /// An epoch starting from `base`.
    pub fn new(base: Model) -> Self {
        AckLog {
            base,
            ..AckLog::default()
        }
    }

    /// `w` was acknowledged; `durable` when it was synced.
    pub fn acknowledged(&mut self, w: Write, durable: bool) {
        self.log.push(w);
        if durable {
            self.all_durable();
        }
    }

    /// Everything acknowledged so far must survive (after a flush, a
    /// synced write, or a clean reopen).
    pub fn all_durable(&mut self) {
        self.durable = self.log.len();
    }

    /// Every acknowledged write up to the last one holding a key `touched`
    /// accepts (a range delete: its start; an empty range holds none) must
    /// survive: after a flush of
    /// one keyspace, which makes its writes durable and, by the prefix
    /// rule, all before them, but not later writes to other keyspaces.
    pub fn durable_through_last(&mut self, touched: impl Fn(&[u8]) -> bool) {
        if let Some(i) = self.log.iter().rposition(|w| {
            w.iter()
                .any(|op| !op.is_empty_range() && touched(op.first_key()))
        }) {
            self.durable = self.durable.max(i + 1);
        }
    }

    /// A write failed without saying whether it was applied.
    pub fn in_doubt(&mut self, w: Option<Write>) {
        self.in_doubt = w;
    }

    /// Check what a recovery found; on success a new epoch starts from it.
    pub fn recovered(&mut self, got: &Model) -> Result<Recovered, String> {
        self.recovered_as(got, &|m| m.clone()).map(|(r, _)| r)
    }

    /// [`AckLog::recovered`] for a model whose values readers see through
    /// `view` (values that expire: `expiring.rs`): `got` is compared with
    /// each candidate state's view. Returns the state matched, which the
    /// new epoch starts from, as the model holds it.
    pub fn recovered_as(
        &mut self,
        got: &Model,
        view: &dyn Fn(&Model) -> Model,
    ) -> Result<(Recovered, Model), String> {
        let mut state = self.base.clone();
        for w in &self.log[..self.durable] {
            apply(&mut state, w);
        }
        let mut prefix = None;
        let mut matched = None;
        for k in self.durable..=self.log.len() {
            if k > self.durable {
                apply(&mut state, &self.log[k - 1]);
            }
            if view(&state) == *got {
                prefix = Some(k);
                matched = Some(state.clone());
            }
        }
        let mut in_doubt_applied = self.in_doubt.as_ref().map(|_| false);
        if let (Some(w), None) = (&self.in_doubt, prefix) {
            apply(&mut state, w);
            if view(&state) == *got {
                prefix = Some(self.log.len());
                in_doubt_applied = Some(true);
                matched = Some(state.clone());
            }
        }
        let Some(prefix) = prefix else {
            return Err(format!(
                "the recovered state ({} keys) is no prefix of the {} writes acknowledged \
                 since the last recovery (the first {} durable{}): lost acknowledged data or a hole; \
                 it differs from the durable prefix in {}",
                got.len(),
                self.log.len(),
                self.durable,
                if self.in_doubt.is_some() {
                    ", one more in doubt"
                } else {
                    ""
                },
                self.differences(got, view)
            ));
        };
        let report = Recovered {
            prefix,
            acknowledged: self.log.len(),
            in_doubt_applied,
        };
        let matched = matched.unwrap_or_else(|| got.clone());
        *self = AckLog::new(matched.clone());
        Ok((report, matched))
    }

    /// The first keys where `got` differs from the state after the
    /// durable writes, and which acknowledged writes touch each.
    fn differences(&self, got: &Model, view: &dyn Fn(&Model) -> Model) -> String {
        let mut state = self.base.clone();
        for w in &self.log[..self.durable] {
            apply(&mut state, w);
        }
        let state = view(&state);
        let mut keys: std::collections::BTreeSet<&Vec<u8>> = state.keys().collect();
        keys.extend(got.keys());
        let out: Vec<String> =
            keys.into_iter()
                .filter(|k| state.get(*k) != got.get(*k))
                .take(6)
                .map(|k| {
                    let writes: Vec<usize> = (0..self.log.len())
                        .filter(|i| self.log[*i].iter().any(|op| op.touches(k)))
                        .collect();
                    format!(
                    "{:?} (durable: {}, recovered: {}, written by acknowledged writes {writes:?})",
                    String::from_utf8_lossy(k),
                    if state.contains_key(k) { "present" } else { "absent" },
                    if got.contains_key(k) { "present" } else { "absent" },
                )
                })
                .collect();
        out.join("; ")
    }

    /// Check what a salvaging recovery (`SkipAnyCorruptedRecords`) found:
    /// it keeps every record that checks out, so it may skip a lost write
    /// and keep a later one (no prefix), but every durable write is there
    /// and nothing is invented: each key holds what the durable writes
    /// left, or what a later acknowledged (or in-doubt) write set it to.
    /// On success a new epoch starts from `got`.
    pub fn salvaged(&mut self, got: &Model) -> Result<(), String> {
        let mut state = self.base.clone();
        for w in &self.log[..self.durable] {
            apply(&mut state, w);
        }
        // Per key: what a later write may have left (None: deleted), and
        // the ranges a later write deleted.
        let mut later: BTreeMap<&[u8], Vec<Option<&Vec<u8>>>> = BTreeMap::new();
        let mut later_ranges: Vec<(&[u8], Option<&[u8]>)> = Vec::new();
        // Keys a later write merged into: a salvage may keep any subset of
        // those operands, so their value is not checked.
        let mut merged_later: std::collections::BTreeSet<&[u8]> = Default::default();
        for op in self.log[self.durable..]
            .iter()
            .chain(self.in_doubt.iter())
            .flatten()
        {
            match op {
                WriteOp::Put(k, v) => later.entry(k.as_slice()).or_default().push(Some(v)),
                WriteOp::Delete(k) => later.entry(k.as_slice()).or_default().push(None),
                WriteOp::Merge(k, _) => {
                    merged_later.insert(k.as_slice());
                }
                WriteOp::DeleteRange(start, end) => later_ranges.push((start, end.as_deref())),
            }
        }
        let mut keys: std::collections::BTreeSet<&[u8]> = state.keys().map(Vec::as_slice).collect();
        keys.extend(got.keys().map(Vec::as_slice));
        keys.extend(later.keys().copied());
        for k in keys {
            let have = got.get(k);
            let allowed = have == state.get(k)
                || merged_later.contains(k)
                || later.get(k).is_some_and(|vs| vs.contains(&have))
                || (have.is_none() && later_ranges.iter().any(|(s, e)| in_range(k, s, *e)));
            if !allowed {
                return Err(format!(
                    "salvage left key {:?} with a value no acknowledged write gave it \
                     (or lost a durable write)",
                    String::from_utf8_lossy(k)
                ));
            }
        }
        *self = AckLog::new(got.clone());
        Ok(())
    }
}
