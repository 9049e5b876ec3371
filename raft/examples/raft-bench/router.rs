//! An in-process Raft network in the manner of openraft's memstore test
//! router: every node's `Raft` handle sits in one map, and an RPC to a
//! node is a direct call of that node's handler (no sockets, no
//! serialisation). An RPC to a node not in the map is `Unreachable`.
//!
//! The benchmark keeps nothing beside each handle (`S = ()`), so the
//! same router carries the strata store and the in-memory one. The
//! cluster test (`tests/cluster.rs`) has its own router, which also cuts
//! a powered-off boot's RPCs.

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use std::collections::BTreeMap;
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
    // The benchmark stops whole clusters; only the cluster test takes
    // one node away.
    #[allow(dead_code)]
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
    // Used by the cluster test (state machine reads), not the benchmark.
    #[allow(dead_code)]
    pub fn handle(&self, id: NodeId) -> Option<S> {
        self.nodes
            .lock()
            .expect("router")
            .get(&id)
            .map(|(_, handle)| handle.clone())
    }

    /// The ids of the running nodes.
    // The benchmark knows its nodes; the cluster test asks.
    #[allow(dead_code)]
    pub fn running(&self) -> Vec<NodeId> {
        self.nodes.lock().expect("router").keys().copied().collect()
    }
}

/// A connection from one node to `target` through the router.
pub struct Connection<S> {
    router: Router<S>,
    target: NodeId,
}

impl<S: Clone> Connection<S> {
    fn target<E: std::error::Error>(
        &self,
    ) -> Result<Raft<TypeConfig>, RPCError<NodeId, BasicNode, E>> {
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
