//! `Db`: the handle applications hold. Thin: it validates arguments and
//! delegates to the engine's rooms (write path, read path, flush).

use crate::background;
use crate::batch::{prefix_span, range_to_span, Span, WriteBatch};
use crate::core::DbInner;
use crate::cursor::{Cursor, Iter};
use crate::error::{Error, Result};
use crate::keyspace::{Keyspace, KeyspaceOptions, KeyspaceState};
use crate::open;
use crate::options::{Options, WriteOptions};
use crate::read::ReadSpec;
use crate::read_options::ReadOptions;
use crate::snapshot::Snapshot;
use crate::version::DEFAULT_KEYSPACE_ID;
use bytes::Bytes;
use parking_lot::Mutex;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

/// An open database. Cheap to clone: clones share one database, and it is
/// closed (WAL synced, background threads joined) when the last clone is
/// dropped. `Db` is `Send + Sync`; share it across threads by cloning.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let db = strata::Db::open(dir.path(), strata::Options::default())?;
/// db.put(b"key", b"value")?;
/// assert_eq!(db.get(b"key")?.as_deref(), Some(&b"value"[..]));
/// db.delete(b"key")?;
/// assert_eq!(db.get(b"key")?, None);
/// # Ok::<(), strata::Error>(())
/// ```
#[derive(Clone)]
pub struct Db {
    handle: Arc<Handle>,
}

/// Owns the background threads; closes the database when dropped.
struct Handle {
    inner: Arc<DbInner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    closed: std::sync::atomic::AtomicBool,
}

impl Handle {
    /// Close the database once; later calls do nothing.
    fn close(&self) -> Result<()> {
        if self.closed.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return Ok(());
        }
        let threads = std::mem::take(&mut *self.threads.lock());
        self.inner.close(threads)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Errors cannot be returned from drop (`Db::close` returns them);
        // what reached the disk is recovered at the next open.
        let _ = self.close();
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.handle.inner.dir)
            .finish()
    }
}

