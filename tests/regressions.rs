//! Named regression tests: each failure the simulation, the crash test,
//! the corruption sweeps, the fuzzers or proptest's shrinking found, kept
//! as the smallest deterministic case that showed it.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::path::PathBuf;
use strata::fs::{FaultPlan, FileSystem, FsOp, MemFileSystem, UnsyncedData};
use strata::{Db, WalRecoveryMode, WriteOptions};

fn sync() -> WriteOptions {
    WriteOptions {
        sync: true,
        ..Default::default()
    }
}

fn wals(fs: &MemFileSystem) -> Vec<PathBuf> {
    files_with_ext(fs, &mem_dir(), ".log")
}

/// Whether the log at `path` ends in a torn tail.
fn torn(fs: &MemFileSystem, path: &std::path::Path) -> bool {
    let data = fs.read(path).unwrap();
    let mut r = strata_wal::Reader::new(&data, WalRecoveryMode::TolerateCorruptedTailRecords);
    while r.next_record().unwrap().is_some() {}
    matches!(r.end(), Some(strata_wal::LogEnd::TornTail { .. }))
}

/// Keys `0..n` synced, then `n..2n` not: a power loss keeping a random
/// prefix of the unsynced bytes tears the WAL's tail for most seeds.
fn write_half_synced(db: &Db, n: usize) {
    for i in 0..n {
        db.put_opt(key(i), value(i, 0), &sync()).unwrap();
    }
    for i in n..2 * n {
        db.put(key(i), value(i, 0)).unwrap();
    }
}

/// Simulation seed 62 (and 6, 40, 95): a memtable rotation creates the
/// next WAL (and syncs the directory) before the old one is synced. When
/// that sync fails, or the power goes between the two, the old WAL keeps a
/// torn tail and a newer WAL exists; the next open refused with "torn tail
/// in a WAL that is not the newest", so a plain power loss left a database
/// that would not open. (The old WAL is now synced in the background, so
/// the flush itself may succeed; the reopen must work either way.)
#[test]
fn a_power_loss_during_memtable_rotation_still_reopens() {
    for seed in 0..24 {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        write_half_synced(&db, 20);
        // Syncing any WAL fails from here on: the old WAL's sync after the
        // rotation never completes.
        fs.add_fault(FaultPlan {
            path_contains: Some(".log".into()),
            ..FaultPlan::always(FsOp::Sync)
        });
        let _ = db.flush();
        power_cycle(&fs, db, UnsyncedData::KeepRandomPrefix(seed));
        let db =
            Db::open(mem_dir(), mem_options(&fs)).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let kept = (0..40)
            .take_while(|&i| db.get(key(i)).unwrap().is_some())
            .count();
        assert!(kept >= 20, "seed {seed}: lost synced writes");
        assert!(
            (kept..40).all(|i| db.get(key(i)).unwrap().is_none()),
            "seed {seed}: a hole"
        );
    }
}

/// The same at open: recovery replays a WAL with a torn tail, creates the
/// next WAL and syncs the directory, then fails (here: its manifest write)
/// before the manifest retires the old WAL. The next open saw the torn WAL
/// followed by an empty one and refused to open.
#[test]
fn a_failed_open_after_a_torn_wal_still_reopens() {
    let mut torn_seen = 0;
    for seed in 0..24 {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        write_half_synced(&db, 20);
        power_cycle(&fs, db, UnsyncedData::KeepRandomPrefix(seed));
        let torn_now = torn(&fs, &wals(&fs)[0]);
        torn_seen += usize::from(torn_now);
        // The open's second manifest append (its version edit) fails.
        fs.add_fault(FaultPlan {
            op: Some(FsOp::Append),
            path_contains: Some("MANIFEST".into()),
            skip: 1,
            count: 1,
        });
        assert!(Db::open(mem_dir(), mem_options(&fs)).is_err());
        fs.crash();
        fs.power_loss(UnsyncedData::Drop);
        let db = Db::open(mem_dir(), mem_options(&fs))
            .unwrap_or_else(|e| panic!("seed {seed} (torn: {torn_now}): {e}"));
        for i in 0..20 {
            assert!(
                db.get(key(i)).unwrap().is_some(),
                "seed {seed}: lost key {i}"
            );
        }
    }
    assert!(torn_seen > 0, "no seed tore the WAL");
}

