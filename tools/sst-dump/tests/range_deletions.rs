//! sst-dump on tables and logs holding range deletes: scans list the
//! fragments after the points (within the bounds), the raw dump shows the
//! `strata.range_del` block with each fragment's offset in the file, the
//! properties count them and close the key range with `)` or `+inf)`,
//! check counts their sequence numbers in the table's range, the manifest
//! shows exclusive and missing ends, and a WAL dump shows
//! `DELETE_RANGE 'a' .. 'c'` with its keyspace.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use strata::{Db, Options};

/// What one run printed and how it exited.
struct Run {
    code: i32,
    stdout: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs sst-dump on `path` with `args`.
fn dump(path: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_sst-dump"))
        .arg(format!("--file={}", path.display()))
        .args(args)
        .output()
        .expect("run sst-dump");
    Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
    }
}

/// A closed database (no compaction starts) with two L0 tables holding range
/// deletes, and a WAL holding two more:
/// - the older table: puts a..e (seq 1-5), flushed under a snapshot at 5
///   (so the table keeps the covered puts), `delete_range(b..d)` (6) and
///   `delete_range(c..)` (7): fragments `[b,c)@6 [c,d)@7,6 [d,+inf)@7`,
///   bounds `['a' .. +inf)`;
/// - the newer: put x (8), flushed under a snapshot at 8 (x is in the
///   deleted range), `delete_range(p..z)` (9): bounds `['p' .. 'z')`;
/// - the WAL: `delete_range(k1..k9)` in keyspace `ks`, `delete_prefix("")`
///   in the default one.
///
/// Returns the tables, older first.
fn build(dir: &Path) -> (PathBuf, PathBuf) {
    let options = Options {
        level0_file_num_compaction_trigger: 1000,
        level0_slowdown_writes_trigger: 1000,
        level0_stop_writes_trigger: 1000,
        ..Options::default()
    };
    let db = Db::open(dir, options).unwrap();
    for k in ["a", "b", "c", "d", "e"] {
        db.put(k, "v").unwrap();
    }
    // A flush leaves out the versions a range delete of their stripe
    // covers; this snapshot keeps the puts visible, so the table holds
    // them for the dump to list.
    let before_the_deletes = db.snapshot();
    db.delete_range("b".."d").unwrap();
    db.delete_range("c"..).unwrap();
    db.flush().unwrap();
    drop(before_the_deletes);
    db.put("x", "v").unwrap();
    let before_the_delete = db.snapshot();
    db.delete_range("p".."z").unwrap();
    db.flush().unwrap();
    drop(before_the_delete);
    let mut numbers: Vec<u64> = db.live_files().iter().map(|f| f.number).collect();
    numbers.sort_unstable();
    let ks = db.keyspace("ks").unwrap();
    ks.delete_range("k1".."k9").unwrap();
    db.delete_prefix("").unwrap();
    drop(ks);
    db.close().unwrap();
    let table = |n: u64| dir.join(format!("{n:06}.sst"));
    assert_eq!(numbers.len(), 2, "two L0 tables");
    (table(numbers[0]), table(numbers[1]))
}

const FRAGMENT_LINES: [&str; 4] = [
    "'b' .. 'c' @6 RANGE_DEL",
    "'c' .. 'd' @7 RANGE_DEL",
    "'c' .. 'd' @6 RANGE_DEL",
    "'d' .. +inf @7 RANGE_DEL",
];

