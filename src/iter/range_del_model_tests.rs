//! The merging iterator's range-tombstone skip against a brute-force
//! model (the riskiest part of range deletes: it is right only while the
//! source-order invariant holds, and direction switches and bounds are
//! where off-by-ones hide).
//!
//! A random history of puts, deletes and range deletes (seqnos 1, 2, ...)
//! is laid out in sources the way an LSM tree holds it: the key space is
//! cut into regions (tables), and in each region every source holds a
//! contiguous band of seqnos, newer bands in earlier sources, with range
//! tombstones truncated to the region. Bands differ per region, as a
//! level's tables differ in age, so only the per-key form of the invariant
//! holds. Sources hold their tombstones as one list (a memtable, an L0
//! table) or as one list per region (a level).

#![allow(clippy::unwrap_used)]

use super::vec_iter::{MoveCounts, VecIter};
use super::{DbIter, InternalIterator, MergingIter, RangeDelSkipper, TombstoneSource};
use crate::ikey::push_seek_key;
use bytes::Bytes;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use strata_sstable::{
    compare_internal_keys, encode_internal_key, FragmentedRangeTombstones, RangeTombstone, SeqNo,
    ValueKind,
};

#[derive(Clone, Debug)]
enum Write {
    Put(Vec<u8>),
    Delete(Vec<u8>),
    DeleteRange(Vec<u8>, Option<Vec<u8>>),
}

/// A point entry: internal key and value.
type Entry = (Vec<u8>, Vec<u8>);

/// The history, write `n` at seqno `n + 1`.
struct History(Vec<Write>);

impl History {
    fn seqnos(&self) -> impl Iterator<Item = (SeqNo, &Write)> {
        (1..).zip(&self.0)
    }

    /// Every point entry, whatever the read.
    fn points(&self) -> Vec<(Vec<u8>, SeqNo, Entry)> {
        self.seqnos()
            .filter_map(|(seqno, w)| {
                let (key, kind) = match w {
                    Write::Put(k) => (k, ValueKind::Put),
                    Write::Delete(k) => (k, ValueKind::Delete),
                    Write::DeleteRange(..) => return None,
                };
                Some((key.clone(), seqno, entry(key, seqno, kind)))
            })
            .collect()
    }

    /// Whether a visible range delete deletes `key@seqno` at `read_seq`.
    fn covered(&self, key: &[u8], seqno: SeqNo, read_seq: SeqNo) -> bool {
        seqno <= read_seq
            && self.seqnos().any(|(t, w)| match w {
                Write::DeleteRange(s, e) => {
                    seqno < t && t <= read_seq && covers(s, e.as_deref(), key)
                }
                _ => false,
            })
    }

    /// What the merging iterator must yield at `read_seq`, in order: every
    /// point entry no visible range delete deletes (entries above the read
    /// pass through).
    fn merged(&self, read_seq: SeqNo) -> Vec<Entry> {
        let mut out: Vec<Entry> = self
            .points()
            .into_iter()
            .filter(|(k, q, _)| !self.covered(k, *q, read_seq))
            .map(|(_, _, e)| e)
            .collect();
        out.sort_by(|a, b| compare_internal_keys(&a.0, &b.0));
        out
    }

    /// The user-visible key-value pairs at `read_seq`.
    fn visible(&self, read_seq: SeqNo) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let mut newest: BTreeMap<Vec<u8>, (SeqNo, bool)> = BTreeMap::new();
        for (seqno, w) in self.seqnos().filter(|(s, _)| *s <= read_seq) {
            match w {
                Write::Put(k) => newest.insert(k.clone(), (seqno, true)),
                Write::Delete(k) => newest.insert(k.clone(), (seqno, false)),
                Write::DeleteRange(..) => None,
            };
        }
        newest
            .into_iter()
            .filter(|(k, (q, put))| *put && !self.covered(k, *q, read_seq))
            .map(|(k, (q, _))| (k, value(q)))
            .collect()
    }
}

fn covers(start: &[u8], end: Option<&[u8]>, key: &[u8]) -> bool {
    start <= key && end.is_none_or(|e| key < e)
}

