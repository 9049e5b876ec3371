//! Synced writes from many concurrent writers, three ways (issue 22):
//! 10,000 tasks each awaiting one `put_async` with `sync: true` on a
//! 2-worker tokio runtime; the same 10,000 writes from 8 OS threads with
//! the blocking API; and 10,000 tasks each wrapping the blocking `put` in
//! `spawn_blocking`. One iteration is all 10,000 writes; throughput is
//! reported in writes per second. Real fsyncs: the database lives in a
//! temporary directory on disk.
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata::{Db, Options, WriteOptions};

const WRITES: u64 = 10_000;
const THREADS: u64 = 8;

fn key(i: u64) -> [u8; 16] {
    let mut k = [b'0'; 16];
    k[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    k
}

const VALUE: [u8; 100] = [b'v'; 100];

fn sync() -> WriteOptions {
    WriteOptions {
        sync: true,
        ..Default::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

fn synced_writes(c: &mut Criterion) {
    let mut g = c.benchmark_group("sync_writes_10k");
    g.throughput(Throughput::Elements(WRITES));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    let next = Arc::new(AtomicU64::new(0));

    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let rt = runtime();
    g.bench_function("async_tasks_on_2_workers", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let first = next.fetch_add(WRITES, Ordering::Relaxed);
                let start = Instant::now();
                rt.block_on(async {
                    let tasks: Vec<_> = (first..first + WRITES)
                        .map(|i| {
                            let db = db.clone();
                            tokio::spawn(async move { db.put_async(key(i), VALUE, &sync()).await })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap().unwrap();
                    }
                });
                total += start.elapsed();
            }
            total
        })
    });
    g.bench_function("blocking_on_8_threads", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let first = next.fetch_add(WRITES, Ordering::Relaxed);
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..THREADS {
                        let db = &db;
                        s.spawn(move || {
                            let per = WRITES / THREADS;
                            for i in first + t * per..first + (t + 1) * per {
                                db.put_opt(key(i), VALUE, &sync()).unwrap();
                            }
                        });
                    }
                });
                total += start.elapsed();
            }
            total
        })
    });
    g.bench_function("spawn_blocking_tasks", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let first = next.fetch_add(WRITES, Ordering::Relaxed);
                let start = Instant::now();
                rt.block_on(async {
                    let tasks: Vec<_> = (first..first + WRITES)
                        .map(|i| {
                            let db = db.clone();
                            tokio::task::spawn_blocking(move || db.put_opt(key(i), VALUE, &sync()))
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap().unwrap();
                    }
                });
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, synced_writes);
criterion_main!(benches);