/// Corruption sweep (tests/corruption_modes.rs): a byte flipped in the
/// last MANIFEST record was taken for a torn write, so the edit was
/// dropped; when that edit was a flush, open then deleted the flushed
/// table as unreferenced, and its WAL was already gone: acknowledged
/// writes vanished without an error. A torn write cuts a log short; it
/// does not leave a full-length record with a bad checksum.
#[test]
fn a_flipped_byte_in_the_last_manifest_edit_fails_the_open() {
    let fs = MemFileSystem::new();
    table_and_wal(&fs, 100, 100);
    let manifest = manifest_path(&fs);
    let data = fs.read(&manifest).unwrap();
    let contents = strata::inspect::read_manifest(&manifest, &data).unwrap();
    let (last, _) = *contents.edits.last().unwrap();
    fs.corrupt_byte(&manifest, last as usize + 9, 0x41).unwrap();
    match Db::open(mem_dir(), mem_options(&fs)) {
        Err(strata::Error::Corruption { file, .. }) => assert_eq!(file, manifest),
        Err(e) => panic!("expected corruption in the manifest, got {e}"),
        Ok(db) => panic!(
            "opened with {} of 200 keys",
            (0..200)
                .filter(|&i| db.get(key(i)).unwrap().is_some())
                .count()
        ),
    }
    assert_eq!(
        files_with_ext(&fs, &mem_dir(), ".sst").len(),
        1,
        "table deleted"
    );
}

/// Corruption sweep: with CURRENT gone, open took the directory for a new
/// database, wrote an empty manifest and deleted every table as obsolete.
/// A WAL or table exists only after CURRENT was durable, so their presence
/// means CURRENT was lost, not never written.
#[test]
fn a_missing_current_beside_tables_fails_the_open() {
    let fs = MemFileSystem::new();
    table_and_wal(&fs, 100, 100);
    let current = mem_dir().join("CURRENT");
    fs.remove(&current).unwrap();
    match Db::open(mem_dir(), mem_options(&fs)) {
        Err(strata::Error::Corruption { file, .. }) => assert_eq!(file, current),
        Err(e) => panic!("expected corruption naming CURRENT, got {e}"),
        Ok(_) => panic!("opened an empty database over the old one"),
    }
    assert_eq!(
        files_with_ext(&fs, &mem_dir(), ".sst").len(),
        1,
        "table deleted"
    );
}

/// A crash while a new database is being created (before CURRENT is
/// durable) leaves at most a manifest: the next open creates the database.
#[test]
fn a_crash_while_creating_a_database_still_opens() {
    for n in 1..12 {
        let fs = MemFileSystem::new();
        fs.crash_after(n);
        let _ = Db::open(mem_dir(), mem_options(&fs));
        fs.crash();
        fs.power_loss(UnsyncedData::Drop);
        let db = open_mem(&fs);
        db.put_opt(b"k", b"v", &sync()).unwrap();
    }
}

/// db_model fuzzer: an empty batch written with `sync: true` returned Ok
/// at once, without syncing the WAL, so a non-sync write acknowledged
/// before it was lost at the next power loss: the recovered state was no
/// prefix holding every acknowledged sync write. An empty sync write is a
/// sync point like any other.
#[test]
fn an_empty_sync_write_makes_earlier_writes_durable() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.put(b"a", b"1").unwrap();
    db.write_opt(strata::WriteBatch::new(), &sync()).unwrap();
    power_cycle(&fs, db, UnsyncedData::Drop);
    let db = open_mem(&fs);
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
}

