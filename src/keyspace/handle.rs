//! `Keyspace`: the handle applications hold on one keyspace.

use super::state::KeyspaceState;
use crate::cursor::{Cursor, Iter};
use crate::db::Db;
use crate::error::Result;
use crate::options::WriteOptions;
use crate::read::ReadSpec;
use crate::read_options::ReadOptions;
use bytes::Bytes;
use std::ops::RangeBounds;
use std::sync::Arc;

/// A keyspace: a separate, named key space in a database, with its own
/// memtables, tables, levels, compactions and options, sharing the
/// database's WAL, sequence numbers and block cache (RocksDB: a column
/// family and its `ColumnFamilyHandle`; fjall: a keyspace). Writes to
/// several keyspaces in one [`WriteBatch`](crate::WriteBatch) are atomic,
/// and a [`Snapshot`](crate::Snapshot) is one point in time across all of
/// them.
///
/// Cheap to clone, `Send + Sync`. A handle keeps the database open, like
/// a clone of [`Db`]. After [`Db::drop_keyspace`] writes through it fail
/// with [`Error::KeyspaceDropped`](crate::Error::KeyspaceDropped); reads
/// still see its data as of the drop until every handle and iterator on it
/// is gone, when its files are deleted.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let db = strata::Db::open(dir.path(), strata::Options::default())?;
/// let users = db.keyspace("users")?;
/// users.put(b"u1", b"ada")?;
/// assert_eq!(users.get(b"u1")?.as_deref(), Some(&b"ada"[..]));
/// assert_eq!(db.get(b"u1")?, None, "the default keyspace is another");
/// # Ok::<(), strata::Error>(())
/// ```
#[derive(Clone)]
pub struct Keyspace {
    db: Db,
    state: Arc<KeyspaceState>,
}

impl std::fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace")
            .field("name", &self.state.name)
            .field("id", &self.state.id)
            .finish()
    }
}

impl Keyspace {
    pub(crate) fn new(db: Db, state: Arc<KeyspaceState>) -> Self {
        Keyspace { db, state }
    }

    /// The id written in the WAL and the MANIFEST.
    pub(crate) fn id(&self) -> u32 {
        self.state.id
    }

    pub(crate) fn state(&self) -> &Arc<KeyspaceState> {
        &self.state
    }

    /// The open database it belongs to (`DbInner::instance`).
    pub(crate) fn db_instance(&self) -> u64 {
        self.db.inner().instance
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// The database it belongs to.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Set `key` to `value`.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.put_opt(key, value, &WriteOptions::default())
    }

    /// Set `key` to `value` with explicit write options.
    pub fn put_opt(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        opts: &WriteOptions,
    ) -> Result<()> {
        self.state.check_live()?;
        let id = self.id();
        self.db
            .inner()
            .write_with(opts, |b| b.put_in_id(id, key.as_ref(), value.as_ref()))
    }

    /// Set `key` to `value` until `ttl` has passed
    /// ([`Db::put_with_ttl`](crate::Db::put_with_ttl)).
    pub fn put_with_ttl(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: std::time::Duration,
    ) -> Result<()> {
        let opts = WriteOptions {
            ttl: Some(ttl),
            ..WriteOptions::default()
        };
        self.put_opt(key, value, &opts)
    }

