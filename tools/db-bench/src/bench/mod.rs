//! The benchmarks: one function per db_bench method, generic over the
//! [`Engine`], and the runner that opens databases, starts threads and
//! prints results.
//!
//! Hot loops reuse their key buffer, value generator and batch; the only
//! per-operation work besides the engine call is `Stats::finished_ops`.

mod maintenance;
mod micro;
mod mixed;
mod read;
mod runner;
mod seek;
mod write;

pub use runner::{run_engine, RunEnv};

use crate::engine::Engine;
use crate::error::Result;
use crate::flags::Flags;
use crate::plan::{Method, Plan};
use crate::rng::Rng;
use crate::stats::Stats;
use crate::values::ValuePool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

/// What every thread of one benchmark run shares.
pub struct Ctx<'a, E> {
    pub db: &'a E,
    pub flags: &'a Flags,
    pub plan: &'a Plan,
    pub values: &'a Arc<ValuePool>,
    /// `filluniquerandom`'s key order (empty otherwise).
    pub permutation: &'a [u64],
    pub shared: &'a Shared,
    /// The database directory (ingest builds its file beside it).
    pub path: &'a std::path::Path,
}

/// Start line and finish count of a run's threads.
pub struct Shared {
    start: Barrier,
    /// Threads that finished, the background writer excluded.
    finished: AtomicUsize,
    /// Threads other than the background writer.
    foreground: usize,
}

impl Shared {
    pub fn new(plan: &Plan) -> Shared {
        Shared {
            start: Barrier::new(plan.threads),
            finished: AtomicUsize::new(0),
            foreground: plan.threads - usize::from(plan.background_writer),
        }
    }

    /// True once every foreground thread is done (the background writer's
    /// cue to stop).
    pub fn foreground_done(&self) -> bool {
        self.finished.load(Ordering::Acquire) >= self.foreground
    }
}

/// Counts a foreground thread as finished when dropped, so the background
/// writer stops even if a reader fails or panics.
struct FinishGuard<'a> {
    shared: &'a Shared,
    foreground: bool,
}

impl Drop for FinishGuard<'_> {
    fn drop(&mut self) {
        if self.foreground {
            self.shared.finished.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// One thread's state: its number, key generator and statistics.
pub struct ThreadState {
    pub tid: usize,
    pub rng: Rng,
    pub stats: Stats,
}

/// db_bench's `Duration`: a benchmark's budget of operations, or of
/// seconds when `--duration` applies (the clock is read every ~1000 ops).
pub struct OpBudget {
    max_secs: u64,
    max_ops: u64,
    ops: u64,
    start: Instant,
}

impl OpBudget {
    pub fn new(max_secs: u64, max_ops: u64) -> Self {
        OpBudget {
            max_secs,
            max_ops,
            ops: 0,
            start: Instant::now(),
        }
    }

    /// Account for `increment` more operations; true when the budget is
    /// spent (call before each operation).
    #[inline]
    pub fn done(&mut self, increment: u64) -> bool {
        let increment = increment.max(1);
        self.ops += increment;
        if self.max_secs > 0 {
            if self.ops / 1000 != (self.ops - increment) / 1000 {
                return self.start.elapsed().as_secs() >= self.max_secs;
            }
            false
        } else {
            self.ops > self.max_ops
        }
    }
}

/// Run `method` on this thread.
fn dispatch<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState, method: Method) -> Result<()> {
    match method {
        Method::Fill(order) => write::fill(ctx, th, order),
        Method::Delete { sequential } => write::delete(ctx, th, sequential),
        Method::DeleteRange => write::delete_range(ctx, th),
        Method::MergeRandom => write::merge_random(ctx, th),
        Method::Ingest => write::ingest(ctx, th),
        Method::ReadRandom => read::read_random(ctx, th, ctx.plan.key_range),
        Method::ReadHot => read::read_random(ctx, th, ctx.plan.key_range.div_ceil(100)),
        Method::ReadSeq => read::read_sequential(ctx, th, false),
        Method::ReadReverse => read::read_sequential(ctx, th, true),
        Method::SeekRandom => seek::seek(ctx, th, seek::SeekOrder::Random),
        Method::SeekOrdered => seek::seek(ctx, th, seek::SeekOrder::Ordered),
        Method::ReadWhileWriting => mixed::while_writing(ctx, th, false),
        Method::SeekRandomWhileWriting => mixed::while_writing(ctx, th, true),
        Method::ReadRandomWriteRandom => mixed::read_random_write_random(ctx, th),
        Method::UpdateRandom => mixed::update_random(ctx, th),
        Method::RandomTransaction => mixed::random_transaction(ctx, th),
        Method::Compact => maintenance::compact(ctx, th),
        Method::VerifyChecksum => maintenance::verify_checksum(ctx, th),
        Method::Checkpoint => maintenance::checkpoint(ctx, th),
        // `open` needs the database handle itself: the runner runs it
        // (`Runner::run_open`) and never dispatches it here.
        Method::Open => unreachable!("the runner runs `open` itself"),
        Method::Crc32c => micro::crc32c(ctx, th),
        Method::Compress => micro::compress(ctx, th),
        Method::Uncompress => micro::uncompress(ctx, th),
    }
}

/// Operations all threads will do, for the progress bar (`None` when
/// `--duration` decides or the count is not known ahead).
fn expected_ops(plan: &Plan, method: Method) -> Option<u64> {
    let threads = plan.threads as u64;
    let per_thread = match method {
        Method::Fill(_) | Method::MergeRandom => plan.writes,
        Method::Ingest => plan.num,
        Method::Delete { .. } => plan.deletes,
        Method::DeleteRange => plan.deletes.div_ceil(plan.range_width.max(1)),
        Method::ReadRandom
        | Method::ReadHot
        | Method::ReadSeq
        | Method::ReadReverse
        | Method::SeekRandom
        | Method::SeekOrdered => plan.reads,
        Method::ReadWhileWriting | Method::SeekRandomWhileWriting => {
            // Only the readers count; with --duration there is no total.
            return (plan.duration_secs == 0).then_some(plan.reads * (threads - 1));
        }
        Method::ReadRandomWriteRandom | Method::UpdateRandom | Method::RandomTransaction => {
            plan.readwrites
        }
        Method::Open => plan.num,
        Method::Compact | Method::VerifyChecksum | Method::Checkpoint => 1,
        Method::Crc32c | Method::Compress | Method::Uncompress => return None,
    };
    (plan.duration_secs == 0).then_some(per_thread * threads)
}
