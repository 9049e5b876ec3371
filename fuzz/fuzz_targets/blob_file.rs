//! Arbitrary bytes as a blob file: open, scan every record, read each
//! scanned record back by its reference, and read a reference taken from
//! the input. Nothing may panic; a record the scan returned must read back
//! as the same value by reference (one checksum covers both paths).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use strata_sstable::blob::{BlobFileReader, BlobRef};
use strata_sstable::bytes::Bytes;

/// Upper bound on records per scan; a record is at least 13 bytes.
const MAX_RECORDS: usize = 1 << 14;

fuzz_target!(|data: &[u8]| {
    // The first bytes, when they decode as a reference, are one more read.
    let (probe, file) = match data.split_first() {
        Some((&n, rest)) if (n as usize) <= rest.len() => {
            (BlobRef::decode(&rest[..n as usize]), &rest[n as usize..])
        }
        _ => (None, data),
    };
    let bytes = Bytes::copy_from_slice(file);
    let Ok(reader) = BlobFileReader::open(Arc::new(bytes), 1) else {
        return;
    };
    let _ = (
        reader.keyspace_id(),
        reader.compression(),
        reader.blob_count(),
        reader.blob_bytes(),
    );
    for record in reader.iter().take(MAX_RECORDS) {
        let Ok(record) = record else { break };
        let reference = BlobRef {
            file_number: 1,
            offset: record.offset,
            size: record.size,
        };
        let again = reader
            .get(&reference, &record.key)
            .expect("a scanned record reads back");
        assert_eq!(again, record.value);
    }
    if let Some(r) = probe {
        let _ = reader.get(&r, b"key");
        let _ = reader.get(
            &BlobRef {
                file_number: 1,
                ..r
            },
            b"",
        );
    }
});
