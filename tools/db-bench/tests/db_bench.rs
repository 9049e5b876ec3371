//! The db-bench binary end to end: flag parsing, every benchmark's result
//! line in RocksDB's format, JSON output, --use_existing_db, repeats, the
//! time series and its plot. Each run uses a tiny --num on a temp dir.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn db_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_db-bench"))
        .args(args)
        .output()
        .expect("run db-bench")
}

/// Run and require success; stdout as text.
fn run_ok(args: &[&str]) -> String {
    let out = db_bench(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "db-bench {args:?} failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stdout
}

/// Run and require a usage error (exit 2); stderr as text.
fn run_usage_error(args: &[&str]) -> String {
    let out = db_bench(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "db-bench {args:?}: {stderr}");
    stderr
}

/// A result line, parsed strictly against db_bench's format:
/// `%-12s : %11.3f micros/op %ld ops/sec %.3f seconds %lu operations;%s%s`.
#[derive(Debug)]
struct ResultLine {
    name: String,
    micros_per_op: String,
    ops_per_sec: i64,
    seconds: String,
    operations: u64,
    extra: String,
}

fn parse_result_line(line: &str) -> Option<ResultLine> {
    let (name, rest) = line.split_once(" : ")?;
    if name.len() < 12 || name.trim_end() != name.trim() || name.starts_with(' ') {
        return None;
    }
    // %11.3f: right-aligned in at least 11 columns, three decimals.
    let (micros, rest) = rest.split_once(" micros/op ")?;
    if micros.len() < 11 || !is_fixed3(micros.trim_start()) {
        return None;
    }
    let (ops, rest) = rest.split_once(" ops/sec ")?;
    let (seconds, rest) = rest.split_once(" seconds ")?;
    if !is_fixed3(seconds) {
        return None;
    }
    let (operations, extra) = rest.split_once(" operations;")?;
    if !(extra.is_empty() || extra.starts_with(' ')) {
        return None;
    }
    Some(ResultLine {
        name: name.trim_end().to_string(),
        micros_per_op: micros.trim_start().to_string(),
        ops_per_sec: ops.parse().ok()?,
        seconds: seconds.to_string(),
        operations: operations.parse().ok()?,
        extra: extra.trim_start().to_string(),
    })
}

fn is_fixed3(s: &str) -> bool {
    matches!(s.split_once('.'), Some((i, f)) if !i.is_empty()
        && i.bytes().all(|b| b.is_ascii_digit())
        && f.len() == 3
        && f.bytes().all(|b| b.is_ascii_digit()))
}

fn result_lines(stdout: &str) -> Vec<ResultLine> {
    stdout.lines().filter_map(parse_result_line).collect()
}

fn line_for<'a>(lines: &'a [ResultLine], name: &str) -> &'a ResultLine {
    lines
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no result line for {name} in {lines:?}"))
}

fn path_arg(flag: &str, p: &Path) -> String {
    format!("--{flag}={}", p.display())
}

#[test]
fn every_benchmark_prints_a_rocksdb_result_line() {
    let with_line = [
        "fillseq",
        "fillrandom",
        "filluniquerandom",
        "fillbatch",
        "fillsync",
        "fill100K",
        "overwrite",
        "readseq",
        "readreverse",
        "readrandom",
        "readmissing",
        "readhot",
        "seekrandom",
        "seekordered",
        "deleteseq",
        "deleterandom",
        "deleterange",
        "readwhilewriting",
        "seekrandomwhilewriting",
        "readrandomwriterandom",
        "updaterandom",
        "compact",
        "verifychecksum",
        "checkpoint",
        "open",
        "crc32c",
        "compress",
        "uncompress",
    ];
    let meta = [
        "flush",
        "waitforcompaction",
        "stats",
        "levelstats",
        "sstables",
    ];
    // Refill before the reads so their "found" counts are exact.
    let list = format!(
        "{},fillseq,{},{}",
        with_line[..7].join(","),
        meta.join(","),
        with_line[7..].join(",")
    );
    let stdout = run_ok(&[
        &format!("--benchmarks={list}"),
        "--num=1000",
        "--seek_nexts=3",
        "--compression_type=zstd",
        "--seed=7",
    ]);
    let lines = result_lines(&stdout);
    for name in with_line {
        let l = line_for(&lines, name);
        assert!(l.operations >= 1, "{l:?}");
    }
    // The header a RocksDB user expects.
    for field in [
        "strata:     version ",
        "Date:       ",
        "Keys:       16 bytes each",
        "Values:     100 bytes each (50 bytes after compression)",
        "Entries:    1000",
        "RawSize:    ",
        "Compression: ZSTD",
        "DB path: [",
        "Durability: ",
    ] {
        assert!(stdout.contains(field), "header lacks {field:?}:\n{stdout}");
    }
    // db_bench's operation counts and messages.
    assert_eq!(line_for(&lines, "fillseq").operations, 1000);
    // A batch of 1000 fits the budget exactly: the batch was written.
    assert_eq!(line_for(&lines, "fillbatch").operations, 1000);
    assert!(line_for(&lines, "fillsync")
        .extra
        .ends_with(" MB/s (1 ops)"));
    assert!(line_for(&lines, "readrandom")
        .extra
        .ends_with("(1000 of 1000 found)"));
    assert!(line_for(&lines, "readmissing")
        .extra
        .ends_with("(0 of 1000 found)"));
    assert!(line_for(&lines, "seekrandom")
        .extra
        .ends_with("(1000 of 1000 found)"));
    assert_eq!(line_for(&lines, "readseq").operations, 1000);
    assert!(line_for(&lines, "crc32c").extra.ends_with("(4096 per op)"));
    assert!(line_for(&lines, "compress").extra.contains("(output: "));
    assert!(stdout.contains("waitforcompaction("), "{stdout}");
}