/// Found by the model test (range deletes, delete-only compaction): a
/// snapshot between a range tombstone and the older table it covers keeps
/// a delete-only compaction from dropping that table, and the compaction
/// thread, looking then, found nothing to do. Once the snapshot was
/// released the compaction was due, which `wait_for_compactions` counts,
/// but nothing woke the thread: the wait never returned (a hang, caught
/// by the watchdog). Releasing a snapshot now wakes the background.
#[test]
fn releasing_a_snapshot_lets_a_delete_only_compaction_run() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.put("a", "1").unwrap();
    db.put("b", "1").unwrap();
    db.flush().unwrap();
    let covered = db.live_files()[0].number;
    let snapshot = db.snapshot();
    db.delete_range("a".."z").unwrap();
    db.flush().unwrap();
    db.wait_for_compactions().unwrap();
    let live = |db: &Db| -> Vec<u64> { db.live_files().iter().map(|f| f.number).collect() };
    assert!(live(&db).contains(&covered), "the snapshot keeps it");
    assert_eq!(snapshot.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    drop(snapshot);
    db.put("c", "1").unwrap();
    db.wait_for_compactions().unwrap();
    assert!(
        !live(&db).contains(&covered),
        "dropped unread: {:?}",
        live(&db)
    );
    assert_eq!(db.get("a").unwrap(), None);
    assert_eq!(db.get("c").unwrap().as_deref(), Some(&b"1"[..]));
}

/// The engine's MANIFEST (of `table_and_wal(_, 100, 100)`) with harmless
/// edits appended (the same counters again) so that the last one
/// straddles `boundary`. Returns the bytes and where the last edit starts.
fn manifest_with_last_edit_across(boundary: usize) -> (MemFileSystem, PathBuf, Vec<u8>, usize) {
    use strata::inspect::VersionEdit;
    let base = MemFileSystem::new();
    table_and_wal(&base, 100, 100);
    let manifest = manifest_path(&base);
    let mut data = base.read(&manifest).unwrap().to_vec();
    let contents = strata::inspect::read_manifest(&manifest, &data).unwrap();
    // Small edits until a big one would cross the boundary, then the big one.
    let encoded = |edit: VersionEdit| {
        let mut out = Vec::new();
        edit.encode(&mut out);
        out
    };
    let small = encoded(VersionEdit {
        next_file_number: Some(contents.next_file_number),
        ..VersionEdit::default()
    });
    let edit_bytes = encoded(VersionEdit {
        next_file_number: Some(contents.next_file_number),
        log_number: Some(contents.log_number()),
        last_sequence: Some(contents.last_sequence),
        ..VersionEdit::default()
    });
    let append = |data: &mut Vec<u8>, edit: &[u8]| {
        let mut framed = Vec::new();
        strata_wal::encode_record(&mut framed, data.len() as u64, edit);
        data.extend_from_slice(&framed);
    };
    while boundary - data.len() >= 7 + edit_bytes.len() {
        append(&mut data, &small);
    }
    append(&mut data, &edit_bytes);
    let last_start = data.len() - 7 - edit_bytes.len();
    assert!(
        last_start < boundary && data.len() > boundary,
        "the last edit straddles {boundary}"
    );
    (base, manifest, data, last_start)
}

/// Opens a copy of the database of `manifest_with_last_edit_across`
/// (`base`) with `manifest` holding `bytes`: the number of keys it holds.
/// A copy, not the same writes again: file numbers depend on when the
/// background thread makes the next WAL ahead.
fn reopen_with_manifest(
    base: &MemFileSystem,
    manifest: &std::path::Path,
    bytes: &[u8],
) -> strata::Result<usize> {
    let fs = MemFileSystem::new();
    fs.create_dir_all(&mem_dir()).unwrap();
    for name in base.list(&mem_dir()).unwrap() {
        let path = mem_dir().join(&name);
        fs.write_durable(&path, &base.read(&path).unwrap());
    }
    fs.write_durable(manifest, bytes);
    Db::open(mem_dir(), mem_options(&fs)).map(|db| scan_all(&db).len())
}

/// Found in review (the MANIFEST's page-loss case): a power loss during the
/// sync of the last MANIFEST edit can keep one page of its append and lose
/// another (zeros). That is a crash, not damage to a synced edit: the open
/// must succeed without the edit. A flipped byte in the same edit is still
/// corruption.
#[test]
fn a_last_manifest_edit_that_lost_a_page_is_a_torn_tail() {
    let (base, manifest, data, last_start) = manifest_with_last_edit_across(4096);
    let reopen = |bytes: &[u8]| reopen_with_manifest(&base, &manifest, bytes);
    assert_eq!(
        reopen(&data).unwrap(),
        200,
        "the straddling edit itself reads"
    );
    // The page after the boundary lost.
    let mut second_lost = data.clone();
    second_lost[4096..].fill(0);
    assert_eq!(reopen(&second_lost).unwrap(), 200);
    // The page before it lost (the record's header with it).
    let mut first_lost = data.clone();
    first_lost[last_start..4096].fill(0);
    assert_eq!(reopen(&first_lost).unwrap(), 200);
    // A flipped byte in the same edit's payload: damage to a synced edit.
    // (A flipped length byte of the last edit reads as a cut write: the
    // one flip a log reader cannot tell from a crash.)
    let mut flipped = data.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x41;
    match reopen(&flipped) {
        Err(strata::Error::Corruption { file, .. }) => assert_eq!(file, manifest),
        other => panic!("expected corruption in the manifest, got {other:?}"),
    }
}

