//! A compaction filter whose decisions a model can predict, shared by the
//! model tests.
//!
//! Which versions a compaction filter sees depends on when compactions run,
//! so a model cannot know whether a value was filtered yet. These
//! decisions are ones readers cannot tell from the value left as it was,
//! once read through [`norm`]: a value starting with `#` means "absent"
//! to the application (the filter removes it; the merge operator treats
//! it as no base), and one starting with `^` is case-insensitive (the
//! filter upper-cases it; operands merged onto it hold no letters, so it
//! does not matter whether they were merged before or after). The model stores normalised values and the
//! tests normalise what they read, so both outcomes agree; a removal that
//! uncovered an older version, or a change anywhere else, still shows.

// Not every test binary that includes `common` uses all of it.
#![allow(dead_code)]

use std::sync::Arc;
use strata::{
    Append, CompactionFilter, CompactionFilterContext, CompactionFilterFactory, FilterDecision,
    MergeError, MergeOperator,
};

/// `#…` is removed, `^…` upper-cased, anything else kept.
pub struct MarkFilter;

impl CompactionFilter for MarkFilter {
    fn name(&self) -> &str {
        "mark-filter"
    }
    fn filter(&mut self, _level: usize, _key: &[u8], value: &[u8]) -> FilterDecision {
        match value.first() {
            Some(b'#') => FilterDecision::Remove,
            Some(b'^') => FilterDecision::ChangeValue(value.to_ascii_uppercase()),
            _ => FilterDecision::Keep,
        }
    }
}

impl CompactionFilterFactory for MarkFilter {
    fn name(&self) -> &str {
        "mark-filter"
    }
    fn create_compaction_filter(
        &self,
        _context: &CompactionFilterContext,
    ) -> Option<Box<dyn CompactionFilter>> {
        Some(Box::new(MarkFilter))
    }
}

pub fn mark_filter() -> Arc<dyn CompactionFilterFactory> {
    Arc::new(MarkFilter)
}

/// `Append` with `,`, where a base starting with `#` counts as none.
pub struct MarkAwareAppend;

impl MergeOperator for MarkAwareAppend {
    fn name(&self) -> &str {
        "mark-aware-append"
    }
    fn full_merge(
        &self,
        key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Result<Vec<u8>, MergeError> {
        let existing = existing.filter(|e| !e.starts_with(b"#"));
        Append::with_separator(",").full_merge(key, existing, operands)
    }
    fn partial_merge(&self, key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        Append::with_separator(",").partial_merge(key, operands)
    }
}

/// What a value means to the application: `None` for `#…`, `^…`
/// upper-cased.
pub fn norm(value: &[u8]) -> Option<Vec<u8>> {
    match value.first() {
        Some(b'#') => None,
        Some(b'^') => Some(value.to_ascii_uppercase()),
        _ => Some(value.to_vec()),
    }
}

/// Entries read from the database, normalised (`#…` ones left out).
pub fn norm_entries(entries: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    entries
        .into_iter()
        .filter_map(|(k, v)| norm(&v).map(|v| (k, v)))
        .collect()
}
