//! Key-value separation (issue 23, docs/design/blob-files.md): the
//! engine's side of blob files. The format is the sstable crate's
//! (`strata_sstable::blob`, docs/blob-format.md); here are which values go
//! to blob files (`writer.rs`, at flush), how long a blob file lives and
//! how reads find it (`file.rs`), and how the read path turns a blob
//! reference it returns into the value it points to (`resolver.rs`).

mod file;
mod resolver;
mod writer;

pub(crate) use file::{BlobFile, BlobFileSet};
pub(crate) use resolver::{resolve_in, BlobResolver};
pub(crate) use writer::{BlobSettings, BlobWriter};
