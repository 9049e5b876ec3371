//! The blackbox crash test (RocksDB's db_crashtest): run the stress tool
//! in a child process, kill it with SIGKILL at a seed-chosen moment,
//! verify with `verify`, and repeat.
//!
//! The kill delay is a kill point, not synchronisation: whatever the child
//! was doing at that instant (a write, a flush, a compaction, recovery) is
//! where it dies. A cycle fails if the child exits before it is killed
//! (a wrong read, a panic, an error) or if verification fails.

use crate::expected::AnyError;
use crate::rng::Rng;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    /// Arguments passed to every `run` and `verify` child (key count,
    /// threads, database options).
    pub child_args: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Totals {
    pub cycles: u64,
    pub killed: u64,
    pub stray_tables: u64,
    pub kills_with_strays: u64,
    pub pending_new: u64,
    pub pending_old: u64,
    pub pending_batches: u64,
    /// Keys read back and compared, and range scans compared, over all
    /// verifications (each of which passed: any lost or wrong read ends
    /// the run with an error).
    pub keys_verified: u64,
    pub range_scans: u64,
}

pub fn run(t: &CrashTest) -> Result<Totals, AnyError> {
    let exe = std::env::current_exe()?;
    let start = Instant::now();
    crate::stress_dir::owner().empty(&t.dir)?;
    let mut rng = Rng::new(t.seed);
    let mut totals = Totals::default();
    println!(
        "crash test: seed {} (replay the kill points with --seed {}), dir {}",
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
        let delay = Duration::from_millis(
            t.kill_min_ms + rng.below(t.kill_max_ms.saturating_sub(t.kill_min_ms) + 1),
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
            .args(&t.child_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        std::thread::sleep(delay);
        if let Some(status) = child.try_wait()? {
            return Err(format!(
                "cycle {cycle} (seed {}, run seed {run_seed}): the stress run exited by itself ({status}) before the kill at {delay:?}:\n{}",
                t.seed,
                read_tail(&log)
            )
            .into());
        }
        child.kill()?; // SIGKILL
        child.wait()?;
        totals.killed += 1;

        let out = Command::new(&exe)
            .arg("verify")
            .arg("--dir")
            .arg(&t.dir)
            .arg("--seed")
            .arg(run_seed.to_string())
            .args(&t.child_args)
            .stdin(Stdio::null())
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "cycle {cycle} (seed {}, run seed {run_seed}, killed after {delay:?}): verification failed ({}):\n{stdout}{}",
                t.seed,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let field = |name: &str| -> u64 {
            stdout
                .split_whitespace()
                .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
                .unwrap_or(0)
        };
        let strays = field("stray_tables");
        totals.stray_tables += strays;
        totals.kills_with_strays += u64::from(strays > 0);
        totals.pending_new += field("pending_new");
        totals.pending_old += field("pending_old");
        totals.pending_batches += field("pending_batches");
        totals.keys_verified += field("keys");
        totals.range_scans += field("range_scans");
        totals.cycles += 1;
        if totals.cycles.is_multiple_of(10) {
            println!(
                "  {} cycles, {:.0} s: {}",
                totals.cycles,
                start.elapsed().as_secs_f64(),
                stdout.trim()
            );
        }
    }
    Ok(totals)
}

fn read_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
