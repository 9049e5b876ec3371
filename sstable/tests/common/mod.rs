//! Helpers shared by the integration tests: building tables in memory and
//! a sorted model of their entries.
#![allow(dead_code)]

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use strata_sstable::*;

/// One entry as the model holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub user_key: Vec<u8>,
    pub seqno: SeqNo,
    pub kind: ValueKind,
    pub value: Vec<u8>,
}

impl Entry {
    pub fn ikey(&self) -> Vec<u8> {
        let mut k = Vec::new();
        encode_internal_key(&mut k, &self.user_key, self.seqno, self.kind);
        k
    }
}

/// Sorts entries in internal-key order.
pub fn sort_entries(entries: &mut [Entry]) {
    entries.sort_by(|a, b| compare_internal_keys(&a.ikey(), &b.ikey()));
}

/// Builds a table from sorted entries; returns its bytes.
pub fn build(entries: &[Entry], options: TableOptions) -> (Bytes, TableProperties) {
    let mut b = TableBuilder::new(Vec::new(), options).unwrap();
    for e in entries {
        b.add(&e.user_key, e.seqno, e.kind, &e.value).unwrap();
    }
    let built = b.finish().unwrap();
    assert_eq!(built.file_size, built.writer.len() as u64);
    (Bytes::from(built.writer), built.properties)
}

/// A range tombstone from string keys (`end: None`: no end).
pub fn tombstone(start: &str, end: Option<&str>, seqno: SeqNo) -> RangeTombstone {
    RangeTombstone {
        start: Bytes::copy_from_slice(start.as_bytes()),
        end: end.map(|e| Bytes::copy_from_slice(e.as_bytes())),
        seqno,
    }
}

/// Builds a table from sorted point entries and range tombstones (any
/// order); returns its bytes and what the builder said.
pub fn build_with_tombstones(
    entries: &[Entry],
    tombstones: &[RangeTombstone],
    options: TableOptions,
) -> (Bytes, TableProperties, TableBounds) {
    let mut b = TableBuilder::new(Vec::new(), options).unwrap();
    for e in entries {
        b.add(&e.user_key, e.seqno, e.kind, &e.value).unwrap();
    }
    for t in tombstones {
        b.add_range_tombstone(&t.start, t.end.as_deref(), t.seqno)
            .unwrap();
    }
    let built = b.finish().unwrap();
    assert_eq!(built.file_size, built.writer.len() as u64);
    (Bytes::from(built.writer), built.properties, built.bounds)
}

/// The range tombstones of the seed tables with range deletions (fuzz
/// seeds and the format-version-3 fixtures), laid over `seed_entries()`
/// (keys k00..k22, seqnos 49 and 50), in no particular order:
/// overlapping, adjacent, one over a gap between keys, one without end.
pub fn seed_range_tombstones() -> Vec<RangeTombstone> {
    vec![
        tombstone("k08", Some("k16"), 45),
        tombstone("k20", None, 52),
        tombstone("k04", Some("k10"), 51),
        tombstone("k13", Some("k14"), 49),
    ]
}

/// The range tombstones of the seed tables that hold nothing else.
pub fn seed_lone_tombstones() -> Vec<RangeTombstone> {
    vec![
        tombstone("c", Some("f"), 9),
        tombstone("b", Some("d"), 7),
        tombstone("az", Some("b"), 3),
    ]
}

pub fn open(bytes: Bytes) -> Arc<Table> {
    Arc::new(Table::open(bytes, TableReadOptions::default()).unwrap())
}

/// A table file read with positional reads, as the engine reads one from
/// storage: every `read_at` copies (nothing is lent from memory), and the
/// reads and bytes are counted.
pub struct Positional {
    pub file: Bytes,
    pub reads: AtomicU64,
    pub bytes: AtomicU64,
}

impl Positional {
    pub fn new(file: Bytes) -> Arc<Positional> {
        Arc::new(Positional {
            file,
            reads: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        })
    }

    pub fn bytes_read(&self) -> u64 {
        self.bytes.load(AtomicOrdering::Relaxed)
    }
}

impl BlockSource for Positional {
    fn size(&self) -> u64 {
        self.file.len() as u64
    }
    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        self.reads.fetch_add(1, AtomicOrdering::Relaxed);
        self.bytes.fetch_add(len as u64, AtomicOrdering::Relaxed);
        let lent = self.file.read_at(offset, len)?;
        Ok(Bytes::copy_from_slice(&lent))
    }
}