#[test]
fn json_records_carry_the_same_figures() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let stdout = run_ok(&[
        "--benchmarks=fillrandom,readrandom[X2]",
        "--num=500",
        &path_arg("json", &json),
    ]);
    let lines = result_lines(&stdout);
    let text = std::fs::read_to_string(&json).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(records.len(), 3, "{text}");
    assert_eq!(lines.len(), 3);
    for (rec, line) in records.iter().zip(&lines) {
        assert_eq!(rec["engine"], "strata");
        assert_eq!(rec["benchmark"].as_str(), Some(line.name.as_str()));
        assert_eq!(rec["ops_per_sec"].as_i64(), Some(line.ops_per_sec));
        assert_eq!(rec["operations"].as_u64(), Some(line.operations));
        let micros = rec["micros_per_op"].as_f64().unwrap();
        assert_eq!(format!("{micros:.3}"), line.micros_per_op);
        let secs = rec["seconds"].as_f64().unwrap();
        assert_eq!(format!("{secs:.3}"), line.seconds);
        let p99 = rec["latency_us"]["p99_us"].as_f64().unwrap();
        assert!(p99 > 0.0, "{rec}");
    }
    assert_eq!(records[2]["run"], 2);
    assert_eq!(records[2]["runs"], 2);
    // The message is the line's, without db_bench's trailing newline.
    let message = records[1]["message"].as_str().unwrap();
    assert!(message.ends_with(" found)"), "{message}");
    assert!(lines[1].extra.ends_with(message), "{:?}", lines[1]);
}

#[test]
fn use_existing_db_reads_what_a_previous_fill_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    run_ok(&["--benchmarks=fillseq", "--num=1000", &path_arg("db", &db)]);
    let stdout = run_ok(&[
        "--benchmarks=fillseq,readrandom,readseq",
        "--num=1000",
        "--use_existing_db=1",
        &path_arg("db", &db),
    ]);
    assert!(
        stdout.contains("fillseq      : skipped (--use_existing_db is true)"),
        "{stdout}"
    );
    let lines = result_lines(&stdout);
    assert!(line_for(&lines, "readrandom")
        .extra
        .ends_with("(1000 of 1000 found)"));
    assert_eq!(line_for(&lines, "readseq").operations, 1000);

    // Without a database there is nothing to use.
    let missing = dir.path().join("missing");
    let err = run_usage_error(&["--use_existing_db", &path_arg("db", &missing)]);
    assert!(err.contains("does not exist"), "{err}");
}

/// `--num_column_families=4`: key `k` goes to keyspace `k % 4`, as
/// RocksDB's db_bench picks the column family, and reads find every key
/// in its own keyspace.
/// The keys left in the database at `db`, by index.
fn key_indexes(db: &Path) -> Vec<u64> {
    let db = strata::Db::open(db, strata::Options::default()).unwrap();
    db.iter()
        .map(|entry| {
            let (key, _) = entry.unwrap();
            u64::from_be_bytes(key[..8].try_into().unwrap())
        })
        .collect()
}

