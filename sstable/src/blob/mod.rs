//! Blob files: the values of a key-value-separated keyspace, stored apart
//! from the keys (RocksDB's integrated BlobDB, WiscKey's value log).
//!
//! A table of such a keyspace holds, for a large value, a [`BlobRef`]
//! (file number, offset, size) where the value would be; the value itself
//! is a record of a blob file, written in key order at flush (or by a
//! compaction that relocates live values out of old files). Compaction
//! then moves only keys and references, which is what brings the write
//! amplification of large values down.
//!
//! A blob file is a header, records and a footer; each record holds its
//! key and value under one checksum, so a read verifies the value and that
//! the reference points at the record of the key it was made for. The byte
//! layout is documented in `docs/blob-format.md` and drawn in
//! [`format`]. Nothing here knows about the engine: the engine decides
//! which values go to blob files, names the files and tracks them in its
//! MANIFEST.
//!
//! ```
//! use std::sync::Arc;
//! use strata_sstable::blob::{BlobFileBuilder, BlobFileReader, BlobRef};
//! use strata_sstable::Compression;
//!
//! let mut builder = BlobFileBuilder::new(Vec::new(), 7, Compression::None)?;
//! let at = builder.add(b"apple", &[b'r'; 5000])?;
//! let built = builder.finish()?;
//! assert_eq!(built.blob_count, 1);
//!
//! let reference = BlobRef { file_number: 12, offset: at.offset, size: at.size };
//! let bytes = strata_sstable::bytes::Bytes::from(built.writer);
//! let reader = BlobFileReader::open(Arc::new(bytes), 12)?;
//! assert_eq!(reader.keyspace_id(), 7);
//! assert_eq!(reader.get(&reference, b"apple")?.len(), 5000);
//! // A reference used for another key is refused, not answered.
//! assert!(reader.get(&reference, b"pear").unwrap_err().is_corruption());
//! # Ok::<(), strata_sstable::Error>(())
//! ```

mod blob_ref;
mod builder;
pub mod format;
mod reader;

pub use blob_ref::BlobRef;
pub use builder::{BlobFileBuilder, BuiltBlobFile, RecordPlace};
pub use reader::{BlobFileReader, BlobRecord, BlobRecordIter};