/// An unbounded block cache that records what it was given.
#[derive(Default)]
pub struct RecordingCache {
    pub entries: Mutex<HashMap<CacheKey, (CachedBlock, Option<CachePriority>)>>,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

impl RecordingCache {
    /// Entries of each kind: (data, index, filter, pinned).
    pub fn census(&self) -> (usize, usize, usize, usize) {
        let entries = self.entries.lock().unwrap();
        let mut counts = (0, 0, 0, 0);
        for (block, priority) in entries.values() {
            match block {
                CachedBlock::Data(_) => counts.0 += 1,
                CachedBlock::Index(_) => counts.1 += 1,
                CachedBlock::Filter(_) => counts.2 += 1,
            }
            if priority.is_none() {
                counts.3 += 1;
            }
        }
        counts
    }

    /// Drops every entry that is not pinned (a cache that evicted all).
    pub fn evict_all(&self) {
        self.entries.lock().unwrap().retain(|_, (_, p)| p.is_none());
    }
}

impl BlockCache for RecordingCache {
    fn lookup(&self, key: CacheKey) -> Option<CachedBlock> {
        let hit = self
            .entries
            .lock()
            .unwrap()
            .get(&key)
            .map(|(b, _)| b.clone());
        let counter = if hit.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, AtomicOrdering::Relaxed);
        hit
    }
    fn insert(&self, key: CacheKey, block: CachedBlock, priority: CachePriority) {
        self.entries
            .lock()
            .unwrap()
            .insert(key, (block, Some(priority)));
    }
    fn insert_pinned(&self, key: CacheKey, block: CachedBlock) {
        self.entries.lock().unwrap().insert(key, (block, None));
    }
    fn erase(&self, key: CacheKey) {
        self.entries.lock().unwrap().remove(&key);
    }
}

/// The ways a table can be read: from memory, or with positional reads
/// without a cache, with one, and with the index and filter in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadPath {
    InMemory,
    Positional,
    PositionalCached,
    PositionalIndexInCache,
}

pub const READ_PATHS: [ReadPath; 4] = [
    ReadPath::InMemory,
    ReadPath::Positional,
    ReadPath::PositionalCached,
    ReadPath::PositionalIndexInCache,
];

/// Opens `bytes` the way `path` says, with `options` otherwise.
pub fn open_via(path: ReadPath, bytes: Bytes, options: TableReadOptions) -> Result<Arc<Table>> {
    let cache = || Some(Arc::new(RecordingCache::default()) as Arc<dyn BlockCache>);
    let (source, options): (Arc<dyn BlockSource>, _) = match path {
        ReadPath::InMemory => (Arc::new(bytes), options),
        ReadPath::Positional => (Positional::new(bytes), options),
        ReadPath::PositionalCached => (
            Positional::new(bytes),
            TableReadOptions {
                cache: cache(),
                ..options
            },
        ),
        ReadPath::PositionalIndexInCache => (
            Positional::new(bytes),
            TableReadOptions {
                cache: cache(),
                cache_index_and_filter_blocks: true,
                ..options
            },
        ),
    };
    Table::open_source(source, options).map(Arc::new)
}

/// The entries of the fuzzers' seed tables (`write_fuzz_seeds` in
/// `builder.rs`) and of the format-version-1 fixtures written from them:
/// 12 user keys with two versions each, some of them deletions.
pub fn seed_entries() -> Vec<Entry> {
    (0..12u32)
        .flat_map(|i| {
            (0..2u64).map(move |v| Entry {
                user_key: format!("k{:02}", i * 2).into_bytes(),
                seqno: 50 - v,
                kind: if (i + v as u32) % 4 == 3 {
                    ValueKind::Delete
                } else {
                    ValueKind::Put
                },
                value: format!("v{i}{v}v{i}{v}").into_bytes(),
            })
        })
        .collect()
}

/// What `get(user_key, seqno)` must return.
pub fn model_get<'a>(entries: &'a [Entry], user_key: &[u8], seqno: SeqNo) -> Option<&'a Entry> {
    entries
        .iter()
        .find(|e| e.user_key == user_key && e.seqno <= seqno)
}

/// Index of the first entry >= target, or `entries.len()`.
pub fn lower_bound(entries: &[Entry], target: &[u8]) -> usize {
    entries.partition_point(|e| compare_internal_keys(&e.ikey(), target) == Ordering::Less)
}

/// All entries of a table, walking forward.
pub fn scan_forward(table: &Arc<Table>) -> Vec<Entry> {
    let mut it = table.iter();
    it.seek_to_first().unwrap();
    let mut out = Vec::new();
    while it.valid() {
        out.push(current(&it));
        it.next().unwrap();
    }
    out
}

pub fn current(it: &TableIter) -> Entry {
    let p = it.parsed_key();
    assert_eq!(it.value(), &it.value_bytes()[..]);
    Entry {
        user_key: p.user_key.to_vec(),
        seqno: p.seqno,
        kind: p.kind,
        value: it.value().to_vec(),
    }
}

/// A small deterministic PRNG (xorshift64*), so failures replay from a seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
