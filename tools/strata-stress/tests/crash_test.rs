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
//! with no balance negative, SST ingestions are all or nothing, and
//! backups taken amid the writes verify and restore to a state within
//! what the expected state says they hold, a replica fed only by the
//! change feed equals the primary after every kill, and a read-only
//! reader refreshing beside the writer never sees a partial batch, and
//! repeats. See docs/testing.md.
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
    // Ingestions survived the kills as whole writes (in-flight ones whole
    // or absent), and backups taken amid the writes were verified after
    // kills, the newest restored and found within its bounds.
    assert!(field("ingested_keys") > 0, "{summary}");
    assert!(field("backups_verified") > 0, "{summary}");
    assert!(field("backup_restores") > 0, "{summary}");
    assert!(field("backup_keys_checked") > 0, "{summary}");
    // The change feed's replica equalled the primary after the kills,
    // with every keyspace compared at least once from the feed alone,
    // and the writers' follower threads applied batches across them.
    assert!(field("replica_keys") > 0, "{summary}");
    assert!(field("replica_full_compares") > 0, "{summary}");
    assert!(field("replica_followed") > 0, "{summary}");
    // Read-only readers refreshed beside the writers and audited the
    // bank and the tokens in their views.
    assert!(field("reader_refreshes") > 0, "{summary}");
    assert!(field("reader_bank_audits") > 0, "{summary}");
    assert!(field("reader_token_checks") > 0, "{summary}");
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
        // The op budget ends the run, not the default 10 s deadline: the
        // counts asserted below must not depend on the machine's load.
        .args(["--duration-secs", "600"])
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
        .args(["--duration-secs", "600"])
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
        .args(["--duration-secs", "600"])
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
        .args(["--duration-secs", "600"])
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

/// A number from a `name=value` word of `out`.
fn count_in(out: &str, name: &str) -> u64 {
    out.split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in: {out}"))
}

/// `strata-stress run` with ingestions and backups on, then `verify`.
fn run_ingesting_and_backing_up(d: &std::path::Path) -> String {
    let run = Command::new(env!("CARGO_BIN_EXE_strata-stress"))
        .args(["run", "--dir"])
        .arg(d)
        .args(["--duration-secs", "600"])
        .args(["--ops", "3000", "--threads", "4", "--keys", "300"])
        .args([
            "--seed",
            "5",
            "--ingest-one-in",
            "60",
            "--backup-one-in",
            "300",
        ])
        .args(["--backup-check-one-in", "2", "--flush-one-in", "300"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
}

/// Ingestions (one or two files, moved or copied, with range deletes or
/// not) and backups taken amid the workload's concurrent writes: every
/// read of an ingested key is exact while the run goes on, each backup
/// checked at once opens and equals a snapshot at its sequence number,
/// and `verify` then checks every backup kept, restores the newest, and
/// finds it within what the expected state says it must hold (issue 20).
#[test]
fn stress_run_ingests_and_backs_up_then_verify_restores() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("s");
    let stdout = run_ingesting_and_backing_up(&d);
    assert!(count_in(&stdout, "ingestions") >= 20, "{stdout}");
    assert!(count_in(&stdout, "ingestions_moved") > 0, "{stdout}");
    assert!(
        count_in(&stdout, "ingestions_range_deleting") > 0,
        "{stdout}"
    );
    assert!(
        count_in(&stdout, "ingested_files") > count_in(&stdout, "ingestions"),
        "some ingestions take two files: {stdout}"
    );
    assert!(count_in(&stdout, "backups") >= 5, "{stdout}");
    assert!(count_in(&stdout, "backups_checked") > 0, "{stdout}");
    // The staging directory holds nothing once each ingestion returned.
    assert_eq!(std::fs::read_dir(d.join("ingest")).unwrap().count(), 0);

    let out = verify(&d);
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{line}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Purged down to the newest two, each verified; the newest restored.
    assert_eq!(count_in(&line, "backups_listed"), 2, "{line}");
    assert_eq!(count_in(&line, "backup_restored"), 1, "{line}");
    assert_eq!(count_in(&line, "backup_keys_checked"), 300, "{line}");
    assert!(count_in(&line, "ingested_keys") > 0, "{line}");
    assert_eq!(count_in(&line, "backup_leftovers"), 0, "{line}");
}

/// What a kill in the middle of a backup, a purge or an ingestion leaves
/// (metadata being written, a private directory with no metadata, a
/// shared table no backup names, a table file being built or linked in)
/// breaks neither `verify` nor the next run: the backup engine's open
/// removes the backup's leftovers, the run unlinks the staging files.
/// A backup file damaged is reported by `verify`, naming it.
#[test]
fn leftovers_of_a_killed_backup_or_ingestion_break_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("s");
    run_ingesting_and_backing_up(&d);
    let backups = d.join("backups");
    std::fs::write(backups.join("meta/9.tmp"), b"strata-backup 1\nid 9\n").unwrap();
    std::fs::create_dir_all(backups.join("private/9")).unwrap();
    std::fs::write(backups.join("private/9/CURRENT"), b"MANIFEST-000001\n").unwrap();
    std::fs::write(backups.join("shared/000077.sst.tmp"), b"half a table").unwrap();
    std::fs::write(d.join("ingest/r9-t0-0-0.sst"), b"half a table").unwrap();
    let out = verify(&d);
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{line}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count_in(&line, "backup_leftovers"), 3, "{line}");
    assert_eq!(count_in(&line, "ingest_leftovers"), 1, "{line}");
    assert!(!backups.join("meta/9.tmp").exists());
    assert!(!backups.join("private/9").exists());
    assert!(!backups.join("shared/000077.sst.tmp").exists());
    // The next run removes the staging file and backs up again.
    let stdout = run_ingesting_and_backing_up(&d);
    assert!(count_in(&stdout, "backups") > 0, "{stdout}");
    assert!(!d.join("ingest/r9-t0-0-0.sst").exists());

    // A damaged table kept for the backups: verify names it.
    let shared = std::fs::read_dir(backups.join("shared"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let original = std::fs::read(&shared).unwrap();
    let mut data = original.clone();
    let at = data.len() / 2;
    data[at] ^= 0x40;
    std::fs::write(&shared, data).unwrap();
    let out = verify(&d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let name = shared.file_name().unwrap().to_string_lossy();
    assert!(
        stderr.contains("fails verify") && stderr.contains(name.as_ref()),
        "{stderr}"
    );
    std::fs::write(&shared, original).unwrap();

    // The newest backup's metadata gone (a backup that returned, lost):
    // refused. (Last: the engine's open then removes its files.)
    let newest = std::fs::read_dir(backups.join("meta"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.parse::<u32>().ok())
        .max()
        .unwrap();
    let meta = backups.join(format!("meta/{newest}"));
    std::fs::remove_file(&meta).unwrap();
    let out = verify(&d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("backup {newest} returned before the kill")),
        "{stderr}"
    );
}
