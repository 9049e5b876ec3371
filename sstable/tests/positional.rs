//! Tables read with positional reads (a `BlockSource` that is not in
//! memory): what each read costs in reads from the source, what enters the
//! cache and with which priority, readahead for scans, and errors.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use strata_sstable::*;

/// 20,000 keys of 16 bytes with 100-byte values: about 550 blocks of 4 KiB.
fn entries() -> Vec<Entry> {
    (0..20_000u32)
        .map(|i| Entry {
            user_key: format!("key{i:013}").into_bytes(),
            seqno: 1,
            kind: ValueKind::Put,
            value: vec![(i % 251) as u8; 100],
        })
        .collect()
}

fn table_bytes() -> (Vec<Entry>, Bytes, TableProperties) {
    let entries = entries();
    let (bytes, props) = build(&entries, TableOptions::default());
    (entries, bytes, props)
}

fn open_positional(bytes: &Bytes, options: TableReadOptions) -> (Arc<Positional>, Arc<Table>) {
    let source = Positional::new(bytes.clone());
    let table = Table::open_source(source.clone(), options).unwrap();
    (source, Arc::new(table))
}

fn largest_block(table: &Table) -> u64 {
    let entries = table.index_entries().unwrap();
    entries.iter().map(|(_, h)| h.size).max().unwrap() + BLOCK_TRAILER_LEN as u64
}

#[test]
fn a_point_lookup_reads_one_data_block_and_a_cached_one_reads_nothing() {
    let (entries, bytes, _) = table_bytes();
    let cache = Arc::new(RecordingCache::default());
    let (source, table) = open_positional(
        &bytes,
        TableReadOptions {
            cache: Some(cache.clone()),
            ..Default::default()
        },
    );
    let block = largest_block(&table);
    // Opening read the footer, meta blocks, filter and index, not the data.
    assert!(source.bytes_read() < bytes.len() as u64 / 10);
    for e in entries.iter().step_by(997) {
        let before = source.bytes_read();
        let found = table.get(&e.user_key, 5).unwrap().unwrap();
        assert_eq!(found.value, e.value);
        let read = source.bytes_read() - before;
        assert!(
            read <= block,
            "a lookup read {read} bytes, a block is {block}"
        );
        // The block is cached now: the same lookup reads nothing.
        let before = source.bytes_read();
        table.get(&e.user_key, 5).unwrap().unwrap();
        assert_eq!(source.bytes_read(), before);
    }
    // A key the filter rules out reads nothing at all (almost always).
    let before = source.reads.load(Ordering::Relaxed);
    for i in 0..1000u32 {
        assert!(table
            .get(format!("absent{i}").as_bytes(), 5)
            .unwrap()
            .is_none());
    }
    assert!(source.reads.load(Ordering::Relaxed) - before < 50);
    // Data blocks entered with low priority; the index and filter are
    // held by the table, not cached.
    let (data, index, filter, pinned) = cache.census();
    assert!(data >= 15);
    assert_eq!((index, filter, pinned), (0, 0, 0));
    let entries = cache.entries.lock().unwrap();
    assert!(entries
        .values()
        .all(|(_, p)| *p == Some(CachePriority::Low)));
}

#[test]
fn index_and_filter_in_the_cache_have_high_priority_and_come_back_after_eviction() {
    let (entries, bytes, _) = table_bytes();
    let cache = Arc::new(RecordingCache::default());
    let (source, table) = open_positional(
        &bytes,
        TableReadOptions {
            cache: Some(cache.clone()),
            cache_index_and_filter_blocks: true,
            ..Default::default()
        },
    );
    let index_key = CacheKey {
        table_id: 0,
        offset: table.footer().index.offset,
    };
    {
        let cached = cache.entries.lock().unwrap();
        let (block, priority) = cached.get(&index_key).unwrap();
        assert!(matches!(block, CachedBlock::Index(_)));
        assert_eq!(*priority, Some(CachePriority::High));
    }
    assert_eq!(cache.census(), (0, 1, 1, 0));
    let e = &entries[12_345];
    table.get(&e.user_key, 5).unwrap().unwrap();
    // Everything evicted: the lookup reads the filter, index and block
    // again, and caches them again.
    cache.evict_all();
    let before = source.reads.load(Ordering::Relaxed);
    assert_eq!(table.get(&e.user_key, 5).unwrap().unwrap().value, e.value);
    assert_eq!(source.reads.load(Ordering::Relaxed) - before, 3);
    assert_eq!(cache.census(), (1, 1, 1, 0));
    // An iterator reads the index through the cache too.
    cache.evict_all();
    assert_eq!(scan_forward(&table), entries);
}

