//! The blackbox crash test: `strata-stress crash` runs the stress tool in
//! a child process with options drawn for each cycle (tiny memtables,
//! compression on or off, values up to 1 MiB, the empty key, 1-8 threads,
//! sync and non-sync writes, range and prefix deletes), kills it with SIGKILL at seed-chosen moments
//! (during writes, flushes, compactions and recovery alike), checks before
//! reopening that the live WALs and L0 tables hold one unbroken sequence
//! of writes, then that the reopened database holds exactly that logged
//! prefix and every acknowledged write (sync or not: a killed process loses
//! nothing the OS already has), with range scans and batch atomicity, and
//! a bank of accounts that transactions transfer between keeps its total
//! with no balance negative, and repeats. See docs/testing.md.
//!
//! `CRASH_TEST_CYCLES` (default 50) sets the number of kill cycles and
//! `CRASH_TEST_SEED` the seed (default: from the clock, printed, so a
//! failing run's options and kill points can be replayed). Long runs:
//! `strata-stress crash --dir /tmp/crash --duration 1h`.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn crash_test_kill_cycles_lose_no_acknowledged_write() {
    let cycles: u64 = std::env::var("CRASH_TEST_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("CRASH_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        });
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strata-stress"))
        .args(["crash", "--dir"])
        .arg(dir.path().join("crash"))
        .args(["--seed", &seed.to_string()])
        .args(["--cycles", &cycles.to_string()])
        .args(["--kill-min-ms", "10", "--kill-max-ms", "1500"])
        .args(["--keys", "3000"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "crash test failed (replay with CRASH_TEST_SEED={seed}):\n{stdout}\n{stderr}"
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("crash test ok:"))
        .expect("a summary line");
    assert!(summary.contains(&format!("cycles={cycles} ")), "{summary}");
    let field = |name: &str| -> u64 {
        summary
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in the summary: {summary}"))
    };
    assert_eq!(field("sigkills"), cycles, "every child died of SIGKILL");
    assert!(
        field("keys_verified") > 0,
        "no key was read back: {summary}"
    );
    // Progress: every cycle but those killed during the open made writes.
    assert!(
        field("kills_before_first_write") < cycles,
        "no cycle wrote: {summary}"
    );
    assert!(field("min_cycle_key_writes") > 0, "{summary}");
    assert!(field("key_writes") > 0, "{summary}");
    // The sequence-number check had writes to check.
    assert!(field("logged_writes_in_sequence") > 0, "{summary}");
    assert!(field("logged_keys_applied") > 0, "{summary}");
    // Range deletes reached the logs, and each was checked applied.
    assert!(field("logged_range_deletes_applied") > 0, "{summary}");
    // The bank was audited after kills (total intact, no balance
    // negative), and transfers committed in transactions survived them.
    assert!(field("bank_audits") > 0, "{summary}");
    assert!(field("bank_transfers") > 0, "{summary}");
    // Merge counters were written, and every acknowledged write of them
    // was counted exactly once after each kill.
    assert!(field("counter_writes") > 0, "{summary}");
}

