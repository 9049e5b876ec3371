//! [`ChangeFeed`]: a named, durable position in the change feed.

use super::UpdatesSince;
use crate::db::Db;
use crate::error::Result;
use strata_sstable::SeqNo;

/// A named cursor over the change feed, from [`Db::change_feed`]. Its
/// position, the last sequence number its consumer acknowledged with
/// [`ack`](Self::ack), is stored durably (the file `CHANGEFEEDS`) and
/// survives reopening. Until acknowledged, the WALs holding later writes
/// are kept for it, within `Options::wal_ttl_seconds` and
/// `wal_size_limit_mb`: past those they go, and reading then fails with
/// [`Error::ChangeFeedGap`](crate::Error::ChangeFeedGap), never skipping a
/// write silently. With neither limit set a cursor keeps WALs as long as
/// it lags; drop a cursor no one reads ([`Db::drop_change_feed`]).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let db = strata::Db::open(dir.path(), strata::Options::default())?;
/// let feed = db.change_feed("replica")?;
/// db.put_opt(b"k", b"v", &strata::WriteOptions { sync: true, ..Default::default() })?;
/// for batch in feed.updates()? {
///     let batch = batch?;
///     // ... apply it elsewhere, then:
///     feed.ack(batch.last_sequence())?;
/// }
/// assert_eq!(feed.acked()?, 1);
/// # Ok::<(), strata::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChangeFeed {
    db: Db,
    name: String,
}

impl ChangeFeed {
    pub(crate) fn new(db: Db, name: String) -> Self {
        ChangeFeed { db, name }
    }

    /// The cursor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The last sequence number acknowledged.
    pub fn acked(&self) -> Result<SeqNo> {
        self.db.inner().change_feed_acked(&self.name)
    }

    /// The batches after the acknowledged position.
    pub fn updates(&self) -> Result<UpdatesSince> {
        let from = self.acked()?.saturating_add(1);
        self.db.inner().updates_since(from)
    }

    /// The consumer applied every write up to `seq` (a batch's
    /// [`last_sequence`](crate::ChangeBatch::last_sequence)): store it, so
    /// the cursor resumes after it, even after a reopen, and let the WALs
    /// it no longer needs go. Moving back is an error, as is a number not
    /// yet written. Acknowledging past a
    /// [`ChangeFeedGap`](crate::Error::ChangeFeedGap)'s `to` is how a
    /// consumer that caught up another way moves on.
    pub fn ack(&self, seq: SeqNo) -> Result<()> {
        self.db.inner().ack_change_feed(&self.name, seq)
    }
}