/// db_bench's range tombstones in a fill: after every
/// --writes_per_range_tombstone writes, up to --max_num_range_tombstones,
/// a tombstone over --range_tombstone_width keys from the next key the
/// fill would write, which it then skips.
#[test]
fn a_fill_writes_range_tombstones_every_n_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let stdout = run_ok(&[
        "--benchmarks=fillseq",
        "--num=1000",
        "--writes_per_range_tombstone=100",
        "--range_tombstone_width=10",
        "--max_num_range_tombstones=3",
        &path_arg("db", &db),
    ]);
    let lines = result_lines(&stdout);
    let fill = line_for(&lines, "fillseq");
    assert_eq!(fill.operations, 1000);
    assert!(fill.extra.ends_with("(3 range tombstones)"), "{fill:?}");
    // Keys 100, 201 and 302 began tombstones; the keys after them were
    // written later, so the tombstones left them.
    let want: Vec<u64> = (0..1003).filter(|k| ![100, 201, 302].contains(k)).collect();
    assert_eq!(key_indexes(&db), want);
    // In batches, the tombstone goes into the batch.
    let stdout = run_ok(&[
        "--benchmarks=fillseq",
        "--num=1000",
        "--batch_size=50",
        "--writes_per_range_tombstone=100",
        "--max_num_range_tombstones=1",
        &path_arg("db", &db),
    ]);
    let lines = result_lines(&stdout);
    assert!(line_for(&lines, "fillseq")
        .extra
        .ends_with("(1 range tombstone)"));
    let want: Vec<u64> = (0..1001).filter(|k| *k != 100).collect();
    assert_eq!(key_indexes(&db), want);
}

#[test]
fn deleterange_deletes_the_keys_in_order_width_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let stdout = run_ok(&[
        "--benchmarks=fillseq,deleterange",
        "--num=1000",
        "--deletes=450",
        "--range_tombstone_width=100",
        &path_arg("db", &db),
    ]);
    let lines = result_lines(&stdout);
    assert_eq!(line_for(&lines, "deleterange").operations, 5);
    let want: Vec<u64> = (500..1000).collect();
    assert_eq!(key_indexes(&db), want);
}

/// The issue 17 space run keeps the first tenth of the keys: deleterange
/// starts after --writes_before_delete_range keys.
#[test]
fn deleterange_starts_after_writes_before_delete_range_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let stdout = run_ok(&[
        "--benchmarks=fillseq,deleterange",
        "--num=1000",
        "--deletes=450",
        "--range_tombstone_width=100",
        "--writes_before_delete_range=100",
        &path_arg("db", &db),
    ]);
    let lines = result_lines(&stdout);
    assert_eq!(line_for(&lines, "deleterange").operations, 5);
    let want: Vec<u64> = (0..100).chain(600..1000).collect();
    assert_eq!(key_indexes(&db), want);
}

#[test]
fn num_column_families_spreads_keys_over_keyspaces_by_key_modulo() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let stdout = run_ok(&[
        "--benchmarks=fillseq,readrandom,readseq,seekrandom",
        "--num=1000",
        "--num_column_families=4",
        "--seek_nexts=0",
        &path_arg("db", &db),
    ]);
    let lines = result_lines(&stdout);
    assert!(line_for(&lines, "readrandom")
        .extra
        .ends_with("(1000 of 1000 found)"));
    assert!(line_for(&lines, "seekrandom")
        .extra
        .ends_with("(1000 of 1000 found)"));
    assert_eq!(line_for(&lines, "readseq").operations, 1000);

    let db = strata::Db::open(&db, strata::Options::default()).unwrap();
    let names = db.keyspace_names();
    assert_eq!(
        names,
        [
            "default",
            "column_family_name_000001",
            "column_family_name_000002",
            "column_family_name_000003"
        ]
    );
    for (index, name) in names.iter().enumerate() {
        let keyspace = db.keyspace(name).unwrap();
        let keys: Vec<u64> = keyspace
            .iter()
            .map(|entry| {
                let (key, _) = entry.unwrap();
                u64::from_be_bytes(key[..8].try_into().unwrap())
            })
            .collect();
        let want: Vec<u64> = (0..1000).filter(|k| k % 4 == index as u64).collect();
        assert_eq!(keys, want, "keyspace {name}");
    }
}

