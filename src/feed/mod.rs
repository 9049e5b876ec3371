//! The change feed: every committed write batch from a sequence number on,
//! read back from the WALs (docs/design/change-feed.md).
//!
//! - `retention.rs`: which obsolete WALs may go (limits, cursor pins).
//! - `state.rs`: the durable state (`CHANGEFEEDS`): cursors, the floor,
//!   the recovery points of earlier opens, the numbers ingestions took.
//! - `reader.rs`: [`UpdatesSince`], the iterator, and the batches it yields.
//! - `cursor.rs`: [`ChangeFeed`], a named durable cursor.
//!
//! The feed reads the WALs through the filesystem with recovery's own
//! chain reader (`src/wal_replay.rs`), and only their synced prefix: a
//! batch the feed shows survives any crash, so a replica fed by it never
//! holds a write its primary lost.

mod cursor;
mod reader;
mod retention;
mod state;

pub use cursor::ChangeFeed;
pub use reader::{ChangeBatch, ChangeKind, ChangeRecord, UpdatesSince};

use crate::core::DbInner;
use crate::error::{Error, Result};
use crate::filename::{parse_file_name, wal_path, FileKind};
use crate::fs::FileSystem;
use crate::options::{Options, WalRecoveryMode};
use crate::wal_replay::read_wal_chain;
use retention::{deletable_prefix, ObsoleteWal, RetentionLimits};
use state::{Epoch, FeedState, Ingestion};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use strata_sstable::SeqNo;

/// The feed's side of a database: its durable state and what retention
/// remembers about obsolete WALs. A leaf lock: nothing else is locked
/// under it (it is held while obsolete WALs are read and deleted).
pub(crate) struct Feed {
    inner: parking_lot::Mutex<FeedInner>,
    /// WAL `n` holds only batches numbered above this: the last number
    /// given out when the write path moved to it (this run's WALs). A
    /// lock of its own: a rotation notes here, and must not wait for a
    /// collection reading WALs under `inner`.
    started_after: parking_lot::Mutex<BTreeMap<u64, SeqNo>>,
    /// Whether a cursor exists (`state.cursors` is not empty), kept in
    /// step with it under `inner`: read without that lock by every
    /// rotation and flush (`keeps_wals`), which must not wait for a
    /// collection deleting WALs and syncing the state file under it.
    has_cursors: AtomicBool,
}

struct FeedInner {
    state: FeedState,
    /// Whether `CHANGEFEEDS` exists: once it does, it is kept up to date.
    stored: bool,
    /// When each obsolete WAL was first seen obsolete (the clock's
    /// microseconds; at open for those an earlier run kept).
    obsolete_since: BTreeMap<u64, u64>,
    /// The last batch sequence number read from an obsolete WAL.
    last_seq_read: BTreeMap<u64, SeqNo>,
    /// For each ingestion this process recorded (by its first number):
    /// the WAL and the length of it the ingestion synced before taking
    /// its numbers, so every batch logged before them lies there or
    /// earlier. Readers use it to know they read everything below an
    /// ingestion (`reader.rs`); not stored: an open notes the start of
    /// its first WAL for every ingestion an earlier process made.
    synced_before: BTreeMap<SeqNo, (u64, u64)>,
}

/// What an open tells the feed about its recovery.
pub(crate) struct Recovered<'a> {
    /// The WALs replay read (at or above the MANIFEST's log number).
    pub replayed_wals: &'a [u64],
    /// The first batch sequence number replay met, if any.
    pub first_seq: Option<SeqNo>,
    /// The last sequence number the database holds after recovery.
    pub last_seq: SeqNo,
    /// The WAL this open writes to.
    pub fresh_wal: u64,
}

