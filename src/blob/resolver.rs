//! Resolving a blob reference: finding the blob file it points into among
//! the ones a table (point reads) or a version (iterators) lists, and
//! reading the value. The lists are sorted by file number and hold open
//! readers (`BlobFile`, opened with the table), so a read takes no lock.
//!
//! Only a value a read returns is resolved: the point read resolves the
//! version its walk decides on (`Version::walk`), the user-key iterator
//! the version it stops on (`DbIter`'s `BlobIndex` arms). Versions a scan
//! steps over, deleted keys and the key-only walks (a transaction's
//! conflict check) read no blob.

use super::BlobFile;
use crate::error::{Error, Result};
use crate::filename::blob_path;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_sstable::blob::BlobRef;

/// The value `reference` (a `BlobIndex` entry's value, found in table
/// `table`) points to, checked to be `key`'s, read from the one of
/// `files` (sorted by number) it names.
pub(crate) fn resolve_in(
    files: &[Arc<BlobFile>],
    table: &Path,
    reference: &[u8],
    key: &[u8],
) -> Result<Bytes> {
    let r = decode(table, reference, key)?;
    match find(files, r.file_number) {
        Some(f) => f.get(&r, key),
        None => Err(Error::corruption(
            table,
            0,
            format!(
                "a blob reference for key {:?} points into blob file {:06}.blob, which the table \
                 does not list",
                String::from_utf8_lossy(key),
                r.file_number,
            ),
        )),
    }
}

fn decode(place: &Path, reference: &[u8], key: &[u8]) -> Result<BlobRef> {
    BlobRef::decode(reference).ok_or_else(|| {
        Error::corruption(
            place,
            0,
            format!(
                "a malformed blob reference for key {:?}",
                String::from_utf8_lossy(key)
            ),
        )
    })
}

fn find(files: &[Arc<BlobFile>], number: u64) -> Option<&Arc<BlobFile>> {
    files
        .binary_search_by_key(&number, |f| f.number())
        .ok()
        .map(|i| &files[i])
}

/// Every blob file the tables of one version list, sorted by number and
/// without duplicates: where the version's iterators resolve references
/// (one list per version, built with it, shared by its iterators).
pub(crate) struct BlobResolver {
    files: Vec<Arc<BlobFile>>,
    /// The database directory, which error messages name.
    dir: PathBuf,
}

impl BlobResolver {
    /// The resolver for tables listing `lists` of blob files; `None` when
    /// they list none.
    pub fn new<'a>(lists: impl IntoIterator<Item = &'a [Arc<BlobFile>]>) -> Option<BlobResolver> {
        let mut files: Vec<Arc<BlobFile>> = lists.into_iter().flatten().cloned().collect();
        files.sort_unstable_by_key(|f| f.number());
        files.dedup_by_key(|f| f.number());
        let dir = files
            .first()?
            .path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Some(BlobResolver { files, dir })
    }

    /// The value `reference` points to, checked to be `key`'s.
    pub fn resolve(&self, reference: &[u8], key: &[u8]) -> Result<Bytes> {
        let r = decode(&self.dir, reference, key)?;
        match find(&self.files, r.file_number) {
            Some(f) => f.get(&r, key),
            None => Err(Error::corruption(
                blob_path(&self.dir, r.file_number),
                r.offset,
                "a blob reference points into a blob file no live table lists",
            )),
        }
    }
}
