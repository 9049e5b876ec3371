//! A replicated key-value service: one node of a Raft cluster whose log
//! and state machine live in one strata database (`strata-raft`), talking
//! HTTP to clients and to the other nodes on loopback.
//!
//! ```text
//! cargo run -p strata-raft --example kv-service -- --id 1 --addr 127.0.0.1:21001 --dir /tmp/kv/1
//! cargo run -p strata-raft --example kv-service -- --id 2 --addr 127.0.0.1:21002 --dir /tmp/kv/2
//! cargo run -p strata-raft --example kv-service -- --id 3 --addr 127.0.0.1:21003 --dir /tmp/kv/3
//! curl -X POST 127.0.0.1:21001/init -d '{"1":"127.0.0.1:21001","2":"127.0.0.1:21002","3":"127.0.0.1:21003"}'
//! curl -X PUT 127.0.0.1:21001/kv/greeting -d hello
//! curl '127.0.0.1:21002/kv/greeting?linearizable'   # refused on a follower: names the leader
//! curl '127.0.0.1:21001/kv/greeting?linearizable'
//! curl -X DELETE 127.0.0.1:21001/kv/greeting
//! curl 127.0.0.1:21003/metrics
//! ```
//!
//! `api.rs` is the HTTP server (clients and Raft RPCs), `network.rs`
//! openraft's network over HTTP.

mod api;
#[path = "../shared/batcher.rs"]
mod batcher;
mod network;

use clap::Parser;
use openraft::{Config, Raft};
use std::path::PathBuf;
use std::sync::Arc;
use strata_raft::{NodeId, TypeConfig};

/// One node of the replicated key-value service.
#[derive(Parser)]
struct Args {
    /// This node's id (the cluster's members are named at `/init`).
    #[arg(long)]
    id: NodeId,
    /// Where this node serves HTTP, clients and other nodes alike (port 0:
    /// one the system picks; the line the node prints names it).
    #[arg(long)]
    addr: String,
    /// The node's directory: its database in `db/`, snapshots in
    /// `snapshots/`.
    #[arg(long)]
    dir: PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let db = strata::Db::open(args.dir.join("db"), strata::Options::default())?;
    // With the node's id, the committed log id is synced only while this
    // node leads (the one place openraft reads it back as a read index).
    let storage = strata_raft::StorageOptions {
        node_id: Some(args.id),
        ..strata_raft::StorageOptions::default()
    };
    let (log, state_machine) = strata_raft::open_with(&db, args.dir.join("snapshots"), &storage)?;
    let config = Config {
        heartbeat_interval: 250,
        election_timeout_min: 1000,
        election_timeout_max: 2000,
        ..Config::default()
    }
    .validate()?;
    let raft: Raft<TypeConfig> = runtime.block_on(Raft::new(
        args.id,
        Arc::new(config),
        network::HttpNetwork::default(),
        log,
        state_machine.clone(),
    ))?;
    let server = api::listen(&args.addr)?;
    // Printed once the port is bound, so whoever reads it (a script, the
    // three-process test) can connect at once.
    eprintln!(
        "node {} serving on http://{}",
        args.id,
        server.server_addr()
    );
    // Writes waiting while two entries replicate go together in the next
    // (at most 1,024 a entry): a write's fsyncs are shared only within an
    // entry (docs/design/raft.md, "Performance").
    let batcher = {
        let _entered = runtime.enter();
        batcher::Batcher::start(raft.clone(), 2, 1024)
    };
    let node = api::Node {
        raft,
        batcher,
        state_machine,
        runtime: runtime.handle().clone(),
    };
    api::serve(server, Arc::new(node));
    Ok(())
}
