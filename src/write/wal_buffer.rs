//! The WAL buffer: framed log records between the write groups that fill
//! it (in sequence order) and whoever writes them to the WAL file: a
//! writer doing it inline, or the WAL syncer thread (`wal_syncer.rs`).
//!
//! Positions are log sequence numbers (LSNs): bytes pushed since the
//! database opened, across WAL files. Three positions are published:
//! `pushed` (in the buffer), `written` (handed to the operating system)
//! and `synced` (durable). A writer waits for the position its durability
//! level needs.
//!
//! It is a double buffer: producers append to the active buffer under a
//! short lock; a drainer swaps it for an empty spare and writes the full
//! one outside that lock. When the active buffer would exceed the
//! capacity, the producer drains it itself first: a full buffer blocks its
//! writer (backpressure) and never drops a record.
//!
//! Draining protocol (no record is ever stranded): the drain lock is taken
//! with `try_lock`; a drainer empties the buffer, releases the lock, then
//! checks the buffer again and retries if anything arrived. A producer
//! whose `try_lock` fails therefore knows the holder will see its record.
//!
//! The buffer also keeps the WAL files a rotation moved past ("retired"):
//! written in full, synced in the background by the syncer thread, and
//! always before any sync of a newer file is acknowledged, so WALs become
//! durable in log order.

use super::pipeline::Durability;
use super::wal_syncer::SyncRequests;
use crate::fs::WritableFile;
use crate::lock_order::{Condvar, Level, Mutex};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// A wait on progress re-checks its condition at least this often. The
/// protocol does not depend on it; it bounds the damage of a missed wakeup.
const WAIT_SLICE: Duration = Duration::from_millis(10);

struct Producer {
    buf: Vec<u8>,
    /// LSN at the end of `buf`.
    pushed: u64,
    /// Offset in the current WAL file at the end of `buf` (framing
    /// depends on the position within 32 KiB blocks).
    file_offset: u64,
    /// The current file: the LSN of its first byte framed by this buffer,
    /// and that byte's offset in the file.
    file_base_lsn: u64,
    file_base_offset: u64,
    /// The greatest synced length a sync point in the current file states
    /// (see `frame_sync_point`); `None` before its first sync point.
    stated: Option<u64>,
}

/// The WAL file and the drain state, behind the drain lock.
pub(crate) struct Drain {
    file: Box<dyn WritableFile>,
    number: u64,
    spare: Vec<u8>,
}

pub(crate) struct WalBuffer {
    capacity: usize,
    producer: Mutex<Producer>,
    drain: Mutex<Drain>,
    written: AtomicU64,
    synced: AtomicU64,
    /// fsyncs done.
    syncs: AtomicU64,
    /// What the syncer thread is asked to do (`wal_syncer.rs`).
    pub(super) syncer: SyncRequests,
    failed: AtomicBool,
    /// Why the buffer failed (the error's kind, so a full disk stays one,
    /// and its message), for the error writers report. Cleared only by
    /// [`WalBuffer::restart`], under this lock.
    failure: Mutex<Option<(io::ErrorKind, String)>>,
    /// Signalled when `written` or `synced` advance, or on failure.
    progress_lock: Mutex<()>,
    /// Threads waiting on `progress`; a drain skips the notification
    /// (a lock and a futex call) when there are none.
    progress_waiters: AtomicUsize,
    progress: Condvar,
    /// WAL files the buffer has moved past, written in full but maybe not
    /// synced; the syncer syncs them in the background, and a sync of the
    /// current file first makes sure they are synced (WALs become durable
    /// in order).
    retired: Mutex<Vec<Box<dyn WritableFile>>>,
    /// Retired files not yet synced (taken for syncing included).
    retired_unsynced: AtomicUsize,
    /// Files the drain has moved past, and how many of those are synced:
    /// equal whenever a sync is acknowledged (checked in debug builds).
    /// Counted where the file is replaced, not where it is listed, so the
    /// check does not lean on the listing it guards.
    files_left: AtomicU64,
    files_left_synced: AtomicU64,
    retired_synced: Condvar,
}

