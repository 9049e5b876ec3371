//! sst-dump on a table holding merge operands: the scan shows them with
//! type 2 (RocksDB's kTypeMerge), and the properties count them and name
//! the operator they were written for.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;
use strata::{Db, Options, UInt64Add};

#[test]
fn a_table_of_merge_operands_shows_them_and_their_operator() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        merge_operator: Some(Arc::new(UInt64Add)),
        ..Options::default()
    };
    let db = Db::open(dir.path(), options).unwrap();
    // A put of its own key: a flush merges operands onto a put of
    // theirs (docs/design/merge.md §4).
    db.put("c", 1u64.to_le_bytes()).unwrap();
    db.merge("a", 2u64.to_le_bytes()).unwrap();
    db.merge("b", 3u64.to_le_bytes()).unwrap();
    db.flush().unwrap();
    let number = db.live_files()[0].number;
    db.close().unwrap();
    let table = dir.path().join(format!("{number:06}.sst"));
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sst-dump"))
            .arg(format!("--file={}", table.display()))
            .args(args)
            .output()
            .expect("run sst-dump");
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let scan = run(&["--command=scan"]);
    assert!(scan.contains("'a' seq:2, type:2 =>"), "{scan}");
    assert!(scan.contains("'b' seq:3, type:2 =>"), "{scan}");
    assert!(scan.contains("'c' seq:1, type:1 =>"), "{scan}");
    let props = run(&["--show_properties"]);
    assert!(props.contains("  # merge operands: 2\n"), "{props}");
    assert!(
        props.contains("  merge operator name: uint64add\n"),
        "{props}"
    );
}

/// The WAL dump shows an expiring put's value without the 8-byte expiry
/// its record stores first, and the expiry beside it (text and JSON).
#[test]
fn the_wal_dump_shows_an_expiring_values_expiry_apart_from_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(strata::ManualClock::new(1_780_000_000_000_000));
    let options = Options {
        clock: Arc::clone(&clock) as Arc<dyn strata::Clock>,
        ..Options::default()
    };
    let db = Db::open(dir.path(), options).unwrap();
    db.put_with_ttl("k", "v1", std::time::Duration::from_secs(60))
        .unwrap();
    db.put("plain", "v2").unwrap();
    drop(db);
    let wal = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sst-dump"))
            .arg(format!("--file={}", wal.display()))
            .args(args)
            .output()
            .expect("run sst-dump");
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let expiry = 1_780_000_000_000_000u64 + 60_000_000;
    let text = run(&["--print_value"]);
    assert!(
        text.contains(&format!(
            "PUT_WITH_EXPIRY 'k' => 'v1' (expires at {expiry} us)"
        )),
        "{text}"
    );
    assert!(text.contains("PUT 'plain' => 'v2'\n"), "{text}");
    let text = run(&[]);
    assert!(
        text.contains(&format!("PUT_WITH_EXPIRY 'k' (expires at {expiry} us)")),
        "{text}"
    );
    let json = run(&["--print_value", "--json"]);
    assert!(
        json.contains(&format!("\"expires_at_micros\": {expiry},"))
            && json.contains("\"value\": \"v1\"\n"),
        "{json}"
    );
}
