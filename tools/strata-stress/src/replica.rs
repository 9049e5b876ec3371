//! A replica fed only by the change feed (issue 20: "a replica fed only
//! by the change feed ends identical to the primary, also across primary
//! crashes"; docs/design/change-feed.md).
//!
//! In the writer process a thread ([`follow`]) reads the primary's feed
//! from the replica's applied sequence number on and applies each batch,
//! record by record by keyspace name (puts, puts with their absolute
//! expiry, deletes, merges, range deletes), to a database of its own in
//! `D/replica`. Several feed batches go into one replica write (whole
//! batches, at most [`GROUP_BATCHES`] or [`GROUP_BYTES`]), which also
//! writes the applied sequence number (keyspace `replica_meta`, key
//! `applied`) and is synced; only then is the durable cursor
//! [`FEED`] acknowledged. A SIGKILL between the two leaves the cursor
//! behind the replica, never ahead: the next run moves it up to the
//! replica's number, and reads from there, not from the cursor.
//!
//! Ingestions. The feed cannot carry an ingested table: a reader reaching
//! an ingestion's sequence numbers gets `ChangeFeedGap` of exactly them
//! (§2a). The replica then does what the design tells a consumer that
//! caught up another way: it records `applied = to`, marks the keyspaces
//! the workload ingests into ([`INGEST_TARGETS`]) as diverged, and reads
//! on. The verifier compares every other keyspace exactly at every cycle
//! and the diverged ones not, then copies those from the primary (the
//! "rebuild from a checkpoint" of §2a, done key by key: expiries are not
//! copied, values are) and clears the mark, so they are compared exactly
//! again from the next cycle that ingests nothing. A gap is legitimate
//! only then: a run that may ingest creates the ingestion
//! ledger (`D/ingested`, `ingested.rs`) before its workload starts, and a
//! gap with no ledger there fails.
//! The stress run sets no retention limit (`wal_ttl_seconds`,
//! `wal_size_limit_mb`), so no other gap is expected; and every batch
//! must follow the last one's sequence numbers exactly (no `disable_wal`
//! write makes a hole).
//!
//! After each kill the verifier ([`catch_up_and_compare`]) syncs the
//! primary's WAL, lets the replica read the feed up to the primary's last
//! sequence number, and compares every keyspace of the two, naming the
//! first key that differs.

use crate::expected::AnyError;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use strata::{Bytes, ChangeBatch, ChangeKind, Db, Error, Keyspace, Options, WriteBatch};

/// The primary's durable cursor the replica follows.
pub const FEED: &str = "strata-stress-replica";
/// The replica's own keyspace (the primary has none of that name).
pub const META: &str = "replica_meta";
/// The applied sequence number (u64 LE).
const APPLIED: &[u8] = b"applied";
/// Set (1) while the ingestion targets hold ingestions the feed did not
/// carry; cleared by the verifier's copy.
const DIVERGED: &[u8] = b"diverged";
/// Ingestion gaps read past, in all.
const GAPS: &[u8] = b"gaps";
/// Feed batches the writer processes' threads applied, in all.
const FOLLOWED: &[u8] = b"followed";

/// The keyspaces the workload ingests into (`ingest.rs`, `ingested.rs`).
pub const INGEST_TARGETS: [&str; 2] = ["default", crate::ingested::KEYSPACE];

/// At most this many feed batches, or bytes of them, go into one replica
/// write.
pub const GROUP_BATCHES: usize = 256;
pub const GROUP_BYTES: usize = 1 << 20;

/// How often a caught-up follower looks at the feed again (the feed's
/// iterator does not block: docs/design/change-feed.md §2).
const POLL: Duration = Duration::from_millis(2);

/// The cursor is acknowledged at most this often while batches flow (each
/// acknowledgement rewrites and syncs the primary's `CHANGEFEEDS`).
const ACK_EVERY: Duration = Duration::from_millis(20);

fn sync() -> strata::WriteOptions {
    strata::WriteOptions {
        sync: true,
        ..Default::default()
    }
}