impl WalBuffer {
    pub fn new(capacity: usize, file: Box<dyn WritableFile>, number: u64) -> Self {
        WalBuffer {
            capacity,
            producer: Mutex::new(
                Level::WalProducer,
                Producer {
                    buf: Vec::with_capacity(capacity.min(1 << 20)),
                    pushed: 0,
                    file_offset: file.len(),
                    file_base_lsn: 0,
                    file_base_offset: file.len(),
                    // The WAL an open starts: no earlier WAL to prove synced.
                    stated: Some(file.len()),
                },
            ),
            drain: Mutex::new(
                Level::WalDrain,
                Drain {
                    file,
                    number,
                    spare: Vec::with_capacity(capacity.min(1 << 20)),
                },
            ),
            written: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            syncer: SyncRequests::default(),
            failed: AtomicBool::new(false),
            failure: Mutex::new(Level::WalFailure, None),
            progress_lock: Mutex::new(Level::WalProgress, ()),
            progress_waiters: AtomicUsize::new(0),
            progress: Condvar::new(),
            retired: Mutex::new(Level::WalRetired, Vec::new()),
            retired_unsynced: AtomicUsize::new(0),
            files_left: AtomicU64::new(0),
            files_left_synced: AtomicU64::new(0),
            retired_synced: Condvar::new(),
        }
    }

    /// Frame `payload` as one log record and append it. Returns the LSN
    /// just past it. REQUIRES: callers are serialized (the write-group
    /// leader), so records enter in sequence order.
    pub fn push(&self, payload: &[u8]) -> io::Result<u64> {
        loop {
            let mut p = self.producer.lock();
            let framed =
                (strata_wal::encoded_end(p.file_offset, payload.len()) - p.file_offset) as usize;
            if p.buf.is_empty() || p.buf.len() + framed <= self.capacity {
                self.frame_sync_point(&mut p);
                let before = p.buf.len();
                let offset = p.file_offset;
                p.file_offset = strata_wal::encode_record(&mut p.buf, offset, payload);
                p.pushed += (p.buf.len() - before) as u64;
                return Ok(p.pushed);
            }
            // Full: drain it ourselves, waiting for the drain lock if a
            // drainer holds it. Never drop, never grow past the capacity
            // (except for one oversized record into an empty buffer).
            drop(p);
            let mut d = self.drain.lock();
            self.drain_locked(&mut d)?;
        }
    }

    /// Before a record, state in the log how much of the current file is
    /// durably synced, if a sync completed since the last statement: a
    /// sync point (docs/wal-format.md). After a crash, damage below a
    /// stated length is corruption; anywhere else it is the torn tail a
    /// crash leaves. The first sync point of a file also proves every
    /// earlier WAL fully synced (a sync of this file syncs them first),
    /// which recovery relies on (`src/wal_replay.rs`).
    ///
    /// The stated length is what the sync published in `synced` covered:
    /// a drain boundary, so a fragment boundary, and synced before this
    /// is framed, as a sync point requires.
    fn frame_sync_point(&self, p: &mut Producer) {
        let synced = self.synced.load(Ordering::Acquire);
        if synced < p.file_base_lsn {
            return; // nothing of this file (or an older one) is synced yet
        }
        let synced_len = p.file_base_offset + (synced - p.file_base_lsn);
        if p.stated.is_some_and(|stated| stated >= synced_len) {
            return;
        }
        let before = p.buf.len();
        let offset = p.file_offset;
        p.file_offset = strata_wal::encode_sync_point(&mut p.buf, offset, synced_len);
        p.pushed += (p.buf.len() - before) as u64;
        p.stated = Some(synced_len);
    }

    /// Write everything in the buffer to the file. REQUIRES: the drain lock.
    fn drain_locked(&self, d: &mut Drain) -> io::Result<()> {
        self.check_failed()?;
        loop {
            let end = {
                let mut p = self.producer.lock();
                if p.buf.is_empty() {
                    return Ok(());
                }
                std::mem::swap(&mut p.buf, &mut d.spare);
                p.pushed
            };
            let result = d.file.append(&d.spare).and_then(|_| d.file.flush());
            d.spare.clear();
            if let Err(e) = result {
                self.fail(&e);
                return Err(e);
            }
            // A growth of the file: its new pages are warmed up in the
            // background before the writer reaches them.
            if self.syncer.is_running() {
                if let Some(job) = d.file.take_warm_up() {
                    self.syncer.add_warm_up(job);
                }
            }
            self.written.store(end, Ordering::Release);
            self.notify_progress();
        }
    }

