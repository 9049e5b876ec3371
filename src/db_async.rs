//! The async half of the handle: writes that resolve when durable, and
//! waits for background work, as futures any executor can poll (std's
//! `Future` and `Waker` only; no runtime is assumed).
//!
//! Reads stay synchronous: a get or a scan reads the memtable and blocks
//! through the block cache and the page cache, with no wait for another
//! thread's progress to hand to a waker; an async read would cost a task
//! switch for nothing. A read that misses the page cache waits for the
//! disk as a synchronous file read does anywhere in an async program.

use crate::error::Result;
use crate::options::WriteOptions;
use crate::panics::catch_panic;
use crate::write::AsyncWrite;
use crate::{Db, Keyspace, WriteBatch};
use std::future::Future;
use std::ops::RangeBounds;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// A write in progress: resolves when the write is visible and as durable
/// as its [`WriteOptions`] asked (see [`Db::write_async`]).
///
/// Dropped before it resolves: if the write still waited in the write
/// queue (no leader had taken it), it is withdrawn and not applied; if
/// a write group had taken it, it is applied, and becomes as durable as
/// any write of its group. Either way no batch is ever half applied.
#[must_use = "a write future does nothing unless polled"]
pub struct WriteFuture {
    /// Keeps the database open while the write is under way.
    db: Db,
    state: State,
}

enum State {
    Write(AsyncWrite),
    /// An empty `sync` batch: a sync point for what came before.
    SyncPoint(u64),
    /// Refused (or nothing to do) before it started: the answer.
    Ready(Result<()>),
    /// Resolved: its answer was given.
    Resolved,
}

impl Future for WriteFuture {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        let inner = this.db.inner();
        let polled = match &mut this.state {
            State::Write(op) => inner.poll_async_write(op, cx),
            State::SyncPoint(target) => inner.poll_flush_wal(*target, true, cx.waker()),
            // Taken out; the state becomes `Resolved` below.
            State::Ready(result) => {
                Poll::Ready(std::mem::replace(result, Err(crate::Error::Closed)))
            }
            // Polling a finished future breaks `Future`'s contract; an
            // answer of `Pending` with no waker kept would hang its
            // executor (a test did so), and `Ok` would repeat a success
            // that may have been a failure.
            State::Resolved => {
                return Poll::Ready(Err(crate::Error::InvalidArgument(
                    "a WriteFuture was polled again after it resolved".into(),
                )))
            }
        };
        if polled.is_ready() {
            this.state = State::Resolved;
        }
        polled
    }
}

impl Drop for WriteFuture {
    fn drop(&mut self) {
        let State::Write(op) = &mut self.state else {
            return;
        };
        if op.is_done() {
            return;
        }
        if let Some(owed) = self.db.inner().cancel_async_write(op) {
            finish_detached(self.db.clone(), owed);
        }
    }
}

/// Finish what a dropped write owes its group on a thread of its own, so
/// the drop never blocks the executor thread it runs on. Rare: only a
/// write dropped in the moment a leader had taken it out of the queue
/// but not yet told it what it did with it. Until the thread is done it
/// holds the database open.
fn finish_detached(db: Db, op: AsyncWrite) {
    fn run(db: Db, mut op: AsyncWrite) {
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        // The result is nobody's: the future is gone.
        while db.inner().poll_async_write(&mut op, &mut cx).is_pending() {
            std::thread::park();
        }
    }
    let ours = Arc::new(parking_lot::Mutex::new(Some((db, op))));
    let theirs = Arc::clone(&ours);
    let spawned = std::thread::Builder::new()
        .name("strata-write-finisher".into())
        .spawn(move || {
            if let Some((db, op)) = theirs.lock().take() {
                // A panic in a step is a background error already (the
                // poll's guard); one outside it must not go unheard.
                if let Err(e) = catch_panic("write finisher", || run(db.clone(), op)) {
                    db.inner().set_bg_error(e);
                }
            }
        });
    if spawned.is_err() {
        // No thread to be had: finish here, blocking, rather than leave
        // the group unfinished.
        if let Some((db, op)) = ours.lock().take() {
            run(db, op);
        }
    }
}

