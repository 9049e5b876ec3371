//! The blackbox crash test (RocksDB's db_crashtest): run the stress tool
//! in a child process with options drawn for this cycle, kill it with
//! SIGKILL at a seed-chosen moment, verify with `verify`, and repeat.
//!
//! Most cycles wait for the child to report its first acknowledged write
//! (a line on its stdout: synchronisation, not a sleep), then let it run
//! for the seed-chosen delay before the kill, so every such cycle makes
//! progress and dies in the middle of writes, flushes and compactions. One
//! cycle in eight instead kills within 100 ms of the spawn, so some kills
//! land in the open itself (recovery, the new WAL and MANIFEST); a cycle of
//! that kind that made no write is counted, as explained. The kill delay
//! is a kill point, not synchronisation.
//!
//! A cycle fails if the child exits before it is killed (a wrong read, a
//! panic, an error), if it did not die of SIGKILL, if it made no write in
//! [`FIRST_WRITE_WAIT`] (a hang), if verification fails, or if the expected
//! state shows no new write after a cycle whose child reported one.

use crate::expected::AnyError;
use crate::flags::StressFlags;
use crate::rng::Rng;
use crate::workload::FIRST_WRITE_LINE;
use std::io::BufRead as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a child may take to open the database and acknowledge its
/// first write before the cycle fails as a hang. Recovery of the largest
/// memtables takes well under a second; this only bounds a stuck child.
pub const FIRST_WRITE_WAIT: Duration = Duration::from_secs(120);

/// Kills timed from the spawn come within this many milliseconds: while
/// the child opens the database (recovery included) or just after.
const SPAWN_KILL_MAX_MS: u64 = 100;

/// Unix's SIGKILL.
const SIGKILL: i32 = 9;

#[derive(Debug, Clone)]
pub struct CrashTest {
    pub dir: PathBuf,
    pub seed: u64,
    /// Stop after this many kill cycles, or
    pub cycles: Option<u64>,
    /// after this long (whichever comes first).
    pub duration: Option<Duration>,
    pub kill_min_ms: u64,
    pub kill_max_ms: u64,
    /// Keys in the key space (fixed when the expected state is created).
    pub keys: u32,
    /// The flags of every cycle, if given (`--fixed-options`); otherwise
    /// each cycle draws its own from the seed.
    pub fixed: Option<StressFlags>,
}

#[derive(Debug, Default)]
pub struct Totals {
    pub cycles: u64,
    pub killed: u64,
    /// Cycles killed before their first acknowledged write (all of them
    /// kills timed from the spawn: during the open or recovery).
    pub kills_before_first_write: u64,
    pub stray_tables: u64,
    pub kills_with_strays: u64,
    /// Cycles whose database held blob files at the verify.
    pub cycles_with_blob_files: u64,
    pub pending_new: u64,
    pub pending_old: u64,
    pub pending_batches: u64,
    /// Keys read back and compared, and range scans compared, over all
    /// verifications (each of which passed: any lost or wrong read ends
    /// the run with an error).
    pub keys_verified: u64,
    pub range_scans: u64,
    /// Acknowledged key writes made by the children.
    pub key_writes: u64,
    /// Fewest key writes a cycle with a reported write made.
    pub min_cycle_writes: Option<u64>,
    /// Writes in the live WALs checked to be one unbroken sequence and
    /// applied exactly on reopen; keys so checked; L0 tables checked.
    pub logged_writes: u64,
    pub logged_keys: u64,
    pub l0_tables: u64,
    /// Range deletes in the live WALs, each checked applied on reopen.
    pub logged_range_deletes: u64,
    /// In-flight batches found in the log, each present after recovery.
    pub in_flight_logged: u64,
    /// Tokens found in exactly one of the two move keyspaces, over all
    /// verifications, and the most moves seen (a count of the moves that
    /// survived, since every run moves them further).
    pub tokens_verified: u64,
    pub token_moves: u64,
    /// Verifications that audited the bank (total intact, no balance
    /// negative), and the most transfers seen to survive.
    pub bank_audits: u64,
    pub bank_transfers: u64,
    /// Verifications that opened with `Options::default()`.
    pub default_option_opens: u64,
    /// Merge counters' writes acknowledged and checked (the last cycle's
    /// count: they accumulate), and in-flight ones found after or before.
    pub counter_writes: u64,
    pub counters_pending_new: u64,
    pub counters_pending_old: u64,
    /// Ingestions in flight at a kill, and those found whole (the rest
    /// absent whole); the most keys seen whose last write was an
    /// ingestion; staging files kills left.
    pub in_flight_ingestions: u64,
    pub in_flight_ingestions_new: u64,
    /// In-flight ingestions the MANIFEST named before the reopen (each
    /// then found whole; and none it did not name found).
    pub in_flight_ingestions_in_manifest: u64,
    pub ingested_keys: u64,
    pub ingest_leftovers: u64,
    /// Ingestions into fresh ranges found whole (the most in a cycle:
    /// they accumulate), and those in flight at a kill found whole or
    /// absent.
    pub fresh_whole: u64,
    pub fresh_in_flight_new: u64,
    pub fresh_in_flight_old: u64,
    /// Backups verified after kills, newest ones restored and checked
    /// (and their keys), those whose bounds the kill cut short, and what
    /// interrupted backups left for the engine's open to remove.
    pub backups_verified: u64,
    pub backup_restores: u64,
    pub backup_keys_checked: u64,
    pub backup_bounds_from_kill: u64,
    pub backup_leftovers: u64,
    pub kills_during_backup: u64,
    /// The change feed's replica (`replica.rs`): keys compared equal with
    /// the primary over all verifications, verifications that compared
    /// every keyspace (no ingestion gap since the last copy) and that
    /// copied the ingestion targets, the most feed batches the writers'
    /// follower threads applied, and ingestion gaps read past.
    pub replica_keys: u64,
    pub replica_full_compares: u64,
    pub replica_copies: u64,
    pub replica_followed: u64,
    pub replica_gaps: u64,
    /// The read-only reader processes (`reader.rs`): cycles that ran one,
    /// their refreshes, and the views in which they audited the bank and
    /// located the tokens.
    pub reader_cycles: u64,
    pub reader_refreshes: u64,
    pub reader_refresh_retries: u64,
    pub reader_bank_audits: u64,
    pub reader_token_checks: u64,
}