impl Feed {
    /// Load the feed's state at open. When the feed keeps WALs (a limit
    /// is set or a cursor exists), the WALs replay read are synced (their
    /// tail may be a crash's unsynced bytes, now in synced tables: a
    /// later power loss must not take from the feed what the database
    /// kept) and this open's recovery point is stored, before the
    /// MANIFEST edit that makes those WALs obsolete.
    pub fn open(options: &Options, dir: &Path, recovered: Recovered<'_>) -> Result<Feed> {
        let fs = &*options.fs;
        let loaded = FeedState::load(fs, dir)?;
        let stored = loaded.is_some();
        let mut state = loaded.unwrap_or_else(|| FeedState {
            // The WALs an earlier run deleted held what came before.
            floor_seq: recovered
                .first_seq
                .unwrap_or(recovered.last_seq.saturating_add(1)),
            ..FeedState::default()
        });
        // A cursor created or acknowledged at writes this crash lost (they
        // were visible, not synced) would skip the writes that now reuse
        // their numbers: it resumes after what the database kept. The
        // numbers ingestions took are never reused (`last_taken`).
        let kept = recovered.last_seq.max(state.last_taken());
        for acked in state.cursors.values_mut() {
            *acked = (*acked).min(kept);
        }
        let keeps = RetentionLimits::from_options(options).any() || !state.cursors.is_empty();
        if keeps {
            for &n in recovered.replayed_wals {
                let path = wal_path(dir, n);
                fs.sync_file(&path)
                    .map_err(|e| Error::io("sync", &path, e))?;
            }
            state.epochs.push(Epoch {
                first_wal: recovered.fresh_wal,
                last_seq: recovered.last_seq,
            });
        }
        let has_cursors = AtomicBool::new(!state.cursors.is_empty());
        // Every batch numbered before an earlier process's ingestion was
        // logged by that process, in a WAL below the one this open starts,
        // which a read plans whole: that is how far each synced. Without
        // it a reader at the tail would wait for a later batch to report
        // an ingestion that unlogged numbers (`disable_wal`) kept it from
        // reaching, and a clean close's feed would not show it.
        let synced_before = state
            .ingestions
            .iter()
            .map(|i| (i.first, (recovered.fresh_wal, 0)))
            .collect();
        let feed = Feed {
            has_cursors,
            inner: parking_lot::Mutex::new(FeedInner {
                state,
                stored,
                obsolete_since: BTreeMap::new(),
                last_seq_read: BTreeMap::new(),
                synced_before,
            }),
            started_after: parking_lot::Mutex::new(
                [(recovered.fresh_wal, recovered.last_seq)].into(),
            ),
        };
        if keeps || stored {
            let mut g = feed.inner.lock();
            g.state.store(fs, dir)?;
            g.stored = true;
        }
        Ok(feed)
    }

    /// Whether WALs are kept past their flush: a retention limit is set
    /// or a cursor exists (what `open` and `collect` keep them for).
    pub fn keeps_wals(&self, options: &Options) -> bool {
        RetentionLimits::from_options(options).any() || self.has_cursors.load(Ordering::Acquire)
    }

    /// The last sequence number taken as the stored state knows it (an
    /// ingestion's, or the last below the floor): an open gives out no
    /// number up to it, even one whose ingestion a crash cut short before
    /// its MANIFEST edit (the feed reports it as a gap), or one the
    /// MANIFEST never held because a flush recorded only its memtable's.
    pub fn last_taken(&self) -> SeqNo {
        self.inner.lock().state.last_taken()
    }

    /// An ingestion is about to take the sequence numbers `first..=last`:
    /// store them durably, before its MANIFEST edit, so a reader crossing
    /// them is told of writes the WALs do not hold, also after a crash,
    /// and no open gives them to a write (`last_taken`). They stay in
    /// the state whatever the ingestion's outcome (a reader may have
    /// reported them already), also when storing fails: the file may
    /// hold them all the same, and the next store writes them.
    pub fn note_ingestion(
        &self,
        fs: &dyn FileSystem,
        dir: &Path,
        first: SeqNo,
        last: SeqNo,
        synced_before: Option<(u64, u64)>,
    ) -> Result<()> {
        let mut g = self.inner.lock();
        g.state.ingestions.push(Ingestion { first, last });
        g.state.prune_ingestions();
        let g = &mut *g;
        let kept = &g.state.ingestions;
        g.synced_before
            .retain(|first, _| kept.iter().any(|i| i.first == *first));
        if let Some(mark) = synced_before {
            g.synced_before.insert(first, mark);
        }
        g.state.store(fs, dir)?;
        g.stored = true;
        Ok(())
    }

