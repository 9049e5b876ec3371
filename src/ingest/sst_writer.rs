//! `SstWriter`: builds a table file outside the database, for
//! [`Db::ingest`](crate::Db::ingest) to add later (RocksDB's
//! `SstFileWriter`).
//!
//! Keys come in strictly increasing order, each once, and are written
//! with sequence number 0: the ingestion decides what sequence number
//! the table's entries take (docs/sstable-format.md, "Ingested tables").

use crate::batch::{MAX_KEY_SIZE, MAX_VALUE_SIZE};
use crate::error::{table_write_error, Error, Result};
use crate::fs::{FileSystem, WriteAdapter, Writeback};
use crate::options::Options;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_sstable::{TableBuilder, TableOptions, ValueKind};

/// What [`SstWriter::finish`] wrote (RocksDB's `ExternalSstFileInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalSstFileInfo {
    /// Where the table is.
    pub file_path: PathBuf,
    /// Its smallest point key (empty if it holds only range deletes).
    pub smallest_key: Vec<u8>,
    /// Its largest point key (empty if it holds only range deletes).
    pub largest_key: Vec<u8>,
    /// Point entries: puts, deletes and merge operands.
    pub num_entries: u64,
    /// Range deletes added.
    pub num_range_del_entries: u64,
    /// Bytes in the file.
    pub file_size: u64,
}

/// Builds one table file of sorted keys, to be added to a database with
/// [`Db::ingest`](crate::Db::ingest) or
/// [`Keyspace::ingest`](crate::Keyspace::ingest).
///
/// The table is built as the database would build it from the given
/// [`Options`]: `block_size`, `block_restart_interval`,
/// `bloom_bits_per_key`, `compression` and `block_align`; its merge
/// operands are labelled with `merge_operator`'s name; the file is
/// written through `fs`. Point keys must come in strictly increasing
/// order: a key out of order or given twice is refused with
/// [`Error::InvalidArgument`] naming it, and the writer stays usable.
/// Range deletes may come in any order.
///
/// ```no_run
/// # fn main() -> strata::Result<()> {
/// use strata::{Db, IngestOptions, Options, SstWriter};
/// let options = Options::default();
/// let mut writer = SstWriter::create("/tmp/bulk.sst", &options)?;
/// writer.put(b"a", b"1")?;
/// writer.put(b"b", b"2")?;
/// let info = writer.finish()?;
/// let db = Db::open("/tmp/db", options)?;
/// db.ingest(&[info.file_path], &IngestOptions::default())?;
/// # Ok(()) }
/// ```
pub struct SstWriter {
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
    /// `None` once finished (or abandoned after an I/O error).
    builder: Option<TableBuilder<WriteAdapter>>,
    /// The last point key added (empty before the first).
    last_key: Vec<u8>,
    smallest_key: Vec<u8>,
    entries: u64,
    range_dels: u64,
}

impl std::fmt::Debug for SstWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SstWriter")
            .field("path", &self.path)
            .field("entries", &self.entries)
            .field("range_dels", &self.range_dels)
            .finish()
    }
}

impl SstWriter {
    /// Create (or truncate) the table file at `path` and start building
    /// it with `options`' table settings (RocksDB: `SstFileWriter::Open`).
    pub fn create(path: impl AsRef<Path>, options: &Options) -> Result<SstWriter> {
        let path = path.as_ref().to_path_buf();
        let table_options = TableOptions {
            block_size: options.block_size,
            restart_interval: options.block_restart_interval,
            bloom_bits_per_key: options.bloom_bits_per_key,
            compression: options.compression.clone(),
            compression_opts: options.compression_opts.clone(),
            block_align: options.block_align,
        };
        let fs = Arc::clone(&options.fs);
        let file = fs
            .create(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        let mut builder = TableBuilder::new(
            WriteAdapter(file, None, Writeback::every(options.bytes_per_sync)),
            table_options,
        )
        .map_err(|e| table_write_error(&path, e))?;
        builder.set_creation_time(options.clock.now_micros() / 1_000_000);
        if let Some(operator) = &options.merge_operator {
            builder.set_merge_operator_name(operator.name());
        }
        Ok(SstWriter {
            path,
            fs,
            builder: Some(builder),
            last_key: Vec::new(),
            smallest_key: Vec::new(),
            entries: 0,
            range_dels: 0,
        })
    }

    /// Add `key` with `value`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.add(key.as_ref(), ValueKind::Put, value.as_ref())
    }

