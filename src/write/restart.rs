//! The write path's side of a resume (`src/resume.rs`): stopping writes
//! while the resume works, and starting over in a fresh WAL once every
//! memtable is in a table.
//!
//! After a background error the write path may be in any of these states:
//! the WAL buffer failed (an append stopped mid-copy, a sync failed), its
//! buffer holding records that never reached the file; groups inserted
//! into the memtable whose completion the error cut short, so the
//! publisher holds them back and the visible sequence number is stuck
//! before them. Rather than repair the failed WAL, a resume writes every
//! memtable to a table, so nothing depends on any WAL written so far, and
//! then starts over here: a new WAL and memtable, every pending group
//! published, the WAL buffer's positions moved past every record pushed.

use super::pipeline::Leadership;
use super::spare::{SpareWal, WAL_FIRST_BYTES};
use crate::core::DbInner;
use crate::error::Result;
use crate::keyspace::KeyspaceState;
use crate::lock_order::MutexGuard;
use crate::memtable::MemTable;
use crate::read::SuperVersion;
use crate::version::Version;
use std::sync::Arc;
use strata_sstable::SeqNo;

impl DbInner {
    /// Run `f` with writes stopped: as the write-queue leader (no group is
    /// sequenced meanwhile), once every group sequenced before has
    /// inserted its batches. Writers queue behind: those who lead while
    /// the background error stands fail with it, and later ones write once
    /// a resume cleared it.
    pub(crate) fn with_writes_stopped<R>(
        &self,
        f: impl FnOnce(&mut Leadership<'_>) -> Result<R>,
    ) -> Result<R> {
        self.write_path.pipeline.with_leadership(self, |leader| {
            leader.wait_inserted()?;
            f(leader)
        })
    }

    /// Hold off the flush thread's making of spare WALs while the guard
    /// lives (a resume lists and deletes WALs).
    pub(crate) fn stop_making_wals(&self) -> MutexGuard<'_, ()> {
        self.write_path.spare.making()
    }

    /// Start over in a fresh WAL. `write_out` writes every keyspace's
    /// memtables (oldest first) to tables and installs them with one edit
    /// with the given log number (the fresh WAL's, so no older WAL is ever
    /// replayed) and last sequence number, returning each keyspace's new
    /// version; once it succeeds, readers see the new versions and empty
    /// memtables, every group is published, and the WAL buffer goes on in
    /// the fresh WAL, the old ones closed (the caller deletes them). If it
    /// fails, nothing changes and the fresh WAL is kept as the spare.
    /// REQUIRES: writes stopped ([`with_writes_stopped`](Self::with_writes_stopped)),
    /// no flush or compaction running, and the making of spares held off.
    pub(crate) fn start_over(
        &self,
        leader: &mut Leadership<'_>,
        write_out: impl FnOnce(
            &[(&KeyspaceState, Vec<&Arc<MemTable>>)],
            u64,
            SeqNo,
        ) -> Result<Vec<Arc<Version>>>,
    ) -> Result<()> {
        let wp = &self.write_path;
        // A WAL made here starts small, not as large as the last one grew:
        // a resume usually follows a full disk, and one that frees room
        // for the tables should not then fail on the WAL's allocation. It
        // grows as it fills.
        let wal = match wp.spare.take() {
            // Numbered after the current WAL (see `rotate_memtables`), so
            // after every WAL a memtable logs to.
            Some(spare) if spare.number > wp.wal.wal_number() => spare,
            Some(stale) => {
                self.remove_spare(stale);
                self.new_wal_of(WAL_FIRST_BYTES)?
            }
            None => self.new_wal_of(WAL_FIRST_BYTES)?,
        };
        let keyspaces = self.keyspaces.load_full();
        let svs: Vec<_> = keyspaces
            .iter()
            .map(|ks| (ks, ks.current_super_version()))
            .collect();
        let all: Vec<_> = svs
            .iter()
            .map(|(ks, sv)| (&***ks, sv.memtables_oldest_first()))
            .collect();
        let versions = match write_out(&all, wal.number, leader.last_seq()) {
            Ok(versions) => versions,
            Err(e) => {
                wp.spare.put(wal);
                return Err(e);
            }
        };
        let SpareWal {
            number,
            file,
            mem: spare_mem,
        } = wal;
        let mut spare_mem = Some(spare_mem);
        let mut mems = (**leader.mems()).clone();
        for ((ks, _), version) in svs.iter().zip(versions) {
            let mem = self.fresh_memtable(ks, number, &mut spare_mem);
            self.update_super_version(ks, |_| SuperVersion {
                mem: Arc::clone(&mem),
                imms: Vec::new(),
                version,
            });
            mems = mems.with(ks.id, Some(mem));
        }
        leader.switch_memtables(mems);
        // Every group is inserted (`with_writes_stopped`) and in a synced
        // table now: those a background error kept from completing become
        // visible too.
        leader.publish_all();
        // Closed here, so an unlinked WAL frees its space.
        drop(wp.wal.restart(file, number));
        wp.reset_wal_starts(number, wp.wal.written());
        self.feed
            .restarted(&self.options, &self.dir, number, leader.last_seq());
        Ok(())
    }
}
