//! A live table: its manifest metadata and its open reader. When a version
//! edit removes a table, it is marked obsolete; the file is deleted when the
//! last version or iterator holding it lets go.

use super::edit::FileMeta;
use crate::cache::ShardedLruCache;
use crate::error::{table_error, Error, Result};
use crate::filename::table_path;
use crate::fs::FileSystem;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use strata_sstable::{BlockCache, Table, TableReadOptions};

/// Opens tables with the database's filesystem and block cache.
#[derive(Clone)]
pub struct TableOpener {
    pub fs: Arc<dyn FileSystem>,
    pub dir: PathBuf,
    pub cache: Option<Arc<ShardedLruCache>>,
}

impl TableOpener {
    /// Map the table file and open its reader (footer, index and filter
    /// are checked here).
    pub fn open(&self, meta: FileMeta) -> Result<Arc<TableFile>> {
        let path = table_path(&self.dir, meta.number);
        let data = self.fs.read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::corruption(&path, 0, "table referenced by the manifest is missing")
            } else {
                Error::io("map table", &path, e)
            }
        })?;
        if data.len() as u64 != meta.size {
            return Err(Error::corruption(
                &path,
                data.len() as u64,
                format!(
                    "table is {} bytes but the manifest recorded {}",
                    data.len(),
                    meta.size
                ),
            ));
        }
        let options = TableReadOptions {
            table_id: meta.number,
            cache: self.cache.clone().map(|c| c as Arc<dyn BlockCache>),
            ..TableReadOptions::default()
        };
        let table = Table::open(data, options).map_err(|e| table_error(&path, e))?;
        Ok(Arc::new(TableFile {
            meta,
            table: Arc::new(table),
            path,
            fs: Arc::clone(&self.fs),
            obsolete: AtomicBool::new(false),
            being_compacted: AtomicBool::new(false),
        }))
    }
}

/// A table that is (or was) part of a version.
pub struct TableFile {
    /// What the manifest knows about it.
    pub meta: FileMeta,
    table: Arc<Table>,
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
    obsolete: AtomicBool,
    /// Set while a compaction has it as an input.
    pub being_compacted: AtomicBool,
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

    /// Whether `user_key` lies within the table's key range.
    pub fn contains_key(&self, user_key: &[u8]) -> bool {
        self.meta.smallest.as_slice() <= user_key && user_key <= self.meta.largest.as_slice()
    }

    /// Mark the file for deletion once nothing holds it. Called only after
    /// the edit removing it is durable in the manifest.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
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