    /// Add a delete of `key`: once ingested it hides older versions of
    /// `key` in the database.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        self.add(key.as_ref(), ValueKind::Delete, &[])
    }

    /// Add a merge operand for `key` (the keyspace it is ingested into
    /// needs a merge operator, of the same name if the writer's options
    /// named one).
    pub fn merge(&mut self, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) -> Result<()> {
        self.add(key.as_ref(), ValueKind::Merge, operand.as_ref())
    }

    /// Add a delete of every key in `[start, end)`: once ingested it hides
    /// older versions of them in the database (not the point entries of
    /// this same file, which are as new as it).
    pub fn delete_range(&mut self, start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) -> Result<()> {
        let (start, end) = (start.as_ref(), end.as_ref());
        if start >= end {
            return Err(Error::InvalidArgument(format!(
                "{}: range delete start {:?} is not below its end {:?}",
                self.path.display(),
                start.escape_ascii().to_string(),
                end.escape_ascii().to_string()
            )));
        }
        self.add_range_delete(start, Some(end))
    }

    /// Add a delete of every key from `start` on, to the end of the key
    /// space (the largest key there can be included, which a
    /// [`delete_range`](Self::delete_range) cannot reach: its end is
    /// exclusive and no longer than a key). As `delete_range`, it hides
    /// older versions in the database, not this file's point entries.
    /// RocksDB has no such call; a batch's `delete_range_in(ks, start..)`
    /// is the same delete.
    pub fn delete_range_from(&mut self, start: impl AsRef<[u8]>) -> Result<()> {
        self.add_range_delete(start.as_ref(), None)
    }

    /// A range delete `[start, end)` (`end` `None`: to the end of the key
    /// space) into the table, its bounds no longer than a key.
    fn add_range_delete(&mut self, start: &[u8], end: Option<&[u8]>) -> Result<()> {
        let longest = start.len().max(end.map_or(0, <[u8]>::len));
        if longest > MAX_KEY_SIZE {
            return Err(self.too_large("range delete bound", longest));
        }
        let builder = self.builder()?;
        builder
            .add_range_tombstone(start, end, 0)
            .map_err(|e| table_write_error(&self.path, e))?;
        self.range_dels += 1;
        Ok(())
    }

    fn add(&mut self, key: &[u8], kind: ValueKind, value: &[u8]) -> Result<()> {
        if key.len() > MAX_KEY_SIZE {
            return Err(self.too_large("key", key.len()));
        }
        if value.len() > MAX_VALUE_SIZE {
            return Err(self.too_large("value", value.len()));
        }
        if self.entries > 0 && key <= self.last_key.as_slice() {
            let why = if key == self.last_key.as_slice() {
                "was already added (SstWriter takes each key once)".to_string()
            } else {
                format!(
                    "is not after the previous key {:?} (SstWriter takes keys in increasing order)",
                    self.last_key.escape_ascii().to_string()
                )
            };
            return Err(Error::InvalidArgument(format!(
                "{}: key {:?} {why}",
                self.path.display(),
                key.escape_ascii().to_string()
            )));
        }
        let path = &self.path;
        let builder = self.builder.as_mut().ok_or_else(|| finished(path))?;
        if let Err(e) = builder.add(key, 0, kind, value) {
            let e = table_write_error(path, e);
            if matches!(e, Error::Io { .. }) {
                // The file is unusable: a later add must not pretend.
                self.abandon();
            }
            return Err(e);
        }
        if self.entries == 0 {
            self.smallest_key = key.to_vec();
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.entries += 1;
        Ok(())
    }

    /// Write the table's index, filter and footer, sync the file, and say
    /// what it holds. A table with no entry and no range delete is
    /// refused (nothing to ingest), and its file removed.
    pub fn finish(mut self) -> Result<ExternalSstFileInfo> {
        let path = self.path.clone();
        let builder = self.builder.take().ok_or_else(|| finished(&path))?;
        if self.entries == 0 && self.range_dels == 0 {
            drop(builder);
            let _ = self.fs.remove(&path);
            return Err(Error::InvalidArgument(format!(
                "{}: no entries to write (an empty table cannot be ingested)",
                path.display()
            )));
        }
        let built = match builder.finish() {
            Ok(built) => built,
            Err(e) => {
                let _ = self.fs.remove(&path);
                return Err(table_write_error(&path, e));
            }
        };
        let file_size = built.file_size;
        let WriteAdapter(mut file, ..) = built.writer;
        if let Err(e) = file.sync() {
            let _ = self.fs.remove(&path);
            return Err(Error::io("sync", &path, e));
        }
        Ok(ExternalSstFileInfo {
            file_path: path,
            smallest_key: std::mem::take(&mut self.smallest_key),
            largest_key: std::mem::take(&mut self.last_key),
            num_entries: self.entries,
            num_range_del_entries: self.range_dels,
            file_size,
        })
    }

    /// Point entries added so far.
    pub fn num_entries(&self) -> u64 {
        self.entries
    }

    fn builder(&mut self) -> Result<&mut TableBuilder<WriteAdapter>> {
        let path = &self.path;
        self.builder.as_mut().ok_or_else(|| finished(path))
    }

    fn too_large(&self, what: &str, len: usize) -> Error {
        Error::InvalidArgument(format!(
            "{}: {what} of {len} bytes is larger than strata accepts (keys {MAX_KEY_SIZE}, values {MAX_VALUE_SIZE})",
            self.path.display()
        ))
    }

    fn abandon(&mut self) {
        if self.builder.take().is_some() {
            let _ = self.fs.remove(&self.path);
        }
    }
}

/// A writer dropped unfinished leaves no half-built file behind.
impl Drop for SstWriter {
    fn drop(&mut self) {
        self.abandon();
    }
}

fn finished(path: &Path) -> Error {
    Error::InvalidArgument(format!(
        "{}: the SstWriter was finished or failed",
        path.display()
    ))
}
