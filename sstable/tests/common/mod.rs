//! Helpers shared by the integration tests: building tables in memory and
//! a sorted model of their entries.
#![allow(dead_code)]

use std::cmp::Ordering;
use std::sync::Arc;

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

pub fn open(bytes: Bytes) -> Arc<Table> {
    Arc::new(Table::open(bytes, TableReadOptions::default()).unwrap())
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