/// The replica database and what its meta keyspace says.
pub struct Replica {
    db: Db,
    meta: Keyspace,
    keyspaces: HashMap<String, Keyspace>,
    applied: u64,
    followed: u64,
    /// Whether a run that may ingest has started: only then is a gap
    /// legitimate.
    ingestion_allowed: bool,
    /// Drop the feed batch that starts at this sequence number: a
    /// deliberately wrong apply, for the test that the comparison fails.
    #[cfg(test)]
    skip: Option<u64>,
}

/// What one [`catch_up`] and [`compare`] found.
#[derive(Debug, Default, Clone)]
pub struct Compared {
    /// The sequence number both were compared at.
    pub applied: u64,
    /// Batches the verifier's catch-up applied.
    pub caught_up: u64,
    /// Feed batches applied by the writer processes' follower threads, in
    /// all runs so far.
    pub followed: u64,
    /// Keyspaces and keys found equal.
    pub keyspaces: u32,
    pub keys: u64,
    /// Whether the ingestion targets were compared too (no ingestion since
    /// the last copy), and whether they were copied from the primary.
    pub full: bool,
    pub copied: bool,
    /// Ingestion gaps read past, in all.
    pub gaps: u64,
}

impl Replica {
    /// Open (or create) the replica in `dir`, with the counters' merge
    /// operator as the primary has it.
    pub fn open(dir: &Path, options: &Options) -> Result<Replica, AnyError> {
        let db = Db::open(dir, options.clone())?;
        let meta = db.keyspace(META)?;
        let mut keyspaces = HashMap::new();
        let counters = crate::counters::open(&db, options)?;
        keyspaces.insert(crate::counters::KEYSPACE.to_owned(), counters);
        let mut r = Replica {
            db,
            meta,
            keyspaces,
            applied: 0,
            followed: 0,
            ingestion_allowed: false,
            #[cfg(test)]
            skip: None,
        };
        r.applied = r.meta_u64(APPLIED)?;
        r.followed = r.meta_u64(FOLLOWED)?;
        Ok(r)
    }

    #[cfg(test)]
    pub fn applied(&self) -> u64 {
        self.applied
    }

    fn meta_u64(&self, key: &[u8]) -> Result<u64, AnyError> {
        match self.meta.get(key)? {
            None => Ok(0),
            Some(v) => Ok(u64::from_le_bytes(v.as_ref().try_into().map_err(|_| {
                format!(
                    "the replica's {} holds {} bytes, not 8",
                    String::from_utf8_lossy(key),
                    v.len()
                )
            })?)),
        }
    }

    /// Gaps may come: a run that may ingest has started on the primary
    /// (the caller knows: the ingestion ledger `D/ingested` exists).
    pub fn allow_ingestion_gaps(&mut self) {
        self.ingestion_allowed = true;
    }

    /// The replica's keyspace of that name, created on first use.
    fn keyspace(&mut self, name: &str) -> Result<Keyspace, AnyError> {
        if name == META {
            return Err(
                format!("the primary has a keyspace named {META:?}, the replica's own").into(),
            );
        }
        if let Some(ks) = self.keyspaces.get(name) {
            return Ok(ks.clone());
        }
        let ks = self.db.keyspace(name)?;
        self.keyspaces.insert(name.to_owned(), ks.clone());
        Ok(ks)
    }

