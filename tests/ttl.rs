//! Time to live (docs/design/ttl.md): expiring puts read as deletes from
//! their expiry on, in every read path, before and after flushes,
//! compactions and reopens; compaction removes them; tables past
//! `periodic_compaction_seconds` are rewritten with no new writes.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;
use strata::fs::MemFileSystem;
use strata::{
    Append, CompactionFilter, CompactionFilterContext, CompactionFilterFactory, Db, FilterDecision,
    KeyspaceOptions, ManualClock, Options, WriteBatch, WriteOptions,
};

const MINUTE: Duration = Duration::from_secs(60);

fn options(fs: &MemFileSystem, clock: &Arc<ManualClock>) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        clock: Arc::clone(clock) as Arc<dyn strata::Clock>,
        merge_operator: Some(Arc::new(Append::with_separator(","))),
        ..Options::default()
    }
}

fn setup() -> (MemFileSystem, Arc<ManualClock>, Db) {
    let fs = MemFileSystem::new();
    // Some day in 2026, in micros.
    let clock = Arc::new(ManualClock::new(1_780_000_000_000_000));
    let db = Db::open("/db", options(&fs, &clock)).unwrap();
    (fs, clock, db)
}

fn get(db: &Db, key: &str) -> Option<String> {
    db.get(key)
        .unwrap()
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
}

