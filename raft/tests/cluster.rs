//! Three nodes, each on its own strata database (strata's in-memory
//! filesystem), talking through an in-process router (openraft's
//! memstore-style test network).
//!
//! The first test: concurrent clients write new keys while the leader
//! loses power and comes back, twice; then every node snapshots and
//! purges its log, and a follower is wiped and rebuilt from a snapshot.
//! At the end every acknowledged write is on every node and the state
//! machines are equal.
//!
//! The second: six clients put, delete and linearizably read (openraft's
//! read index, `ensure_linearizable`) three keys while the leader loses
//! power and comes back three times and a follower is wiped and rebuilt
//! from a snapshot; the history (failed and timed-out operations left in
//! flight: they may or may not have happened) is checked key by key with
//! the linearizability checker in `linearizability/` (its own tests are
//! there), the nodes' final values included.
//!
//! A power loss is the harness's (`lose_power`): the node's RPCs are
//! lost from that instant, and its database must be gone (openraft's
//! tasks can hold it past `Raft::shutdown`) before the disk reboots into
//! a fresh filesystem holding what survived; an earlier harness rebooted
//! the shared filesystem under a database still open, whose late file
//! operations (a WAL removed, tables created) landed on the next boot's
//! disk, and was flaky (docs/design/raft.md). Waits are on openraft's
//! metrics and on the clients' progress, with deadlines; nothing sleeps.

#![allow(clippy::result_large_err)]

mod linearizability;
#[path = "support/router.rs"]
mod router;

use linearizability::{History, Kind};

use openraft::{BasicNode, Config, Raft, ServerState, SnapshotPolicy};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata::fs::{
    FileLock, FileSystem, LogKind, MemFileSystem, RandomAccessFile, RandomAccessOptions,
    UnsyncedData, WritableFile,
};
use strata::{Db, Options};
use strata_raft::{NodeId, Request, StateMachineStore, TypeConfig};
use tempfile::TempDir;

/// How long a wait on openraft's metrics may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(120);
/// How long a node named leader has to say it leads before the question
/// is asked again.
const CONFIRM: Duration = Duration::from_secs(2);

/// The in-process network (`tests/support/router.rs`), each node's state
/// machine beside its handle (for reads), each boot with a power switch.
type Router = router::Router<StateMachineStore>;

/// A running node: its Raft handle and its state machine.
type Running = (Raft<TypeConfig>, StateMachineStore);

/// One boot's filesystem: the node's disk as this boot's database holds
/// it. Dropped when that database is gone (its last clone dropped, its
/// threads joined), which closes `_released`: the harness waits for it
/// before the next boot, since a `Db` can outlive `Raft::shutdown` inside
/// openraft's replication tasks and go on acting on its files.
struct BootFs {
    fs: MemFileSystem,
    _released: tokio::sync::oneshot::Sender<()>,
}

impl FileSystem for BootFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.fs.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.fs.create(path)
    }
    fn create_log(
        &self,
        path: &Path,
        initial_bytes: u64,
        kind: LogKind,
    ) -> io::Result<Box<dyn WritableFile>> {
        self.fs.create_log(path, initial_bytes, kind)
    }
    fn auto_log_kind(&self, dir: &Path) -> LogKind {
        self.fs.auto_log_kind(dir)
    }
    fn read(&self, path: &Path) -> io::Result<bytes::Bytes> {
        self.fs.read(path)
    }
    fn open_random_access(
        &self,
        path: &Path,
        options: RandomAccessOptions,
    ) -> io::Result<Arc<dyn RandomAccessFile>> {
        self.fs.open_random_access(path, options)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.fs.rename(from, to)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.fs.hard_link(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.fs.remove(path)
    }
    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        self.fs.remove_dir(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.fs.list(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        self.fs.exists(path)
    }
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        self.fs.file_size(path)
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.fs.sync_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.fs.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        self.fs.lock(path)
    }
}

/// A node's disk (it outlives the node across a power loss) and, while
/// it runs, the node and its boot.
struct Node {
    fs: MemFileSystem,
    snapshots: TempDir,
    running: Option<Running>,
    boot: Option<Boot>,
}