impl Db {
    /// Open (or create, with `create_if_missing`) the database in
    /// directory `path`. Fails with [`Error::Locked`] if another `Db`, in
    /// this process or another, has it open.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Db> {
        let inner = Arc::new(open::open(path.as_ref(), options)?);
        let threads = match background::spawn(&inner) {
            Ok(threads) => threads,
            Err(e) => {
                // The threads that started are joined: `inner` is ours
                // alone. Closed the one way a database closes; dropping it
                // then releases the LOCK.
                let _ = inner.close(Vec::new());
                return Err(Error::io("spawn background thread", path.as_ref(), e));
            }
        };
        Ok(Db {
            handle: Arc::new(Handle {
                inner,
                threads: Mutex::new(threads),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    pub(crate) fn inner(&self) -> &Arc<DbInner> {
        &self.handle.inner
    }

    fn default_ks(&self) -> &Arc<KeyspaceState> {
        &self.handle.inner.default_ks
    }

    /// The keyspace named `name`, created with the database's keyspace
    /// options ([`Options::keyspace_options`]: the per-keyspace fields of
    /// the `Options` it was opened with) if it does not exist. The name
    /// `"default"` is the default keyspace, the one `Db`'s own methods
    /// read and write. Creating one is durable when this returns. RocksDB:
    /// `CreateColumnFamily` (or the handle `DB::Open` returns for it).
    pub fn keyspace(&self, name: &str) -> Result<Keyspace> {
        let state = self.inner().open_keyspace(name, None)?;
        Ok(Keyspace::new(self.clone(), state))
    }

    /// The keyspace named `name`, created with `options` if it does not
    /// exist; an existing one is read and written with `options` from now
    /// on (options are not stored: a keyspace recovered at open has the
    /// database's keyspace options until opened this way).
    pub fn keyspace_with(&self, name: &str, options: KeyspaceOptions) -> Result<Keyspace> {
        let state = self.inner().open_keyspace(name, Some(&options))?;
        Ok(Keyspace::new(self.clone(), state))
    }

    /// Drop the keyspace named `name`: durable when this returns, O(1) in
    /// its size. Writes through its handles fail from then on; reads
    /// through handles, snapshots and iterators already open still see its
    /// data, and its files are deleted once the last of those is gone.
    /// The default keyspace cannot be dropped. RocksDB:
    /// `DropColumnFamily`.
    pub fn drop_keyspace(&self, name: &str) -> Result<()> {
        self.inner().drop_keyspace(name)
    }

    /// The names of the live keyspaces, `"default"` first. RocksDB:
    /// `ListColumnFamilies`.
    pub fn keyspace_names(&self) -> Vec<String> {
        self.inner().keyspace_names()
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
        self.inner().write_with(opts, |b| b.put(key, value))
    }

    /// Set `key` to `value` until `ttl` has passed (by
    /// [`Options::clock`](crate::Options::clock)); from then on reads see
    /// it deleted and compaction removes it (docs/design/ttl.md).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use strata::{Db, ManualClock, Options};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let clock = Arc::new(ManualClock::new(1_000_000));
    /// let db = Db::open(dir.path(), Options { clock: clock.clone(), ..Default::default() })?;
    /// db.put("k", "old")?;
    /// db.put_with_ttl("k", "session", Duration::from_secs(60))?;
    /// assert_eq!(db.get("k")?.as_deref(), Some(&b"session"[..]));
    /// clock.advance(Duration::from_secs(60));
    /// // Gone, and the older value stays hidden under it.
    /// assert_eq!(db.get("k")?, None);
    /// # Ok::<(), strata::Error>(())
    /// ```
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
        self.inner().write_with(opts, |b| b.delete(key))
    }

    /// Merge `operand` into `key`: the default keyspace's merge operator
    /// ([`Options::merge_operator`](crate::Options::merge_operator))
    /// combines it with the key's value when the key is read, so the
    /// write reads nothing (a counter's increment, an append). Without an
    /// operator the write is accepted and reads of the key fail with
    /// [`Error::MergeFailed`](crate::Error::MergeFailed). RocksDB: `Merge`.
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
        let inner = self.inner();
        crate::write::check_merge_operator_set(&inner.default_ks)?;
        inner.write_with(opts, |b| b.merge(key, operand))
    }

    /// An empty [`WriteBatch`] whose buffer is recycled from earlier
    /// writes: the same as [`WriteBatch::new`], but a program that builds
    /// each batch with `new_batch` and hands it to [`write`](Self::write)
    /// allocates no batch buffer in steady state.
    pub fn new_batch(&self) -> WriteBatch {
        self.inner().new_batch()
    }

    /// Apply a batch atomically.
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        self.write_opt(batch, &WriteOptions::default())
    }

    /// Apply a batch atomically with explicit write options.
    pub fn write_opt(&self, batch: WriteBatch, opts: &WriteOptions) -> Result<()> {
        self.inner().write(batch, opts)
    }

    /// Open the database in `path` read-only: a consistent view as of its
    /// last MANIFEST and the WALs written since (replayed into memory),
    /// taking no LOCK and changing no file, so any number of readers may
    /// follow a running writer; [`ReadOnlyDb::refresh`](crate::ReadOnlyDb::refresh)
    /// catches up with it. Writes fail with [`Error::ReadOnly`]. RocksDB:
    /// `OpenForReadOnly`, and `OpenAsSecondary` with `TryCatchUpWithPrimary`.
    pub fn open_read_only(path: impl AsRef<Path>, options: Options) -> Result<crate::ReadOnlyDb> {
        crate::ReadOnlyDb::open(path.as_ref(), options)
    }

    /// Every committed write batch from sequence number `seq` on, in
    /// order, across WAL rotations and reopens, read from the synced part
    /// of the WALs (a batch it yields survives any crash): what a replica
    /// or a change-data-capture consumer reads. Writes not yet synced
    /// appear after the next sync (a `sync` write, [`flush_wal(true)`](Self::flush_wal),
    /// a flush); writes with `disable_wal` never do. Fails with
    /// [`Error::ChangeFeedGap`] if WALs holding writes from `seq` on are
    /// deleted: keep them with `Options::wal_ttl_seconds` or
    /// `wal_size_limit_mb`, or with a [`change_feed`](Self::change_feed)
    /// cursor. RocksDB: `GetUpdatesSince` (which skips such a gap
    /// silently). docs/design/change-feed.md.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = strata::Db::open(dir.path(), strata::Options::default())?;
    /// let sync = strata::WriteOptions { sync: true, ..Default::default() };
    /// db.put_opt(b"a", b"1", &sync)?;
    /// db.delete_opt(b"a", &sync)?;
    /// let batches: Vec<_> = db.updates_since(2)?.collect::<Result<_, _>>()?;
    /// assert_eq!(batches.len(), 1);
    /// assert_eq!(batches[0].sequence(), 2);
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn updates_since(&self, seq: u64) -> Result<crate::UpdatesSince> {
        self.inner().updates_since(seq)
    }

    /// The durable change feed cursor `name`, created at the last written
    /// sequence number if it does not exist (see [`crate::ChangeFeed`]).
    pub fn change_feed(&self, name: &str) -> Result<crate::ChangeFeed> {
        self.inner().open_change_feed(name)?;
        Ok(crate::ChangeFeed::new(self.clone(), name.to_owned()))
    }

    /// Forget the change feed cursor `name`; the WALs only it kept go.
    pub fn drop_change_feed(&self, name: &str) -> Result<()> {
        self.inner().drop_change_feed(name)
    }

    /// Hand every WAL record still in the WAL buffer to the operating system,
    /// and with `sync` also fsync the WAL. Needed with
    /// [`Options::manual_wal_flush`]; harmless otherwise. RocksDB:
    /// `FlushWAL(sync)`.
    pub fn flush_wal(&self, sync: bool) -> Result<()> {
        self.inner().flush_wal(sync)
    }

    /// Accept writes again after a background error, once its cause is
    /// gone: after a full disk, once there is room (the flush thread also
    /// tries this on its own, see [`Options::max_bgerror_resume_count`]);
    /// after another I/O error, if the retried work succeeds. It waits for
    /// running flushes and compactions, writes every memtable to a table
    /// (retrying a failed flush), starts a fresh WAL (the one that failed
    /// is abandoned: nothing depends on it then), deletes the files the
    /// failures left, and clears the error; a failed compaction runs again
    /// afterwards. `Ok` at once if there is no background error. RocksDB:
    /// `Resume()`.
    ///
    /// When it returns `Ok`, every write acknowledged before it is durable,
    /// whatever durability it asked for. A write that failed with the
    /// background error has an unknown outcome, as any failed write: its
    /// batch may have reached the memtable, and then the resume applies
    /// it. Writers waiting in a stall or on the WAL when the error struck
    /// failed with it; writes made after the resume succeed.
    ///
    /// Fails, with the error writes now fail with, if the work fails again
    /// (the disk is still full: nothing changed, try again later), and
    /// with the background error itself if no resume can clear it
    /// (corruption, a panic): reopen the database then.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = strata::Db::open(dir.path(), strata::Options::default())?;
    /// if let Err(e) = db.put(b"k", b"v") {
    ///     if e.is_no_space() {
    ///         // ... make room, then:
    ///         db.resume()?;
    ///     }
    /// }
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn resume(&self) -> Result<()> {
        self.delivered(self.inner().resume())
    }

    /// The current value of `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.inner()
            .get(self.default_ks(), key.as_ref(), ReadSpec::default())
    }

