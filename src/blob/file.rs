//! A live blob file and the set of them a database has open.
//!
//! A blob file lives while a live table lists it (`FileMeta::blob_files`):
//! each `TableFile` holds an `Arc<BlobFile>` for every blob file it lists
//! and counts itself in `live_tables`; when a version edit removes a table
//! (`TableFile::mark_obsolete`) the count drops, and a blob file no live
//! table lists is deleted once the last version or iterator holding such
//! a table lets go (`Drop`), as tables are. A compaction's outputs list
//! only blob files its inputs list, and are opened before the inputs are
//! marked obsolete, so the count of a blob file still referenced never
//! reaches zero.

use crate::error::{table_error, Error, Result};
use crate::filename::blob_path;
use crate::fs::{FileSystem, RandomAccessOptions};
use crate::version::FileSource;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use strata_sstable::blob::{BlobFileReader, BlobRef};

/// One blob file: its path, and its reader, opened with the first table
/// that lists it (the cache of open blob file readers is the set of live
/// `BlobFile`s). Set once, the reader is read without a lock: a blob read
/// takes none.
pub(crate) struct BlobFile {
    number: u64,
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
    reader: OnceLock<Arc<BlobFileReader>>,
    /// Live (not obsolete) tables listing this file.
    live_tables: AtomicUsize,
    /// No live table lists it: delete it when the last holder lets go.
    obsolete: AtomicBool,
}

impl BlobFile {
    /// The file's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The file's number (its name, `NNNNNN.blob`).
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The open reader, opening the file the first time.
    pub fn reader(&self) -> Result<&Arc<BlobFileReader>> {
        if let Some(r) = self.reader.get() {
            return Ok(r);
        }
        let file = self
            .fs
            .open_random_access(&self.path, RandomAccessOptions { mmap: false })
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Error::corruption(&self.path, 0, "blob file referenced by a table is missing")
                } else {
                    Error::io("open blob file", &self.path, e)
                }
            })?;
        let reader = BlobFileReader::open(Arc::new(FileSource(file)), self.number)
            .map_err(|e| table_error(&self.path, e))?;
        // Two first reads may both open the file: one reader is kept and
        // the other dropped, which closes its file.
        Ok(self.reader.get_or_init(|| Arc::new(reader)))
    }

    /// The file's length in bytes, from its open reader (the MANIFEST
    /// records no blob file sizes): what a checkpoint copies.
    pub fn file_size(&self) -> Result<u64> {
        Ok(self.reader()?.file_size())
    }

    /// The value `reference` points to, checked to be `key`'s. Damage is
    /// `Error::Corruption` naming this file.
    pub fn get(&self, reference: &BlobRef, key: &[u8]) -> Result<Bytes> {
        self.reader()?
            .get(reference, key)
            .map_err(|e| table_error(&self.path, e))
    }

    /// What the file's footer says it holds, and its size: the totals
    /// garbage is measured against.
    pub fn totals(&self) -> Result<BlobFileTotals> {
        let r = self.reader()?;
        Ok(BlobFileTotals {
            count: r.blob_count(),
            bytes: r.blob_bytes(),
            file_size: r.file_size(),
        })
    }

    /// A live table lists this file.
    pub fn add_live_table(&self) {
        self.live_tables.fetch_add(1, Ordering::AcqRel);
        self.obsolete.store(false, Ordering::Release);
    }

    /// A table listing this file was removed by a durable version edit.
    pub fn remove_live_table(&self) {
        if self.live_tables.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.obsolete.store(true, Ordering::Release);
        }
    }
}

impl Drop for BlobFile {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            // Failure leaves a stray file, which the next open removes: no
            // live table lists it.
            let _ = self.fs.remove(&self.path);
        }
    }
}

/// A blob file's record count, the sum of its records' stored sizes
/// (both from its footer) and its size on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BlobFileTotals {
    pub count: u64,
    pub bytes: u64,
    pub file_size: u64,
}

/// The blob files of a database that some table holds, by number.
pub(crate) struct BlobFileSet {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    files: Mutex<HashMap<u64, Weak<BlobFile>>>,
}

impl BlobFileSet {
    pub fn new(fs: Arc<dyn FileSystem>, dir: PathBuf) -> BlobFileSet {
        BlobFileSet {
            fs,
            dir,
            files: Mutex::new(HashMap::new()),
        }
    }

    /// Blob file `number`, made if no table holds it yet.
    pub fn acquire(&self, number: u64) -> Arc<BlobFile> {
        let mut files = self.files.lock();
        if let Some(f) = files.get(&number).and_then(Weak::upgrade) {
            return f;
        }
        if files.len() >= 64 {
            files.retain(|_, f| f.strong_count() > 0);
        }
        let f = Arc::new(BlobFile {
            number,
            path: blob_path(&self.dir, number),
            fs: Arc::clone(&self.fs),
            reader: OnceLock::new(),
            live_tables: AtomicUsize::new(0),
            obsolete: AtomicBool::new(false),
        });
        files.insert(number, Arc::downgrade(&f));
        f
    }
}
