//! Engine benchmarks: point gets from the memtable and from tables (hit
//! and miss), a 100-entry range scan, scans across a key with 100,000
//! versions in the memtable (and the same with one), sequential and random
//! puts, and the flush of a full 64 MiB memtable.
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use strata::{Db, Options};

const KEYS: u64 = 200_000;

fn key(i: u64) -> [u8; 16] {
    // db_bench style: the number big-endian, padded to 16 bytes.
    let mut k = [b'0'; 16];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k
}

fn value(i: u64) -> [u8; 100] {
    let mut v = [b'v'; 100];
    v[..8].copy_from_slice(&i.to_le_bytes());
    v
}

/// A cheap, fixed pseudo-random permutation step.
fn scramble(i: u64) -> u64 {
    i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % KEYS
}

fn filled(dir: &tempfile::TempDir, flush: bool) -> Db {
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for i in 0..KEYS {
        db.put(key(i * 2), value(i * 2)).unwrap();
    }
    if flush {
        db.flush().unwrap();
    }
    db
}

fn gets(c: &mut Criterion) {
    for (name, flush) in [("memtable", false), ("table", true)] {
        let dir = tempfile::tempdir().unwrap();
        let db = filled(&dir, flush);
        let mut g = c.benchmark_group(format!("get/{name}"));
        g.throughput(Throughput::Elements(1));
        let mut i = 0u64;
        g.bench_function("hit", |b| {
            b.iter(|| {
                i += 1;
                black_box(db.get(key(scramble(i) * 2)).unwrap().unwrap());
            })
        });
        g.bench_function("miss", |b| {
            b.iter(|| {
                i += 1;
                assert!(db.get(key(scramble(i) * 2 + 1)).unwrap().is_none());
            })
        });
        g.finish();
    }
}

fn scans(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = filled(&dir, true);
    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Elements(100));
    let mut i = 0u64;
    g.bench_function("range_100", |b| {
        b.iter(|| {
            i += 1;
            let start = key(scramble(i) * 2);
            let mut n = 0;
            for item in db.range(start.as_slice()..).take(100) {
                black_box(item.unwrap());
                n += 1;
            }
            black_box(n);
        })
    });
    g.finish();
}

/// Issue 24 item 2: 1,000 keys, one of them (`key(500)`) written
/// `versions` times, all in the memtable; a seek plus 10 `next` across the
/// hot key, and a 10-step reverse scan across it. `no_skip_limit` is the
/// iterator before `max_sequential_skip_in_iterations` (a step per
/// version), for a same-run ratio.
fn hot_key(c: &mut Criterion) {
    let mut g = c.benchmark_group("hot_key");
    for (versions, max_skip, label) in [
        (1u64, 8, "1_version"),
        (100_000, 8, "100000_versions"),
        (100_000, usize::MAX, "100000_versions_no_skip_limit"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            max_sequential_skip_in_iterations: max_skip,
            ..Options::default()
        };
        let db = Db::open(dir.path(), options).unwrap();
        for i in 0..1_000 {
            db.put(key(i), value(i)).unwrap();
        }
        for v in 1..versions {
            db.put(key(500), value(v)).unwrap();
        }
        g.bench_function(format!("seek_next_10/{label}"), |b| {
            let mut cursor = db.cursor();
            b.iter(|| {
                cursor.seek(key(495)).unwrap();
                for _ in 0..10 {
                    cursor.next().unwrap();
                }
                black_box(cursor.valid());
            })
        });
        g.bench_function(format!("seek_for_prev_prev_10/{label}"), |b| {
            let mut cursor = db.cursor();
            b.iter(|| {
                cursor.seek_for_prev(key(505)).unwrap();
                for _ in 0..10 {
                    cursor.prev().unwrap();
                }
                black_box(cursor.valid());
            })
        });
    }
    g.finish();
}

fn puts(c: &mut Criterion) {
    let mut g = c.benchmark_group("put");
    g.throughput(Throughput::Elements(1));
    for (name, random) in [("sequential", false), ("random", true)] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let mut i = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                let k = if random {
                    i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                } else {
                    i
                };
                db.put(key(k), value(k)).unwrap();
            })
        });
    }
    g.finish();
}

fn flush(c: &mut Criterion) {
    let mut g = c.benchmark_group("flush");
    g.sample_size(10);
    let entries = (64u64 << 20) / 200;
    g.throughput(Throughput::Bytes(entries * 116));
    g.bench_function("memtable_64MiB", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let opts = Options {
                    write_buffer_size: 1 << 30,
                    ..Options::default()
                };
                let db = Db::open(dir.path(), opts).unwrap();
                for i in 0..entries {
                    let k = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    db.put(key(k), value(k)).unwrap();
                }
                (dir, db)
            },
            |(_dir, db)| db.flush().unwrap(),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, gets, scans, hot_key, puts, flush);
criterion_main!(benches);
