//! Snapshots: a fixed point in the write sequence that reads can return to.

use crate::core::DbInner;
use crate::cursor::{Cursor, Iter};
use crate::error::Result;
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
        self.inner.get(key.as_ref(), self.spec())
    }

    /// All entries as of the snapshot, in key order (double-ended).
    pub fn iter(&self) -> Iter {
        self.inner.iter::<&[u8], _>(.., self.spec())
    }

    /// Entries with keys in `range`, as of the snapshot.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        self.inner.iter(range, self.spec())
    }

    /// Entries whose keys start with `prefix`, as of the snapshot.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        self.inner.prefix(prefix.as_ref(), self.spec())
    }

    /// A seekable cursor as of the snapshot.
    pub fn cursor(&self) -> Cursor {
        self.inner.cursor(self.spec())
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.inner.snapshots.release(self.seq);
    }
}