fn value(seqno: SeqNo) -> Vec<u8> {
    format!("v{seqno}").into_bytes()
}

fn entry(key: &[u8], seqno: SeqNo, kind: ValueKind) -> Entry {
    let mut ikey = Vec::new();
    encode_internal_key(&mut ikey, key, seqno, kind);
    let v = if kind == ValueKind::Put {
        value(seqno)
    } else {
        Vec::new()
    };
    (ikey, v)
}

/// How the history is laid out in sources.
#[derive(Clone, Debug)]
struct Layout {
    /// Region boundaries (table cuts), ascending.
    cuts: Vec<Vec<u8>>,
    /// `bands[r]`: ascending seqnos splitting region `r` among the
    /// sources: source `n - 1` (oldest) holds seqnos `<= bands[r][0]`,
    /// source 0 (newest) those `> bands[r][n - 2]`.
    bands: Vec<Vec<SeqNo>>,
    /// Per source: tombstones as one list per region (a level) or one.
    as_level: Vec<bool>,
}

impl Layout {
    fn sources(&self) -> usize {
        self.as_level.len()
    }

    /// Region `r`'s key range `[lo, hi)`.
    fn region(&self, r: usize) -> (Option<&[u8]>, Option<&[u8]>) {
        let lo = r.checked_sub(1).map(|p| &self.cuts[p][..]);
        (lo, self.cuts.get(r).map(|c| &c[..]))
    }

    fn region_of(&self, key: &[u8]) -> usize {
        self.cuts.partition_point(|c| c[..] <= *key)
    }

    /// The source holding seqno `seqno` of region `r`.
    fn source_of(&self, r: usize, seqno: SeqNo) -> usize {
        let older = self.bands[r].partition_point(|&b| b < seqno);
        self.sources() - 1 - older
    }

    /// The children and their tombstones, newest source first.
    fn build(
        &self,
        history: &History,
    ) -> (Vec<Vec<Entry>>, Vec<Vec<Arc<FragmentedRangeTombstones>>>) {
        let n = self.sources();
        let mut points = vec![Vec::new(); n];
        for (key, seqno, e) in history.points() {
            points[self.source_of(self.region_of(&key), seqno)].push(e);
        }
        // pieces[source][region]
        let mut pieces = vec![vec![Vec::new(); self.cuts.len() + 1]; n];
        for (seqno, w) in history.seqnos() {
            let Write::DeleteRange(start, end) = w else {
                continue;
            };
            for r in 0..=self.cuts.len() {
                let (lo, hi) = self.region(r);
                let start = match lo {
                    Some(lo) if lo > &start[..] => lo,
                    _ => &start[..],
                };
                let end = match (end.as_deref(), hi) {
                    (Some(e), Some(hi)) => Some(e.min(hi)),
                    (e, None) => e,
                    (None, hi) => hi,
                };
                pieces[self.source_of(r, seqno)][r].push(RangeTombstone {
                    start: Bytes::copy_from_slice(start),
                    end: end.map(Bytes::copy_from_slice),
                    seqno,
                });
            }
        }
        let lists = pieces
            .into_iter()
            .zip(&self.as_level)
            .map(|(regions, &as_level)| {
                if as_level {
                    regions
                        .into_iter()
                        .map(|p| Arc::new(FragmentedRangeTombstones::fragment(p)))
                        .collect()
                } else {
                    vec![Arc::new(FragmentedRangeTombstones::fragment(
                        regions.into_iter().flatten(),
                    ))]
                }
            })
            .collect();
        (points, lists)
    }
}

/// A merging iterator over the layout, reading at `read_seq`.
fn merging(
    points: &[Vec<Entry>],
    lists: &[Vec<Arc<FragmentedRangeTombstones>>],
    read_seq: SeqNo,
) -> MergingIter {
    let mut skipper = RangeDelSkipper::new(read_seq);
    let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
    for (p, l) in points.iter().zip(lists) {
        children.push(Box::new(VecIter::new(p.clone())));
        skipper.push(TombstoneSource::level(l.iter().cloned()));
    }
    MergingIter::with_range_dels(children, skipper)
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c']), 0..3)
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        4 => key().prop_map(Write::Put),
        1 => key().prop_map(Write::Delete),
        2 => (key(), prop::option::weighted(0.8, key()))
            .prop_map(|(s, e)| Write::DeleteRange(s, e)),
    ]
}

