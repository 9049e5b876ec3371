//! fillseq, fillrandom, filluniquerandom, fillbatch, fillsync, fill100K,
//! overwrite (db_bench's `DoWrite`); deleteseq and deleterandom
//! (`DoDelete`); and the background writer of the *whilewriting
//! benchmarks (`BGWriter`).

use super::{Ctx, OpBudget, ThreadState};
use crate::engine::{Batch, Engine};
use crate::error::Result;
use crate::keys::{KeyBuf, KeyGen, KeyOrder};
use crate::stats::OpKind;
use crate::values::ValueGen;

pub fn fill<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState, order: KeyOrder) -> Result<()> {
    let p = ctx.plan;
    let secs = if order == KeyOrder::Random {
        p.duration_secs
    } else {
        0
    };
    let mut budget = OpBudget::new(secs, p.writes);
    let mut keys = KeyGen::new(order, p.num, ctx.permutation);
    let mut key = KeyBuf::new(p.key_size);
    let mut values = ValueGen::new(ctx.values);
    let mut batch = Batch::default();
    let per_batch = p.entries_per_batch;
    if p.num != ctx.flags.num as u64 {
        th.stats.add_message(&format!("({} ops)", p.num));
    }
    let entry_bytes = (p.key_size + p.value_size) as u64;
    let mut bytes = 0u64;
    while !budget.done(per_batch) {
        if per_batch == 1 {
            let k = keys.next(&mut th.rng);
            ctx.db.put(
                ctx.flags.keyspace_of(k),
                key.set(k),
                values.generate(p.value_size),
                p.write,
            )?;
        } else {
            batch.clear();
            for _ in 0..per_batch {
                let k = keys.next(&mut th.rng);
                batch.put(
                    ctx.flags.keyspace_of(k),
                    key.set(k),
                    values.generate(p.value_size),
                );
            }
            ctx.db.write(&batch, p.write)?;
        }
        bytes += per_batch * entry_bytes;
        th.stats.finished_ops(per_batch, OpKind::Write);
    }
    th.stats.add_bytes(bytes);
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