/// What the harness keeps of a running boot: its power switch (once off,
/// the boot's RPCs are lost) and the end of its database.
struct Boot {
    off: Arc<AtomicBool>,
    released: tokio::sync::oneshot::Receiver<()>,
}

impl Node {
    fn new() -> Node {
        Node {
            fs: MemFileSystem::new(),
            snapshots: tempfile::tempdir().expect("snapshot directory"),
            running: None,
            boot: None,
        }
    }
}

/// Copy the files under `dir` of `from` (after its power loss: what
/// survived it) to `to`, as durable files.
fn copy_files(from: &MemFileSystem, to: &MemFileSystem, dir: &Path) {
    to.create_dir_all(dir).expect("create a directory");
    to.sync_dir(dir).expect("sync a directory");
    for name in from.list(dir).expect("list a directory") {
        let path = dir.join(&name);
        if from.list(&path).is_ok() {
            copy_files(from, to, &path);
        } else {
            to.write_durable(&path, &from.read(&path).expect("read a file"));
        }
    }
}

fn config() -> Arc<Config> {
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 300,
        election_timeout_max: 600,
        // Snapshots only when the test asks.
        snapshot_policy: SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: 0,
        purge_batch_size: 1,
        // Small chunks: a snapshot crosses several install RPCs.
        snapshot_max_chunk_size: 4096,
        ..Config::default()
    };
    Arc::new(config.validate().expect("valid config"))
}

async fn start(id: NodeId, node: &mut Node, router: &Router) {
    let off = Arc::new(AtomicBool::new(false));
    let (released, on_release) = tokio::sync::oneshot::channel();
    node.boot = Some(Boot {
        off: off.clone(),
        released: on_release,
    });
    let fs = BootFs {
        fs: node.fs.clone(),
        _released: released,
    };
    let options = Options {
        fs: Arc::new(fs),
        ..Options::default()
    };
    let db = Db::open(Path::new("/db"), options).expect("open the database");
    // With the node's id, as the example service: a follower's committed
    // id unsynced, a leader's synced (the power losses below test both).
    let storage = strata_raft::StorageOptions {
        node_id: Some(id),
        ..strata_raft::StorageOptions::default()
    };
    let (log, sm) =
        strata_raft::open_with(&db, node.snapshots.path(), &storage).expect("open the store");
    let net = router::Net {
        router: router.clone(),
        from: id,
        off,
    };
    let raft = Raft::new(id, config(), net, log, sm.clone())
        .await
        .expect("start raft");
    router.insert(id, raft.clone(), sm.clone());
    node.running = Some((raft, sm));
}

/// Pull the node's plug: its filesystem stops and its RPCs are lost at
/// once; the node shuts down and its database is let go (the wait for
/// that is the point: openraft's replication tasks can hold a clone past
/// `Raft::shutdown`, and a database still open after the reboot would
/// act on the next boot's files, e.g. delete a WAL of the same name).
/// Then the machine loses power keeping a random prefix of unsynced
/// data, and the next boot gets a disk of its own holding what survived.
async fn lose_power(id: NodeId, node: &mut Node, router: &Router, seed: u64) {
    router.remove(id);
    node.fs.crash();
    let boot = node.boot.take().expect("a boot");
    boot.off.store(true, Ordering::SeqCst);
    let (raft, sm) = node.running.take().expect("node running");
    raft.shutdown().await.expect("shut down");
    drop((raft, sm));
    // `Err` when the sender is dropped: the database is gone.
    let _ = tokio::time::timeout(DEADLINE, boot.released)
        .await
        .unwrap_or_else(|_| panic!("node {id}'s database still open {DEADLINE:?} after shutdown"));
    node.fs.power_loss(UnsyncedData::KeepRandomPrefix(seed));
    let disk = MemFileSystem::new();
    copy_files(&node.fs, &disk, Path::new("/db"));
    node.fs = disk;
}

