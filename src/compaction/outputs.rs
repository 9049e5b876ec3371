//! The output tables of one compaction: cut by size and by overlap with
//! the level below (`cut.rs`), only ever between two user keys, each
//! holding the range tombstones of its own key range.
//!
//! Where the tables go is the [`OutputSink`]'s business (files of the
//! database in `job.rs`, plain buffers in the tests), so the cutting and
//! the tombstones' truncation are tested without a database.

use super::cut::CutPolicy;
use super::range_dels::PendingTombstones;
use crate::error::{Error, Result};
use crate::version::TableFile;
use std::io::Write;
use std::sync::Arc;
use strata_sstable::{TableBuilder, ValueKind};

/// Where a compaction's output tables are written.
pub(crate) trait OutputSink {
    type Writer: Write;

    /// Start the next output table.
    fn create(&mut self) -> Result<TableBuilder<Self::Writer>>;

    /// The error for a failure `e` of the table being written.
    fn write_error(&self, e: strata_sstable::Error) -> Error;

    /// Finish the table started last (footer, sync, open).
    fn finish(&mut self, builder: TableBuilder<Self::Writer>) -> Result<()>;

    /// An entry was added to the table started last (what a sink tracks
    /// of its tables' contents, such as blob references).
    fn added(&mut self, _kind: ValueKind, _value: &[u8]) {}
}

/// The tables being written by one compaction.
pub(crate) struct Outputs<'g, S: OutputSink> {
    sink: S,
    current: Option<TableBuilder<S::Writer>>,
    /// The retained range tombstones not yet in a table.
    tombstones: PendingTombstones,
    /// The level below the output level, in key order.
    grandparents: &'g [Arc<TableFile>],
    target_file_size: u64,
    cut: CutPolicy,
    /// The user key added last: a cut must come after it.
    last_key: Vec<u8>,
}

impl<'g, S: OutputSink> Outputs<'g, S> {
    pub fn new(
        sink: S,
        tombstones: PendingTombstones,
        grandparents: &'g [Arc<TableFile>],
        target_file_size: u64,
    ) -> Self {
        Outputs {
            sink,
            current: None,
            tombstones,
            grandparents,
            target_file_size,
            cut: CutPolicy::default(),
            last_key: Vec::new(),
        }
    }

    /// Called before the first entry of each new user key (whether kept or
    /// not): finish the current table before `user_key` where the cut
    /// policy says so.
    pub fn maybe_cut(&mut self, user_key: &[u8]) -> Result<()> {
        let grandparents = self.grandparents.iter().map(|g| &g.meta);
        let size = self.current.as_ref().map(|b| b.estimated_file_size());
        if self
            .cut
            .cut_before(grandparents, user_key, size, self.target_file_size)
        {
            self.finish_current(Some(user_key))?;
        }
        Ok(())
    }

    /// Add an entry to the current table, starting one if none is open.
    pub fn add(
        &mut self,
        user_key: &[u8],
        seqno: u64,
        kind: ValueKind,
        value: &[u8],
    ) -> Result<()> {
        let builder = match &mut self.current {
            Some(builder) => builder,
            None => self.current.insert(self.sink.create()?),
        };
        if let Err(e) = builder.add(user_key, seqno, kind, value) {
            return Err(self.sink.write_error(e));
        }
        self.sink.added(kind, value);
        if self.last_key != user_key {
            self.last_key.clear();
            self.last_key.extend_from_slice(user_key);
        }
        Ok(())
    }

    /// Finish the last table. Tombstones no table has taken (every point
    /// around them was dropped) go to the open table, or to a table of
    /// their own: they still delete keys in the levels below.
    pub fn finish(&mut self) -> Result<()> {
        if self.current.is_none() && !self.tombstones.is_empty() {
            self.current = Some(self.sink.create()?);
        }
        self.finish_current(None)
    }

    /// The sink.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// The sink, with the table being written (if any) dropped unfinished.
    pub fn into_sink(self) -> S {
        self.sink
    }

