//! The node's HTTP server (tiny_http, a thread per request): the client
//! API and the routes other nodes' RPCs arrive on.
//!
//! | route | does |
//! |-------|------|
//! | `POST /init` | initialize the cluster; body: `{"<id>": "<addr>", ...}` |
//! | `PUT /kv/<key>` | set the key to the body (on the leader) |
//! | `DELETE /kv/<key>` | delete the key (on the leader) |
//! | `GET /kv/<key>` | this node's value (may be stale) |
//! | `GET /kv/<key>?linearizable` | the value, after openraft's read index confirms this node leads and has applied every committed write |
//! | `GET /metrics` | openraft's metrics, as JSON |
//! | `POST /raft/{append,vote,snapshot}` | Raft RPCs from other nodes |
//!
//! A write or linearizable read sent to a follower is answered 421 with
//! the leader's id and address.

use crate::batcher::Batcher;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use strata_raft::{NodeId, Request, StateMachineStore, TypeConfig};
use tiny_http::{Header, Method, Response, Server};

/// What the handlers need: the node's Raft handle, the batcher its
/// writes go through, its state machine (for reads) and the runtime
/// openraft runs on.
pub struct Node {
    pub raft: Raft<TypeConfig>,
    pub batcher: Batcher,
    pub state_machine: StateMachineStore,
    pub runtime: tokio::runtime::Handle,
}

/// An answer: status code and JSON body.
type Reply = (u16, String);

fn json(status: u16, value: &impl Serialize) -> Reply {
    match serde_json::to_string(value) {
        Ok(body) => (status, body),
        Err(e) => (500, format!("{{\"error\":\"encode the answer: {e}\"}}")),
    }
}

fn error(status: u16, message: impl std::fmt::Display) -> Reply {
    json(status, &serde_json::json!({ "error": message.to_string() }))
}

/// Listen for HTTP on `addr`.
pub fn listen(addr: &str) -> Result<Server, Box<dyn std::error::Error>> {
    Ok(Server::http(addr).map_err(|e| format!("listen on {addr}: {e}"))?)
}

/// Serve HTTP on `server` until the process ends.
pub fn serve(server: Server, node: Arc<Node>) {
    for mut request in server.incoming_requests() {
        let node = node.clone();
        std::thread::spawn(move || {
            let mut body = Vec::new();
            let (status, text) = match request.as_reader().read_to_end(&mut body) {
                Ok(_) => route(&node, request.method(), request.url(), body),
                Err(e) => error(400, format!("read the request body: {e}")),
            };
            let mut response = Response::from_string(text).with_status_code(status);
            if let Ok(header) = Header::from_bytes("Content-Type", "application/json") {
                response = response.with_header(header);
            }
            // The client may have gone; nothing to do then.
            let _ = request.respond(response);
        });
    }
}

fn route(node: &Node, method: &Method, url: &str, body: Vec<u8>) -> Reply {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    match (method, path) {
        (Method::Post, "/raft/append") => rpc(body, |rpc| node.raft.append_entries(rpc), node),
        (Method::Post, "/raft/vote") => rpc(body, |rpc| node.raft.vote(rpc), node),
        (Method::Post, "/raft/snapshot") => rpc(body, |rpc| node.raft.install_snapshot(rpc), node),
        (Method::Post, "/init") => init(node, &body),
        (Method::Get, "/metrics") => json(200, &*node.raft.metrics().borrow()),
        (method, path) if path.starts_with("/kv/") => {
            let key = path["/kv/".len()..].to_owned();
            match method {
                Method::Get => read(node, &key, query.split('&').any(|q| q == "linearizable")),
                Method::Put => match String::from_utf8(body) {
                    Ok(value) => write(node, Request::Set { key, value }),
                    Err(_) => error(400, "the value is not UTF-8"),
                },
                Method::Delete => write(node, Request::Delete { key }),
                _ => error(405, format!("{method} is not a key-value method")),
            }
        }
        _ => error(404, format!("no route {method} {path}")),
    }
}

/// A Raft RPC from another node: decode, hand to openraft, answer the
/// JSON of its `Result` (network.rs decodes it).
fn rpc<Req, Resp, E, F>(body: Vec<u8>, call: impl FnOnce(Req) -> F, node: &Node) -> Reply
where
    Req: DeserializeOwned,
    Resp: Serialize,
    E: Serialize,
    F: std::future::Future<Output = Result<Resp, E>>,
{
    match serde_json::from_slice::<Req>(&body) {
        Ok(request) => json(200, &node.runtime.block_on(call(request))),
        Err(e) => error(400, format!("decode the RPC: {e}")),
    }
}

fn init(node: &Node, body: &[u8]) -> Reply {
    let members: BTreeMap<NodeId, String> = match serde_json::from_slice(body) {
        Ok(members) => members,
        Err(e) => {
            return error(
                400,
                format!("the body is not {{\"<id>\": \"<addr>\"}}: {e}"),
            )
        }
    };
    let members: BTreeMap<NodeId, BasicNode> = members
        .into_iter()
        .map(|(id, addr)| (id, BasicNode { addr }))
        .collect();
    match node.runtime.block_on(node.raft.initialize(members)) {
        Ok(()) => json(200, &serde_json::json!({ "initialized": true })),
        Err(e) => error(409, e),
    }
}

/// A write's answer: the state machine's response, or where the leader is.
/// Concurrent writes share one log entry (`Batcher`), so they share its
/// appends' fsyncs.
fn write(node: &Node, request: Request) -> Reply {
    match node.runtime.block_on(node.batcher.write(request)) {
        Ok((log_id, response)) => json(
            200,
            &serde_json::json!({ "log_id": log_id, "value": response.value }),
        ),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(to))) => json(
            421,
            &serde_json::json!({
                "error": "not the leader",
                "leader_id": to.leader_id,
                "leader_addr": to.leader_node.map(|n| n.addr),
            }),
        ),
        Err(e) => error(503, e),
    }
}

fn read(node: &Node, key: &str, linearizable: bool) -> Reply {
    if linearizable {
        if let Err(e) = node.runtime.block_on(node.raft.ensure_linearizable()) {
            let leader = node.raft.metrics().borrow().current_leader;
            return json(
                421,
                &serde_json::json!({ "error": e.to_string(), "leader_id": leader }),
            );
        }
    }
    match node.state_machine.get(key) {
        Ok(value) => json(200, &serde_json::json!({ "key": key, "value": value })),
        Err(e) => error(500, e),
    }
}
