//! Runs the benchmark list against one engine, as db_bench's
//! `Benchmark::Run`: open (or destroy and reopen for fills), start the
//! threads together, merge their statistics, print the result line.

use super::{dispatch, expected_ops, maintenance, mixed, Ctx, FinishGuard, Shared, ThreadState};
use crate::compare::Row;
use crate::dbdir;
use crate::engine::{Engine, Property};
use crate::error::{BenchError, Result};
use crate::flags::Flags;
use crate::header;
use crate::histogram::LatencyHist;
use crate::json::{JsonOut, RunInfo};
use crate::keys;
use crate::plan::{Action, Method, Plan};
use crate::procio;
use crate::progress::Progress;
use crate::reporter::{IntervalSlot, Reporter};
use crate::result::{Combined, RunResult};
use crate::rng::Rng;
use crate::spec::BenchSpec;
use crate::stats::{OpKind, Stats, StatsConfig};
use crate::values::ValuePool;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// What stays the same across engines.
pub struct RunEnv<'a> {
    pub flags: &'a Flags,
    pub specs: &'a [BenchSpec],
    pub seed: u64,
    pub values: Arc<ValuePool>,
    pub json: Option<JsonOut>,
    pub reporter: Option<Reporter>,
}

/// One engine's pass over the list.
struct Runner<'e, 'a, E: Engine> {
    env: &'e mut RunEnv<'a>,
    path: &'e Path,
    db: Option<E>,
    /// Threads started so far: each gets seed + this count, as db_bench.
    thread_count: u64,
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Run every benchmark on `E` with its database at `path`; one ratio-table
/// row per benchmark that reported a result.
pub fn run_engine<E: Engine>(env: &mut RunEnv<'_>, path: &Path) -> Result<Vec<Row>> {
    let flags = env.flags;
    print(&header::header(
        E::KIND,
        &E::mapping(flags),
        flags,
        path,
        env.seed,
    ));
    if flags.use_existing_db {
        if !path.exists() {
            return Err(BenchError::usage(format!(
                "--use_existing_db: {} does not exist",
                path.display()
            )));
        }
    } else {
        dbdir::destroy(path, E::KIND)?;
    }
    let db = E::open(path, flags)?;
    let mut runner = Runner {
        env,
        path,
        db: Some(db),
        thread_count: 0,
    };
    let mut rows = Vec::new();
    let specs = runner.env.specs;
    for spec in specs {
        if let Some(row) = runner.benchmark(spec)? {
            rows.push(row);
        }
    }
    // As db_bench: once, after every benchmark.
    if flags.statistics {
        match runner.db()?.property(Property::Statistics) {
            Some(text) => print(&format!("{text}\n")),
            None => print("STATISTICS: (this engine keeps none)\n"),
        }
    }
    Ok(rows)
}

impl<E: Engine> Runner<'_, '_, E> {
    fn db(&self) -> Result<&E> {
        self.db
            .as_ref()
            .ok_or_else(|| BenchError::new("the database is not open"))
    }

    fn reopen(&mut self, destroy: bool) -> Result<()> {
        drop(self.db.take()); // closes it
        if destroy {
            dbdir::destroy(self.path, E::KIND)?;
        }
        self.db = Some(E::open(self.path, self.env.flags)?);
        Ok(())
    }

    fn benchmark(&mut self, spec: &BenchSpec) -> Result<Option<Row>> {
        let flags = self.env.flags;
        let plan = Plan::new(&spec.name, flags);
        if let Some(note) = &plan.note {
            eprintln!("{note}");
        }
        if plan.fresh_db {
            if flags.use_existing_db {
                print(&format!(
                    "{:<12} : skipped (--use_existing_db is true)\n",
                    spec.name
                ));
                return Ok(None);
            }
            self.reopen(true)?;
        }
        let method = match plan.action {
            Action::Meta(meta) => {
                print(&maintenance::meta(self.db()?, meta, self.path)?);
                return Ok(None);
            }
            Action::Run(method) => method,
        };
        print(&format!("DB path: [{}]\n", self.path.display()));
        if spec.warmup > 0 {
            print(&format!(
                "Warming up benchmark by running {} times\n",
                spec.warmup
            ));
        }
        for _ in 0..spec.warmup {
            let r = self.run_once(&plan, method)?;
            print(&r.line());
            print(&r.process_line());
        }
        if spec.repeat > 1 {
            print(&format!("Running benchmark for {} times\n", spec.repeat));
        }
        let mut combined = Combined::default();
        let mut latency: Option<LatencyHist> = None;
        let mut read_bytes: Option<(f64, f64)> = None;
        let mut unsupported = false;
        for run in 1..=spec.repeat {
            let r = self.run_once(&plan, method)?;
            print(&r.line());
            print(&r.process_line());
            if flags.histogram {
                print(&r.histogram_text());
            }
            if let Some(json) = &mut self.env.json {
                let info = RunInfo {
                    run,
                    runs: spec.repeat,
                    threads: plan.threads - usize::from(plan.background_writer),
                };
                json.write(E::KIND, flags, &r, info)?;
            }
            for (_, h) in &r.hists {
                latency.get_or_insert_with(LatencyHist::default).merge(h);
            }
            unsupported |= r.unsupported;
            if let Some(p) = r.process {
                let (bytes, ops) = read_bytes.get_or_insert((0.0, 0.0));
                *bytes += p.read_bytes as f64;
                *ops += r.ops() as f64;
            }
            combined.add(&r);
            if let Some(avg) = combined.report(&plan.name) {
                print(&avg);
            }
        }
        if let Some(fin) = combined.report_final(&plan.name) {
            print(&fin);
        }
        if method == Method::RandomTransaction && E::TRANSACTIONS {
            print(&mixed::verify_transaction_sets(
                self.db()?,
                flags.transaction_sets,
            )?);
        }
        Ok(Some(Row {
            benchmark: plan.name.clone(),
            ops_per_sec: (!unsupported).then(|| combined.mean_ops_per_sec()),
            p99_us: latency
                .filter(|h| h.count() > 0)
                .map(|h| h.percentile_us(99.0)),
            read_bytes_per_op: read_bytes.map(|(bytes, ops)| bytes / ops.max(1.0)),
        }))
    }