/// Found in review of the fix below: the MANIFEST's tail rule assumes a
/// write(2)-appended file loses whole 512-byte sectors (a disk can tear a
/// page's write between them), but the engine then refused a damaged last
/// edit unless the piece of it on some whole 4 KiB page read as zeros. A
/// power loss that kept one sector of the last edit and lost the other,
/// both on one page, made the database refuse to open.
#[test]
fn a_last_manifest_edit_that_lost_a_sector_is_a_torn_tail() {
    let sector = strata_wal::SECTOR_SIZE;
    // A sector boundary inside a page, past the engine's own edits.
    let (base, manifest, data, last_start) = manifest_with_last_edit_across(3 * sector);
    let boundary = 3 * sector;
    let reopen = |bytes: &[u8]| reopen_with_manifest(&base, &manifest, bytes);
    assert_eq!(reopen(&data).unwrap(), 200);
    // The sector after the boundary lost (the file's length kept).
    let mut second_lost = data.clone();
    second_lost[boundary..].fill(0);
    assert_eq!(reopen(&second_lost).unwrap(), 200);
    // The sector before it lost (the record's header with it).
    let mut first_lost = data.clone();
    first_lost[last_start..boundary].fill(0);
    assert_eq!(reopen(&first_lost).unwrap(), 200);
    // One byte zeroed where both sectors were kept: no crash does that.
    let mut one_byte = data.clone();
    one_byte[data.len() - 2] = 0;
    match reopen(&one_byte) {
        Err(strata::Error::Corruption { file, .. }) => assert_eq!(file, manifest),
        other => panic!("expected corruption in the manifest, got {other:?}"),
    }
}

/// wal_reader fuzz target: the MANIFEST's tail rule searched every byte
/// position after damage for valid fragments, and so read the last edit's
/// own payload as framing whenever a crash hid its extent. A table boundary
/// key holding framed log bytes then made a crash that cut the last edit
/// short read as corruption: the database would not open after a crash.
/// Here the key is two framed records; every cut of the edit that names it
/// replays as a torn tail, the edits before it kept.
#[test]
fn a_cut_manifest_edit_whose_key_holds_framed_records_replays() {
    let mut framed_key = Vec::new();
    let end = strata_wal::encode_record(&mut framed_key, 0, b"not an edit");
    strata_wal::encode_record(&mut framed_key, end, b"nor this");
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.put(&framed_key, b"v").unwrap();
    db.flush().unwrap();
    drop(db);
    let manifest = manifest_path(&fs);
    let data = fs.read(&manifest).unwrap();
    let contents = strata::inspect::read_manifest(&manifest, &data).unwrap();
    let (last, ref edit) = *contents.edits.last().unwrap();
    assert!(
        edit.new_files.iter().any(|(_, f)| f.largest == framed_key),
        "the last edit names the key: {edit:?}"
    );
    for cut in last as usize + 1..data.len() {
        // Cut there, and cut there with zeros after it (a file length that
        // got ahead of its data), short of the edit's end.
        let mut zeros_after = data[..cut].to_vec();
        zeros_after.resize(cut + (data.len() - cut) / 2, 0);
        for (what, bytes) in [("cut", &data[..cut]), ("zeros from", &zeros_after[..])] {
            match strata::inspect::read_manifest(&manifest, bytes) {
                Ok(cut_short) => assert_eq!(cut_short.edits.len(), contents.edits.len() - 1),
                Err(e) => panic!("{what} {cut} of {}: {e}", data.len()),
            }
        }
    }
}
