//! `inline_background_work`: no background threads, so a run driven from
//! one thread is deterministic: the same operations give the same files,
//! byte for byte, and the same filesystem operation counts.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::BTreeMap;
use strata::fs::{FileSystem, MemFileSystem};
use strata::{Db, Options, WriteOptions};

fn run() -> (BTreeMap<String, Vec<u8>>, String) {
    let fs = MemFileSystem::new();
    let opts = Options {
        inline_background_work: true,
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), opts).unwrap();
    for i in 0..20_000usize {
        let k = key(i * 7919 % 5000);
        if i % 11 == 0 {
            db.delete(&k).unwrap();
        } else {
            let sync = i % 97 == 0;
            db.put_opt(
                &k,
                value(i, 0),
                &WriteOptions {
                    sync,
                    ..Default::default()
                },
            )
            .unwrap();
        }
    }
    db.run_background_work().unwrap();
    assert!(
        db.live_files().iter().any(|f| f.level > 0),
        "no compaction ran"
    );
    db.check_invariants().unwrap();
    drop(db);
    let mut files = BTreeMap::new();
    for name in fs.list(&mem_dir()).unwrap() {
        // The creation time in table properties is the only wall-clock
        // input; compare everything else.
        if !name.ends_with(".sst") {
            files.insert(
                name.clone(),
                fs.read(&mem_dir().join(&name)).unwrap().to_vec(),
            );
        } else {
            files.insert(name.clone(), Vec::new());
        }
    }
    (files, format!("{:?}", fs.op_counts()))
}

#[test]
fn the_same_operations_give_the_same_files_and_operations() {
    let (files_a, ops_a) = run();
    let (files_b, ops_b) = run();
    assert_eq!(
        files_a.keys().collect::<Vec<_>>(),
        files_b.keys().collect::<Vec<_>>()
    );
    assert_eq!(files_a, files_b);
    assert_eq!(ops_a, ops_b);
}
