//! Replacing the state machine's data keyspace by a snapshot's, without
//! holding it in memory: the restored checkpoint's `sm_data` is streamed
//! into tables of bounded size and ingested in one call (one MANIFEST
//! edit), so the replacement is atomic for the keyspace.
//!
//! The tables' range deletes tile the whole key space: the first deletes
//! `[b"", k1)`, table `i` `[k_i, k_i+1)` where `k_i` is its first key, the
//! last `[k_n, +inf)` (`SstWriter::delete_range_from`, which reaches the
//! largest key there can be, where an exclusive end cannot). So the tables
//! are disjoint, as one ingestion needs, and together delete every key
//! older than them, while each keeps its own keys (a table's points are
//! newer than its range delete).
//!
//! Memory: one table builder at a time (its data block, index and filter,
//! all bounded by the table's size) and the source's iterator (a block at
//! a time); the ingestion checks and rewrites each table block by block.
//! The tables are built in `raft-install/` inside the database's
//! directory, on the database's filesystem (strata ignores names it did
//! not make), and that directory is emptied before and after.

use crate::keys::SM_DATA_KEYSPACE;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata::fs::FileSystem;
use strata::{Db, IngestOptions, Keyspace, Options, ReadOnlyDb, SstWriter};

/// The default size of each table an install builds (keys and values).
pub const DEFAULT_INSTALL_TABLE_BYTES: u64 = 64 << 20;

/// The most tables one install ingests, however large the snapshot. They
/// all go to level 0 (their range deletes overlap whatever the keyspace
/// held), where the node's writes slow down at
/// `level0_slowdown_writes_trigger` files (20 by default) and stop at
/// `level0_stop_writes_trigger` (36): 64 MiB tables would stop them for a
/// snapshot above 2.3 GiB until compaction caught up. Eight leave room for
/// the flushes that follow.
pub const MAX_INSTALL_TABLES: u64 = 8;

/// The size of an install's tables: `configured`, or larger for a
/// snapshot of `snapshot_bytes` (which bounds its data keyspace) so that
/// it takes at most [`MAX_INSTALL_TABLES`] tables.
pub fn install_table_bytes(configured: u64, snapshot_bytes: u64) -> u64 {
    configured.max(snapshot_bytes.div_ceil(MAX_INSTALL_TABLES))
}

/// Where an install builds its tables: inside the database's directory.
pub fn work_dir(db: &Db) -> PathBuf {
    db.path().join("raft-install")
}