/// The leader among `among` (`None`: among the nodes running at each
/// look, which a restart changes): the one a node of them names and that
/// itself says it leads (a restarted node may name a stale one for a
/// moment; a restarted leader whose vote was committed leads again in its
/// old term, so no election need happen).
async fn leader(router: &Router, among: Option<&[NodeId]>) -> NodeId {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::Instant::now() < deadline {
        let candidates = match among {
            Some(among) => among.to_vec(),
            None => router.running(),
        };
        let Some(observer) = candidates.iter().find_map(|&id| router.get(id)) else {
            panic!("no node of {candidates:?} is running");
        };
        let named = observer
            .wait(Some(CONFIRM))
            .metrics(
                |m| m.current_leader.is_some_and(|l| candidates.contains(&l)),
                "a leader among the running nodes",
            )
            .await;
        let Some(id) = named.ok().and_then(|m| m.current_leader) else {
            continue;
        };
        if let Some(raft) = router.get(id) {
            let confirmed = raft
                .wait(Some(CONFIRM))
                .state(ServerState::Leader, "the named leader leads")
                .await;
            if confirmed.is_ok() {
                return id;
            }
        }
    }
    for id in router.running() {
        if let Some(raft) = router.get(id) {
            eprintln!("node {id}: {:?}", raft.metrics().borrow());
        }
    }
    panic!("no leader among {among:?} within {DEADLINE:?}");
}

/// `clients` concurrent clients each write `per_client` new keys through
/// whichever node leads; returns the writes acknowledged.
async fn write_concurrently(
    router: &Router,
    tag: &str,
    clients: usize,
    per_client: usize,
) -> BTreeMap<String, String> {
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let router = router.clone();
        let tag = tag.to_owned();
        tasks.spawn(async move {
            let mut acked = BTreeMap::new();
            for i in 0..per_client {
                let key = format!("{tag}-{client}-{i}");
                let value = format!("value of {key}");
                // A write refused (no leader yet, forwarded) is retried a
                // bounded number of times, each on the current leader.
                for _attempt in 0..50 {
                    let leader_id = leader(&router, None).await;
                    let Some(raft) = router.get(leader_id) else {
                        continue;
                    };
                    let request = Request::Set {
                        key: key.clone(),
                        value: value.clone(),
                    };
                    if let Ok(response) = raft.client_write(request).await {
                        assert_eq!(response.data.value.as_deref(), Some(value.as_str()));
                        acked.insert(key.clone(), value.clone());
                        break;
                    }
                }
            }
            acked
        });
    }
    let mut acked = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        acked.extend(done.expect("client task"));
    }
    acked
}

/// Each node's state machine entries, in node order.
fn node_states(nodes: &BTreeMap<NodeId, Node>) -> Vec<Vec<(String, String)>> {
    nodes
        .values()
        .map(|n| {
            n.running
                .as_ref()
                .expect("running")
                .1
                .entries()
                .expect("scan")
        })
        .collect()
}

/// Node `id` caught up by installing a snapshot at `index` or later (its
/// peers' logs no longer held what it lacked).
fn assert_installed_a_snapshot(router: &Router, id: NodeId, index: u64) {
    let raft = router.get(id).expect("node running");
    assert!(
        raft.metrics()
            .borrow()
            .snapshot
            .is_some_and(|s| s.index >= index),
        "node {id} caught up without installing a snapshot at {index} or later"
    );
}

/// Wait until every running node has applied the leader's last log
/// entry, and the leader appended nothing meanwhile; returns that index.
async fn converge(router: &Router) -> u64 {
    for _ in 0..20 {
        let ids = router.running();
        let leader_id = leader(router, Some(&ids)).await;
        let Some(leader_raft) = router.get(leader_id) else {
            continue;
        };
        let last = leader_raft.metrics().borrow().last_log_index;
        for &id in &ids {
            router
                .get(id)
                .expect("running")
                .wait(Some(DEADLINE))
                .applied_index_at_least(last, format!("node {id} applies up to {last:?}"))
                .await
                .expect("applied");
        }
        let now = leader_raft.metrics().borrow().clone();
        if now.state == ServerState::Leader && now.last_log_index == last {
            return last.expect("a log");
        }
    }
    panic!("the cluster never settled");
}

