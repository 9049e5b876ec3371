//! A key with many versions costs an iterator a bounded number of moves
//! (`max_sequential_skip_in_iterations`), forward, in reverse, across
//! direction switches and under a read older than most versions. The
//! correctness of the seeks against a model, with every kind of entry and
//! range tombstones, is `range_del_model_tests::db_iter_over_the_skip_
//! matches_the_model`, run with small skip limits.

#![allow(clippy::unwrap_used)]

use super::vec_iter::{MoveCounts, VecIter};
use super::{DbIter, InternalIterator, MergingIter, RangeDelSkipper};
use std::sync::Arc;
use strata_sstable::{encode_internal_key, SeqNo, ValueKind};

/// Versions of the hot key.
const VERSIONS: u64 = 10_000;
/// `max_sequential_skip_in_iterations` in these tests.
const MAX_SKIP: usize = 8;
/// What one movement of the user iterator may cost the inner one here:
/// the skip limit's steps, a few seeks and steps around them. Without the
/// limit a movement across the hot key costs `VERSIONS` steps.
const MOVES_PER_USER_MOVE: usize = 3 * MAX_SKIP + 8;

fn entry(key: &[u8], seqno: SeqNo, kind: ValueKind) -> (Vec<u8>, Vec<u8>) {
    let mut ikey = Vec::new();
    encode_internal_key(&mut ikey, key, seqno, kind);
    (
        ikey,
        format!("{}@{seqno}", String::from_utf8_lossy(key)).into_bytes(),
    )
}

/// Keys `a` to `e` written once (seqnos 1-5), then `c` written `VERSIONS`
/// times (seqnos 6 on). With `delete_newest`, the newest version of `c`
/// is a delete.
fn hot_key_entries(delete_newest: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut entries: Vec<_> = (0u8..5)
        .map(|i| entry(&[b'a' + i], SeqNo::from(i) + 1, ValueKind::Put))
        .collect();
    for v in 0..VERSIONS {
        let kind = if delete_newest && v == VERSIONS - 1 {
            ValueKind::Delete
        } else {
            ValueKind::Put
        };
        entries.push(entry(b"c", 6 + v, kind));
    }
    entries
}

/// A user iterator over `entries` read at `read_seq`, and the inner
/// iterator's move counts.
fn iter_at(entries: Vec<(Vec<u8>, Vec<u8>)>, read_seq: SeqNo) -> (DbIter, Arc<MoveCounts>) {
    let inner = VecIter::new(entries);
    let counts = inner.counts();
    let mut skipper = RangeDelSkipper::new(read_seq);
    skipper.push(None);
    let children: Vec<Box<dyn InternalIterator>> = vec![Box::new(inner)];
    let it = DbIter::new(
        MergingIter::with_range_dels(children, skipper),
        read_seq,
        None,
        None,
    )
    .with_max_skip(MAX_SKIP);
    (it, counts)
}

fn moves(counts: &MoveCounts) -> usize {
    counts.seeks() + counts.steps()
}

fn current(it: &DbIter) -> Option<(String, String)> {
    it.valid().then(|| {
        (
            String::from_utf8_lossy(it.key()).into_owned(),
            String::from_utf8_lossy(it.value()).into_owned(),
        )
    })
}

fn kv(key: &str, seqno: SeqNo) -> Option<(String, String)> {
    Some((key.to_string(), format!("{key}@{seqno}")))
}

const NEWEST: SeqNo = 5 + VERSIONS;

#[test]
fn a_forward_scan_passes_a_hot_keys_versions_with_a_seek() {
    let (mut it, counts) = iter_at(hot_key_entries(false), NEWEST);
    it.seek(b"b").unwrap();
    let mut got = vec![current(&it)];
    for _ in 0..3 {
        it.next().unwrap();
        got.push(current(&it));
    }
    assert_eq!(
        got,
        vec![kv("b", 2), kv("c", NEWEST), kv("d", 4), kv("e", 5)]
    );
    assert!(
        moves(&counts) <= 4 * MOVES_PER_USER_MOVE,
        "{} inner moves for 4 keys",
        moves(&counts)
    );
}

#[test]
fn a_reverse_scan_finds_a_hot_keys_newest_version_with_a_seek() {
    let (mut it, counts) = iter_at(hot_key_entries(false), NEWEST);
    it.seek_for_prev(b"d").unwrap();
    let mut got = vec![current(&it)];
    for _ in 0..3 {
        it.prev().unwrap();
        got.push(current(&it));
    }
    assert_eq!(
        got,
        vec![kv("d", 4), kv("c", NEWEST), kv("b", 2), kv("a", 1)]
    );
    assert!(
        moves(&counts) <= 4 * MOVES_PER_USER_MOVE,
        "{} inner moves for 4 keys",
        moves(&counts)
    );
}