#[test]
fn repeat_suffix_reports_average_and_median() {
    let stdout = run_ok(&["--benchmarks=fillseq,readrandom[X3-W1]", "--num=200"]);
    assert!(
        stdout.contains("Warming up benchmark by running 1 times"),
        "{stdout}"
    );
    assert!(stdout.contains("Running benchmark for 3 times"), "{stdout}");
    assert!(stdout.contains("readrandom [AVG 2 runs] : "), "{stdout}");
    assert!(stdout.contains("readrandom [AVG    3 runs] : "), "{stdout}");
    assert!(stdout.contains("readrandom [MEDIAN 3 runs] : "), "{stdout}");
    // 1 warm-up + 3 measured runs, each with its own line.
    let reads = result_lines(&stdout)
        .into_iter()
        .filter(|l| l.name == "readrandom")
        .count();
    assert_eq!(reads, 4);
}

#[test]
fn histogram_block_has_rocksdb_percentiles() {
    let stdout = run_ok(&[
        "--benchmarks=fillrandom,readrandom",
        "--num=500",
        "--histogram=1",
    ]);
    assert!(
        stdout.contains("Microseconds per write:\nCount: 500 Average: "),
        "{stdout}"
    );
    assert!(
        stdout.contains("Microseconds per read:\nCount: 500 Average: "),
        "{stdout}"
    );
    let pct = stdout
        .lines()
        .find(|l| l.starts_with("Percentiles: "))
        .expect("a Percentiles line");
    for p in ["P50: ", " P75: ", " P99: ", " P99.9: ", " P99.99: "] {
        assert!(pct.contains(p), "{pct}");
    }
}

#[test]
fn progress_goes_to_stderr_as_lines_when_not_a_terminal() {
    let out = db_bench(&["--benchmarks=fillseq", "--num=300"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("... finished 100 ops\n"), "{stderr}");
    assert!(stderr.contains("... finished 300 ops\n"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("finished"));
}

#[test]
fn threads_and_the_background_writer() {
    let stdout = run_ok(&[
        "--benchmarks=fillseq,readwhilewriting,fillrandom",
        "--num=400",
        "--threads=2",
    ]);
    let lines = result_lines(&stdout);
    // Two readers, each --num reads; the writer is not counted.
    assert_eq!(line_for(&lines, "readwhilewriting").operations, 800);
    // Writes are per thread too.
    assert_eq!(line_for(&lines, "fillrandom").operations, 800);
}

#[test]
fn report_file_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("report.csv");
    let svg = dir.path().join("plot.svg");
    run_ok(&[
        "--benchmarks=fillrandom",
        "--num=100000000",
        "--duration=2",
        "--report_interval_seconds=1",
        &path_arg("report_file", &csv),
        &path_arg("plot", &svg),
    ]);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut rows = text.lines();
    assert_eq!(
        rows.next(),
        Some("secs_elapsed,interval_qps,interval_p99_us,engine,benchmark")
    );
    let samples: Vec<Vec<&str>> = rows.map(|row| row.split(',').collect()).collect();
    assert!(samples.iter().all(|s| s.len() == 5), "{text}");
    // The reporter's clock starts before the database is open: a first
    // tick during a slow open has no engine and no writes yet, so look
    // for a sample taken while fillrandom ran.
    assert!(
        samples
            .iter()
            .any(|s| s[1].parse::<u64>().unwrap() > 0 && s[3..] == ["strata", "fillrandom"]),
        "{text}"
    );
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(
        plot.contains("<svg") && plot.contains("Throughput"),
        "{plot}"
    );
}

#[test]
fn bad_flags_are_clear_errors() {
    let e = run_usage_error(&["--valu_size=5"]);
    assert!(e.contains("similar argument exists: '--value_size'"), "{e}");
    let e = run_usage_error(&["--num=lots"]);
    assert!(e.contains("--num"), "{e}");
    let e = run_usage_error(&["--compression_type=snappy"]);
    assert!(e.contains("none") && e.contains("zstd"), "{e}");
    let e = run_usage_error(&["--benchmarks=fillseq,redrandom"]);
    assert!(e.contains("did you mean `readrandom`"), "{e}");
    let e = run_usage_error(&["--benchmarks=readrandom[Y2]"]);
    assert!(e.contains("readrandom[Y2]"), "{e}");
    let e = run_usage_error(&["--engine=leveldb"]);
    assert!(e.contains("unknown engine"), "{e}");
    let e = run_usage_error(&["--plot=x.svg"]);
    assert!(e.contains("--report_interval_seconds"), "{e}");
    #[cfg(not(feature = "rocksdb"))]
    {
        let e = run_usage_error(&["--engine=strata,rocksdb"]);
        assert!(
            e.contains("--features rocksdb"),
            "says how to build it: {e}"
        );
    }
}

#[test]
fn refuses_to_wipe_a_directory_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"keep me").unwrap();
    let e = run_usage_error(&[
        "--benchmarks=fillseq",
        "--num=10",
        &path_arg("db", dir.path()),
    ]);
    assert!(e.contains("refusing to delete"), "{e}");
    assert!(dir.path().join("notes.txt").exists());
}

