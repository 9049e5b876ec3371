//! Replicated writes per second through a 3-node openraft cluster in one
//! process, with strata as every node's storage (`--store strata`, each
//! node on its own database in its own directory, real fsyncs) or
//! openraft's memstore (`--store mem`, nothing on disk), and the same
//! in-process router (`tests/support/router.rs`, shared with the cluster
//! test) and the same clients.
//!
//! `--clients 1,16,256` tasks each issue `client_write` of a small `Set`
//! to the leader, one at a time, for `--seconds` after `--warmup`;
//! reported: writes per second and the p50/p99/p99.9 latency of the
//! writes that started and finished inside the measured window, and where
//! the time goes: the entries per append and per apply openraft hands
//! the stores (its batching), the time an append takes to be durable,
//! and for strata the WAL fsyncs per replicated entry and the writes per
//! commit group of each node's database (`Db::stats`). Each variant runs
//! on a fresh cluster; `--rounds` repeats the lot, alternating which
//! store goes first, so the ratios compare runs of the same round.
//!
//! ```text
//! cargo run --release -p strata-raft --example raft-bench -- \
//!     --clients 1,16,256 --store strata,mem --rounds 3 --dir /tmp/raft-bench
//! ```
//!
//! `--batch-in-flight K` (K > 0) puts the clients' writes through a
//! batcher (`../shared/batcher.rs`, the same for both stores and the
//! kv-service example): the writes waiting
//! while K entries are being replicated go together in one
//! `Request::Batch` entry, since openraft 0.9's leader makes one durable
//! append per `client_write`.
//!
//! docs/design/raft.md ("Performance") has figures and how to read them.

#![allow(clippy::result_large_err)]

#[path = "../shared/batcher.rs"]
mod batcher;
mod counted;
mod mem_store;
#[path = "../../tests/support/router.rs"]
mod router;

use batcher::Batcher;
use clap::{Parser, ValueEnum};
use counted::{Counted, Counters, Counts};
use hdrhistogram::Histogram;
use openraft::{Config, Raft, ServerState, SnapshotPolicy};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata::{Db, DbStats, Histogram as DbHistogram, Options, Statistics, StatisticsSnapshot};
use strata_raft::{NodeId, Request, TypeConfig};

type Router = router::Router<()>;

#[derive(Parser)]
#[command(about = "Replicated writes per second through 3 in-process openraft nodes")]
struct Args {
    /// Concurrent clients, one run per count.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    clients: Vec<usize>,
    /// The nodes' storage: strata (on disk, fsyncs) and/or mem (openraft's memstore).
    #[arg(long, value_delimiter = ',', default_value = "strata,mem")]
    store: Vec<Store>,
    /// Seconds measured per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of writes before the measurement starts.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// How many times to run every (clients, store) pair.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Gather the clients' writes into batch entries, at most this many
    /// entries in flight (0: each client writes its own entry).
    #[arg(long, default_value_t = 0)]
    batch_in_flight: usize,
    /// Most requests in one batch entry.
    #[arg(long, default_value_t = 1024)]
    batch_max: usize,
    /// Bytes of each value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Where the strata nodes' databases go (a fresh directory per run,
    /// removed after it).
    #[arg(long, default_value = "/tmp/raft-bench")]
    dir: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Store {
    Strata,
    Mem,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Strata => "strata",
            Store::Mem => "mem",
        }
    }
}

/// One running node.
struct Node {
    raft: Raft<TypeConfig>,
    counters: Arc<Counters>,
    db: Option<Db>,
}

/// The same openraft configuration for both stores: openraft's defaults
/// (`max_payload_entries` 300 per append RPC), elections slow enough
/// that a loaded 2-core machine does not start one mid-run, and no
/// snapshots.
fn config() -> Arc<Config> {
    let config = Config {
        heartbeat_interval: 100,
        election_timeout_min: 1500,
        election_timeout_max: 3000,
        snapshot_policy: SnapshotPolicy::Never,
        ..Config::default()
    };
    Arc::new(config.validate().expect("valid config"))
}

