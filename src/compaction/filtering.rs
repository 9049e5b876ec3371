//! Applying a keyspace's compaction filter to the versions a compaction
//! keeps (docs/design/compaction-filter.md).
//!
//! The filter is shown a version only when changing it changes nothing a
//! snapshot reads: it must be its key's newest version in the
//! compaction's input (an older one is either shadowed or kept for a
//! snapshot) and newer than every live snapshot. Only values are shown;
//! tombstones and merge operands pass through.
//!
//! A removal must not uncover an older version: the entry becomes a
//! tombstone at its sequence number, and is dropped outright only where a
//! tombstone would be (the oldest stripe, no deeper level holding the
//! key): then nothing older exists for any reader.

use super::retain::Stripes;
use crate::compaction_filter::{
    CompactionFilter, CompactionFilterContext, CompactionFilterFactory, FilterDecision,
};
use crate::error::Result;
use crate::panics::catch_panic;
use std::sync::Arc;
use strata_sstable::SeqNo;

/// What becomes of a version the retainer kept.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Filtered {
    /// Written as it is (not shown, or the filter kept it).
    Keep,
    /// Written with this value instead.
    Change(Vec<u8>),
    /// Written as a tombstone at the same sequence number.
    Tombstone,
    /// Not written: nothing older remains for any reader.
    Drop,
}

/// One compaction's filter and what it did.
pub(crate) struct FilterRun<'a> {
    filter: Option<Box<dyn CompactionFilter>>,
    level: usize,
    stripes: &'a Stripes,
    /// The smallest sequence number of a version the filter removed or
    /// changed: a snapshot taken at or above it while the compaction ran
    /// would see the change appear (`job.rs` checks before installing).
    pub changed_from: Option<SeqNo>,
}

impl<'a> FilterRun<'a> {
    /// The filter `factory` makes for a compaction described by
    /// `context`; a panicking factory is this compaction's error.
    pub fn new(
        factory: Option<&Arc<dyn CompactionFilterFactory>>,
        context: &CompactionFilterContext,
        stripes: &'a Stripes,
    ) -> Result<Self> {
        let filter = match factory {
            Some(f) => catch_panic("compaction filter factory", || {
                f.create_compaction_filter(context)
            })?,
            None => None,
        };
        Ok(FilterRun {
            filter,
            level: context.level,
            stripes,
            changed_from: None,
        })
    }

    /// Judge a value the retainer kept: `newest_of_key` says it is its
    /// key's first entry in the input; `deeper_may_have_key` is asked only
    /// for a removal in the oldest stripe. A panicking filter is this
    /// compaction's error.
    pub fn judge(
        &mut self,
        newest_of_key: bool,
        user_key: &[u8],
        seqno: SeqNo,
        value: &[u8],
        deeper_may_have_key: impl FnOnce(&[u8]) -> bool,
    ) -> Result<Filtered> {
        let Some(filter) = self.filter.as_mut() else {
            return Ok(Filtered::Keep);
        };
        if !newest_of_key || self.stripes.seen_by_a_snapshot(seqno) {
            return Ok(Filtered::Keep);
        }
        let level = self.level;
        let decision = catch_panic("compaction filter", || {
            filter.filter(level, user_key, value)
        })?;
        let filtered = match decision {
            FilterDecision::Keep => return Ok(Filtered::Keep),
            FilterDecision::ChangeValue(v) => Filtered::Change(v),
            FilterDecision::Remove => {
                if self.stripes.of(seqno) == 0 && !deeper_may_have_key(user_key) {
                    Filtered::Drop
                } else {
                    Filtered::Tombstone
                }
            }
        };
        self.changed_from = Some(self.changed_from.map_or(seqno, |q| q.min(seqno)));
        Ok(filtered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    /// Removes values starting with `-`, upper-cases those starting with
    /// `^`, panics on `!`.
    struct Test;
    impl CompactionFilter for Test {
        fn name(&self) -> &str {
            "test"
        }
        fn filter(&mut self, _: usize, _: &[u8], value: &[u8]) -> FilterDecision {
            match value.first() {
                Some(b'-') => FilterDecision::Remove,
                Some(b'^') => FilterDecision::ChangeValue(value.to_ascii_uppercase()),
                Some(b'!') => panic!("filter meets '!'"),
                _ => FilterDecision::Keep,
            }
        }
    }
    struct TestFactory;
    impl CompactionFilterFactory for TestFactory {
        fn name(&self) -> &str {
            "test"
        }
        fn create_compaction_filter(
            &self,
            _: &CompactionFilterContext,
        ) -> Option<Box<dyn CompactionFilter>> {
            Some(Box::new(Test))
        }
    }

    fn context() -> CompactionFilterContext {
        CompactionFilterContext {
            is_full_compaction: false,
            is_manual_compaction: false,
            level: 1,
            output_level: 2,
            is_bottommost: false,
        }
    }

    /// Judge `(newest, seqno, value)` with live snapshots `live` and the
    /// visible sequence number 100; `deeper` answers the deeper-level
    /// question.
    fn judge(live: &[SeqNo], deeper: bool, newest: bool, seqno: SeqNo, value: &str) -> Filtered {
        let mut all = live.to_vec();
        all.push(100);
        let stripes = Stripes::new(all).with_newest_live(live.iter().copied().max());
        let factory: Arc<dyn CompactionFilterFactory> = Arc::new(TestFactory);
        let mut run = FilterRun::new(Some(&factory), &context(), &stripes).unwrap();
        run.judge(newest, b"k", seqno, value.as_bytes(), |_| deeper)
            .unwrap()
    }

    #[test]
    fn a_removal_is_a_tombstone_unless_nothing_older_can_exist() {
        // No snapshot, nothing deeper: gone.
        assert_eq!(judge(&[], false, true, 50, "-x"), Filtered::Drop);
        // A deeper level may hold an older version: a tombstone hides it.
        assert_eq!(judge(&[], true, true, 50, "-x"), Filtered::Tombstone);
        // A snapshot at 20 keeps an older version in the compaction: the
        // version at 50 is in a newer stripe, so a tombstone.
        assert_eq!(judge(&[20], false, true, 50, "-x"), Filtered::Tombstone);
    }

    #[test]
    fn versions_a_snapshot_sees_and_older_versions_are_never_shown() {
        // A snapshot at 50 reads the version at 50.
        assert_eq!(judge(&[50], false, true, 50, "-x"), Filtered::Keep);
        assert_eq!(judge(&[70], false, true, 50, "^x"), Filtered::Keep);
        // Not the key's newest entry in the input.
        assert_eq!(judge(&[], false, false, 50, "-x"), Filtered::Keep);
        // Shown: a change.
        assert_eq!(
            judge(&[20], false, true, 50, "^x"),
            Filtered::Change(b"^X".to_vec())
        );
    }

    #[test]
    fn a_panicking_filter_is_the_compactions_error() {
        let stripes = Stripes::new(vec![100]).with_newest_live(None);
        let factory: Arc<dyn CompactionFilterFactory> = Arc::new(TestFactory);
        let mut run = FilterRun::new(Some(&factory), &context(), &stripes).unwrap();
        let err = run.judge(true, b"k", 5, b"!", |_| false).unwrap_err();
        assert!(
            matches!(&err, Error::Panic { place: "compaction filter", message } if message.contains("'!'")),
            "{err}"
        );
    }
}
