//! The blackbox crash test: `strata-stress crash` runs the stress tool in
//! a child process, kills it with SIGKILL at seed-chosen moments (during
//! writes, flushes, compactions and recovery alike), reopens and verifies
//! every key, range scans and batch atomicity against the expected state,
//! and repeats. Every acknowledged write must survive a kill, sync or not
//! (a killed process loses nothing the OS already has).
//!
//! `CRASH_TEST_CYCLES` (default 50) sets the number of kill cycles and
//! `CRASH_TEST_SEED` the seed (default: from the clock, printed, so a
//! failing run's kill points can be replayed). Long runs:
//! `strata-stress crash --dir /tmp/crash --duration 1h`.

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
        .args(["--keys", "3000", "--threads", "4"])
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
    let verified: u64 = summary
        .split_whitespace()
        .find_map(|w| w.strip_prefix("keys_verified=")?.parse().ok())
        .expect("keys_verified in the summary");
    assert!(verified > 0, "no key was read back: {summary}");
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
    assert!(String::from_utf8_lossy(&run.stdout).starts_with("run 1 ok:"));
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