fn layout(max_seqno: SeqNo) -> impl Strategy<Value = Layout> {
    (
        prop::collection::btree_set(key(), 0..4),
        prop::collection::vec(any::<bool>(), 1..6),
    )
        .prop_flat_map(move |(cuts, as_level)| {
            let regions = cuts.len() + 1;
            let band =
                prop::collection::vec(0..=max_seqno, as_level.len() - 1).prop_map(|mut b| {
                    b.sort_unstable();
                    b
                });
            (
                Just(cuts.into_iter().collect::<Vec<_>>()),
                prop::collection::vec(band, regions),
                Just(as_level),
            )
        })
        .prop_map(|(cuts, bands, as_level)| Layout {
            cuts,
            bands,
            as_level,
        })
}

fn history_and_layout() -> impl Strategy<Value = (Vec<Write>, Layout)> {
    prop::collection::vec(write(), 0..48).prop_flat_map(|writes| {
        let n = writes.len() as SeqNo;
        (Just(writes), layout(n))
    })
}

/// A movement of the merging iterator or the user-key view.
#[derive(Clone, Debug)]
enum Move {
    SeekToFirst,
    SeekToLast,
    Seek(Vec<u8>),
    SeekForPrev(Vec<u8>),
    Next,
    Prev,
}

fn moves() -> impl Strategy<Value = Vec<Move>> {
    prop::collection::vec(
        prop_oneof![
            1 => Just(Move::SeekToFirst),
            1 => Just(Move::SeekToLast),
            2 => key().prop_map(Move::Seek),
            2 => key().prop_map(Move::SeekForPrev),
            4 => Just(Move::Next),
            4 => Just(Move::Prev),
        ],
        1..30,
    )
}

