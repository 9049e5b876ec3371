//! Observability: event listeners against the statistics; a panicking
//! listener; statistics. The tracing events are checked in
//! tests/tracing_events.rs, a binary of their own.

#![allow(clippy::unwrap_used)]

mod common;

use common::{mem_dir, mem_options};
use parking_lot::Mutex;
use std::sync::Arc;
use strata::fs::MemFileSystem;
use strata::{
    CompactionJobInfo, Db, EventListener, FlushJobInfo, Options, TableFileCreationInfo,
    TableFileCreationReason, TableFileDeletionInfo, WriteStallCondition, WriteStallInfo,
};

/// Everything a listener hears, in order.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Event>>,
}

#[derive(Debug, Clone)]
#[allow(dead_code)] // the fields are read through Debug on failure
enum Event {
    FlushBegin(FlushJobInfo),
    FlushCompleted(FlushJobInfo),
    CompactionBegin(CompactionJobInfo),
    CompactionCompleted(CompactionJobInfo),
    Created(TableFileCreationInfo),
    Deleted(TableFileDeletionInfo),
    Stall(WriteStallInfo),
}

impl EventListener for Recorder {
    fn on_flush_begin(&self, info: &FlushJobInfo) {
        self.events.lock().push(Event::FlushBegin(info.clone()));
    }
    fn on_flush_completed(&self, info: &FlushJobInfo) {
        self.events.lock().push(Event::FlushCompleted(info.clone()));
    }
    fn on_compaction_begin(&self, info: &CompactionJobInfo) {
        self.events
            .lock()
            .push(Event::CompactionBegin(info.clone()));
    }
    fn on_compaction_completed(&self, info: &CompactionJobInfo) {
        self.events
            .lock()
            .push(Event::CompactionCompleted(info.clone()));
    }
    fn on_table_file_created(&self, info: &TableFileCreationInfo) {
        self.events.lock().push(Event::Created(info.clone()));
    }
    fn on_table_file_deleted(&self, info: &TableFileDeletionInfo) {
        self.events.lock().push(Event::Deleted(info.clone()));
    }
    fn on_stall_conditions_changed(&self, info: &WriteStallInfo) {
        self.events.lock().push(Event::Stall(*info));
    }
}

fn write_rounds(db: &Db, rounds: u32) {
    for round in 0..rounds {
        for i in 0..400u32 {
            db.put(
                format!("key{:06}", (i * 7919 + round) % 5000),
                [round as u8; 100],
            )
            .unwrap();
        }
    }
}

