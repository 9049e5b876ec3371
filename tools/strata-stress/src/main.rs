//! strata-stress: RocksDB's db_stress and db_crashtest for strata.
//!
//! ```text
//! strata-stress run    --dir D [--seed S] [--threads 4] [--duration-secs 10]   stress, checking reads
//! strata-stress verify --dir D                      reopen and check everything (also: run --verify-only)
//! strata-stress crash  --dir D --duration 1h        kill `run` with SIGKILL at random moments, verify, repeat
//! strata-stress read   --dir D                      a read-only reader, until stdin closes (crash runs it)
//! ```
//! `D` holds the database (`D/db`) and the expected state (`D/expected`);
//! `crash` empties it first, if strata-stress can prove it made what is
//! there (`stress_dir.rs`), and draws the database options and workload
//! mix of each cycle from its seed (`flags.rs`).
//! `docs/testing.md` explains the expected-state protocol and what each
//! check proves.

mod backups;
mod bank;
mod copy_check;
mod counters;
mod crash;
mod expected;
mod flags;
mod ingest;
mod ingested;
mod manifest_probe;
mod moves;
mod reader;
mod replica;
mod rng;
mod stress_dir;
mod value;
mod verify;
mod workload;
mod write_log;

use clap::{Args, Parser, Subcommand};
use expected::{AnyError, ExpectedState};
use flags::StressFlags;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata::{Db, Options};

#[derive(Parser)]
#[command(
    name = "strata-stress",
    about = "Stress and crash-test strata against an expected state"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the stress workload (or, with --verify-only, only verify).
    Run {
        #[command(flatten)]
        common: Common,
        /// Operations per thread (0: until --duration-secs).
        #[arg(long, default_value_t = 0)]
        ops: u64,
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
        /// Reopen and verify instead of running the workload.
        #[arg(long)]
        verify_only: bool,
    },
    /// Reopen the database and verify it against the expected state.
    Verify {
        #[command(flatten)]
        common: Common,
        /// Open with `Options::default()` instead of the given options (a
        /// database must always open after a crash with default options).
        #[arg(long)]
        default_options: bool,
    },
    /// Run, kill with SIGKILL at a random moment, verify; repeat.
    Crash {
        #[command(flatten)]
        common: Common,
        /// Stop after this many kill cycles.
        #[arg(long)]
        cycles: Option<u64>,
        /// Stop after this long: e.g. 90s, 10m, 1h.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Shortest time a run lives (after its first write) before it is killed.
        #[arg(long, default_value_t = 20)]
        kill_min_ms: u64,
        /// Longest time a run lives (after its first write) before it is killed.
        #[arg(long, default_value_t = 2000)]
        kill_max_ms: u64,
        /// Use the given options and workload flags in every cycle instead
        /// of drawing them from the seed.
        #[arg(long)]
        fixed_options: bool,
    },
    /// Open the database read-only beside a running writer; refresh and
    /// check batch invariants until stdin closes (`reader.rs`).
    Read {
        #[command(flatten)]
        common: Common,
    },
}

/// Options shared by every subcommand; `crash` passes them on to its children.
#[derive(Args, Clone, Debug)]
struct Common {
    /// Directory for the database and the expected state.
    #[arg(long)]
    dir: PathBuf,
    /// Seed for every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keys in the key space (fixed when the expected state is created).
    #[arg(long, default_value_t = 4000)]
    keys: u32,
    #[command(flatten)]
    flags: StressFlags,
}

impl Common {
    fn db_dir(&self) -> PathBuf {
        self.dir.join("db")
    }

    fn expected_path(&self) -> PathBuf {
        self.dir.join("expected")
    }

    fn counters_path(&self) -> PathBuf {
        self.dir.join("counters")
    }

    /// The ledger of ingestions into keyspace `ingested`.
    fn ingest_ledger_path(&self) -> PathBuf {
        self.dir.join("ingested")
    }

    /// The change feed's replica (`replica.rs`).
    fn replica_dir(&self) -> PathBuf {
        self.dir.join("replica")
    }

    /// Where the workload builds table files to ingest.
    fn ingest_dir(&self) -> PathBuf {
        self.dir.join("ingest")
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("bad duration unit in {s:?} (use s, m or h)")),
    };
    Ok(Duration::from_secs(secs))
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run {
            common,
            verify_only: true,
            ..
        } => verify_cmd(&common, false),
        Cmd::Verify {
            common,
            default_options,
        } => verify_cmd(&common, default_options),
        Cmd::Run {
            common,
            ops,
            duration_secs,
            ..
        } => run_cmd(&common, ops, duration_secs),
        Cmd::Crash {
            common,
            cycles,
            duration,
            kill_min_ms,
            kill_max_ms,
            fixed_options,
        } => crash_cmd(
            &common,
            cycles,
            duration,
            kill_min_ms,
            kill_max_ms,
            fixed_options,
        ),
        Cmd::Read { common } => read_cmd(&common),
    };
    if let Err(e) = result {
        eprintln!("strata-stress: FAILED: {e}");
        std::process::exit(1);
    }
}

