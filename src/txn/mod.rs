//! Optimistic transactions (docs/design/transactions.md).
//!
//! A [`Transaction`] reads at its snapshot and buffers its writes
//! (`buffer.rs`), showing them to its own reads (`iter.rs`). At commit its
//! writes become one batch that goes through the ordinary write path, group
//! commit included, carrying a [`Certificate`]: the keys (and, serializable,
//! the ranges) that no commit after its snapshot may have written. The
//! write group's leader checks it against the oracle of recent commits
//! (`oracle.rs`) in the critical section that numbers the group, so
//! certification order is sequence order. A snapshot older than the
//! oracle's record is validated by lookups (`lookup.rs`) first.

mod buffer;
mod cursor;
mod deleted;
mod footprint;
mod iter;
mod lookup;
mod oracle;

pub use cursor::TransactionCursor;
pub(crate) use footprint::Footprint;
pub use iter::TransactionIter;
pub(crate) use oracle::{Certificate, Oracle, OracleShared, Verdict};

use crate::batch::range_to_span;
use crate::core::DbInner;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::keyspace::{Keyspace, KeyspaceState};
use crate::options::WriteOptions;
use crate::read::ReadSpec;
use crate::snapshot::Snapshot;
use buffer::{Op, WriteBuffer};
use bytes::Bytes;
use footprint::KeyRange;
use std::ops::RangeBounds;
use std::sync::Arc;
use strata_sstable::SeqNo;

/// How much a transaction is isolated from the commits made while it runs,
/// in the terms of Adya and of Berenson et al. (docs/design/transactions.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Isolation {
    /// Snapshot isolation: reads see the snapshot taken at the start (and
    /// the transaction's own writes); the commit fails if a commit made
    /// after the snapshot wrote a key this one writes (a range delete
    /// writes every key in its range), or read with
    /// [`Transaction::get_for_update`]. Forbids G0, G1 and lost updates;
    /// allows write skew (G2-item with two anti-dependencies) and
    /// phantoms. RocksDB's optimistic transactions.
    #[default]
    Snapshot,
    /// Serializable: also fails if a commit after the snapshot wrote any
    /// key it read, or into any range, prefix or iterator it read. Every
    /// committed history is equivalent to running the transactions one
    /// at a time in commit order (forbids G2).
    Serializable,
}

/// A transaction's settings.
#[derive(Clone, Debug)]
pub struct TransactionOptions {
    /// Default [`Isolation::Snapshot`].
    pub isolation: Isolation,
    /// The most bytes of writes it may buffer (keys, values and about 8
    /// bytes a record); past it a write fails with
    /// [`Error::TransactionTooLarge`] and the transaction is unchanged.
    /// Default 64 MiB. RocksDB: `TransactionOptions::max_write_batch_size`.
    pub max_write_bytes: usize,
    /// The most reads a serializable transaction tracks (keys read, and
    /// ranges read); past it a read fails with
    /// [`Error::TransactionTooLarge`]. Default 1,000,000.
    pub max_tracked_reads: usize,
    /// How the commit is written (`sync`, `disable_wal`, `no_slowdown`).
    pub write_options: WriteOptions,
}

impl Default for TransactionOptions {
    fn default() -> Self {
        TransactionOptions {
            isolation: Isolation::Snapshot,
            max_write_bytes: 64 << 20,
            max_tracked_reads: 1_000_000,
            write_options: WriteOptions::default(),
        }
    }
}

impl TransactionOptions {
    /// Options for a serializable transaction.
    pub fn serializable() -> Self {
        TransactionOptions {
            isolation: Isolation::Serializable,
            ..TransactionOptions::default()
        }
    }
}