    /// Finish the current table, ending before user key `cut` (`None`:
    /// the compaction's last table), with the pending tombstones of its
    /// range. Its bounds then end at `cut` exclusively if a tombstone
    /// reaches it, and the next table starts at `cut`: adjacent tables
    /// share no key and leave no gap in what the tombstones cover.
    fn finish_current(&mut self, cut: Option<&[u8]>) -> Result<()> {
        let Some(mut builder) = self.current.take() else {
            return Ok(());
        };
        if let Some(cut) = cut {
            // A user key split across two tables of a level would have its
            // newer versions in one and older in the other, and a tombstone
            // cut at it would cover neither side exactly (RocksDB's
            // truncation bugs). The merge cuts only at new user keys.
            assert!(
                self.last_key.as_slice() < cut,
                "compaction output cut at {:?}, not after the last key added {:?}",
                cut.escape_ascii().to_string(),
                self.last_key.escape_ascii().to_string()
            );
        }
        let tombstones = self.tombstones.take_before(cut);
        if !tombstones.is_empty() {
            if let Err(e) = builder.add_fragments(&tombstones) {
                return Err(self.sink.write_error(e));
            }
        }
        self.sink.finish(builder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compaction::range_dels::PendingTombstones;
    use crate::filename::table_path;
    use crate::fs::{FileSystem, MemFileSystem};
    use crate::options::Options;
    use crate::version::{invariants, FileMeta, LargestBound, TableOpener, Version, NUM_LEVELS};
    use bytes::Bytes;
    use std::path::PathBuf;
    use strata_sstable::{FragmentedRangeTombstones, RangeTombstone, TableOptions};

    /// Tables written to a `MemFileSystem` and opened as L1 tables.
    struct MemTables {
        fs: Arc<MemFileSystem>,
        opener: TableOpener,
        done: Vec<Arc<TableFile>>,
    }

    impl MemTables {
        fn new() -> MemTables {
            let fs = Arc::new(MemFileSystem::new());
            let dir = PathBuf::from("/db");
            fs.create_dir_all(&dir).unwrap();
            let opener = TableOpener::new(fs.clone(), dir, &Options::default());
            MemTables {
                fs,
                opener,
                done: Vec::new(),
            }
        }
    }

    impl OutputSink for MemTables {
        type Writer = Vec<u8>;

        fn create(&mut self) -> Result<TableBuilder<Vec<u8>>> {
            Ok(TableBuilder::new(Vec::new(), TableOptions::default()).unwrap())
        }

        fn write_error(&self, e: strata_sstable::Error) -> Error {
            Error::InvalidArgument(e.to_string())
        }

        fn finish(&mut self, builder: TableBuilder<Vec<u8>>) -> Result<()> {
            let built = builder.finish().unwrap();
            let number = self.done.len() as u64 + 1;
            let path = table_path(&self.opener.dir, number);
            self.fs.write_durable(&path, &built.writer);
            let meta = FileMeta::from_built(number, &built);
            self.done.push(self.opener.open(meta, 1)?);
            Ok(())
        }
    }

    fn one_tombstone(start: &str, end: &str, seqno: u64) -> PendingTombstones {
        PendingTombstones::new(&FragmentedRangeTombstones::fragment([RangeTombstone {
            start: Bytes::copy_from_slice(start.as_bytes()),
            end: Some(Bytes::copy_from_slice(end.as_bytes())),
            seqno,
        }]))
    }

    /// `(smallest, largest, bound)` of each table.
    fn bounds(tables: &[Arc<TableFile>]) -> Vec<(String, String, LargestBound)> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        tables
            .iter()
            .map(|t| {
                (
                    text(&t.meta.smallest),
                    text(&t.meta.largest),
                    t.meta.largest_bound,
                )
            })
            .collect()
    }

    fn bound(smallest: &str, largest: &str, b: LargestBound) -> (String, String, LargestBound) {
        (smallest.to_owned(), largest.to_owned(), b)
    }

    #[test]
    fn one_tombstone_over_three_outputs_is_cut_at_each_cut_key() {
        // [a, z)@9 over points b, d, f (older), cut into one table per
        // point by a 1-byte target.
        let mut out = Outputs::new(MemTables::new(), one_tombstone("a", "z", 9), &[], 1);
        for key in ["b", "d", "f"] {
            out.maybe_cut(key.as_bytes()).unwrap();
            out.add(key.as_bytes(), 5, ValueKind::Put, b"v").unwrap();
        }
        out.finish().unwrap();
        let sink = out.into_sink();
        use LargestBound::{Excluded, Included};
        assert_eq!(
            bounds(&sink.done),
            vec![
                bound("a", "d", Excluded),
                bound("d", "f", Excluded),
                bound("f", "z", Excluded)
            ]
        );
        // Each table holds exactly its own part of the tombstone.
        let parts: Vec<Vec<(Bytes, Option<Bytes>, u64)>> = sink
            .done
            .iter()
            .map(|t| {
                t.table()
                    .range_tombstones()
                    .map(|l| l.fragments().map(|f| (f.start, f.end, f.seqno)).collect())
                    .unwrap_or_default()
            })
            .collect();
        let part =
            |s: &'static str, e: &'static str| vec![(Bytes::from(s), Some(Bytes::from(e)), 9)];
        assert_eq!(parts, vec![part("a", "d"), part("d", "f"), part("f", "z")]);
        // As one level, they pass the version invariants (adjacent tables
        // share a key only across an exclusive end, bounds match tables).
        let mut levels: [Vec<Arc<TableFile>>; NUM_LEVELS] = Default::default();
        levels[1] = sink.done.clone();
        let version = Arc::new(Version::from_levels(levels));
        invariants::check(&[version], &*sink.fs, &sink.opener.dir, true).unwrap();
        // Without a tombstone, the same cuts give point bounds only.
        let mut out = Outputs::new(MemTables::new(), PendingTombstones::default(), &[], 1);
        for key in ["b", "d", "f"] {
            out.maybe_cut(key.as_bytes()).unwrap();
            out.add(key.as_bytes(), 5, ValueKind::Put, b"v").unwrap();
        }
        out.finish().unwrap();
        assert_eq!(
            bounds(&out.into_sink().done),
            vec![
                bound("b", "b", Included),
                bound("d", "d", Included),
                bound("f", "f", Included)
            ]
        );
    }

    #[test]
    fn tombstones_left_after_the_last_point_get_a_table_of_their_own() {
        // Every point was dropped (no table open): the tombstone is
        // written alone, as it still deletes keys of the levels below.
        let mut out = Outputs::new(MemTables::new(), one_tombstone("c", "k", 4), &[], 1000);
        out.maybe_cut(b"d").unwrap();
        out.finish().unwrap();
        let done = out.into_sink().done;
        assert_eq!(bounds(&done), vec![bound("c", "k", LargestBound::Excluded)]);
        assert_eq!(done[0].table().properties().num_entries, 0);
        // Nothing at all: no table.
        let mut out = Outputs::new(MemTables::new(), PendingTombstones::default(), &[], 1000);
        out.finish().unwrap();
        assert!(out.into_sink().done.is_empty());
    }

    #[test]
    #[should_panic(expected = "not after the last key added")]
    fn a_cut_inside_a_user_key_is_refused() {
        let mut out = Outputs::new(MemTables::new(), PendingTombstones::default(), &[], 1);
        out.add(b"k", 5, ValueKind::Put, b"v").unwrap();
        out.finish_current(Some(b"k")).unwrap();
    }
}
