//! Optimistic transactions: read-your-own-writes, savepoints, limits,
//! conflicts at each isolation level (the bank, write skew, phantoms),
//! and validation by lookups once the oracle's record has moved on.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use strata::fs::MemFileSystem;
use strata::{Db, Error, Isolation, Keyspace, Transaction, TransactionOptions, WriteBatch};

fn options(isolation: Isolation) -> TransactionOptions {
    TransactionOptions {
        isolation,
        ..TransactionOptions::default()
    }
}

fn collect(
    it: impl Iterator<Item = strata::Result<(strata::Bytes, strata::Bytes)>>,
) -> Vec<(String, String)> {
    it.map(|r| {
        let (k, v) = r.unwrap();
        (
            String::from_utf8(k.to_vec()).unwrap(),
            String::from_utf8(v.to_vec()).unwrap(),
        )
    })
    .collect()
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn reads_see_the_snapshot_and_the_transactions_own_writes() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.put("a", "1").unwrap();
    db.put("b", "2").unwrap();
    db.put("d", "4").unwrap();
    let mut tx = db.transaction();
    db.put("c", "later").unwrap(); // after the snapshot: unseen
    tx.put("b", "20").unwrap();
    tx.delete("d").unwrap();
    tx.put("e", "5").unwrap();
    assert_eq!(tx.get("b").unwrap().as_deref(), Some(&b"20"[..]));
    assert_eq!(tx.get("c").unwrap(), None);
    assert_eq!(tx.get("d").unwrap(), None);
    let want = kv(&[("a", "1"), ("b", "20"), ("e", "5")]);
    assert_eq!(collect(tx.iter().unwrap()), want);
    let mut back = collect(tx.iter().unwrap().rev());
    back.reverse();
    assert_eq!(back, want);
    assert_eq!(collect(tx.range("b".."e").unwrap()), kv(&[("b", "20")]));
    // Both ends at once meet in the middle, each entry once.
    let mut it = tx.iter().unwrap();
    let first = it.next().unwrap().unwrap().0;
    let last = it.next_back().unwrap().unwrap().0;
    let middle: Vec<_> = it.map(|r| r.unwrap().0).collect();
    assert_eq!((&first[..], &last[..]), (&b"a"[..], &b"e"[..]));
    assert_eq!(middle, vec![strata::Bytes::from_static(b"b")]);
    // Not visible to others until the commit.
    assert_eq!(db.get("e").unwrap(), None);
    tx.commit().unwrap();
    assert_eq!(
        scan_all(&db),
        vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"20".to_vec()),
            (b"c".to_vec(), b"later".to_vec()),
            (b"e".to_vec(), b"5".to_vec()),
        ]
    );
}

#[test]
fn a_dropped_or_rolled_back_transaction_writes_nothing() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    {
        let mut tx = db.transaction();
        tx.put("a", "1").unwrap();
    }
    let mut tx = db.transaction();
    tx.put("b", "1").unwrap();
    tx.rollback();
    tx.put("c", "1").unwrap();
    tx.commit().unwrap();
    assert_eq!(scan_all(&db), vec![(b"c".to_vec(), b"1".to_vec())]);
}

#[test]
fn savepoints_undo_the_writes_after_them() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let mut tx = db.transaction();
    tx.put("a", "1").unwrap();
    tx.set_savepoint();
    tx.put("a", "2").unwrap();
    tx.put("b", "2").unwrap();
    tx.set_savepoint();
    tx.delete("a").unwrap();
    assert_eq!(tx.get("a").unwrap(), None);
    tx.rollback_to_savepoint().unwrap();
    assert_eq!(tx.get("a").unwrap().as_deref(), Some(&b"2"[..]));
    tx.rollback_to_savepoint().unwrap();
    assert_eq!(tx.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(tx.get("b").unwrap(), None);
    let e = tx.rollback_to_savepoint().unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    tx.commit().unwrap();
    assert_eq!(scan_all(&db), vec![(b"a".to_vec(), b"1".to_vec())]);
}

#[test]
fn size_limits_refuse_the_write_or_read_that_passes_them() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let mut tx = db.transaction_with(TransactionOptions {
        isolation: Isolation::Serializable,
        max_write_bytes: 100,
        max_tracked_reads: 2,
        ..TransactionOptions::default()
    });
    tx.put("a", [0u8; 50]).unwrap();
    let e = tx.put("b", [0u8; 50]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TransactionTooLarge {
                limit: "max_write_bytes",
                max: 100,
                ..
            }
        ),
        "{e}"
    );
    tx.get("x").unwrap();
    tx.get("y").unwrap();
    let e = tx.get("z").unwrap_err();
    assert!(
        matches!(
            e,
            Error::TransactionTooLarge {
                limit: "max_tracked_reads",
                ..
            }
        ),
        "{e}"
    );
    tx.commit().unwrap();
    assert_eq!(db.get("a").unwrap().unwrap().len(), 50);
    assert_eq!(db.get("b").unwrap(), None);
}

