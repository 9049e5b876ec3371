//! strata-sstable format benchmarks: table build throughput (raw key+value
//! MB/s, no compression and zstd level 3), point lookups (hit and miss),
//! a full forward scan and a bloom probe. db_bench's shape: 16-byte keys,
//! 100-byte values that compress to about half.
//!
//! `cargo bench --bench sstable_format`
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strata_sstable::bytes::Bytes;
use strata_sstable::{Compression, Table, TableBuilder, TableOptions, TableReadOptions, ValueKind};

const NUM_ENTRIES: u64 = 200_000;
const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 100;

/// Key `i`: 16 decimal digits, so byte order is numeric order.
fn key(i: u64) -> [u8; KEY_LEN] {
    let mut k = [b'0'; KEY_LEN];
    let mut n = i;
    for b in k.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
    k
}

/// A value that compresses to about half: random bytes, then a repeat.
fn value(i: u64) -> [u8; VALUE_LEN] {
    let mut v = [0u8; VALUE_LEN];
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for b in v.iter_mut().take(VALUE_LEN / 2) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = b'a' + (x % 26) as u8;
    }
    let (head, tail) = v.split_at_mut(VALUE_LEN / 2);
    tail.copy_from_slice(&head[..VALUE_LEN - VALUE_LEN / 2]);
    v
}

/// The entries, generated once so that build timings measure the builder.
/// Even numbers only: odd keys are in-range misses.
fn entries() -> Vec<([u8; KEY_LEN], [u8; VALUE_LEN])> {
    (0..NUM_ENTRIES).map(|i| (key(2 * i), value(i))).collect()
}

/// Builds a table into `out`, reusing its capacity as a `BufWriter` reuses
/// its buffer, so the timing is the builder's and not the page faults of a
/// fresh 25 MB allocation.
fn build_into(
    out: &mut Vec<u8>,
    entries: &[([u8; KEY_LEN], [u8; VALUE_LEN])],
    compression: Compression,
) {
    out.clear();
    let options = TableOptions {
        compression,
        ..TableOptions::default()
    };
    let mut b = TableBuilder::new(out, options).unwrap();
    for (seqno, (k, v)) in (1..).zip(entries) {
        b.add(k, seqno, ValueKind::Put, v).unwrap();
    }
    b.finish().unwrap();
}

fn build(entries: &[([u8; KEY_LEN], [u8; VALUE_LEN])], compression: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    build_into(&mut out, entries, compression);
    out
}

/// A fixed pseudo-random order of lookups.
fn lookup_order(n: u64) -> Vec<u64> {
    let mut x = 0x1234_5678_9abc_def1u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % NUM_ENTRIES
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let raw_bytes = NUM_ENTRIES * (KEY_LEN + VALUE_LEN) as u64;
    let entries = entries();
    let mut g = c.benchmark_group("sstable_build");
    g.throughput(Throughput::Bytes(raw_bytes));
    g.sample_size(10);
    g.bench_function("none", |b| {
        b.iter(|| black_box(build(&entries, Compression::None)))
    });
    g.bench_function("zstd3", |b| {
        b.iter(|| black_box(build(&entries, Compression::Zstd { level: 3 })))
    });
    g.finish();

    let table = Arc::new(
        Table::open(
            Bytes::from(build(&entries, Compression::None)),
            TableReadOptions::default(),
        )
        .unwrap(),
    );
    let order = lookup_order(1 << 16);
    let hit_keys: Vec<[u8; KEY_LEN]> = order.iter().map(|&i| key(2 * i)).collect();
    let miss_keys: Vec<[u8; KEY_LEN]> = order.iter().map(|&i| key(2 * i + 1)).collect();

    let mut g = c.benchmark_group("sstable_read");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("get_hit", |b| {
        b.iter(|| {
            i = (i + 1) & (hit_keys.len() - 1);
            let found = table.get(&hit_keys[i], u64::MAX).unwrap();
            black_box(found.unwrap().value.len())
        })
    });
    g.bench_function("get_miss", |b| {
        b.iter(|| {
            i = (i + 1) & (miss_keys.len() - 1);
            black_box(table.get(&miss_keys[i], u64::MAX).unwrap().is_none())
        })
    });
    g.bench_function("bloom_probe", |b| {
        b.iter(|| {
            i = (i + 1) & (miss_keys.len() - 1);
            black_box(table.may_contain(&miss_keys[i]))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("sstable_scan");
    g.throughput(Throughput::Bytes(raw_bytes));
    g.sample_size(10);
    g.bench_function("forward", |b| {
        b.iter(|| {
            let mut it = table.iter();
            it.seek_to_first().unwrap();
            let mut n = 0u64;
            while it.valid() {
                n += it.value().len() as u64;
                it.next().unwrap();
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
