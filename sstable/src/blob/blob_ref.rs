//! A reference to a value in a blob file, stored in a table in place of
//! the value (RocksDB: `BlobIndex`).

use crate::coding::{get_varint32, get_varint64, put_varint32, put_varint64};

/// Where a separated value lives: a record's stored value in blob file
/// `file_number`, `size` bytes at `offset`.
///
/// Encoded as three varints (file number, offset, size): 3 to 25 bytes in
/// place of a value of kilobytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobRef {
    /// The blob file's number (the engine's file numbering).
    pub file_number: u64,
    /// The byte offset of the record's stored value in the file.
    pub offset: u64,
    /// The stored value's length in bytes (compressed, if it is).
    pub size: u32,
}

impl BlobRef {
    /// Appends the encoding to `out`.
    pub fn encode_to(&self, out: &mut Vec<u8>) {
        put_varint64(out, self.file_number);
        put_varint64(out, self.offset);
        put_varint32(out, self.size);
    }

    /// The encoding as a new vector.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        self.encode_to(&mut out);
        out
    }

    /// The reference `bytes` hold (all of them), or `None` if they are not
    /// exactly one encoded reference.
    pub fn decode(bytes: &[u8]) -> Option<BlobRef> {
        let (file_number, a) = get_varint64(bytes)?;
        let (offset, b) = get_varint64(bytes.get(a..)?)?;
        let (size, c) = get_varint32(bytes.get(a + b..)?)?;
        (a + b + c == bytes.len()).then_some(BlobRef {
            file_number,
            offset,
            size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_reference_round_trips(file_number: u64, offset: u64, size: u32) {
            let r = BlobRef { file_number, offset, size };
            prop_assert_eq!(BlobRef::decode(&r.encode()), Some(r));
        }

        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            // Varints may be spelled long; what decodes must re-decode the same.
            if let Some(r) = BlobRef::decode(&bytes) {
                prop_assert_eq!(BlobRef::decode(&r.encode()), Some(r));
            }
        }
    }

    #[test]
    fn trailing_or_missing_bytes_are_refused() {
        let mut bytes = BlobRef {
            file_number: 1,
            offset: 2,
            size: 3,
        }
        .encode();
        assert!(BlobRef::decode(&bytes[..2]).is_none());
        bytes.push(0);
        assert!(BlobRef::decode(&bytes).is_none());
    }
}
