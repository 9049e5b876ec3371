//! The write path: sequence numbers, the write-ahead log, the memtable, and
//! memtable rotation when it fills.
//!
//! This version is serialized: one writer at a time holds `DbInner::writer`
//! while it logs and inserts.

use crate::batch::WriteBatch;
use crate::core::DbInner;
use crate::error::{Error, Result};
use crate::filename::wal_path;
use crate::fs::WritableFile;
use crate::memtable::MemTable;
use crate::options::WriteOptions;
use crate::read::SuperVersion;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use strata_sstable::SeqNo;

/// The writer's state, guarded by `DbInner::writer`.
pub(crate) struct WriterState {
    /// The open WAL, `None` only if opening a new one failed.
    pub wal: Option<strata_wal::Writer<Box<dyn WritableFile>>>,
    pub wal_number: u64,
    /// The last sequence number handed out.
    pub last_seq: SeqNo,
    /// The active memtable (the same one the current super version holds).
    pub mem: Arc<MemTable>,
}

impl DbInner {
    /// Apply `batch` atomically.
    pub(crate) fn write(&self, batch: &mut WriteBatch, opts: &WriteOptions) -> Result<()> {
        batch.validate()?;
        if batch.is_empty() {
            return Ok(());
        }
        let mut w = self.writer.lock();
        self.make_room_for_write(&mut w, opts, false)?;
        let first = w.last_seq + 1;
        batch.set_sequence(first);
        if !opts.disable_wal {
            let path = wal_path(&self.dir, w.wal_number);
            let wal = w.wal.as_mut().ok_or(Error::Closed)?;
            let logged = wal
                .add_record(batch.encoded())
                .and_then(|_| wal.flush())
                .and_then(|_| if opts.sync { wal.sync() } else { Ok(()) });
            if let Err(e) = logged {
                return Err(Error::Background(
                    self.set_bg_error(Error::io("write to WAL", path, e)),
                ));
            }
        }
        let mut seq = first;
        for op in batch.iter() {
            // The batch was built in memory by `WriteBatch`, so it decodes.
            let op = op.map_err(|e| Error::InvalidArgument(format!("malformed batch: {}", e.reason)))?;
            w.mem.insert(op.key, seq, op.kind, op.value);
            seq += 1;
        }
        w.last_seq = seq - 1;
        self.visible_seq.store(w.last_seq, Ordering::Release);
        Ok(())
    }

    /// Ensure the active memtable has room, rotating it when full (or when
    /// `force` and it is not empty). Waits while too many frozen memtables
    /// await flushing, unless `no_slowdown`.
    pub(crate) fn make_room_for_write(
        &self,
        w: &mut WriterState,
        opts: &WriteOptions,
        force: bool,
    ) -> Result<()> {
        loop {
            self.check_bg_error()?;
            let full = w.mem.approximate_bytes() >= self.options.write_buffer_size;
            if !(full || force && !w.mem.is_empty()) {
                return Ok(());
            }
            let max_frozen = self.options.max_write_buffer_number - 1;
            if self.super_version.read().imms.len() >= max_frozen {
                if opts.no_slowdown {
                    return Err(Error::WriteStall);
                }
                let mut st = self.bg.state.lock();
                while self.super_version.read().imms.len() >= max_frozen
                    && self.check_bg_error().is_ok()
                    && !st.shutting_down
                {
                    self.bg.done.wait(&mut st);
                }
                if st.shutting_down {
                    return Err(Error::Closed);
                }
                continue;
            }
            return self.rotate_memtable(w);
        }
    }

    /// Freeze the active memtable and start a new one with a new WAL.
    fn rotate_memtable(&self, w: &mut WriterState) -> Result<()> {
        // WALs are made durable in order: sync the old one before anything
        // can be written (and synced) to the new one, so a power loss never
        // keeps newer writes while losing older ones.
        if let Some(wal) = w.wal.as_mut() {
            if let Err(e) = wal.sync() {
                let path = wal_path(&self.dir, w.wal_number);
                return Err(Error::Background(
                    self.set_bg_error(Error::io("sync WAL", path, e)),
                ));
            }
        }
        let number = self.versions.lock().new_file_number();
        let path = wal_path(&self.dir, number);
        let file = self
            .fs
            .create(&path)
            .and_then(|f| self.fs.sync_dir(&self.dir).map(|_| f))
            .map_err(|e| Error::io("create WAL", &path, e))?;
        w.wal = Some(strata_wal::Writer::new(file));
        w.wal_number = number;
        let mem = Arc::new(MemTable::new(number));
        let frozen = std::mem::replace(&mut w.mem, Arc::clone(&mem));
        self.update_super_version(|sv| SuperVersion {
            mem,
            imms: std::iter::once(frozen).chain(sv.imms.iter().cloned()).collect(),
            version: Arc::clone(&sv.version),
        });
        self.bg.notify_all();
        Ok(())
    }

    /// Freeze the active memtable (if it holds anything) and wait until
    /// every frozen memtable is flushed.
    pub(crate) fn flush_and_wait(&self) -> Result<()> {
        {
            let mut w = self.writer.lock();
            self.make_room_for_write(&mut w, &WriteOptions::default(), true)?;
        }
        let mut st = self.bg.state.lock();
        loop {
            self.check_bg_error()?;
            if self.super_version.read().imms.is_empty() {
                return Ok(());
            }
            if st.shutting_down {
                return Err(Error::Closed);
            }
            self.bg.done.wait(&mut st);
        }
    }

    /// Make the WAL durable (used on close).
    pub(crate) fn sync_wal(&self) -> Result<()> {
        let mut w = self.writer.lock();
        let path = wal_path(&self.dir, w.wal_number);
        if let Some(wal) = w.wal.as_mut() {
            wal.sync().map_err(|e| Error::io("sync WAL", path, e))?;
        }
        Ok(())
    }
}