#[test]
fn a_hot_key_deleted_last_is_skipped_both_ways_in_bounded_moves() {
    let (mut it, counts) = iter_at(hot_key_entries(true), NEWEST);
    it.seek(b"b").unwrap();
    it.next().unwrap();
    assert_eq!(current(&it), kv("d", 4));
    it.prev().unwrap();
    assert_eq!(current(&it), kv("b", 2));
    it.next().unwrap();
    assert_eq!(current(&it), kv("d", 4));
    assert!(
        moves(&counts) <= 4 * MOVES_PER_USER_MOVE,
        "{} inner moves",
        moves(&counts)
    );
}

#[test]
fn an_old_read_passes_the_versions_newer_than_it_with_a_seek() {
    // The read sees `c` as of its 11th version: every newer one is
    // skipped, forward and in reverse.
    let read_seq = 16;
    let (mut it, counts) = iter_at(hot_key_entries(false), read_seq);
    it.seek(b"c").unwrap();
    assert_eq!(current(&it), kv("c", read_seq));
    it.next().unwrap();
    assert_eq!(current(&it), kv("d", 4));
    it.prev().unwrap();
    assert_eq!(current(&it), kv("c", read_seq));
    it.prev().unwrap();
    assert_eq!(current(&it), kv("b", 2));
    it.next().unwrap();
    assert_eq!(current(&it), kv("c", read_seq));
    assert!(
        moves(&counts) <= 5 * MOVES_PER_USER_MOVE,
        "{} inner moves",
        moves(&counts)
    );
}

#[test]
fn direction_switches_on_the_hot_key_cost_bounded_moves() {
    let (mut it, counts) = iter_at(hot_key_entries(false), NEWEST);
    it.seek(b"c").unwrap();
    for _ in 0..10 {
        it.prev().unwrap();
        assert_eq!(current(&it), kv("b", 2));
        it.next().unwrap();
        assert_eq!(current(&it), kv("c", NEWEST));
    }
    for _ in 0..10 {
        it.next().unwrap();
        assert_eq!(current(&it), kv("d", 4));
        it.prev().unwrap();
        assert_eq!(current(&it), kv("c", NEWEST));
    }
    assert!(
        moves(&counts) <= 41 * MOVES_PER_USER_MOVE,
        "{} inner moves for 41 movements",
        moves(&counts)
    );
}

#[test]
fn with_no_limit_the_versions_are_stepped_over() {
    // The same scan with the limit out of reach steps over every
    // version: what the tests above would count without the seeks.
    let (it, counts) = iter_at(hot_key_entries(false), NEWEST);
    let mut it = it.with_max_skip(usize::MAX);
    it.seek_for_prev(b"d").unwrap();
    it.prev().unwrap();
    assert_eq!(current(&it), kv("c", NEWEST));
    assert!(moves(&counts) as u64 > VERSIONS);
}

#[test]
fn a_reseek_past_a_hot_key_leaves_the_sources_already_past_it() {
    // The hot key's versions in the newest source (a memtable), the other
    // keys in an older one (an L0 table under it): skipping the versions
    // must not seek the older source again, which already stands past
    // them.
    let hot: Vec<_> = hot_key_entries(false)
        .into_iter()
        .filter(|(ikey, _)| ikey.starts_with(b"c") && ikey.len() == 9)
        .collect();
    let cold: Vec<_> = (0u8..5)
        .filter(|&i| i != 2)
        .map(|i| entry(&[b'a' + i], SeqNo::from(i) + 1, ValueKind::Put))
        .collect();
    let (newer, older) = (VecIter::new(hot), VecIter::new(cold));
    let older_counts = older.counts();
    let mut skipper = RangeDelSkipper::new(NEWEST);
    skipper.push(None);
    skipper.push(None);
    let children: Vec<Box<dyn InternalIterator>> = vec![Box::new(newer), Box::new(older)];
    let mut it = DbIter::new(
        MergingIter::with_range_dels(children, skipper),
        NEWEST,
        None,
        None,
    )
    .with_max_skip(MAX_SKIP);
    it.seek(b"b").unwrap();
    let mut got = vec![current(&it)];
    for _ in 0..3 {
        it.next().unwrap();
        got.push(current(&it));
    }
    assert_eq!(
        got,
        vec![kv("b", 2), kv("c", NEWEST), kv("d", 4), kv("e", 5)]
    );
    assert_eq!(older_counts.seeks(), 1, "the older source was sought again");
}
