//! Where a compaction cuts its output into tables.
//!
//! Outputs are cut only between user keys (a key's versions never span two
//! tables of a level), and there when the table:
//! - reached `target_file_size_base`;
//! - would overlap more than `MAX_GRANDPARENT_OVERLAP_FILES` target sizes
//!   of the level below the output level, so its own compaction later
//!   stays small (LevelDB's grandparent rule);
//! - is at least half the target and the next key lies past the end of a
//!   table of the level below. A table ending where the next level's tables
//!   end takes no partly overlapped table along when it is compacted down
//!   (RocksDB's `level_compaction_dynamic_file_size`). Each such boundary
//!   passed without a cut raises the bar by 5% of the target, up to 90%,
//!   so tables do not end up needlessly small.

/// See the module comment.
const MAX_GRANDPARENT_OVERLAP_FILES: u64 = 10;
const ALIGN_MIN_PERCENT: u64 = 50;
const ALIGN_STEP_PERCENT: u64 = 5;
const ALIGN_MAX_PERCENT: u64 = 90;

/// Walks the tables of the level below the output level ("grandparents",
/// given as `(largest user key, size)` in key order) alongside the
/// compaction's output keys.
#[derive(Debug, Default)]
pub(crate) struct CutPolicy {
    grandparent_index: usize,
    grandparent_overlap: u64,
    /// Grandparent boundaries passed inside the current table.
    boundaries_passed: u64,
    seen_key: bool,
}

impl CutPolicy {
    /// Called before each new user key with the size of the table being
    /// written (`None` when none is open): whether to finish that table
    /// first.
    pub fn cut_before<'g>(
        &mut self,
        grandparents: impl ExactSizeIterator<Item = (&'g [u8], u64)> + Clone,
        user_key: &[u8],
        current_size: Option<u64>,
        target: u64,
    ) -> bool {
        let mut at_boundary = false;
        for (largest, size) in grandparents.skip(self.grandparent_index) {
            if user_key <= largest {
                break;
            }
            if self.seen_key {
                self.grandparent_overlap += size;
                at_boundary = true;
            }
            self.grandparent_index += 1;
        }
        self.seen_key = true;
        let Some(size) = current_size else {
            return false;
        };
        let too_big = size >= target;
        let too_wide = self.grandparent_overlap > MAX_GRANDPARENT_OVERLAP_FILES * target;
        let align_percent = (ALIGN_MIN_PERCENT + ALIGN_STEP_PERCENT * self.boundaries_passed)
            .min(ALIGN_MAX_PERCENT);
        let aligned = at_boundary && size >= target / 100 * align_percent;
        if at_boundary {
            self.boundaries_passed += 1;
        }
        let cut = too_big || too_wide || aligned;
        if cut {
            self.grandparent_overlap = 0;
            self.boundaries_passed = 0;
        }
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: u64 = 1000;

    /// Feeds keys `0..n` (as 4-byte big-endian) with `bytes_per_key` each
    /// through the policy, and returns the last key of every table cut.
    fn cut_points(grandparents: &[(u32, u64)], n: u32, bytes_per_key: u64) -> Vec<u32> {
        let gps: Vec<(Vec<u8>, u64)> = grandparents
            .iter()
            .map(|&(k, s)| (k.to_be_bytes().to_vec(), s))
            .collect();
        let mut policy = CutPolicy::default();
        let mut size = None;
        let mut cuts = Vec::new();
        for k in 0..n {
            let key = k.to_be_bytes();
            let it = gps.iter().map(|(l, s)| (l.as_slice(), *s));
            if policy.cut_before(it, &key, size, TARGET) {
                cuts.push(k - 1);
                size = None;
            }
            size = Some(size.unwrap_or(0) + bytes_per_key);
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
        // 70% at a boundary, so it is cut there rather than at 100 keys.
        let gps: Vec<(u32, u64)> = (1..10).map(|i| (i * 70 - 1, 5000)).collect();
        assert_eq!(cut_points(&gps, 300, 10), vec![69, 139, 209, 279]);
    }

    #[test]
    fn a_boundary_before_half_the_target_does_not_cut() {
        // Boundaries every 30 keys. At 30 keys (30%) the bar is 50%: no
        // cut; at 60 keys (60%) it is 55%: cut.
        let gps: Vec<(u32, u64)> = (1..20).map(|i| (i * 30 - 1, 10)).collect();
        assert_eq!(cut_points(&gps, 200, 10), vec![59, 119, 179]);
    }

    #[test]
    fn the_bar_rises_with_each_boundary_passed_up_to_ninety_percent() {
        // Boundaries every 9 keys: at the k-th the table holds 9k% of the
        // target and the bar is min(50 + 5 (k - 1), 90)%. 9k first reaches
        // it at k = 10 (90% against 90%), not before (81% against 90%).
        let gps: Vec<(u32, u64)> = (1..40).map(|i| (i * 9 - 1, 10)).collect();
        assert_eq!(cut_points(&gps, 300, 10), vec![89, 179, 269]);
    }

    #[test]
    fn a_table_overlapping_too_much_below_is_cut_early() {
        // Each grandparent is 3 targets: the fourth boundary passes 10
        // targets of overlap, however small the table.
        let gps: Vec<(u32, u64)> = (1..20).map(|i| (i * 2 - 1, 3 * TARGET)).collect();
        let cuts = cut_points(&gps, 20, 1);
        assert_eq!(cuts.first(), Some(&7), "{cuts:?}");
    }
}