/// An optimistic transaction: reads at a snapshot, buffers writes, and
/// commits them atomically unless a commit made since its snapshot
/// conflicts ([`Error::Conflict`]: run it again). It holds no lock, so
/// it never blocks another; dropping it without [`commit`](Self::commit)
/// rolls it back. Writes and reads may span keyspaces.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let db = strata::Db::open(dir.path(), strata::Options::default())?;
/// let accounts = db.keyspace("accounts")?;
/// accounts.put(b"alice", 100u64.to_le_bytes())?;
/// accounts.put(b"bob", 0u64.to_le_bytes())?;
/// loop {
///     let mut tx = db.transaction();
///     let read = |v: Option<strata::Bytes>| u64::from_le_bytes(v.unwrap()[..8].try_into().unwrap());
///     let alice = read(tx.get_for_update(&accounts, b"alice")?);
///     let bob = read(tx.get_in(&accounts, b"bob")?);
///     tx.put_in(&accounts, b"alice", (alice - 10).to_le_bytes())?;
///     tx.put_in(&accounts, b"bob", (bob + 10).to_le_bytes())?;
///     match tx.commit() {
///         Ok(()) => break,
///         Err(e) if e.is_conflict() => continue, // someone else moved money: again
///         Err(e) => return Err(e),
///     }
/// }
/// # Ok::<(), strata::Error>(())
/// ```
pub struct Transaction {
    db: Db,
    snapshot: Snapshot,
    options: TransactionOptions,
    writes: WriteBuffer,
    /// Keys and ranges to check beyond the written keys: those read with
    /// `get_for_update`, and, serializable, every read.
    reads: Footprint,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("snapshot", &self.snapshot.sequence())
            .field("isolation", &self.options.isolation)
            .field("write_bytes", &self.writes.bytes())
            .finish()
    }
}

impl Db {
    /// Begin a transaction with snapshot isolation
    /// ([`TransactionOptions::default`]). RocksDB:
    /// `OptimisticTransactionDB::BeginTransaction`.
    pub fn transaction(&self) -> Transaction {
        self.transaction_with(TransactionOptions::default())
    }

    /// Begin a transaction with `options` (the isolation level, limits).
    pub fn transaction_with(&self, options: TransactionOptions) -> Transaction {
        let oracle = &self.inner().write_path.pipeline.oracle;
        // Counted before the snapshot is taken: a write numbered after the
        // snapshot either brings its footprint or moves the oracle's
        // record past the snapshot (then the commit validates by lookups).
        oracle.transaction_started();
        Transaction {
            db: self.clone(),
            snapshot: self.snapshot(),
            options,
            writes: WriteBuffer::default(),
            reads: Footprint::default(),
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        self.inner().write_path.pipeline.oracle.transaction_ended();
    }
}

impl Transaction {
    fn inner(&self) -> &Arc<DbInner> {
        self.db.inner()
    }

    fn default_ks(&self) -> Arc<KeyspaceState> {
        Arc::clone(&self.inner().default_ks)
    }

    /// `keyspace`'s state, if it is this database's and live.
    fn state_of(&self, keyspace: &Keyspace) -> Result<Arc<KeyspaceState>> {
        if keyspace.db_instance() != self.inner().instance {
            return Err(Error::InvalidArgument(
                "a transaction of one database used with a keyspace of another".into(),
            ));
        }
        keyspace.state().check_live()?;
        Ok(Arc::clone(keyspace.state()))
    }

    fn spec(&self) -> ReadSpec {
        ReadSpec {
            seq: Some(self.snapshot.sequence()),
            ..ReadSpec::default()
        }
    }

    fn serializable(&self) -> bool {
        self.options.isolation == Isolation::Serializable
    }

    /// The snapshot the transaction reads at.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    fn track_key(&mut self, keyspace: u32, key: &[u8]) -> Result<()> {
        self.check_tracked()?;
        self.reads.push_key(keyspace, key);
        Ok(())
    }

    fn track_range(&mut self, range: KeyRange) -> Result<()> {
        self.check_tracked()?;
        self.reads.ranges.push(range);
        Ok(())
    }

    fn check_tracked(&self) -> Result<()> {
        let n = self.reads.key_count() + self.reads.ranges.len();
        if n >= self.options.max_tracked_reads {
            return Err(Error::TransactionTooLarge {
                limit: "max_tracked_reads",
                max: self.options.max_tracked_reads,
                would_be: n + 1,
            });
        }
        Ok(())
    }

    fn read(&mut self, ks: &KeyspaceState, key: &[u8], for_update: bool) -> Result<Option<Bytes>> {
        if for_update || self.serializable() {
            self.track_key(ks.id, key)?;
        }
        let inner = Arc::clone(self.inner());
        let spec = self.spec();
        let from_snapshot = || inner.get(ks, key, spec);
        match self.writes.get(ks.id, key) {
            None if self.writes.range_deleted(ks.id, key) => Ok(None),
            None => from_snapshot(),
            Some(p) => {
                let operator = if p.operands.is_empty() {
                    None
                } else {
                    ks.options().merge_operator.clone()
                };
                p.resolve(key, operator.as_ref(), from_snapshot)
            }
        }
    }

