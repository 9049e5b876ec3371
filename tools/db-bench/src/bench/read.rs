//! readrandom, readmissing, readhot (db_bench's `ReadRandom`) and readseq,
//! readreverse (`ReadSequential`, `ReadReverse`).

use super::{Ctx, OpBudget, ThreadState};
use crate::engine::{Engine, Scan, ScanStart};
use crate::error::Result;
use crate::keys::KeyBuf;
use crate::stats::OpKind;

/// Point reads of random keys in `0..range`; readmissing's keys are one
/// byte longer than any written, so none is found.
pub fn read_random<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState, range: u64) -> Result<()> {
    let p = ctx.plan;
    let mut budget = OpBudget::new(p.duration_secs, p.reads);
    let mut key = KeyBuf::new(p.key_size);
    let (mut read, mut found, mut bytes) = (0u64, 0u64, 0u64);
    while !budget.done(1) {
        let k = th.rng.uniform(range.max(1));
        read += 1;
        if let Some(len) = ctx.db.get(ctx.flags.keyspace_of(k), key.set(k))? {
            found += 1;
            bytes += (p.key_size + len) as u64;
        }
        th.stats.finished_ops(1, OpKind::Read);
    }
    th.stats.add_bytes(bytes);
    th.stats
        .add_message(&format!("({found} of {read} found)\n"));
    Ok(())
}

/// Scan up to `reads` entries from the first key forward, or from the last
/// key backward: keyspace after keyspace, from the first (the default;
/// RocksDB's db_bench walks the default column family only).
pub fn read_sequential<E: Engine>(
    ctx: &Ctx<'_, E>,
    th: &mut ThreadState,
    reverse: bool,
) -> Result<()> {
    let start = if reverse {
        ScanStart::Last
    } else {
        ScanStart::First
    };
    let (mut i, mut bytes) = (0u64, 0u64);
    for keyspace in 0..ctx.flags.num_column_families as usize {
        let mut scan = ctx.db.scan(keyspace, start)?;
        while i < ctx.plan.reads {
            let Some((k, v)) = scan.next_entry()? else {
                break;
            };
            bytes += (k.len() + v.len()) as u64;
            th.stats.finished_ops(1, OpKind::Read);
            i += 1;
        }
    }
    th.stats.add_bytes(bytes);
    Ok(())
}
