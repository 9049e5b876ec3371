//! Peak memory of installing a snapshot on a follower.
//!
//! ```text
//! install-memory make <dir> <megabytes>   # a state machine of about that many MB
//!                                         # of values, and a snapshot of it
//! install-memory install <dir>            # install it into a fresh node
//! ```
//!
//! `install` prints the process's peak resident set (`VmHWM` in
//! `/proc/self/status`) before the install (the runtime, an empty
//! database) and after it, and checks the follower holds every key. The
//! two steps are separate processes, so the peak is the install's alone.

#![allow(clippy::result_large_err)]

use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder};
use std::path::Path;
use strata::{Db, Options};
use strata_raft::{Request, TypeConfig};

/// Bytes of each value.
const VALUE_BYTES: usize = 1000;

fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

fn key(i: u64) -> String {
    format!("key{i:010}")
}

async fn make(dir: &Path, megabytes: u64) {
    let db = Db::open(dir.join("leader-db"), Options::default()).expect("open the leader");
    let (_log, mut sm) = strata_raft::open(&db, dir.join("leader-snapshots")).expect("open");
    let count = megabytes * (1 << 20) / VALUE_BYTES as u64;
    let value = "v".repeat(VALUE_BYTES);
    let mut index = 0;
    while index < count {
        let entries: Vec<Entry<TypeConfig>> = (index..count.min(index + 1000))
            .map(|i| Entry {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), i + 1),
                payload: EntryPayload::Normal(Request::Set {
                    key: key(i),
                    value: value.clone(),
                }),
            })
            .collect();
        index += entries.len() as u64;
        sm.apply(entries).await.expect("apply");
    }
    let snapshot = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build the snapshot");
    println!(
        "made {count} keys of {VALUE_BYTES} bytes; snapshot {}",
        snapshot.meta
    );
}

async fn install(dir: &Path) {
    // The snapshot, found through a store over an empty database.
    let empty = Db::open(dir.join("empty-db"), Options::default()).expect("open");
    let (_log, mut source) = strata_raft::open(&empty, dir.join("leader-snapshots")).expect("open");
    let snapshot = source
        .get_current_snapshot()
        .await
        .expect("current snapshot")
        .expect("a snapshot: run make first");
    let follower_dir = dir.join(format!("follower-{}", std::process::id()));
    let db = Db::open(follower_dir.join("db"), Options::default()).expect("open the follower");
    let (_log, mut sm) = strata_raft::open(&db, follower_dir.join("snapshots")).expect("open");
    let before = peak_kib();
    let start = std::time::Instant::now();
    sm.install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .expect("install");
    let took = start.elapsed();
    let after = peak_kib();
    let keys = sm.entries().expect("scan").len();
    println!(
        "installed {} ({keys} keys) in {:.1} s; peak RSS {} MiB before, {} MiB after (+{} MiB)",
        snapshot.meta,
        took.as_secs_f64(),
        before / 1024,
        after / 1024,
        (after - before) / 1024
    );
    drop((sm, db));
    std::fs::remove_dir_all(&follower_dir).expect("remove the follower");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    match args.get(1..).unwrap_or_default() {
        [cmd, dir, mb] if cmd == "make" => {
            let mb = mb.parse().expect("megabytes");
            runtime.block_on(make(Path::new(dir), mb));
        }
        [cmd, dir] if cmd == "install" => runtime.block_on(install(Path::new(dir))),
        _ => {
            eprintln!("usage: install-memory make <dir> <megabytes> | install <dir>");
            std::process::exit(2);
        }
    }
}
