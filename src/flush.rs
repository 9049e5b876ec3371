//! Flush: a frozen memtable becomes an L0 table, installed by a version
//! edit that also retires the memtable's WAL.

use crate::core::DbInner;
use crate::error::{table_write_error, Error, Result};
use crate::filename::{table_path, wal_path};
use crate::fs::WriteAdapter;
use crate::iter::InternalIterator;
use crate::memtable::{MemTable, MemTableIter};
use crate::options::Options;
use crate::rate_limiter::{IoPriority, RateLimiter};
use crate::read::SuperVersion;
use crate::version::{FileMeta, TableFile, TableOpener, VersionEdit};
use std::sync::Arc;
use strata_sstable::{parse_internal_key, SeqNo, TableBuilder};

impl DbInner {
    /// Write `imm` to an L0 table and install it. REQUIRES: `imm` is the
    /// oldest frozen memtable (flushes install in order).
    pub(crate) fn flush_memtable(&self, imm: &Arc<MemTable>) -> Result<()> {
        let _ = self.hook(crate::hook::HookPoint::Flush);
        let start = std::time::Instant::now();
        // Tables hold only published writes, so compaction can treat the
        // visible sequence number as a floor for every reader. Once the
        // memtable's last write is published, every write into it has been
        // inserted (rotation does not wait for inserts in flight).
        // Only a rotation freezes a memtable, and seals it as it does.
        let sealed = imm.sealed_seq();
        debug_assert!(sealed.is_some(), "a flush of a memtable never sealed");
        self.wait_published(sealed.unwrap_or_else(|| imm.max_seq()))?;
        let number = self.versions.lock().new_file_number()?;
        let opener = self.versions.lock().opener().clone();
        let file = write_memtable_table(
            &self.options,
            &opener,
            number,
            imm,
            self.rate_limiter.clone(),
            SeqNo::MAX,
        )?;
        let flushed_bytes = file.as_ref().map_or(0, |f| f.meta.size);

        let mut versions = self.versions.lock();
        // WALs older than the oldest memtable still unflushed are done.
        let log_number = {
            let sv = self.super_version.load();
            std::iter::once(&sv.mem)
                .chain(sv.imms.iter())
                .filter(|m| !Arc::ptr_eq(m, imm))
                .map(|m| m.wal_number())
                .min()
                .unwrap_or(imm.wal_number() + 1)
        };
        let mut edit = VersionEdit {
            log_number: Some(log_number),
            ..VersionEdit::default()
        };
        let added: Vec<Arc<TableFile>> = file.into_iter().collect();
        for f in &added {
            edit.new_files.push((0, f.meta.clone()));
            edit.last_sequence = Some(f.meta.largest_seqno);
        }
        let version = versions.log_and_apply(edit, &added)?;
        self.update_super_version(|sv| SuperVersion {
            mem: Arc::clone(&sv.mem),
            imms: sv
                .imms
                .iter()
                .filter(|m| !Arc::ptr_eq(m, imm))
                .cloned()
                .collect(),
            version,
        });
        drop(versions);
        // The memtable's writes are in a table now; its WAL is not needed.
        let _ = self.fs.remove(&wal_path(&self.dir, imm.wal_number()));
        self.stats
            .record_flush(flushed_bytes, start.elapsed().as_micros() as u64);
        Ok(())
    }