/// With background threads: every flush and compaction the statistics
/// count reaches the listener, each begun before it completes, flushes
/// in the order of their tables, with each new table announced and each
/// compaction input retired.
#[test]
fn listeners_hear_every_flush_and_compaction_the_stats_count() {
    let fs = MemFileSystem::new();
    let recorder = Arc::new(Recorder::default());
    let options = Options {
        listeners: vec![recorder.clone()],
        level0_file_num_compaction_trigger: 2,
        max_background_jobs: 2, // one compaction thread: one order
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), options).unwrap();
    write_rounds(&db, 20);
    db.flush().unwrap();
    db.wait_for_compactions().unwrap();
    let stats = db.stats();
    let events = recorder.events.lock().clone();

    let flushes: Vec<&FlushJobInfo> = events
        .iter()
        .filter_map(|e| match e {
            Event::FlushCompleted(f) => Some(f),
            _ => None,
        })
        .collect();
    let compactions: Vec<&CompactionJobInfo> = events
        .iter()
        .filter_map(|e| match e {
            Event::CompactionCompleted(c) => Some(c),
            _ => None,
        })
        .collect();
    assert!(
        stats.flushes >= 3,
        "the test needs flushes: {}",
        stats.flushes
    );
    assert!(stats.compactions >= 1, "and compactions");
    assert_eq!(flushes.len() as u64, stats.flushes);
    assert_eq!(compactions.len() as u64, stats.compactions);
    assert_eq!(
        flushes.iter().map(|f| f.bytes_written).sum::<u64>(),
        stats.flush_bytes_written
    );
    assert_eq!(
        compactions.iter().map(|c| c.bytes_written).sum::<u64>(),
        stats.compaction_bytes_written
    );
    // Flushes install in order: their tables' numbers grow.
    assert!(flushes
        .windows(2)
        .all(|w| w[0].file_number < w[1].file_number));

    // Each begin comes before its completion, with nothing of another job
    // of the same kind in between (one flush thread, one compaction one).
    let mut open_flush = false;
    let mut open_compaction = false;
    for e in &events {
        match e {
            Event::FlushBegin(_) => {
                assert!(!open_flush);
                open_flush = true;
            }
            Event::FlushCompleted(_) => {
                assert!(open_flush);
                open_flush = false;
            }
            Event::CompactionBegin(_) => {
                assert!(!open_compaction);
                open_compaction = true;
            }
            Event::CompactionCompleted(_) => {
                assert!(open_compaction);
                open_compaction = false;
            }
            _ => {}
        }
    }
    // Every table created is a flush's or a compaction's output, and
    // every compaction's (not moved) input is retired.
    let created: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Created(t) => Some(t.file_number),
            _ => None,
        })
        .collect();
    let mut outputs: Vec<u64> = flushes.iter().map(|f| f.file_number).collect();
    for c in compactions.iter().filter(|c| !c.trivial_move) {
        outputs.extend(&c.output_files);
    }
    let mut sorted_created = created.clone();
    sorted_created.sort_unstable();
    outputs.sort_unstable();
    assert_eq!(sorted_created, outputs);
    let deleted: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Deleted(t) => Some(t.file_number),
            _ => None,
        })
        .collect();
    let inputs: Vec<u64> = compactions
        .iter()
        .filter(|c| !c.trivial_move)
        .flat_map(|c| c.input_files.clone())
        .collect();
    assert_eq!(deleted, inputs);
    let flush_created = events
        .iter()
        .filter(|e| matches!(e, Event::Created(t) if t.reason == TableFileCreationReason::Flush))
        .count();
    assert_eq!(flush_created, flushes.len());
}

/// A listener that panics in every callback: the engine catches and
/// counts each panic, records no background error, and keeps writing,
/// flushing, compacting and reading.
#[test]
fn a_panicking_listener_leaves_the_database_working() {
    struct Panics;
    impl EventListener for Panics {
        fn on_flush_begin(&self, _: &FlushJobInfo) {
            panic!("listener panics at flush begin");
        }
        fn on_flush_completed(&self, _: &FlushJobInfo) {
            panic!("listener panics at flush end");
        }
        fn on_compaction_completed(&self, _: &CompactionJobInfo) {
            panic!("listener panics at compaction end");
        }
    }
    let recorder = Arc::new(Recorder::default());
    let fs = MemFileSystem::new();
    let options = Options {
        // The panicking listener first: the one after it still hears.
        listeners: vec![Arc::new(Panics), recorder.clone()],
        level0_file_num_compaction_trigger: 2,
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), options).unwrap();
    write_rounds(&db, 10);
    db.flush().unwrap();
    db.wait_for_compactions().unwrap();
    write_rounds(&db, 2);
    db.flush().unwrap();
    db.wait_for_compactions().unwrap();
    let stats = db.stats();
    assert!(stats.flushes >= 2 && stats.compactions >= 1);
    assert_eq!(
        db.listener_panics(),
        2 * stats.flushes + stats.compactions,
        "each panicking callback counted once"
    );
    let heard = recorder
        .events
        .lock()
        .iter()
        .filter(|e| matches!(e, Event::FlushCompleted(_)))
        .count();
    assert_eq!(heard as u64, stats.flushes);
    db.put("after", "panics").unwrap();
    assert_eq!(db.get("after").unwrap().as_deref(), Some(&b"panics"[..]));
    assert!(db.get("key000000").unwrap().is_some());
}

