//! The kv-service example as its README runs it: three processes on
//! loopback, each a node on its own strata database on disk, talking HTTP.
//!
//! Three client threads write new keys (each through whichever node leads,
//! following the 421 answers that name the leader) while the test kills
//! the leader's process with SIGKILL and starts it again on the same
//! directory and address, three times, each time after the clients made
//! progress under the new leader. After it, every acknowledged write is
//! read back linearizably from the leader (openraft's read index) and from
//! each node's own copy once that node has applied the leader's log.
//!
//! A write that fails or is not answered is sent again until it is
//! acknowledged: each key is written with one value, so a write applied
//! twice changes nothing. The test ends with every key acknowledged.
//!
//! The binary is the example cargo builds beside the tests
//! (`target/<profile>/examples/kv-service`; `cargo test` builds examples).
//! Every wait has a deadline; the pauses between polls only pace them.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long any one wait (a node starting, a leader elected, a write
/// acknowledged, a node catching up) may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(120);
/// The pause between two polls of the same condition.
const POLL: Duration = Duration::from_millis(20);
const NODES: [u64; 3] = [1, 2, 3];
const CLIENTS: usize = 3;
const KILLS: usize = 3;
/// Writes acknowledged between two steps of the test (before a kill,
/// under the new leader, after the restart).
const PROGRESS: usize = 30;

/// The example binary, beside this test's own in the target directory.
fn kv_service_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let binary = profile_dir
        .join("examples")
        .join(format!("kv-service{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: `cargo test -p strata-raft` builds it, or run \
         `cargo build -p strata-raft --example kv-service` with this test's profile",
        binary.display()
    );
    binary
}

/// One running node process; killed when dropped.
struct NodeProcess {
    child: Child,
    /// What the process printed on stderr, for a failure's message.
    output: Arc<Mutex<Vec<String>>>,
}

