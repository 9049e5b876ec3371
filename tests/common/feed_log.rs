//! The change feed's model (docs/design/change-feed.md): what each
//! committed write took of the sequence numbers, in order, and the check
//! that `updates_since(from)` yields exactly that. Shared by the model
//! test, the simulation and the `db_model` fuzz target.
//!
//! The rule checked, from `from` on, every committed write in order:
//! - a write logged in the WAL is yielded, its batches exactly tiling its
//!   numbers (one batch, with exactly its records, when they are known);
//! - a write with `disable_wal` is never yielded (a hole);
//! - an ingestion is `ChangeFeedGap` naming exactly its numbers, after
//!   every batch before it;
//! - any other gap starts where the reader is and is a floor gap: with a
//!   cursor (which pins the WALs it has not acknowledged) it ends at or
//!   below what the cursor acknowledged; without one, anywhere;
//! - the iterator ends once everything synced is yielded: with
//!   everything synced, after the last write.
#![allow(dead_code)]

use strata::{ChangeKind, Db, Error};

/// One record as a write made it: keyspace name, key, what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub keyspace: String,
    pub key: Vec<u8>,
    pub kind: RecKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecKind {
    Put(Vec<u8>),
    PutWithExpiry(Vec<u8>, u64),
    Delete,
    Merge(Vec<u8>),
    DeleteRange(Option<Vec<u8>>),
}

impl Rec {
    pub fn new(keyspace: &str, key: &[u8], kind: RecKind) -> Rec {
        Rec {
            keyspace: keyspace.to_owned(),
            key: key.to_vec(),
            kind,
        }
    }
}

/// What a committed write took of the sequence numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Took {
    /// Logged in the WAL: yielded. `Some`: as one batch of exactly these
    /// records.
    Logged(Option<Vec<Rec>>),
    /// Written with `disable_wal`: never yielded.
    Unlogged,
    /// An ingestion: a gap of exactly its numbers.
    Ingestion,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub first: u64,
    pub last: u64,
    pub took: Took,
}

/// The committed writes' numbers, in order, and the cursor's position.
#[derive(Debug, Clone, Default)]
pub struct FeedLog {
    pub entries: Vec<Entry>,
    /// The model's cursor's acknowledged number, once it exists.
    pub acked: Option<u64>,
}

/// The database's last visible sequence number.
pub fn visible(db: &Db) -> u64 {
    db.snapshot().sequence()
}

impl FeedLog {
    /// A write committed the numbers `before + 1..=after` (`after` the
    /// visible number after it; none taken if equal).
    pub fn committed(&mut self, before: u64, after: u64, took: Took) {
        if after > before {
            self.entries.push(Entry {
                first: before + 1,
                last: after,
                took,
            });
        }
    }

    /// After a power loss the database kept the writes up to `last`: the
    /// numbers of those after it are given out again.
    pub fn recovered(&mut self, last: u64) {
        self.entries.retain(|e| e.last <= last);
        if let Some(acked) = &mut self.acked {
            *acked = (*acked).min(last);
        }
    }

    /// A position to read from: the first number of entry `choice` (mod
    /// the count), or the one after the last.
    pub fn position(&self, choice: usize) -> u64 {
        match self.entries.get(choice % (self.entries.len() + 1)) {
            Some(e) => e.first,
            None => self.entries.last().map_or(1, |e| e.last + 1),
        }
    }

    /// A number the cursor may acknowledge: the last of entry `choice`
    /// at or after its position (none if it is at the end).
    pub fn ack_point(&self, choice: usize) -> Option<u64> {
        let acked = self.acked?;
        let later: Vec<&Entry> = self.entries.iter().filter(|e| e.last > acked).collect();
        (!later.is_empty()).then(|| later[choice % later.len()].last)
    }