async fn start_node(
    id: NodeId,
    store: Store,
    dir: &std::path::Path,
    router: &Router,
) -> Result<Node, Box<dyn std::error::Error>> {
    let counters = Arc::new(Counters::default());
    let (raft, db) = match store {
        Store::Strata => {
            let node_dir = dir.join(format!("node{id}"));
            // Default options, with statistics (for the WAL's fsync times).
            let options = Options {
                statistics: Some(Statistics::new()),
                ..Options::default()
            };
            let db = Db::open(node_dir.join("db"), options)?;
            // As the kv-service example: the committed id synced only
            // while the node leads.
            let storage = strata_raft::StorageOptions {
                node_id: Some(id),
                ..strata_raft::StorageOptions::default()
            };
            let (log, sm) = strata_raft::open_with(&db, node_dir.join("snapshots"), &storage)?;
            let log = Counted {
                inner: log,
                counters: counters.clone(),
            };
            let sm = Counted {
                inner: sm,
                counters: counters.clone(),
            };
            let raft = Raft::new(id, config(), router.clone(), log, sm).await?;
            (raft, Some(db))
        }
        Store::Mem => {
            let log = Counted {
                inner: mem_store::MemLog::default(),
                counters: counters.clone(),
            };
            let sm = Counted {
                inner: mem_store::MemStateMachine::default(),
                counters: counters.clone(),
            };
            (
                Raft::new(id, config(), router.clone(), log, sm).await?,
                None,
            )
        }
    };
    router.insert(id, raft.clone(), ());
    Ok(Node { raft, counters, db })
}

/// What one run measured.
struct Outcome {
    store: Store,
    clients: usize,
    ops_per_sec: f64,
    latency: Histogram<u64>,
    errors: u64,
    /// Per node: leader first.
    counts: Vec<Counts>,
    /// Per strata node (leader first): its database over the window.
    wal: Vec<WalWindow>,
    window: f64,
    /// CPU time the process used over the window, in cores.
    cores: f64,
}

/// One strata node's WAL over the measured window.
struct WalWindow {
    syncs: u64,
    groups: u64,
    writes: u64,
    /// Microseconds in WAL fsyncs (`rocksdb.wal.file.sync.micros`).
    sync_micros: u64,
}

/// What a strata node's database says at one moment.
type DbMoment = (DbStats, Option<StatisticsSnapshot>);

fn db_moment(db: &Db) -> DbMoment {
    (db.stats(), db.statistics())
}

fn sync_micros(moment: &DbMoment) -> u64 {
    moment
        .1
        .as_ref()
        .and_then(|s| s.histogram(DbHistogram::WalFileSync))
        .map_or(0, |h| h.sum)
}

fn db_window(before: &DbMoment, after: &DbMoment) -> WalWindow {
    WalWindow {
        syncs: after.0.wal_syncs - before.0.wal_syncs,
        groups: after.0.write_groups - before.0.write_groups,
        writes: after.0.user_writes - before.0.user_writes,
        sync_micros: sync_micros(after) - sync_micros(before),
    }
}

/// CPU seconds (user and system, all threads) this process has used:
/// `/proc/self/stat`'s utime and stime, in clock ticks of 1/100 s.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

