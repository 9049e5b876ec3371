//! Closing a database: stop the background threads, then make every
//! acknowledged write durable before the files are let go.
//!
//! Normally the WALs already hold every write, so a close only fsyncs the
//! WAL and seals it, so that later damage to it reads as corruption rather
//! than as a crash's torn tail (RocksDB likewise leaves memtables to WAL
//! replay). Two kinds of
//! write are in a memtable but not in a WAL: writes made with
//! `disable_wal`, and writes acknowledged after the WAL failed (with
//! `manual_wal_flush` a write is acknowledged before its record reaches
//! the file). For those the close writes every memtable to an L0 table
//! instead, and moves the log number past every WAL, as RocksDB flushes on
//! close when it holds unpersisted data (`avoid_flush_during_shutdown`).

use crate::core::DbInner;
use crate::error::Result;
use std::thread::JoinHandle;

impl DbInner {
    /// Close: stop and join `threads` (the background threads), then make
    /// every acknowledged write durable. The one way a database closes:
    /// the last handle's drop or `Db::close`, and an open whose threads
    /// failed to start. The caller holds the last handle, so no write is
    /// in progress. An error means some write may not have reached the
    /// disk; a later open recovers what did.
    pub(crate) fn close(&self, threads: Vec<JoinHandle<()>>) -> Result<()> {
        crate::background::stop(self, threads);
        let result = if self.needs_flush_at_close() {
            self.flush_memtables_at_close()
        } else {
            self.seal_wal()
        };
        // The WAL made ahead for a rotation that will not come: empty, and
        // no one's to replay; a clean close leaves only the WAL in use.
        self.discard_spare_wal();
        result
    }

    /// Whether some memtable holds a write its WAL does not.
    fn needs_flush_at_close(&self) -> bool {
        if self.write_path.wal.failure().is_some() {
            return true;
        }
        self.keyspaces.load().iter().any(|ks| {
            let sv = ks.super_version.load();
            std::iter::once(&sv.mem)
                .chain(sv.imms.iter())
                .any(|m| m.has_unlogged_writes())
        })
    }

    /// Write every keyspace's memtables, oldest first, to L0 tables and
    /// install them with a log number past every WAL, so none is replayed:
    /// one edit for all keyspaces, so a batch across them that no WAL
    /// holds is kept whole or not at all.
    fn flush_memtables_at_close(&self) -> Result<()> {
        // Only published writes: a group sequenced but never published
        // (its writers failed, e.g. after a panic) may sit in the memtable
        // without an earlier group that failed before inserting; keeping
        // it would leave a hole. Its writers were all told of the failure.
        let published = self.visible_sequence();
        let last_seq = self.write_path.pipeline.last_seq();
        let log_number = self.versions.lock().new_file_number()?;
        let keyspaces = self.keyspaces.load_full();
        let svs: Vec<_> = keyspaces
            .iter()
            .map(|ks| (ks, ks.super_version.load_full()))
            .collect();
        let all: Vec<_> = svs
            .iter()
            .map(|(ks, sv)| (&***ks, sv.memtables_oldest_first()))
            .collect();
        let mut wal_failed = self.write_path.wal.failure().is_some();
        if !wal_failed {
            // The WALs are kept for the change feed (below), which reads
            // them as fully synced once they are obsolete: write out and
            // sync what the buffer holds (a `manual_wal_flush` record, an
            // unsynced tail), as the seal does at the other close. A
            // failure is a failed WAL: the tables hold every write, and
            // the close goes on (logged: the change feed loses these WALs).
            if let Err(e) = self.write_path.wal.sync_all() {
                tracing::warn!(
                    error = %e,
                    dir = %self.dir.display(),
                    "WAL sync at close failed; the memtables go to tables, and the change feed cannot read these WALs"
                );
                wal_failed = true;
            }
        }
        self.flush_all_to_l0(&all, log_number, last_seq, published)?;
        // A failed WAL may miss writes the tables now hold: the change
        // feed cannot show anything up to here from these WALs.
        if wal_failed {
            self.feed
                .restarted(&self.options, &self.dir, log_number, last_seq);
        }
        // Every WAL is obsolete now: retention deletes them, or keeps them
        // for the change feed (`src/feed/`). Best effort: the next open
        // collects what is left.
        self.collect_wals(log_number);
        Ok(())
    }
}