    /// The write path moved to WAL `number` after giving out `last_seq`.
    pub fn note_wal_started(&self, number: u64, last_seq: SeqNo) {
        self.started_after.lock().insert(number, last_seq);
    }

    /// Every WAL before `number` was abandoned after a WAL failure (a
    /// resume, or a close that wrote the memtables to tables): their
    /// tails may miss writes that went to tables instead, so the feed
    /// cannot show anything up to `last_seq` from them, and the floor
    /// moves past it.
    pub fn restarted(&self, options: &Options, dir: &Path, number: u64, last_seq: SeqNo) {
        self.started_after.lock().insert(number, last_seq);
        let mut g = self.inner.lock();
        g.state.floor_seq = g.state.floor_seq.max(last_seq.saturating_add(1));
        // The WALs before the new one hold nothing above the floor: no
        // reader reads them again, even if their collection fails.
        g.state.first_wal = g.state.first_wal.max(number);
        g.state.prune_ingestions();
        if g.stored {
            if let Err(e) = g.state.store(&*options.fs, dir) {
                tracing::warn!(error = %e, "change feed state not stored after a resume");
            }
        }
    }

    /// What the ingestion first numbered `first` synced before it took
    /// its numbers: a WAL and a length of it (see `FeedInner`).
    fn synced_before(&self, first: SeqNo) -> Option<(u64, u64)> {
        self.inner.lock().synced_before.get(&first).copied()
    }

    fn floor_and_epochs(&self) -> (SeqNo, FeedState) {
        let g = self.inner.lock();
        (g.state.floor_seq, g.state.clone())
    }

    /// Delete the obsolete WALs (below `log_number`) retention lets go.
    pub fn collect(&self, options: &Options, dir: &Path, log_number: u64) -> Result<()> {
        let fs = &*options.fs;
        let mut g = self.inner.lock();
        let limits = RetentionLimits::from_options(options);
        let all = list_wals(fs, dir)?;
        let now = options.clock.now_micros();
        let mut wals = Vec::new();
        for &n in all.iter().filter(|&&n| n < log_number) {
            let since = *g.obsolete_since.entry(n).or_insert(now);
            let path = wal_path(dir, n);
            let size_bytes = fs.file_size(&path).unwrap_or(0);
            wals.push(ObsoleteWal {
                number: n,
                size_bytes,
                obsolete_since_micros: since,
            });
        }
        if wals.is_empty() {
            return Ok(());
        }
        let successor = |n: u64| all.iter().copied().find(|&m| m > n).unwrap_or(log_number);
        let min_acked = g.state.cursors.values().copied().min();
        let floor = g.state.floor_seq;
        let first_wal = g.state.first_wal;
        let inner = &mut *g;
        let mut pinned = |n: u64| -> Result<bool> {
            let Some(acked) = min_acked else {
                return Ok(false);
            };
            let last = inner.last_seq_bound(fs, dir, &self.started_after, n, successor(n))?;
            // Writes below the floor are unreadable anyway: no pin.
            Ok(last >= floor && last > acked)
        };
        // Collected already (their deletion failed, or a power loss undid
        // it): they go first, whatever retention says.
        let stale = wals.iter().take_while(|w| w.number < first_wal).count();
        let count = stale + deletable_prefix(&wals[stale..], limits, now, &mut pinned)?;
        if count == 0 {
            return Ok(());
        }
        let next = successor(wals[count - 1].number);
        // The last batch the deleted WALs held: the newest one's bound,
        // or, if it holds none (a WAL an open started, empty when the
        // next open came), an older one's.
        let mut last = 0;
        for w in wals[stale..count].iter().rev() {
            last = g.last_seq_bound(fs, dir, &self.started_after, w.number, successor(w.number))?;
            if last > 0 {
                break;
            }
        }
        g.state.floor_seq = g.state.floor_seq.max(last.saturating_add(1));
        g.state.prune_ingestions();
        // A recovery point matters only while a WAL below it is left.
        g.state.epochs.retain(|e| e.first_wal > next);
        g.state.first_wal = g.state.first_wal.max(next);
        if g.stored {
            // Stored before the deletion: a crash in between leaves a
            // floor too high (a gap reported early), never too low.
            g.state.store(fs, dir)?;
        }
        for w in &wals[..count] {
            // Oldest first, and stop at the first that cannot be removed:
            // it and the newer ones are tried again at the next
            // collection. Going on past it would leave an old WAL with
            // newer ones gone, a hole a reader of the chain (the feed,
            // recovery's checks) takes for a lost WAL.
            if fs.remove(&wal_path(dir, w.number)).is_err() {
                break;
            }
            g.obsolete_since.remove(&w.number);
            g.last_seq_read.remove(&w.number);
            self.started_after.lock().remove(&w.number);
        }
        tracing::debug!(
            deleted = count,
            floor_seq = g.state.floor_seq,
            "obsolete WALs deleted"
        );
        Ok(())
    }
}