#[test]
fn scan_lists_the_fragments_after_the_points_within_the_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let (older, _) = build(dir.path());
    let run = dump(&older, &["--command=scan"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let lines: Vec<&str> = run.stdout.lines().skip(1).collect();
    let points: Vec<String> = ["a", "b", "c", "d", "e"]
        .iter()
        .zip(1..)
        .map(|(k, seq)| format!("'{k}' seq:{seq}, type:1 => v"))
        .collect();
    let mut want: Vec<&str> = points.iter().map(String::as_str).collect();
    want.extend(FRAGMENT_LINES);
    assert_eq!(lines, want);

    // The bounds keep the fragments that hold a key within them.
    let fragments = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--command=scan"];
        all.extend_from_slice(args);
        dump(&older, &all)
            .stdout
            .lines()
            .filter(|l| l.ends_with("RANGE_DEL"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(fragments(&["--from=e"]), [FRAGMENT_LINES[3]]);
    assert_eq!(fragments(&["--to=c"]), [FRAGMENT_LINES[0]]);
    assert_eq!(fragments(&["--prefix=c"]), FRAGMENT_LINES[1..3]);
    assert_eq!(fragments(&["--from=a", "--to=b"]), Vec::<String>::new());

    let json = dump(&older, &["--command=scan", "--json"]).json();
    let r = &json["range_deletions"];
    assert_eq!(r.as_array().unwrap().len(), 4);
    assert_eq!(
        (&r[0]["start"], &r[0]["end"], &r[0]["seq"]),
        (&"b".into(), &"c".into(), &6.into())
    );
    assert!(r[3]["end"].is_null(), "no end: {r}");
}

#[test]
fn properties_count_the_fragments_and_close_the_key_range() {
    let dir = tempfile::tempdir().unwrap();
    let (older, newer) = build(dir.path());
    let run = dump(&older, &["--show_properties"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    for line in [
        "  # entries: 5\n",
        "  # range deletions: 4\n",
        // Aligned (the default), with range deletions: version 5.
        "  format version: 5\n",
        "  largest user key: 'e'\n",
        "  key range (range deletions included): ['a' .. +inf)\n",
        "  largest sequence number: 7\n",
    ] {
        assert!(run.stdout.contains(line), "{line}{}", run.stdout);
    }
    let run = dump(&newer, &["--show_properties"]);
    assert!(
        run.stdout
            .contains("  key range (range deletions included): ['p' .. 'z')\n"),
        "{}",
        run.stdout
    );
    let json = dump(&newer, &["--show_properties", "--json"]).json();
    let p = &json["table_info"]["properties"];
    assert_eq!(
        (&p["smallest_key"], &p["largest_key"]),
        (&"p".into(), &"z".into())
    );
    assert_eq!(p["largest_bound"], "excluded");
    assert_eq!(p["num_range_deletions"], 1);
}

/// Before check counted the tombstones' sequence numbers, a table whose
/// newest write was a range delete failed it: "sequence range: read
/// [1 .. 5], the properties block says [1 .. 7]".
#[test]
fn check_counts_the_fragments_in_the_sequence_range() {
    let dir = tempfile::tempdir().unwrap();
    let (older, newer) = build(dir.path());
    for table in [&older, &newer] {
        let run = dump(table, &["--command=check", "--verify_checksum"]);
        assert_eq!(run.code, 0, "{}", run.stdout);
    }
    let run = dump(&older, &["--command=check"]);
    assert!(
        run.stdout
            .contains("read 5 entries (0 deletions)\n4 range deletions\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn raw_shows_the_range_del_block_with_each_fragments_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (older, _) = build(dir.path());
    let run = dump(&older, &["--command=raw"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let text = std::fs::read_to_string(format!("{}_dump.txt", older.display())).unwrap();
    assert!(text.contains("Range Deletions Details:"), "{text}");
    assert!(text.contains("strata.range_del @ offset "), "{text}");
    let bytes = std::fs::read(&older).unwrap();
    let want = [
        ("b", 6, "'c'"),
        ("c", 7, "'d'"),
        ("c", 6, "'d'"),
        ("d", 7, "+inf (no end)"),
    ];
    for (start, seq, end) in want {
        let shown = format!(" '{start}' seq:{seq}, type:3 => {end}\n");
        let line = text
            .lines()
            .find(|l| format!("{l}\n").ends_with(&shown) && l.starts_with("  @"))
            .unwrap_or_else(|| panic!("no line ending {shown:?} in\n{text}"));
        // At that offset: the entry (restart interval 1: nothing shared),
        // its key's length (start and trailer) and its end's, then the start.
        let offset: usize = line[3..].split(' ').next().unwrap().parse().unwrap();
        let end_len = if end.starts_with('+') { 0 } else { 1 };
        assert_eq!(
            bytes[offset..offset + 4],
            [0, 9, end_len, start.as_bytes()[0]],
            "{line}"
        );
    }
    // raw never writes over a file: the JSON run writes a new dump.
    std::fs::remove_file(format!("{}_dump.txt", older.display())).unwrap();
    let json = dump(&older, &["--command=raw", "--json"]).json();
    let entries = json["range_del"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    assert!(entries.iter().all(|e| e["offset"].is_u64()), "{entries:?}");
    assert!(json["data_blocks"][0]["entries"][0].get("offset").is_none());
}

#[test]
fn the_manifest_shows_exclusive_and_missing_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (older, newer) = build(dir.path());
    let number = |p: &Path| -> u64 { p.file_stem().unwrap().to_str().unwrap().parse().unwrap() };
    let current = std::fs::read_to_string(dir.path().join("CURRENT")).unwrap();
    let run = dump(&dir.path().join(current.trim_end()), &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let line_of = |n: u64| -> &str {
        run.stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with(&format!("{n}:")))
            .unwrap_or_else(|| panic!("no table {n} in\n{}", run.stdout))
    };
    assert!(
        line_of(number(&older)).ends_with("[1 .. 7]['a' .. +inf)"),
        "{}",
        line_of(number(&older))
    );
    assert!(
        line_of(number(&newer)).ends_with("[8 .. 9]['p' .. 'z')"),
        "{}",
        line_of(number(&newer))
    );
}

#[test]
fn a_wal_dump_shows_range_deletes_with_their_keyspace_and_end() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let wal = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let run = dump(&wal, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout.contains(",DELETE_RANGE(ks) 'k1' .. 'k9'\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(",DELETE_RANGE '' .. +inf\n"),
        "{}",
        run.stdout
    );
    let json = dump(&wal, &["--json"]).json();
    let ops: Vec<&Value> = json["records"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["ops"].as_array().unwrap())
        .filter(|op| op["op"] == "DELETE_RANGE")
        .collect();
    assert_eq!(ops.len(), 2, "{json}");
    assert_eq!(
        (&ops[0]["key"], &ops[0]["end"]),
        (&"k1".into(), &"k9".into())
    );
    assert_eq!(ops[0]["keyspace_name"], "ks");
    assert!(ops[1]["end"].is_null(), "no end: {}", ops[1]);
}