/// The stress tool's own checks: a run against a fresh directory, then
/// `--verify-only`, both succeed; a damaged value is reported, not missed.
#[test]
fn stress_run_then_verify_only() {
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_strata-stress");
    let d = dir.path().join("s");
    let run = Command::new(exe)
        .args(["run", "--dir"])
        .arg(&d)
        .args([
            "--ops",
            "3000",
            "--threads",
            "3",
            "--keys",
            "500",
            "--seed",
            "9",
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "first write acknowledged", "{stdout}");
    assert!(lines[1].starts_with("run 1 ok:"), "{stdout}");
    let verify = Command::new(exe)
        .args(["run", "--verify-only", "--dir"])
        .arg(&d)
        .args(["--keys", "500"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(stdout.contains("verify ok: keys=500"), "{stdout}");
    // The run's transfers were audited: the bank's total intact.
    assert!(stdout.contains(" bank_audited=1 "), "{stdout}");
    let run_line = String::from_utf8_lossy(&run.stdout);
    assert!(!run_line.contains(" transfers=0 "), "{run_line}");

    // A value the expected state does not allow must fail verification.
    {
        let db = strata::Db::open(d.join("db"), strata::Options::default()).unwrap();
        db.put(b"k00000007", b"not a value the workload wrote")
            .unwrap();
    }
    let verify = Command::new(exe)
        .args(["verify", "--dir"])
        .arg(&d)
        .args(["--keys", "500"])
        .output()
        .unwrap();
    assert!(!verify.status.success());
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(stderr.contains("key 7"), "{stderr}");
}

/// `strata-stress crash --dir D` on `d`, one short cycle.
fn crash_once(d: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strata-stress"))
        .args(["crash", "--dir"])
        .arg(d)
        .args([
            "--cycles",
            "1",
            "--kill-min-ms",
            "10",
            "--kill-max-ms",
            "50",
        ])
        .args(["--keys", "300", "--seed", "5"])
        .output()
        .unwrap()
}

/// A crash test that must be refused with `why`, leaving `keep` in place.
fn assert_crash_refused(d: &std::path::Path, why: &str, keep: &std::path::Path) {
    let out = crash_once(d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "crash ran on {}: {stderr}",
        d.display()
    );
    assert!(stderr.contains("refusing to delete"), "{stderr}");
    assert!(stderr.contains(why), "expected {why:?} in: {stderr}");
    assert!(keep.exists(), "{} was deleted", keep.display());
}

/// `crash` empties its directory first, but only what strata-stress made:
/// a directory without its marker, with a file it did not make, with a
/// database open in another process, or reached through a link is
/// refused; what it made is deleted.
#[test]
fn crash_deletes_only_what_strata_stress_made() {
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_strata-stress");
    let d = dir.path().join("s");
    let run = Command::new(exe)
        .args(["run", "--dir"])
        .arg(&d)
        .args(["--ops", "200", "--keys", "300"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(d.join("CREATED_BY_STRATA_STRESS").is_file());
    let current = d.join("db").join("CURRENT");

    let notes = d.join("db").join("notes.txt");
    std::fs::write(&notes, b"keep me").unwrap();
    assert_crash_refused(
        &d,
        "notes.txt, which strata-stress did not create",
        &current,
    );
    std::fs::remove_file(&notes).unwrap();

    let db = strata::Db::open(d.join("db"), strata::Options::default()).unwrap();
    assert_crash_refused(&d, "open in another process", &current);
    drop(db);

    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&d, &link).unwrap();
    assert_crash_refused(&link, "is a symbolic link", &current);

    let unmarked = dir.path().join("unmarked");
    std::fs::create_dir(&unmarked).unwrap();
    std::fs::write(unmarked.join("expected"), b"someone else's").unwrap();
    assert_crash_refused(
        &unmarked,
        "holds no CREATED_BY_STRATA_STRESS marker",
        &unmarked.join("expected"),
    );

    // What strata-stress made goes: a table no crash cycle could have
    // numbered so high is gone afterwards.
    let stale = d.join("db").join("999999.sst");
    std::fs::write(&stale, b"stale").unwrap();
    let out = crash_once(&d);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stale.exists());
    assert!(d.join("CREATED_BY_STRATA_STRESS").is_file());
}

/// `strata-stress run` on a fresh `--dir`, for the verify tests.
fn small_run(d: &std::path::Path) {
    let run = Command::new(env!("CARGO_BIN_EXE_strata-stress"))
        .args(["run", "--dir"])
        .arg(d)
        .args(["--ops", "300", "--keys", "300", "--threads", "2"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Rewrite a key the run left present with its own value (the expected
/// state still holds), first with `disable_wal` if asked, then logged.
/// With `disable_wal`, the directory is left as a kill -9 would leave it
/// (copied while the database is open: a clean close would flush the
/// unlogged write to a table and leave no hole).
fn rewrite_a_key(d: &std::path::Path, unlogged_first: bool) {
    let db = strata::Db::open(d.join("db"), strata::Options::default()).unwrap();
    let (key, value) = db.iter().next().unwrap().unwrap();
    if unlogged_first {
        let skip_wal = strata::WriteOptions {
            disable_wal: true,
            ..Default::default()
        };
        db.put_opt(&key, &value, &skip_wal).unwrap();
    }
    db.put(&key, &value).unwrap();
    if unlogged_first {
        let image = d.with_extension("killed");
        copy_tree(d, &image);
        drop(db);
        std::fs::remove_dir_all(d).unwrap();
        std::fs::rename(&image, d).unwrap();
    }
}

/// Copy a directory tree's regular files (what the page cache holds of a
/// live database: a kill -9 leaves exactly that).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn verify(d: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strata-stress"))
        .args(["verify", "--dir"])
        .arg(d)
        .args(["--keys", "300"])
        .output()
        .unwrap()
}

/// The verifier reads the live WALs before reopening: their writes must
/// continue the tables' sequence numbers with no gap. A write made with
/// `disable_wal` takes a number no WAL records, exactly what a lost record
/// of an in-flight write would look like, so the verifier must report it
/// (which is why the workload never skips the WAL).
#[test]
fn verify_finds_a_hole_in_the_logged_write_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let logged = dir.path().join("logged");
    small_run(&logged);
    rewrite_a_key(&logged, false);
    let out = verify(&logged);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("logged_writes=1 "), "{stdout}");

    let holed = dir.path().join("holed");
    small_run(&holed);
    rewrite_a_key(&holed, true);
    let out = verify(&holed);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("hole in the write sequence"), "{stderr}");
}

/// A child that ends by itself is a failure, never counted as a kill.
#[test]
fn crash_fails_when_the_child_exits_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strata-stress"))
        .args(["crash", "--dir"])
        .arg(dir.path().join("c"))
        .args([
            "--cycles",
            "1",
            "--fixed-options",
            "--max-write-buffer-number",
            "1",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("ended by itself (exit status: 1), not by SIGKILL"),
        "{stderr}"
    );
    assert!(stderr.contains("max_write_buffer_number"), "{stderr}");
}

/// Checkpoints taken in the middle of the stress workload's concurrent
/// writes, flushes, compactions and keyspace moves (to a directory and
/// through the stream) each open and hold exactly what a snapshot at
/// their sequence number reads, in every keyspace (issue 20); the run
/// fails on the first difference.
#[test]
fn stress_run_checkpoints_equal_their_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("s");
    let run = Command::new(env!("CARGO_BIN_EXE_strata-stress"))
        .args(["run", "--dir"])
        .arg(&d)
        .args(["--ops", "4000", "--threads", "4", "--keys", "800"])
        .args(["--seed", "21", "--checkpoint-one-in", "400"])
        .args(["--flush-one-in", "300", "--compact-one-in", "1000"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let checkpoints: u64 = stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("checkpoints=")?.parse().ok())
        .unwrap_or_else(|| panic!("no checkpoint count: {stdout}"));
    assert!(checkpoints >= 10, "too few checkpoints checked: {stdout}");
    // Each was deleted once checked.
    let left = std::fs::read_dir(d.join("checkpoints")).unwrap().count();
    assert_eq!(left, 0);
}