    /// Drain if nobody else is draining; see the module comment.
    pub fn drain_if_idle(&self) -> io::Result<()> {
        loop {
            match self.drain.try_lock() {
                Some(mut d) => self.drain_locked(&mut d)?,
                None => return Ok(()),
            }
            if self.producer.lock().buf.is_empty() {
                return Ok(());
            }
        }
    }

    /// Drain and fsync if nobody else holds the drain lock (then re-check
    /// for records pushed meanwhile, as `drain_if_idle` does).
    fn sync_if_idle(&self) -> io::Result<()> {
        match self.drain.try_lock() {
            Some(mut d) => self.sync_locked(&mut d)?,
            None => return Ok(()),
        }
        self.drain_if_idle()
    }

    /// Drain, waiting for the drain lock.
    pub fn drain_all(&self) -> io::Result<()> {
        let mut d = self.drain.lock();
        self.drain_locked(&mut d)
    }

    /// Drain, then fsync. Everything pushed before the call is durable
    /// when it returns.
    pub fn sync_all(&self) -> io::Result<()> {
        let mut d = self.drain.lock();
        self.sync_locked(&mut d)
    }

    fn sync_locked(&self, d: &mut Drain) -> io::Result<()> {
        self.drain_locked(d)?;
        self.sync_retired()?;
        let target = self.written.load(Ordering::Acquire);
        if self.synced.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        if let Err(e) = d.file.sync() {
            self.fail(&e);
            return Err(e);
        }
        // WALs become durable in log order: a sync acknowledged while an
        // older WAL is unsynced would cover records a power loss can take.
        debug_assert_eq!(
            self.files_left.load(Ordering::Acquire),
            self.files_left_synced.load(Ordering::Acquire),
            "a WAL sync acknowledged while an older WAL is unsynced"
        );
        self.synced.fetch_max(target, Ordering::AcqRel);
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.notify_progress();
        Ok(())
    }

    /// Sync every retired file: those not yet taken here, and wait for the
    /// ones another thread is syncing. Retired files are no longer
    /// appended to, so this needs no drain lock.
    pub(super) fn sync_retired(&self) -> io::Result<()> {
        loop {
            let mut retired = self.retired.lock();
            let Some(mut file) = retired.pop() else {
                // After a failed sync nothing counts as synced, even
                // once no retired file is left unsynced.
                self.check_failed()?;
                if self.retired_unsynced.load(Ordering::Acquire) == 0 {
                    return Ok(());
                }
                // Another thread is syncing one: wait for it, then look
                // at the list again (a file retired meanwhile is ours).
                self.retired_synced.wait_for(&mut retired, WAIT_SLICE);
                continue;
            };
            drop(retired);
            file.retire();
            let result = file.sync();
            drop(file);
            if let Err(e) = result {
                self.fail(&e);
                let _g = self.retired.lock();
                // Its sync is over (failed): `restart` waits for no other.
                self.retired_unsynced.fetch_sub(1, Ordering::AcqRel);
                self.retired_synced.notify_all();
                return Err(e);
            }
            let _g = self.retired.lock();
            self.files_left_synced.fetch_add(1, Ordering::AcqRel);
            self.retired_unsynced.fetch_sub(1, Ordering::AcqRel);
            self.retired_synced.notify_all();
        }
    }