#[test]
fn a_conflict_names_the_keyspace_and_key_and_writes_nothing() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let users = db.keyspace("users").unwrap();
    let mut tx = db.transaction();
    tx.put_in(&users, "u1", "mine").unwrap();
    tx.put("other", "x").unwrap();
    users.put("u1", "theirs").unwrap();
    match tx.commit() {
        Err(Error::Conflict { keyspace, key }) => {
            assert_eq!(keyspace, "users");
            assert_eq!(key, b"u1");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(users.get("u1").unwrap().as_deref(), Some(&b"theirs"[..]));
    assert_eq!(db.get("other").unwrap(), None, "nothing of it written");
}

#[test]
fn get_for_update_conflicts_under_snapshot_isolation_a_plain_get_does_not() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let ks = db.keyspace("default").unwrap();
    let mut plain = db.transaction();
    let mut locked = db.transaction();
    plain.get("k").unwrap();
    locked.get_for_update(&ks, "k").unwrap();
    plain.put("p", "1").unwrap();
    locked.put("l", "1").unwrap();
    db.put("k", "changed").unwrap();
    plain.commit().unwrap();
    assert!(locked.commit().unwrap_err().is_conflict());
}

/// Two doctors on call; each goes off call if the other is still on.
/// Each reads both, writes only their own: snapshot isolation lets both
/// commit (write skew, G2-item); serializable aborts the second.
fn doctors(isolation: Isolation) -> (strata::Result<()>, strata::Result<()>, Db) {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.put("alice", "on").unwrap();
    db.put("bob", "on").unwrap();
    let go_off = |me: &str| -> Transaction {
        let mut tx = db.transaction_with(options(isolation));
        let on = ["alice", "bob"]
            .iter()
            .filter(|d| tx.get(d).unwrap().as_deref() == Some(&b"on"[..]))
            .count();
        assert_eq!(on, 2);
        tx.put(me, "off").unwrap();
        tx
    };
    let t1 = go_off("alice");
    let t2 = go_off("bob");
    let r1 = t1.commit();
    let r2 = t2.commit();
    (r1, r2, db)
}

#[test]
fn write_skew_commits_under_snapshot_isolation() {
    let (r1, r2, db) = doctors(Isolation::Snapshot);
    r1.unwrap();
    r2.unwrap();
    assert_eq!(db.get("alice").unwrap().as_deref(), Some(&b"off"[..]));
    assert_eq!(db.get("bob").unwrap().as_deref(), Some(&b"off"[..]));
}

