//! Arbitrary bytes as a table: open, scan both ways, seek and get keys
//! taken from the input, read every meta block, verify. Nothing may panic,
//! with checksums on (the normal path) or off (the decoders see raw damage).
//!
//! Also the calls sst-dump makes (`tools/sst-dump/`): the footer on its
//! own (identify), properties and filter parameters (--show_properties),
//! every data block read by handle and walked as a block (raw), the order
//! check of a full scan (check), and a rebuild of what was read
//! (recompress), which must reopen with exactly the same entries and
//! range tombstones, its data blocks aligned as format version 5 says
//! (the entries read, small and large mixed, against 256-byte units). A
//! table that opens holds range tombstones that keep every rule of the
//! `strata.range_del` block, so fragmenting them again changes nothing.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use strata_sstable::block::Block;
use strata_sstable::bytes::Bytes;
use strata_sstable::{
    compare_internal_keys, encode_seek_key, parse_internal_key, Footer, FragmentedRangeTombstones,
    Table, TableBuilder, TableIter, TableOptions, TableReadOptions, BLOCK_TRAILER_LEN,
    FORMAT_VERSION_ALIGN_FITTING, MAX_SEQNO, MIN_BLOCK_SIZE,
};

/// Upper bound on steps per scan; a table cannot hold more entries than bytes.
const MAX_STEPS: usize = 1 << 16;

fn touch(it: &TableIter) {
    let p = it.parsed_key();
    assert_eq!(p.user_key.len() + 8, it.key().len());
    assert_eq!(it.value(), &it.value_bytes()[..]);
}

/// sst-dump's raw dump: each data block by its index handle, walked as a block.
fn raw_dump(table: &Table) {
    let _ = table.footer();
    let _ = table.properties().clone();
    if let Ok(Some(f)) = table.filter() {
        let _ = (f.num_lines(), f.num_probes(), f.padding());
    }
    let Ok(entries) = table.index_entries() else {
        return;
    };
    for (_, handle) in entries.iter().take(64) {
        let Ok(contents) = table.read_block(*handle) else {
            continue;
        };
        let Ok(block) = Block::new(contents) else {
            continue;
        };
        let mut it = block.iter();
        let mut r = it.seek_to_first();
        let mut steps = 0;
        while r.is_ok() && it.valid() && steps < MAX_STEPS {
            let _ = parse_internal_key(it.key());
            r = it.next();
            steps += 1;
        }
    }
}

/// sst-dump's recompress: entries read in strictly increasing order build a
/// table again, with the range tombstones read, and that table reads back
/// exactly those entries and tombstones.
fn rebuild(entries: &[(Vec<u8>, Vec<u8>)], tombstones: Option<&FragmentedRangeTombstones>) {
    if (entries.is_empty() && tombstones.is_none())
        || entries
            .windows(2)
            .any(|w| compare_internal_keys(&w[0].0, &w[1].0).is_ge())
    {
        return;
    }
    let options = TableOptions {
        block_size: MIN_BLOCK_SIZE,
        ..TableOptions::default()
    };
    let mut builder = TableBuilder::new(Vec::new(), options).expect("valid options");
    for (key, value) in entries {
        let k = parse_internal_key(key).expect("a scanned key parses");
        builder
            .add(k.user_key, k.seqno, k.kind, value)
            .expect("entries in order rebuild");
    }
    if let Some(t) = tombstones {
        builder
            .add_fragments(t)
            .expect("the tombstones of a table rebuild");
    }
    let built = builder.finish().expect("finish into a Vec");
    let table = Arc::new(
        Table::open(built.writer.into(), TableReadOptions::default())
            .expect("a rebuilt table opens"),
    );
    table.verify().expect("a rebuilt table verifies");
    check_layout(&table);
    let mut it = table.iter();
    it.seek_to_first().expect("rebuilt: first");
    for (key, value) in entries {
        assert!(it.valid(), "rebuilt table ends early");
        assert_eq!((it.key(), it.value()), (key.as_slice(), value.as_slice()));
        it.next().expect("rebuilt: next");
    }
    assert!(!it.valid(), "rebuilt table has more entries");
    assert_eq!(
        table.range_tombstones().map(|t| &**t),
        tombstones,
        "rebuilt table has other range tombstones"
    );
}

/// A table the builder aligned (format version 5): every data block spans
/// as few aligned units as its size needs, padding comes only before a
/// block that would have spanned one more, and none after the last.
fn check_layout(table: &Table) {
    let p = table.properties();
    let a = p.data_block_alignment;
    assert_eq!(
        (p.format_version, a),
        (FORMAT_VERSION_ALIGN_FITTING, MIN_BLOCK_SIZE as u64)
    );
    let mut end = 0;
    for (_, h) in table.index_entries().expect("a rebuilt table's index") {
        let stored = h.size + BLOCK_TRAILER_LEN as u64;
        let needed = stored.div_ceil(a);
        assert_eq!((h.offset % a + stored).div_ceil(a), needed, "{h:?}");
        if h.offset != end {
            assert_eq!(h.offset, end.next_multiple_of(a), "{h:?}");
            assert!((end % a + stored).div_ceil(a) > needed, "{h:?}");
        }
        end = h.end_with_trailer().expect("a block's end");
    }
    assert_eq!(p.data_bytes, end, "padding after the last block");
}

fuzz_target!(|data: &[u8]| {
    let _ = Footer::decode(data);
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
        raw_dump(&table);
        let _ = table.bounds();
        let tombstones = table.range_tombstones().cloned();
        if let Some(t) = &tombstones {
            assert!(!t.is_empty(), "an empty range-del block opened");
            for stack in t.iter().take(64) {
                assert!(!stack.seqnos().is_empty());
                assert!(stack.end().is_none_or(|end| stack.start() < end));
            }
        }

        let mut it = table.iter();
        let mut seen = Vec::new();
        let mut all = Vec::new();
        let mut r = it.seek_to_first();
        let mut steps = 0;
        while r.is_ok() && it.valid() && steps < MAX_STEPS {
            touch(&it);
            if seen.len() < 8 {
                seen.push(it.parsed_key().user_key.to_vec());
            }
            all.push((it.key().to_vec(), it.value().to_vec()));
            r = it.next();
            steps += 1;
        }
        if r.is_ok() && !it.valid() {
            rebuild(&all, tombstones.as_deref());
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
                let covering = table.max_covering_tombstone(key, seqno);
                assert!(covering.is_none_or(|t| t <= seqno));
                if let Some(t) = &tombstones {
                    assert_eq!(t.covering(key, seqno).map(|c| c.seqno), covering);
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