/// A waker that unparks a thread.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// A wait for the WAL or for background work, as a future (see
/// [`Db::flush_wal_async`], [`Db::wait_for_compactions_async`]).
#[must_use = "a future does nothing unless polled"]
pub struct WaitFuture {
    db: Db,
    what: Wait,
}

enum Wait {
    /// Everything logged up to this position written, and synced if asked.
    WalFlushed { target: u64, sync: bool },
    /// No flush or compaction running or due.
    CompactionsIdle,
}

impl Future for WaitFuture {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let inner = self.db.inner();
        match self.what {
            Wait::WalFlushed { target, sync } => inner.poll_flush_wal(target, sync, cx.waker()),
            Wait::CompactionsIdle => inner.poll_compactions_idle(cx.waker()),
        }
    }
}

impl WriteFuture {
    /// A future that resolves at once with `result` (a write refused
    /// before it reached the write path).
    fn ready(db: Db, result: Result<()>) -> Self {
        WriteFuture {
            db,
            state: State::Ready(result),
        }
    }
}

impl Db {
    /// [`write_opt`](Db::write_opt) as a future: it joins the same write
    /// groups as the blocking writers and resolves when the batch is
    /// visible and as durable as `opts` asks (with `sync`, once the WAL
    /// syncer thread's fsync covers it), without blocking or parking the
    /// thread that polls it. A write stall is awaited, not slept.
    /// Dropping the future before it resolves never half-applies the
    /// batch (see [`WriteFuture`]). Blocking writes may be mixed with
    /// async ones, even on the executor's own threads: a blocking write
    /// never waits for a future to be polled (it leads that write's group
    /// itself if it must).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = strata::Db::open(dir.path(), strata::Options::default())?;
    /// let mut batch = db.new_batch();
    /// batch.put(b"a", b"1");
    /// batch.delete(b"b");
    /// let opts = strata::WriteOptions { sync: true, ..Default::default() };
    /// // Any executor polls it; here a minimal one.
    /// futures_executor::block_on(db.write_async(batch, &opts))?;
    /// assert_eq!(db.get(b"a")?.as_deref(), Some(&b"1"[..]));
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn write_async(&self, batch: WriteBatch, opts: &WriteOptions) -> WriteFuture {
        let state = match self.inner().async_write(batch, opts) {
            Ok(Some(op)) => State::Write(op),
            Ok(None) if opts.sync && !opts.disable_wal => {
                State::SyncPoint(self.inner().wal_flush_target())
            }
            Ok(None) => State::Ready(Ok(())),
            Err(e) => return WriteFuture::ready(self.clone(), Err(e)),
        };
        WriteFuture {
            db: self.clone(),
            state,
        }
    }

    /// [`put_opt`](Db::put_opt) as a future (see [`write_async`](Db::write_async)).
    pub fn put_async(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        opts: &WriteOptions,
    ) -> WriteFuture {
        let mut batch = self.new_batch();
        batch.put(key, value);
        self.write_async(batch, opts)
    }

    /// [`delete_opt`](Db::delete_opt) as a future (see [`write_async`](Db::write_async)).
    pub fn delete_async(&self, key: impl AsRef<[u8]>, opts: &WriteOptions) -> WriteFuture {
        let mut batch = self.new_batch();
        batch.delete(key);
        self.write_async(batch, opts)
    }