#[test]
fn pinned_index_and_filter_are_charged_until_the_table_is_dropped() {
    let (entries, bytes, _) = table_bytes();
    let cache = Arc::new(RecordingCache::default());
    let (source, table) = open_positional(
        &bytes,
        TableReadOptions {
            cache: Some(cache.clone()),
            cache_index_and_filter_blocks: true,
            pin_index_and_filter: true,
            ..Default::default()
        },
    );
    assert_eq!(cache.census(), (0, 1, 1, 2));
    // An eviction of everything evictable leaves them, and lookups need
    // no read of them.
    cache.evict_all();
    let before = source.reads.load(Ordering::Relaxed);
    table.get(&entries[7].user_key, 5).unwrap().unwrap();
    assert_eq!(source.reads.load(Ordering::Relaxed) - before, 1);
    drop(table);
    assert_eq!(cache.census().3, 0, "pinned entries outlived their table");
}

#[test]
fn scans_read_ahead_both_ways_and_point_reads_do_not() {
    let (entries, bytes, props) = table_bytes();
    let (source, table) = open_positional(&bytes, TableReadOptions::default());
    let blocks = props.num_data_blocks;
    let before = source.reads.load(Ordering::Relaxed);
    assert_eq!(scan_forward(&table), entries);
    let forward_reads = source.reads.load(Ordering::Relaxed) - before;
    // Windows grow to 256 KiB: a few dozen reads for 550 blocks.
    assert!(
        forward_reads * 10 < blocks,
        "{forward_reads} reads for {blocks} blocks"
    );

    let before = source.reads.load(Ordering::Relaxed);
    let mut it = table.iter();
    it.seek_to_last().unwrap();
    let mut n = 0;
    while it.valid() {
        n += 1;
        it.prev().unwrap();
    }
    assert_eq!(n, entries.len());
    let backward_reads = source.reads.load(Ordering::Relaxed) - before;
    assert!(
        backward_reads * 10 < blocks,
        "{backward_reads} reads for {blocks} blocks"
    );

    // Seeks to scattered keys, one next each: one block read per seek.
    let before = source.bytes_read();
    let mut it = table.iter();
    let block = largest_block(&table);
    for e in entries.iter().step_by(1999) {
        it.seek(&e.ikey()).unwrap();
        it.next().unwrap();
    }
    let seeks = entries.len().div_ceil(1999) as u64;
    assert!(source.bytes_read() - before <= seeks * 2 * block);
}

#[test]
fn a_fixed_readahead_reads_the_table_in_windows_and_never_fills_the_cache() {
    let (entries, bytes, _) = table_bytes();
    let cache = Arc::new(RecordingCache::default());
    let (source, table) = open_positional(
        &bytes,
        TableReadOptions {
            cache: Some(cache.clone()),
            ..Default::default()
        },
    );
    let reads = BlockReadOptions {
        fill_cache: false,
        readahead_bytes: 1 << 20,
        ..Default::default()
    };
    let before = source.reads.load(Ordering::Relaxed);
    let mut it = table.iter_with_options(reads);
    it.seek_to_first().unwrap();
    let mut n = 0;
    while it.valid() {
        n += 1;
        it.next().unwrap();
    }
    assert_eq!(n, entries.len());
    let windows = source.reads.load(Ordering::Relaxed) - before;
    assert_eq!(windows, table.properties().data_bytes.div_ceil(1 << 20));
    assert_eq!(cache.census(), (0, 0, 0, 0));
    // Even with fill_cache, blocks read through a window are served from
    // it and not cached: a long scan would only churn the cache.
    let mut it = table.iter_with_options(BlockReadOptions {
        fill_cache: true,
        ..reads
    });
    it.seek_to_first().unwrap();
    while it.valid() {
        it.next().unwrap();
    }
    drop(it);
    assert_eq!(cache.census(), (0, 0, 0, 0));
    // Blocks read one at a time are cached, each in memory of no more
    // pages than its contents need (an aligned block keeps the buffer it
    // was read into with its trailer: both fit one page).
    for e in entries.iter().step_by(1000) {
        table.get(&e.user_key, 5).unwrap().unwrap();
    }
    let cached = std::mem::take(&mut *cache.entries.lock().unwrap());
    assert_eq!(cached.len(), entries.len().div_ceil(1000));
    for (_, (block, _)) in cached {
        let CachedBlock::Data(data) = block else {
            panic!("not a data block")
        };
        let len = data.data().len();
        assert_eq!(
            data.buffer_bytes().div_ceil(4096),
            len.div_ceil(4096),
            "a cached block holds more pages than its contents"
        );
    }
}