    /// Wait until `lsn` has the given durability. `inline` lets the caller
    /// drain (or drain and fsync) the buffer itself when no one else is, so a
    /// lone writer pays no thread handoff; while someone else drains or
    /// syncs, the caller waits, and the next sync covers every record
    /// pushed meanwhile (that is how the fsyncs of many groups coalesce).
    /// Without `inline`, a sync is left to the syncer thread. `stop`
    /// reports a background error that ends the wait.
    pub fn wait(
        &self,
        lsn: u64,
        durability: Durability,
        inline: bool,
        stop: impl Fn() -> Option<crate::Error>,
    ) -> crate::Result<()> {
        let reached = |wal: &Self| match durability {
            Durability::Buffered => true,
            Durability::Written => wal.written.load(Ordering::Acquire) >= lsn,
            Durability::Synced => wal.synced.load(Ordering::Acquire) >= lsn,
        };
        if durability == Durability::Synced && !inline {
            self.syncer.request(lsn);
        }
        loop {
            if reached(self) {
                return Ok(());
            }
            if let Some(e) = stop() {
                return Err(e);
            }
            if inline {
                let done = match durability {
                    Durability::Buffered => Ok(()),
                    Durability::Written => self.drain_if_idle(),
                    Durability::Synced => self.sync_if_idle(),
                };
                if done.is_err() {
                    continue; // the failure is reported by `stop` next round
                }
            }
            if reached(self) {
                return Ok(());
            }
            let mut g = self.progress_lock.lock();
            // Registered before the re-check (SeqCst on both sides): a
            // notifier that advanced the position after our check sees us.
            self.progress_waiters.fetch_add(1, Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
            if !reached(self) && !self.failed.load(Ordering::SeqCst) {
                self.progress.wait_for(&mut g, WAIT_SLICE);
            }
            self.progress_waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Switch to a new WAL file: write everything to the old one, then
    /// frame from offset 0 of the new file. The old file is synced in the
    /// background by the syncer thread (`background`), or here; either
    /// way before any sync of the new file completes, so WALs become
    /// durable in order. REQUIRES: no concurrent `push` (the caller leads
    /// the write queue).
    pub fn switch_file(
        &self,
        file: Box<dyn WritableFile>,
        number: u64,
        background: bool,
    ) -> io::Result<()> {
        let mut d = self.drain.lock();
        if !background {
            self.sync_locked(&mut d)?;
        }
        self.drain_locked(&mut d)?;
        if background {
            self.syncer.set_warm_up(file.warm_up());
        }
        let mut p = self.producer.lock();
        debug_assert!(p.buf.is_empty());
        let (old_number, old_len) = (d.number, p.file_offset);
        p.file_offset = file.len();
        p.file_base_lsn = p.pushed;
        p.file_base_offset = p.file_offset;
        p.stated = None;
        // The new WAL's first record names the old one and its length, so
        // recovery can tell whether the old one lost its tail.
        let start = crate::wal_record::encode_log_start(old_number, old_len);
        let offset = p.file_offset;
        p.file_offset = strata_wal::encode_record(&mut p.buf, offset, &start);
        p.pushed += p.buf.len() as u64;
        let old = std::mem::replace(&mut d.file, file);
        d.number = number;
        drop(p);
        self.files_left.fetch_add(1, Ordering::AcqRel);
        if background {
            // Listed (and counted) before the drain lock is released: a
            // sync takes that lock, so none can find the old WAL neither
            // current nor retired, sync only the new one, and publish a
            // synced position covering the old WAL's unsynced tail.
            let mut retired = self.retired.lock();
            self.retired_unsynced.fetch_add(1, Ordering::AcqRel);
            retired.push(old);
        } else {
            // Synced above, and nothing was appended since.
            self.files_left_synced.fetch_add(1, Ordering::AcqRel);
            drop(old);
        }
        drop(d);
        if background {
            self.syncer.wake();
        }
        Ok(())
    }

    /// Make everything pushed durable, then seal the log: a sync point
    /// at the next block start stating all of it synced, itself synced,
    /// so any later damage to the file reads as corruption, not as a
    /// crash's torn tail (a clean close does this last). Nothing may be
    /// pushed after it.
    pub fn seal(&self) -> io::Result<()> {
        let mut d = self.drain.lock();
        self.sync_locked(&mut d)?;
        {
            let mut p = self.producer.lock();
            debug_assert!(p.buf.is_empty());
            let synced = self.synced.load(Ordering::Acquire);
            if synced < p.file_base_lsn || p.file_offset == p.file_base_offset {
                return Ok(()); // nothing written to this file: nothing to prove
            }
            let synced_len = p.file_base_offset + (synced - p.file_base_lsn);
            let offset = p.file_offset;
            p.file_offset = strata_wal::encode_seal(&mut p.buf, offset, synced_len);
            p.pushed += p.buf.len() as u64;
            p.stated = Some(synced_len);
        }
        self.sync_locked(&mut d)
    }

    /// Start over in `file` (WAL `number`), from a clean state: the
    /// failure, if any, is cleared, records still buffered are dropped,
    /// and `written` and `synced` cover every record pushed so far, so
    /// every waiter returns. The current file and the retired ones are
    /// abandoned unsynced and handed back, for the caller to close and
    /// delete. A resume calls this once the memtables holding every
    /// record pushed so far are in synced tables: no sync is claimed that
    /// was not made (the records are durable there, not in these WALs).
    /// REQUIRES: that, and no concurrent `push` (the caller leads the
    /// write queue).
    pub fn restart(&self, file: Box<dyn WritableFile>, number: u64) -> Vec<Box<dyn WritableFile>> {
        let mut d = self.drain.lock();
        let mut abandoned = Vec::new();
        {
            // A retired file another thread is syncing is off the list:
            // wait for that sync to end, in success or failure.
            let mut retired = self.retired.lock();
            while self.retired_unsynced.load(Ordering::Acquire) > retired.len() {
                self.retired_synced.wait_for(&mut retired, WAIT_SLICE);
            }
            abandoned.extend(retired.drain(..));
            self.retired_unsynced.store(0, Ordering::Release);
        }
        let mut failure = self.failure.lock();
        let mut p = self.producer.lock();
        p.buf.clear();
        p.file_offset = file.len();
        let end = p.pushed;
        // The new file is the first live WAL (the resume's edit sets the
        // log number to it), like the one an open starts: no log start,
        // and no earlier WAL for a sync point to prove synced.
        p.file_base_lsn = end;
        p.file_base_offset = p.file_offset;
        p.stated = Some(p.file_offset);
        d.spare.clear();
        self.syncer.set_warm_up(file.warm_up());
        abandoned.push(std::mem::replace(&mut d.file, file));
        d.number = number;
        // Every file left behind counts as synced from now on: nothing
        // durable depends on it.
        let left = self.files_left.fetch_add(1, Ordering::AcqRel) + 1;
        self.files_left_synced.store(left, Ordering::Release);
        self.written.fetch_max(end, Ordering::AcqRel);
        self.synced.fetch_max(end, Ordering::AcqRel);
        *failure = None;
        self.failed.store(false, Ordering::Release);
        drop(p);
        drop(failure);
        drop(d);
        self.notify_progress();
        self.syncer.wake();
        abandoned
    }

    /// The number of the WAL file records currently go to.
    pub fn wal_number(&self) -> u64 {
        self.drain.lock().number
    }

    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// fsyncs done so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    pub fn synced(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    #[cfg(test)]
    pub fn pushed(&self) -> u64 {
        self.producer.lock().pushed
    }

    /// Whether an append or a sync failed (until a restart).
    pub(super) fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Retired files not yet synced.
    pub(super) fn retired_unsynced(&self) -> usize {
        self.retired_unsynced.load(Ordering::Acquire)
    }

    /// The warm-up of the file written now.
    pub(super) fn current_warm_up(&self) -> Option<crate::fs::WarmUp> {
        self.drain.lock().file.warm_up()
    }

    fn fail(&self, e: &io::Error) {
        self.failure
            .lock()
            .get_or_insert_with(|| (e.kind(), e.to_string()));
        self.failed.store(true, Ordering::Release);
        self.notify_progress();
    }

    /// Fail the buffer for `reason` (the syncer thread panicked): every
    /// wait on a position and every later write or sync fails.
    pub fn poison(&self, reason: &str) {
        self.fail(&io::Error::other(reason));
    }

    /// Wake the threads waiting for a position, so they look at their
    /// stop condition (a background error) now.
    pub fn wake_waiters(&self) {
        self.notify_progress();
    }

    /// Why the buffer stopped, if an append or sync failed.
    pub fn failure(&self) -> Option<io::Error> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        let failure = self.failure.lock();
        failure
            .as_ref()
            .map(|(kind, message)| io::Error::new(*kind, message.clone()))
    }

    /// Run `record` on why the buffer stopped, if it has, under the lock
    /// [`restart`](Self::restart) clears the failure under: a failure a
    /// resume has cleared is never recorded after it.
    pub fn record_failure<R>(&self, record: impl FnOnce(io::Error) -> R) -> Option<R> {
        let failure = self.failure.lock();
        let (kind, message) = failure.as_ref()?;
        Some(record(io::Error::new(*kind, message.clone())))
    }

    fn check_failed(&self) -> io::Result<()> {
        if !self.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        let (kind, reason) = match self.failure.lock().as_ref() {
            Some((kind, message)) => (*kind, message.clone()),
            None => (io::ErrorKind::Other, "unknown".to_owned()),
        };
        Err(io::Error::new(
            kind,
            format!("an earlier WAL write failed: {reason}"),
        ))
    }

    fn notify_progress(&self) {
        // Pairs with the fence in `wait`: either the waiter sees the new
        // position, or we see the waiter.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.progress_waiters.load(Ordering::SeqCst) == 0 {
            return;
        }
        let _g = self.progress_lock.lock();
        self.progress.notify_all();
    }

    #[cfg(test)]
    pub(crate) fn drain_lock_for_test(&self) -> crate::lock_order::MutexGuard<'_, Drain> {
        self.drain.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{FileSystem, MemFileSystem};
    use std::path::Path;
    use std::sync::Arc;

    fn buffer(capacity: usize) -> (MemFileSystem, Arc<WalBuffer>) {
        let fs = MemFileSystem::new();
        fs.create_dir_all(Path::new("/w")).unwrap();
        let file = fs.create(Path::new("/w/1.log")).unwrap();
        (fs, Arc::new(WalBuffer::new(capacity, file, 1)))
    }

    fn read_back(fs: &MemFileSystem) -> Vec<Vec<u8>> {
        let data = fs.read(Path::new("/w/1.log")).unwrap();
        let mut r = strata_wal::Reader::new(&data, strata_wal::RecoveryMode::AbsoluteConsistency);
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            out.push(rec.data.to_vec());
        }
        out
    }

