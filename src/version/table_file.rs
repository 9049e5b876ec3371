//! A live table: its manifest metadata, its open reader and the file
//! under it. When a version edit removes a table, it is marked obsolete;
//! the file is deleted when the last version or iterator holding it lets
//! go.

use super::edit::FileMeta;
use crate::cache::ShardedLruCache;
use crate::error::{table_error, Error, Result};
use crate::filename::table_path;
use crate::fs::{FileSystem, RandomAccessFile, RandomAccessOptions};
use crate::options::Options;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use strata_sstable::{BlockCache, BlockSource, PageCacheGauge, Table, TableReadOptions};

/// Opens tables with the database's filesystem, block cache and table
/// read options.
#[derive(Clone)]
pub struct TableOpener {
    pub fs: Arc<dyn FileSystem>,
    pub dir: PathBuf,
    pub cache: Option<Arc<ShardedLruCache>>,
    /// Judges, for every table of the block cache, whether memory is
    /// short, so that data blocks stop entering the block cache and the
    /// page cache does not hold copies of them (sstable's `exclusive.rs`).
    pub page_cache_gauge: Option<Arc<PageCacheGauge>>,
    /// `Options::allow_mmap_reads`.
    pub mmap: bool,
    /// `Options::cache_index_and_filter_blocks`.
    pub cache_index_and_filter_blocks: bool,
    /// `Options::pin_l0_filter_and_index_blocks_in_cache`.
    pub pin_l0: bool,
    /// The blob files the open tables list (docs/design/blob-files.md).
    pub(crate) blobs: Arc<crate::blob::BlobFileSet>,
}

impl TableOpener {
    /// The opener for a database in `dir` opened with `options`, with a
    /// block cache of `options.block_cache_bytes` (none if 0).
    pub fn new(fs: Arc<dyn FileSystem>, dir: PathBuf, options: &Options) -> TableOpener {
        TableOpener {
            fs: Arc::clone(&fs),
            dir: dir.clone(),
            cache: (options.block_cache_bytes > 0).then(|| {
                Arc::new(
                    ShardedLruCache::new(options.block_cache_bytes)
                        .with_statistics(options.statistics.clone()),
                )
            }),
            page_cache_gauge: (options.block_cache_bytes > 0 && !options.allow_mmap_reads)
                .then(|| Arc::new(PageCacheGauge::new())),
            mmap: options.allow_mmap_reads,
            cache_index_and_filter_blocks: options.cache_index_and_filter_blocks,
            pin_l0: options.pin_l0_filter_and_index_blocks_in_cache,
            blobs: Arc::new(crate::blob::BlobFileSet::new(Arc::clone(&fs), dir.clone())),
        }
    }

    /// Open the table file and its reader (footer, index and filter are
    /// read and checked here) for a table of `level`.
    pub fn open(&self, meta: FileMeta, level: usize) -> Result<Arc<TableFile>> {
        let path = table_path(&self.dir, meta.number);
        let options = RandomAccessOptions { mmap: self.mmap };
        let file = self.fs.open_random_access(&path, options).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::corruption(&path, 0, "table referenced by the manifest is missing")
            } else {
                Error::io("open table", &path, e)
            }
        })?;
        if file.size() != meta.size {
            return Err(Error::corruption(
                &path,
                file.size(),
                format!(
                    "table is {} bytes but the manifest recorded {}",
                    file.size(),
                    meta.size
                ),
            ));
        }
        let options = TableReadOptions {
            table_id: meta.number,
            cache: self.cache.clone().map(|c| c as Arc<dyn BlockCache>),
            cache_index_and_filter_blocks: self.cache_index_and_filter_blocks,
            pin_index_and_filter: self.pin_l0 && level == 0,
            page_cache_gauge: self.page_cache_gauge.clone(),
            ..TableReadOptions::default()
        };
        let source = Arc::new(FileSource(Arc::clone(&file)));
        let table = Table::open_source(source, options).map_err(|e| table_error(&path, e))?;
        let mut blob_files = Vec::with_capacity(meta.blob_files.len());
        for &n in &meta.blob_files {
            let blob = self.blobs.acquire(n);
            // Opened with the table, as the table file is: whoever holds
            // this table (an old version, an iterator, a read-only view)
            // reads its values through the open file even after the blob
            // file is deleted (a resume's clean-up, a writer beside a
            // read-only open), and a missing one fails here, where a
            // read-only build retries.
            blob.reader()?;
            blob.add_live_table();
            blob_files.push(blob);
        }
        // Sorted, for `resolve_blob`'s binary search.
        blob_files.sort_unstable_by_key(|b| b.number());
        Ok(Arc::new(TableFile {
            blob_files,
            meta,
            table: Arc::new(table),
            file,
            path,
            fs: Arc::clone(&self.fs),
            obsolete: AtomicBool::new(false),
            being_compacted: AtomicBool::new(false),
        }))
    }
}