impl FeedInner {
    /// The largest sequence number obsolete WAL `n` may hold, `successor`
    /// being the WAL after it: the number given out before the successor
    /// started, if this run saw it start; else read from the WAL.
    fn last_seq_bound(
        &mut self,
        fs: &dyn FileSystem,
        dir: &Path,
        started_after: &parking_lot::Mutex<BTreeMap<u64, SeqNo>>,
        n: u64,
        successor: u64,
    ) -> Result<SeqNo> {
        if let Some(&s) = started_after.lock().get(&successor) {
            return Ok(s);
        }
        if let Some(&s) = self.last_seq_read.get(&n) {
            return Ok(s);
        }
        let cap = self.state.cap_for(n);
        let mut last = 0;
        let manifest = state::state_path(dir);
        read_wal_chain(
            fs,
            dir,
            &manifest,
            n,
            &[n],
            WalRecoveryMode::PointInTimeRecovery,
            &mut |_, _, batch| {
                if let Ok(b) = crate::batch::DecodedBatch::new(batch) {
                    let end = b.sequence() + u64::from(b.count()).saturating_sub(1);
                    if b.count() > 0 && b.sequence() <= cap {
                        last = last.max(end);
                    }
                }
                Ok(Ok(()))
            },
        )?;
        self.last_seq_read.insert(n, last);
        Ok(last)
    }
}

