//! The read path: a pinned view of the memtables and tables at a sequence
//! number, searched newest first.

use crate::error::Result;
use crate::iter::{DbIter, InternalIterator, MergingIter, RangeDelSkipper, TombstoneSource};
use crate::key_walk::{Base, KeyWalk, Step};
use crate::memtable::{MemTable, MemTableIter};
use crate::merge::{full_merge, MergeOperator};
use crate::version::Version;
use bytes::Bytes;
use std::sync::Arc;
use strata_sstable::{BlockReadOptions, SeqNo};

/// Everything a read needs, swapped as a unit: the active memtable, the
/// frozen ones (newest first) and the table version. Readers clone the
/// `Arc`, so a flush or compaction never changes what a read sees midway.
pub(crate) struct SuperVersion {
    pub mem: Arc<MemTable>,
    pub imms: Vec<Arc<MemTable>>,
    pub version: Arc<Version>,
}

impl SuperVersion {
    /// Every memtable, oldest first (the order their writes were made
    /// in): the frozen ones, then the active one.
    pub fn memtables_oldest_first(&self) -> Vec<&Arc<MemTable>> {
        self.imms
            .iter()
            .rev()
            .chain(std::iter::once(&self.mem))
            .collect()
    }
}

/// What a read asks for, as the engine takes it: the sequence number to
/// read at (a snapshot's; `None`: the newest visible) and how table blocks
/// are read. The public [`ReadOptions`](crate::ReadOptions) becomes one at
/// the API's edge, so the engine below never sees a `Snapshot` handle.
// Default: the newest visible state, blocks read as `BlockReadOptions`'s
// default (checked, cached).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReadSpec {
    pub seq: Option<SeqNo>,
    pub blocks: BlockReadOptions,
}

/// A super version pinned at a sequence number.
pub(crate) struct ReadView {
    pub sv: Arc<SuperVersion>,
    pub seq: SeqNo,
    /// How the read's table blocks are read (`ReadOptions`).
    pub blocks: BlockReadOptions,
    /// The keyspace's `max_sequential_skip_in_iterations`.
    pub max_skip: usize,
    /// What combines merge operands (the keyspace's operator when the
    /// view was made).
    pub merge_operator: Option<Arc<dyn MergeOperator>>,
    /// The clock when the view was made: the view's iterators judge
    /// expiry by it, so one scan sees one moment.
    pub now_micros: u64,
}

/// The newest value of `key` visible at `seq`: memtable, frozen memtables
/// (newest first), then tables. The first source with an answer decides:
/// a memtable's answer weighs its points against its own range tombstones
/// (`MemTable::walk`), and a tombstone covering `key` with no newer point
/// beside it is `Deleted`, with no need to look further, since every
/// older source holds only older versions of `key` (the source-order
/// invariant, docs/design/range-deletes.md §0).
///
/// A merge operand is collected and the walk goes on to the key's next
/// older version in the same source, then in older ones (`KeyWalk`),
/// until a put, a delete, a covering tombstone or the end; then the
/// operator `operator` gives combines them once (docs/design/merge.md
/// §3). It is asked only then: a read that meets no operand does not
/// load the keyspace's options.
pub(crate) fn get(
    sv: &SuperVersion,
    key: &[u8],
    seq: SeqNo,
    blocks: BlockReadOptions,
    operator: &dyn Fn() -> Option<Arc<dyn MergeOperator>>,
    now: &dyn Fn() -> u64,
) -> Result<Option<Bytes>> {
    get_noting_memtable_hit(sv, key, seq, blocks, operator, now).0
}