/// Writes stopped by too many L0 tables are reported stopped, then
/// normal once a compaction made room, in that order, once each.
#[test]
fn a_write_stall_is_reported_when_it_begins_and_ends() {
    let recorder = Arc::new(Recorder::default());
    let fs = MemFileSystem::new();
    let options = Options {
        listeners: vec![recorder.clone()],
        inline_background_work: true,
        // Never compact on its own: only a stall's wait makes room.
        level0_file_num_compaction_trigger: 3,
        level0_slowdown_writes_trigger: 3,
        level0_stop_writes_trigger: 3,
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), options).unwrap();
    for round in 0..3u8 {
        db.put([round], "v").unwrap();
        db.flush().unwrap();
    }
    assert_eq!(db.stats().levels[0].files, 3);
    // At the stop trigger: this write stalls, compacts inline, goes on.
    db.put("next", "v").unwrap();
    db.put("after", "v").unwrap();
    let stalls: Vec<WriteStallInfo> = recorder
        .events
        .lock()
        .iter()
        .filter_map(|e| match e {
            Event::Stall(s) => Some(*s),
            _ => None,
        })
        .collect();
    let conditions: Vec<WriteStallCondition> = stalls.iter().map(|s| s.condition).collect();
    assert_eq!(
        conditions,
        vec![WriteStallCondition::Stopped, WriteStallCondition::Normal]
    );
    assert_eq!(stalls[0].cause, strata::WriteStallCause::L0FileCountLimit);
    assert_eq!(stalls[1].previous, WriteStallCondition::Stopped);
}

/// Without `Options::statistics` there are none.
#[test]
fn statistics_are_off_by_default() {
    let fs = MemFileSystem::new();
    let db = Db::open(mem_dir(), mem_options(&fs)).unwrap();
    db.put("k", "v").unwrap();
    assert!(db.statistics().is_none());
}

/// Each ticker and histogram counts what it names: writes, reads and the
/// bytes they returned, block cache hits and misses, bloom filter
/// answers, WAL syncs, flushes; the text is RocksDB's.
#[test]
fn statistics_count_what_their_names_say() {
    use strata::{Histogram, Ticker, WriteOptions};
    let fs = MemFileSystem::new();
    let statistics = strata::Statistics::new();
    let options = Options {
        statistics: Some(statistics),
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), options).unwrap();
    let sync = WriteOptions {
        sync: true,
        ..WriteOptions::default()
    };
    for i in 0..50u32 {
        db.put_opt(format!("key{i:03}"), format!("value{i}"), &sync)
            .unwrap();
    }
    db.flush().unwrap();
    // Found in the table: the first read of its block misses the cache,
    // the second hits.
    assert_eq!(db.get("key007").unwrap().as_deref(), Some(&b"value7"[..]));
    assert_eq!(db.get("key007").unwrap().as_deref(), Some(&b"value7"[..]));
    // Absent, inside the table's key range: the bloom filter answers.
    let mut filtered = 0;
    for i in 0..20u32 {
        if db.get(format!("key{i:03}x")).unwrap().is_none() {
            filtered += 1;
        }
    }
    assert_eq!(filtered, 20);

    let s = db.statistics().unwrap();
    let stats = db.stats();
    assert_eq!(s.ticker(Ticker::NumberKeysWritten), 50);
    assert_eq!(s.ticker(Ticker::NumberKeysRead), 22);
    assert_eq!(s.ticker(Ticker::BytesRead), 2 * b"value7".len() as u64);
    assert_eq!(s.ticker(Ticker::BytesWritten), stats.user_bytes_written);
    assert!(s.ticker(Ticker::BlockCacheMiss) >= 1);
    assert!(s.ticker(Ticker::BlockCacheHit) >= 1);
    // A false positive now and then is allowed by a bloom filter.
    assert!(s.ticker(Ticker::BloomFilterUseful) >= 15);
    assert!(s.ticker(Ticker::BloomFilterUseful) <= 20);
    assert_eq!(s.ticker(Ticker::WalSynced), stats.wal_syncs);
    assert_eq!(s.ticker(Ticker::FlushWriteBytes), stats.flush_bytes_written);
    let h = |which| s.histogram(which).unwrap().clone();
    assert_eq!(h(Histogram::DbGet).count, 22);
    assert_eq!(h(Histogram::DbWrite).count, 50);
    assert_eq!(h(Histogram::Flush).count, stats.flushes);
    // Each sync write waited for an fsync, maybe shared with others.
    assert!(h(Histogram::WalFileSync).count >= 1);
    assert!(h(Histogram::WalFileSync).count <= stats.wal_syncs);
    let get = h(Histogram::DbGet);
    assert!(get.p50 <= get.p95 && get.p95 <= get.p99 && get.p99 <= get.max as f64);

    let text = s.to_text();
    assert!(text.starts_with("STATISTICS:\n"));
    assert!(text.contains("\nrocksdb.number.keys.read COUNT : 22\n"));
    let get_line = text
        .lines()
        .find(|l| l.starts_with("rocksdb.db.get.micros P50 : "))
        .unwrap();
    for part in [" P95 : ", " P99 : ", " P100 : ", " COUNT : 22 SUM : "] {
        assert!(get_line.contains(part), "{get_line}");
    }
}