    /// The value of `key` with explicit read options (e.g. a snapshot).
    pub fn get_opt(&self, key: impl AsRef<[u8]>, opts: &ReadOptions<'_>) -> Result<Option<Bytes>> {
        self.inner()
            .get(self.default_ks(), key.as_ref(), opts.spec())
    }

    /// Every entry in key order; double-ended (`.rev()` works).
    pub fn iter(&self) -> Iter {
        self.inner()
            .iter::<&[u8], _>(self.default_ks(), .., ReadSpec::default())
    }

    /// Entries whose keys lie in `range`, e.g. `db.range(b"a".as_slice()..b"m".as_slice())`.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        self.inner()
            .iter(self.default_ks(), range, ReadSpec::default())
    }

    /// Like [`Db::range`] with explicit read options.
    pub fn range_opt<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        range: R,
        opts: &ReadOptions<'_>,
    ) -> Iter {
        self.inner().iter(self.default_ks(), range, opts.spec())
    }

    /// Entries whose keys start with `prefix`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        self.inner()
            .prefix(self.default_ks(), prefix.as_ref(), ReadSpec::default())
    }

    /// A seekable cursor over the current state.
    pub fn cursor(&self) -> Cursor {
        self.inner().cursor(self.default_ks(), ReadSpec::default())
    }

    /// A cursor with explicit read options.
    pub fn cursor_opt(&self, opts: &ReadOptions<'_>) -> Cursor {
        self.inner().cursor(self.default_ks(), opts.spec())
    }

    /// A snapshot of the current state.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(Arc::clone(self.inner()))
    }

    /// Add the table files at `files`, built with
    /// [`SstWriter`](crate::SstWriter), to the default keyspace
    /// ([`Keyspace::ingest`] for another), all or none, as RocksDB's
    /// `IngestExternalFile`: each file is checked (block checksums with
    /// `verify_checksums_before_ingest`, keys sorted and unique) and
    /// they must not overlap each other; then, with writes stopped
    /// meanwhile, each goes to the deepest level where nothing above or
    /// in it overlaps its range, by one MANIFEST edit. A file overlapping
    /// nothing in the keyspace keeps sequence number 0 and is linked
    /// (`move_files`) or copied in as it is; one overlapping older data,
    /// going to L0, holding range deletes, or ingested while a snapshot
    /// is live gets the next sequence number (snapshots taken before do
    /// not see it), and is rewritten with it. The memtables are flushed
    /// first when a file overlaps them, or must be numbered while they
    /// hold writes (`allow_blocking_flush`). A crash before the edit is
    /// durable leaves the database as before; the files copied in are
    /// removed at the next open. Errors name the file. The change feed
    /// does not show ingested data: a reader reaching the ingestion's
    /// sequence numbers gets `Error::ChangeFeedGap` of exactly them
    /// (docs/design/change-feed.md §2a): a replica must be given the files
    /// too, or catch up another way.
    pub fn ingest<P: AsRef<std::path::Path>>(
        &self,
        files: &[P],
        options: &crate::IngestOptions,
    ) -> Result<()> {
        let paths: Vec<std::path::PathBuf> =
            files.iter().map(|p| p.as_ref().to_path_buf()).collect();
        self.delivered(self.inner().ingest(self.default_ks(), &paths, options))
    }

    /// Write the default keyspace's memtable to an L0 table and wait until
    /// it (and every memtable of it frozen before) is on disk
    /// ([`Keyspace::flush`] for another keyspace, [`Db::flush_all`] for
    /// all).
    pub fn flush(&self) -> Result<()> {
        self.delivered(self.inner().flush_and_wait(self.default_ks()))
    }

    /// Flush every keyspace's memtable, as [`Db::flush`] does the default
    /// one's.
    pub fn flush_all(&self) -> Result<()> {
        for ks in self.inner().all_keyspaces().iter() {
            match self.inner().flush_and_wait(ks) {
                Ok(()) | Err(Error::KeyspaceDropped { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Compact every table overlapping `range` down to the last level
    /// (flushing the memtable first), e.g. `db.compact_range::<&[u8], _>(..)`
    /// for the whole key space. Drops overwritten versions and tombstones
    /// that no snapshot needs. RocksDB: `CompactRange`.
    pub fn compact_range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<()> {
        let (lower, upper) = range_ends(&range);
        self.delivered(self.inner().compact_range(self.default_ks(), lower, upper))
    }

    /// Run pending flushes and compactions in the calling thread until
    /// none is due. Meant for `Options::inline_background_work`, where no
    /// background thread does them; harmless otherwise.
    pub fn run_background_work(&self) -> Result<()> {
        self.delivered(self.inner().run_background_work())
    }

    /// Wait until no flush or compaction is pending or running.
    pub fn wait_for_compactions(&self) -> Result<()> {
        self.delivered(self.inner().wait_for_compactions())
    }

    /// RocksDB's tickers and latency histograms (`rocksdb.block.cache.hit`,
    /// `rocksdb.db.get.micros`, ...), if [`Options::statistics`] is set;
    /// `to_text()` prints them as `db_bench --statistics` does.
    ///
    /// [`Options::statistics`]: crate::Options::statistics
    pub fn statistics(&self) -> Option<crate::StatisticsSnapshot> {
        self.inner().statistics()
    }

    /// How many times an [`EventListener`](crate::EventListener) callback
    /// panicked (each was caught; the engine went on).
    pub fn listener_panics(&self) -> u64 {
        self.inner().events.panics()
    }

    /// `result`, after delivering the events deferred until a thread
    /// holding nothing could call the listeners (stall changes,
    /// background errors, WALs created: `events/notifier.rs`).
    fn delivered<T>(&self, result: T) -> T {
        self.inner().events.deliver_deferred();
        result
    }

    /// Every live table with its level, key and sequence ranges.
    pub fn live_files(&self) -> Vec<crate::LiveFile> {
        self.inner().live_files()
    }

    /// The default keyspace's live blob files, oldest first, with their
    /// totals and garbage (`strata.blob-stats` shows the same). An error
    /// when a blob file's footer cannot be read.
    pub fn live_blob_files(&self) -> Result<Vec<crate::LiveBlobFile>> {
        self.inner().live_blob_files_of(self.default_ks())
    }

    /// Verify every block checksum of every live table; the first damage
    /// found is returned as [`Error::Corruption`].
    pub fn verify_checksums(&self) -> Result<()> {
        self.inner().verify_checksums()
    }

    /// Statistics: per-level sizes, scores and compaction counters, and
    /// cumulative write, WAL, flush, compaction and stall figures.
    pub fn stats(&self) -> crate::DbStats {
        self.inner().stats_of(self.default_ks())
    }

    /// A named property as text, like RocksDB's `GetProperty`:
    /// `strata.stats` (the compaction stats table), `strata.levelstats`,
    /// `strata.blob-stats` (per blob file: size, values and stored bytes,
    /// garbage values and bytes, garbage ratio; then the totals),
    /// `strata.sstables`, `strata.num-files-at-level<N>`,
    /// `strata.block-cache-usage` (bytes charged to the block cache),
    /// `strata.block-cache-pinned-usage` (of which pinned index and filter
    /// blocks),
    /// `strata.cur-size-active-mem-table` and `strata.size-all-mem-tables`
    /// (bytes of memory held by the active memtable, and by it and the
    /// frozen ones), `strata.memtable-pool-bytes` (arena blocks a flushed
    /// memtable left for the next ones: at most `write_buffer_size`,
    /// database-wide). `None` for an unknown name.
    pub fn property(&self, name: &str) -> Option<String> {
        self.inner().property_of(self.default_ks(), name)
    }

    /// Check the structural invariants of the live version (L1+ sorted and
    /// non-overlapping, newer versions above older ones, files present on
    /// disk, and, after `wait_for_compactions` with no iterator open, no
    /// stray table files). For tests and debugging; it reads every table.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> std::result::Result<(), String> {
        let inner = self.inner();
        let generation = || inner.bg.state.lock().generation;
        let busy = || inner.bg.compactions_running() > 0 || inner.any_frozen();
        let before = generation();
        let quiet = !busy();
        let versions: Vec<_> = {
            let set = inner.versions.lock();
            set.keyspaces().map(|(id, _)| set.current(id)).collect()
        };
        let (fs, dir) = (&*inner.fs, &inner.dir);
        match crate::version::invariants::check(&versions, fs, dir, quiet) {
            // A flush or compaction began after the look above and wrote
            // a table not yet installed: no stray, whatever the listing
            // says. (It is running still, or its end was announced.)
            Err(_) if quiet && (busy() || generation() != before) => {
                crate::version::invariants::check(&versions, fs, dir, false)
            }
            result => result,
        }
    }

    /// Close the database if this is its last handle, and report whether
    /// every acknowledged write reached the disk: the WAL is fsynced, and
    /// memtables holding writes the WAL lacks (made with
    /// [`WriteOptions::disable_wal`], or acknowledged after a WAL failure)
    /// are written to tables. Dropping the last handle does the same but
    /// cannot return the error. While other clones exist this only drops
    /// this one. RocksDB: `Close()`.
    pub fn close(self) -> Result<()> {
        match Arc::try_unwrap(self.handle) {
            Ok(handle) => handle.close(),
            Err(_) => Ok(()),
        }
    }

    /// The directory the database lives in.
    pub fn path(&self) -> &Path {
        &self.handle.inner.dir
    }

    /// The filesystem the database's files go through
    /// ([`Options::fs`](crate::Options::fs)): where to build tables
    /// with [`SstWriter`](crate::SstWriter) for [`Db::ingest`] to take.
    pub fn file_system(&self) -> std::sync::Arc<dyn crate::fs::FileSystem> {
        std::sync::Arc::clone(&self.handle.inner.fs)
    }
}

/// Range deletes (RocksDB: `DeleteRange`).
impl Db {
    /// Remove every key in `range`: each version written before this call
    /// is deleted, and nothing written after it. Takes any range of byte
    /// strings (`a..b`, `a..=b`, `a..`, `..b`, `..`) and writes one record,
    /// however many keys the range holds: the deleted keys are dropped
    /// later, by compaction. An empty range writes nothing; a start after
    /// the end is [`Error::InvalidArgument`](crate::Error::InvalidArgument).
    /// RocksDB: `DeleteRange`, which takes `start..end` only. The full
    /// range `..` needs its key type named: `db.delete_range::<&[u8]>(..)`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = strata::Db::open(dir.path(), strata::Options::default())?;
    /// for k in ["a", "b", "c", "d"] {
    ///     db.put(k, "v")?;
    /// }
    /// db.delete_range("b".."d")?; // b and c, not d
    /// assert!(db.get("b")?.is_none() && db.get("c")?.is_none());
    /// assert!(db.get("a")?.is_some() && db.get("d")?.is_some());
    /// db.delete_range("c"..)?; // no end
    /// assert!(db.get("d")?.is_none());
    /// assert!(db.delete_range("z".."a").is_err(), "inverted");
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn delete_range<K: AsRef<[u8]>>(&self, range: impl RangeBounds<K>) -> Result<()> {
        self.delete_range_opt(range, &WriteOptions::default())
    }

    /// Remove every key in `range` with explicit write options.
    pub fn delete_range_opt<K: AsRef<[u8]>>(
        &self,
        range: impl RangeBounds<K>,
        opts: &WriteOptions,
    ) -> Result<()> {
        write_range_delete(
            self.inner(),
            DEFAULT_KEYSPACE_ID,
            range_to_span(&range),
            opts,
        )
    }

    /// Remove every key starting with `prefix` (every key, for the empty
    /// prefix), as one range delete: see
    /// [`WriteBatch::delete_prefix`](crate::WriteBatch::delete_prefix).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = strata::Db::open(dir.path(), strata::Options::default())?;
    /// db.put("session:1", "x")?;
    /// db.put("sessions", "y")?;
    /// db.delete_prefix("session:")?;
    /// assert!(db.get("session:1")?.is_none());
    /// assert!(db.get("sessions")?.is_some());
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn delete_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
        self.delete_prefix_opt(prefix, &WriteOptions::default())
    }

    /// Remove every key starting with `prefix` with explicit write options.
    pub fn delete_prefix_opt(&self, prefix: impl AsRef<[u8]>, opts: &WriteOptions) -> Result<()> {
        write_range_delete(
            self.inner(),
            DEFAULT_KEYSPACE_ID,
            prefix_span(prefix.as_ref()),
            opts,
        )
    }
}

/// Write one range delete of `span` (made by `range_to_span`) in keyspace
/// `keyspace`. An empty range writes no record, but is a sync point like
/// an empty batch: what was acknowledged before it is durable when a sync
/// call returns.
pub(crate) fn write_range_delete(
    inner: &DbInner,
    keyspace: u32,
    span: std::result::Result<Option<Span>, String>,
    opts: &WriteOptions,
) -> Result<()> {
    match span.map_err(Error::InvalidArgument)? {
        Some((start, end)) => inner.write_with(opts, |b| {
            b.delete_range_in_id(keyspace, &start, end.as_deref());
        }),
        None => inner.write(WriteBatch::new(), opts),
    }
}

#[cfg(test)]
mod range_delete_tests;

/// The keys bounding `range`, inclusive or not (a compaction's bounds
/// include both ends).
pub(crate) fn range_ends<'r, K: AsRef<[u8]> + 'r, R: RangeBounds<K>>(
    range: &'r R,
) -> (Option<&'r [u8]>, Option<&'r [u8]>) {
    use std::ops::Bound;
    let lower = match range.start_bound() {
        Bound::Included(k) | Bound::Excluded(k) => Some(k.as_ref()),
        Bound::Unbounded => None,
    };
    let upper = match range.end_bound() {
        Bound::Included(k) | Bound::Excluded(k) => Some(k.as_ref()),
        Bound::Unbounded => None,
    };
    (lower, upper)
}