    /// Apply `group` (consecutive feed batches) in one synced write that
    /// also records the applied sequence number.
    fn apply(&mut self, group: &[ChangeBatch], by_follower: bool) -> Result<(), AnyError> {
        if group.is_empty() {
            return Ok(());
        }
        let mut out = WriteBatch::new();
        let mut next = self.applied + 1;
        for batch in group {
            if batch.sequence() != next {
                return Err(format!(
                    "the change feed went from sequence number {} to a batch at {} with no gap \
                     reported",
                    next - 1,
                    batch.sequence()
                )
                .into());
            }
            next = batch.last_sequence() + 1;
            #[cfg(test)]
            if self.skip == Some(batch.sequence()) {
                continue;
            }
            for r in batch.records() {
                let r = r?;
                let name = r.keyspace.ok_or_else(|| {
                    format!(
                        "the feed's record at {} is in a dropped keyspace (id {}): the workload drops none",
                        r.sequence, r.keyspace_id
                    )
                })?;
                let ks = self.keyspace(name)?;
                match r.kind {
                    ChangeKind::Put(v) => out.put_in(&ks, r.key, v),
                    ChangeKind::PutWithExpiry {
                        value,
                        expiry_micros,
                    } => out.put_with_expiry_in(&ks, r.key, value, expiry_micros),
                    ChangeKind::Delete => out.delete_in(&ks, r.key),
                    ChangeKind::Merge(v) => out.merge_in(&ks, r.key, v),
                    ChangeKind::DeleteRange { end: Some(end) } => {
                        out.delete_range_in(&ks, r.key..end)
                    }
                    ChangeKind::DeleteRange { end: None } => out.delete_range_in(&ks, r.key..),
                }
            }
        }
        let applied = next - 1;
        out.put_in(&self.meta, APPLIED, applied.to_le_bytes());
        let followed = self.followed + if by_follower { group.len() as u64 } else { 0 };
        if by_follower {
            out.put_in(&self.meta, FOLLOWED, followed.to_le_bytes());
        }
        self.db.write_opt(out, &sync())?;
        self.applied = applied;
        self.followed = followed;
        Ok(())
    }

    /// Read past the ingestion gap `from..=to`: legitimate only right
    /// after what was applied, and only once a run may have ingested.
    fn skip_gap(&mut self, from: u64, to: u64) -> Result<(), AnyError> {
        if from != self.applied + 1 || to < from {
            return Err(format!(
                "the change feed reported a gap {from}..={to} after the replica applied {}",
                self.applied
            )
            .into());
        }
        if !self.ingestion_allowed {
            return Err(format!(
                "the change feed reported a gap {from}..={to}, but no run ingested and no \
                 retention limit is set: writes were lost to the feed"
            )
            .into());
        }
        let gaps = self.meta_u64(GAPS)? + 1;
        let mut b = WriteBatch::new();
        b.put_in(&self.meta, APPLIED, to.to_le_bytes());
        b.put_in(&self.meta, DIVERGED, [1]);
        b.put_in(&self.meta, GAPS, gaps.to_le_bytes());
        self.db.write_opt(b, &sync())?;
        self.applied = to;
        Ok(())
    }
}

