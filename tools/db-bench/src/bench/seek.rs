//! seekrandom (db_bench's `SeekRandom`): a new iterator per operation,
//! Seek to a random key, then `--seek_nexts` Next() calls, copying each
//! value out so it is really read. seekordered does the same with keys in
//! ascending order.

use super::{Ctx, OpBudget, ThreadState};
use crate::engine::{Engine, Scan, ScanStart};
use crate::error::Result;
use crate::keys::KeyBuf;
use crate::stats::OpKind;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SeekOrder {
    Random,
    Ordered,
}

pub fn seek<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState, order: SeekOrder) -> Result<()> {
    let p = ctx.plan;
    let range = p.key_range.max(1);
    let nexts = ctx.flags.seek_nexts;
    let mut budget = OpBudget::new(p.duration_secs, p.reads);
    let mut key = KeyBuf::new(p.key_size);
    let mut value_buffer = [0u8; 256];
    let (mut read, mut found, mut bytes) = (0u64, 0u64, 0u64);
    while !budget.done(1) {
        let k = match order {
            SeekOrder::Random => th.rng.uniform(range),
            SeekOrder::Ordered => read % range,
        };
        let target = key.set(k);
        // In the key's keyspace (RocksDB's db_bench seeks the default
        // column family only, missing the keys of the others).
        let mut scan = ctx
            .db
            .scan(ctx.flags.keyspace_of(k), ScanStart::Seek(target))?;
        read += 1;
        let mut entry = scan.next_entry()?;
        if entry.is_some_and(|(ek, _)| ek == target) {
            found += 1;
        }
        for _ in 0..nexts {
            let Some((ek, ev)) = entry else {
                break;
            };
            let n = ev.len().min(value_buffer.len());
            value_buffer[..n].copy_from_slice(&ev[..n]);
            bytes += (ek.len() + ev.len()) as u64;
            entry = scan.next_entry()?;
        }
        std::hint::black_box(&value_buffer);
        th.stats.finished_ops(1, OpKind::Seek);
    }
    th.stats.add_bytes(bytes);
    th.stats
        .add_message(&format!("({found} of {read} found)\n"));
    Ok(())
}
