//! A node loses power at every step of applying a batch of entries and
//! then purging the log (a synced write, as a purge after a snapshot of
//! the applied entries is): the n-th filesystem operation crashes the
//! machine, for every n until the purge completes, under each way
//! strata's in-memory filesystem can treat unsynced data. After the
//! reboot the state machine must equal exactly the entries up to its
//! recovered last applied id (none applied twice, none skipped), that id
//! must be one of the batch's (or the one before it), a purge that
//! returned `Ok` after the apply must leave the whole batch recovered
//! (the applies are not synced: a later synced write makes them durable,
//! one WAL), and re-applying the rest of the batch, as openraft does from
//! its log, must give the state of the whole batch.

#![allow(clippy::result_large_err)]

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::RaftSnapshotBuilder;
use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, StoredMembership,
};
use std::collections::{BTreeMap, BTreeSet};
use strata::fs::{MemFileSystem, UnsyncedData};
use strata_raft::{Request, TypeConfig};

/// Entries applied (and made durable by a purge) before the batch under
/// test.
const BEFORE: u64 = 4;
/// Entries in the batch under test.
const BATCH: u64 = 12;

fn log_id(index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(1 + index / 8, 1), index)
}

/// Entry `index`: mostly sets (each to a value naming the entry, over
/// few keys, so every prefix of the log leaves a different map), some
/// deletes, batches (a set, a delete and two sets, one of them
/// overwriting the first: order inside a batch matters), a blank and a
/// membership change.
fn entry(index: u64) -> Entry<TypeConfig> {
    let payload = match index % 7 {
        3 => EntryPayload::Normal(Request::Delete {
            key: format!("k{}", index % 4),
        }),
        4 => EntryPayload::Normal(Request::Batch(vec![
            Request::Set {
                key: format!("k{}", index % 4),
                value: format!("v{index}a"),
            },
            Request::Delete {
                key: format!("k{}", (index + 1) % 4),
            },
            Request::Set {
                key: format!("k{}", (index + 2) % 4),
                value: format!("v{index}b"),
            },
            Request::Set {
                key: format!("k{}", index % 4),
                value: format!("v{index}"),
            },
        ])),
        5 => EntryPayload::Blank,
        6 => EntryPayload::Membership(Membership::new(vec![BTreeSet::from([1, 2, 2 + index])], ())),
        _ => EntryPayload::Normal(Request::Set {
            key: format!("k{}", index % 4),
            value: format!("v{index}"),
        }),
    };
    Entry {
        log_id: log_id(index),
        payload,
    }
}

/// The map and membership after applying entries `1..=last`.
fn model(last: u64) -> (Vec<(String, String)>, StoredMembership<u64, BasicNode>) {
    let mut map = BTreeMap::new();
    let mut membership = StoredMembership::default();
    for index in 1..=last {
        match entry(index).payload {
            EntryPayload::Normal(request) => model_request(&mut map, request),
            EntryPayload::Blank => {}
            EntryPayload::Membership(m) => {
                membership = StoredMembership::new(Some(log_id(index)), m);
            }
        }
    }
    (map.into_iter().collect(), membership)
}

/// `request`'s effect on the model map.
fn model_request(map: &mut BTreeMap<String, String>, request: Request) {
    match request {
        Request::Set { key, value } => {
            map.insert(key, value);
        }
        Request::Delete { key } => {
            map.remove(&key);
        }
        Request::Batch(requests) => {
            for request in requests {
                model_request(map, request);
            }
        }
    }
}

#[path = "support/stores.rs"]
mod stores;
use stores::{open, runtime};