impl NodeProcess {
    /// Start node `id` on `dir`, serving at `addr` (port 0: any); returns
    /// it and the address it bound once it says it serves.
    fn start(binary: &Path, id: u64, addr: &str, dir: &Path) -> (NodeProcess, String) {
        let mut child = Command::new(binary)
            .args(["--id", &id.to_string(), "--addr", addr, "--dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start node {id} ({}): {e}", binary.display()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (bound, bound_rx) = mpsc::channel();
        let lines = output.clone();
        // Reads every line the node prints (a full pipe would block it),
        // and hands on the address from the line that announces it.
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some((_, addr)) = line.split_once("serving on http://") {
                    let _ = bound.send(addr.trim().to_owned());
                }
                lines.lock().expect("output lock").push(line);
            }
        });
        let process = NodeProcess { child, output };
        match bound_rx.recv_timeout(DEADLINE) {
            Ok(addr) => (process, addr),
            Err(_) => panic!(
                "node {id} did not say where it serves within {DEADLINE:?}; it printed:\n{}",
                process.output.lock().expect("output lock").join("\n")
            ),
        }
    }

    /// SIGKILL: the node gets no chance to close its database.
    fn kill(mut self) {
        self.child.kill().expect("kill the node");
        self.child.wait().expect("reap the node");
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer: status and body.
fn http(agent: &ureq::Agent, method: &str, url: &str, body: &str) -> Option<(u16, String)> {
    let response = match method {
        "GET" => agent.get(url).call(),
        "PUT" => agent.put(url).send(body),
        "POST" => agent.post(url).send(body),
        _ => unreachable!("a method this test uses"),
    };
    // A node being killed or starting refuses or drops the connection.
    let mut response = response.ok()?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().ok()?;
    Some((status, text))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// The nodes' addresses (fixed for the cluster's life: the membership
/// names them) and which are running.
struct Cluster {
    binary: PathBuf,
    dir: tempfile::TempDir,
    addrs: BTreeMap<u64, String>,
    running: Mutex<BTreeMap<u64, NodeProcess>>,
}

impl Cluster {
    fn start() -> Cluster {
        let binary = kv_service_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut addrs = BTreeMap::new();
        let mut running = BTreeMap::new();
        for id in NODES {
            let (process, addr) =
                NodeProcess::start(&binary, id, "127.0.0.1:0", &dir.path().join(id.to_string()));
            addrs.insert(id, addr);
            running.insert(id, process);
        }
        Cluster {
            binary,
            dir,
            addrs,
            running: Mutex::new(running),
        }
    }

    fn url(&self, id: u64, path: &str) -> String {
        format!("http://{}{path}", self.addrs[&id])
    }

    fn restart(&self, id: u64) {
        let (process, addr) = NodeProcess::start(
            &self.binary,
            id,
            &self.addrs[&id],
            &self.dir.path().join(id.to_string()),
        );
        assert_eq!(
            addr, self.addrs[&id],
            "node {id} came back at another address"
        );
        self.running
            .lock()
            .expect("running lock")
            .insert(id, process);
    }

    fn kill(&self, id: u64) {
        let process = self.running.lock().expect("running lock").remove(&id);
        process.expect("the node is running").kill();
    }

    /// openraft's metrics of node `id`, if it answers.
    fn metrics(&self, agent: &ureq::Agent, id: u64) -> Option<Value> {
        let (status, body) = http(agent, "GET", &self.url(id, "/metrics"), "")?;
        (status == 200).then(|| serde_json::from_str(&body).expect("metrics are JSON"))
    }

    /// The node that says it leads, waited for.
    fn leader(&self, agent: &ureq::Agent) -> u64 {
        let started = Instant::now();
        loop {
            for id in NODES {
                if let Some(metrics) = self.metrics(agent, id) {
                    if metrics["current_leader"].as_u64() == Some(id)
                        && metrics["state"] == "Leader"
                    {
                        return id;
                    }
                }
            }
            assert!(
                started.elapsed() < DEADLINE,
                "no leader within {DEADLINE:?}"
            );
            thread::sleep(POLL);
        }
    }

    /// Write `key = value`, through whichever node leads, until acknowledged.
    fn write(&self, agent: &ureq::Agent, key: &str, value: &str) {
        let started = Instant::now();
        let mut target = NODES[0];
        loop {
            match http(
                agent,
                "PUT",
                &self.url(target, &format!("/kv/{key}")),
                value,
            ) {
                Some((200, _)) => return,
                Some((421, body)) => {
                    let answer: Value = serde_json::from_str(&body).expect("a 421 is JSON");
                    match answer["leader_id"].as_u64() {
                        Some(leader) if leader != target => {
                            target = leader;
                            continue;
                        }
                        // No leader known yet: ask the next node after a pause.
                        _ => target = target % 3 + 1,
                    }
                }
                // Not answered (a node down), or an error while leadership
                // moves: try the next node.
                _ => target = target % 3 + 1,
            }
            assert!(
                started.elapsed() < DEADLINE,
                "{key} not acknowledged within {DEADLINE:?}"
            );
            thread::sleep(POLL);
        }
    }

    /// The value of `key` as node `id` answers it (`?linearizable` or its
    /// own copy).
    fn read(&self, agent: &ureq::Agent, id: u64, key: &str, query: &str) -> Option<String> {
        let (status, body) = http(
            agent,
            "GET",
            &self.url(id, &format!("/kv/{key}{query}")),
            "",
        )
        .unwrap_or_else(|| panic!("node {id} did not answer a read of {key}"));
        assert_eq!(status, 200, "node {id} read {key}{query}: {body}");
        let answer: Value = serde_json::from_str(&body).expect("a read's answer is JSON");
        answer["value"].as_str().map(str::to_owned)
    }

    /// Node `id` answers every write the clients had acknowledged
    /// (`written[client]` keys each) with its value, read with `query`.
    fn assert_holds(&self, agent: &ureq::Agent, id: u64, query: &str, written: &[usize]) {
        for (client, &count) in written.iter().enumerate() {
            for n in 0..count {
                assert_eq!(
                    self.read(agent, id, &key(client, n), query),
                    Some(value(client, n)),
                    "node {id} lacks {} (read{query})",
                    key(client, n)
                );
            }
        }
    }

    /// The last index node `id` applied.
    fn applied(&self, agent: &ureq::Agent, id: u64) -> Option<u64> {
        self.metrics(agent, id)?["last_applied"]["index"].as_u64()
    }
}

fn key(client: usize, n: usize) -> String {
    format!("client{client}-{n:05}")
}

fn value(client: usize, n: usize) -> String {
    format!("value of {client}/{n}")
}

/// Waits until `count` (the clients' acknowledged writes) reaches `target`.
fn wait_for_writes(count: &AtomicUsize, target: usize) {
    let started = Instant::now();
    while count.load(Ordering::SeqCst) < target {
        assert!(
            started.elapsed() < DEADLINE,
            "the clients did not reach {target} acknowledged writes within {DEADLINE:?} ({} now)",
            count.load(Ordering::SeqCst)
        );
        thread::sleep(POLL);
    }
}

#[test]
fn three_processes_keep_every_acknowledged_write_across_leader_kills() {
    let cluster = Arc::new(Cluster::start());
    let agent = agent();
    let members: BTreeMap<String, &String> = cluster
        .addrs
        .iter()
        .map(|(id, addr)| (id.to_string(), addr))
        .collect();
    let members = serde_json::to_string(&members).expect("members as JSON");
    let (status, body) =
        http(&agent, "POST", &cluster.url(1, "/init"), &members).expect("node 1 answers /init");
    assert_eq!(status, 200, "init: {body}");

    let acknowledged = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (cluster, acknowledged, stop) =
                (cluster.clone(), acknowledged.clone(), stop.clone());
            thread::spawn(move || {
                let agent = self::agent();
                let mut written = 0;
                while !stop.load(Ordering::SeqCst) {
                    cluster.write(&agent, &key(client, written), &value(client, written));
                    written += 1;
                    acknowledged.fetch_add(1, Ordering::SeqCst);
                }
                written
            })
        })
        .collect();

    for _ in 0..KILLS {
        wait_for_writes(
            &acknowledged,
            acknowledged.load(Ordering::SeqCst) + PROGRESS,
        );
        let leader = cluster.leader(&agent);
        cluster.kill(leader);
        // The other two elect a leader and the clients go on through it.
        wait_for_writes(
            &acknowledged,
            acknowledged.load(Ordering::SeqCst) + PROGRESS,
        );
        cluster.restart(leader);
    }
    wait_for_writes(
        &acknowledged,
        acknowledged.load(Ordering::SeqCst) + PROGRESS,
    );
    stop.store(true, Ordering::SeqCst);
    let written: Vec<usize> = clients
        .into_iter()
        .map(|client| client.join().expect("a client thread panicked"))
        .collect();

    // Every acknowledged write, read through the leader's read index.
    let leader = cluster.leader(&agent);
    cluster.assert_holds(&agent, leader, "?linearizable", &written);
    // And on every node, once it has applied what the leader applied.
    let target = cluster
        .applied(&agent, leader)
        .expect("the leader's applied index");
    for id in NODES {
        let started = Instant::now();
        while cluster
            .applied(&agent, id)
            .is_none_or(|applied| applied < target)
        {
            assert!(
                started.elapsed() < DEADLINE,
                "node {id} did not apply up to {target} within {DEADLINE:?}"
            );
            thread::sleep(POLL);
        }
        cluster.assert_holds(&agent, id, "", &written);
    }
    assert!(
        written.iter().sum::<usize>() >= (2 * KILLS + 1) * PROGRESS,
        "the clients' acknowledged writes: {written:?}"
    );
}
