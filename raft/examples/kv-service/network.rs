//! openraft's network over HTTP: each RPC is a JSON POST to the target
//! node's `/raft/...` route (see `api.rs`), answered with the JSON of the
//! target's `Result`. The blocking HTTP client (ureq) runs on tokio's
//! blocking threads.

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;
use strata_raft::{NodeId, TypeConfig};

/// Makes a [`Connection`] per target node, sharing one HTTP agent
/// (its connection pool).
#[derive(Clone)]
pub struct HttpNetwork {
    agent: ureq::Agent,
}

impl Default for HttpNetwork {
    fn default() -> Self {
        let config = ureq::Agent::config_builder()
            // openraft times RPCs out itself; this only bounds a hung peer.
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        HttpNetwork {
            agent: config.into(),
        }
    }
}

/// RPCs to one node, at its address.
pub struct Connection {
    agent: ureq::Agent,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Connection {
        Connection {
            agent: self.agent.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

impl Connection {
    /// POST `request` to `route` on the target; its answer is the JSON of
    /// the target's `Result<Resp, E>`.
    async fn call<Req, Resp, E>(
        &self,
        route: &str,
        request: Req,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        Req: Serialize + Send + 'static,
        Resp: DeserializeOwned + Send + 'static,
        E: std::error::Error + DeserializeOwned + Send + 'static,
    {
        let agent = self.agent.clone();
        let url = format!("http://{}/raft/{route}", self.addr);
        let answer = tokio::task::spawn_blocking(move || {
            agent
                .post(&url)
                .send_json(&request)?
                .body_mut()
                .read_json::<Result<Resp, E>>()
        })
        .await
        .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?
        .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call("append", rpc).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call("snapshot", rpc).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call("vote", rpc).await
    }
}
