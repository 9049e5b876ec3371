//! fillseq, fillrandom, filluniquerandom, fillbatch, fillsync, fill100K,
//! overwrite (db_bench's `DoWrite`, with its range tombstones every
//! `--writes_per_range_tombstone` writes); deleteseq and deleterandom
//! (`DoDelete`); deleterange; mergerandom (`MergeRandom`); and the
//! background writer of the
//! *whilewriting benchmarks (`BGWriter`).

use super::{Ctx, OpBudget, ThreadState};
use crate::engine::{Batch, Engine};
use crate::error::Result;
use crate::keys::{KeyBuf, KeyGen, KeyOrder};
use crate::stats::OpKind;
use crate::values::ValueGen;

/// Says so on the result line and returns true when the benchmark needs
/// range deletes and `E` has none.
fn lacks_range_deletes<E: Engine>(th: &mut ThreadState) -> bool {
    if !E::RANGE_DELETES {
        th.stats
            .unsupported(&format!("({} has no range delete)", E::KIND.name()));
    }
    !E::RANGE_DELETES
}

pub fn fill<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState, order: KeyOrder) -> Result<()> {
    let p = ctx.plan;
    let tombstones = ctx.flags.range_tombstones();
    if ctx.flags.optimistic_transaction_db && !E::TRANSACTIONS {
        th.stats
            .unsupported(&format!("({} has no transactions)", E::KIND.name()));
        return Ok(());
    }
    if tombstones && lacks_range_deletes::<E>(th) {
        return Ok(());
    }
    let secs = if matches!(order, KeyOrder::Random | KeyOrder::Zipf) {
        p.duration_secs
    } else {
        0
    };
    let mut budget = OpBudget::new(secs, p.writes);
    let mut keys = KeyGen::new(order, p.num, ctx.permutation);
    let mut key = KeyBuf::new(p.key_size);
    let mut end_key = KeyBuf::new(p.key_size);
    let mut values = ValueGen::new(ctx.values);
    let mut batch = Batch::default();
    let per_batch = p.entries_per_batch;
    if p.num != ctx.flags.num as u64 {
        th.stats.add_message(&format!("({} ops)", p.num));
    }
    let entry_bytes = (p.key_size + p.value_size) as u64;
    let mut bytes = 0u64;
    // As db_bench: a tombstone starts at the next key the fill would
    // write (which it then skips) and spans --range_tombstone_width keys.
    let mut written = 0u64;
    let mut range_deletes = 0u64;
    while !budget.done(per_batch) {
        if per_batch == 1 {
            let k = keys.next(&mut th.rng);
            ctx.db.put(
                ctx.flags.keyspace_of(k),
                key.set(k),
                values.generate(p.value_size),
                p.write,
            )?;
            written += 1;
            if tombstones && ctx.flags.range_tombstone_due(written) {
                let b = keys.next(&mut th.rng);
                let (start, end) = (key.set(b), end_key.set(b + p.range_width));
                ctx.db
                    .delete_range(ctx.flags.keyspace_of(b), start, end, p.write)?;
                range_deletes += 1;
            }
        } else {
            batch.clear();
            for _ in 0..per_batch {
                let k = keys.next(&mut th.rng);
                batch.put(
                    ctx.flags.keyspace_of(k),
                    key.set(k),
                    values.generate(p.value_size),
                );
                written += 1;
                if tombstones && ctx.flags.range_tombstone_due(written) {
                    let b = keys.next(&mut th.rng);
                    let (start, end) = (key.set(b), end_key.set(b + p.range_width));
                    batch.delete_range(ctx.flags.keyspace_of(b), start, end);
                    range_deletes += 1;
                }
            }
            if ctx.flags.optimistic_transaction_db {
                ctx.db.write_in_transaction(&batch, p.write)?;
            } else {
                ctx.db.write(&batch, p.write)?;
            }
        }
        bytes += per_batch * entry_bytes;
        th.stats.finished_ops(per_batch, OpKind::Write);
    }
    th.stats.add_bytes(bytes);
    if range_deletes > 0 {
        let s = if range_deletes == 1 { "" } else { "s" };
        th.stats
            .add_message(&format!("({range_deletes} range tombstone{s})"));
    }
    Ok(())
}

/// mergerandom: `--writes` merges into random keys of `--num` with the
/// `--merge_operator` (db_bench's `MergeRandom`), `--batch_size` to a
/// batch. Operands are values of
/// `--value_size` bytes, except for `uint64add`, whose operands are 1 as
/// 8 bytes little-endian (what a counter's increment is).
pub fn merge_random<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState) -> Result<()> {
    if !E::MERGES {
        th.stats
            .unsupported(&format!("({} has no merge operator)", E::KIND.name()));
        return Ok(());
    }
    if ctx.flags.merge_operator.is_empty() {
        return Err(crate::error::BenchError::new(
            "mergerandom needs --merge_operator (uint64add, stringappend or max)",
        ));
    }
    let p = ctx.plan;
    let increment = (ctx.flags.merge_operator == "uint64add").then(|| 1u64.to_le_bytes());
    let mut budget = OpBudget::new(p.duration_secs, p.writes);
    let mut keys = KeyGen::new(KeyOrder::Random, p.num, ctx.permutation);
    let mut key = KeyBuf::new(p.key_size);
    let mut values = ValueGen::new(ctx.values);
    let operand_size = increment.map_or(p.value_size, |i| i.len());
    let mut batch = Batch::default();
    let per_batch = p.entries_per_batch;
    let mut bytes = 0u64;
    while !budget.done(per_batch) {
        if per_batch == 1 {
            let k = keys.next(&mut th.rng);
            let operand = match &increment {
                Some(one) => &one[..],
                None => values.generate(p.value_size),
            };
            ctx.db
                .merge(ctx.flags.keyspace_of(k), key.set(k), operand, p.write)?;
        } else {
            batch.clear();
            for _ in 0..per_batch {
                let k = keys.next(&mut th.rng);
                let operand = match &increment {
                    Some(one) => &one[..],
                    None => values.generate(p.value_size),
                };
                batch.merge(ctx.flags.keyspace_of(k), key.set(k), operand);
            }
            ctx.db.write(&batch, p.write)?;
        }
        bytes += per_batch * (p.key_size + operand_size) as u64;
        th.stats.finished_ops(per_batch, OpKind::Write);
    }
    th.stats.add_bytes(bytes);
    Ok(())
}