    fn stats_config(&self, progress: &Progress, slot: Option<Arc<IntervalSlot>>) -> StatsConfig {
        StatsConfig {
            measure_latency: self.env.flags.measure_latency(),
            progress: progress.clone(),
            slot,
            stats_interval_secs: self.env.flags.stats_interval_seconds,
        }
    }

    /// One run of `method` on `plan.threads` threads.
    fn run_once(&mut self, plan: &Plan, method: Method) -> Result<RunResult> {
        let progress = Progress::start(&plan.name, expected_ops(plan, method));
        let slots: Vec<Option<Arc<IntervalSlot>>> = (0..plan.threads)
            .map(|_| self.env.reporter.as_ref().map(|_| IntervalSlot::new()))
            .collect();
        if let Some(rep) = &self.env.reporter {
            rep.attach(
                E::KIND.name(),
                &plan.name,
                slots.iter().flatten().cloned().collect(),
            );
        }
        let before = procio::Sample::now();
        let mut result = if method == Method::Open {
            self.run_open(plan, &progress, slots.into_iter().next().flatten())
        } else {
            self.run_threads(plan, method, &progress, slots)
        };
        if let Ok(r) = &mut result {
            r.process = before.and_then(|b| b.elapsed());
        }
        progress.finish();
        if let Some(rep) = &self.env.reporter {
            rep.detach();
        }
        result
    }

    fn run_threads(
        &mut self,
        plan: &Plan,
        method: Method,
        progress: &Progress,
        slots: Vec<Option<Arc<IntervalSlot>>>,
    ) -> Result<RunResult> {
        let permutation = match method {
            Method::Fill(keys::KeyOrder::UniqueRandom) => {
                keys::permutation(plan.num, self.env.seed)
            }
            _ => Vec::new(),
        };
        let shared = Shared::new(plan);
        let mut threads = Vec::with_capacity(plan.threads);
        for (tid, slot) in slots.into_iter().enumerate() {
            self.thread_count += 1;
            let state = ThreadState {
                tid,
                rng: Rng::new(self.env.seed.wrapping_add(self.thread_count)),
                stats: Stats::new(tid, self.stats_config(progress, slot)),
            };
            threads.push(state);
        }
        let ctx = Ctx {
            db: self.db()?,
            flags: self.env.flags,
            plan,
            values: &self.env.values,
            permutation: &permutation,
            shared: &shared,
            path: self.path,
        };
        let stats = std::thread::scope(|s| {
            let handles: Vec<_> = threads
                .into_iter()
                .map(|mut th| {
                    let ctx = &ctx;
                    s.spawn(move || -> Result<Stats> {
                        let _finish = FinishGuard {
                            shared: ctx.shared,
                            foreground: !(plan.background_writer && th.tid == 0),
                        };
                        ctx.shared.start.wait();
                        th.stats.start();
                        let outcome = dispatch(ctx, &mut th, method);
                        th.stats.stop();
                        outcome.map(|()| th.stats)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .map_err(|_| BenchError::new("a benchmark thread panicked"))?
                })
                .collect::<Result<Vec<Stats>>>()
        })
        .map_err(|e| e.context(&plan.name))?;
        Ok(RunResult::merge(&plan.name, stats))
    }

    /// `open`: close and reopen the database `plan.num` times.
    fn run_open(
        &mut self,
        plan: &Plan,
        progress: &Progress,
        slot: Option<Arc<IntervalSlot>>,
    ) -> Result<RunResult> {
        let mut stats = Stats::new(0, self.stats_config(progress, slot));
        stats.start();
        for _ in 0..plan.num {
            self.reopen(false).map_err(|e| e.context("open"))?;
            stats.finished_ops(1, OpKind::Other);
        }
        stats.stop();
        Ok(RunResult::merge(&plan.name, vec![stats]))
    }
}
