//! Where a table's data blocks may lie in its data region
//! (`0..strata.data_bytes`), by format version and alignment: the rule
//! the index check holds handles to, and the one verification and
//! readahead use to tell padding and a sequential scan.
//!
//! ```text
//! back to back (versions 1, 3 and 4 without alignment):
//!   | block 0 | block 1 | block 2 |                      data_bytes = end of block 2
//! padded after every block (versions 2, 3 and 4 with alignment A):
//!   | block 0 |000| block 1 |000| block 2 |00|          every block on a multiple of A,
//!                                                      data_bytes a multiple of A
//! padded only where it saves a read (version 5):
//!   | block 0 | block 1 |0| block 2 | block 3 |         a block starts right after the
//!                                                      previous one or, after zeros, on
//!                                                      the next multiple; data_bytes =
//!                                                      end of the last block
//! ```
//! The writer (`table_builder::padding_before`) pads in version 5 only
//! before a block that would otherwise span more units than its size
//! needs (one that fits a unit: that would straddle two); a reader
//! accepts padding before any block, as long as it is fewer than `A`
//! zeros ending on a multiple of `A`, so the writer's choice can change
//! without a new version.

use crate::footer::FORMAT_VERSION_ALIGN_FITTING;

/// How the data blocks of a table follow each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Padding {
    /// Each block starts where the previous one ends (its trailer
    /// included); the region ends where the last does.
    None,
    /// Zeros after every block, the last included, up to the next
    /// multiple of the alignment (versions 2 to 4 with an alignment).
    AfterEvery(u64),
    /// A block starts where the previous one ends or on the next multiple
    /// of the alignment, the zeros between being padding; the region ends
    /// where the last block does (version 5).
    WhereItSavesARead(u64),
}

/// Where a table's data blocks lie: in `0..end`, laid out as `padding`
/// says.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DataLayout {
    pub(crate) end: u64,
    pub(crate) padding: Padding,
}

impl DataLayout {
    /// The layout of a table of format `version` whose properties give
    /// `alignment` (validated against the version beforehand) and
    /// `data_bytes`.
    pub(crate) fn new(version: u32, alignment: u64, data_bytes: u64) -> DataLayout {
        let padding = match alignment {
            0 => Padding::None,
            a if version >= FORMAT_VERSION_ALIGN_FITTING => Padding::WhereItSavesARead(a),
            a => Padding::AfterEvery(a),
        };
        DataLayout {
            end: data_bytes,
            padding,
        }
    }

    /// Whether a data block may start at `next` after one that ends (with
    /// its trailer) at `end`. The first block starts at 0: after an
    /// "end" of 0.
    pub(crate) fn may_follow(&self, end: u64, next: u64) -> bool {
        match self.padding {
            Padding::None => next == end,
            Padding::AfterEvery(a) => end.checked_next_multiple_of(a) == Some(next),
            Padding::WhereItSavesARead(a) => {
                next == end || end.checked_next_multiple_of(a) == Some(next)
            }
        }
    }

    /// Whether the data region may end at [`DataLayout::end`] after a
    /// last block ending at `end` (0 for a table without data blocks).
    pub(crate) fn may_end_after(&self, end: u64) -> bool {
        match self.padding {
            Padding::None | Padding::WhereItSavesARead(_) => self.end == end,
            Padding::AfterEvery(a) => end.checked_next_multiple_of(a) == Some(self.end),
        }
    }
}

/// Whether a block at `next` continues a scan past one ending at `end`,
/// in a table whose data blocks are aligned to `alignment` (0: none):
/// it starts at `end`, or (aligned, any version) on the next multiple.
pub(crate) fn follows_in_scan(end: u64, next: u64, alignment: u64) -> bool {
    next == end || (alignment > 0 && end.checked_next_multiple_of(alignment) == Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_version_accepts_its_own_padding_and_no_other() {
        let back_to_back = DataLayout::new(1, 0, 300);
        let every = DataLayout::new(2, 128, 384);
        let fitting = DataLayout::new(5, 128, 300);
        // A block ending at 100: the next at 100 or at 128.
        assert!(back_to_back.may_follow(100, 100));
        assert!(!back_to_back.may_follow(100, 128));
        assert!(!every.may_follow(100, 100));
        assert!(every.may_follow(100, 128));
        assert!(fitting.may_follow(100, 100));
        assert!(fitting.may_follow(100, 128));
        // Never a gap of a whole unit, nor one ending off a multiple.
        for layout in [back_to_back, every, fitting] {
            assert!(!layout.may_follow(100, 256), "{layout:?}");
            assert!(!layout.may_follow(100, 120), "{layout:?}");
            assert!(!layout.may_follow(100, 99), "{layout:?}");
        }
        // A block ending on a multiple is followed right there.
        assert!(every.may_follow(256, 256) && fitting.may_follow(256, 256));
        // The region's end: right after the last block, except in
        // versions 2 to 4 where it is padded to a multiple too.
        assert!(back_to_back.may_end_after(300));
        assert!(fitting.may_end_after(300) && !fitting.may_end_after(280));
        assert!(every.may_end_after(300) && !every.may_end_after(200));
        assert!(!DataLayout::new(5, 128, 384).may_end_after(300));
        // Versions 3 and 4 lay out as 1 or 2, by the alignment.
        assert_eq!(DataLayout::new(3, 0, 0).padding, Padding::None);
        assert_eq!(DataLayout::new(4, 64, 0).padding, Padding::AfterEvery(64));
        assert_eq!(
            DataLayout::new(5, 64, 0).padding,
            Padding::WhereItSavesARead(64)
        );
    }

    #[test]
    fn a_scan_continues_at_the_end_or_the_next_multiple() {
        assert!(follows_in_scan(100, 100, 0));
        assert!(!follows_in_scan(100, 128, 0));
        assert!(follows_in_scan(100, 100, 128));
        assert!(follows_in_scan(100, 128, 128));
        assert!(!follows_in_scan(100, 256, 128));
        assert!(!follows_in_scan(u64::MAX, 0, 128));
    }
}