/// How long a reader may take to stop once told (one refresh and check).
const READER_STOP_WAIT: Duration = Duration::from_secs(60);

/// A `strata-stress read` process beside the writer; killed if dropped
/// unstopped (a failing cycle returns early).
struct ReaderChild {
    child: Child,
    stdout: Option<std::thread::JoinHandle<String>>,
    log: PathBuf,
}

impl ReaderChild {
    fn spawn(exe: &Path, t: &CrashTest, flags: &StressFlags) -> Result<ReaderChild, AnyError> {
        let log = t.dir.join("reader.log");
        let mut child = Command::new(exe)
            .arg("read")
            .arg("--dir")
            .arg(&t.dir)
            .arg("--keys")
            .arg(t.keys.to_string())
            .args(flags.args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let mut out = child.stdout.take().ok_or("the reader has no stdout")?;
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut out, &mut s);
            s
        });
        Ok(ReaderChild {
            child,
            stdout: Some(stdout),
            log,
        })
    }

    /// Close its stdin (it finishes its check and exits) and return its
    /// `reader ok:` line, or its failure.
    fn stop(mut self) -> Result<String, AnyError> {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + READER_STOP_WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the read-only reader did not stop within {READER_STOP_WAIT:?}:\n{}",
                    read_tail(&self.log)
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = self
            .stdout
            .take()
            .ok_or("the reader's stdout was taken")?
            .join()
            .map_err(|_| "the reader's stdout thread panicked")?;
        if !status.success() {
            return Err(format!(
                "the read-only reader failed ({status}):\n{}",
                read_tail(&self.log)
            )
            .into());
        }
        stdout
            .lines()
            .find(|l| l.starts_with("reader ok:"))
            .map(str::to_owned)
            .ok_or_else(|| format!("the reader printed no summary: {stdout}").into())
    }
}

