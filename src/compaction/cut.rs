//! Where a compaction cuts its output into tables.
//!
//! Outputs are cut only between user keys (a key's versions never span two
//! tables of a level), and there when the table (RocksDB's rules with
//! `level_compaction_dynamic_file_size`, its default):
//! - reached its maximum size: `target_file_size_base`, or twice that when
//!   there is a level below the output level ("grandparents"), so that a
//!   table can run on to the end of a grandparent table;
//! - would overlap more than `MAX_GRANDPARENT_OVERLAP_FILES` target sizes
//!   of grandparents, so its own compaction later stays small (LevelDB's
//!   grandparent rule);
//! - is about to take in, past a gap of whole grandparent tables, more
//!   than an eighth of a target of grandparent bytes it does not need:
//!   cutting there leaves those tables out of its later compaction;
//! - reached a bar between half and nine tenths of the target at a
//!   grandparent boundary: a table ending where the level below's tables
//!   end takes no partly overlapped table along when it is compacted
//!   down. The bar starts at 50% and rises by 5% for each boundary
//!   switch (leaving a grandparent table, entering the next: two per table
//!   passed) since the last cut, up to 90%, so tables do not end up
//!   needlessly small.
//!
//! Measured (10M fillrandom + 10M overwrite, 2-core VM): cutting at the
//! target and starting the bar at 50% rising 5% per table left base-level
//! tables that began and ended inside last-level tables, and every such
//! table was rewritten by two compactions: 29 base-to-last compactions
//! writing 2.9 GB where RocksDB ran 21-24 writing 2.5 GB.

use crate::version::FileMeta;

/// See the module comment.
const MAX_GRANDPARENT_OVERLAP_FILES: u64 = 10;
const ALIGN_MIN_PERCENT: u64 = 50;
const ALIGN_STEP_PERCENT: u64 = 5;
const ALIGN_MAX_PERCENT: u64 = 90;
/// Boundary switches per grandparent table passed: out of it, into the
/// next (the policy sees only where grandparents end, so a key landing in
/// the gap between two tables counts as landing in the next).
const SWITCHES_PER_TABLE: u64 = 2;

/// Walks the tables of the level below the output level ("grandparents",
/// in key order) alongside the compaction's output keys.
#[derive(Debug, Default)]
pub(crate) struct CutPolicy {
    grandparent_index: usize,
    grandparent_overlap: u64,
    /// Grandparent boundary switches inside the current table.
    switches: u64,
    seen_key: bool,
}