    #[test]
    fn records_come_out_in_push_order_with_positions_advancing() {
        let (fs, wal) = buffer(1 << 16);
        let mut last = 0;
        for i in 0..100u32 {
            let lsn = wal.push(&i.to_le_bytes().repeat(i as usize)).unwrap();
            assert!(lsn > last);
            last = lsn;
        }
        assert_eq!(wal.written(), 0);
        wal.drain_if_idle().unwrap();
        assert_eq!(wal.written(), last);
        wal.sync_all().unwrap();
        assert_eq!(wal.synced(), last);
        let recs = read_back(&fs);
        assert_eq!(recs.len(), 100);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r, &(i as u32).to_le_bytes().repeat(i));
        }
    }

    #[test]
    fn a_full_buffer_blocks_its_pusher_until_drained_and_drops_nothing() {
        let (fs, wal) = buffer(256);
        // Hold the drain lock: a push that finds the buffer full must wait.
        let guard = wal.drain_lock_for_test();
        wal.push(&[1u8; 200]).unwrap();
        let pusher = {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || wal.push(&[2u8; 200]).unwrap())
        };
        // The pusher cannot finish: the buffer is full and we hold the lock.
        assert_eq!(wal.pushed(), 200 + 7);
        drop(guard);
        let lsn = pusher.join().unwrap();
        wal.drain_all().unwrap();
        assert_eq!(wal.written(), lsn);
        assert_eq!(read_back(&fs), vec![vec![1u8; 200], vec![2u8; 200]]);
    }

    #[test]
    fn concurrent_waiters_see_their_records_written() {
        let (fs, wal) = buffer(4096);
        let wal2 = Arc::clone(&wal);
        let syncer = std::thread::spawn(move || wal2.run_syncer(&|| {}));
        let lsns: Vec<u64> = (0..50u8).map(|i| wal.push(&[i; 100]).unwrap()).collect();
        let waiters: Vec<_> = lsns
            .iter()
            .enumerate()
            .map(|(i, &lsn)| {
                let wal = Arc::clone(&wal);
                std::thread::spawn(move || {
                    let d = if i % 3 == 0 {
                        Durability::Synced
                    } else {
                        Durability::Written
                    };
                    wal.wait(lsn, d, true, || None).unwrap();
                })
            })
            .collect();
        for w in waiters {
            w.join().unwrap();
        }
        wal.stop_syncer();
        syncer.join().unwrap();
        assert_eq!(read_back(&fs).len(), 50);
    }

    /// With no syncer thread running, a retired WAL stays unsynced until
    /// a sync of the current one, which must sync it first.
    #[test]
    fn syncing_the_new_wal_syncs_the_retired_one_first() {
        let (fs, wal) = buffer(1 << 16);
        wal.push(b"in the old log").unwrap();
        let next = fs.create(Path::new("/w/2.log")).unwrap();
        fs.sync_dir(Path::new("/w")).unwrap();
        wal.switch_file(next, 2, true).unwrap();
        wal.push(b"in the new log").unwrap();
        wal.sync_all().unwrap();
        fs.power_loss(crate::fs::UnsyncedData::Drop);
        assert_eq!(read_back(&fs), vec![b"in the old log".to_vec()]);
        let data = fs.read(Path::new("/w/2.log")).unwrap();
        assert!(!data.is_empty(), "the new log lost a synced record");
    }

    /// A resume restarts a failed buffer in a new file: the failure is
    /// gone, every record pushed counts as written and synced (the resume
    /// made them durable elsewhere), and the syncer thread, which met the
    /// failure, serves syncs again (it used to exit on a failure).
    #[test]
    fn a_restart_clears_the_failure_and_the_syncer_serves_syncs_again() {
        let (fs, wal) = buffer(4096);
        let syncer = {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || wal.run_syncer(&|| {}))
        };
        fs.add_fault(crate::fs::FaultPlan::always(crate::fs::FsOp::Append));
        let lost = wal.push(b"lost with the old file").unwrap();
        let failed = {
            let wal2 = Arc::clone(&wal);
            wal.wait(lost, Durability::Synced, false, move || {
                wal2.failure()
                    .map(|e| crate::Error::io("sync", "/w/1.log", e))
            })
        };
        assert!(failed.is_err(), "the syncer's append did not fail");
        assert!(wal.failure().is_some());
        fs.clear_faults();
        let next = fs.create(Path::new("/w/2.log")).unwrap();
        let abandoned = wal.restart(next, 2);
        assert_eq!(abandoned.len(), 1, "the failed file is handed back");
        assert!(wal.failure().is_none());
        assert_eq!((wal.written(), wal.synced()), (lost, lost));
        assert_eq!(wal.wal_number(), 2);
        let after = wal.push(b"after the restart").unwrap();
        let (done, synced) = std::sync::mpsc::channel();
        let waiter = {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                let r = wal.wait(after, Durability::Synced, false, || None);
                done.send(r.is_ok()).unwrap();
            })
        };
        // A bound on a hang, not a synchronisation: only the syncer
        // thread serves this sync.
        let served = synced.recv_timeout(std::time::Duration::from_secs(30));
        wal.stop_syncer();
        syncer.join().unwrap();
        assert_eq!(
            served,
            Ok(true),
            "no syncer served the sync after the restart"
        );
        waiter.join().unwrap();
        let data = fs.read(Path::new("/w/2.log")).unwrap();
        let mut r = strata_wal::Reader::new(&data, strata_wal::RecoveryMode::AbsoluteConsistency);
        assert_eq!(
            r.next_record().unwrap().map(|rec| rec.data.to_vec()),
            Some(b"after the restart".to_vec())
        );
    }

    #[test]
    fn a_failed_write_is_reported_and_later_writes_refused() {
        let (fs, wal) = buffer(4096);
        fs.add_fault(crate::fs::FaultPlan::always(crate::fs::FsOp::Append));
        let lsn = wal.push(b"doomed").unwrap();
        assert!(wal.drain_all().is_err());
        assert!(wal.written() < lsn);
        fs.clear_faults();
        assert!(
            wal.drain_all().is_err(),
            "the wal kept writing after a failure"
        );
    }
}
