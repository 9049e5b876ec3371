//! Arbitrary bytes as one block: parse the restart array, walk both ways,
//! seek in internal-key and bytewise order, step around the landing point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_sstable::block::{Block, BlockIter};
use strata_sstable::bytes::Bytes;

const MAX_STEPS: usize = 1 << 16;

fn touch(it: &BlockIter) {
    let _ = it.key();
    assert_eq!(it.value(), &it.value_bytes()[..]);
}

fuzz_target!(|data: &[u8]| {
    let Ok(block) = Block::new(Bytes::copy_from_slice(data)) else {
        return;
    };
    let mut it = block.iter();
    let mut keys = Vec::new();
    let mut r = it.seek_to_first();
    let mut steps = 0;
    while r.is_ok() && it.valid() && steps < MAX_STEPS {
        touch(&it);
        if keys.len() < 6 {
            keys.push(it.key().to_vec());
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
    keys.extend(data.chunks(13).take(4).map(<[u8]>::to_vec));
    for key in &keys {
        if it.seek(key).is_ok() && it.valid() {
            touch(&it);
            let _ = it.prev();
            let _ = it.next();
        }
        if it.seek_by(|k| k.cmp(key)).is_ok() && it.valid() {
            touch(&it);
            let _ = it.next();
            let _ = it.prev();
        }
    }
});
