//! Compaction filters: what they are shown, what their decisions become,
//! and that snapshots, older versions and other keyspaces are safe from
//! them (docs/design/compaction-filter.md).

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use strata::fs::MemFileSystem;
use strata::{
    Append, CompactionFilter, CompactionFilterContext, CompactionFilterFactory, Db, Error,
    FilterDecision, KeyspaceOptions, Options,
};

/// Removes values starting with `-`, upper-cases those starting with
/// `^`, panics on `!`; records every value it is shown.
struct Test {
    shown: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl CompactionFilter for Test {
    fn name(&self) -> &str {
        "test"
    }
    fn filter(&mut self, _level: usize, _key: &[u8], value: &[u8]) -> FilterDecision {
        self.shown.lock().unwrap().push(value.to_vec());
        match value.first() {
            Some(b'-') => FilterDecision::Remove,
            Some(b'^') => FilterDecision::ChangeValue(value.to_ascii_uppercase()),
            Some(b'!') => panic!("the filter met '!'"),
            _ => FilterDecision::Keep,
        }
    }
}

#[derive(Default)]
struct TestFactory {
    shown: Arc<Mutex<Vec<Vec<u8>>>>,
    contexts: Mutex<Vec<CompactionFilterContext>>,
}

impl CompactionFilterFactory for TestFactory {
    fn name(&self) -> &str {
        "test"
    }
    fn create_compaction_filter(
        &self,
        context: &CompactionFilterContext,
    ) -> Option<Box<dyn CompactionFilter>> {
        self.contexts.lock().unwrap().push(context.clone());
        Some(Box::new(Test {
            shown: Arc::clone(&self.shown),
        }))
    }
}

impl TestFactory {
    fn shown(&self) -> Vec<String> {
        let shown = self.shown.lock().unwrap();
        shown
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }
}

fn open(fs: &MemFileSystem, factory: &Arc<TestFactory>) -> Db {
    let options = Options {
        fs: Arc::new(fs.clone()),
        compaction_filter_factory: Some(Arc::clone(factory) as Arc<dyn CompactionFilterFactory>),
        merge_operator: Some(Arc::new(Append::with_separator(","))),
        ..Options::default()
    };
    Db::open("/db", options).unwrap()
}

fn get(db: &Db, key: &str) -> Option<String> {
    db.get(key)
        .unwrap()
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
}

#[test]
fn removed_values_go_and_changed_values_change_at_compaction_not_at_flush() {
    let fs = MemFileSystem::new();
    let factory = Arc::new(TestFactory::default());
    let db = open(&fs, &factory);
    db.put("a", "keep").unwrap();
    db.put("b", "-gone").unwrap();
    db.put("c", "^loud").unwrap();
    db.flush().unwrap();
    // Flushes never consult the filter.
    assert!(factory.shown().is_empty());
    assert_eq!(get(&db, "b").as_deref(), Some("-gone"));
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(factory.shown(), ["keep", "-gone", "^loud"]);
    assert_eq!(get(&db, "a").as_deref(), Some("keep"));
    assert_eq!(get(&db, "b"), None);
    assert_eq!(get(&db, "c").as_deref(), Some("^LOUD"));
    let contexts = factory.contexts.lock().unwrap().clone();
    assert!(!contexts.is_empty());
    assert!(contexts.iter().all(|c| c.is_manual_compaction));
    assert!(contexts
        .iter()
        .any(|c| c.is_bottommost && c.is_full_compaction));
    drop(db);
    // And so after a reopen.
    let db = open(&fs, &factory);
    assert_eq!(get(&db, "b"), None);
    assert_eq!(get(&db, "c").as_deref(), Some("^LOUD"));
}

#[test]
fn a_removed_value_does_not_uncover_an_older_version() {
    let fs = MemFileSystem::new();
    let factory = Arc::new(TestFactory::default());
    let db = open(&fs, &factory);
    db.put("k", "old").unwrap();
    db.flush().unwrap();
    // The snapshot keeps "old" in the compaction's output; the newer
    // value, seen by no snapshot, is removed: as a tombstone, or a reader
    // without the snapshot would see "old" again.
    let snapshot = db.snapshot();
    db.put("k", "-new").unwrap();
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(factory.shown(), ["-new"]);
    assert_eq!(get(&db, "k"), None);
    assert_eq!(snapshot.get("k").unwrap().as_deref(), Some(&b"old"[..]));
    drop(snapshot);
    drop(db);
    let db = open(&fs, &factory);
    assert_eq!(get(&db, "k"), None);
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(get(&db, "k"), None);
}

#[test]
fn a_version_a_snapshot_reads_is_never_shown() {
    let fs = MemFileSystem::new();
    let factory = Arc::new(TestFactory::default());
    let db = open(&fs, &factory);
    db.put("k", "-x").unwrap();
    db.put("l", "^y").unwrap();
    let snapshot = db.snapshot();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert!(factory.shown().is_empty(), "{:?}", factory.shown());
    assert_eq!(get(&db, "k").as_deref(), Some("-x"));
    assert_eq!(get(&db, "l").as_deref(), Some("^y"));
    assert_eq!(snapshot.get("k").unwrap().as_deref(), Some(&b"-x"[..]));
    // Without the snapshot, the next compaction filters them.
    drop(snapshot);
    // Keys on both sides of them, so the next compaction rewrites them.
    db.put("a", "unrelated").unwrap();
    db.put("z", "unrelated").unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(get(&db, "k"), None);
    assert_eq!(get(&db, "l").as_deref(), Some("^Y"));
}

#[test]
fn merge_operands_and_tombstones_pass_through_unseen() {
    let fs = MemFileSystem::new();
    let factory = Arc::new(TestFactory::default());
    let db = open(&fs, &factory);
    db.merge("m", "-a").unwrap();
    db.merge("m", "b").unwrap();
    db.put("d", "x").unwrap();
    db.delete("d").unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    // The operands (and the value the compaction merged them into) are
    // not shown; a tombstone is not either.
    assert!(factory.shown().is_empty(), "{:?}", factory.shown());
    assert_eq!(get(&db, "m").as_deref(), Some("-a,b"));
    assert_eq!(get(&db, "d"), None);
}

#[test]
fn each_keyspace_has_its_own_filter() {
    let fs = MemFileSystem::new();
    let factory = Arc::new(TestFactory::default());
    let options = Options {
        fs: Arc::new(fs.clone()),
        ..Options::default()
    };
    let db = Db::open("/db", options).unwrap();
    let filtered = db
        .keyspace_with(
            "filtered",
            KeyspaceOptions {
                compaction_filter_factory: Some(
                    Arc::clone(&factory) as Arc<dyn CompactionFilterFactory>
                ),
                ..KeyspaceOptions::default()
            },
        )
        .unwrap();
    db.put("k", "-stays").unwrap();
    filtered.put("k", "-goes").unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    filtered.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(get(&db, "k").as_deref(), Some("-stays"));
    assert_eq!(filtered.get("k").unwrap(), None);
    assert_eq!(factory.shown(), ["-goes"]);
}

#[test]
fn a_panicking_filter_fails_its_compaction_not_the_process() {
    let fs = MemFileSystem::new();
    let factory = Arc::new(TestFactory::default());
    let db = open(&fs, &factory);
    db.put("a", "fine").unwrap();
    db.put("b", "!boom").unwrap();
    let err = db.compact_range::<&[u8], _>(..).unwrap_err();
    let panic = match &err {
        Error::Background(inner) => &**inner,
        other => other,
    };
    assert!(
        matches!(panic, Error::Panic { place: "compaction filter", message } if message.contains("'!'")),
        "{err}"
    );
    // A background error: writes stop; what was written is intact.
    assert!(db.put("c", "x").is_err());
    assert_eq!(get(&db, "b").as_deref(), Some("!boom"));
    drop(db);
    let db = Db::open(
        "/db",
        Options {
            fs: Arc::new(fs.clone()),
            merge_operator: Some(Arc::new(Append::with_separator(","))),
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(get(&db, "a").as_deref(), Some("fine"));
    assert_eq!(get(&db, "b").as_deref(), Some("!boom"));
}

#[test]
fn a_panicking_filter_in_a_background_compaction_is_the_background_error() {
    let fs = MemFileSystem::new();
    let factory = Arc::new(TestFactory::default());
    let options = Options {
        fs: Arc::new(fs.clone()),
        compaction_filter_factory: Some(Arc::clone(&factory) as Arc<dyn CompactionFilterFactory>),
        level0_file_num_compaction_trigger: 2,
        ..Options::default()
    };
    let db = Db::open("/db", options).unwrap();
    db.put("b", "!boom").unwrap();
    db.flush().unwrap();
    db.put("a", "fine").unwrap();
    db.flush().unwrap();
    let err = db.wait_for_compactions().unwrap_err();
    assert!(
        matches!(&err, Error::Background(inner) if matches!(&**inner, Error::Panic { place: "compaction filter", .. })),
        "{err}"
    );
    assert!(db.put("c", "x").is_err());
    assert_eq!(get(&db, "b").as_deref(), Some("!boom"));
}

/// Takes a snapshot of its database the first time it is shown a value:
/// a snapshot taken while a compaction runs, after it read the live ones.
struct SnapshotTaker {
    db: Arc<Mutex<Option<Db>>>,
    taken: Arc<Mutex<Option<strata::Snapshot>>>,
    fired: Arc<AtomicBool>,
}

impl CompactionFilter for SnapshotTaker {
    fn name(&self) -> &str {
        "snapshot-taker"
    }
    fn filter(&mut self, _level: usize, _key: &[u8], _value: &[u8]) -> FilterDecision {
        if !self.fired.swap(true, Ordering::SeqCst) {
            *self.taken.lock().unwrap() = self.db.lock().unwrap().as_ref().map(Db::snapshot);
        }
        FilterDecision::Remove
    }
}

impl CompactionFilterFactory for SnapshotTaker {
    fn name(&self) -> &str {
        "snapshot-taker"
    }
    fn create_compaction_filter(
        &self,
        _context: &CompactionFilterContext,
    ) -> Option<Box<dyn CompactionFilter>> {
        Some(Box::new(SnapshotTaker {
            db: Arc::clone(&self.db),
            taken: Arc::clone(&self.taken),
            fired: Arc::clone(&self.fired),
        }))
    }
}

#[test]
fn a_snapshot_taken_during_a_filtering_compaction_keeps_what_it_reads() {
    let db_slot = Arc::new(Mutex::new(None));
    let taken = Arc::new(Mutex::new(None));
    let factory = SnapshotTaker {
        db: Arc::clone(&db_slot),
        taken: Arc::clone(&taken),
        fired: Arc::new(AtomicBool::new(false)),
    };
    let options = Options {
        fs: Arc::new(MemFileSystem::new()),
        compaction_filter_factory: Some(Arc::new(factory)),
        ..Options::default()
    };
    let db = Db::open("/db", options).unwrap();
    *db_slot.lock().unwrap() = Some(db.clone());
    db.put("k", "v").unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    let snapshot = taken.lock().unwrap().take().unwrap();
    // The snapshot reads "v": the compaction that removed it is not
    // installed under it.
    assert_eq!(snapshot.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(get(&db, "k").as_deref(), Some("v"));
    drop(snapshot);
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(get(&db, "k"), None);
    *db_slot.lock().unwrap() = None;
}

/// A manual compaction rewrites the last level for a filter, even with no
/// tombstone there (RocksDB's `kIfHaveCompactionFilter`): a value the
/// filter could not see earlier (a snapshot protected it) is filtered
/// once the snapshot is gone. Before, a lone last-level table without
/// tombstones was never rewritten, so the filter never saw it again.
#[test]
fn compact_range_shows_the_last_level_to_the_filter() {
    let fs = MemFileSystem::new();
    let factory = Arc::new(TestFactory::default());
    let db = open(&fs, &factory);
    db.put("k", "-x").unwrap();
    let snapshot = db.snapshot();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert!(factory.shown().is_empty(), "{:?}", factory.shown());
    drop(snapshot);
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(factory.shown(), ["-x"]);
    assert_eq!(get(&db, "k"), None);
}

/// Takes a snapshot whenever the filter is shown a value, and keeps it.
struct SnapshotHoarder {
    db: Arc<Mutex<Option<Db>>>,
    taken: Arc<Mutex<Vec<strata::Snapshot>>>,
    runs: Arc<std::sync::atomic::AtomicUsize>,
}

impl CompactionFilter for SnapshotHoarder {
    fn name(&self) -> &str {
        "snapshot-hoarder"
    }
    fn filter(&mut self, _level: usize, _key: &[u8], _value: &[u8]) -> FilterDecision {
        if let Some(db) = self.db.lock().unwrap().as_ref() {
            self.taken.lock().unwrap().push(db.snapshot());
        }
        FilterDecision::ChangeValue(b"changed".to_vec())
    }
}

impl CompactionFilterFactory for SnapshotHoarder {
    fn name(&self) -> &str {
        "snapshot-hoarder"
    }
    fn create_compaction_filter(
        &self,
        _context: &CompactionFilterContext,
    ) -> Option<Box<dyn CompactionFilter>> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        Some(Box::new(SnapshotHoarder {
            db: Arc::clone(&self.db),
            taken: Arc::clone(&self.taken),
            runs: Arc::clone(&self.runs),
        }))
    }
}

/// A manual compaction whose run was discarded (a snapshot taken during
/// it reads what the filter changed) is redone at once: the redo keeps
/// that snapshot's versions, installs, and the data leaves L0. Before,
/// `compact_range` returned Ok with its work thrown away and the data
/// left where it was.
#[test]
fn a_discarded_manual_compaction_is_redone_and_installs() {
    let db_slot = Arc::new(Mutex::new(None));
    let taken = Arc::new(Mutex::new(Vec::new()));
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let factory = SnapshotHoarder {
        db: Arc::clone(&db_slot),
        taken: Arc::clone(&taken),
        runs: Arc::clone(&runs),
    };
    let options = Options {
        fs: Arc::new(MemFileSystem::new()),
        compaction_filter_factory: Some(Arc::new(factory)),
        ..Options::default()
    };
    let db = Db::open("/db", options).unwrap();
    *db_slot.lock().unwrap() = Some(db.clone());
    for i in 0..10 {
        db.put(format!("k{i}"), "v").unwrap();
    }
    db.flush().unwrap();
    assert_eq!(db.property("strata.num-files-at-level0").unwrap(), "1");
    db.compact_range::<&[u8], _>(..).unwrap();
    *db_slot.lock().unwrap() = None;
    assert_eq!(db.property("strata.num-files-at-level0").unwrap(), "0");
    // The discarded run, then the redo (shown nothing: the snapshots
    // taken in the first protect every version).
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let snapshots = std::mem::take(&mut *taken.lock().unwrap());
    assert!(!snapshots.is_empty());
    for s in &snapshots {
        assert_eq!(s.get("k3").unwrap().as_deref(), Some(&b"v"[..]));
    }
    assert_eq!(get(&db, "k3").as_deref(), Some("v"));
    // Once they are gone, the filter changes the values.
    drop(snapshots);
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(get(&db, "k3").as_deref(), Some("changed"));
}