fn open_state(common: &Common) -> Result<ExpectedState, AnyError> {
    stress_dir::owner().create(&common.dir)?;
    ExpectedState::open_or_create(&common.expected_path(), common.keys)
}

fn run_cmd(common: &Common, ops: u64, duration_secs: u64) -> Result<(), AnyError> {
    let mut state = open_state(common)?;
    if let Some(i) = state.slots().iter().position(|s| s.pending.is_some()) {
        return Err(format!(
            "key {i} has a write in flight from a run that did not finish: run `verify` first"
        )
        .into());
    }
    let counter_state = counters::CounterState::open_or_create(&common.counters_path())?;
    if let Some(j) = counter_state.first_pending() {
        return Err(format!(
            "counter {j} has a write in flight from a run that did not finish: run `verify` first"
        )
        .into());
    }
    let run = state.begin_run()?;
    let f = &common.flags;
    // What a killed run left there goes first (unlinked: a file it moved
    // in may share its inode with a live table).
    let staged = ingest::clear_staging(&common.ingest_dir())?;
    if staged > 0 {
        eprintln!("removed {staged} table files a killed run left to ingest");
    }
    let backups = if f.backup_one_in > 0 {
        Some(Arc::new(backups::BackupTarget::open(&common.dir)?))
    } else {
        None
    };
    let options = f.options();
    let db = Db::open(common.db_dir(), options.clone())?;
    let counter_keyspace = counters::open(&db, &options)?;
    // The replica's cursor exists from before the first write of the
    // run; the replica opens and follows on its own thread.
    let follower = if f.replica {
        db.change_feed(replica::FEED)?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handle = replica::spawn_follower(
            db.clone(),
            common.replica_dir(),
            options.clone(),
            f.ingest_one_in > 0 || common.ingest_ledger_path().exists(),
            Arc::clone(&stop),
        );
        Some((stop, handle))
    } else {
        None
    };
    let workload = workload::Workload {
        threads: f.threads.max(1),
        seed: common.seed,
        ops_per_thread: ops,
        deadline: Some(Instant::now() + Duration::from_secs(duration_secs)),
        sync_one_in: f.sync_one_in.max(1),
        flush_one_in: f.flush_one_in,
        compact_one_in: f.compact_one_in,
        delete_range_one_in: f.delete_range_one_in,
        transfer_one_in: f.transfer_one_in,
        checkpoint_one_in: f.checkpoint_one_in,
        checkpoint_dir: common.dir.join("checkpoints"),
        ingest_one_in: f.ingest_one_in,
        ingest_dir: common.ingest_dir(),
        ingest_ledger: if f.ingest_one_in > 0 {
            // Created before the threads start, as the other keyspaces are.
            db.keyspace(ingested::KEYSPACE)?;
            Some(Arc::new(ingested::Ledger::open(
                &common.ingest_ledger_path(),
            )?))
        } else {
            None
        },
        backup_one_in: f.backup_one_in,
        backup_check_one_in: f.backup_check_one_in,
        backups,
        options: f.options(),
        value_sizes: f.value_sizes(),
    };
    let counters = workload::run(
        &db,
        Arc::new(state.into_shared()),
        &counter_keyspace,
        Arc::new(counter_state),
        &workload,
        run,
    )?;
    db.wait_for_compactions()?;
    db.check_invariants()?;
    let replica_line = match follower {
        Some((stop, handle)) => {
            stop.store(true, std::sync::atomic::Ordering::Release);
            let mut replica = handle.join().map_err(|_| "the replica's thread panicked")?;
            let c = replica::catch_up_and_compare(&db, &options, &mut replica)?;
            format!(" replica_keys={} replica_followed={}", c.keys, c.followed)
        }
        None => String::new(),
    };
    println!("run {run} ok: {}{replica_line}", counters.summary());
    Ok(())
}

fn read_cmd(common: &Common) -> Result<(), AnyError> {
    let seen = reader::read_until_stdin_closes(&common.db_dir(), common.flags.options())?;
    println!("{}", seen.line());
    Ok(())
}