/// strata's error for a failed filesystem operation `op` on `path`.
fn io_error(op: &'static str, path: &Path, source: std::io::Error) -> strata::Error {
    strata::Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Remove the tables an install left in its work directory (a crash, or
/// an ingestion that failed), leaving the directory itself and anything
/// in it an install does not make (`<n>.sst`): not ours to delete.
pub fn clear_work_dir(fs: &dyn FileSystem, dir: &Path) -> Result<(), strata::Error> {
    if !fs.exists(dir) {
        return Ok(());
    }
    let names = fs.list(dir).map_err(|e| io_error("list", dir, e))?;
    for name in names.iter().filter(|name| is_install_table(name)) {
        let path = dir.join(name);
        fs.remove(&path).map_err(|e| io_error("remove", &path, e))?;
    }
    Ok(())
}

/// Whether `name` is one an install gives its tables (`table_path`).
fn is_install_table(name: &str) -> bool {
    name.strip_suffix(".sst")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Replace every key of `data` (a keyspace of `db`) by the keys of
/// `source`'s `sm_data` keyspace, in tables of at most about
/// `table_bytes` bytes of keys and values each, ingested in one call.
/// Returns how many tables it built.
pub fn replace_data(
    db: &Db,
    data: &Keyspace,
    source: &ReadOnlyDb,
    table_bytes: u64,
) -> Result<usize, strata::Error> {
    let fs: Arc<dyn FileSystem> = db.file_system();
    let dir = work_dir(db);
    clear_work_dir(fs.as_ref(), &dir)?;
    fs.create_dir_all(&dir)
        .map_err(|e| io_error("create", &dir, e))?;
    let options = Options {
        fs: Arc::clone(&fs),
        ..Options::default()
    };
    let table_path = |n: usize| dir.join(format!("{n}.sst"));

    let mut files = Vec::new();
    let mut writer = SstWriter::create(table_path(0), &options)?;
    // Where this table's range delete starts: its first key, or the
    // start of the key space for the first table.
    let mut start: Vec<u8> = Vec::new();
    let mut bytes = 0u64;
    for item in source.iter_in(SM_DATA_KEYSPACE)? {
        let (key, value) = item?;
        let size = (key.len() + value.len()) as u64;
        if bytes > 0 && bytes + size > table_bytes {
            // `key` is above every key of this table, and so above `start`.
            writer.delete_range(&start, &key)?;
            files.push(writer.finish()?.file_path);
            writer = SstWriter::create(table_path(files.len()), &options)?;
            start.clear();
            start.extend_from_slice(&key);
            bytes = 0;
        }
        writer.put(&key, &value)?;
        bytes += size;
    }
    writer.delete_range_from(&start)?;
    files.push(writer.finish()?.file_path);

    let ingest = IngestOptions {
        // Linked, not copied (they are rewritten anyway: a table with a
        // range delete takes a sequence number of its own).
        move_files: true,
        ..IngestOptions::default()
    };
    data.ingest(&files, &ingest)?;
    clear_work_dir(fs.as_ref(), &dir)?;
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata::fs::MemFileSystem;

    fn open(fs: &MemFileSystem, dir: &str) -> Db {
        let options = Options {
            fs: Arc::new(fs.clone()),
            ..Options::default()
        };
        Db::open(Path::new(dir), options).expect("open")
    }

    /// A read-only open of the database at `dir` whose `sm_data` holds
    /// `entries`.
    fn source(fs: &MemFileSystem, dir: &str, entries: &[(Vec<u8>, Vec<u8>)]) -> ReadOnlyDb {
        let db = open(fs, dir);
        let data = db.keyspace(SM_DATA_KEYSPACE).expect("keyspace");
        for (k, v) in entries {
            data.put(k, v).expect("put");
        }
        drop(data);
        drop(db);
        let options = Options {
            fs: Arc::new(fs.clone()),
            ..Options::default()
        };
        Db::open_read_only(Path::new(dir), options).expect("open read-only")
    }

    fn contents(ks: &Keyspace) -> Vec<(Vec<u8>, Vec<u8>)> {
        ks.iter()
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).expect("read"))
            .collect()
    }

    /// Every old key goes (in tables and in the memtable, the empty key
    /// and the largest key there can be included), every key of the
    /// source comes in, in tables of the size asked, and nothing is left
    /// in the work directory; another keyspace is untouched.
    #[test]
    fn an_install_makes_at_most_eight_tables_however_large_the_snapshot() {
        let mib = 1 << 20;
        assert_eq!(install_table_bytes(64 * mib, 0), 64 * mib);
        assert_eq!(install_table_bytes(64 * mib, 512 * mib), 64 * mib);
        assert_eq!(install_table_bytes(64 * mib, 10 << 30), 1280 * mib);
        for snapshot in [1, 7, 8, 9, 1000, 10 << 30, u64::MAX] {
            let table = install_table_bytes(1, snapshot);
            assert!(snapshot.div_ceil(table) <= MAX_INSTALL_TABLES, "{snapshot}");
        }
    }

    #[test]
    fn replace_data_makes_the_keyspace_the_sources_in_bounded_tables() {
        let fs = MemFileSystem::new();
        let largest = vec![0xFF; strata::MAX_KEY_SIZE];
        let db = open(&fs, "/db");
        let data = db.keyspace(SM_DATA_KEYSPACE).expect("keyspace");
        let other = db.keyspace("other").expect("keyspace");
        for i in 0..50 {
            data.put(format!("old{i:03}"), "x").expect("put");
        }
        data.put(b"", "old empty").expect("put");
        data.put(&largest, "old largest").expect("put");
        data.flush().expect("flush");
        data.put("new010", "old version").expect("put");
        data.put("zzz", "old, in the memtable").expect("put");
        other.put("kept", "yes").expect("put");

        let mut expected = Vec::new();
        for i in 0..40 {
            let (k, v) = (format!("new{i:03}"), format!("value {i}"));
            expected.push((k.into_bytes(), v.into_bytes()));
        }
        let first = source(&fs, "/source", &expected);

        // 13 or 14 bytes of key and value each: 2 per table of 32 bytes.
        let tables = replace_data(&db, &data, &first, 32).expect("replace");
        assert_eq!(tables, 20);
        assert_eq!(contents(&data), expected);
        assert_eq!(contents(&other), vec![(b"kept".to_vec(), b"yes".to_vec())]);
        assert_eq!(fs.list(&work_dir(&db)).expect("list"), Vec::<String>::new());

        // The source's empty key and largest key come in; the others go.
        let mut with_ends = expected.clone();
        with_ends.insert(0, (b"".to_vec(), b"new empty".to_vec()));
        with_ends.push((largest.clone(), b"new largest".to_vec()));
        let second = source(&fs, "/second", &with_ends);
        let tables = replace_data(&db, &data, &second, 1 << 20).expect("replace");
        assert_eq!(tables, 1);
        assert_eq!(contents(&data), with_ends);

        // An empty source empties the keyspace.
        let empty = source(&fs, "/empty", &[]);
        replace_data(&db, &data, &empty, 1 << 20).expect("replace");
        assert_eq!(contents(&data), Vec::new());
        drop(data);
        drop(other);
        drop(db);
        let db = open(&fs, "/db");
        let data = db.keyspace(SM_DATA_KEYSPACE).expect("keyspace");
        assert_eq!(contents(&data), Vec::new(), "after reopening");
    }

    /// The work directory's cleanup removes an install's tables and
    /// nothing else: a name it did not make is left, a directory too.
    #[test]
    fn clearing_the_work_dir_removes_only_an_installs_tables() {
        let fs = MemFileSystem::new();
        let dir = Path::new("/db/raft-install");
        fs.create_dir_all(&dir.join("a-dir")).expect("mkdir");
        for name in ["0.sst", "17.sst", "notes.txt", "x.sst", ".sst", "1.sst.bak"] {
            let mut f = fs.create(&dir.join(name)).expect("create");
            f.append(b"x").expect("write");
            f.sync().expect("sync");
        }
        clear_work_dir(&fs, dir).expect("clear");
        let mut left = fs.list(dir).expect("list");
        left.sort();
        assert_eq!(left, [".sst", "1.sst.bak", "a-dir", "notes.txt", "x.sst"]);
    }
}
