//! An in-process Raft network in the manner of openraft's memstore test
//! router: every node's `Raft` handle sits in one map, and an RPC to a
//! node is a direct call of that node's handler (no sockets, no
//! serialisation). An RPC to a node not in the map is `Unreachable`.
//!
//! Shared by the cluster test (`tests/cluster.rs`, each node's state
//! machine beside its handle, `S = StateMachineStore`, and a power switch
//! per boot: [`Net`]) and the `raft-bench` example (`S = ()`, the router
//! itself as the network), both including it by `#[path]`.

// Each includer uses part of it.
#![allow(dead_code)]

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use strata_raft::{NodeId, TypeConfig};

/// The running nodes, by id, each with a handle `S` its owner keeps
/// beside it (for reads of its state machine, say).
#[derive(Clone)]
pub struct Router<S> {
    nodes: Arc<Mutex<Nodes<S>>>,
}

/// Each running node's Raft handle and the handle kept beside it.
type Nodes<S> = BTreeMap<NodeId, (Raft<TypeConfig>, S)>;

impl<S> Default for Router<S> {
    fn default() -> Self {
        Router {
            nodes: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }
}

impl<S: Clone> Router<S> {
    /// Node `id` is up: RPCs to it reach `raft`.
    pub fn insert(&self, id: NodeId, raft: Raft<TypeConfig>, handle: S) {
        self.nodes
            .lock()
            .expect("router")
            .insert(id, (raft, handle));
    }

    /// Node `id` is down: RPCs to it are unreachable from now on.
    pub fn remove(&self, id: NodeId) {
        self.nodes.lock().expect("router").remove(&id);
    }

    /// Node `id`'s Raft handle, if it runs.
    pub fn get(&self, id: NodeId) -> Option<Raft<TypeConfig>> {
        self.nodes
            .lock()
            .expect("router")
            .get(&id)
            .map(|(raft, _)| raft.clone())
    }

    /// The handle kept beside node `id`, if it runs.
    pub fn handle(&self, id: NodeId) -> Option<S> {
        self.nodes
            .lock()
            .expect("router")
            .get(&id)
            .map(|(_, handle)| handle.clone())
    }

    /// Node `id`'s Raft handle and the handle beside it, taken together
    /// (one boot's), if it runs.
    pub fn node(&self, id: NodeId) -> Option<(Raft<TypeConfig>, S)> {
        self.nodes.lock().expect("router").get(&id).cloned()
    }

    /// The ids of the running nodes.
    pub fn running(&self) -> Vec<NodeId> {
        self.nodes.lock().expect("router").keys().copied().collect()
    }
}

/// One boot of node `from` as the network sees it: RPCs it sends once
/// its power is off (`off`) are lost, as a dead machine sends nothing
/// (openraft's replication tasks outlive `Raft::shutdown` for a moment).
#[derive(Clone)]
pub struct Net<S> {
    pub router: Router<S>,
    pub from: NodeId,
    pub off: Arc<AtomicBool>,
}

/// A connection from one node to `target` through the router.
pub struct Connection<S> {
    router: Router<S>,
    /// The sending boot's power switch and id, if it has one.
    off: Option<(Arc<AtomicBool>, NodeId)>,
    target: NodeId,
}

impl<S: Clone> Connection<S> {
    fn target<E: std::error::Error>(
        &self,
    ) -> Result<Raft<TypeConfig>, RPCError<NodeId, BasicNode, E>> {
        if let Some((off, from)) = &self.off {
            if off.load(Ordering::SeqCst) {
                return Err(RPCError::Unreachable(Unreachable::new(
                    &std::io::Error::other(format!("node {from} is off")),
                )));
            }
        }
        self.router.get(self.target).ok_or_else(|| {
            RPCError::Unreachable(Unreachable::new(&std::io::Error::other(format!(
                "node {} is down",
                self.target
            ))))
        })
    }
}

impl<S: Clone + Send + Sync + 'static> RaftNetworkFactory<TypeConfig> for Router<S> {
    type Network = Connection<S>;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection<S> {
        Connection {
            router: self.clone(),
            off: None,
            target,
        }
    }
}

impl<S: Clone + Send + Sync + 'static> RaftNetworkFactory<TypeConfig> for Net<S> {
    type Network = Connection<S>;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection<S> {
        Connection {
            router: self.router.clone(),
            off: Some((Arc::clone(&self.off), self.from)),
            target,
        }
    }
}

impl<S: Clone + Send + Sync + 'static> RaftNetwork<TypeConfig> for Connection<S> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.target()?;
        raft.append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let raft = self.target()?;
        raft.install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.target()?;
        raft.vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}
