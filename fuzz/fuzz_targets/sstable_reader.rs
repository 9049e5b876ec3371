//! Arbitrary bytes as a table: open, scan both ways, seek and get keys
//! taken from the input, read every meta block, verify. Nothing may panic,
//! with checksums on (the normal path) or off (the decoders see raw damage).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use strata_sstable::bytes::Bytes;
use strata_sstable::{encode_seek_key, Table, TableIter, TableReadOptions, MAX_SEQNO};

/// Upper bound on steps per scan; a table cannot hold more entries than bytes.
const MAX_STEPS: usize = 1 << 16;

fn touch(it: &TableIter) {
    let p = it.parsed_key();
    assert_eq!(p.user_key.len() + 8, it.key().len());
    assert_eq!(it.value(), &it.value_bytes()[..]);
}

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    for verify_checksums in [true, false] {
        let options = TableReadOptions {
            verify_checksums,
            ..Default::default()
        };
        let Ok(table) = Table::open(bytes.clone(), options) else {
            continue;
        };
        let table = Arc::new(table);
        let _ = table.verify();
        let _ = table.index_entries();
        for (_, handle) in table.meta_index_entries() {
            let _ = table.read_block(*handle);
        }

        let mut it = table.iter();
        let mut seen = Vec::new();
        let mut r = it.seek_to_first();
        let mut steps = 0;
        while r.is_ok() && it.valid() && steps < MAX_STEPS {
            touch(&it);
            if seen.len() < 8 {
                seen.push(it.parsed_key().user_key.to_vec());
            }
            r = it.next();
            steps += 1;
        }
        let mut r = it.seek_to_last();
        steps = 0;
        while r.is_ok() && it.valid() && steps < MAX_STEPS {
            touch(&it);
            r = it.prev();
            steps += 1;
        }

        // Keys from the table itself and slices of the input.
        let mut keys = seen;
        keys.extend(data.chunks(23).take(6).map(<[u8]>::to_vec));
        for key in &keys {
            for seqno in [MAX_SEQNO, 1] {
                if let Ok(Some(found)) = table.get(key, seqno) {
                    assert!(found.seqno <= seqno);
                }
                let mut target = Vec::new();
                encode_seek_key(&mut target, key, seqno);
                if it.seek(&target).is_ok() && it.valid() {
                    touch(&it);
                    let _ = it.prev();
                    let _ = it.next();
                    let _ = it.next();
                }
                if it.seek_for_prev(&target).is_ok() && it.valid() {
                    touch(&it);
                    let _ = it.next();
                    let _ = it.prev();
                }
            }
            // Raw bytes as a target, possibly shorter than a trailer.
            let _ = it.seek(key);
        }
    }
});
