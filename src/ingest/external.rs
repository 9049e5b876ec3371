//! Opening and checking a table file to be ingested, before anything in
//! the database changes.

use crate::error::{table_error, Error, Result};
use crate::fs::{FileSystem, RandomAccessOptions};
use crate::version::{FileMeta, FileSource, KeyRange};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_sstable::{BlockReadOptions, Table, TableReadOptions};

/// A table file outside the database, opened and checked.
pub(crate) struct ExternalFile {
    /// Where the caller said it is.
    pub path: PathBuf,
    pub table: Arc<Table>,
    /// What the MANIFEST would record about it at sequence number 0
    /// (`number` is set when it gets one).
    pub meta: FileMeta,
}

impl ExternalFile {
    /// Its key range, range deletes included.
    pub fn range(&self) -> KeyRange {
        self.meta.key_range()
    }

    /// Whether it holds range deletes: they always get a sequence
    /// number of their own (a range tombstone deletes what is older than
    /// it, and nothing is older than 0).
    pub fn has_range_dels(&self) -> bool {
        self.table.range_tombstones().is_some_and(|t| !t.is_empty())
    }
}

/// Bytes read per `pread` while checking a file.
const SCAN_READAHEAD_BYTES: usize = 2 << 20;

/// Open the table at `path` and check it as an ingestion needs: every
/// entry at sequence number 0 (what [`SstWriter`](crate::SstWriter)
/// writes), point keys in strictly increasing order, each once, as many
/// as its properties say, and, with `verify_checksums`, every data
/// block's checksum. The error names the file.
pub(crate) fn open_external(
    fs: &dyn FileSystem,
    path: &Path,
    verify_checksums: bool,
) -> Result<ExternalFile> {
    // Read with `pread` in large windows, not mapped: a scan of a mapped
    // gigabyte takes a page fault per 4 KiB (1.5 s of system time for
    // 10M keys, docs/performance.md).
    let file = fs
        .open_random_access(path, RandomAccessOptions { mmap: false })
        .map_err(|e| Error::io("open", path, e))?;
    let size = file.size();
    let options = TableReadOptions {
        verify_checksums,
        fill_cache: false,
        ..TableReadOptions::default()
    };
    let source = Arc::new(FileSource(file));
    let table = Arc::new(Table::open_source(source, options).map_err(|e| table_error(path, e))?);
    let props = table.properties();
    if props.max_seqno != 0 {
        return Err(Error::InvalidArgument(format!(
            "{}: holds entries with sequence numbers up to {}; an ingested table's entries must be at 0, as SstWriter writes them",
            path.display(),
            props.max_seqno
        )));
    }
    let reads = BlockReadOptions {
        verify_checksums,
        fill_cache: false,
        readahead_bytes: SCAN_READAHEAD_BYTES,
    };
    let mut it = table.iter_with_options(reads);
    it.seek_to_first().map_err(|e| table_error(path, e))?;
    let mut last: Vec<u8> = Vec::new();
    let mut entries = 0u64;
    while it.valid() {
        let k = it.parsed_key();
        if k.seqno != 0 {
            return Err(Error::corruption(
                path,
                0,
                format!(
                    "key {:?} has sequence number {} where its properties say 0",
                    k.user_key.escape_ascii().to_string(),
                    k.seqno
                ),
            ));
        }
        if k.kind == strata_sstable::ValueKind::BlobIndex {
            return Err(Error::InvalidArgument(format!(
                "{}: key {:?} holds a blob reference; an ingested table holds its values (blob files are not ingested)",
                path.display(),
                k.user_key.escape_ascii().to_string()
            )));
        }
        if entries > 0 && k.user_key <= last.as_slice() {
            return Err(Error::corruption(
                path,
                0,
                format!(
                    "key {:?} is not after the key before it, {:?}: keys must be sorted and unique",
                    k.user_key.escape_ascii().to_string(),
                    last.escape_ascii().to_string()
                ),
            ));
        }
        last.clear();
        last.extend_from_slice(k.user_key);
        entries += 1;
        it.next().map_err(|e| table_error(path, e))?;
    }
    if entries != props.num_entries {
        return Err(Error::corruption(
            path,
            0,
            format!(
                "holds {entries} entries but its properties say {}",
                props.num_entries
            ),
        ));
    }
    let bounds = table.bounds();
    let meta = FileMeta {
        number: 0,
        size,
        smallest: bounds.smallest,
        largest: bounds.largest,
        largest_bound: bounds.largest_bound,
        smallest_seqno: 0,
        largest_seqno: 0,
        blob_files: Vec::new(),
        blob_refs: Vec::new(),
    };
    if meta.key_range().is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{}: holds no key",
            path.display()
        )));
    }
    Ok(ExternalFile {
        path: path.to_path_buf(),
        table,
        meta,
    })
}

/// Refuse files whose key ranges overlap: each is placed on its own, and
/// two versions of a key would have no order between them.
pub(crate) fn check_disjoint(files: &mut [ExternalFile]) -> Result<()> {
    files.sort_by(|a, b| a.meta.smallest.cmp(&b.meta.smallest));
    for pair in files.windows(2) {
        if !pair[0].meta.ends_before(&pair[1].meta.smallest) {
            return Err(Error::InvalidArgument(format!(
                "{} and {} overlap in keys: files ingested together must not",
                pair[0].path.display(),
                pair[1].path.display()
            )));
        }
    }
    Ok(())
}