fn verify_cmd(common: &Common, default_options: bool) -> Result<(), AnyError> {
    let mut state = open_state(common)?;
    let counter_state = counters::CounterState::open_or_create(&common.counters_path())?;
    let db_dir = common.db_dir();
    let options = if default_options {
        Options::default()
    } else {
        common.flags.options()
    };
    // Each key's last write issued before the kill: what a backup the
    // kill cut short may hold at most.
    let latest: Vec<backups::KeyState> = state
        .slots()
        .iter()
        .map(backups::KeyState::latest)
        .collect();
    let ingest_leftovers = match std::fs::read_dir(common.ingest_dir()) {
        Ok(entries) => entries.count() as u32,
        Err(_) => 0,
    };
    let ledger = if common.ingest_ledger_path().exists() {
        Some(ingested::Ledger::open(&common.ingest_ledger_path())?)
    } else {
        None
    };
    let replica_dir = common.replica_dir();
    let mut report = verify::verify(
        &db_dir,
        || Db::open(&db_dir, options.clone()),
        &mut state,
        &counter_state,
        ledger.as_ref(),
        &options,
        common.seed,
        |db: &Db, report: &mut verify::Report| {
            if common.flags.replica {
                let mut replica = replica::Replica::open(&replica_dir, &options)?;
                if common.ingest_ledger_path().exists() {
                    replica.allow_ingestion_gaps();
                }
                report.replica = replica::catch_up_and_compare(db, &options, &mut replica)?;
            }
            Ok(())
        },
    )?;
    report.ingest_leftovers = ingest_leftovers;
    report.backups = backups::verify(&common.dir, &options, &latest)?;
    println!("{}", report.line());
    Ok(())
}

fn crash_cmd(
    common: &Common,
    cycles: Option<u64>,
    duration: Option<Duration>,
    kill_min_ms: u64,
    kill_max_ms: u64,
    fixed_options: bool,
) -> Result<(), AnyError> {
    let start = Instant::now();
    let test = crash::CrashTest {
        dir: common.dir.clone(),
        seed: common.seed,
        cycles: cycles.or(if duration.is_none() { Some(50) } else { None }),
        duration,
        kill_min_ms,
        kill_max_ms: kill_max_ms.max(kill_min_ms),
        keys: common.keys,
        fixed: fixed_options.then(|| common.flags.clone()),
    };
    let t = crash::run(&test)?;
    println!(
        "crash test ok: cycles={} sigkills={} kills_before_first_write={} key_writes={} min_cycle_key_writes={} \
         logged_writes_in_sequence={} logged_keys_applied={} logged_range_deletes_applied={} l0_tables_in_sequence={} \
         in_flight_batches_logged={} \
         kills_during_flush_or_compaction={} stray_tables={} in_flight_keys_new={} in_flight_keys_old={} \
         in_flight_batches={} keys_verified={} range_scans={} tokens_in_one_keyspace={} token_moves={} \
         bank_audits={} bank_transfers={} \
         default_option_opens={} counter_writes={} in_flight_counters_new={} in_flight_counters_old={} \
         in_flight_ingestions={} in_flight_ingestions_new={} in_flight_ingestions_in_manifest={} \
         ingested_keys={} ingest_leftovers={} \
         fresh_ingestions_whole={} fresh_ingestions_in_flight_new={} fresh_ingestions_in_flight_old={} \
         backups_verified={} backup_restores={} backup_keys_checked={} backup_bounds_from_kill={} \
         backup_leftovers={} kills_during_backup={} \
         replica_keys={} replica_full_compares={} replica_copies={} replica_followed={} replica_gaps={} \
         reader_cycles={} reader_refreshes={} reader_refresh_retries={} reader_bank_audits={} reader_token_checks={} \
         cycles_with_blob_files={} seconds={:.0}",
        t.cycles,
        t.killed,
        t.kills_before_first_write,
        t.key_writes,
        t.min_cycle_writes.unwrap_or(0),
        t.logged_writes,
        t.logged_keys,
        t.logged_range_deletes,
        t.l0_tables,
        t.in_flight_logged,
        t.kills_with_strays,
        t.stray_tables,
        t.pending_new,
        t.pending_old,
        t.pending_batches,
        t.keys_verified,
        t.range_scans,
        t.tokens_verified,
        t.token_moves,
        t.bank_audits,
        t.bank_transfers,
        t.default_option_opens,
        t.counter_writes,
        t.counters_pending_new,
        t.counters_pending_old,
        t.in_flight_ingestions,
        t.in_flight_ingestions_new,
        t.in_flight_ingestions_in_manifest,
        t.ingested_keys,
        t.ingest_leftovers,
        t.fresh_whole,
        t.fresh_in_flight_new,
        t.fresh_in_flight_old,
        t.backups_verified,
        t.backup_restores,
        t.backup_keys_checked,
        t.backup_bounds_from_kill,
        t.backup_leftovers,
        t.kills_during_backup,
        t.replica_keys,
        t.replica_full_compares,
        t.replica_copies,
        t.replica_followed,
        t.replica_gaps,
        t.reader_cycles,
        t.reader_refreshes,
        t.reader_refresh_retries,
        t.reader_bank_audits,
        t.reader_token_checks,
        t.cycles_with_blob_files,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
