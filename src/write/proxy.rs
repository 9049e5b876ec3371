//! A blocking writer leading an async writer's group in its place.
//!
//! An async writer leads from its task's polls, and a task may not be
//! polled for a while, or ever: its executor may be busy, shut down, or
//! blocked, say in a blocking `put` that waits in the queue behind it (a
//! single-threaded runtime would then deadlock). So leadership never
//! waits with a task while a blocking writer waits for it: when it is
//! handed to a task and a blocking writer waits, when a task parks in a
//! write stall holding it and one waits, or when one arrives while a task
//! holds it between polls, the blocking writer takes it over
//! (`WriteQueue`: `hand_off`, `park_lead`, `enter`) and leads the task's
//! group here, on its own thread, waiting out a stall if there is one;
//! then it leads its own group as any leader does. The group is
//! released as an async leader releases one (`insert_and_release`): its
//! batches inserted, its members (the task first) moved on to wait for
//! their own durability and visibility, so the blocking writer waits for
//! none of them, and its completion is handed to whoever writes its
//! record out (`hand_over_completion`), so the blocking writer does not
//! hold the lead through that write either. The task, polled later,
//! finds the lead taken back (`WriteQueue::claim_lead`) and itself a
//! member of the group; a parked task, which registered its waker in its
//! slot before it parked, is woken when the group is released or failed.
//!
//! A `no_slowdown` writer does not wait out a stall for a group that
//! asked to wait: at one it puts the group back at the front of the queue
//! for a leader that may wait, and fails with `WriteStall` as it would in
//! its own group.

use super::pipeline::{CommitEnv, CommitPipeline};
use super::queue::{Led, Stolen};
use super::writer::{Member, Writer};
use crate::error::{Error, Result};
use crate::hook::HookPoint;
use std::sync::Arc;
use std::task::Poll;

impl CommitPipeline {
    /// Lead `stolen`, an async writer's group, from the blocking writer
    /// `proxy` that was made leader in its place (see the module comment),
    /// keeping the lead for `proxy`'s own group. The group's failure is
    /// its members' (they are told), not `proxy`'s. `Err(WriteStall)`
    /// only when `proxy_no_slowdown` and the group met a stall it asked to
    /// wait out: the group went back to the queue and the lead was handed
    /// on; `proxy` fails.
    pub(super) fn lead_for_task<E: CommitEnv>(
        &self,
        env: &E,
        proxy: &Arc<Writer>,
        proxy_no_slowdown: bool,
        stolen: Stolen,
    ) -> Result<()> {
        // The group goes into `proxy`'s list before anything that may
        // panic: a panic fails the writers in that list (`panicked`), and
        // the stolen ones, the task among them (`Queued` again), are
        // nowhere else. The task's list is emptied first, not drained into
        // `proxy`'s: both are member lists, which the lock order does not
        // nest, and a move cannot fail between the two.
        let parked: Vec<Member> = match &stolen {
            Stolen::Parked(task) => std::mem::take(&mut *task.members.lock()),
            Stolen::Offered(_) => Vec::new(),
        };
        let mut members = proxy.members.lock();
        match stolen {
            // The head goes in first (`take_group`).
            Stolen::Offered(head) => self.queue.take_group(
                head,
                Led::ByThread,
                self.config.max_group_bytes,
                &mut members,
            ),
            Stolen::Parked(_) => {
                let before = std::mem::replace(&mut *members, parked);
                debug_assert!(before.is_empty(), "a leader's list starts empty");
            }
        }
        if members.is_empty() {
            return Ok(());
        }
        env.hook(HookPoint::WriteGroupLeader);
        let group_no_slowdown = members[0].ask.no_slowdown;
        let sequenced = match self.try_sequence(
            env,
            &mut members,
            None,
            group_no_slowdown || proxy_no_slowdown,
        ) {
            Poll::Ready(sequenced) => sequenced,
            // Only a leader with a stall park parks.
            Poll::Pending => Err(Error::WriteStall),
        };
        if proxy_no_slowdown && !group_no_slowdown && matches!(sequenced, Err(Error::WriteStall)) {
            self.queue.requeue_front(members.drain(..));
            self.queue.hand_off();
            return Err(Error::WriteStall);
        }
        env.hook(HookPoint::WriteGroupSequenced);
        let released = Self::insert_and_release(env, None, &members, sequenced);
        // The list holds the members' slots: emptied before `proxy`
        // takes its own group into it.
        members.clear();
        drop(members);
        if let Ok((group, true)) = released {
            // Handed over, not awaited: `proxy` still leads the queue, and
            // the group's record may wait for a drain someone else holds
            // (an fsync). A failure is the group's: held back, and its
            // members meet it.
            self.hand_over_completion(env, &group);
        }
        Ok(())
    }
}
