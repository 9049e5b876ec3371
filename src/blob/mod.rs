//! Key-value separation (issue 23, docs/design/blob-files.md): the
//! engine's side of blob files. The format is the sstable crate's
//! (`strata_sstable::blob`, docs/blob-format.md); here are which values go
//! to blob files (`writer.rs`, at flush), how long a blob file lives and
//! how reads find it (`file.rs`), and the read path's view of blob
//! references as the values they point to (`resolving_iter.rs`).

mod file;
mod resolving_iter;
mod writer;

pub(crate) use file::{BlobFile, BlobFileSet};
pub(crate) use resolving_iter::BlobResolvingIter;
pub(crate) use writer::{BlobSettings, BlobWriter};