    /// Write the entries of `mems` (oldest first) with sequence numbers at
    /// most `up_to` to L0 tables and install them with one edit that sets
    /// the log number to `log_number` (so no WAL below it is replayed) and
    /// the last sequence number to at least `last_seq`.
    /// Used where every memtable must reach a table at once, whatever its
    /// WAL holds: a clean close with writes no WAL holds (`close.rs`), and
    /// a resume after a background error (`resume.rs`). Nothing waits for
    /// publication: the caller has stopped writes. A failure installs
    /// nothing; the tables written so far are removed, unless the
    /// manifest write failed (its outcome is unknown: the edit may be
    /// durable), when the next open or resume removes them.
    pub(crate) fn flush_memtables_to_l0(
        &self,
        mems: &[&Arc<MemTable>],
        log_number: u64,
        last_seq: strata_sstable::SeqNo,
        up_to: strata_sstable::SeqNo,
    ) -> Result<Arc<crate::version::Version>> {
        let mut versions = self.versions.lock();
        let opener = versions.opener().clone();
        let mut tables = Vec::new();
        let written = mems.iter().try_for_each(|mem| {
            let number = versions.new_file_number()?;
            if let Some(t) = write_memtable_table(&self.options, &opener, number, mem, None, up_to)?
            {
                tables.push(t);
            }
            Ok::<_, Error>(())
        });
        if let Err(e) = written {
            // On a full disk they would only take the room a retry needs.
            for t in &tables {
                let _ = self.fs.remove(t.path());
            }
            return Err(e);
        }
        let edit = VersionEdit {
            log_number: Some(log_number),
            last_sequence: Some(last_seq.max(versions.last_sequence())),
            new_files: tables.iter().map(|t| (0, t.meta.clone())).collect(),
            ..VersionEdit::default()
        };
        versions.log_and_apply(edit, &tables)
    }
}

/// Write every entry of `mem` with a sequence number at most `up_to`
/// into table `number`, sync it, and open it. `None` when no entry
/// qualifies. On failure the partial file is removed.
pub(crate) fn write_memtable_table(
    options: &Options,
    opener: &TableOpener,
    number: u64,
    mem: &Arc<MemTable>,
    limiter: Option<Arc<RateLimiter>>,
    up_to: SeqNo,
) -> Result<Option<Arc<TableFile>>> {
    if mem.is_empty() {
        return Ok(None);
    }
    let path = table_path(&opener.dir, number);
    let result = (|| {
        let file = opener
            .fs
            .create(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        let writer = WriteAdapter(file, limiter.map(|l| (l, IoPriority::High)));
        let mut builder = TableBuilder::new(writer, options.table_options())
            .map_err(|e| table_write_error(&path, e))?;
        let mut it = MemTableIter::new(Arc::clone(mem));
        it.seek_to_first()?;
        while it.valid() {
            let k = parse_internal_key(it.key())
                .ok_or_else(|| Error::corruption(&path, 0, "memtable holds a malformed key"))?;
            if k.seqno <= up_to {
                builder
                    .add(k.user_key, k.seqno, k.kind, it.value())
                    .map_err(|e| table_write_error(&path, e))?;
            }
            it.next()?;
        }
        if builder.num_entries() == 0 {
            return Ok(None);
        }
        let table = finish_table(opener, number, builder, 0)?;
        opener
            .fs
            .sync_dir(&opener.dir)
            .map_err(|e| Error::io("sync directory", &opener.dir, e))?;
        Ok(Some(table))
    })();
    match result {
        Ok(Some(file)) => Ok(Some(file)),
        Ok(None) => {
            let _ = opener.fs.remove(&path);
            Ok(None)
        }
        Err(e) => {
            let _ = opener.fs.remove(&path);
            Err(e)
        }
    }
}

/// Finish table `number`: write its meta blocks and footer, fsync it, and
/// open it (reading back the footer, index and filter just written). The
/// caller makes the directory entry durable.
pub(crate) fn finish_table(
    opener: &TableOpener,
    number: u64,
    builder: TableBuilder<WriteAdapter>,
    level: usize,
) -> Result<Arc<TableFile>> {
    let path = table_path(&opener.dir, number);
    let built = builder.finish().map_err(|e| table_write_error(&path, e))?;
    let WriteAdapter(mut file, _) = built.writer;
    file.sync().map_err(|e| Error::io("sync", &path, e))?;
    drop(file);
    let props = built.properties;
    opener.open(
        FileMeta {
            number,
            size: built.file_size,
            smallest: props.smallest_user_key,
            largest: props.largest_user_key,
            smallest_seqno: props.min_seqno,
            largest_seqno: props.max_seqno,
        },
        level,
    )
}