/// The WAL numbers in `dir`, ascending.
fn list_wals(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<u64>> {
    let mut v: Vec<u64> = fs
        .list(dir)
        .map_err(|e| Error::io("list", dir, e))?
        .iter()
        .filter_map(|name| match parse_file_name(name) {
            Some(FileKind::Wal(n)) => Some(n),
            _ => None,
        })
        .collect();
    v.sort_unstable();
    Ok(v)
}

/// The sequence numbers ingestions took, `(first, last)` oldest first, as
/// the change feed's state file in `dir` records them (none without one):
/// numbers no WAL record holds. Checksummed and decoded as an open reads
/// it; for tools that check the write sequence (`inspect`).
pub fn recorded_ingestions(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<(u64, u64)>> {
    Ok(FeedState::load(fs, dir)?
        .map(|s| s.ingestions.iter().map(|i| (i.first, i.last)).collect())
        .unwrap_or_default())
}

impl DbInner {
    /// Delete the obsolete WALs retention lets go (best effort: errors are
    /// logged, and what is left goes at a later collection).
    pub(crate) fn collect_wals(&self, log_number: u64) {
        if let Err(e) = self.feed.collect(&self.options, &self.dir, log_number) {
            tracing::warn!(error = %e, "obsolete WALs not collected");
        }
    }

    /// Every batch from sequence number `seq` on (see [`crate::Db::updates_since`]).
    pub(crate) fn updates_since(self: &std::sync::Arc<Self>, seq: SeqNo) -> Result<UpdatesSince> {
        let (floor, _) = self.feed.floor_and_epochs();
        let seq = seq.max(1);
        if seq < floor {
            return Err(Error::ChangeFeedGap {
                from: seq,
                to: floor - 1,
            });
        }
        Ok(UpdatesSince::new(std::sync::Arc::clone(self), seq))
    }

    /// Create the cursor `name` at the last visible sequence number if it
    /// does not exist; its acknowledged sequence number.
    pub(crate) fn open_change_feed(&self, name: &str) -> Result<SeqNo> {
        if name.is_empty() {
            return Err(Error::InvalidArgument("a change feed needs a name".into()));
        }
        if self.feed.inner.lock().state.cursors.contains_key(name) {
            return self.change_feed_acked(name);
        }
        // A flush that found no cursor may have left WALs before the
        // current one unsynced; this cursor keeps WALs from now on, and
        // the feed shows only what a power loss cannot take: sync them.
        self.sync_closed_wals()?;
        let mut g = self.feed.inner.lock();
        if let Some(&acked) = g.state.cursors.get(name) {
            return Ok(acked);
        }
        let acked = self.visible_sequence();
        g.state.cursors.insert(name.to_owned(), acked);
        self.feed.has_cursors.store(true, Ordering::Release);
        g.state.store(&*self.fs, &self.dir)?;
        g.stored = true;
        Ok(acked)
    }

    pub(crate) fn change_feed_acked(&self, name: &str) -> Result<SeqNo> {
        self.feed
            .inner
            .lock()
            .state
            .cursors
            .get(name)
            .copied()
            .ok_or_else(|| Error::InvalidArgument(format!("no change feed named {name:?}")))
    }

    /// Record that cursor `name`'s consumer applied everything up to
    /// `seq`, durably; WALs it no longer pins may then go.
    pub(crate) fn ack_change_feed(&self, name: &str, seq: SeqNo) -> Result<()> {
        // Bounded by the last number handed out, not the last one
        // published: the feed shows a batch once its WAL bytes are synced,
        // which can be before its inserts finish and it is published. A
        // number a crash then loses is clamped at the next open
        // (`Feed::open`). An ingestion's numbers count from the moment they
        // are recorded here, since a reader reports its gap from then on.
        let mut handed_out = self.last_sequence_handed_out();
        if seq > handed_out {
            // A leader may have logged the batch (a sync showed it in the
            // feed) and not yet registered its numbers: the sequencer it
            // holds meanwhile has them exactly. Waited for only here, in
            // that window (or behind an ingestion, which holds the
            // sequencer for its whole job).
            let _ = self.hook(crate::hook::HookPoint::AckAsksSequencer);
            handed_out = self.write_path.pipeline.last_seq();
        }
        {
            let mut g = self.feed.inner.lock();
            let Some(&acked) = g.state.cursors.get(name) else {
                return Err(Error::InvalidArgument(format!(
                    "no change feed named {name:?}"
                )));
            };
            if seq < acked {
                return Err(Error::InvalidArgument(format!(
                    "change feed {name:?} acknowledged {acked} already; {seq} would move it back"
                )));
            }
            let handed_out = handed_out.max(g.state.last_taken());
            if seq > handed_out {
                return Err(Error::InvalidArgument(format!(
                    "change feed {name:?}: sequence number {seq} is not written yet (last is {handed_out})"
                )));
            }
            g.state.cursors.insert(name.to_owned(), seq);
            g.state.store(&*self.fs, &self.dir)?;
        }
        let log_number = self.versions.lock().log_number();
        self.collect_wals(log_number);
        Ok(())
    }

    /// Forget cursor `name`; the WALs it pinned may go.
    pub(crate) fn drop_change_feed(&self, name: &str) -> Result<()> {
        {
            let mut g = self.feed.inner.lock();
            if g.state.cursors.remove(name).is_none() {
                return Err(Error::InvalidArgument(format!(
                    "no change feed named {name:?}"
                )));
            }
            self.feed
                .has_cursors
                .store(!g.state.cursors.is_empty(), Ordering::Release);
            g.state.store(&*self.fs, &self.dir)?;
        }
        let log_number = self.versions.lock().log_number();
        self.collect_wals(log_number);
        Ok(())
    }
}