#[test]
fn write_skew_aborts_one_under_serializable() {
    let (r1, r2, db) = doctors(Isolation::Serializable);
    r1.unwrap();
    match r2 {
        Err(Error::Conflict { key, .. }) => assert_eq!(key, b"alice"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(db.get("bob").unwrap().as_deref(), Some(&b"on"[..]));
}

/// A transaction counts the rows under a prefix and records the count;
/// another inserts a row under it meanwhile.
fn phantom(isolation: Isolation, prefix_scan: bool) -> strata::Result<()> {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.put("emp:1", "x").unwrap();
    db.put("emp:2", "x").unwrap();
    let mut scanner = db.transaction_with(options(isolation));
    let it = if prefix_scan {
        scanner.prefix("emp:").unwrap()
    } else {
        scanner.range("emp:".."emp;").unwrap()
    };
    let n = it.count();
    assert_eq!(n, 2);
    scanner.put("count", n.to_string()).unwrap();
    let mut inserter = db.transaction_with(options(isolation));
    inserter.put("emp:3", "x").unwrap();
    inserter.commit().unwrap();
    scanner.commit()
}

#[test]
fn a_phantom_insert_aborts_the_scanner_only_under_serializable() {
    phantom(Isolation::Snapshot, true).unwrap();
    for prefix_scan in [true, false] {
        let e = phantom(Isolation::Serializable, prefix_scan).unwrap_err();
        match e {
            Error::Conflict { key, .. } => assert_eq!(key, b"emp:3"),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
}

#[test]
fn a_write_outside_the_scanned_range_does_not_abort() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let mut tx = db.transaction_with(TransactionOptions::serializable());
    assert_eq!(tx.range("b".."d").unwrap().count(), 0);
    tx.put("x", "1").unwrap();
    db.put("d", "1").unwrap(); // the end is excluded
    db.put("a", "1").unwrap();
    tx.commit().unwrap();
}

#[test]
fn a_range_delete_over_a_written_key_conflicts() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let mut tx = db.transaction();
    tx.put("m", "1").unwrap();
    db.delete_range("a".."z").unwrap();
    assert!(tx.commit().unwrap_err().is_conflict());
}

#[test]
fn transactions_span_keyspaces_atomically() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let a = db.keyspace("a").unwrap();
    let b = db.keyspace("b").unwrap();
    let mut tx = db.transaction();
    tx.put_in(&a, "k", "1").unwrap();
    tx.put_in(&b, "k", "2").unwrap();
    assert_eq!(tx.get_in(&a, "k").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(collect(tx.iter_in(&b).unwrap()), kv(&[("k", "2")]));
    let snap = db.snapshot();
    tx.commit().unwrap();
    assert_eq!(snap.keyspace(&a).get("k").unwrap(), None);
    assert_eq!(a.get("k").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(b.get("k").unwrap().as_deref(), Some(&b"2"[..]));
}

#[test]
fn merges_show_in_the_transactions_reads() {
    let fs = MemFileSystem::new();
    let db = Db::open(
        mem_dir(),
        strata::Options {
            merge_operator: Some(Arc::new(strata::UInt64Add)),
            ..mem_options(&fs)
        },
    )
    .unwrap();
    db.put("n", 5u64.to_le_bytes()).unwrap();
    let mut tx = db.transaction();
    tx.merge("n", 2u64.to_le_bytes()).unwrap();
    tx.merge("n", 3u64.to_le_bytes()).unwrap();
    tx.merge("fresh", 7u64.to_le_bytes()).unwrap();
    let n = tx.get("n").unwrap().unwrap();
    assert_eq!(u64::from_le_bytes(n[..].try_into().unwrap()), 10);
    let all: Vec<u64> = tx
        .iter()
        .unwrap()
        .map(|r| u64::from_le_bytes(r.unwrap().1[..].try_into().unwrap()))
        .collect();
    assert_eq!(all, vec![7, 10]);
    tx.commit().unwrap();
    let n = db.get("n").unwrap().unwrap();
    assert_eq!(u64::from_le_bytes(n[..].try_into().unwrap()), 10);
}

/// Enough plain writes after a transaction's snapshot to push it out of
/// the oracle's record (64 Ki keys), some of them flushed to tables: the
/// commit is validated by lookups through the memtables and levels.
#[test]
fn a_snapshot_older_than_the_oracle_is_validated_by_lookups() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.put("mine", "0").unwrap();
    db.put("scan:a", "0").unwrap();
    let mut clean = db.transaction_with(TransactionOptions::serializable());
    let mut dirty = db.transaction_with(TransactionOptions::serializable());
    let mut phantom = db.transaction_with(TransactionOptions::serializable());
    clean.get("mine").unwrap();
    clean.put("mine", "1").unwrap();
    dirty.get("touched").unwrap();
    dirty.put("elsewhere", "1").unwrap();
    assert_eq!(phantom.prefix("scan:").unwrap().count(), 1);
    phantom.put("count", "1").unwrap();
    db.put("touched", "x").unwrap();
    db.put("scan:b", "x").unwrap();
    let mut rng = Rng(7);
    for round in 0..70 {
        let mut batch = WriteBatch::new();
        for _ in 0..1000 {
            batch.put(format!("filler{:08}", rng.below(1 << 30)), "v");
        }
        db.write(batch).unwrap();
        if round % 20 == 0 {
            db.flush().unwrap();
        }
    }
    db.flush().unwrap();
    clean.commit().unwrap();
    assert!(dirty.commit().unwrap_err().is_conflict());
    match phantom.commit() {
        Err(Error::Conflict { key, .. }) => assert_eq!(key, b"scan:b"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(db.get("mine").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(db.get("elsewhere").unwrap(), None);
}

/// The bank: 8 threads move money between 1,000 accounts, each a fixed
/// number of attempts. The total never changes (checked by concurrent
/// readers at their snapshots and at the end), no balance goes negative,
/// and every failed commit is a conflict.
fn bank(isolation: Isolation) {
    const ACCOUNTS: u64 = 1000;
    const THREADS: u64 = 8;
    const ATTEMPTS: u64 = 400;
    const START: u64 = 100;
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let accounts = db.keyspace("accounts").unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..ACCOUNTS {
        batch.put_in(&accounts, account(i), START.to_le_bytes());
    }
    db.write(batch).unwrap();
    let committed = Arc::new(AtomicU64::new(0));
    let conflicts = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (db, accounts) = (db.clone(), accounts.clone());
            let (committed, conflicts) = (Arc::clone(&committed), Arc::clone(&conflicts));
            s.spawn(move || {
                let mut rng = Rng(t);
                // Up to 4 transactions of this thread in flight at once,
                // and half the transfers touch one of 10 hot accounts, so
                // transactions overlap (in this thread and across) and
                // conflicts happen whatever the scheduling.
                let mut in_flight = std::collections::VecDeque::new();
                let finish = |tx: Transaction| match tx.commit() {
                    Ok(()) => committed.fetch_add(1, Ordering::Relaxed),
                    Err(Error::Conflict { .. }) => conflicts.fetch_add(1, Ordering::Relaxed),
                    Err(e) => panic!("a transfer failed with {e}, not a conflict"),
                };
                for attempt in 0..ATTEMPTS {
                    if t == 0 && attempt % 50 == 0 {
                        audit(&db, &accounts, isolation, ACCOUNTS * START);
                    }
                    let from = if rng.one_in(2) {
                        rng.below(10)
                    } else {
                        rng.below(ACCOUNTS)
                    };
                    let to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
                    let mut tx = db.transaction_with(options(isolation));
                    let a = balance(&mut tx, &accounts, from);
                    let b = balance(&mut tx, &accounts, to);
                    let amount = rng.below(a + 1);
                    tx.put_in(&accounts, account(from), (a - amount).to_le_bytes())
                        .unwrap();
                    tx.put_in(&accounts, account(to), (b + amount).to_le_bytes())
                        .unwrap();
                    in_flight.push_back(tx);
                    if in_flight.len() > 3 {
                        finish(in_flight.pop_front().unwrap());
                    }
                }
                in_flight.into_iter().for_each(|tx| {
                    finish(tx);
                });
            });
        }
    });
    audit(&db, &accounts, isolation, ACCOUNTS * START);
    let committed = committed.load(Ordering::Relaxed);
    let conflicts = conflicts.load(Ordering::Relaxed);
    assert!(committed > 0, "nothing committed");
    assert!(
        conflicts > 0,
        "no transfer conflicted: the test tests nothing"
    );
    assert_eq!(committed + conflicts, THREADS * ATTEMPTS);
    eprintln!("bank {isolation:?}: {committed} committed, {conflicts} conflicts");
}

fn account(i: u64) -> String {
    format!("acct{i:05}")
}

fn balance(tx: &mut Transaction, accounts: &Keyspace, i: u64) -> u64 {
    let v = tx.get_for_update(accounts, account(i)).unwrap().unwrap();
    u64::from_le_bytes(v[..].try_into().unwrap())
}

/// Sum every balance in a transaction's view; none is negative (would
/// have wrapped to a huge number).
fn audit(db: &Db, accounts: &Keyspace, isolation: Isolation, total: u64) {
    let mut tx = db.transaction_with(options(isolation));
    let mut sum = 0u64;
    for r in tx.iter_in(accounts).unwrap() {
        let b = u64::from_le_bytes(r.unwrap().1[..].try_into().unwrap());
        assert!(b <= total, "balance {b} out of range: went negative");
        sum += b;
    }
    assert_eq!(sum, total, "money created or destroyed");
}

#[test]
fn bank_under_snapshot_isolation() {
    bank(Isolation::Snapshot);
}

#[test]
fn bank_under_serializable() {
    bank(Isolation::Serializable);
}

/// The bank through crashes: transfers from 4 threads until a simulated
/// crash stops the filesystem mid-write, then a power loss (unsynced data
/// dropped, torn, or kept by pages), a reopen, and an audit: after every
/// crash the total is intact and no balance is negative, at both levels.
#[test]
fn bank_total_survives_crashes_and_power_loss() {
    const ACCOUNTS: u64 = 200;
    const START: u64 = 100;
    for (seed, isolation) in [(1, Isolation::Snapshot), (2, Isolation::Serializable)] {
        let fs = MemFileSystem::new();
        let mut db = open_mem(&fs);
        {
            let accounts = db.keyspace("accounts").unwrap();
            let mut batch = WriteBatch::new();
            for i in 0..ACCOUNTS {
                batch.put_in(&accounts, account(i), START.to_le_bytes());
            }
            let sync = strata::WriteOptions {
                sync: true,
                ..Default::default()
            };
            db.write_opt(batch, &sync).unwrap();
        }
        let mut rng = Rng(seed);
        let mut committed = 0u64;
        for round in 0..8 {
            fs.crash_after(100 + rng.below(600));
            let accounts = db.keyspace("accounts").unwrap();
            let done = AtomicU64::new(0);
            std::thread::scope(|s| {
                for t in 0..4 {
                    let (db, accounts, done) = (db.clone(), accounts.clone(), &done);
                    s.spawn(move || {
                        let mut rng = Rng(seed * 1000 + round * 10 + t);
                        // Stops at the first error that is not a conflict:
                        // the crash.
                        let _ = (0..300).try_for_each(|_| {
                            transfer(&db, &accounts, isolation, &mut rng, ACCOUNTS).map(|ok| {
                                done.fetch_add(u64::from(ok), Ordering::Relaxed);
                            })
                        });
                    });
                }
            });
            committed += done.load(Ordering::Relaxed);
            drop(accounts);
            let mode = match rng.below(3) {
                0 => strata::fs::UnsyncedData::Drop,
                1 => strata::fs::UnsyncedData::KeepRandomPrefix(rng.next()),
                _ => strata::fs::UnsyncedData::KeepRandomPages(rng.next()),
            };
            power_cycle(&fs, db, mode);
            db = open_mem(&fs);
            let accounts = db.keyspace("accounts").unwrap();
            let balances: Vec<u64> = accounts
                .iter()
                .map(|r| u64::from_le_bytes(r.unwrap().1[..].try_into().unwrap()))
                .collect();
            assert_eq!(
                balances.len() as u64,
                ACCOUNTS,
                "round {round}: accounts lost"
            );
            assert!(
                balances.iter().all(|&b| b <= ACCOUNTS * START),
                "negative balance"
            );
            assert_eq!(
                balances.iter().sum::<u64>(),
                ACCOUNTS * START,
                "{isolation:?} round {round}: money created or destroyed by a crash"
            );
        }
        assert!(
            committed > 0,
            "{isolation:?}: nothing committed before the crashes"
        );
    }
}

/// One transfer between random accounts, one commit in four synced.
/// `Ok(true)` committed, `Ok(false)` conflicted, `Err` anything else.
fn transfer(
    db: &Db,
    accounts: &Keyspace,
    isolation: Isolation,
    rng: &mut Rng,
    n: u64,
) -> strata::Result<bool> {
    let from = rng.below(n);
    let to = (from + 1 + rng.below(n - 1)) % n;
    let mut tx = db.transaction_with(TransactionOptions {
        isolation,
        write_options: strata::WriteOptions {
            sync: rng.one_in(4),
            ..Default::default()
        },
        ..TransactionOptions::default()
    });
    let read = |tx: &mut Transaction, i: u64| -> strata::Result<u64> {
        let v = tx.get_for_update(accounts, account(i))?;
        Ok(u64::from_le_bytes(v.unwrap()[..].try_into().unwrap()))
    };
    let (a, b) = (read(&mut tx, from)?, read(&mut tx, to)?);
    let amount = rng.below(a + 1);
    tx.put_in(accounts, account(from), (a - amount).to_le_bytes())?;
    tx.put_in(accounts, account(to), (b + amount).to_le_bytes())?;
    match tx.commit() {
        Ok(()) => Ok(true),
        Err(Error::Conflict { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

// Range deletes in transactions.

/// Keys `a` to `f`, each valued by its name.
fn letters(db: &Db) {
    for k in ["a", "b", "c", "d", "e", "f"] {
        db.put(k, k).unwrap();
    }
}

/// Every entry a transaction cursor shows: forward from the first, then
/// backward from the last, then forward again from `seek(from)` after a
/// turn at `seek_for_prev(from)`.
fn cursor_walks(tx: &mut Transaction, from: &str) -> [Vec<(String, String)>; 3] {
    let mut c = tx.cursor().unwrap();
    let entry = |c: &strata::TransactionCursor| {
        (
            String::from_utf8(c.key().unwrap().to_vec()).unwrap(),
            String::from_utf8(c.value().unwrap().to_vec()).unwrap(),
        )
    };
    let (mut fwd, mut back, mut turned) = (Vec::new(), Vec::new(), Vec::new());
    c.seek_to_first().unwrap();
    while c.valid() {
        fwd.push(entry(&c));
        c.next().unwrap();
    }
    c.seek_to_last().unwrap();
    while c.valid() {
        back.push(entry(&c));
        c.prev().unwrap();
    }
    // Backward one step from `from`, then turn and walk forward.
    c.seek_for_prev(from).unwrap();
    if c.valid() {
        turned.push(entry(&c));
        c.next().unwrap();
    } else {
        c.seek_to_first().unwrap();
    }
    while c.valid() {
        turned.push(entry(&c));
        c.next().unwrap();
    }
    back.reverse();
    [fwd, back, turned]
}

#[test]
fn a_range_delete_hides_the_snapshots_keys_from_every_read() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    letters(&db);
    let ks = db.keyspace("default").unwrap();
    let mut tx = db.transaction();
    tx.put("c", "mine").unwrap();
    tx.delete_range("b".."e").unwrap(); // b, c (its own put) and d
    tx.put("d", "again").unwrap(); // after it: shown
    for (k, want) in [
        ("a", Some("a")),
        ("b", None),
        ("c", None),
        ("d", Some("again")),
    ] {
        assert_eq!(
            tx.get(k).unwrap().as_deref(),
            want.map(str::as_bytes),
            "{k}"
        );
    }
    assert_eq!(tx.get_for_update(&ks, "c").unwrap(), None);
    let want = kv(&[("a", "a"), ("d", "again"), ("e", "e"), ("f", "f")]);
    assert_eq!(collect(tx.iter().unwrap()), want);
    let mut back = collect(tx.iter().unwrap().rev());
    back.reverse();
    assert_eq!(back, want);
    assert_eq!(collect(tx.range("b"..="d").unwrap()), kv(&[("d", "again")]));
    assert_eq!(collect(tx.range("b".."d").unwrap().rev()), kv(&[]));
    assert_eq!(collect(tx.prefix("c").unwrap()), kv(&[]));
    // Both ends at once: each entry once, the deleted ones never.
    let mut it = tx.iter().unwrap();
    assert_eq!(&it.next_back().unwrap().unwrap().0[..], b"f");
    assert_eq!(&it.next().unwrap().unwrap().0[..], b"a");
    assert_eq!(&it.next_back().unwrap().unwrap().0[..], b"e");
    assert_eq!(&it.next().unwrap().unwrap().0[..], b"d");
    assert!(it.next().is_none() && it.next_back().is_none());
    let [fwd, back, turned] = cursor_walks(&mut tx, "c");
    assert_eq!(fwd, want);
    assert_eq!(back, want);
    assert_eq!(turned, want, "from a, the last key <= c");
    let mut c = tx.cursor().unwrap();
    c.seek("b").unwrap();
    assert_eq!(c.key(), Some(&b"d"[..]));
    c.prev().unwrap();
    assert_eq!(c.key(), Some(&b"a"[..]));
    c.seek_for_prev("c").unwrap();
    assert_eq!(c.key(), Some(&b"a"[..]));
    c.next().unwrap();
    assert_eq!(c.value(), Some(&b"again"[..]));
    tx.commit().unwrap();
    assert_eq!(
        scan_all(&db),
        vec![
            (b"a".to_vec(), b"a".to_vec()),
            (b"d".to_vec(), b"again".to_vec()),
            (b"e".to_vec(), b"e".to_vec()),
            (b"f".to_vec(), b"f".to_vec()),
        ]
    );
}

#[test]
fn ranges_with_no_end_prefixes_and_keyspaces() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    letters(&db);
    let users = db.keyspace("users").unwrap();
    for k in ["u:1", "u:2", "ux", "v"] {
        users.put(k, "x").unwrap();
    }
    let mut tx = db.transaction();
    tx.delete_range("d"..).unwrap();
    tx.delete_prefix_in(&users, "u:").unwrap();
    tx.put("z", "after").unwrap();
    assert_eq!(
        collect(tx.iter().unwrap().rev()),
        kv(&[("z", "after"), ("c", "c"), ("b", "b"), ("a", "a")])
    );
    let [fwd, back, turned] = cursor_walks(&mut tx, "e");
    let want = kv(&[("a", "a"), ("b", "b"), ("c", "c"), ("z", "after")]);
    assert_eq!((&fwd, &back), (&want, &want));
    assert_eq!(turned, want[2..].to_vec());
    let keys: Vec<_> = collect(tx.iter_in(&users).unwrap())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, ["ux", "v"]);
    assert_eq!(tx.get_in(&users, "u:1").unwrap(), None);
    // The whole default keyspace, then one key back.
    tx.delete_prefix("").unwrap();
    tx.put("b", "new").unwrap();
    assert_eq!(collect(tx.iter().unwrap()), kv(&[("b", "new")]));
    assert_eq!(collect(tx.iter().unwrap().rev()), kv(&[("b", "new")]));
    tx.commit().unwrap();
    assert_eq!(scan_all(&db), vec![(b"b".to_vec(), b"new".to_vec())]);
    assert_eq!(users.get("u:2").unwrap(), None);
    assert!(users.get("ux").unwrap().is_some());
}

#[test]
fn a_merge_after_a_range_delete_starts_from_nothing() {
    let fs = MemFileSystem::new();
    let db = Db::open(
        mem_dir(),
        strata::Options {
            merge_operator: Some(Arc::new(strata::UInt64Add)),
            ..mem_options(&fs)
        },
    )
    .unwrap();
    let n = |v: Option<strata::Bytes>| u64::from_le_bytes(v.unwrap()[..].try_into().unwrap());
    db.put("n", 5u64.to_le_bytes()).unwrap();
    db.put("m", 5u64.to_le_bytes()).unwrap();
    let mut tx = db.transaction();
    tx.merge("m", 1u64.to_le_bytes()).unwrap(); // deleted below with the rest
    tx.delete_range("a".."z").unwrap();
    tx.merge("n", 2u64.to_le_bytes()).unwrap();
    assert_eq!(n(tx.get("n").unwrap()), 2);
    assert_eq!(tx.get("m").unwrap(), None);
    let all: Vec<u64> = tx
        .iter()
        .unwrap()
        .map(|r| u64::from_le_bytes(r.unwrap().1[..].try_into().unwrap()))
        .collect();
    assert_eq!(all, vec![2]);
    tx.commit().unwrap();
    assert_eq!(n(db.get("n").unwrap()), 2);
    assert_eq!(db.get("m").unwrap(), None);
}

#[test]
fn savepoints_undo_range_deletes_and_bring_back_what_they_dropped() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    letters(&db);
    let mut tx = db.transaction();
    tx.put("c", "mine").unwrap();
    let bytes = tx.write_bytes();
    tx.set_savepoint();
    tx.delete_range("b".."e").unwrap();
    tx.put("b", "again").unwrap();
    tx.set_savepoint();
    tx.delete_range("a"..="f").unwrap();
    assert_eq!(collect(tx.iter().unwrap()), kv(&[]));
    tx.rollback_to_savepoint().unwrap();
    assert_eq!(
        collect(tx.iter().unwrap()),
        kv(&[("a", "a"), ("b", "again"), ("e", "e"), ("f", "f")])
    );
    tx.rollback_to_savepoint().unwrap();
    assert_eq!(tx.write_bytes(), bytes);
    let want = kv(&[
        ("a", "a"),
        ("b", "b"),
        ("c", "mine"),
        ("d", "d"),
        ("e", "e"),
        ("f", "f"),
    ]);
    assert_eq!(collect(tx.iter().unwrap()), want);
    assert_eq!(cursor_walks(&mut tx, "c")[1], want);
    tx.commit().unwrap();
    assert_eq!(db.get("c").unwrap().as_deref(), Some(&b"mine"[..]));
    assert_eq!(db.get("d").unwrap().as_deref(), Some(&b"d"[..]));
    // Rolled back entirely, or dropped: nothing deleted.
    let mut tx = db.transaction();
    tx.delete_prefix("").unwrap();
    tx.rollback();
    tx.commit().unwrap();
    let mut tx = db.transaction();
    tx.delete_prefix("").unwrap();
    drop(tx);
    assert_eq!(scan_all(&db).len(), 6);
}

#[test]
fn range_delete_arguments_are_checked_as_the_databases_are() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    letters(&db);
    let other_fs = MemFileSystem::new();
    let other = open_mem(&other_fs);
    let foreign = other.keyspace("x").unwrap();
    let mut tx = db.transaction();
    match tx.delete_range("z".."a") {
        Err(Error::InvalidArgument(why)) => assert!(why.contains("start"), "{why}"),
        r => panic!("an inverted range gave {r:?}"),
    }
    assert!(matches!(
        tx.delete_range_in(&foreign, "a".."b"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        tx.delete_prefix_in(&foreign, "a"),
        Err(Error::InvalidArgument(_))
    ));
    let long = vec![b'k'; strata::MAX_KEY_SIZE + 2];
    assert!(matches!(
        tx.delete_range(long.as_slice()..),
        Err(Error::InvalidArgument(_))
    ));
    tx.delete_range("c".."c").unwrap(); // empty: nothing
    assert_eq!(tx.write_bytes(), 0);
    // The longest key's included end is one byte longer: accepted.
    let longest = vec![b'k'; strata::MAX_KEY_SIZE];
    tx.delete_range(longest.as_slice()..=longest.as_slice())
        .unwrap();
    tx.delete_range::<&[u8]>(..).unwrap();
    tx.commit().unwrap();
    assert!(scan_all(&db).is_empty(), "a commit of range deletes alone");
    // Dropped keyspaces are refused.
    let gone = db.keyspace("gone").unwrap();
    let mut tx = db.transaction();
    db.drop_keyspace("gone").unwrap();
    assert!(tx.delete_range_in(&gone, "a".."b").is_err());
    // The size limit counts a range delete and frees what it drops.
    let mut tx = db.transaction_with(TransactionOptions {
        max_write_bytes: 40,
        ..TransactionOptions::default()
    });
    tx.put("b", [0u8; 20]).unwrap();
    assert!(matches!(
        tx.delete_range(vec![b'c'; 20].as_slice()..),
        Err(Error::TransactionTooLarge { .. })
    ));
    tx.delete_range("a".."c").unwrap(); // drops b's put
    assert_eq!(tx.write_bytes(), 8 + 2);
}

/// A transaction deleting `b..e` under `isolation`, and `interfere` run
/// after its snapshot: the commit's outcome, and the database.
fn range_delete_against(
    isolation: Isolation,
    interfere: impl FnOnce(&Db),
) -> (strata::Result<()>, Db) {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    letters(&db);
    let mut tx = db.transaction_with(options(isolation));
    tx.delete_range("b".."e").unwrap();
    interfere(&db);
    (tx.commit(), db)
}

#[test]
fn a_range_delete_conflicts_with_any_later_write_into_its_range() {
    for isolation in [Isolation::Snapshot, Isolation::Serializable] {
        let (r, db) = range_delete_against(isolation, |db| db.put("c2", "x").unwrap());
        match r {
            Err(Error::Conflict { keyspace, key }) => {
                assert_eq!((keyspace.as_str(), &key[..]), ("default", &b"c2"[..]));
            }
            r => panic!("{isolation:?}: a put into the range gave {r:?}"),
        }
        assert!(db.get("b").unwrap().is_some(), "nothing of it written");
        // A delete is a write too; so is an overlapping range delete,
        // named by where the ranges meet.
        let (r, _) = range_delete_against(isolation, |db| db.delete("b").unwrap());
        assert!(r.unwrap_err().is_conflict());
        let (r, _) = range_delete_against(isolation, |db| db.delete_range("d".."z").unwrap());
        match r {
            Err(Error::Conflict { key, .. }) => assert_eq!(key, b"d"),
            r => panic!("{isolation:?}: an overlapping range delete gave {r:?}"),
        }
        // Outside the range, or touching its excluded end: no conflict.
        let (r, db) = range_delete_against(isolation, |db| {
            db.put("e", "x").unwrap();
            db.put("a", "x").unwrap();
            db.delete_range("e".."z").unwrap();
            db.keyspace("other").unwrap().put("c", "x").unwrap();
        });
        r.unwrap();
        assert_eq!(db.get("c").unwrap(), None);
    }
}

#[test]
fn a_write_into_a_range_deleted_since_the_snapshot_conflicts() {
    for isolation in [Isolation::Snapshot, Isolation::Serializable] {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        letters(&db);
        let mut writer = db.transaction_with(options(isolation));
        let mut deleter = db.transaction_with(options(isolation));
        let mut overlapping = db.transaction_with(options(isolation));
        let mut beside = db.transaction_with(options(isolation));
        writer.put("c", "mine").unwrap();
        deleter.delete_range("b".."e").unwrap();
        overlapping.delete_prefix("d").unwrap();
        beside.delete_range("e"..).unwrap();
        deleter.commit().unwrap();
        match writer.commit() {
            Err(Error::Conflict { key, .. }) => assert_eq!(key, b"c"),
            r => panic!("{isolation:?}: {r:?}"),
        }
        match overlapping.commit() {
            Err(Error::Conflict { key, .. }) => assert_eq!(key, b"d"),
            r => panic!("{isolation:?}: {r:?}"),
        }
        beside.commit().unwrap();
        assert_eq!(scan_all(&db), vec![(b"a".to_vec(), b"a".to_vec())]);
    }
}

/// As `a_snapshot_older_than_the_oracle_is_validated_by_lookups`, for
/// range deletes: the oracle's record no longer reaches the snapshot, so
/// the range is scanned through the memtables and levels.
#[test]
fn range_deletes_are_validated_by_lookups_past_the_oracle() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    letters(&db);
    db.flush().unwrap();
    let mut clean = db.transaction();
    let mut hit = db.transaction();
    let mut overlapped = db.transaction();
    let mut into = db.transaction();
    clean.delete_range("a".."c").unwrap();
    hit.delete_prefix("e").unwrap();
    overlapped.delete_range("x".."y").unwrap();
    into.put("q", "1").unwrap();
    db.put("e1", "x").unwrap();
    db.delete_range("r".."xa").unwrap();
    db.flush().unwrap();
    let mut rng = Rng(11);
    for round in 0..70 {
        let mut batch = WriteBatch::new();
        for _ in 0..1000 {
            batch.put(format!("filler{:08}", rng.below(1 << 30)), "v");
        }
        db.write(batch).unwrap();
        if round % 20 == 0 {
            db.flush().unwrap();
        }
    }
    clean.commit().unwrap();
    match hit.commit() {
        Err(Error::Conflict { key, .. }) => assert_eq!(key, b"e1"),
        r => panic!("a put into the range gave {r:?}"),
    }
    match overlapped.commit() {
        Err(Error::Conflict { key, .. }) => assert_eq!(key, b"x"),
        r => panic!("an overlapping range delete gave {r:?}"),
    }
    // "q" is not in "r".."xa": untouched.
    into.commit().unwrap();
    assert_eq!(db.get("a").unwrap(), None);
    assert!(db.get("e1").unwrap().is_some());
}
