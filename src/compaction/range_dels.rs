//! A compaction's range tombstones: which cover each key of the merge,
//! which are written again, and how they are split among the outputs.
//!
//! The inputs' tombstones are fragmented together into one list
//! ([`CompactionRangeDels`]). The merge asks it, key by key in ascending
//! order, for the seqnos covering each key, which `retain.rs` uses to drop
//! covered versions. The tombstones still needed are computed once, before
//! the merge ([`CompactionRangeDels::retained`]), and wait in
//! [`PendingTombstones`] for the output table whose range holds them: a
//! table cut before user key `C` takes those starting before `C`, cut to
//! end at `C`, and the rest starts the next table at `C`. A user key is
//! never split across tables, so exact truncation is all it takes (RocksDB
//! needs atomic compaction units because it splits them; Pebble does not).

use super::retain::Stripes;
use crate::version::{KeyRange, LargestBound};
use bytes::Bytes;
use std::collections::VecDeque;
use strata_sstable::{FragmentedRangeTombstones, RangeTombstone, SeqNo};

/// The range tombstones of every input of one compaction, fragmented
/// together, with a cursor for the merge.
pub(crate) struct CompactionRangeDels {
    all: FragmentedRangeTombstones,
    /// The first stack that does not end at or before the last key asked
    /// about: keys ascend, so the stacks before it are done with.
    cursor: usize,
}

impl CompactionRangeDels {
    /// Fragment the tombstones of every input table together. Each table's
    /// lie within its own bounds, so the union stays within the inputs'.
    pub fn new<'a>(inputs: impl IntoIterator<Item = &'a FragmentedRangeTombstones>) -> Self {
        let all = FragmentedRangeTombstones::fragment(
            inputs.into_iter().flat_map(|list| list.fragments()),
        );
        CompactionRangeDels { all, cursor: 0 }
    }

    /// The seqnos of the tombstones covering `ukey`, newest first (empty if
    /// none). Keys must come in ascending order: the cursor only moves
    /// forward, so a whole merge costs one pass over the stacks.
    pub fn covering_seqnos(&mut self, ukey: &[u8]) -> &[SeqNo] {
        while self
            .all
            .stack(self.cursor)
            .is_some_and(|s| !s.ends_after(ukey))
        {
            self.cursor += 1;
        }
        match self.all.stack(self.cursor) {
            Some(s) if s.contains(ukey) => s.seqnos(),
            _ => &[],
        }
    }

    /// The tombstones the compaction's output must hold. Per stack, the
    /// newest seqno of each stripe: an older one in the same stripe is
    /// seen by exactly the readers that see the newer, which deletes more.
    /// A seqno in the oldest stripe is dropped too when
    /// `deeper_overlaps([start, end))` is false: every version it covered
    /// in this compaction was in that stripe and is dropped
    /// (`Decision::DropCovered`), no level below holds a key in its range,
    /// and the output level holds none outside the compaction (which took
    /// every table there overlapping its inputs, whose bounds include
    /// their tombstones).
    pub fn retained(
        &self,
        stripes: &Stripes,
        mut deeper_overlaps: impl FnMut(&KeyRange) -> bool,
    ) -> FragmentedRangeTombstones {
        let mut kept = Vec::new();
        for stack in self.all.iter() {
            let mut last_stripe = None;
            for &seqno in stack.seqnos() {
                let stripe = stripes.of(seqno);
                if last_stripe == Some(stripe) {
                    continue;
                }
                last_stripe = Some(stripe);
                if stripe == 0 && !deeper_overlaps(&stack_range(stack.start(), stack.end())) {
                    continue;
                }
                kept.push(RangeTombstone {
                    start: Bytes::copy_from_slice(stack.start()),
                    end: stack.end().map(Bytes::copy_from_slice),
                    seqno,
                });
            }
        }
        FragmentedRangeTombstones::fragment(kept)
    }
}