/// One case: crash at the `crash_at`-th filesystem operation of the
/// apply and the purge after it (`None`: no crash), lose power keeping
/// unsynced data as `mode` says, reopen and check. Returns whether the
/// purge finished before the crash, and the index the state machine
/// recovered to.
fn crash_while_applying(crash_at: Option<u64>, mode: UnsyncedData) -> (bool, u64) {
    let rt = runtime();
    let fs = MemFileSystem::new();
    let snapshots = tempfile::tempdir().expect("snapshot directory");
    let (mut log, mut sm) = open(&fs, snapshots.path());
    rt.block_on(sm.apply((1..=BEFORE).map(entry)))
        .expect("apply the entries before the batch");
    rt.block_on(log.purge(log_id(BEFORE)))
        .expect("purge, syncing the entries before the batch");

    if let Some(n) = crash_at {
        fs.crash_after(n);
    }
    // The database's own threads count operations too (the spare WAL an
    // open makes): the crash may be one of theirs, after a call returned.
    // A call fails only once the machine crashed, and one that returned
    // `Ok` did every operation of its own before the crash (the crash
    // fails its operation and every later one), so its effect must stay.
    let applied = rt.block_on(sm.apply((BEFORE + 1..=BEFORE + BATCH).map(entry)));
    assert!(
        applied.is_ok() || fs.is_crashed(),
        "crash at op {crash_at:?}: apply gave {applied:?} with the machine up"
    );
    let purged = applied.is_ok() && {
        let purged = rt.block_on(log.purge(log_id(BEFORE + BATCH)));
        assert!(
            purged.is_ok() || fs.is_crashed(),
            "crash at op {crash_at:?}: purge gave {purged:?} with the machine up"
        );
        purged.is_ok()
    };
    // The last case: no crash came before the end.
    let finished = purged && !fs.is_crashed();
    fs.crash();
    drop((log, sm));
    fs.power_loss(mode);

    let (_log, mut sm) = open(&fs, snapshots.path());
    let (last_applied, membership) = rt.block_on(sm.applied_state()).expect("applied state");
    let last = last_applied
        .expect("the entries before the batch were made durable by the purge")
        .index;
    let case = format!("crash at op {crash_at:?}, {mode:?}: recovered up to {last}");
    assert!(
        (BEFORE..=BEFORE + BATCH).contains(&last),
        "{case}: not an entry of the batch nor the one before"
    );
    assert_eq!(last_applied, Some(log_id(last)), "{case}: a different term");
    if purged {
        assert_eq!(
            last,
            BEFORE + BATCH,
            "{case}: a synced purge returned Ok after the apply, entries lost"
        );
    }
    let (map, expected_membership) = model(last);
    assert_eq!(sm.entries().expect("scan"), map, "{case}: map");
    assert_eq!(membership, expected_membership, "{case}: membership");

    // openraft re-applies from its log what the state machine lacks.
    rt.block_on(sm.apply((last + 1..=BEFORE + BATCH).map(entry)))
        .expect("re-apply the rest");
    let (map, expected_membership) = model(BEFORE + BATCH);
    assert_eq!(
        sm.entries().expect("scan"),
        map,
        "{case}: map after re-apply"
    );
    let (last_applied, membership) = rt.block_on(sm.applied_state()).expect("applied state");
    assert_eq!(last_applied, Some(log_id(BEFORE + BATCH)), "{case}");
    assert_eq!(membership, expected_membership, "{case}");
    (finished, last)
}

#[test]
fn a_crash_at_every_step_of_applying_a_batch_recovers_a_prefix_of_it() {
    let mut modes = vec![UnsyncedData::Drop];
    for seed in 0..8 {
        modes.push(UnsyncedData::KeepRandomPrefix(seed));
        modes.push(UnsyncedData::KeepRandomPages(seed));
    }
    let mut recovered = BTreeSet::new();
    for mode in modes {
        // Without a crash at all.
        assert_eq!(crash_while_applying(None, mode), (true, BEFORE + BATCH));
        let mut crash_at = 1;
        loop {
            let (finished, last) = crash_while_applying(Some(crash_at), mode);
            recovered.insert(last);
            if finished {
                break;
            }
            crash_at += 1;
            assert!(
                crash_at < 10_000,
                "{mode:?}: apply and purge never finished"
            );
        }
        assert!(
            crash_at > 1,
            "{mode:?}: apply and purge did no filesystem operation"
        );
    }
    eprintln!("indexes recovered to: {recovered:?}");
    // Torn WALs kept some of the batch's unsynced entries: the test saw
    // recoveries to the middle of the batch, not only to its ends.
    assert!(
        recovered.iter().any(|&i| BEFORE < i && i < BEFORE + BATCH),
        "no crash recovered part of the batch: {recovered:?}"
    );
}

/// A snapshot is built from applies that were not synced: it syncs the
/// WAL before its file is published, so after a power loss that drops
/// every unsynced byte the current snapshot is not newer than the
/// recovered state machine (openraft's restart requires it).
#[test]
fn a_published_snapshot_is_never_newer_than_the_recovered_state_machine() {
    let rt = runtime();
    let fs = MemFileSystem::new();
    let snapshots = tempfile::tempdir().expect("snapshot directory");
    let (log, mut sm) = open(&fs, snapshots.path());
    rt.block_on(sm.apply((1..=BEFORE + BATCH).map(entry)))
        .expect("apply");
    let snapshot = rt
        .block_on(async { sm.get_snapshot_builder().await.build_snapshot().await })
        .expect("build a snapshot");
    fs.crash();
    drop((log, sm));
    fs.power_loss(UnsyncedData::Drop);

    let (_log, mut sm) = open(&fs, snapshots.path());
    let (last_applied, _) = rt.block_on(sm.applied_state()).expect("applied state");
    let current = rt
        .block_on(sm.get_current_snapshot())
        .expect("current snapshot")
        .expect("the published snapshot survives");
    assert_eq!(current.meta, snapshot.meta);
    assert!(
        current.meta.last_log_id <= last_applied,
        "snapshot {} is newer than the state machine, applied up to {last_applied:?}",
        current.meta
    );
}