/// A fill on a fresh `--db` path: db-bench creates and marks the directory.
fn fill_fresh(db: &Path) {
    run_ok(&["--benchmarks=fillrandom", "--num=1000", &path_arg("db", db)]);
    assert!(db.join("CREATED_BY_DB_BENCH").is_file());
    assert!(db.join("CURRENT").is_file());
}

/// A fill that must be refused with `why` in the message, deleting nothing.
fn assert_fill_refused(db: &Path, why: &str) {
    let before = listing(db);
    let e = run_usage_error(&["--benchmarks=fillseq", "--num=10", &path_arg("db", db)]);
    assert!(
        e.contains(&format!("refusing to delete {}", db.display())),
        "{e}"
    );
    assert!(e.contains(why), "expected {why:?} in: {e}");
    // Nothing is gone (an open database may have added a file meanwhile).
    let after = listing(db);
    for path in &before {
        assert!(after.contains(path), "a refused fill deleted {path}");
    }
}

/// Every path under `dir` (links not followed), sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
            out.push(e.path().display().to_string());
        }
    }
    out.sort();
    out
}

#[test]
fn a_fill_deletes_the_database_it_created_and_keeps_the_marker() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    fill_fresh(&db);
    // A table name strata uses but no version lists: the engine's file, so
    // the next fill deletes it with the rest.
    std::fs::write(db.join("000999.sst"), b"stale").unwrap();
    run_ok(&["--benchmarks=fillseq", "--num=10", &path_arg("db", &db)]);
    assert!(!db.join("000999.sst").exists());
    assert!(db.join("CREATED_BY_DB_BENCH").is_file());
    // Only the second fill's 10 keys are left of the first fill's 1000.
    let stdout = run_ok(&[
        "--benchmarks=readseq",
        "--num=1000",
        "--use_existing_db",
        &path_arg("db", &db),
    ]);
    assert_eq!(line_for(&result_lines(&stdout), "readseq").operations, 10);
}

#[test]
fn refuses_a_directory_holding_a_file_it_did_not_create() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    fill_fresh(&db);
    std::fs::write(db.join("notes.txt"), b"keep me").unwrap();
    assert_fill_refused(&db, "notes.txt, which db-bench did not create");
    // A file with a name the engine uses but of the wrong kind: refused too.
    std::fs::remove_file(db.join("notes.txt")).unwrap();
    std::fs::create_dir(db.join("000998.sst")).unwrap();
    assert_fill_refused(&db, "not the kind of file db-bench creates");
}

#[test]
fn refuses_a_database_it_did_not_create() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app-db");
    {
        let app = strata::Db::open(&db, strata::Options::default()).unwrap();
        app.put(b"precious", b"data").unwrap();
    }
    assert_fill_refused(&db, "holds no CREATED_BY_DB_BENCH marker");
    let app = strata::Db::open(&db, strata::Options::default()).unwrap();
    assert_eq!(app.get(b"precious").unwrap().as_deref(), Some(&b"data"[..]));
    drop(app);

    // A marker for another engine is no proof either.
    let other = dir.path().join("other");
    fill_fresh(&other);
    let marker = other.join("CREATED_BY_DB_BENCH");
    let text = std::fs::read_to_string(&marker).unwrap();
    std::fs::write(
        &marker,
        text.replace(
            "a strata database (--engine=strata)",
            "a RocksDB database (--engine=rocksdb)",
        ),
    )
    .unwrap();
    assert_fill_refused(
        &other,
        "made it for `a RocksDB database (--engine=rocksdb)`",
    );
}

#[test]
fn refuses_a_database_open_in_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    fill_fresh(&db);
    // strata (and fjall, sled) lock with flock(2).
    let open = strata::Db::open(&db, strata::Options::default()).unwrap();
    assert_fill_refused(&db, "open in another process");
    drop(open);
    // RocksDB locks with an fcntl(2) record lock.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(db.join("LOCK"))
        .unwrap();
    rustix::fs::fcntl_lock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    assert_fill_refused(&db, "fcntl record lock");
    drop(lock);
    run_ok(&["--benchmarks=fillseq", "--num=10", &path_arg("db", &db)]);
}