impl CutPolicy {
    /// Called before each new user key with the size of the table being
    /// written (`None` when none is open): whether to finish that table
    /// first.
    pub fn cut_before<'g>(
        &mut self,
        grandparents: impl ExactSizeIterator<Item = &'g FileMeta> + Clone,
        user_key: &[u8],
        current_size: Option<u64>,
        target: u64,
    ) -> bool {
        let max_size = if grandparents.len() == 0 {
            target
        } else {
            2 * target
        };
        // Tables passed before this key, their bytes, and the bytes of
        // those passed whole (all but the first, which the table was in).
        let (mut passed, mut passed_bytes, mut skipped_bytes) = (0, 0, 0);
        for grandparent in grandparents.skip(self.grandparent_index) {
            if !grandparent.ends_before(user_key) {
                break;
            }
            let size = grandparent.size;
            if self.seen_key {
                if passed > 0 {
                    skipped_bytes += size;
                }
                passed += 1;
                passed_bytes += size;
            }
            self.grandparent_index += 1;
        }
        self.seen_key = true;
        self.grandparent_overlap += passed_bytes;
        self.switches += SWITCHES_PER_TABLE * passed;
        let Some(size) = current_size else {
            return false;
        };
        let at_boundary = passed > 0;
        let too_big = size >= max_size;
        let too_wide = self.grandparent_overlap > MAX_GRANDPARENT_OVERLAP_FILES * target;
        let skips_tables = skipped_bytes > target / 8;
        let align_percent =
            (ALIGN_MIN_PERCENT + ALIGN_STEP_PERCENT * self.switches).min(ALIGN_MAX_PERCENT);
        let aligned = at_boundary && size >= target / 100 * align_percent;
        let cut = too_big || (at_boundary && (too_wide || skips_tables)) || aligned;
        if cut {
            self.grandparent_overlap = 0;
            self.switches = 0;
        }
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::LargestBound;

    const TARGET: u64 = 1000;

    /// Feeds keys `0..n` (as 4-byte big-endian) with `bytes_per_key` each
    /// through the policy, and returns the last key of every table cut.
    fn cut_points(grandparents: &[(u32, u64)], n: u32, bytes_per_key: u64) -> Vec<u32> {
        cuts_for_keys(grandparents, 0..n, bytes_per_key)
    }

    /// `count` grandparents of `size` bytes, ending at keys `step - 1`,
    /// `2 step - 1`, ...
    fn ending_every(step: u32, count: u32, size: u64) -> Vec<(u32, u64)> {
        (1..=count).map(|i| (i * step - 1, size)).collect()
    }

    /// As `cut_points`, for any ascending keys: the key before each cut.
    fn cuts_for_keys(
        grandparents: &[(u32, u64)],
        keys: impl IntoIterator<Item = u32>,
        bytes_per_key: u64,
    ) -> Vec<u32> {
        cuts_for_keys_ending(grandparents, LargestBound::Included, keys, bytes_per_key)
    }

    /// As `cuts_for_keys`, with grandparents ending at their keys as
    /// `bound` says.
    fn cuts_for_keys_ending(
        grandparents: &[(u32, u64)],
        bound: LargestBound,
        keys: impl IntoIterator<Item = u32>,
        bytes_per_key: u64,
    ) -> Vec<u32> {
        // Only where a grandparent ends and its size matter here.
        let gps: Vec<FileMeta> = grandparents
            .iter()
            .enumerate()
            .map(|(i, &(k, size))| FileMeta {
                number: i as u64,
                size,
                smallest: Vec::new(),
                largest: k.to_be_bytes().to_vec(),
                largest_bound: bound,
                smallest_seqno: 0,
                largest_seqno: 0,
                blob_files: Vec::new(),
                blob_refs: Vec::new(),
            })
            .collect();
        let mut policy = CutPolicy::default();
        let mut size = None;
        let mut cuts = Vec::new();
        let mut previous = None;
        for k in keys {
            let key = k.to_be_bytes();
            if policy.cut_before(gps.iter(), &key, size, TARGET) {
                cuts.extend(previous);
                size = None;
            }
            size = Some(size.unwrap_or(0) + bytes_per_key);
            previous = Some(k);
        }
        cuts
    }

    #[test]
    fn without_grandparents_tables_are_cut_at_the_target_size() {
        // 10 bytes a key: a table holds 100 keys.
        assert_eq!(cut_points(&[], 350, 10), vec![99, 199, 299]);
    }

    #[test]
    fn a_table_past_half_the_target_ends_where_a_grandparent_ends() {
        // Grandparents end at keys 69, 139, 209, ...: every table reaches
        // 70% at a boundary (the bar there is 60%: two switches), so it is
        // cut there rather than at 100 keys.
        let gps = ending_every(70, 9, 5000);
        assert_eq!(cut_points(&gps, 300, 10), vec![69, 139, 209, 279]);
    }

    #[test]
    fn a_grandparent_ending_before_a_key_is_passed_at_that_key() {
        // Ending just before 70, 140, ... is ending at 69, 139, ...: the
        // key at the exclusive end already lies in the next grandparent.
        let included = ending_every(70, 9, 5000);
        let excluded: Vec<_> = included.iter().map(|&(k, s)| (k + 1, s)).collect();
        let want = vec![69, 139, 209, 279];
        assert_eq!(cut_points(&included, 300, 10), want);
        assert_eq!(
            cuts_for_keys_ending(&excluded, LargestBound::Excluded, 0..300, 10),
            want
        );
    }

    #[test]
    fn a_boundary_below_the_bar_does_not_cut() {
        // Boundaries every 30 keys, two switches each. At 30 keys (30%) the
        // bar is 60%, at 60 keys 70%: no cut; at 90 keys it is 80%: cut.
        let gps = ending_every(30, 19, 10);
        assert_eq!(cut_points(&gps, 200, 10), vec![89, 179]);
    }

    #[test]
    fn with_a_level_below_a_table_runs_on_to_its_boundary() {
        // Grandparents end every 150 keys: no boundary between half the
        // target and the target, so the table runs past the target (up to
        // twice it) and ends where the grandparent ends.
        let gps = ending_every(150, 9, 5000);
        assert_eq!(cut_points(&gps, 500, 10), vec![149, 299, 449]);
    }

    #[test]
    fn with_a_level_below_a_table_stops_at_twice_the_target() {
        let gps = ending_every(1000, 4, 5000);
        assert_eq!(cut_points(&gps, 500, 10), vec![199, 399]);
    }

    #[test]
    fn a_table_is_cut_before_it_skips_over_grandparent_tables() {
        // Keys 0..5, then 35..: the jump passes the tables ending at 10
        // (the one the table was in), 20 and 30 (skipped whole, 2 x 500
        // bytes, over an eighth of the target): the table ends at key 4,
        // however small, so its later compaction leaves them out.
        let gps = [(10, 500), (20, 500), (30, 500), (1000, 500)];
        let keys = (0..5).chain(35..40);
        assert_eq!(cuts_for_keys(&gps, keys, 10), vec![4]);
        // Skipping one small table (under an eighth) does not cut.
        let gps = [(10, 500), (20, 100), (1000, 500)];
        let keys = (0..5).chain(25..30);
        assert!(cuts_for_keys(&gps, keys, 10).is_empty());
    }

    #[test]
    fn the_bar_rises_with_each_boundary_passed_up_to_ninety_percent() {
        // Boundaries every 9 keys: at the k-th the table holds 9k% of the
        // target and the bar is min(50 + 10 k, 90)%. 9k first reaches it
        // at k = 10 (90% against 90%), not before (81% against 90%).
        let gps = ending_every(9, 39, 10);
        assert_eq!(cut_points(&gps, 300, 10), vec![89, 179, 269]);
    }

    #[test]
    fn a_table_overlapping_too_much_below_is_cut_early() {
        // Each grandparent is 3 targets: the fourth boundary passes 10
        // targets of overlap, however small the table.
        let gps = ending_every(2, 19, 3 * TARGET);
        let cuts = cut_points(&gps, 20, 1);
        assert_eq!(cuts.first(), Some(&7), "{cuts:?}");
    }
}