/// [`get`], and whether a memtable answered it (RocksDB's
/// `memtable.hit`: a value, a delete, or the end of a key's merge
/// operands found in a memtable) rather than the tables. Inlined, so a
/// caller that ignores the flag pays nothing for it.
#[inline(always)]
pub(crate) fn get_noting_memtable_hit(
    sv: &SuperVersion,
    key: &[u8],
    seq: SeqNo,
    blocks: BlockReadOptions,
    operator: &dyn Fn() -> Option<Arc<dyn MergeOperator>>,
    now: &dyn Fn() -> u64,
) -> (Result<Option<Bytes>>, bool) {
    let mut walk = KeyWalk::new(seq);
    let memtables = std::iter::once(&sv.mem).chain(sv.imms.iter());
    for mem in memtables {
        if let Step::Decided(base) = mem.walk(key, &mut walk) {
            return (resolve_base(operator, key, base, walk.operands, now), true);
        }
    }
    let tables = match sv.version.walk(key, &mut walk, blocks) {
        Ok(Step::Decided(base)) => resolve_base(operator, key, base, walk.operands, now),
        Ok(Step::Continue) => resolve(operator, key, None, walk.operands),
        Err(e) => Err(e),
    };
    (tables, false)
}

/// An expiring version's value, `None` once expired at `now()`.
fn unexpired(stored: Bytes, now: &dyn Fn() -> u64) -> Result<Option<Bytes>> {
    let value = crate::ttl::unexpired_value(&stored, now(), "a read")?;
    Ok(value.map(|_| stored.slice(crate::ttl::EXPIRY_LEN..)))
}

/// [`resolve`] of the version that decided a walk: an expiring one is its
/// value until it expires, then nothing (the clock is read only then).
fn resolve_base(
    operator: &dyn Fn() -> Option<Arc<dyn MergeOperator>>,
    key: &[u8],
    base: Base,
    operands: Vec<Bytes>,
    now: &dyn Fn() -> u64,
) -> Result<Option<Bytes>> {
    let base = match base {
        Base::None => None,
        Base::Value(v) => Some(v),
        Base::Expiring(stored) => unexpired(stored, now)?,
    };
    resolve(operator, key, base, operands)
}

/// The value a read returns: `base` itself when no operand lies above it,
/// else the operands (newest first) merged onto it.
fn resolve(
    operator: &dyn Fn() -> Option<Arc<dyn MergeOperator>>,
    key: &[u8],
    base: Option<Bytes>,
    operands: Vec<Bytes>,
) -> Result<Option<Bytes>> {
    if operands.is_empty() {
        return Ok(base);
    }
    full_merge(operator().as_ref(), key, base.as_deref(), &operands).map(|v| Some(Bytes::from(v)))
}

impl ReadView {
    /// A merging iterator over every source, newest first, skipping what
    /// their range tombstones delete, hidden behind the user-key view at
    /// this sequence number, bounded to `[lower, upper)`.
    pub fn db_iter(&self, lower: Option<Vec<u8>>, upper: Option<Vec<u8>>) -> DbIter {
        let mut children: Vec<Box<dyn InternalIterator>> =
            Vec::with_capacity(2 + self.sv.imms.len() + self.sv.version.files(0).len() + 6);
        let mut range_dels = RangeDelSkipper::new(self.seq);
        // The memtables' tombstones are taken here, after `self.seq` was
        // read (`Core::read_view` reads it first): every tombstone at or
        // below it was inserted before it was published, so it is in the
        // list. Taken the other way round, a range delete published in
        // between would be visible by its seqno and missing from the list.
        for mem in std::iter::once(&self.sv.mem).chain(&self.sv.imms) {
            children.push(Box::new(MemTableIter::new(Arc::clone(mem))));
            range_dels.push(memtable_tombstones(mem));
        }
        self.sv
            .version
            .add_iterators(&mut children, &mut range_dels, self.blocks);
        DbIter::new(
            MergingIter::with_range_dels(children, range_dels),
            self.seq,
            lower,
            upper,
        )
        .with_max_skip(self.max_skip)
        .with_merge_operator(self.merge_operator.clone())
        .with_now(self.now_micros)
        .with_blobs(self.sv.version.blob_resolver())
    }
}

/// A memtable's range tombstones, fragmented.
// `MemTable` keeps a cached fragmented list (`RangeDelList::snapshot`,
// one atomic load when empty) but does not expose it yet; until it does,
// this takes the list's lock and fragments a copy on every iterator.
fn memtable_tombstones(mem: &MemTable) -> Option<TombstoneSource> {
    TombstoneSource::list(mem.range_del_snapshot()?)
}