    /// The value of `key` in the default keyspace as this transaction sees
    /// it: its own write if it made one, else the snapshot's.
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let ks = self.default_ks();
        self.read(&ks, key.as_ref(), false)
    }

    /// [`get`](Self::get) in `keyspace`.
    pub fn get_in(&mut self, keyspace: &Keyspace, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let ks = self.state_of(keyspace)?;
        self.read(&ks, key.as_ref(), false)
    }

    /// [`get_in`](Self::get_in), and the commit fails if another commit
    /// writes `key` after this transaction's snapshot, at either isolation
    /// level (a read that decides a write: a balance, a uniqueness check).
    /// RocksDB: `GetForUpdate`.
    pub fn get_for_update(
        &mut self,
        keyspace: &Keyspace,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<Bytes>> {
        let ks = self.state_of(keyspace)?;
        self.read(&ks, key.as_ref(), true)
    }

    fn write(&mut self, ks: &KeyspaceState, key: &[u8], op: Op<'_>) -> Result<()> {
        if key.len() > crate::MAX_KEY_SIZE {
            return Err(Error::InvalidArgument(format!(
                "key of {} bytes is over the {} byte limit",
                key.len(),
                crate::MAX_KEY_SIZE
            )));
        }
        if let Op::Put(v) | Op::Merge(v) = op {
            if v.len() > crate::MAX_VALUE_SIZE {
                return Err(Error::InvalidArgument(format!(
                    "value of {} bytes is over the {} byte limit",
                    v.len(),
                    crate::MAX_VALUE_SIZE
                )));
            }
        }
        self.writes
            .write(ks.id, key, op, self.options.max_write_bytes)
    }

    /// Set `key` to `value` in the default keyspace, when the transaction
    /// commits.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let ks = self.default_ks();
        self.write(&ks, key.as_ref(), Op::Put(value.as_ref()))
    }

    /// [`put`](Self::put) in `keyspace`.
    pub fn put_in(
        &mut self,
        keyspace: &Keyspace,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<()> {
        let ks = self.state_of(keyspace)?;
        self.write(&ks, key.as_ref(), Op::Put(value.as_ref()))
    }

    /// Remove `key` from the default keyspace, when the transaction
    /// commits.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        let ks = self.default_ks();
        self.write(&ks, key.as_ref(), Op::Delete)
    }

    /// [`delete`](Self::delete) in `keyspace`.
    pub fn delete_in(&mut self, keyspace: &Keyspace, key: impl AsRef<[u8]>) -> Result<()> {
        let ks = self.state_of(keyspace)?;
        self.write(&ks, key.as_ref(), Op::Delete)
    }

    /// Merge `operand` into `key` in the default keyspace with its merge
    /// operator, when the transaction commits; its own reads see the
    /// merged value.
    pub fn merge(&mut self, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) -> Result<()> {
        let ks = self.default_ks();
        self.write(&ks, key.as_ref(), Op::Merge(operand.as_ref()))
    }

    /// [`merge`](Self::merge) in `keyspace`.
    pub fn merge_in(
        &mut self,
        keyspace: &Keyspace,
        key: impl AsRef<[u8]>,
        operand: impl AsRef<[u8]>,
    ) -> Result<()> {
        let ks = self.state_of(keyspace)?;
        self.write(&ks, key.as_ref(), Op::Merge(operand.as_ref()))
    }

    /// Buffer a range delete of `span` (from `range_to_span` or
    /// `prefix_span`) in `ks`.
    fn delete_span(
        &mut self,
        ks: &KeyspaceState,
        span: std::result::Result<Option<crate::batch::Span>, String>,
    ) -> Result<()> {
        // An empty range deletes nothing, as `Db::delete_range`'s.
        let Some((start, end)) = span.map_err(Error::InvalidArgument)? else {
            return Ok(());
        };
        for (what, len) in [
            ("start", start.len()),
            ("end", end.as_ref().map_or(0, Vec::len)),
        ] {
            if len > crate::batch::MAX_RANGE_END_SIZE {
                return Err(Error::InvalidArgument(format!(
                    "range delete {what} of {len} bytes is over the {} byte limit",
                    crate::batch::MAX_RANGE_END_SIZE
                )));
            }
        }
        self.writes
            .delete_range(ks.id, &start, end.as_deref(), self.options.max_write_bytes)
    }

    /// Remove every key in `range` from the default keyspace, when the
    /// transaction commits: the keys its snapshot holds there and those
    /// it wrote before; a key it writes afterwards survives (as in a
    /// [`WriteBatch`](crate::WriteBatch)). Its own reads see this at once.
    /// The ranges and errors are [`Db::delete_range`]'s: an empty range
    /// does nothing, an inverted one is [`Error::InvalidArgument`]. For
    /// conflicts it writes every key in the range: a commit after the
    /// snapshot that wrote any key in it (or deleted a range meeting it)
    /// makes this commit fail. RocksDB's transactions have no range
    /// delete.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = strata::Db::open(dir.path(), strata::Options::default())?;
    /// for k in ["a", "b", "c", "d"] {
    ///     db.put(k, "v")?;
    /// }
    /// let mut tx = db.transaction();
    /// tx.put("c", "mine")?;
    /// tx.delete_range("b".."d")?; // b, and the c it put
    /// tx.put("b", "new")?; // after the range delete: survives it
    /// assert_eq!(tx.get("b")?.as_deref(), Some(&b"new"[..]));
    /// assert!(tx.get("c")?.is_none());
    /// tx.commit()?;
    /// let keys: Vec<_> = db.iter().map(|e| e.unwrap().0).collect();
    /// assert_eq!(keys, [&b"a"[..], b"b", b"d"]);
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn delete_range<K: AsRef<[u8]>>(&mut self, range: impl RangeBounds<K>) -> Result<()> {
        let ks = self.default_ks();
        self.delete_span(&ks, range_to_span(&range))
    }

    /// [`delete_range`](Self::delete_range) in `keyspace`.
    pub fn delete_range_in<K: AsRef<[u8]>>(
        &mut self,
        keyspace: &Keyspace,
        range: impl RangeBounds<K>,
    ) -> Result<()> {
        let ks = self.state_of(keyspace)?;
        self.delete_span(&ks, range_to_span(&range))
    }

    /// Remove every key starting with `prefix` from the default keyspace
    /// (every key, for the empty prefix), as one
    /// [`delete_range`](Self::delete_range).
    pub fn delete_prefix(&mut self, prefix: impl AsRef<[u8]>) -> Result<()> {
        let ks = self.default_ks();
        self.delete_span(&ks, crate::batch::prefix_span(prefix.as_ref()))
    }

    /// [`delete_prefix`](Self::delete_prefix) in `keyspace`.
    pub fn delete_prefix_in(
        &mut self,
        keyspace: &Keyspace,
        prefix: impl AsRef<[u8]>,
    ) -> Result<()> {
        let ks = self.state_of(keyspace)?;
        self.delete_span(&ks, crate::batch::prefix_span(prefix.as_ref()))
    }

    fn scan(
        &mut self,
        ks: &KeyspaceState,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
    ) -> Result<TransactionIter> {
        if self.serializable() {
            self.track_range(KeyRange {
                keyspace: ks.id,
                start: lower.clone().unwrap_or_default(),
                end: upper.clone(),
            })?;
        }
        let buffered = self
            .writes
            .range(ks.id, lower.as_deref(), upper.as_deref())
            .map(|(k, p)| (Bytes::copy_from_slice(k), p.clone()))
            .collect();
        let deleted = self
            .writes
            .deleted_within(ks.id, lower.as_deref(), upper.as_deref());
        let view = self.inner().read_view(ks, self.spec());
        let operator = view.merge_operator.clone();
        let snapshot = crate::cursor::Iter::new(view, lower, upper);
        Ok(TransactionIter::new(snapshot, buffered, deleted, operator))
    }

    fn scan_range<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &mut self,
        ks: &KeyspaceState,
        range: R,
    ) -> Result<TransactionIter> {
        match range_to_span(&range) {
            Ok(Some((start, end))) => self.scan(ks, Some(start), end),
            // Empty: nothing to read, nothing to track.
            Ok(None) => self.scan(ks, Some(Vec::new()), Some(Vec::new())),
            Err(reason) => Err(Error::InvalidArgument(
                reason.replace("range delete", "range"),
            )),
        }
    }

    /// Every entry of the default keyspace as this transaction sees it, in
    /// key order (double-ended). Serializable: the whole keyspace counts
    /// as read.
    pub fn iter(&mut self) -> Result<TransactionIter> {
        let ks = self.default_ks();
        self.scan(&ks, None, None)
    }

    /// [`iter`](Self::iter) over `keyspace`.
    pub fn iter_in(&mut self, keyspace: &Keyspace) -> Result<TransactionIter> {
        let ks = self.state_of(keyspace)?;
        self.scan(&ks, None, None)
    }

    /// A seekable cursor over the default keyspace as this transaction
    /// sees it (its writes so far laid over its snapshot), moving both
    /// ways. Serializable: the whole keyspace counts as read, as for
    /// [`iter`](Self::iter). RocksDB: `Transaction::GetIterator`.
    pub fn cursor(&mut self) -> Result<TransactionCursor> {
        let ks = self.default_ks();
        self.cursor_of(&ks)
    }

    /// [`cursor`](Self::cursor) over `keyspace`.
    pub fn cursor_in(&mut self, keyspace: &Keyspace) -> Result<TransactionCursor> {
        let ks = self.state_of(keyspace)?;
        self.cursor_of(&ks)
    }

    fn cursor_of(&mut self, ks: &KeyspaceState) -> Result<TransactionCursor> {
        if self.serializable() {
            self.track_range(KeyRange {
                keyspace: ks.id,
                start: Vec::new(),
                end: None,
            })?;
        }
        let buffered = self
            .writes
            .range(ks.id, None, None)
            .map(|(k, p)| (Bytes::copy_from_slice(k), p.clone()))
            .collect();
        let deleted = self.writes.deleted_within(ks.id, None, None);
        let view = self.inner().read_view(ks, self.spec());
        let operator = view.merge_operator.clone();
        let snapshot = crate::cursor::Cursor::new(view.db_iter(None, None));
        Ok(TransactionCursor::new(
            snapshot, buffered, deleted, operator,
        ))
    }

    /// Entries of the default keyspace in `range`, as this transaction
    /// sees them. Serializable: the whole range counts as read (a key
    /// another commit puts into it aborts this one: no phantoms), however
    /// far the iterator is taken.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &mut self,
        range: R,
    ) -> Result<TransactionIter> {
        let ks = self.default_ks();
        self.scan_range(&ks, range)
    }

    /// [`range`](Self::range) in `keyspace`.
    pub fn range_in<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &mut self,
        keyspace: &Keyspace,
        range: R,
    ) -> Result<TransactionIter> {
        let ks = self.state_of(keyspace)?;
        self.scan_range(&ks, range)
    }

    /// Entries of the default keyspace whose keys start with `prefix`.
    pub fn prefix(&mut self, prefix: impl AsRef<[u8]>) -> Result<TransactionIter> {
        let ks = self.default_ks();
        let upper = crate::core::prefix_upper_bound(prefix.as_ref());
        self.scan(&ks, Some(prefix.as_ref().to_vec()), upper)
    }

    /// [`prefix`](Self::prefix) in `keyspace`.
    pub fn prefix_in(
        &mut self,
        keyspace: &Keyspace,
        prefix: impl AsRef<[u8]>,
    ) -> Result<TransactionIter> {
        let ks = self.state_of(keyspace)?;
        let upper = crate::core::prefix_upper_bound(prefix.as_ref());
        self.scan(&ks, Some(prefix.as_ref().to_vec()), upper)
    }

    /// Remember this point: [`rollback_to_savepoint`](Self::rollback_to_savepoint)
    /// undoes the writes made after it. Savepoints nest. Reads tracked
    /// since stay tracked (a read is not undone). RocksDB: `SetSavePoint`.
    pub fn set_savepoint(&mut self) {
        self.writes.set_savepoint();
    }

    /// Undo the writes made since the newest savepoint, and drop it.
    /// `Err(InvalidArgument)` if there is none. RocksDB:
    /// `RollbackToSavePoint`.
    pub fn rollback_to_savepoint(&mut self) -> Result<()> {
        if self.writes.rollback_to_savepoint() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(
                "rollback_to_savepoint without a savepoint set".into(),
            ))
        }
    }

    /// Forget every write and savepoint; the transaction goes on at the
    /// same snapshot. (Dropping it rolls it back too.) RocksDB: `Rollback`.
    pub fn rollback(&mut self) {
        self.writes.clear();
        self.reads = Footprint::default();
    }

    /// Bytes of writes buffered (what `max_write_bytes` limits).
    pub fn write_bytes(&self) -> usize {
        self.writes.bytes()
    }

    /// Every key and range the commit must find untouched: those read
    /// (tracked) and those written, a range delete's whole range among
    /// them: the footprint of the batch the commit writes, as the leader
    /// takes it. For validation by lookups.
    fn everything_checked(&self, reads: &Footprint) -> Footprint {
        let mut writes = crate::WriteBatch::new();
        self.writes.fill(&mut writes);
        let mut check = reads.clone();
        check.add_batch(&writes);
        check
    }

    /// Validate by lookups (the oracle does not reach back to `from`):
    /// the sequence number validated through and its pin, or the conflict.
    fn validate_by_lookup(&self, reads: &Footprint, from: SeqNo) -> Result<(SeqNo, oracle::Pin)> {
        let (pin, written) = self
            .inner()
            .validate_by_lookup(&self.everything_checked(reads), from)?;
        match written {
            Some((ks, key)) => Err(self.conflict(ks, key)),
            None => Ok((pin.at, pin)),
        }
    }

    /// Write the buffered writes atomically, unless a commit made after
    /// the snapshot conflicts: then nothing is written and the error is
    /// [`Error::Conflict`] naming the keyspace and key (run the
    /// transaction again). A transaction that wrote nothing commits at
    /// once: its reads all come from one snapshot, so it is serializable
    /// at that point.
    pub fn commit(mut self) -> Result<()> {
        if self.writes.is_empty() {
            return Ok(());
        }
        let inner = Arc::clone(self.inner());
        let covered_from = inner.write_path.pipeline.oracle.covered_from();
        let mut cert = Box::new(Certificate {
            from: self.snapshot.sequence(),
            check: std::mem::take(&mut self.reads),
            verdict: Verdict::Pending,
        });
        // Held until the oracle certifies the commit (see `lookup.rs`).
        let mut _pin = None;
        if covered_from > cert.from {
            let (from, pin) = self.validate_by_lookup(&cert.check, cert.from)?;
            cert.from = from;
            _pin = Some(pin);
        }
        loop {
            let mut batch = inner.new_batch();
            self.writes.fill(&mut batch);
            let (written, back) = inner.commit_certified(batch, cert, &self.options.write_options);
            let Some(back) = back else {
                return written; // refused before it reached the leader
            };
            cert = back;
            match std::mem::replace(&mut cert.verdict, Verdict::Pending) {
                Verdict::Accepted | Verdict::Pending => return written,
                Verdict::Conflict { keyspace, key } => return Err(self.conflict(keyspace, key)),
                Verdict::Retry => {
                    let (from, pin) = self.validate_by_lookup(&cert.check, cert.from)?;
                    cert.from = from;
                    _pin = Some(pin);
                }
            }
        }
    }

    /// The conflict error for `key` of the keyspace with id `keyspace`.
    fn conflict(&self, keyspace: u32, mut key: Vec<u8>) -> Error {
        let name = self
            .inner()
            .all_keyspaces()
            .get(keyspace)
            .map_or_else(|| format!("#{keyspace}"), |ks| ks.name.clone());
        if key.len() > 64 {
            key.truncate(64);
            key.extend_from_slice(b"..");
        }
        Error::Conflict {
            keyspace: name,
            key,
        }
    }
}

impl DbInner {
    /// Commit a transaction's batch with its certificate (see
    /// `CommitPipeline::write_certified`), checked as any write is.
    fn commit_certified(
        &self,
        mut batch: crate::WriteBatch,
        cert: Box<Certificate>,
        opts: &WriteOptions,
    ) -> (Result<()>, Option<Box<Certificate>>) {
        // Expiries as for any write (`DbInner::write`): the write's ttl,
        // else each keyspace's default.
        self.stamp_expiry(&mut batch, opts.ttl);
        if let Err(e) = batch.validate().and_then(|()| self.check_keyspaces(&batch)) {
            return (Err(e), None);
        }
        let start = self.write_start();
        let result = self
            .write_path
            .pipeline
            .write_certified(self, batch, cert, opts);
        self.write_done(start);
        result
    }
}