    /// [`delete_range_opt`](Db::delete_range_opt) as a future (see
    /// [`write_async`](Db::write_async)): one record however many keys
    /// `range` holds. Inverted bounds resolve to
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) and write
    /// nothing; an empty range writes nothing and, with `sync`, resolves
    /// once what was acknowledged before it is synced, as `delete_range_opt`
    /// does.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = strata::Db::open(dir.path(), strata::Options::default())?;
    /// db.put(b"a", b"1")?;
    /// db.put(b"b", b"2")?;
    /// let opts = strata::WriteOptions::default();
    /// futures_executor::block_on(db.delete_range_async(&b"a"[..]..&b"b"[..], &opts))?;
    /// assert!(db.get(b"a")?.is_none() && db.get(b"b")?.is_some());
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn delete_range_async<K: AsRef<[u8]>>(
        &self,
        range: impl RangeBounds<K>,
        opts: &WriteOptions,
    ) -> WriteFuture {
        let mut batch = self.new_batch();
        batch.delete_range(range);
        self.write_async(batch, opts)
    }

    /// [`delete_prefix_opt`](Db::delete_prefix_opt) as a future (see
    /// [`delete_range_async`](Db::delete_range_async)).
    pub fn delete_prefix_async(
        &self,
        prefix: impl AsRef<[u8]>,
        opts: &WriteOptions,
    ) -> WriteFuture {
        let mut batch = self.new_batch();
        batch.delete_prefix(prefix);
        self.write_async(batch, opts)
    }

    /// [`flush_wal`](Db::flush_wal) as a future: resolves once every
    /// record logged before the call is written to the WAL file, and
    /// synced if `sync` (by the WAL syncer thread).
    pub fn flush_wal_async(&self, sync: bool) -> WaitFuture {
        let target = self.inner().wal_flush_target();
        WaitFuture {
            db: self.clone(),
            what: Wait::WalFlushed { target, sync },
        }
    }

    /// [`wait_for_compactions`](Db::wait_for_compactions) as a future:
    /// resolves when no flush or compaction is running or due.
    pub fn wait_for_compactions_async(&self) -> WaitFuture {
        WaitFuture {
            db: self.clone(),
            what: Wait::CompactionsIdle,
        }
    }
}

impl Keyspace {
    /// [`put_opt`](Keyspace::put_opt) as a future (see
    /// [`Db::write_async`]). After [`Db::drop_keyspace`] it resolves to
    /// [`Error::KeyspaceDropped`](crate::Error::KeyspaceDropped), as
    /// `put_opt` fails.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = strata::Db::open(dir.path(), strata::Options::default())?;
    /// let users = db.keyspace("users")?;
    /// let opts = strata::WriteOptions { sync: true, ..Default::default() };
    /// futures_executor::block_on(users.put_async(b"u1", b"ada", &opts))?;
    /// assert_eq!(users.get(b"u1")?.as_deref(), Some(&b"ada"[..]));
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn put_async(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        opts: &WriteOptions,
    ) -> WriteFuture {
        if let Err(e) = self.state().check_live() {
            return WriteFuture::ready(self.db().clone(), Err(e));
        }
        let mut batch = self.db().new_batch();
        batch.put_in(self, key, value);
        self.db().write_async(batch, opts)
    }

    /// [`delete_opt`](Keyspace::delete_opt) as a future (see
    /// [`put_async`](Keyspace::put_async)).
    pub fn delete_async(&self, key: impl AsRef<[u8]>, opts: &WriteOptions) -> WriteFuture {
        if let Err(e) = self.state().check_live() {
            return WriteFuture::ready(self.db().clone(), Err(e));
        }
        let mut batch = self.db().new_batch();
        batch.delete_in(self, key);
        self.db().write_async(batch, opts)
    }

    /// [`delete_range_opt`](Keyspace::delete_range_opt) as a future (see
    /// [`Db::delete_range_async`]).
    pub fn delete_range_async<K: AsRef<[u8]>>(
        &self,
        range: impl RangeBounds<K>,
        opts: &WriteOptions,
    ) -> WriteFuture {
        if let Err(e) = self.state().check_live() {
            return WriteFuture::ready(self.db().clone(), Err(e));
        }
        let mut batch = self.db().new_batch();
        batch.delete_range_in(self, range);
        self.db().write_async(batch, opts)
    }

    /// [`delete_prefix_opt`](Keyspace::delete_prefix_opt) as a future (see
    /// [`Db::delete_range_async`]).
    pub fn delete_prefix_async(
        &self,
        prefix: impl AsRef<[u8]>,
        opts: &WriteOptions,
    ) -> WriteFuture {
        if let Err(e) = self.state().check_live() {
            return WriteFuture::ready(self.db().clone(), Err(e));
        }
        let mut batch = self.db().new_batch();
        batch.delete_prefix_in(self, prefix);
        self.db().write_async(batch, opts)
    }
}