/// The internal seek target of a user key: before every version (seek)
/// or after every version (seek_for_prev) of it.
fn target(ukey: &[u8], before_all: bool) -> Vec<u8> {
    let mut t = Vec::new();
    if before_all {
        push_seek_key(&mut t, ukey, strata_sstable::MAX_SEQNO);
    } else {
        t.extend_from_slice(ukey);
        t.extend_from_slice(&0u64.to_le_bytes());
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// The merging iterator yields exactly the entries no visible range
    /// delete deletes, in order, through any sequence of seeks and steps
    /// in both directions.
    #[test]
    fn merging_iter_leaves_out_exactly_the_deleted_entries(
        (writes, layout) in history_and_layout(),
        read_seq_pick in any::<prop::sample::Index>(),
        moves in moves(),
    ) {
        let history = History(writes);
        let read_seq = read_seq_pick.index(history.0.len() + 2) as SeqNo;
        let (points, lists) = layout.build(&history);
        let want = history.merged(read_seq);

        let mut it = merging(&points, &lists, read_seq);
        it.seek_to_first().unwrap();
        let mut got = Vec::new();
        while it.valid() {
            got.push((it.key().to_vec(), it.value().to_vec()));
            it.next().unwrap();
        }
        prop_assert_eq!(&got, &want, "forward");

        it.seek_to_last().unwrap();
        let mut got = Vec::new();
        while it.valid() {
            got.push((it.key().to_vec(), it.value().to_vec()));
            it.prev().unwrap();
        }
        got.reverse();
        prop_assert_eq!(&got, &want, "reverse");

        // Random movements: the position in `want` moves as the model says.
        let mut it = merging(&points, &lists, read_seq);
        let mut pos: Option<usize> = None;
        for m in moves {
            let find_first = |t: &[u8]| want.iter().position(|(k, _)| compare_internal_keys(k, t).is_ge());
            let find_last = |t: &[u8]| want.iter().rposition(|(k, _)| compare_internal_keys(k, t).is_le());
            match &m {
                Move::SeekToFirst => { it.seek_to_first().unwrap(); pos = (!want.is_empty()).then_some(0); }
                Move::SeekToLast => { it.seek_to_last().unwrap(); pos = want.len().checked_sub(1); }
                Move::Seek(k) => { let t = target(k, true); it.seek(&t).unwrap(); pos = find_first(&t); }
                Move::SeekForPrev(k) => { let t = target(k, false); it.seek_for_prev(&t).unwrap(); pos = find_last(&t); }
                Move::Next => match pos {
                    Some(p) => { it.next().unwrap(); pos = (p + 1 < want.len()).then_some(p + 1); }
                    None => continue,
                },
                Move::Prev => match pos {
                    Some(p) => { it.prev().unwrap(); pos = p.checked_sub(1); }
                    None => continue,
                },
            }
            let expected = pos.map(|p| &want[p].0[..]);
            let actual = it.valid().then(|| it.key());
            prop_assert_eq!(actual, expected, "after {:?}", m);
        }
    }

    /// The user-key view over the skipping merge shows exactly the model's
    /// visible keys, within bounds, through any sequence of movements.
    #[test]
    fn db_iter_over_the_skip_matches_the_model(
        (writes, layout) in history_and_layout(),
        read_seq_pick in any::<prop::sample::Index>(),
        lower in prop::option::of(key()),
        upper in prop::option::of(key()),
        moves in moves(),
        max_skip in 0usize..4,
    ) {
        let history = History(writes);
        let read_seq = read_seq_pick.index(history.0.len() + 2) as SeqNo;
        let (points, lists) = layout.build(&history);
        let in_bounds = |k: &[u8]| {
            lower.as_deref().is_none_or(|l| l <= k) && upper.as_deref().is_none_or(|u| k < u)
        };
        let want: Vec<(Vec<u8>, Vec<u8>)> = history
            .visible(read_seq)
            .into_iter()
            .filter(|(k, _)| in_bounds(k))
            .collect();

        // A small `max_skip` makes the seeks past a key's versions run
        // as often as the steps.
        let db_iter = || {
            DbIter::new(merging(&points, &lists, read_seq), read_seq, lower.clone(), upper.clone())
                .with_max_skip(max_skip)
        };
        let mut it = db_iter();
        it.seek_to_first().unwrap();
        let mut got = Vec::new();
        while it.valid() {
            got.push((it.key().to_vec(), it.value().to_vec()));
            it.next().unwrap();
        }
        prop_assert_eq!(&got, &want, "forward");

        it.seek_to_last().unwrap();
        let mut got = Vec::new();
        while it.valid() {
            got.push((it.key().to_vec(), it.value().to_vec()));
            it.prev().unwrap();
        }
        got.reverse();
        prop_assert_eq!(&got, &want, "reverse");

        let mut it = db_iter();
        let mut pos: Option<usize> = None;
        for m in moves {
            match &m {
                Move::SeekToFirst => { it.seek_to_first().unwrap(); pos = (!want.is_empty()).then_some(0); }
                Move::SeekToLast => { it.seek_to_last().unwrap(); pos = want.len().checked_sub(1); }
                Move::Seek(k) => { it.seek(k).unwrap(); pos = want.iter().position(|(w, _)| w >= k); }
                Move::SeekForPrev(k) => { it.seek_for_prev(k).unwrap(); pos = want.iter().rposition(|(w, _)| w <= k); }
                Move::Next => match pos {
                    Some(p) => { it.next().unwrap(); pos = (p + 1 < want.len()).then_some(p + 1); }
                    None => continue,
                },
                Move::Prev => match pos {
                    Some(p) => { it.prev().unwrap(); pos = p.checked_sub(1); }
                    None => continue,
                },
            }
            let expected = pos.map(|p| (&want[p].0[..], &want[p].1[..]));
            let actual = it.valid().then(|| (it.key(), it.value()));
            prop_assert_eq!(actual, expected, "after {:?}", m);
        }
    }
}

fn put(key: &[u8], seqno: SeqNo) -> Entry {
    entry(key, seqno, ValueKind::Put)
}

fn tombstones(ts: &[(&str, Option<&str>, SeqNo)]) -> Option<TombstoneSource> {
    TombstoneSource::list(Arc::new(FragmentedRangeTombstones::fragment(
        ts.iter().map(|&(s, e, seqno)| RangeTombstone {
            start: Bytes::copy_from_slice(s.as_bytes()),
            end: e.map(|e| Bytes::copy_from_slice(e.as_bytes())),
            seqno,
        }),
    )))
}

/// `[a, z)` newest over 100k older keys, all but `z` deleted: the
/// older source is skipped with a seek, not a step per deleted key.
#[test]
fn a_covered_span_costs_a_seek_not_a_step_per_key() {
    const KEYS: usize = 100_000;
    let mut older: Vec<Entry> = (0..KEYS)
        .map(|i| put(format!("k{i:06}").as_bytes(), i as SeqNo + 1))
        .collect();
    older.push(put(b"z", KEYS as SeqNo + 1));
    let tombstone_seqno = KEYS as SeqNo + 2;
    let read_seq = tombstone_seqno;

    let run = |f: &dyn Fn(&mut DbIter)| -> Arc<MoveCounts> {
        let older = VecIter::new(older.clone());
        let counts = older.counts();
        let mut skipper = RangeDelSkipper::new(read_seq);
        skipper.push(tombstones(&[("a", Some("z"), tombstone_seqno)]));
        skipper.push(None);
        let children: Vec<Box<dyn InternalIterator>> =
            vec![Box::new(VecIter::new(Vec::new())), Box::new(older)];
        let mut it = DbIter::new(
            MergingIter::with_range_dels(children, skipper),
            read_seq,
            None,
            None,
        );
        f(&mut it);
        counts
    };

    let counts = run(&|it| {
        it.seek_to_first().unwrap();
        assert_eq!(it.key(), b"z");
        it.next().unwrap();
        assert!(!it.valid());
    });
    assert!(
        counts.seeks() <= 2 && counts.steps() <= 2,
        "forward: {counts:?}"
    );

    let counts = run(&|it| {
        it.seek_to_last().unwrap();
        assert_eq!(it.key(), b"z");
        it.prev().unwrap();
        assert!(!it.valid());
    });
    assert!(
        counts.seeks() <= 3 && counts.steps() <= 3,
        "reverse: {counts:?}"
    );

    let counts = run(&|it| {
        it.seek(b"k05").unwrap();
        assert_eq!(it.key(), b"z");
        it.seek_for_prev(b"k07").unwrap();
        assert!(!it.valid());
    });
    assert!(
        counts.seeks() <= 4 && counts.steps() <= 2,
        "seeks: {counts:?}"
    );
}

/// A tombstone with no end in a newer source ends every older child going
/// forward; turning around brings them back for the keys before it.
#[test]
fn a_tombstone_without_end_ends_older_children_until_the_direction_turns() {
    let mut skipper = RangeDelSkipper::new(10);
    skipper.push(tombstones(&[("m", None, 9)]));
    skipper.push(None);
    let children: Vec<Box<dyn InternalIterator>> = vec![
        Box::new(VecIter::new(vec![put(b"n", 10)])),
        Box::new(VecIter::new(vec![put(b"b", 1), put(b"m", 2), put(b"x", 3)])),
    ];
    let mut it = DbIter::new(
        MergingIter::with_range_dels(children, skipper),
        10,
        None,
        None,
    );
    let mut keys = Vec::new();
    it.seek_to_first().unwrap();
    while it.valid() {
        keys.push(it.key().to_vec());
        it.next().unwrap();
    }
    assert_eq!(keys, [&b"b"[..], b"n"]);
    it.seek(b"m").unwrap();
    assert_eq!(it.key(), b"n");
    it.prev().unwrap();
    assert_eq!(it.key(), b"b");
    it.next().unwrap();
    assert_eq!(it.key(), b"n");
    it.next().unwrap();
    assert!(!it.valid());
}