    /// Remove `key` (a no-op if it is absent).
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        self.delete_opt(key, &WriteOptions::default())
    }

    /// Remove `key` with explicit write options.
    pub fn delete_opt(&self, key: impl AsRef<[u8]>, opts: &WriteOptions) -> Result<()> {
        self.state.check_live()?;
        let id = self.id();
        self.db
            .inner()
            .write_with(opts, |b| b.delete_in_id(id, key.as_ref()))
    }

    /// Merge `operand` into `key` with this keyspace's merge operator
    /// ([`KeyspaceOptions::merge_operator`](crate::KeyspaceOptions::merge_operator));
    /// see [`Db::merge`](crate::Db::merge).
    pub fn merge(&self, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) -> Result<()> {
        self.merge_opt(key, operand, &WriteOptions::default())
    }

    /// Merge `operand` into `key` with explicit write options.
    pub fn merge_opt(
        &self,
        key: impl AsRef<[u8]>,
        operand: impl AsRef<[u8]>,
        opts: &WriteOptions,
    ) -> Result<()> {
        self.state.check_live()?;
        crate::write::check_merge_operator_set(&self.state)?;
        let id = self.id();
        self.db
            .inner()
            .write_with(opts, |b| b.merge_in_id(id, key.as_ref(), operand.as_ref()))
    }

    /// The current value of `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.db
            .inner()
            .get(&self.state, key.as_ref(), ReadSpec::default())
    }

    /// The value of `key` with explicit read options (e.g. a snapshot).
    pub fn get_opt(&self, key: impl AsRef<[u8]>, opts: &ReadOptions<'_>) -> Result<Option<Bytes>> {
        self.db.inner().get(&self.state, key.as_ref(), opts.spec())
    }

    /// Every entry in key order; double-ended (`.rev()` works).
    pub fn iter(&self) -> Iter {
        self.db
            .inner()
            .iter::<&[u8], _>(&self.state, .., ReadSpec::default())
    }

    /// Entries whose keys lie in `range`.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        self.db
            .inner()
            .iter(&self.state, range, ReadSpec::default())
    }

    /// Like [`Keyspace::range`] with explicit read options.
    pub fn range_opt<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        range: R,
        opts: &ReadOptions<'_>,
    ) -> Iter {
        self.db.inner().iter(&self.state, range, opts.spec())
    }

    /// Entries whose keys start with `prefix`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        self.db
            .inner()
            .prefix(&self.state, prefix.as_ref(), ReadSpec::default())
    }

    /// A seekable cursor over the current state.
    pub fn cursor(&self) -> Cursor {
        self.db.inner().cursor(&self.state, ReadSpec::default())
    }

    /// A cursor with explicit read options.
    pub fn cursor_opt(&self, opts: &ReadOptions<'_>) -> Cursor {
        self.db.inner().cursor(&self.state, opts.spec())
    }

    /// Write this keyspace's memtable to an L0 table and wait until it
    /// (and every memtable of it frozen before) is on disk.
    pub fn flush(&self) -> Result<()> {
        self.state.check_live()?;
        self.db.inner().flush_and_wait(&self.state)
    }

    /// Add the table files at `files` to this keyspace, as [`Db::ingest`]
    /// does to the default one.
    pub fn ingest<P: AsRef<std::path::Path>>(
        &self,
        files: &[P],
        options: &crate::IngestOptions,
    ) -> Result<()> {
        self.state.check_live()?;
        let paths: Vec<std::path::PathBuf> =
            files.iter().map(|p| p.as_ref().to_path_buf()).collect();
        self.db.inner().ingest(&self.state, &paths, options)
    }

    /// Compact this keyspace's tables overlapping `range` down to its last
    /// level, as [`Db::compact_range`] does for the default keyspace.
    pub fn compact_range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<()> {
        self.state.check_live()?;
        let (lower, upper) = crate::db::range_ends(&range);
        self.db.inner().compact_range(&self.state, lower, upper)
    }

    /// Its live tables with their level, key and sequence ranges.
    pub fn live_files(&self) -> Vec<crate::LiveFile> {
        self.db.inner().live_files_of(&self.state)
    }

    /// Its live blob files, oldest first, with their totals and garbage.
    pub fn live_blob_files(&self) -> Result<Vec<crate::LiveBlobFile>> {
        self.db.inner().live_blob_files_of(&self.state)
    }

    /// Statistics of this keyspace's levels (the write, WAL and stall
    /// figures are the database's).
    pub fn stats(&self) -> crate::DbStats {
        self.db.inner().stats_of(&self.state)
    }

    /// A named property of this keyspace, as [`Db::property`] describes.
    pub fn property(&self, name: &str) -> Option<String> {
        self.db.inner().property_of(&self.state, name)
    }
}

/// Range deletes (RocksDB: `DeleteRange`).
impl Keyspace {
    /// Remove every key of this keyspace in `range`, as
    /// [`Db::delete_range`] does in the default keyspace; other keyspaces
    /// keep their keys. RocksDB: `DeleteRange(cf, ..)`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = strata::Db::open(dir.path(), strata::Options::default())?;
    /// let users = db.keyspace("users")?;
    /// users.put("a", "1")?;
    /// db.put("a", "default")?;
    /// users.delete_range("a"..="z")?;
    /// assert!(users.get("a")?.is_none());
    /// assert!(db.get("a")?.is_some());
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn delete_range<K: AsRef<[u8]>>(&self, range: impl RangeBounds<K>) -> Result<()> {
        self.delete_range_opt(range, &WriteOptions::default())
    }

    /// Remove every key of this keyspace in `range` with explicit write
    /// options.
    pub fn delete_range_opt<K: AsRef<[u8]>>(
        &self,
        range: impl RangeBounds<K>,
        opts: &WriteOptions,
    ) -> Result<()> {
        self.state.check_live()?;
        let span = crate::batch::range_to_span(&range);
        crate::db::write_range_delete(self.db.inner(), self.id(), span, opts)
    }

    /// Remove every key of this keyspace starting with `prefix`.
    pub fn delete_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
        self.delete_prefix_opt(prefix, &WriteOptions::default())
    }

    /// Remove every key of this keyspace starting with `prefix` with
    /// explicit write options.
    pub fn delete_prefix_opt(&self, prefix: impl AsRef<[u8]>, opts: &WriteOptions) -> Result<()> {
        self.state.check_live()?;
        let span = crate::batch::prefix_span(prefix.as_ref());
        crate::db::write_range_delete(self.db.inner(), self.id(), span, opts)
    }
}