/// Nodes 1, 2 and 3 started and initialized as one cluster.
/// A follower (not `leader_id`) loses its disk and comes back as node 4
/// on a fresh disk and snapshot directory (openraft 0.9 refuses a
/// follower whose log went backwards under the same id unless built with
/// `loosen-follower-log-revert`; a new id is the safe way): added as a
/// learner, it can only catch up through the leader's snapshot when the
/// log is purged, and then replaces the wiped node as a voter.
async fn rebuild_a_follower(
    router: &Router,
    nodes: &mut BTreeMap<NodeId, Node>,
    leader_id: NodeId,
) {
    let wiped = (1..=3).find(|&id| id != leader_id).expect("a follower");
    let mut gone = nodes.remove(&wiped).expect("follower");
    lose_power(wiped, &mut gone, router, 99).await;
    drop(gone);
    let mut rebuilt = Node::new();
    start(4, &mut rebuilt, router).await;
    nodes.insert(4, rebuilt);
    let voters: BTreeSet<NodeId> = nodes.keys().copied().collect();
    for _attempt in 0..20 {
        let raft = router.get(leader(router, None).await).expect("leader");
        if raft
            .add_learner(4, BasicNode::default(), true)
            .await
            .is_ok()
            && raft.change_membership(voters.clone(), false).await.is_ok()
        {
            return;
        }
    }
    panic!("the rebuilt node never joined as a voter");
}