/// A table file as the sstable reader reads it.
pub(crate) struct FileSource(pub(crate) Arc<dyn RandomAccessFile>);

impl BlockSource for FileSource {
    fn size(&self) -> u64 {
        self.0.size()
    }

    #[inline]
    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        self.0.read_at(offset, len)
    }

    fn read_at_into(&self, offset: u64, len: usize, buf: Vec<u8>) -> std::io::Result<Bytes> {
        self.0.read_at_into(offset, len, buf)
    }

    #[inline]
    fn read_into(&self, offset: u64, len: usize, buf: &mut Vec<u8>) -> std::io::Result<()> {
        self.0.read_into(offset, len, buf)
    }

    fn read_into_if_cached(
        &self,
        offset: u64,
        len: usize,
        buf: &mut Vec<u8>,
    ) -> std::io::Result<bool> {
        self.0.read_into_if_cached(offset, len, buf)
    }

    fn in_memory(&self) -> Option<&Bytes> {
        self.0.in_memory()
    }

    fn will_need(&self, offset: u64, len: u64) {
        self.0.will_need(offset, len);
    }
}

/// A table that is (or was) part of a version.
pub struct TableFile {
    /// What the manifest knows about it.
    pub meta: FileMeta,
    table: Arc<Table>,
    file: Arc<dyn RandomAccessFile>,
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
    obsolete: AtomicBool,
    /// Set while a compaction has it as an input.
    pub being_compacted: AtomicBool,
    /// The blob files `meta.blob_files` lists, held open while this table
    /// is (`blob/file.rs`), sorted by number: where its blob references
    /// are resolved.
    blob_files: Vec<Arc<crate::blob::BlobFile>>,
}

impl TableFile {
    /// The open reader.
    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `user_key` lies within the table's key range
    /// ([`FileMeta::may_contain`]).
    pub fn contains_key(&self, user_key: &[u8]) -> bool {
        self.meta.may_contain(user_key)
    }

    /// Whether the table holds range tombstones (decoded at open, so this
    /// reads nothing): the tables delete-only compaction starts from.
    pub fn has_range_dels(&self) -> bool {
        self.table.range_tombstones().is_some_and(|t| !t.is_empty())
    }

    /// Tell the operating system the file's cached pages will not be read
    /// again soon (a compaction input, once the compaction is installed).
    pub fn drop_page_cache(&self) {
        self.file.drop_cache();
    }

    /// Mark the file for deletion once nothing holds it. Called only after
    /// the edit removing it is durable in the manifest.
    pub fn mark_obsolete(&self) {
        if !self.obsolete.swap(true, Ordering::AcqRel) {
            for blob in &self.blob_files {
                blob.remove_live_table();
            }
        }
    }

    /// The blob files the table lists, open, sorted by number.
    pub(crate) fn blob_files(&self) -> &[Arc<crate::blob::BlobFile>] {
        &self.blob_files
    }

    /// Whether the table lists blob files (holds blob references).
    pub fn has_blob_files(&self) -> bool {
        !self.blob_files.is_empty()
    }

    /// The value blob reference `reference`, a `BlobIndex` entry of this
    /// table, points to, checked to be `key`'s: read through the table's
    /// own open blob files, taking no lock.
    pub(crate) fn resolve_blob(&self, reference: &[u8], key: &[u8]) -> Result<Bytes> {
        crate::blob::resolve_in(&self.blob_files, &self.path, reference, key)
    }
}

impl Drop for TableFile {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            // Failure leaves a stray file, which the next open removes: no
            // version references it.
            let _ = self.fs.remove(&self.path);
        }
    }
}
