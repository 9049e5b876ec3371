//! Snapshots: a fixed point in the write sequence that reads can return to.

use crate::core::DbInner;
use crate::cursor::{Cursor, Iter};
use crate::error::Result;
use crate::keyspace::Keyspace;
use crate::read::ReadSpec;
use bytes::Bytes;
use std::ops::RangeBounds;
use std::sync::Arc;
use strata_sstable::SeqNo;

/// A consistent, read-only view of the database as of the moment it was
/// taken. Reads through it see neither later writes nor later deletes.
/// Holding a snapshot keeps compaction from discarding the versions it
/// sees; drop it when done.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let db = strata::Db::open(dir.path(), strata::Options::default()).unwrap();
/// db.put(b"k", b"old")?;
/// let snap = db.snapshot();
/// db.put(b"k", b"new")?;
/// assert_eq!(snap.get(b"k")?.as_deref(), Some(&b"old"[..]));
/// assert_eq!(db.get(b"k")?.as_deref(), Some(&b"new"[..]));
/// # Ok::<(), strata::Error>(())
/// ```
pub struct Snapshot {
    inner: Arc<DbInner>,
    seq: SeqNo,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("sequence", &self.seq)
            .finish()
    }
}

impl Snapshot {
    pub(crate) fn new(inner: Arc<DbInner>) -> Self {
        let seq = inner.snapshots.acquire(|| inner.visible_sequence());
        Snapshot { inner, seq }
    }

    /// A snapshot at `seq`, which must be at or above the visible
    /// sequence number with every write at or below it inserted (a
    /// checkpoint takes one with writes stopped): registered before any
    /// compaction could drop a version it reads.
    pub(crate) fn at(inner: Arc<DbInner>, seq: SeqNo) -> Self {
        let seq = inner.snapshots.acquire(|| seq);
        Snapshot { inner, seq }
    }

    /// The sequence number the snapshot reads at.
    pub fn sequence(&self) -> SeqNo {
        self.seq
    }

    fn spec(&self) -> ReadSpec {
        ReadSpec {
            seq: Some(self.sequence()),
            ..ReadSpec::default()
        }
    }

    /// The value of `key` as of the snapshot.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.inner
            .get(&self.inner.default_ks, key.as_ref(), self.spec())
    }

    /// All entries as of the snapshot, in key order (double-ended).
    pub fn iter(&self) -> Iter {
        self.inner
            .iter::<&[u8], _>(&self.inner.default_ks, .., self.spec())
    }

    /// Entries with keys in `range`, as of the snapshot.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        self.inner.iter(&self.inner.default_ks, range, self.spec())
    }

    /// Entries whose keys start with `prefix`, as of the snapshot.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        self.inner
            .prefix(&self.inner.default_ks, prefix.as_ref(), self.spec())
    }

    /// A seekable cursor as of the snapshot.
    pub fn cursor(&self) -> Cursor {
        self.inner.cursor(&self.inner.default_ks, self.spec())
    }
}

impl Snapshot {
    /// This snapshot's view of `keyspace`: the same point in the write
    /// sequence, so views of several keyspaces are consistent with each
    /// other (a batch writing to several shows in all or none).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = strata::Db::open(dir.path(), strata::Options::default())?;
    /// let users = db.keyspace("users")?;
    /// let snap = db.snapshot();
    /// users.put(b"u2", b"grace")?;
    /// assert!(snap.keyspace(&users).get(b"u2")?.is_none());
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn keyspace<'a>(&'a self, keyspace: &'a Keyspace) -> SnapshotKeyspace<'a> {
        SnapshotKeyspace {
            snapshot: self,
            keyspace,
        }
    }
}

/// A [`Snapshot`]'s view of one keyspace ([`Snapshot::keyspace`]).
pub struct SnapshotKeyspace<'a> {
    snapshot: &'a Snapshot,
    keyspace: &'a Keyspace,
}

impl SnapshotKeyspace<'_> {
    fn inner(&self) -> &DbInner {
        &self.snapshot.inner
    }

    /// Whether the keyspace is this snapshot's database's: a snapshot's
    /// sequence number means nothing in another.
    fn same_database(&self) -> bool {
        self.keyspace.db_instance() == self.snapshot.inner.instance
    }

    /// The value `key` had.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        if !self.same_database() {
            return Err(crate::Error::InvalidArgument(
                "a snapshot of one database read with a keyspace of another".into(),
            ));
        }
        self.inner()
            .get(self.keyspace.state(), key.as_ref(), self.snapshot.spec())
    }

    /// Every entry it had, in key order.
    pub fn iter(&self) -> Iter {
        self.inner()
            .iter::<&[u8], _>(self.keyspace.state(), .., self.snapshot.spec())
    }

    /// The entries it had in `range`.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        self.inner()
            .iter(self.keyspace.state(), range, self.snapshot.spec())
    }

    /// The entries it had whose keys start with `prefix`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        self.inner()
            .prefix(self.keyspace.state(), prefix.as_ref(), self.snapshot.spec())
    }

    /// A seekable cursor over what it had.
    pub fn cursor(&self) -> Cursor {
        self.inner()
            .cursor(self.keyspace.state(), self.snapshot.spec())
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // A snapshot between a range tombstone and the keys it covers
        // keeps a delete-only compaction from dropping them; once it goes,
        // the compaction is due, and the background threads (which last
        // looked while it was live) and `wait_for_compactions` must look
        // again. Only then: a wake-up ends write delays early and makes
        // every background thread pick again, which a service taking a
        // snapshot per request must not pay when no table holds range
        // tombstones.
        if self.inner.snapshots.release(self.seq)
            && self
                .inner
                .all_keyspaces()
                .iter()
                .any(|ks| ks.super_version.load().version.has_range_dels())
        {
            self.inner.bg.notify_all();
        }
    }
}