async fn three_node_cluster() -> (Router, BTreeMap<NodeId, Node>) {
    let router = Router::default();
    let mut nodes: BTreeMap<NodeId, Node> = BTreeMap::new();
    for id in 1..=3 {
        let mut node = Node::new();
        start(id, &mut node, &router).await;
        nodes.insert(id, node);
    }
    router
        .get(1)
        .expect("node 1")
        .initialize(BTreeSet::from([1, 2, 3]))
        .await
        .expect("initialize");
    (router, nodes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_keep_every_acknowledged_write_through_leader_crashes_and_a_wiped_follower() {
    let (router, mut nodes) = three_node_cluster().await;

    let mut acked = write_concurrently(&router, "first", 8, 10).await;

    // The leader loses power and comes back, twice, with writes between.
    for round in 0..2u64 {
        let old = leader(&router, Some(&[1, 2, 3])).await;
        let node = nodes.get_mut(&old).expect("leader's node");
        lose_power(old, node, &router, 17 + round).await;
        let others: Vec<NodeId> = (1..=3).filter(|&id| id != old).collect();
        leader(&router, Some(&others)).await;
        acked.extend(write_concurrently(&router, &format!("round{round}"), 8, 5).await);
        start(old, nodes.get_mut(&old).expect("node"), &router).await;
        converge(&router).await;
    }

    // Every node snapshots and purges its whole log (every node: the
    // leader may change before the wiped node comes back).
    let last = converge(&router).await;
    for id in router.running() {
        let raft = router.get(id).expect("running");
        raft.trigger().snapshot().await.expect("snapshot");
        raft.wait(Some(DEADLINE))
            .metrics(
                |m| m.snapshot.is_some_and(|s| s.index >= last),
                format!("node {id}: a snapshot of the whole log"),
            )
            .await
            .expect("snapshot built");
        raft.trigger().purge_log(last).await.expect("purge");
        raft.wait(Some(DEADLINE))
            .metrics(
                |m| m.purged.is_some_and(|p| p.index >= last),
                format!("node {id}: log purged"),
            )
            .await
            .expect("purged");
    }
    let leader_id = leader(&router, None).await;

    // A follower is wiped and comes back as node 4, through a snapshot.
    rebuild_a_follower(&router, &mut nodes, leader_id).await;
    acked.extend(write_concurrently(&router, "after-wipe", 4, 5).await);
    converge(&router).await;
    assert_installed_a_snapshot(&router, 4, last);

    // Every acknowledged write on every node, and the nodes agree.
    let states = node_states(&nodes);
    assert!(
        acked.len() >= 80 + 10 + 20,
        "too few writes acknowledged: {}",
        acked.len()
    );
    for (id, state) in nodes.keys().zip(&states) {
        let map: BTreeMap<_, _> = state.iter().cloned().collect();
        for (key, value) in &acked {
            assert_eq!(
                map.get(key),
                Some(value),
                "node {id} lacks acknowledged {key}"
            );
        }
    }
    assert_eq!(states[0], states[1], "nodes 1 and 2 differ");
    assert_eq!(states[1], states[2], "nodes 2 and 3 differ");

    for node in nodes.values_mut() {
        if let Some((raft, _)) = node.running.take() {
            raft.shutdown().await.expect("shut down");
        }
    }
}

/// The keys the linearizability test's clients work on.
const KEYS: [&str; 3] = ["a", "b", "c"];

/// The clients' history, all keys (checked key by key).
type Histories = Arc<Mutex<History>>;

/// What the linearizability test's clients share: where they send
/// requests, what they record, how far they got, and how far they may go.
#[derive(Clone)]
struct Clients {
    router: Router,
    history: Histories,
    /// Operations finished (acknowledged or given up), all clients.
    progress: Arc<tokio::sync::watch::Sender<usize>>,
    /// Each client may begin operation `i` once this is above `i / STEP`.
    gate: tokio::sync::watch::Receiver<usize>,
}

/// Operations per client between two gates.
const STEP: usize = 4;
/// How long one attempt may take before the client gives up on it (and
/// leaves it in flight).
const ATTEMPT: Duration = Duration::from_secs(5);

/// The running boot of the leader: its Raft handle and its state machine,
/// taken together (a read after the read index must read the same boot's
/// state machine, not a later boot's that may be behind).
async fn leader_boot(router: &Router) -> Option<Running> {
    let id = leader(router, None).await;
    router.node(id)
}

/// One operation: a write (`Kind::Write(None)`: a delete) through
/// `client_write`, or a read of the leader's state machine after
/// `ensure_linearizable` (openraft's read index). `Some` with what a read
/// read (`None` for a write) once answered; `None` if it failed or took
/// too long: its effect is unknown.
async fn attempt(router: &Router, key: &str, kind: &Kind) -> Option<Option<String>> {
    let (raft, sm) = leader_boot(router).await?;
    let run = async {
        match kind {
            Kind::Write(value) => {
                let request = match value {
                    Some(value) => Request::Set {
                        key: key.to_owned(),
                        value: value.clone(),
                    },
                    None => Request::Delete {
                        key: key.to_owned(),
                    },
                };
                let response = raft.client_write(request).await.ok()?;
                assert_eq!(&response.data.value, value, "the write's response");
                Some(None)
            }
            Kind::Read => {
                raft.ensure_linearizable().await.ok()?;
                sm.get(key).ok()
            }
        }
    };
    tokio::time::timeout(ATTEMPT, run).await.ok().flatten()
}

/// One client: `ops` operations, each on a key and of a kind chosen by a
/// seeded generator (writes of unique values, deletes, linearizable
/// reads), each tried on the current leader up to a bounded number of
/// times; every attempt is recorded, an unanswered one as such.
async fn register_client(client: usize, ops: usize, mut clients: Clients) {
    let mut rng = (client as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for i in 0..ops {
        clients
            .gate
            .wait_for(|&gate| gate > i / STEP)
            .await
            .expect("gate");
        let key = KEYS[(next() % KEYS.len() as u64) as usize];
        let kind = match next() % 8 {
            0..=3 => Kind::Write(Some(format!("{client}-{i}"))),
            4 => Kind::Write(None),
            _ => Kind::Read,
        };
        for _attempt in 0..20 {
            let id = clients
                .history
                .lock()
                .expect("history")
                .invoke(key, kind.clone());
            if let Some(read) = attempt(&clients.router, key, &kind).await {
                clients.history.lock().expect("history").answer(id, read);
                break;
            }
        }
        clients.progress.send_modify(|n| *n += 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_writes_and_deletes_through_leader_power_losses_and_a_rebuilt_follower_are_linearizable(
) {
    const CLIENTS: usize = 6;
    const OPS: usize = 28;
    let (router, mut nodes) = three_node_cluster().await;
    leader(&router, Some(&[1, 2, 3])).await;

    let history: Histories = Arc::new(Mutex::new(History::default()));
    let (progress, mut done) = tokio::sync::watch::channel(0usize);
    let (gate, gate_rx) = tokio::sync::watch::channel(1usize);
    let shared = Clients {
        router: router.clone(),
        history: history.clone(),
        progress: Arc::new(progress),
        gate: gate_rx,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        tasks.spawn(register_client(client, OPS, shared.clone()));
    }
    // Let the clients do half a step more, then open the next gate: the
    // fault that follows meets operations in flight.
    let mut step = 1;
    let next_step = |step: &mut usize| {
        let target = CLIENTS * (*step * STEP - STEP / 2);
        *step += 1;
        gate.send_replace(*step);
        target
    };

    // The leader loses power three times, each time coming back a step
    // later while the clients go on.
    for seed in 0..3u64 {
        let target = next_step(&mut step);
        done.wait_for(|&n| n >= target).await.expect("progress");
        let old = leader(&router, None).await;
        lose_power(old, nodes.get_mut(&old).expect("node"), &router, seed).await;
        let target = next_step(&mut step);
        done.wait_for(|&n| n >= target).await.expect("progress");
        start(old, nodes.get_mut(&old).expect("node"), &router).await;
    }

    // Every node snapshots what it applied and purges its log up to it;
    // then a follower's disk is wiped, and the node comes back as node 4,
    // which can only catch up from a snapshot, and replaces it as a voter.
    let target = next_step(&mut step);
    done.wait_for(|&n| n >= target).await.expect("progress");
    let mut purged = BTreeMap::new();
    for id in router.running() {
        let raft = router.get(id).expect("running");
        // A node just restarted reports what it applied once its core runs.
        let applied = raft
            .wait(Some(DEADLINE))
            .metrics(|m| m.last_applied.is_some(), format!("node {id} applied"))
            .await
            .expect("applied")
            .last_applied
            .expect("applied")
            .index;
        raft.trigger().snapshot().await.expect("snapshot");
        let metrics = raft
            .wait(Some(DEADLINE))
            .metrics(
                |m| m.snapshot.is_some_and(|s| s.index >= applied),
                format!("node {id}: a snapshot of its applied log"),
            )
            .await
            .expect("snapshot built");
        let index = metrics.snapshot.expect("snapshot").index;
        raft.trigger().purge_log(index).await.expect("purge");
        raft.wait(Some(DEADLINE))
            .metrics(
                |m| m.purged.is_some_and(|p| p.index >= index),
                format!("node {id}: log purged"),
            )
            .await
            .expect("purged");
        purged.insert(id, index);
    }
    let leader_id = leader(&router, None).await;
    rebuild_a_follower(&router, &mut nodes, leader_id).await;
    gate.send_replace(usize::MAX);
    while let Some(client) = tasks.join_next().await {
        client.expect("client task");
    }
    converge(&router).await;
    let least_purged = purged.values().min().copied().expect("purged");
    assert_installed_a_snapshot(&router, 4, least_purged);

    // The nodes agree, and each node's final value of each key is read
    // after every client finished (a thread of its own per node): an
    // acknowledged write lost anywhere makes the history not linearizable.
    let states = node_states(&nodes);
    assert!(
        states.iter().all(|s| s == &states[0]),
        "nodes disagree: {states:?}"
    );
    {
        let mut history = history.lock().expect("history");
        for node in nodes.values() {
            let sm = &node.running.as_ref().expect("running").1;
            for key in KEYS {
                let id = history.invoke(key, Kind::Read);
                history.answer(id, sm.get(key).expect("read"));
            }
        }
        let answered = history.ops().iter().filter(|op| op.ret.is_some()).count();
        assert!(
            answered >= CLIENTS * OPS / 2,
            "only {answered} operations answered"
        );
        // What the checker searched (printed, for a run that takes long:
        // unanswered operations multiply its states).
        let started = std::time::Instant::now();
        let checked = history.check();
        eprintln!(
            "history: {} operations, {answered} answered, checked in {:?}",
            history.ops().len(),
            started.elapsed()
        );
        if let Err(e) = checked {
            panic!("{e}");
        }
    }
    for node in nodes.values_mut() {
        if let Some((raft, _)) = node.running.take() {
            raft.shutdown().await.expect("shut down");
        }
    }
}
