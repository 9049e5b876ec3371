//! Writing a blob file: values (with their keys) appended in the order
//! given, each under its own checksum.

use std::io::Write;

use super::format::{
    BlobFileFooter, BlobFileHeader, RecordHeader, HEADER_LEN, KIND_NONE, KIND_ZSTD,
    MAX_BLOB_KEY_LEN, MAX_BLOB_VALUE_LEN, RECORD_HEADER_LEN,
};
use crate::compression::BlockCompressor;
use crate::error::{Error, Result};
use crate::options::Compression;

/// Where [`BlobFileBuilder::add`] put a value: what a
/// [`BlobRef`](super::BlobRef) to it holds besides the file number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPlace {
    /// The stored value's offset in the file.
    pub offset: u64,
    /// The stored value's length.
    pub size: u32,
}

/// A finished blob file.
#[derive(Debug)]
pub struct BuiltBlobFile<W> {
    /// The writer, after the footer (not synced: the caller syncs).
    pub writer: W,
    /// Records written.
    pub blob_count: u64,
    /// The sum of their stored value lengths.
    pub blob_bytes: u64,
    /// The file's length.
    pub file_size: u64,
}

/// Writes one blob file to `W`. Records go out as they are added; nothing
/// is buffered but the writer's own buffer.
pub struct BlobFileBuilder<W: Write> {
    writer: W,
    compressor: Option<BlockCompressor>,
    offset: u64,
    blob_count: u64,
    blob_bytes: u64,
}

impl<W: Write> BlobFileBuilder<W> {
    /// Starts a blob file of keyspace `keyspace_id`'s values, compressed
    /// with `compression` where that saves at least 12.5% (as table
    /// blocks are), and writes its header.
    pub fn new(mut writer: W, keyspace_id: u32, compression: Compression) -> Result<Self> {
        let (compressor, kind) = match compression {
            Compression::None => (None, KIND_NONE),
            Compression::Zstd { level } => (Some(BlockCompressor::new(level)?), KIND_ZSTD),
        };
        let header = BlobFileHeader {
            keyspace_id,
            compression: kind,
        };
        writer.write_all(&header.encode())?;
        Ok(BlobFileBuilder {
            writer,
            compressor,
            offset: HEADER_LEN as u64,
            blob_count: 0,
            blob_bytes: 0,
        })
    }

    /// Appends `value` under `key`; returns where its stored bytes are.
    /// Keys need not be sorted (a flush adds them in order, which keeps a
    /// scan of the file in key order, but nothing here relies on it).
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> Result<RecordPlace> {
        if key.len() > MAX_BLOB_KEY_LEN || value.len() > MAX_BLOB_VALUE_LEN {
            return Err(Error::InvalidArgument(format!(
                "a blob record of a {}-byte key and a {}-byte value is above the limits ({MAX_BLOB_KEY_LEN}, {MAX_BLOB_VALUE_LEN})",
                key.len(),
                value.len()
            )));
        }
        let compressed = self.compressor.as_mut().and_then(|c| c.compress(value));
        let (kind, stored): (u8, [&[u8]; 2]) = match compressed {
            Some((prefix, frame)) => (KIND_ZSTD, [prefix, frame]),
            None => (KIND_NONE, [value, &[]]),
        };
        let header = RecordHeader::encode(key, &stored, kind);
        let stored_len = stored[0].len() + stored[1].len();
        self.writer.write_all(&header)?;
        self.writer.write_all(key)?;
        self.writer.write_all(stored[0])?;
        self.writer.write_all(stored[1])?;
        let value_offset = self.offset + (RECORD_HEADER_LEN + key.len()) as u64;
        self.offset = value_offset + stored_len as u64;
        self.blob_count += 1;
        self.blob_bytes += stored_len as u64;
        Ok(RecordPlace {
            offset: value_offset,
            // At most MAX_BLOB_VALUE_LEN plus zstd's varint: fits.
            size: u32::try_from(stored_len)
                .map_err(|_| Error::InvalidArgument("a stored blob above 4 GiB".into()))?,
        })
    }

    /// Records added so far.
    pub fn blob_count(&self) -> u64 {
        self.blob_count
    }

    /// Bytes written so far (what the file's size would be without the
    /// footer): for cutting files at `blob_file_size`.
    pub fn file_size(&self) -> u64 {
        self.offset
    }

    /// Writes the footer and returns the writer (flushed, not synced).
    pub fn finish(mut self) -> Result<BuiltBlobFile<W>> {
        let footer = BlobFileFooter {
            blob_count: self.blob_count,
            blob_bytes: self.blob_bytes,
        };
        let bytes = footer.encode();
        self.writer.write_all(&bytes)?;
        self.writer.flush()?;
        Ok(BuiltBlobFile {
            writer: self.writer,
            blob_count: self.blob_count,
            blob_bytes: self.blob_bytes,
            file_size: self.offset + bytes.len() as u64,
        })
    }
}