/// `rocksdb.memtable.hit` counts the gets a memtable answered (a value or
/// a delete found there, in the active or a frozen memtable);
/// `rocksdb.memtable.miss` those that went on to the tables, found there
/// or not.
#[test]
fn memtable_hits_and_misses_are_counted() {
    use strata::Ticker;
    let fs = MemFileSystem::new();
    let options = Options {
        statistics: Some(strata::Statistics::new()),
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), options).unwrap();
    db.put("flushed", "1").unwrap();
    db.flush().unwrap();
    db.put("in-memtable", "2").unwrap();
    db.delete("deleted").unwrap();
    let counts = |db: &Db| {
        let s = db.statistics().unwrap();
        (
            s.ticker(Ticker::MemtableHit),
            s.ticker(Ticker::MemtableMiss),
        )
    };
    assert_eq!(counts(&db), (0, 0));
    assert_eq!(db.get("in-memtable").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(db.get("deleted").unwrap(), None);
    assert_eq!(counts(&db), (2, 0), "a value and a delete in the memtable");
    assert_eq!(db.get("flushed").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(db.get("nowhere").unwrap(), None);
    assert_eq!(counts(&db), (2, 2), "one found in a table, one nowhere");
    let text = db.statistics().unwrap().to_text();
    assert!(
        text.contains("\nrocksdb.memtable.hit COUNT : 2\n"),
        "{text}"
    );
    assert!(
        text.contains("\nrocksdb.memtable.miss COUNT : 2\n"),
        "{text}"
    );
}

/// Two databases opened with one statistics object add to it, as in
/// RocksDB; each database's own tickers stay its own.
#[test]
fn a_statistics_object_collects_for_every_database_it_is_set_in() {
    use strata::Ticker;
    let statistics = strata::Statistics::new();
    let open = || {
        let fs = MemFileSystem::new();
        let options = Options {
            statistics: Some(statistics.clone()),
            ..mem_options(&fs)
        };
        Db::open(mem_dir(), options).unwrap()
    };
    let (a, b) = (open(), open());
    a.put("k", "v").unwrap();
    assert_eq!(a.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(b.get("k").unwrap(), None);
    let s = b.statistics().unwrap();
    assert_eq!(s.ticker(Ticker::NumberKeysRead), 2);
    assert_eq!(s.ticker(Ticker::NumberKeysWritten), 0);
}

/// A background error reaches the listener once, after the failed call
/// returned (it was recorded under a lock), and is logged: a flush that
/// panics (injected through the test hook) stops writes.
#[test]
fn a_background_error_reaches_the_listener() {
    #[derive(Default)]
    struct Errors(Mutex<Vec<String>>);
    impl EventListener for Errors {
        fn on_background_error(&self, info: &strata::BackgroundErrorInfo) {
            self.0.lock().push(info.error.to_string());
        }
    }
    let errors = Arc::new(Errors::default());
    let fs = MemFileSystem::new();
    let options = Options {
        listeners: vec![errors.clone()],
        inline_background_work: true,
        test_hook: Some(Arc::new(|point| {
            if point == strata::HookPoint::Flush {
                panic!("injected flush failure");
            }
            Ok(())
        })),
        ..mem_options(&fs)
    };
    let db = Db::open(mem_dir(), options).unwrap();
    db.put("k", "v").unwrap();
    assert!(db.flush().is_err());
    assert!(db.put("k2", "v").is_err(), "writes stop");
    let errors = errors.0.lock();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("injected flush failure"),
        "{}",
        errors[0]
    );
}

/// A bound on a hang, not a synchronisation.
const HANG: std::time::Duration = std::time::Duration::from_secs(60);

/// A test hook that, once armed, holds the first job reaching `point`
/// until released: `(hook, armed, entered, release)`.
#[allow(clippy::type_complexity)]
fn hold_at(
    point: strata::HookPoint,
) -> (
    strata::TestHook,
    Arc<std::sync::atomic::AtomicBool>,
    std::sync::mpsc::Receiver<()>,
    std::sync::mpsc::Sender<()>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let armed = Arc::new(AtomicBool::new(false));
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let (entered_tx, release_rx) = (Mutex::new(entered_tx), Mutex::new(release_rx));
    let hook: strata::TestHook = Arc::new({
        let armed = Arc::clone(&armed);
        move |at| {
            if at == point && armed.swap(false, Ordering::SeqCst) {
                entered_tx.lock().send(()).unwrap();
                release_rx.lock().recv_timeout(HANG).unwrap();
            }
            Ok(())
        }
    });
    (hook, armed, entered, release)
}

/// The events of keyspace `name`'s jobs, in order.
fn events_of(recorder: &Recorder, name: &str) -> Vec<Event> {
    recorder
        .events
        .lock()
        .iter()
        .filter(|e| match e {
            Event::FlushBegin(i) | Event::FlushCompleted(i) => i.keyspace == name,
            Event::CompactionBegin(i) | Event::CompactionCompleted(i) => i.keyspace == name,
            Event::Created(i) => i.keyspace == name,
            Event::Deleted(i) => i.keyspace == name,
            Event::Stall(_) => false,
        })
        .cloned()
        .collect()
}

/// Run `job` on keyspace "doomed" of a database with background threads,
/// holding it at `point` while the keyspace is dropped; returns what the
/// listener heard of that keyspace, once the database is closed.
fn job_on_a_dropped_keyspace(
    point: strata::HookPoint,
    prepare: impl FnOnce(&strata::Keyspace),
    job: impl FnOnce(strata::Keyspace) -> strata::Result<()> + Send + 'static,
) -> Vec<Event> {
    use std::sync::atomic::Ordering;
    let fs = MemFileSystem::new();
    let recorder = Arc::new(Recorder::default());
    let (hook, armed, entered, release) = hold_at(point);
    let db = Db::open(
        mem_dir(),
        Options {
            listeners: vec![recorder.clone()],
            test_hook: Some(hook),
            ..mem_options(&fs)
        },
    )
    .unwrap();
    let doomed = db.keyspace("doomed").unwrap();
    prepare(&doomed);
    armed.store(true, Ordering::SeqCst);
    let runner = std::thread::spawn(move || job(doomed));
    entered
        .recv_timeout(HANG)
        .expect("the job reached the hook");
    db.drop_keyspace("doomed").unwrap();
    release.send(()).unwrap();
    // Its outcome for the caller is not the point here (the keyspace is
    // gone): what the listener heard is.
    let _ = runner.join().expect("runner");
    db.close().unwrap();
    events_of(&recorder, "doomed")
}

/// A flush whose keyspace is dropped while it runs installs nothing, and
/// says so: its begin and its table's creation are followed by a
/// completion whose status is `KeyspaceDropped`. (It used to end with no
/// completion at all.)
#[test]
fn a_flush_of_a_dropped_keyspace_reports_its_end() {
    let events = job_on_a_dropped_keyspace(
        strata::HookPoint::Flush,
        |ks| ks.put("k", "v").unwrap(),
        |ks| ks.flush(),
    );
    match events.as_slice() {
        [Event::FlushBegin(_), Event::Created(_), Event::FlushCompleted(done)] => {
            assert_eq!(done.status, strata::JobStatus::KeyspaceDropped, "{done:?}");
        }
        other => panic!("unpaired flush events: {other:#?}"),
    }
}

/// Likewise a compaction: begin, its outputs' creation, and a completion
/// whose status is `KeyspaceDropped`, with no input reported deleted.
#[test]
fn a_compaction_of_a_dropped_keyspace_reports_its_end() {
    let events = job_on_a_dropped_keyspace(
        strata::HookPoint::Compaction,
        |ks| {
            for round in 0..2 {
                for i in 0..50u32 {
                    ks.put(format!("key{i:03}"), format!("v{round}")).unwrap();
                }
                ks.flush().unwrap();
            }
        },
        |ks| ks.compact_range::<&str, _>(..),
    );
    let compaction: Vec<&Event> = events
        .iter()
        .filter(|e| !matches!(e, Event::FlushBegin(_) | Event::FlushCompleted(_)))
        .filter(|e| !matches!(e, Event::Created(i) if i.reason == TableFileCreationReason::Flush))
        .collect();
    match compaction.as_slice() {
        [Event::CompactionBegin(_), rest @ .., Event::CompactionCompleted(done)] => {
            assert_eq!(done.status, strata::JobStatus::KeyspaceDropped, "{done:?}");
            assert!(!rest.is_empty(), "its outputs were not announced");
            assert!(
                rest.iter().all(|e| matches!(e, Event::Created(_))),
                "{rest:#?}"
            );
        }
        other => panic!("unpaired compaction events: {other:#?}"),
    }
}

/// A listener holding a database handle: it writes once from its flush
/// callback.
#[derive(Default)]
struct WritesOnFlush {
    db: Mutex<Option<Db>>,
}

impl EventListener for WritesOnFlush {
    fn on_flush_completed(&self, _: &FlushJobInfo) {
        let db = self.db.lock().take();
        if let Some(db) = db {
            db.put("from-the-listener", "1").unwrap();
        }
    }
}

/// With `inline_background_work`, a write that stalls runs the flush
/// itself; the flush's callbacks wait until that write returns, so a
/// listener that writes does not write from inside it. (They ran inside
/// it: the listener's write queued behind the stalled write, which led
/// the queue and waited for the listener: a deadlock.)
#[test]
fn an_inline_flush_run_by_a_stalled_write_calls_its_listener_after_the_write() {
    let fs = MemFileSystem::new();
    let listener = Arc::new(WritesOnFlush::default());
    let db = Db::open(
        mem_dir(),
        Options {
            inline_background_work: true,
            write_buffer_size: 64 * 1024,
            max_write_buffer_number: 2,
            listeners: vec![listener.clone()],
            ..mem_options(&fs)
        },
    )
    .unwrap();
    *listener.db.lock() = Some(db.clone());
    let (done, finished) = std::sync::mpsc::channel();
    {
        let db = db.clone();
        std::thread::spawn(move || {
            // Two memtables' worth: the second rotation stalls on the
            // first frozen memtable and flushes it inline.
            for i in 0..200u32 {
                db.put(format!("key{i:04}"), [7u8; 1024]).unwrap();
            }
            let _ = done.send(());
        });
    }
    finished
        .recv_timeout(HANG)
        .expect("a write waited for its own flush's listener");
    // Taken by the callback (its write went through), or never called.
    assert!(listener.db.lock().take().is_none(), "no flush was reported");
    assert_eq!(
        db.get("from-the-listener").unwrap().as_deref(),
        Some(&b"1"[..])
    );
}