#[test]
fn a_cached_block_holds_no_more_pages_than_its_contents() {
    // Values of varied sizes, so blocks end anywhere near their size: in
    // an unaligned table some end within a trailer of a page boundary,
    // and read with their trailer would take a page more than they need.
    let entries: Vec<Entry> = (0..20_000u32)
        .map(|i| Entry {
            user_key: format!("key{i:013}").into_bytes(),
            seqno: 1,
            kind: ValueKind::Put,
            value: vec![(i % 251) as u8; (i as usize * 37) % 300],
        })
        .collect();
    for block_align in [false, true] {
        // Unaligned blocks cut a little past 4 KiB end on both sides of a
        // page boundary.
        let options = TableOptions {
            block_align,
            block_size: if block_align { 4096 } else { 4128 },
            ..TableOptions::default()
        };
        let (bytes, _) = build(&entries, options);
        let cache = Arc::new(RecordingCache::default());
        let (_source, table) = open_positional(
            &bytes,
            TableReadOptions {
                cache: Some(cache.clone()),
                ..Default::default()
            },
        );
        for e in entries.iter().step_by(10) {
            table.get(&e.user_key, 5).unwrap().unwrap();
        }
        let cached = std::mem::take(&mut *cache.entries.lock().unwrap());
        let mut spilled = 0;
        for (_, (block, _)) in cached {
            let CachedBlock::Data(data) = block else {
                panic!("not a data block")
            };
            let len = data.data().len();
            spilled += usize::from((len + BLOCK_TRAILER_LEN).div_ceil(4096) > len.div_ceil(4096));
            assert_eq!(
                data.buffer_bytes().div_ceil(4096),
                len.div_ceil(4096),
                "block_align {block_align}: a cached block of {len} bytes holds more pages"
            );
        }
        if !block_align {
            assert!(
                spilled > 0,
                "no block near a page boundary: the test checks nothing"
            );
        }
    }
}

#[test]
fn a_damaged_block_read_from_the_source_is_corruption_at_its_offset() {
    let (entries, bytes, _) = table_bytes();
    let intact = open(bytes.clone());
    let (_, handle) = intact.index_entries().unwrap()[100];
    let mut damaged = bytes.to_vec();
    damaged[handle.offset as usize + 10] ^= 0x40;
    let cache = Arc::new(RecordingCache::default());
    let (_, table) = open_positional(
        &Bytes::from(damaged),
        TableReadOptions {
            cache: Some(cache.clone()),
            ..Default::default()
        },
    );
    let in_block = entries
        .iter()
        .find(|e| {
            let found = intact.index_entries().unwrap();
            let key = e.ikey();
            let i = found.partition_point(|(sep, _)| compare_internal_keys(sep, &key).is_lt());
            i == 100
        })
        .unwrap();
    for _ in 0..2 {
        match table.get(&in_block.user_key, 5) {
            Err(Error::Corruption { offset, reason }) => {
                assert_eq!(offset, handle.offset);
                assert!(reason.contains("checksum"), "{reason}");
            }
            other => panic!("damaged block read as {other:?}"),
        }
    }
    // It never entered the cache, even for a read that does not check.
    let unchecked = BlockReadOptions {
        verify_checksums: false,
        ..Default::default()
    };
    let _ = table.get_with_options(&in_block.user_key, 5, unchecked);
    assert_eq!(cache.census().0, 0);
}

/// A source whose reads fail on demand.
struct Failing {
    file: Bytes,
    fail: AtomicBool,
}

impl BlockSource for Failing {
    fn size(&self) -> u64 {
        self.file.len() as u64
    }
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        if self.fail.load(Ordering::Relaxed) {
            return Err(io::Error::other("injected read error"));
        }
        Ok(Bytes::copy_from_slice(&self.file.read_at(offset, len)?))
    }
}