async fn run(
    store: Store,
    clients: usize,
    args: &Args,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&args.dir)?;
    let dir = tempfile::Builder::new()
        .prefix(&format!("{}-{clients}-", store.name()))
        .tempdir_in(&args.dir)?;
    let router = Router::default();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start_node(id, store, dir.path(), &router).await?);
    }
    nodes[0].raft.initialize(BTreeSet::from([1, 2, 3])).await?;
    let metrics = nodes[0]
        .raft
        .wait(Some(Duration::from_secs(30)))
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await?;
    let leader_id = metrics.current_leader.ok_or("no leader")?;
    let leader = router.get(leader_id).ok_or("leader not running")?;
    leader
        .wait(Some(Duration::from_secs(30)))
        .state(ServerState::Leader, "the leader leads")
        .await?;
    // Leader first in the per-node figures.
    nodes.sort_by_key(|n| n.raft.metrics().borrow().id != leader_id);

    let begin = Instant::now();
    let measure_from = begin + Duration::from_secs(args.warmup);
    let measure_to = measure_from + Duration::from_secs(args.seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let value = "v".repeat(args.value_size);
    let batcher = (args.batch_in_flight > 0)
        .then(|| Batcher::start(leader.clone(), args.batch_in_flight, args.batch_max));
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let leader = leader.clone();
        let batcher = batcher.clone();
        let stop = stop.clone();
        let errors = errors.clone();
        let value = value.clone();
        tasks.spawn(async move {
            let mut latency =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let mut i = 0u64;
            while !stop.load(Relaxed) {
                let request = Request::Set {
                    key: format!("c{client}-{i}"),
                    value: value.clone(),
                };
                i += 1;
                let sent = Instant::now();
                let ok = match &batcher {
                    Some(batcher) => batcher.write(request).await.is_ok(),
                    None => leader.client_write(request).await.is_ok(),
                };
                let done = Instant::now();
                if !ok {
                    errors.fetch_add(1, Relaxed);
                    continue;
                }
                if sent >= measure_from && done <= measure_to {
                    let micros = done.duration_since(sent).as_micros() as u64;
                    latency.saturating_record(micros.max(1));
                }
            }
            latency
        });
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let counts_before: Vec<Counts> = nodes.iter().map(|n| n.counters.now()).collect();
    let stats_before: Vec<DbMoment> = nodes
        .iter()
        .filter_map(|n| n.db.as_ref().map(db_moment))
        .collect();
    let cpu_before = cpu_seconds();
    tokio::time::sleep_until(measure_to.into()).await;
    let counts_after: Vec<Counts> = nodes.iter().map(|n| n.counters.now()).collect();
    let stats_after: Vec<DbMoment> = nodes
        .iter()
        .filter_map(|n| n.db.as_ref().map(db_moment))
        .collect();
    let cpu = cpu_seconds() - cpu_before;
    let window = measure_to.duration_since(measure_from).as_secs_f64();
    stop.store(true, Relaxed);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    while let Some(done) = tasks.join_next().await {
        latency.add(done?)?;
    }
    for node in &nodes {
        node.raft.shutdown().await?;
    }
    drop(nodes);
    drop(dir);
    Ok(Outcome {
        store,
        clients,
        ops_per_sec: latency.len() as f64 / window,
        latency,
        errors: errors.load(Relaxed),
        counts: counts_after
            .iter()
            .zip(&counts_before)
            .map(|(a, b)| *a - *b)
            .collect(),
        wal: stats_after
            .iter()
            .zip(&stats_before)
            .map(|(a, b)| db_window(b, a))
            .collect(),
        window,
        cores: cpu / window,
    })
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn per(a: u64, b: u64) -> f64 {
    a as f64 / b.max(1) as f64
}

fn print(round: usize, o: &Outcome) {
    let h = &o.latency;
    let leader = o.counts[0];
    let followers = o.counts[1..].iter().fold(Counts::default(), |s, c| Counts {
        appends: s.appends + c.appends,
        appended: s.appended + c.appended,
        append_micros: s.append_micros + c.append_micros,
        applies: s.applies + c.applies,
        applied: s.applied + c.applied,
    });
    println!(
        "round {round} {:>6} clients {:>4}: {:>9.0} writes/s  p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  errors {}  CPU {:.2} cores",
        o.store.name(),
        o.clients,
        o.ops_per_sec,
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        o.errors,
        o.cores,
    );
    println!(
        "    leader: {:.1} client writes/entry, {:.1} entries/append ({:.0} appends/s, {:.3} ms each, in append {:.0}% of the time), {:.1} entries/apply; followers: {:.1} entries/append ({:.2} ms each), {:.1} entries/apply",
        o.ops_per_sec * o.window / leader.appended.max(1) as f64,
        per(leader.appended, leader.appends),
        leader.appends as f64 / o.window,
        ms(leader.append_micros) / leader.appends.max(1) as f64,
        leader.append_micros as f64 / 1e4 / o.window,
        per(leader.applied, leader.applies),
        per(followers.appended, followers.appends),
        ms(followers.append_micros) / followers.appends.max(1) as f64,
        per(followers.applied, followers.applies),
    );
    if !o.wal.is_empty() {
        let entries = leader.appended;
        let syncs: u64 = o.wal.iter().map(|w| w.syncs).sum();
        let per_node: Vec<String> = o
            .wal
            .iter()
            .map(|w| {
                format!(
                    "{:.0} syncs/s of {:.3} ms, {:.2} writes/group",
                    w.syncs as f64 / o.window,
                    ms(w.sync_micros) / w.syncs.max(1) as f64,
                    per(w.writes, w.groups)
                )
            })
            .collect();
        println!(
            "    strata: {:.3} fsyncs per replicated entry, {:.3} per client write (3 nodes); leader, followers: {}",
            per(syncs, entries),
            syncs as f64 / (o.ops_per_sec * o.window).max(1.0),
            per_node.join("; ")
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    println!(
        "raft-bench: 3 nodes in one process, {} s measured after {} s warm-up, {}-byte values, {} round(s), {}; load average {}",
        args.seconds,
        args.warmup,
        args.value_size,
        args.rounds,
        if args.batch_in_flight > 0 {
            format!(
                "writes batched ({} entries in flight, at most {} writes each)",
                args.batch_in_flight, args.batch_max
            )
        } else {
            "one entry per write".to_owned()
        },
        load()
    );
    let mut outcomes: Vec<(usize, Outcome)> = Vec::new();
    for round in 0..args.rounds {
        for &clients in &args.clients {
            // Alternate which store goes first.
            let mut stores = args.store.clone();
            if round % 2 == 1 {
                stores.reverse();
            }
            for store in stores {
                let outcome = run(store, clients, &args).await?;
                print(round, &outcome);
                outcomes.push((round, outcome));
            }
        }
    }
    println!("\nload average {}", load());
    println!("summary (median over rounds; ratio = strata / mem of the same round, median):");
    println!("| clients | store | writes/s | p50 ms | p99 ms | p99.9 ms | strata/mem writes/s |");
    println!("|--------:|-------|---------:|-------:|-------:|---------:|--------------------:|");
    for &clients in &args.clients {
        for &store in &args.store {
            let runs: Vec<&Outcome> = outcomes
                .iter()
                .filter(|(_, o)| o.clients == clients && o.store == store)
                .map(|(_, o)| o)
                .collect();
            let q = |q: f64| {
                median(
                    runs.iter()
                        .map(|o| ms(o.latency.value_at_quantile(q)))
                        .collect(),
                )
            };
            let ratios: Vec<f64> = (0..args.rounds)
                .filter_map(|round| {
                    let find = |s: Store| {
                        outcomes
                            .iter()
                            .find(|(r, o)| *r == round && o.clients == clients && o.store == s)
                            .map(|(_, o)| o.ops_per_sec)
                    };
                    Some(find(Store::Strata)? / find(Store::Mem)?)
                })
                .collect();
            let ratio = if store == Store::Strata && !ratios.is_empty() {
                let each: Vec<String> = ratios.iter().map(|r| format!("{r:.3}")).collect();
                format!("{:.3} ({})", median(ratios.clone()), each.join(", "))
            } else {
                String::new()
            };
            println!(
                "| {clients} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {ratio} |",
                store.name(),
                median(runs.iter().map(|o| o.ops_per_sec).collect()),
                q(0.50),
                q(0.99),
                q(0.999),
            );
        }
    }
    Ok(())
}