/// The keys of a stack: `[start, end)`, or from `start` on without end.
pub(crate) fn stack_range(start: &[u8], end: Option<&[u8]>) -> KeyRange {
    match end {
        Some(end) => KeyRange::new(start, end, LargestBound::Excluded),
        None => KeyRange::new(start, &[], LargestBound::Unbounded),
    }
}

/// Range tombstones waiting for the output table that holds their range,
/// in key order.
#[derive(Debug, Default)]
pub(crate) struct PendingTombstones {
    stacks: VecDeque<PendingStack>,
}

#[derive(Debug)]
struct PendingStack {
    start: Bytes,
    end: Option<Bytes>,
    /// Newest first.
    seqnos: Vec<SeqNo>,
}

impl PendingTombstones {
    pub fn new(tombstones: &FragmentedRangeTombstones) -> PendingTombstones {
        let stacks = tombstones
            .iter()
            .map(|s| PendingStack {
                start: Bytes::copy_from_slice(s.start()),
                end: s.end().map(Bytes::copy_from_slice),
                seqnos: s.seqnos().to_vec(),
            })
            .collect();
        PendingTombstones { stacks }
    }

    /// Whether every tombstone has gone to a table.
    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }

    /// The tombstones of a table that ends before user key `cut` (every
    /// one left, when `cut` is `None`): those starting before `cut`, the
    /// one reaching past it cut to end at `cut`. Its rest stays pending,
    /// starting at `cut`, for the next table.
    pub fn take_before(&mut self, cut: Option<&[u8]>) -> FragmentedRangeTombstones {
        let mut taken = Vec::new();
        while let Some(front) = self.stacks.front_mut() {
            let Some(cut) = cut else {
                take_all(&mut taken, front.start.clone(), front.end.clone(), front);
                self.stacks.pop_front();
                continue;
            };
            if front.start[..] >= *cut {
                break;
            }
            let reaches_past = front.end.as_ref().is_none_or(|end| end[..] > *cut);
            if !reaches_past {
                take_all(&mut taken, front.start.clone(), front.end.clone(), front);
                self.stacks.pop_front();
                continue;
            }
            let cut = Bytes::copy_from_slice(cut);
            take_all(&mut taken, front.start.clone(), Some(cut.clone()), front);
            front.start = cut;
            // Stacks do not overlap: the next starts at or after this
            // one's end, past the cut.
            break;
        }
        FragmentedRangeTombstones::fragment(taken)
    }
}

