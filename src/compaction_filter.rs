//! Compaction filters: the application drops or rewrites values while
//! compaction copies them (RocksDB: `CompactionFilter`,
//! `CompactionFilterFactory`). docs/design/compaction-filter.md has the
//! rules; `compaction/filtering.rs` applies them.

use std::fmt;

/// What a compaction does with the value a filter was shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterDecision {
    /// Write it out as it is.
    Keep,
    /// Delete the key: the version becomes a tombstone at its sequence
    /// number (so no older version of the key shows through), or
    /// disappears where nothing older can exist (no deeper level holds
    /// the key and no snapshot sees an older version).
    Remove,
    /// Write this value instead, at the same sequence number (an
    /// expiring value keeps its expiry).
    ChangeValue(Vec<u8>),
}

/// What a factory is told about the compaction a filter is made for
/// (RocksDB: `CompactionFilter::Context`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionFilterContext {
    /// The compaction reads every table of the keyspace.
    pub is_full_compaction: bool,
    /// The compaction was asked for ([`Db::compact_range`](crate::Db::compact_range)).
    pub is_manual_compaction: bool,
    /// The level the compaction reads from.
    pub level: usize,
    /// The level it writes to.
    pub output_level: usize,
    /// No level below the output holds any key of the compaction's range:
    /// a removed key is dropped without a tombstone unless a snapshot
    /// still sees an older version.
    pub is_bottommost: bool,
}

/// Decides, key by key, what a compaction keeps. Made for one
/// compaction by a [`CompactionFilterFactory`] and called from that
/// compaction's thread only.
///
/// It is shown a key's newest version in the compaction when that
/// version is a value (a put, an expiring put not yet expired) that no
/// snapshot sees; never a version a snapshot may read, never a tombstone,
/// never a merge operand (operands pass through untouched, as with
/// RocksDB's default `FilterMergeOperand`). It is not called by flushes.
/// A panic in it fails the compaction as a background error (the
/// database stops writes until reopened); it is never a crash.
///
/// Which versions it is shown depends on when compactions run, so its
/// decisions should be ones the application could have written itself
/// (a delete of an unwanted value, a rewrite the readers accept either
/// way): a reader may see the value before the compaction and the
/// decision after.
///
/// ```
/// use std::sync::Arc;
/// use strata::{CompactionFilter, CompactionFilterContext, CompactionFilterFactory, FilterDecision};
/// /// Removes every value that starts with `#` (a soft-deleted record).
/// struct DropHashes;
/// impl CompactionFilter for DropHashes {
///     fn name(&self) -> &str {
///         "drop-hashes"
///     }
///     fn filter(&mut self, _level: usize, _key: &[u8], value: &[u8]) -> FilterDecision {
///         if value.starts_with(b"#") { FilterDecision::Remove } else { FilterDecision::Keep }
///     }
/// }
/// struct DropHashesFactory;
/// impl CompactionFilterFactory for DropHashesFactory {
///     fn name(&self) -> &str {
///         "drop-hashes"
///     }
///     fn create_compaction_filter(
///         &self,
///         _context: &CompactionFilterContext,
///     ) -> Option<Box<dyn CompactionFilter>> {
///         Some(Box::new(DropHashes))
///     }
/// }
/// # let dir = tempfile::tempdir().unwrap();
/// let options = strata::Options {
///     compaction_filter_factory: Some(Arc::new(DropHashesFactory)),
///     ..Default::default()
/// };
/// let db = strata::Db::open(dir.path(), options)?;
/// db.put("a", "kept")?;
/// db.put("b", "#gone")?;
/// db.compact_range::<&[u8], _>(..)?;
/// assert_eq!(db.get("a")?.as_deref(), Some(&b"kept"[..]));
/// assert_eq!(db.get("b")?, None);
/// # Ok::<(), strata::Error>(())
/// ```
pub trait CompactionFilter: Send {
    /// The filter's name, for logs and errors.
    fn name(&self) -> &str;

    /// What to do with `key`'s newest `value` in a compaction reading
    /// from `level`. RocksDB: `CompactionFilter::FilterV2` for a value.
    fn filter(&mut self, level: usize, key: &[u8], value: &[u8]) -> FilterDecision;
}

/// Makes a [`CompactionFilter`] for each compaction of a keyspace
/// ([`KeyspaceOptions::compaction_filter_factory`](crate::KeyspaceOptions::compaction_filter_factory),
/// [`Options::compaction_filter_factory`](crate::Options::compaction_filter_factory)
/// for the default keyspace). Called from compaction threads at once.
pub trait CompactionFilterFactory: Send + Sync + 'static {
    /// The factory's name (options compare factories by it).
    fn name(&self) -> &str;

    /// The filter for a compaction described by `context`; `None`: this
    /// compaction filters nothing.
    fn create_compaction_filter(
        &self,
        context: &CompactionFilterContext,
    ) -> Option<Box<dyn CompactionFilter>>;
}

/// Factories compare by name, so options holding the same one compare
/// equal (as merge operators do).
impl PartialEq for dyn CompactionFilterFactory {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl fmt::Debug for dyn CompactionFilterFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompactionFilterFactory({:?})", self.name())
    }
}