/// Every entry by each read path: forward, backward, and a cursor both
/// ways; all must agree.
fn scan(db: &Db) -> Vec<(String, String)> {
    let show = |(k, v): (strata::Bytes, strata::Bytes)| {
        (
            String::from_utf8(k.to_vec()).unwrap(),
            String::from_utf8(v.to_vec()).unwrap(),
        )
    };
    let forward: Vec<_> = db.iter().map(|r| show(r.unwrap())).collect();
    let mut backward: Vec<_> = db.iter().rev().map(|r| show(r.unwrap())).collect();
    backward.reverse();
    assert_eq!(forward, backward);
    let mut c = db.cursor();
    c.seek_to_first().unwrap();
    let mut by_cursor = Vec::new();
    while let (Some(k), Some(v)) = (c.key(), c.value()) {
        by_cursor.push((
            String::from_utf8(k.to_vec()).unwrap(),
            String::from_utf8(v.to_vec()).unwrap(),
        ));
        c.next().unwrap();
    }
    assert_eq!(forward, by_cursor);
    c.seek_to_last().unwrap();
    let mut back_by_cursor = Vec::new();
    while let (Some(k), Some(v)) = (c.key(), c.value()) {
        back_by_cursor.push((
            String::from_utf8(k.to_vec()).unwrap(),
            String::from_utf8(v.to_vec()).unwrap(),
        ));
        c.prev().unwrap();
    }
    back_by_cursor.reverse();
    assert_eq!(forward, back_by_cursor);
    forward
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Where the data is when it expires: memtable, L0, the last level.
#[derive(Clone, Copy, Debug)]
enum Place {
    Memtable,
    Flushed,
    Compacted,
}

fn settle(db: &Db, place: Place) {
    match place {
        Place::Memtable => {}
        Place::Flushed => db.flush().unwrap(),
        Place::Compacted => db.compact_range::<&[u8], _>(..).unwrap(),
    }
}

#[test]
fn an_expired_value_reads_as_deleted_and_hides_older_versions() {
    for place in [Place::Memtable, Place::Flushed, Place::Compacted] {
        let (_fs, clock, db) = setup();
        db.put("a", "plain").unwrap();
        db.put("b", "old").unwrap();
        settle(&db, place);
        db.put_with_ttl("b", "short", MINUTE).unwrap();
        db.put_with_ttl("c", "long", 2 * MINUTE).unwrap();
        settle(&db, place);
        assert_eq!(
            scan(&db),
            pairs(&[("a", "plain"), ("b", "short"), ("c", "long")]),
            "{place:?}"
        );
        clock.advance(MINUTE - Duration::from_micros(1));
        assert_eq!(get(&db, "b").as_deref(), Some("short"), "{place:?}");
        clock.advance(Duration::from_micros(1));
        // Expired: gone, and "old" stays hidden.
        assert_eq!(get(&db, "b"), None, "{place:?}");
        assert_eq!(
            scan(&db),
            pairs(&[("a", "plain"), ("c", "long")]),
            "{place:?}"
        );
        clock.advance(MINUTE);
        assert_eq!(scan(&db), pairs(&[("a", "plain")]), "{place:?}");
    }
}

#[test]
fn expiry_goes_by_the_clock_for_snapshots_too() {
    let (_fs, clock, db) = setup();
    db.put("k", "old").unwrap();
    db.put_with_ttl("k", "new", MINUTE).unwrap();
    let snapshot = db.snapshot();
    assert_eq!(snapshot.get("k").unwrap().as_deref(), Some(&b"new"[..]));
    clock.advance(MINUTE);
    // A snapshot fixes the sequence number, not the time.
    assert_eq!(snapshot.get("k").unwrap(), None);
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(snapshot.get("k").unwrap(), None);
    assert_eq!(get(&db, "k"), None);
}

#[test]
fn an_iterator_judges_expiry_when_it_is_made() {
    let (_fs, clock, db) = setup();
    db.put_with_ttl("a", "1", MINUTE).unwrap();
    db.put_with_ttl("b", "2", MINUTE).unwrap();
    let mut it = db.iter();
    let first = it.next().unwrap().unwrap();
    clock.advance(MINUTE);
    // One scan, one moment: it still sees "b"; a new one does not.
    let second = it.next().unwrap().unwrap();
    assert_eq!((&first.0[..], &second.0[..]), (&b"a"[..], &b"b"[..]));
    assert!(db.iter().next().is_none());
}

#[test]
fn a_keyspace_default_and_a_writes_ttl_apply_to_plain_puts() {
    let (fs, clock, db) = setup();
    let sessions = db
        .keyspace_with(
            "sessions",
            KeyspaceOptions {
                default_ttl: Some(MINUTE),
                ..KeyspaceOptions::default()
            },
        )
        .unwrap();
    sessions.put("s1", "alice").unwrap();
    sessions.put_with_ttl("s2", "bob", 3 * MINUTE).unwrap();
    db.put("forever", "x").unwrap();
    let mut batch = WriteBatch::new();
    batch.put("batched", "y");
    batch.put_in(&sessions, "s3", "carol");
    batch.merge("m", "op");
    db.write_opt(
        batch,
        &WriteOptions {
            ttl: Some(2 * MINUTE),
            ..WriteOptions::default()
        },
    )
    .unwrap();
    let live = |ks: &strata::Keyspace, k: &str| ks.get(k).unwrap().is_some();
    clock.advance(MINUTE);
    assert!(!live(&sessions, "s1"), "the keyspace's default");
    assert!(live(&sessions, "s2") && live(&sessions, "s3"));
    assert_eq!(get(&db, "batched").as_deref(), Some("y"));
    clock.advance(MINUTE);
    assert!(
        !live(&sessions, "s3"),
        "the write's ttl wins over the default"
    );
    assert_eq!(get(&db, "batched"), None);
    // Merge operands do not expire.
    assert_eq!(get(&db, "m").as_deref(), Some("op"));
    assert_eq!(get(&db, "forever").as_deref(), Some("x"));
    assert!(live(&sessions, "s2"));
    drop(sessions);
    drop(db);
    // The expiries were logged: after a reopen (WAL replay) they hold.
    let db = Db::open("/db", options(&fs, &clock)).unwrap();
    let sessions = db.keyspace("sessions").unwrap();
    assert!(!live(&sessions, "s1") && live(&sessions, "s2"));
    clock.advance(MINUTE);
    assert!(!live(&sessions, "s2"));
    assert_eq!(get(&db, "forever").as_deref(), Some("x"));
}

#[test]
fn merges_onto_an_expiring_value_lose_their_base_when_it_expires() {
    for compact_before in [false, true] {
        let (_fs, clock, db) = setup();
        db.put_with_ttl("k", "base", MINUTE).unwrap();
        db.merge("k", "a").unwrap();
        db.merge("k", "b").unwrap();
        assert_eq!(get(&db, "k").as_deref(), Some("base,a,b"));
        if compact_before {
            // A compaction before the expiry must not fold the operands
            // into the base: the merged value would outlive it.
            db.compact_range::<&[u8], _>(..).unwrap();
            assert_eq!(get(&db, "k").as_deref(), Some("base,a,b"));
        }
        clock.advance(MINUTE);
        assert_eq!(get(&db, "k").as_deref(), Some("a,b"), "{compact_before}");
        assert_eq!(scan(&db), pairs(&[("k", "a,b")]));
        db.compact_range::<&[u8], _>(..).unwrap();
        assert_eq!(get(&db, "k").as_deref(), Some("a,b"));
    }
}

/// Bytes of the database's tables.
fn table_bytes(db: &Db) -> u64 {
    db.live_files().iter().map(|f| f.size).sum()
}

#[test]
fn compaction_removes_expired_values() {
    let (fs, clock, db) = setup();
    for i in 0..400 {
        db.put_with_ttl(format!("k{i:03}"), "v".repeat(100), MINUTE)
            .unwrap();
    }
    db.put("keep", "x").unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    let before = table_bytes(&db);
    clock.advance(MINUTE);
    db.compact_range::<&[u8], _>(..).unwrap();
    // 400 values of 100 bytes gone: what is left is one small entry.
    let after = table_bytes(&db);
    assert!(after < before / 4, "{before} -> {after}");
    assert_eq!(scan(&db), pairs(&[("keep", "x")]));
    drop(db);
    let db = Db::open("/db", options(&fs, &clock)).unwrap();
    assert_eq!(scan(&db), pairs(&[("keep", "x")]));
}

#[test]
fn an_expired_value_above_a_snapshots_version_becomes_a_tombstone() {
    let (_fs, clock, db) = setup();
    db.put("k", "old").unwrap();
    db.flush().unwrap();
    let snapshot = db.snapshot();
    db.put_with_ttl("k", "new", MINUTE).unwrap();
    clock.advance(MINUTE);
    db.compact_range::<&[u8], _>(..).unwrap();
    // "old" is kept for the snapshot; the expired value above it must
    // still hide it from everyone else.
    assert_eq!(snapshot.get("k").unwrap().as_deref(), Some(&b"old"[..]));
    assert_eq!(get(&db, "k"), None);
    drop(snapshot);
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(get(&db, "k"), None);
}

#[test]
fn periodic_compaction_rewrites_old_tables_with_no_new_writes() {
    let fs = MemFileSystem::new();
    let clock = Arc::new(ManualClock::new(1_780_000_000_000_000));
    let db = Db::open(
        "/db",
        Options {
            periodic_compaction_seconds: 3600,
            ..options(&fs, &clock)
        },
    )
    .unwrap();
    for i in 0..400 {
        db.put_with_ttl(format!("k{i:03}"), "v".repeat(100), MINUTE)
            .unwrap();
    }
    db.put("keep", "x").unwrap();
    db.flush().unwrap();
    db.wait_for_compactions().unwrap();
    let tables = |db: &Db| -> Vec<u64> { db.live_files().iter().map(|f| f.number).collect() };
    let (first, before) = (tables(&db), table_bytes(&db));
    // Expired, but not yet an hour old: nothing rewrites the table.
    clock.advance(30 * MINUTE);
    db.wait_for_compactions().unwrap();
    assert_eq!(tables(&db), first);
    // An hour old: rewritten, the expired values gone, no write needed.
    clock.advance(30 * MINUTE);
    db.wait_for_compactions().unwrap();
    assert_ne!(tables(&db), first);
    let after = table_bytes(&db);
    assert!(after < before / 4, "{before} -> {after}");
    assert_eq!(get(&db, "keep").as_deref(), Some("x"));
}

/// Upper-cases every value it is shown, records them.
struct Upper(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

impl CompactionFilter for Upper {
    fn name(&self) -> &str {
        "upper"
    }
    fn filter(&mut self, _: usize, _: &[u8], value: &[u8]) -> FilterDecision {
        self.0.lock().unwrap().push(value.to_vec());
        FilterDecision::ChangeValue(value.to_ascii_uppercase())
    }
}

impl CompactionFilterFactory for Upper {
    fn name(&self) -> &str {
        "upper"
    }
    fn create_compaction_filter(
        &self,
        _: &CompactionFilterContext,
    ) -> Option<Box<dyn CompactionFilter>> {
        Some(Box::new(Upper(Arc::clone(&self.0))))
    }
}

#[test]
fn a_filter_sees_an_expiring_value_without_its_expiry_and_a_change_keeps_it() {
    let fs = MemFileSystem::new();
    let clock = Arc::new(ManualClock::new(1_780_000_000_000_000));
    let shown = Arc::new(std::sync::Mutex::new(Vec::new()));
    let db = Db::open(
        "/db",
        Options {
            compaction_filter_factory: Some(Arc::new(Upper(Arc::clone(&shown)))),
            ..options(&fs, &clock)
        },
    )
    .unwrap();
    db.put_with_ttl("k", "short", MINUTE).unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(*shown.lock().unwrap(), [b"short".to_vec()]);
    assert_eq!(get(&db, "k").as_deref(), Some("SHORT"));
    clock.advance(MINUTE);
    assert_eq!(get(&db, "k"), None);
}

#[test]
fn synced_expiring_values_survive_power_loss_with_their_expiry() {
    use strata::fs::UnsyncedData;
    let (fs, clock, db) = setup();
    let sync = WriteOptions {
        sync: true,
        ttl: Some(MINUTE),
        ..WriteOptions::default()
    };
    db.put("old", "plain").unwrap();
    db.put_opt("a", "in a table", &sync).unwrap();
    db.flush().unwrap();
    db.put_opt("b", "in the wal", &sync).unwrap();
    db.put_opt("old", "shadowing", &sync).unwrap();
    fs.crash();
    drop(db);
    fs.power_loss(UnsyncedData::Drop);
    // Half the minute passes while the machine is off.
    clock.advance(MINUTE / 2);
    let db = Db::open("/db", options(&fs, &clock)).unwrap();
    assert_eq!(
        scan(&db),
        pairs(&[
            ("a", "in a table"),
            ("b", "in the wal"),
            ("old", "shadowing")
        ])
    );
    // The expiry is the one written, not a minute after the replay.
    clock.advance(MINUTE / 2);
    assert_eq!(scan(&db), pairs(&[]));
}

/// A transaction's puts expire as any write's: by the commit's
/// `WriteOptions::ttl`, else by the keyspace's default. Before, a commit
/// skipped the stamp and its puts never expired.
#[test]
fn a_transactions_puts_take_the_ttl_and_the_keyspace_default() {
    let (_fs, clock, db) = setup();
    let sessions = db
        .keyspace_with(
            "sessions",
            KeyspaceOptions {
                default_ttl: Some(MINUTE),
                ..KeyspaceOptions::default()
            },
        )
        .unwrap();
    let mut tx = db.transaction();
    tx.put_in(&sessions, "s1", "alice").unwrap();
    tx.put("plain", "x").unwrap();
    tx.commit().unwrap();
    let mut tx = db.transaction_with(strata::TransactionOptions {
        write_options: WriteOptions {
            ttl: Some(2 * MINUTE),
            ..WriteOptions::default()
        },
        ..Default::default()
    });
    tx.put("timed", "y").unwrap();
    tx.commit().unwrap();
    clock.advance(MINUTE);
    assert_eq!(sessions.get("s1").unwrap(), None, "the keyspace's default");
    assert_eq!(get(&db, "plain").as_deref(), Some("x"));
    assert_eq!(get(&db, "timed").as_deref(), Some("y"));
    clock.advance(MINUTE);
    assert_eq!(get(&db, "timed"), None, "the commit's ttl");
}
