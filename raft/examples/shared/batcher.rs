//! Gathers concurrent client writes into one log entry
//! (`Request::Batch`): openraft 0.9.25's leader makes one durable
//! append per `client_write` and none in parallel (docs/design/raft.md,
//! "Performance"), so a write's fsync is shared only if the application
//! puts several writes in one entry, as TiKV batches proposals.
//!
//! Clients hand their request to one task. It takes the first waiting
//! request, waits until fewer than `in_flight` batches are being
//! replicated (the writes that arrive meanwhile queue up: that is where
//! batches grow), then takes every request waiting, up to `max`, and
//! sends them as one `client_write` (a lone request as itself, not as a
//! batch of one). Each client hears its own request's response
//! (`Request::response`) once the entry is applied, or the error.

use openraft::error::{ClientWriteError, Fatal, RaftError};
use openraft::{BasicNode, LogId, Raft};
use std::sync::Arc;
use strata_raft::{NodeId, Request, Response, TypeConfig};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// What a write through the batcher fails with: openraft's error for the
/// batch's `client_write` (a follower's `ForwardToLeader` included), each
/// client getting a copy.
pub type WriteError = RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>;

/// A client's request and where its answer goes.
type Pending = (Request, oneshot::Sender<Result<Written, WriteError>>);

/// A write's answer: the log id of the entry that carried it, and its
/// response.
pub type Written = (LogId<NodeId>, Response);

/// A handle for clients; cloning gives another.
#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Batcher {
    /// Start the batching task writing to `raft` (the leader), at most
    /// `in_flight` entries at a time, each of at most `max` requests.
    pub fn start(raft: Raft<TypeConfig>, in_flight: usize, max: usize) -> Batcher {
        let (tx, mut rx) = mpsc::unbounded_channel::<Pending>();
        let slots = Arc::new(Semaphore::new(in_flight));
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let mut pending = vec![first];
                while pending.len() < max {
                    match rx.try_recv() {
                        Ok(next) => pending.push(next),
                        Err(_) => break,
                    }
                }
                let raft = raft.clone();
                tokio::spawn(async move {
                    let (mut requests, replies): (Vec<Request>, Vec<_>) =
                        pending.into_iter().unzip();
                    let responses: Vec<Response> = requests.iter().map(Request::response).collect();
                    let request = if requests.len() == 1 {
                        requests.remove(0)
                    } else {
                        Request::Batch(requests)
                    };
                    let result = raft.client_write(request).await;
                    drop(slot);
                    match result {
                        Ok(written) => {
                            for (reply, response) in replies.into_iter().zip(responses) {
                                // The client may have stopped waiting.
                                let _ = reply.send(Ok((written.log_id, response)));
                            }
                        }
                        Err(e) => {
                            for reply in replies {
                                let _ = reply.send(Err(e.clone()));
                            }
                        }
                    }
                });
            }
        });
        Batcher { tx }
    }

    /// Write `request` in the next batch; its entry's log id and its
    /// response once applied.
    /// Fails with `Fatal::Stopped` once the batching task has ended (the
    /// runtime is shutting down).
    pub async fn write(&self, request: Request) -> Result<Written, WriteError> {
        let stopped = || RaftError::Fatal(Fatal::Stopped);
        let (reply, answer) = oneshot::channel();
        self.tx.send((request, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}
