//! Reading a blob file: one value by its reference, or every record in
//! turn (verification, `sst-dump`, and garbage collection's relocation).

use std::sync::Arc;

use bytes::Bytes;

use super::format::{
    record_crc, BlobFileFooter, BlobFileHeader, RecordHeader, FOOTER_LEN, HEADER_LEN, KIND_NONE,
    KIND_ZSTD, RECORD_HEADER_LEN,
};
use super::BlobRef;
use crate::compression::decompress_zstd;
use crate::error::{Error, Result};
use crate::source::BlockSource;

/// An open blob file: its header and footer checked, records read on
/// demand through the source (a `pread` each for the engine's files).
pub struct BlobFileReader {
    source: Arc<dyn BlockSource>,
    file_number: u64,
    header: BlobFileHeader,
    footer: BlobFileFooter,
    /// Where the footer starts: records end here.
    records_end: u64,
}

impl std::fmt::Debug for BlobFileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobFileReader")
            .field("file_number", &self.file_number)
            .field("header", &self.header)
            .field("footer", &self.footer)
            .finish()
    }
}

/// One record, as a scan finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    /// The key it was written under.
    pub key: Bytes,
    /// The value, decompressed.
    pub value: Bytes,
    /// Where its stored value is: a [`BlobRef`] to it holds these.
    pub offset: u64,
    /// Its stored value's length.
    pub size: u32,
}

impl BlobFileReader {
    /// Opens blob file `file_number` read from `source`: reads and checks
    /// the header and the footer (a file without its footer was cut short
    /// while written, and is corruption).
    pub fn open(source: Arc<dyn BlockSource>, file_number: u64) -> Result<BlobFileReader> {
        let size = source.size();
        if size < (HEADER_LEN + FOOTER_LEN) as u64 {
            return Err(Error::corruption(
                0,
                format!("a blob file of {size} bytes is shorter than a header and a footer"),
            ));
        }
        let head = source
            .read_at(0, HEADER_LEN)
            .map_err(|e| read_error(0, e))?;
        let header = BlobFileHeader::decode(&head).map_err(|r| Error::corruption(0, r))?;
        let records_end = size - FOOTER_LEN as u64;
        let tail = source
            .read_at(records_end, FOOTER_LEN)
            .map_err(|e| read_error(records_end, e))?;
        let footer =
            BlobFileFooter::decode(&tail).map_err(|r| Error::corruption(records_end, r))?;
        Ok(BlobFileReader {
            source,
            file_number,
            header,
            footer,
            records_end,
        })
    }

    /// The keyspace whose values the file holds.
    pub fn keyspace_id(&self) -> u32 {
        self.header.keyspace_id
    }

    /// The compression the file was written with ([`KIND_NONE`] or
    /// [`KIND_ZSTD`]).
    pub fn compression(&self) -> u8 {
        self.header.compression
    }

    /// The file's length in bytes (its footer ends it).
    pub fn file_size(&self) -> u64 {
        self.records_end + FOOTER_LEN as u64
    }

    /// Records in the file, from its footer.
    pub fn blob_count(&self) -> u64 {
        self.footer.blob_count
    }

    /// The sum of the records' stored value lengths, from its footer.
    pub fn blob_bytes(&self) -> u64 {
        self.footer.blob_bytes
    }

    /// The value `reference` points at, which must be the record of
    /// `key`: the whole record is read and its checksum and key checked,
    /// so a reference into the wrong place is corruption, never another
    /// key's value.
    pub fn get(&self, reference: &BlobRef, key: &[u8]) -> Result<Bytes> {
        if reference.file_number != self.file_number {
            return Err(Error::InvalidArgument(format!(
                "a reference into blob file {} asked of file {}",
                reference.file_number, self.file_number
            )));
        }
        let before = (RECORD_HEADER_LEN + key.len()) as u64;
        let start = reference
            .offset
            .checked_sub(before)
            .filter(|&s| s >= HEADER_LEN as u64);
        let end = reference.offset.checked_add(u64::from(reference.size));
        let (Some(start), Some(end)) = (start, end) else {
            return Err(Error::corruption(
                reference.offset,
                "a blob reference outside the file's records",
            ));
        };
        if end > self.records_end {
            return Err(Error::corruption(
                reference.offset,
                format!(
                    "a blob reference past the records' end at {}",
                    self.records_end
                ),
            ));
        }
        // Bounded by the file's size, checked above.
        let len = (end - start) as usize;
        let record = self
            .source
            .read_at(start, len)
            .map_err(|e| read_error(start, e))?;
        let header = RecordHeader::decode(&record)
            .ok_or_else(|| Error::corruption(start, "a blob record cut short"))?;
        if header.key_len as usize != key.len() || header.stored_len != reference.size {
            return Err(Error::corruption(
                start,
                "the blob record's lengths differ from its reference's",
            ));
        }
        let (fixed, rest) = record.split_at(RECORD_HEADER_LEN);
        let (stored_key, stored) = rest.split_at(key.len());
        if record_crc(&fixed[..9], stored_key, &[stored]) != header.crc {
            return Err(Error::corruption(start, "blob record checksum mismatch"));
        }
        if stored_key != key {
            return Err(Error::corruption(
                start,
                "the blob record belongs to another key than its reference's",
            ));
        }
        let value_at = RECORD_HEADER_LEN + key.len();
        decode_value(header.kind, record.slice(value_at..), reference.offset)
    }