    /// Read the feed from `from` (an entry's first number, or after the
    /// last) and check it against the log; `synced`: every write is
    /// synced, so the read must reach the end. How many batches and gaps
    /// it met (inside: a disagreement); an error other than a gap is the
    /// database's (an injected fault).
    pub fn check(
        &self,
        db: &Db,
        from: u64,
        synced: bool,
    ) -> strata::Result<Result<(usize, usize), String>> {
        let from = from.max(1);
        let mut pos = from;
        macro_rules! fail {
            ($($t:tt)*) => {
                return Ok(Err(format!(
                    "{}\n  log near it: {:?}\n  the feed from {from}: {}",
                    format!($($t)*),
                    self.entries.iter().filter(|e| e.last + 8 >= pos && e.first <= pos + 16).map(|e| (e.first, e.last, match &e.took { Took::Logged(Some(r)) => format!("{} records", r.len()), t => format!("{t:?}") })).collect::<Vec<_>>(),
                    raw(db, from)
                )))
            };
        }
        let mut met = (0, 0);
        // Entries still expected to show (the unlogged never do).
        let mut expected = self
            .entries
            .iter()
            .filter(move |e| e.last >= from && e.took != Took::Unlogged)
            .peekable();
        // Within a write of several batches: the next number it must show.
        let mut inside: Option<u64> = None;
        'reads: loop {
            let it = match db.updates_since(pos) {
                Ok(it) => it,
                Err(Error::ChangeFeedGap { from, to }) => {
                    if let Err(e) = self.floor_gap(pos, from, to) {
                        fail!("{e}");
                    }
                    met.1 += 1;
                    pos = to + 1;
                    inside = None;
                    while expected.peek().is_some_and(|e| e.last < pos) {
                        expected.next();
                    }
                    if expected.peek().is_some_and(|e| e.first < pos) {
                        inside = Some(pos);
                    }
                    continue 'reads;
                }
                Err(e) => return Err(e),
            };
            for item in it {
                match item {
                    Ok(batch) => {
                        met.0 += 1;
                        let (first, last) = (batch.sequence(), batch.last_sequence());
                        let Some(e) = expected.peek() else {
                            fail!("batch {first}..={last} after every write");
                        };
                        if e.took == Took::Ingestion {
                            fail!(
                                "batch {first}..={last} read across ingestion {}..={} without a gap",
                                e.first,
                                e.last
                            );
                        }
                        let want_first = inside.unwrap_or(e.first);
                        if first != want_first || last > e.last {
                            fail!(
                                "batch {first}..={last} where write {}..={} was expected from {want_first}",
                                e.first,
                                e.last
                            );
                        }
                        if let Took::Logged(Some(records)) = &e.took {
                            if first != e.first || last != e.last {
                                fail!(
                                    "write {}..={} read as batch {first}..={last}",
                                    e.first,
                                    e.last
                                );
                            }
                            let got = match records_of(&batch) {
                                Ok(got) => got,
                                Err(e) => fail!("batch {first}: {e}"),
                            };
                            if got.len() != records.len()
                                || got.iter().zip(records).any(|(g, w)| !same(g, w))
                            {
                                fail!("batch {first}: records {got:?}, written {records:?}");
                            }
                        }
                        pos = last + 1;
                        if last == e.last {
                            inside = None;
                            expected.next();
                        } else {
                            inside = Some(pos);
                        }
                    }
                    Err(Error::ChangeFeedGap { from, to }) => {
                        met.1 += 1;
                        match expected.peek() {
                            Some(e)
                                if e.took == Took::Ingestion
                                    && from == pos.max(e.first)
                                    && to == e.last => {}
                            _ => {
                                if let Err(e) = self.floor_gap(pos, from, to) {
                                    fail!("{e}");
                                }
                            }
                        }
                        pos = to + 1;
                        inside = None;
                        while expected.peek().is_some_and(|e| e.last < pos) {
                            expected.next();
                        }
                        if expected.peek().is_some_and(|e| e.first < pos) {
                            inside = Some(pos);
                        }
                        continue 'reads;
                    }
                    Err(e) => return Err(e),
                }
            }
            break;
        }
        if synced {
            if let Some(e) = expected.next() {
                fail!(
                    "the feed ended at {pos}; write {}..={} ({:?}) not shown",
                    e.first,
                    e.last,
                    e.took
                );
            }
        }
        Ok(Ok(met))
    }

    /// A gap `from..=to` met at `pos` that no ingestion explains.
    fn floor_gap(&self, pos: u64, from: u64, to: u64) -> Result<(), String> {
        if from != pos || to < from {
            return Err(format!("gap {from}..={to} met reading at {pos}"));
        }
        if let Some(acked) = self.acked {
            if to > acked {
                return Err(format!(
                    "gap {from}..={to} past what the cursor acknowledged ({acked}): a pinned WAL went"
                ));
            }
        }
        Ok(())
    }
}

/// The first items the feed yields from `from`, for a failure's message.
fn raw(db: &Db, from: u64) -> String {
    let mut out = Vec::new();
    match db.updates_since(from) {
        Err(e) => out.push(format!("{e}")),
        Ok(it) => {
            for item in it.take(40) {
                out.push(match item {
                    Ok(b) => format!("{}..={}", b.sequence(), b.last_sequence()),
                    Err(e) => format!("{e}"),
                });
            }
        }
    }
    out.join(", ")
}

/// A record as read, in the terms of [`Rec`] (`None`: dropped keyspace).
type Read = (Option<String>, Vec<u8>, RecKind);

fn records_of(batch: &strata::ChangeBatch) -> Result<Vec<Read>, String> {
    batch
        .records()
        .map(|r| {
            let r = r.map_err(|e| e.to_string())?;
            let kind = match r.kind {
                ChangeKind::Put(v) => RecKind::Put(v.to_vec()),
                ChangeKind::PutWithExpiry {
                    value,
                    expiry_micros,
                } => RecKind::PutWithExpiry(value.to_vec(), expiry_micros),
                ChangeKind::Delete => RecKind::Delete,
                ChangeKind::Merge(v) => RecKind::Merge(v.to_vec()),
                ChangeKind::DeleteRange { end } => RecKind::DeleteRange(end.map(<[u8]>::to_vec)),
            };
            Ok((r.keyspace.map(str::to_owned), r.key.to_vec(), kind))
        })
        .collect()
}

/// A record read is the one written: the same key and effect, in the same
/// keyspace (a dropped keyspace's name is not known any more).
fn same(got: &Read, want: &Rec) -> bool {
    got.0.as_ref().is_none_or(|n| *n == want.keyspace) && got.1 == want.key && got.2 == want.kind
}