impl Drop for ReaderChild {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn run(t: &CrashTest) -> Result<Totals, AnyError> {
    let exe = std::env::current_exe()?;
    let start = Instant::now();
    crate::stress_dir::owner().empty(&t.dir)?;
    let mut rng = Rng::new(t.seed);
    let mut totals = Totals::default();
    let mut key_writes_before = 0;
    println!(
        "crash test: seed {} (replay the options and kill points with --seed {}), dir {}",
        t.seed,
        t.seed,
        t.dir.display()
    );
    loop {
        if t.cycles.is_some_and(|n| totals.cycles >= n)
            || t.duration.is_some_and(|d| start.elapsed() >= d)
        {
            break;
        }
        let cycle = totals.cycles;
        let run_seed = rng.next_u64();
        let kill_from_spawn = rng.one_in(8);
        let delay = Duration::from_millis(if kill_from_spawn {
            rng.below(SPAWN_KILL_MAX_MS + 1)
        } else {
            t.kill_min_ms + rng.below(t.kill_max_ms.saturating_sub(t.kill_min_ms) + 1)
        });
        let flags = match &t.fixed {
            Some(f) => f.clone(),
            None => {
                let mut f = StressFlags::random(&mut rng);
                f.draw_on_own_stream(&mut Rng::new(run_seed ^ 0x1a6e_57ba_c0f0_0001));
                f
            }
        };
        let default_options = rng.one_in(4);
        let context = format!(
            "cycle {cycle} (seed {}, run seed {run_seed}, kill after {delay:?}{}, {})",
            t.seed,
            if kill_from_spawn {
                " from the spawn"
            } else {
                " from the first write"
            },
            flags.summary()
        );
        let log = t.dir.join("run.log");
        let mut child = Command::new(&exe)
            .arg("run")
            .arg("--dir")
            .arg(&t.dir)
            .arg("--seed")
            .arg(run_seed.to_string())
            .arg("--duration-secs")
            .arg("86400")
            .arg("--keys")
            .arg(t.keys.to_string())
            .args(flags.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let spawned = Instant::now();
        let (events, stdout_reader) = watch_stdout(&mut child)?;
        let wait = if kill_from_spawn {
            delay
        } else {
            FIRST_WRITE_WAIT
        };
        let mut reader = None;
        match events.recv_timeout(wait) {
            Ok(ChildEvent::FirstWrite) => {
                // The database exists: a reader can follow it.
                if flags.read_only_reader {
                    reader = Some(ReaderChild::spawn(&exe, t, &flags)?);
                }
                // The delay counts from the spawn or from this moment.
                let kill_at = if kill_from_spawn {
                    spawned + delay
                } else {
                    Instant::now() + delay
                };
                std::thread::sleep(kill_at.saturating_duration_since(Instant::now()));
            }
            Err(mpsc::RecvTimeoutError::Timeout) if kill_from_spawn => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{context}: the child acknowledged no write in {FIRST_WRITE_WAIT:?}:\n{}",
                    read_tail(&log)
                )
                .into());
            }
            Ok(ChildEvent::Closed) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait()?;
                return Err(exited_by_itself(&context, status, &log));
            }
        }
        if let Some(status) = child.try_wait()? {
            return Err(exited_by_itself(&context, status, &log));
        }
        child.kill()?; // SIGKILL
        let status = child.wait()?;
        if status.signal() != Some(SIGKILL) {
            return Err(exited_by_itself(&context, status, &log));
        }
        // Every line the child printed has been read once its pipe closed.
        let reported_write = stdout_reader
            .join()
            .map_err(|_| "the stdout reader panicked")?;
        totals.killed += 1;
        // The reader refreshed while the writer wrote, and after its kill;
        // it stops before the verifier reopens the database.
        if let Some(reader) = reader {
            let line = reader.stop().map_err(|e| format!("{context}: {e}"))?;
            let field = |name: &str| -> Result<u64, AnyError> {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
                    .ok_or_else(|| {
                        format!("{context}: no {name}= in the reader's line: {line}").into()
                    })
            };
            totals.reader_cycles += 1;
            totals.reader_refreshes += field("refreshes")?;
            totals.reader_refresh_retries += field("refresh_retries")?;
            totals.reader_bank_audits += field("bank_audits")?;
            totals.reader_token_checks += field("token_checks")?;
        }

        let mut verify = Command::new(&exe);
        verify
            .arg("verify")
            .arg("--dir")
            .arg(&t.dir)
            .arg("--seed")
            .arg(run_seed.to_string())
            .arg("--keys")
            .arg(t.keys.to_string())
            .args(flags.args());
        if default_options {
            verify.arg("--default-options");
            totals.default_option_opens += 1;
        }
        let out = verify.stdin(Stdio::null()).output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "{context}: verification{} failed ({}):\n{stdout}{}",
                if default_options {
                    " (opened with default options)"
                } else {
                    ""
                },
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let field = |name: &str| -> Result<u64, AnyError> {
            stdout
                .split_whitespace()
                .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
                .ok_or_else(|| format!("{context}: no {name}= in the verify line: {stdout}").into())
        };
        let key_writes = field("key_writes")?;
        let cycle_writes = key_writes.checked_sub(key_writes_before).ok_or_else(|| {
            format!(
                "{context}: the expected state lost writes: {key_writes_before} then {key_writes}"
            )
        })?;
        key_writes_before = key_writes;
        if reported_write {
            if cycle_writes == 0 {
                return Err(format!(
                    "{context}: the child reported an acknowledged write, but the expected state shows none:\n{stdout}"
                )
                .into());
            }
            totals.min_cycle_writes = Some(
                totals
                    .min_cycle_writes
                    .map_or(cycle_writes, |m| m.min(cycle_writes)),
            );
        } else {
            totals.kills_before_first_write += 1;
        }
        totals.key_writes += cycle_writes;
        totals.cycles_with_blob_files += u64::from(field("blob_files")? > 0);
        let strays = field("stray_tables")?;
        totals.stray_tables += strays;
        totals.kills_with_strays += u64::from(strays > 0);
        totals.pending_new += field("pending_new")?;
        totals.pending_old += field("pending_old")?;
        totals.pending_batches += field("pending_batches")?;
        totals.keys_verified += field("keys")?;
        totals.range_scans += field("range_scans")?;
        totals.logged_writes += field("logged_writes")?;
        totals.logged_keys += field("logged_keys")?;
        totals.l0_tables += field("l0_tables")?;
        totals.logged_range_deletes += field("logged_range_deletes")?;
        totals.in_flight_logged += field("in_flight_logged")?;
        totals.tokens_verified += field("tokens")?;
        totals.token_moves = totals.token_moves.max(field("token_moves")?);
        totals.bank_audits += field("bank_audited")?;
        totals.bank_transfers = totals.bank_transfers.max(field("bank_transfers")?);
        totals.counter_writes = field("counter_writes")?;
        totals.counters_pending_new += field("counters_pending_new")?;
        totals.counters_pending_old += field("counters_pending_old")?;
        totals.in_flight_ingestions += field("in_flight_ingestions")?;
        totals.in_flight_ingestions_new += field("in_flight_ingestions_new")?;
        totals.in_flight_ingestions_in_manifest += field("in_flight_ingestions_in_manifest")?;
        totals.ingested_keys = totals.ingested_keys.max(field("ingested_keys")?);
        totals.ingest_leftovers += field("ingest_leftovers")?;
        totals.fresh_whole = totals.fresh_whole.max(field("fresh_ingestions_whole")?);
        totals.fresh_in_flight_new += field("fresh_ingestions_in_flight_new")?;
        totals.fresh_in_flight_old += field("fresh_ingestions_in_flight_old")?;
        totals.backups_verified += field("backups_listed")?;
        totals.backup_restores += field("backup_restored")?;
        totals.backup_keys_checked += field("backup_keys_checked")?;
        totals.backup_bounds_from_kill += field("backup_bounds_from_kill")?;
        let backup_leftovers = field("backup_leftovers")?;
        totals.backup_leftovers += backup_leftovers;
        totals.kills_during_backup += u64::from(backup_leftovers > 0);
        totals.replica_keys += field("replica_keys")?;
        totals.replica_full_compares += field("replica_full")?;
        totals.replica_copies += field("replica_copied")?;
        totals.replica_followed = totals.replica_followed.max(field("replica_followed")?);
        totals.replica_gaps = totals.replica_gaps.max(field("replica_gaps")?);
        totals.cycles += 1;
        if totals.cycles.is_multiple_of(10) {
            println!(
                "  {} cycles, {:.0} s, {} key writes: {}",
                totals.cycles,
                start.elapsed().as_secs_f64(),
                totals.key_writes,
                stdout.trim()
            );
        }
    }
    Ok(totals)
}

/// What the child's stdout says.
enum ChildEvent {
    /// Its first write was acknowledged.
    FirstWrite,
    /// Its stdout closed before that: it exited.
    Closed,
}

/// Read the child's stdout on a thread, sending [`ChildEvent`]s; the
/// thread returns whether the first write was reported.
fn watch_stdout(
    child: &mut Child,
) -> Result<(mpsc::Receiver<ChildEvent>, std::thread::JoinHandle<bool>), AnyError> {
    let stdout = child.stdout.take().ok_or("the child has no stdout")?;
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut reported = false;
        for line in std::io::BufReader::new(stdout).lines() {
            match line {
                Ok(l) if l == FIRST_WRITE_LINE && !reported => {
                    reported = true;
                    let _ = tx.send(ChildEvent::FirstWrite);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if !reported {
            let _ = tx.send(ChildEvent::Closed);
        }
        reported
    });
    Ok((rx, reader))
}

fn exited_by_itself(context: &str, status: ExitStatus, log: &Path) -> AnyError {
    format!(
        "{context}: the stress run ended by itself ({status}), not by SIGKILL:\n{}",
        read_tail(log)
    )
    .into()
}

fn read_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