/// Push `stack`'s seqnos over `[start, end)` onto `out`.
fn take_all(out: &mut Vec<RangeTombstone>, start: Bytes, end: Option<Bytes>, stack: &PendingStack) {
    out.extend(stack.seqnos.iter().map(|&seqno| RangeTombstone {
        start: start.clone(),
        end: end.clone(),
        seqno,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tombstone(start: &str, end: Option<&str>, seqno: SeqNo) -> RangeTombstone {
        RangeTombstone {
            start: Bytes::copy_from_slice(start.as_bytes()),
            end: end.map(|e| Bytes::copy_from_slice(e.as_bytes())),
            seqno,
        }
    }

    fn list(tombstones: &[(&str, Option<&str>, SeqNo)]) -> FragmentedRangeTombstones {
        FragmentedRangeTombstones::fragment(tombstones.iter().map(|&(s, e, q)| tombstone(s, e, q)))
    }

    /// `(start, end, seqnos)` per stack, as text.
    fn stacks(list: &FragmentedRangeTombstones) -> Vec<(String, Option<String>, Vec<SeqNo>)> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        list.iter()
            .map(|s| (text(s.start()), s.end().map(text), s.seqnos().to_vec()))
            .collect()
    }

    fn stack(
        start: &str,
        end: Option<&str>,
        seqnos: &[SeqNo],
    ) -> (String, Option<String>, Vec<SeqNo>) {
        (start.to_owned(), end.map(str::to_owned), seqnos.to_vec())
    }

    #[test]
    fn the_inputs_tombstones_cover_keys_as_one_list_in_ascending_order() {
        // Two inputs: an L1 table's [b, f)@5 and an L2 table's [d, h)@3.
        let upper = list(&[("b", Some("f"), 5)]);
        let lower = list(&[("d", Some("h"), 3), ("x", None, 2)]);
        let mut r = CompactionRangeDels::new([&upper, &lower]);
        let got: Vec<(&str, Vec<SeqNo>)> = ["a", "b", "c", "d", "e", "f", "g", "h", "w", "x", "zz"]
            .into_iter()
            .map(|k| (k, r.covering_seqnos(k.as_bytes()).to_vec()))
            .collect();
        let want: Vec<(&str, Vec<SeqNo>)> = vec![
            ("a", vec![]),
            ("b", vec![5]),
            ("c", vec![5]),
            ("d", vec![5, 3]),
            ("e", vec![5, 3]),
            ("f", vec![3]),
            ("g", vec![3]),
            ("h", vec![]),
            ("w", vec![]),
            ("x", vec![2]),
            ("zz", vec![2]),
        ];
        assert_eq!(got, want);
        assert!(CompactionRangeDels::new([])
            .covering_seqnos(b"a")
            .is_empty());
    }

    #[test]
    fn retained_keeps_the_newest_per_stripe_and_drops_the_bottom_without_anything_deeper() {
        let r = CompactionRangeDels::new([&list(&[
            ("a", Some("c"), 9),
            ("a", Some("c"), 8),
            ("a", Some("c"), 3),
            ("a", Some("c"), 2),
            ("m", None, 1),
        ])]);
        // Snapshots at 5 and 10: stripes (..5], (5..10], (10..).
        let stripes = Stripes::new(vec![5, 10]);
        let anything_deeper = r.retained(&stripes, |_| true);
        assert_eq!(
            stacks(&anything_deeper),
            vec![stack("a", Some("c"), &[9, 3]), stack("m", None, &[1])]
        );
        // Nothing below overlaps: the oldest stripe's seqnos go.
        let nothing_deeper = r.retained(&stripes, |_| false);
        assert_eq!(stacks(&nothing_deeper), vec![stack("a", Some("c"), &[9])]);
        // Only [m, +inf) overlaps something deeper.
        let mut asked = Vec::new();
        let some_deeper = r.retained(&stripes, |range| {
            asked.push(range.clone());
            range.start == b"m"
        });
        assert_eq!(
            stacks(&some_deeper),
            vec![stack("a", Some("c"), &[9]), stack("m", None, &[1])]
        );
        assert_eq!(
            asked,
            vec![
                KeyRange::new(b"a", b"c", LargestBound::Excluded),
                KeyRange::new(b"m", b"", LargestBound::Unbounded)
            ]
        );
    }

    #[test]
    fn a_cut_splits_the_tombstone_reaching_past_it_at_the_cut_key() {
        let mut p = PendingTombstones::new(&list(&[
            ("a", Some("b"), 4),
            ("c", Some("k"), 7),
            ("c", Some("k"), 5),
            ("p", None, 6),
        ]));
        // Before the first stack: nothing.
        assert!(p.take_before(Some(b"a")).is_empty());
        assert_eq!(
            stacks(&p.take_before(Some(b"e"))),
            vec![stack("a", Some("b"), &[4]), stack("c", Some("e"), &[7, 5])]
        );
        // The rest starts at the cut; a cut at a stack's end moves it whole.
        assert_eq!(
            stacks(&p.take_before(Some(b"k"))),
            vec![stack("e", Some("k"), &[7, 5])]
        );
        assert_eq!(
            stacks(&p.take_before(Some(b"q"))),
            vec![stack("p", Some("q"), &[6])]
        );
        assert!(!p.is_empty());
        assert_eq!(stacks(&p.take_before(None)), vec![stack("q", None, &[6])]);
        assert!(p.is_empty());
        assert!(p.take_before(None).is_empty());
    }
}