#[test]
fn a_failed_read_is_an_io_error_naming_the_block_and_a_later_read_succeeds() {
    let (entries, bytes, _) = table_bytes();
    let source = Arc::new(Failing {
        file: bytes,
        fail: AtomicBool::new(false),
    });
    let table = Arc::new(Table::open_source(source.clone(), TableReadOptions::default()).unwrap());
    let e = &entries[4321];
    source.fail.store(true, Ordering::Relaxed);
    match table.get(&e.user_key, 5) {
        Err(Error::Io(err)) => {
            let text = err.to_string();
            assert!(text.contains("data block at offset"), "{text}");
            assert!(text.contains("injected read error"), "{text}");
        }
        other => panic!("failed read gave {other:?}"),
    }
    let mut it = table.iter();
    assert!(matches!(it.seek(&e.ikey()), Err(Error::Io(_))));
    assert!(!it.valid());
    source.fail.store(false, Ordering::Relaxed);
    assert_eq!(table.get(&e.user_key, 5).unwrap().unwrap().value, e.value);
    it.seek(&e.ikey()).unwrap();
    assert_eq!(it.value(), &e.value[..]);
}

#[test]
fn a_file_shorter_than_its_structure_is_corruption_not_a_panic() {
    let (entries, bytes, _) = table_bytes();
    let source = Arc::new(Failing {
        file: bytes.clone(),
        fail: AtomicBool::new(false),
    });
    let table = Table::open_source(source, TableReadOptions::default()).unwrap();
    // The same table over a source that lost its data region's second half
    // (as a file truncated after open would read).
    let (_, handle) = table.index_entries().unwrap()[300];
    struct Short(Bytes, u64);
    impl BlockSource for Short {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
            if offset + len as u64 > self.1 && offset < self.1 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.0
                .read_at(offset, len)
                .map(|b| Bytes::copy_from_slice(&b))
        }
    }
    let short = Table::open_source(
        Arc::new(Short(bytes, handle.offset + 100)),
        TableReadOptions::default(),
    )
    .unwrap();
    let e = entries
        .iter()
        .find(|e| {
            table.index_entries().unwrap()[300].0 >= e.ikey()
                && table.index_entries().unwrap()[299].0 < e.ikey()
        })
        .unwrap();
    match short.get(&e.user_key, 5) {
        Err(Error::Corruption { offset, reason }) => {
            assert_eq!(offset, handle.offset);
            assert!(reason.contains("past the end"), "{reason}");
        }
        other => panic!("short read gave {other:?}"),
    }
}

/// A source that says whether "the page cache" holds what is read: all
/// of the file or none of it, as `cached` says.
struct PageCached {
    inner: Arc<Positional>,
    cached: AtomicBool,
}

impl BlockSource for PageCached {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        self.inner.read_at(offset, len)
    }
    fn read_into_if_cached(&self, offset: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<bool> {
        match self.cached.load(Ordering::Relaxed) {
            true => self.inner.read_into(offset, len, buf).map(|()| true),
            false => Ok(false),
        }
    }
}

#[test]
fn data_blocks_stay_out_of_the_block_cache_while_reads_go_to_storage() {
    let (entries, bytes, _) = table_bytes();
    let cache = Arc::new(RecordingCache::default());
    let gauge = Arc::new(PageCacheGauge::new());
    let source = Arc::new(PageCached {
        inner: Positional::new(bytes.clone()),
        cached: AtomicBool::new(false),
    });
    let options = TableReadOptions {
        cache: Some(cache.clone()),
        page_cache_gauge: Some(gauge.clone()),
        ..Default::default()
    };
    let table = Table::open_source(source.clone(), options).unwrap();
    // Reads every block once per round, from an emptied cache, and says
    // how many data blocks the last round left in the cache.
    let rounds = |n: usize| {
        let mut cached = 0;
        for _ in 0..n {
            cache.evict_all();
            for e in entries.iter().step_by(30) {
                assert_eq!(table.get(&e.user_key, 5).unwrap().unwrap().value, e.value);
            }
            cached = cache.census().0;
        }
        cached
    };
    // Memory starts not short: blocks enter the cache.
    assert!(!gauge.is_short());
    assert!(rounds(1) > 400);
    // Every probe finds the block missing from the page cache: once the
    // gauge has seen a window of them, blocks stop entering the cache.
    rounds(30);
    assert!(gauge.is_short());
    assert_eq!(rounds(1), 0);
    // The page cache holds the file again: blocks enter the cache again.
    source.cached.store(true, Ordering::Relaxed);
    rounds(30);
    assert!(!gauge.is_short());
    assert!(rounds(1) > 400);

    // Without a gauge, reads from storage fill the cache as always.
    let plain = Table::open_source(
        source.clone(),
        TableReadOptions {
            cache: Some(cache.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    source.cached.store(false, Ordering::Relaxed);
    cache.evict_all();
    for e in entries.iter().step_by(30) {
        plain.get(&e.user_key, 5).unwrap().unwrap();
    }
    assert!(cache.census().0 > 400);
}