/// Follow the primary's feed into `replica` until `stop` is set and the
/// feed shows nothing more; with `stop` set from the start, one catch-up.
/// Returns the batches applied.
pub fn follow(
    primary: &Db,
    replica: &mut Replica,
    stop: &AtomicBool,
    by_follower: bool,
) -> Result<u64, AnyError> {
    let feed = primary.change_feed(FEED)?;
    let acked = feed.acked()?;
    if acked > replica.applied {
        return Err(format!(
            "the cursor {FEED:?} acknowledged {acked}, but the replica applied only {}: the \
             replica lost a synced write, or it did not start with the primary",
            replica.applied
        )
        .into());
    }
    // Every batch the feed gave may be acknowledged, published by the
    // primary yet or not (the engine bounds `ack` by the numbers handed
    // out).
    let ack = |acked: &mut u64, to: u64| -> Result<(), AnyError> {
        if to > *acked {
            feed.ack(to)?;
            *acked = to;
        }
        Ok(())
    };
    let mut acked = acked;
    ack(&mut acked, replica.applied)?;
    let mut last_ack = Instant::now();
    let mut applied = 0u64;
    let mut group: Vec<ChangeBatch> = Vec::new();
    let mut bytes = 0usize;
    // Read past an ingestion gap once its numbers are visible: the feed
    // reports it while the ingestion is still in flight (its numbers are
    // recorded before its MANIFEST edit), and a gap past the visible
    // number with no ingestion in flight is a defect this catches. A
    // killed ingestion's numbers are visible after the reopen (an open
    // gives out none of them again).
    let past_gap = |replica: &mut Replica, from: u64, to: u64| -> Result<(), AnyError> {
        let visible = primary.snapshot().sequence();
        if to > visible {
            if stop.load(Ordering::Acquire) && !by_follower {
                return Err(format!(
                    "the change feed reported a gap {from}..={to} past the primary's last \
                     sequence number {visible}, with no ingestion in flight"
                )
                .into());
            }
            std::thread::sleep(POLL);
            return Ok(());
        }
        replica.skip_gap(from, to)
    };
    'read: loop {
        let mut batches = match primary.updates_since(replica.applied + 1) {
            Ok(it) => it,
            Err(Error::ChangeFeedGap { from, to }) => {
                past_gap(replica, from, to)?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        loop {
            let next = match batches.next() {
                Some(Ok(batch)) => {
                    bytes += batch.encoded().len();
                    group.push(batch);
                    Some(Ok(()))
                }
                Some(Err(e)) => Some(Err(e)),
                None => None,
            };
            let drained = !matches!(next, Some(Ok(())));
            if drained || group.len() >= GROUP_BATCHES || bytes >= GROUP_BYTES {
                replica.apply(&group, by_follower)?;
                applied += group.len() as u64;
                group.clear();
                bytes = 0;
                // Acknowledged as it goes, so the WALs behind it go even
                // while the feed never runs dry.
                if replica.applied > acked && last_ack.elapsed() >= ACK_EVERY {
                    ack(&mut acked, replica.applied)?;
                    last_ack = Instant::now();
                }
            }
            match next {
                Some(Ok(_)) => {}
                Some(Err(Error::ChangeFeedGap { from, to })) => {
                    past_gap(replica, from, to)?;
                    continue 'read;
                }
                Some(Err(e)) => return Err(e.into()),
                None => {
                    if stop.load(Ordering::Acquire) {
                        ack(&mut acked, replica.applied)?;
                        return Ok(applied);
                    }
                    std::thread::sleep(POLL);
                }
            }
        }
    }
}

/// Open the replica in `dir` and [`follow`] on a thread of the writer
/// process until `stop` (the caller created the cursor before the first
/// write); an error ends the process (so the crash test reports it with
/// the run's log, never missing it).
pub fn spawn_follower(
    primary: Db,
    dir: std::path::PathBuf,
    options: Options,
    ingestion_allowed: bool,
    stop: std::sync::Arc<AtomicBool>,
) -> std::thread::JoinHandle<Replica> {
    std::thread::spawn(move || {
        let run = || -> Result<Replica, AnyError> {
            let mut replica = Replica::open(&dir, &options)?;
            replica.ingestion_allowed = ingestion_allowed;
            follow(&primary, &mut replica, &stop, true)?;
            Ok(replica)
        };
        match run() {
            Ok(replica) => replica,
            Err(e) => {
                eprintln!("strata-stress: FAILED: the change-feed replica: {e}");
                std::process::exit(1);
            }
        }
    })
}

/// Let `replica` read the feed up to the primary's last sequence number
/// (nothing else writes the primary meanwhile), then [`compare`].
pub fn catch_up_and_compare(
    primary: &Db,
    options: &Options,
    replica: &mut Replica,
) -> Result<Compared, AnyError> {
    crate::counters::open(primary, options)?;
    // Batches appear in the feed once synced.
    primary.flush_wal(true)?;
    let last = primary.snapshot().sequence();
    let caught_up = follow(primary, replica, &AtomicBool::new(true), false)?;
    if replica.applied != last {
        return Err(format!(
            "the replica read the change feed up to {}, but the primary's last sequence number \
             is {last}",
            replica.applied
        )
        .into());
    }
    let mut c = compare(primary, replica)?;
    c.caught_up = caught_up;
    Ok(c)
}

/// Compare every keyspace of the primary with the replica's, the
/// ingestion targets only if no ingestion gap was read past since they
/// were last copied (then copied from the primary, and compared).
pub fn compare(primary: &Db, replica: &mut Replica) -> Result<Compared, AnyError> {
    let diverged = replica.meta.get(DIVERGED)?.is_some();
    let mut c = Compared {
        applied: replica.applied,
        followed: replica.followed,
        full: !diverged,
        gaps: replica.meta_u64(GAPS)?,
        ..Default::default()
    };
    let names = primary.keyspace_names();
    for name in replica.db.keyspace_names() {
        if name != META && !names.contains(&name) {
            return Err(format!(
                "the replica has a keyspace {name:?} the primary does not have at sequence {}",
                replica.applied
            )
            .into());
        }
    }
    for name in &names {
        if diverged && INGEST_TARGETS.contains(&name.as_str()) {
            continue;
        }
        c.keys += compare_keyspace(primary, replica, name)?;
        c.keyspaces += 1;
    }
    if diverged {
        for name in INGEST_TARGETS {
            if names.iter().any(|n| n == name) {
                copy_keyspace(primary, replica, name)?;
                c.keys += compare_keyspace(primary, replica, name)?;
                c.keyspaces += 1;
            }
        }
        let mut b = WriteBatch::new();
        b.delete_in(&replica.meta, DIVERGED);
        replica.db.write_opt(b, &sync())?;
        c.copied = true;
    }
    Ok(c)
}

/// The primary's handle on keyspace `name` (the counters' keyspace was
/// opened with its operator by the caller, [`catch_up_and_compare`]).
fn primary_keyspace(primary: &Db, name: &str) -> Result<Keyspace, AnyError> {
    Ok(primary.keyspace(name)?)
}

fn show(bytes: &[u8]) -> String {
    const SHOWN: usize = 48;
    let shown = bytes.get(..SHOWN).unwrap_or(bytes).escape_ascii();
    if bytes.len() > SHOWN {
        format!("'{shown}'.. ({} bytes)", bytes.len())
    } else {
        format!("'{shown}'")
    }
}

/// Compare keyspace `name` of both, key by key; the number of keys, or
/// an error naming the first key that differs.
fn compare_keyspace(primary: &Db, replica: &mut Replica, name: &str) -> Result<u64, AnyError> {
    let p = primary_keyspace(primary, name)?;
    let r = replica.keyspace(name)?;
    let mut pi = p.iter();
    let mut ri = r.iter();
    let mut keys = 0u64;
    let at = replica.applied;
    let differ = |key: &[u8], what: String| -> AnyError {
        format!(
            "the replica differs from the primary at sequence number {at} in keyspace {name:?}: \
             first differing key {}: {what}",
            show(key)
        )
        .into()
    };
    let mut pn: Option<(Bytes, Bytes)> = pi.next().transpose()?;
    let mut rn: Option<(Bytes, Bytes)> = ri.next().transpose()?;
    loop {
        match (&pn, &rn) {
            (None, None) => return Ok(keys),
            (Some((k, v)), None) => {
                return Err(differ(
                    k,
                    format!("the primary holds {}, the replica nothing", show(v)),
                ))
            }
            (None, Some((k, v))) => {
                return Err(differ(
                    k,
                    format!("the replica holds {}, the primary nothing", show(v)),
                ))
            }
            (Some((pk, pv)), Some((rk, rv))) => {
                if pk < rk {
                    return Err(differ(
                        pk,
                        format!("the primary holds {}, the replica nothing", show(pv)),
                    ));
                }
                if rk < pk {
                    return Err(differ(
                        rk,
                        format!("the replica holds {}, the primary nothing", show(rv)),
                    ));
                }
                if pv != rv {
                    return Err(differ(
                        pk,
                        format!("the primary holds {}, the replica {}", show(pv), show(rv)),
                    ));
                }
                keys += 1;
                pn = pi.next().transpose()?;
                rn = ri.next().transpose()?;
            }
        }
    }
}

/// Replace the replica's keyspace `name` with the primary's contents (in
/// synced writes of at most [`GROUP_BYTES`]; the mark stays until all are
/// in).
fn copy_keyspace(primary: &Db, replica: &mut Replica, name: &str) -> Result<(), AnyError> {
    let p = primary_keyspace(primary, name)?;
    let r = replica.keyspace(name)?;
    let mut b = WriteBatch::new();
    b.delete_range_in::<&[u8]>(&r, ..);
    for entry in p.iter() {
        let (k, v) = entry?;
        b.put_in(&r, &k, &v);
        if b.encoded_size() >= GROUP_BYTES {
            replica
                .db
                .write_opt(std::mem::replace(&mut b, WriteBatch::new()), &sync())?;
        }
    }
    replica.db.write_opt(b, &sync())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata::{IngestOptions, SstWriter, WriteOptions};

    fn setup(dir: &Path) -> (Db, Options, Replica) {
        let options = Options::default();
        let primary = Db::open(dir.join("db"), options.clone()).unwrap();
        crate::counters::open(&primary, &options).unwrap();
        let mut replica = Replica::open(&dir.join("replica"), &options).unwrap();
        // The cursor, from the first write on.
        follow(&primary, &mut replica, &AtomicBool::new(true), false).unwrap();
        (primary, options, replica)
    }

    /// Every kind of record reaches the replica (puts, puts with an
    /// expiry, deletes, merges, range deletes, in several keyspaces), and
    /// a deliberately wrong apply (one batch skipped) is caught, naming
    /// the key that batch wrote.
    #[test]
    fn a_replica_that_skips_a_batch_is_caught_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let (primary, options, mut replica) = setup(dir.path());
        let orders = primary.keyspace("orders").unwrap();
        let counters = crate::counters::open(&primary, &options).unwrap();
        for i in 0..20u32 {
            primary.put(format!("k{i:02}"), format!("v{i}")).unwrap();
            orders.put(format!("o{i:02}"), "x").unwrap();
            counters.merge("c", 1u64.to_le_bytes()).unwrap();
        }
        primary
            .put_with_ttl("t", "expiring", Duration::from_secs(3600))
            .unwrap();
        primary.delete("k03").unwrap();
        orders.delete_range("o05".."o10").unwrap();
        let c = catch_up_and_compare(&primary, &options, &mut replica).unwrap();
        assert_eq!(c.applied, primary.snapshot().sequence());
        assert_eq!((c.keyspaces, c.keys), (3, 19 + 1 + 15 + 1), "{c:?}");
        assert!(c.full && !c.copied);
        assert_eq!(replica.applied(), c.applied);

        primary.put("k50", "first").unwrap();
        primary.put("k51", "skipped").unwrap();
        replica.skip = Some(primary.snapshot().sequence());
        primary.put("k52", "third").unwrap();
        let e = catch_up_and_compare(&primary, &options, &mut replica)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("keyspace \"default\": first differing key 'k51': the primary holds 'skipped', the replica nothing"),
            "{e}"
        );
    }

    /// An ingestion is a gap in the feed: refused unless a run recorded
    /// that it may ingest; then read past, the ingestion targets marked,
    /// left out of the next comparison, copied, and compared again.
    #[test]
    fn an_ingestion_gap_is_read_past_only_when_ingestion_was_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let (primary, options, mut replica) = setup(dir.path());
        primary.put("a", "1").unwrap();
        let file = dir.path().join("i.sst");
        let mut w = SstWriter::create(&file, &options).unwrap();
        w.put("b", "ingested").unwrap();
        w.finish().unwrap();
        primary.ingest(&[&file], &IngestOptions::default()).unwrap();
        primary
            .put_opt(
                "c",
                "3",
                &WriteOptions {
                    sync: true,
                    ..Default::default()
                },
            )
            .unwrap();
        let e = catch_up_and_compare(&primary, &options, &mut replica)
            .unwrap_err()
            .to_string();
        assert!(e.contains("but no run ingested"), "{e}");

        replica.allow_ingestion_gaps();
        let c = catch_up_and_compare(&primary, &options, &mut replica).unwrap();
        assert_eq!(c.gaps, 1);
        assert!(!c.full && c.copied, "{c:?}");
        assert_eq!(
            replica.db.get("b").unwrap().as_deref(),
            Some(&b"ingested"[..])
        );
        let c = catch_up_and_compare(&primary, &options, &mut replica).unwrap();
        assert!(c.full && !c.copied, "{c:?}");
    }
}