    /// Every record in file order, each verified; the scan ends with a
    /// check of the count and bytes against the footer.
    pub fn iter(&self) -> BlobRecordIter<'_> {
        BlobRecordIter {
            reader: self,
            at: HEADER_LEN as u64,
            seen: 0,
            seen_bytes: 0,
            done: false,
        }
    }
}

/// The records of a blob file in turn ([`BlobFileReader::iter`]).
pub struct BlobRecordIter<'a> {
    reader: &'a BlobFileReader,
    at: u64,
    seen: u64,
    seen_bytes: u64,
    done: bool,
}

impl BlobRecordIter<'_> {
    fn read_record(&mut self) -> Result<Option<BlobRecord>> {
        let r = self.reader;
        if self.at == r.records_end {
            if self.seen != r.footer.blob_count || self.seen_bytes != r.footer.blob_bytes {
                return Err(Error::corruption(
                    r.records_end,
                    format!(
                        "the footer counts {} records of {} bytes, the file holds {} of {}",
                        r.footer.blob_count, r.footer.blob_bytes, self.seen, self.seen_bytes
                    ),
                ));
            }
            return Ok(None);
        }
        let start = self.at;
        let left = r.records_end - start;
        if left < RECORD_HEADER_LEN as u64 {
            return Err(Error::corruption(start, "a blob record header cut short"));
        }
        let fixed = r
            .source
            .read_at(start, RECORD_HEADER_LEN)
            .map_err(|e| read_error(start, e))?;
        let header = RecordHeader::decode(&fixed)
            .ok_or_else(|| Error::corruption(start, "a blob record header cut short"))?;
        let body = u64::from(header.key_len) + u64::from(header.stored_len);
        if body > left - RECORD_HEADER_LEN as u64 {
            return Err(Error::corruption(
                start,
                "a blob record longer than what is left of the file",
            ));
        }
        // Bounded by the file's size, checked above.
        let body_at = start + RECORD_HEADER_LEN as u64;
        let bytes = r
            .source
            .read_at(body_at, body as usize)
            .map_err(|e| read_error(body_at, e))?;
        let key_len = header.key_len as usize;
        let stored = bytes.slice(key_len..);
        if record_crc(&fixed[..9], &bytes[..key_len], &[&stored]) != header.crc {
            return Err(Error::corruption(start, "blob record checksum mismatch"));
        }
        let offset = body_at + key_len as u64;
        let value = decode_value(header.kind, stored, offset)?;
        self.at = offset + u64::from(header.stored_len);
        self.seen += 1;
        self.seen_bytes += u64::from(header.stored_len);
        Ok(Some(BlobRecord {
            key: bytes.slice(..key_len),
            value,
            offset,
            size: header.stored_len,
        }))
    }
}

impl Iterator for BlobRecordIter<'_> {
    type Item = Result<BlobRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.read_record().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// A stored value as the user's value.
fn decode_value(kind: u8, stored: Bytes, offset: u64) -> Result<Bytes> {
    match kind {
        KIND_NONE => Ok(stored),
        KIND_ZSTD => decompress_zstd(&stored, offset, None).map(Bytes::from),
        other => Err(Error::corruption(
            offset,
            format!("unknown blob value kind {other}"),
        )),
    }
}

fn read_error(offset: u64, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        Error::corruption(offset, "blob file shorter than at open")
    } else {
        Error::Io(e)
    }
}
