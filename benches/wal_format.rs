//! strata-wal throughput: appending records through the Writer, framing with
//! encode_record, and reading a log back; with crc32 and memcpy over the same
//! bytes as baselines, to show what bounds each.
//!
//! Run: `cargo bench --bench wal_format` (add `-- --quick` for a short run).
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use strata_wal::{encode_record, Reader, RecoveryMode, Writer};

const SIZES: [(&str, usize); 3] = [("100B", 100), ("1KiB", 1024), ("64KiB", 64 * 1024)];

/// Payload bytes that do not compress or repeat in any way that matters here.
fn payload(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// The sink is cleared every few MiB so the benchmark measures framing and
/// copying, not page faults of an ever-growing vector.
const SINK_BYTES_MAX: usize = 8 << 20;

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal_append");
    for (name, size) in SIZES {
        let record = payload(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            let mut writer = Writer::new(Vec::with_capacity(SINK_BYTES_MAX + 2 * size));
            b.iter(|| {
                writer.add_record(black_box(&record)).unwrap();
                if writer.sink().len() > SINK_BYTES_MAX {
                    writer.sink_mut().clear();
                }
            });
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal_encode_record");
    for (name, size) in SIZES {
        let record = payload(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            let mut out = Vec::with_capacity(2 * size + 64);
            let mut offset = 0u64;
            b.iter(|| {
                out.clear();
                offset = encode_record(&mut out, black_box(offset), black_box(&record));
            });
        });
    }
    group.finish();
}

/// Reads back a 4 MiB log of records of one size.
fn read(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal_read");
    for (name, size) in SIZES {
        let record = payload(size);
        let count = (4 << 20) / size;
        let mut writer = Writer::new(Vec::new());
        for _ in 0..count {
            writer.add_record(&record).unwrap();
        }
        let log = writer.into_inner();
        group.throughput(Throughput::Bytes((count * size) as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let mut reader = Reader::new(black_box(&log), RecoveryMode::default());
                let mut bytes = 0;
                while let Some(record) = reader.next_record().unwrap() {
                    bytes += record.data.len();
                }
                assert_eq!(bytes, count * size);
            });
        });
    }
    group.finish();
}

/// What one pass over the bytes costs: the floor under framing and reading.
fn baselines(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal_baseline");
    let data = payload(64 * 1024);
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("crc32_64KiB", |b| {
        b.iter(|| crc32fast::hash(black_box(&data)))
    });
    let mut out = Vec::with_capacity(data.len());
    group.bench_function("memcpy_64KiB", |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(&data));
            black_box(&out);
        })
    });
    group.finish();
}

criterion_group!(benches, append, encode, read, baselines);
criterion_main!(benches);
