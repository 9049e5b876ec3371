//! The index's fence: the user-key prefix (`key_prefix`, 8 bytes) of each
//! index entry, in order, searched through summaries of every
//! [`STRIDE`]-th entry.
//!
//! A point lookup finds which index entries share the target's prefix by
//! searching the fence. A binary search over the whole fence (8 bytes per
//! data block: 110 KB for a 64 MB table) takes a cache miss on nearly
//! every probe once the fences of a database outgrow the CPU's caches;
//! measured, it was the largest single cost of a point read with the data
//! in memory. Here the fence has summaries, each of every 16th entry of
//! the level below, up to one of at most 16 entries (a static B-tree of
//! 16-way nodes, 128 bytes each): a search reads the top and one stride
//! of each level below it, two cache lines per level, three or four
//! levels for a table of 64 MB.

/// One summary entry per this many entries of the level below (128 bytes).
const STRIDE: usize = 16;

/// A table's fence and its summaries.
#[derive(Debug)]
pub(crate) struct Fence {
    /// `levels[0]` is the fence; `levels[k + 1][i]` is `levels[k][i *
    /// STRIDE]`; the last has at most `STRIDE` entries.
    levels: Box<[Box<[u64]>]>,
}

impl Fence {
    /// The fence of `prefixes`, which must be in non-decreasing order (the
    /// prefixes of strictly increasing keys).
    pub(crate) fn new(prefixes: Vec<u64>) -> Fence {
        let mut levels = vec![prefixes.into_boxed_slice()];
        while let Some(last) = levels.last().filter(|l| l.len() > STRIDE) {
            let summary = last.iter().step_by(STRIDE).copied().collect();
            levels.push(summary);
        }
        Fence {
            levels: levels.into_boxed_slice(),
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.levels.first().map_or(0, |l| l.len())
    }

    /// Bytes of memory it holds.
    pub(crate) fn charge(&self) -> usize {
        let entries: usize = self.levels.iter().map(|l| l.len()).sum();
        entries * std::mem::size_of::<u64>()
    }

    /// The entries whose prefix is `prefix`: `lo..hi`, where `lo` is the
    /// first entry not below it and `hi` the first above it.
    #[inline]
    pub(crate) fn equal_range(&self, prefix: u64) -> (usize, usize) {
        let lo = self.partition_point(|f| f < prefix);
        // Usually `lo` itself is above the prefix (prefixes differ).
        let hi = match self.levels.first().and_then(|l| l.get(lo)) {
            Some(&f) if f <= prefix => self.partition_point(|f| f <= prefix),
            _ => lo,
        };
        (lo, hi)
    }

    /// The first entry for which `pred` is false, `pred` being true for a
    /// prefix of the fence (as `slice::partition_point`).
    #[inline]
    fn partition_point(&self, pred: impl Fn(u64) -> bool) -> usize {
        let Some((top, below)) = self.levels.split_last() else {
            return 0;
        };
        let mut point = top.partition_point(|&f| pred(f));
        for level in below.iter().rev() {
            // `point` entries of the summary satisfy `pred`: in this level
            // the answer lies after the first entry of the last stride
            // they start, and at or before the first entry of the next.
            if point == 0 {
                return 0;
            }
            let start = (point - 1) * STRIDE + 1;
            let end = (point * STRIDE).min(level.len());
            let stride = level.get(start..end).unwrap_or_default();
            point = start + stride.partition_point(|&f| pred(f));
        }
        point
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(prefixes: Vec<u64>, targets: impl IntoIterator<Item = u64>) {
        let fence = Fence::new(prefixes.clone());
        assert_eq!(fence.len(), prefixes.len());
        for t in targets {
            let lo = prefixes.partition_point(|&f| f < t);
            let hi = prefixes.partition_point(|&f| f <= t);
            assert_eq!(fence.equal_range(t), (lo, hi), "target {t} in {prefixes:?}");
        }
    }

    #[test]
    fn finds_the_same_range_as_a_binary_search_of_the_whole_fence() {
        // Every length around the stride, distinct prefixes, every target
        // between and beyond them.
        let lens = (0..(4 * STRIDE + 3)).chain([255, 256, 257, 4095, 4096, 4097, 5000]);
        for len in lens {
            let prefixes: Vec<u64> = (0..len as u64).map(|i| 10 + 3 * i).collect();
            check(prefixes, 0..(20 + 3 * len as u64));
        }
    }

    #[test]
    fn finds_runs_of_equal_prefixes_across_strides() {
        // Keys longer than 8 bytes sharing their first 8: runs of one
        // prefix, some longer than a stride, some crossing stride bounds.
        let mut prefixes = Vec::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut value = 5;
        while prefixes.len() < 5000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let run = [1, 1, 2, 3, 15, 16, 17, 40][(state % 8) as usize];
            prefixes.extend(std::iter::repeat_n(value, run));
            value += 1 + state % 3;
        }
        let last = *prefixes.last().unwrap();
        check(prefixes, 0..last + 3);
    }

    #[test]
    fn one_prefix_throughout() {
        check(vec![7; 100], [0, 6, 7, 8, u64::MAX]);
        check(vec![7; 1000], [0, 6, 7, 8, u64::MAX]);
        check(vec![u64::MAX; 33], [0, u64::MAX - 1, u64::MAX]);
    }

    #[test]
    fn summaries_shrink_by_the_stride_to_one_node() {
        let fence = Fence::new((0..5000).collect());
        let lens: Vec<usize> = fence.levels.iter().map(|l| l.len()).collect();
        assert_eq!(lens, [5000, 313, 20, 2]);
        assert_eq!(fence.charge(), (5000 + 313 + 20 + 2) * 8);
        assert_eq!(Fence::new(vec![1; STRIDE]).levels.len(), 1);
        assert_eq!(Fence::new(Vec::new()).equal_range(5), (0, 0));
    }
}
