//! Benchmarks that read and write at once: readwhilewriting and
//! seekrandomwhilewriting (one extra thread writes while the others read),
//! readrandomwriterandom (each thread mixes `--readwritepercent` reads with
//! writes), updaterandom (read-modify-write) and randomtransaction
//! (read-modify-write of one key per set in an optimistic transaction).

use super::{read, seek, write, Ctx, OpBudget, ThreadState};
use crate::engine::{parse_counter, Engine, Scan, ScanStart};
use crate::error::{BenchError, Result};
use crate::keys::KeyBuf;
use crate::stats::OpKind;
use crate::values::ValueGen;

/// Thread 0 writes in the background; the others read (or seek).
pub fn while_writing<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState, seeks: bool) -> Result<()> {
    if th.tid == 0 {
        write::background_writer(ctx, th)
    } else if seeks {
        seek::seek(ctx, th, seek::SeekOrder::Random)
    } else {
        read::read_random(ctx, th, ctx.plan.key_range)
    }
}

pub fn read_random_write_random<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState) -> Result<()> {
    let p = ctx.plan;
    let mut budget = OpBudget::new(p.duration_secs, p.readwrites);
    let mut key = KeyBuf::new(p.key_size);
    let mut values = ValueGen::new(ctx.values);
    let (mut reads, mut writes, mut found) = (0u64, 0u64, 0u64);
    let (mut get_weight, mut put_weight) = (0u32, 0u32);
    while !budget.done(1) {
        let k = th.rng.uniform(p.key_range);
        if get_weight == 0 && put_weight == 0 {
            get_weight = ctx.flags.readwritepercent;
            put_weight = 100 - get_weight;
        }
        if get_weight > 0 {
            if ctx.db.get(ctx.flags.keyspace_of(k), key.set(k))?.is_some() {
                found += 1;
            }
            get_weight -= 1;
            reads += 1;
            th.stats.finished_ops(1, OpKind::Read);
        } else {
            ctx.db.put(
                ctx.flags.keyspace_of(k),
                key.set(k),
                values.generate(p.value_size),
                p.write,
            )?;
            put_weight -= 1;
            writes += 1;
            th.stats.finished_ops(1, OpKind::Write);
        }
    }
    th.stats.add_message(&format!(
        "( reads:{reads} writes:{writes} total:{} found:{found})",
        p.readwrites
    ));
    Ok(())
}

pub fn update_random<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState) -> Result<()> {
    let p = ctx.plan;
    let mut budget = OpBudget::new(p.duration_secs, p.readwrites);
    let mut key = KeyBuf::new(p.key_size);
    let mut values = ValueGen::new(ctx.values);
    let (mut found, mut bytes) = (0u64, 0u64);
    while !budget.done(1) {
        let k = th.rng.uniform(p.key_range);
        let keyspace = ctx.flags.keyspace_of(k);
        if let Some(len) = ctx.db.get(keyspace, key.set(k))? {
            found += 1;
            bytes += (p.key_size + len) as u64;
        }
        ctx.db
            .put(keyspace, key.set(k), values.generate(p.value_size), p.write)?;
        bytes += (p.key_size + p.value_size) as u64;
        th.stats.finished_ops(1, OpKind::Update);
    }
    th.stats.add_bytes(bytes);
    th.stats
        .add_message(&format!("( updates:{} found:{found})", p.readwrites));
    Ok(())
}

/// randomtransaction (RocksDB's `RandomTransactionInserter`): each
/// operation is one transaction that reads one random key of each of
/// `--transaction_sets` sets for update, adds the same random amount to
/// each, and commits; a conflict is counted and the next operation goes
/// on. Every committed transaction adds the same to every set, so each
/// set sums to the same total (RocksDB's `RandomTransactionVerify`
/// checks it; here tests/transactions.rs's bank checks the like).
pub fn random_transaction<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState) -> Result<()> {
    if !E::TRANSACTIONS {
        th.stats
            .unsupported(&format!("({} has no transactions)", E::KIND.name()));
        return Ok(());
    }
    let p = ctx.plan;
    let sets = ctx.flags.transaction_sets;
    let mut budget = OpBudget::new(p.duration_secs, p.readwrites);
    let mut keys: Vec<Vec<u8>> = vec![Vec::new(); sets as usize];
    let (mut committed, mut conflicts) = (0u64, 0u64);
    while !budget.done(1) {
        for (set, key) in keys.iter_mut().enumerate() {
            *key = transaction_key(set as u64, th.rng.uniform(p.key_range));
        }
        let delta = 1 + th.rng.uniform(100);
        if ctx.db.increment_in_transaction(&keys, delta, p.write)? {
            committed += 1;
        } else {
            conflicts += 1;
        }
        th.stats.finished_ops(1, OpKind::Update);
    }
    th.stats.add_message(&format!(
        "( transactions:{committed} conflicts:{conflicts})"
    ));
    Ok(())
}

/// The key of number `n` in set `set`: the set as 4 digits, then `n` as
/// 16 (RocksDB: the set's prefix before the key).
pub fn transaction_key(set: u64, n: u64) -> Vec<u8> {
    format!("{:04}{n:016}", set + 1).into_bytes()
}

/// After randomtransaction (RocksDB's `RandomTransactionVerify`): every
/// committed transaction added the same amount to one key of each set, so
/// the sets' sums must agree; a lost or half-applied transaction shows as
/// a set that differs. The line to print, or an error naming the sums.
pub fn verify_transaction_sets<E: Engine>(db: &E, sets: u64) -> Result<String> {
    let mut sums = vec![0u64; sets as usize];
    let mut scan = db.scan(0, ScanStart::First)?;
    while let Some((key, value)) = scan.next_entry()? {
        let set = match transaction_set_of(key) {
            Some(set) if set < sets => set,
            _ => continue,
        };
        sums[set as usize] = sums[set as usize].wrapping_add(parse_counter(value));
    }
    if sums.iter().any(|&s| s != sums[0]) {
        return Err(BenchError::new(format!(
            "randomtransaction: the {sets} sets' sums differ ({sums:?}): \
             a transaction was lost or applied in part"
        )));
    }
    Ok(format!(
        "randomtransaction verified: {sets} sets each sum to {}\n",
        sums[0]
    ))
}

/// The set of a [`transaction_key`], `None` for any other key.
fn transaction_set_of(key: &[u8]) -> Option<u64> {
    if key.len() != 20 || !key.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let set: u64 = std::str::from_utf8(&key[..4]).ok()?.parse().ok()?;
    set.checked_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_key_names_its_set_and_nothing_else_does() {
        assert_eq!(transaction_set_of(&transaction_key(0, 7)), Some(0));
        assert_eq!(
            transaction_set_of(&transaction_key(41, 9_999_999_999)),
            Some(41)
        );
        assert_eq!(transaction_set_of(b"0000000000000000"), None);
        assert_eq!(transaction_set_of(b"0000000000000000000x"), None);
        // Set prefix 0000 is never written (sets count from 0001).
        assert_eq!(transaction_set_of(b"00000000000000000001"), None);
    }
}