#[test]
fn refuses_symbolic_links() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    fill_fresh(&db);
    // --db naming a link to a database db-bench made.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&db, &link).unwrap();
    let e = run_usage_error(&["--benchmarks=fillseq", "--num=10", &path_arg("db", &link)]);
    assert!(e.contains("is a symbolic link"), "{e}");
    assert!(db.join("CURRENT").is_file());

    // A link inside it, even under a name the engine uses.
    let precious = dir.path().join("precious.txt");
    std::fs::write(&precious, b"keep me").unwrap();
    std::os::unix::fs::symlink(&precious, db.join("000997.sst")).unwrap();
    assert_fill_refused(&db, "is a symbolic link");
    assert_eq!(std::fs::read(&precious).unwrap(), b"keep me");
}

/// The peers run the same loops; built only with their features
/// (`cargo test --features fjall,sled --test db_bench`).
#[cfg(any(feature = "fjall", feature = "sled", feature = "rocksdb"))]
#[test]
fn peers_run_the_same_benchmarks_and_a_ratio_table_ends_the_run() {
    let mut engines = vec!["strata"];
    if cfg!(feature = "rocksdb") {
        engines.push("rocksdb");
    }
    if cfg!(feature = "fjall") {
        engines.push("fjall");
    }
    if cfg!(feature = "sled") {
        engines.push("sled");
    }
    let stdout = run_ok(&[
        &format!("--engine={}", engines.join(",")),
        "--benchmarks=fillseq,readrandom,seekrandom,fillbatch,deleterandom,compact,readseq",
        "--num=500",
        "--seed=3",
    ]);
    let lines = result_lines(&stdout);
    let reads: Vec<_> = lines.iter().filter(|l| l.name == "readrandom").collect();
    assert_eq!(reads.len(), engines.len());
    for r in reads {
        assert!(r.extra.ends_with("(500 of 500 found)"), "{r:?}");
    }
    assert!(stdout.contains("Comparison: ops/sec"), "{stdout}");
    for peer in &engines[1..] {
        assert!(stdout.contains(&format!("strata/{peer}")), "{stdout}");
    }
}

/// randomtransaction on 4 threads: every committed transaction adds the
/// same to one key of each set, so the sets' sums agree (the check
/// db-bench runs after it, RocksDB's `RandomTransactionVerify`), on every
/// engine compiled in.
#[test]
fn randomtransaction_keeps_every_set_summing_the_same() {
    let mut engines = vec!["strata"];
    if cfg!(feature = "rocksdb") {
        engines.push("rocksdb");
    }
    if cfg!(feature = "fjall") {
        engines.push("fjall");
    }
    let stdout = run_ok(&[
        &format!("--engine={}", engines.join(",")),
        "--benchmarks=randomtransaction",
        "--optimistic_transaction_db",
        "--transaction_sets=3",
        "--num=50",
        "--reads=300",
        "--threads=4",
        "--seed=5",
    ]);
    let lines = result_lines(&stdout);
    let runs: Vec<_> = lines
        .iter()
        .filter(|l| l.name == "randomtransaction")
        .collect();
    assert_eq!(runs.len(), engines.len(), "{stdout}");
    for r in runs {
        assert_eq!(r.operations, 1200, "{r:?}");
    }
    let verified: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("randomtransaction verified: 3 sets each sum to "))
        .collect();
    assert_eq!(verified.len(), engines.len(), "{stdout}");
    for line in verified {
        let sum: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        // At least one transaction committed, and each adds 1..=100.
        assert!(sum > 0, "{line}");
    }
}

/// mergerandom with uint64add: every merge is an increment of 1, so the
/// counters sum to the merges made, one by one or in batches.
#[test]
fn mergerandom_with_uint64add_counts_every_merge() {
    for batch in ["1", "10"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let stdout = run_ok(&[
            "--benchmarks=mergerandom",
            "--merge_operator=uint64add",
            "--num=100",
            "--writes=1000",
            &format!("--batch_size={batch}"),
            &path_arg("db", &db),
        ]);
        let lines = result_lines(&stdout);
        assert_eq!(line_for(&lines, "mergerandom").operations, 1000);
        let options = strata::Options {
            merge_operator: Some(std::sync::Arc::new(strata::UInt64Add)),
            ..strata::Options::default()
        };
        let db = strata::Db::open(&db, options).unwrap();
        let sum: u64 = db
            .iter()
            .map(|entry| u64::from_le_bytes(entry.unwrap().1[..].try_into().unwrap()))
            .sum();
        assert_eq!(sum, 1000, "batch size {batch}");
    }
}