/// deleterange: range deletes of `--range_tombstone_width` keys each,
/// walking the keys in order from key `--writes_before_delete_range` (0
/// by default; every thread the same keys, as deleteseq does) until
/// `--deletes` keys are covered; with
/// `--batch_size`, that many range deletes per batch. A range lies in the
/// keyspace of its first key (`--num_column_families`).
pub fn delete_range<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState) -> Result<()> {
    if lacks_range_deletes::<E>(th) {
        return Ok(());
    }
    let p = ctx.plan;
    let width = p.range_width;
    let mut budget = OpBudget::new(0, p.deletes.div_ceil(width));
    let mut start = KeyBuf::new(p.key_size);
    let mut end = KeyBuf::new(p.key_size);
    let mut batch = Batch::default();
    let per_batch = p.entries_per_batch;
    let mut k = ctx.flags.writes_before_delete_range as u64;
    while !budget.done(per_batch) {
        if per_batch == 1 {
            let ks = ctx.flags.keyspace_of(k);
            ctx.db
                .delete_range(ks, start.set(k), end.set(k + width), p.write)?;
            k += width;
        } else {
            batch.clear();
            for _ in 0..per_batch {
                let ks = ctx.flags.keyspace_of(k);
                batch.delete_range(ks, start.set(k), end.set(k + width));
                k += width;
            }
            ctx.db.write(&batch, p.write)?;
        }
        th.stats.finished_ops(per_batch, OpKind::Delete);
    }
    Ok(())
}

pub fn delete<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState, sequential: bool) -> Result<()> {
    let p = ctx.plan;
    let secs = if sequential { 0 } else { p.duration_secs };
    let mut budget = OpBudget::new(secs, p.deletes);
    let mut key = KeyBuf::new(p.key_size);
    let mut batch = Batch::default();
    let per_batch = p.entries_per_batch;
    let mut i = 0u64;
    while !budget.done(per_batch) {
        let next_key = |j: u64, th: &mut ThreadState| {
            if sequential {
                i + j
            } else {
                th.rng.uniform(p.key_range)
            }
        };
        if per_batch == 1 {
            let k = next_key(0, th);
            ctx.db
                .delete(ctx.flags.keyspace_of(k), key.set(k), p.write)?;
        } else {
            batch.clear();
            for j in 0..per_batch {
                let k = next_key(j, th);
                batch.delete(ctx.flags.keyspace_of(k), key.set(k));
            }
            ctx.db.write(&batch, p.write)?;
        }
        th.stats.finished_ops(per_batch, OpKind::Delete);
        i += per_batch;
    }
    Ok(())
}

/// Overwrite random keys until every other thread has finished. Its
/// numbers are left out of the result, as in db_bench.
pub fn background_writer<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState) -> Result<()> {
    let p = ctx.plan;
    th.stats.exclude_from_merge();
    let mut key = KeyBuf::new(p.key_size);
    let mut values = ValueGen::new(ctx.values);
    while !ctx.shared.foreground_done() {
        let k = th.rng.uniform(p.key_range);
        ctx.db.put(
            ctx.flags.keyspace_of(k),
            key.set(k),
            values.generate(p.value_size),
            p.write,
        )?;
        th.stats.finished_ops(1, OpKind::Write);
    }
    Ok(())
}

/// ingest: the `--num` keys fillseq writes, with the same values, built
/// into one table file beside the database (`<db>.ingest.sst`) and then
/// ingested, moving the file (RocksDB: `SstFileWriter` then
/// `IngestExternalFile` with `move_files`). Each key counts as one
/// operation; the ingestion's own time is reported on the line.
pub fn ingest<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState) -> Result<()> {
    if !E::INGESTS {
        th.stats
            .unsupported(&format!("({} cannot ingest tables)", E::KIND.name()));
        return Ok(());
    }
    let p = ctx.plan;
    let mut file = ctx.path.as_os_str().to_owned();
    file.push(".ingest.sst");
    let file = std::path::PathBuf::from(file);
    let mut keys = KeyGen::new(KeyOrder::Sequential, p.num, ctx.permutation);
    let mut key = KeyBuf::new(p.key_size);
    let mut values = ValueGen::new(ctx.values);
    let stats = &mut th.stats;
    let rng = &mut th.rng;
    let mut produce = |add: &mut crate::engine::AddEntry<'_>| -> Result<()> {
        for _ in 0..p.num {
            let k = keys.next(rng);
            add(key.set(k), values.generate(p.value_size))?;
            stats.finished_ops(1, OpKind::Write);
        }
        Ok(())
    };
    let took = ctx.db.build_and_ingest(ctx.flags, &file, &mut produce);
    // Moved in on success; gone either way.
    let _ = std::fs::remove_file(&file);
    let took = took?;
    th.stats
        .add_bytes(p.num * (p.key_size + p.value_size) as u64);
    th.stats
        .add_message(&format!("(ingestion {:.3} s)", took.as_secs_f64()));
    Ok(())
}
