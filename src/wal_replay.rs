//! Reading the live WALs as recovery does: which records of which WALs
//! form the logged prefix of the write sequence.
//!
//! Within one WAL the log reader decides (docs/wal-format.md): damage in
//! bytes a sync point proves were synced is corruption; any other damage
//! is the torn tail a crash leaves, and the WAL's records end there.
//!
//! Across WALs: the write path moves to a new WAL at each memtable
//! rotation and syncs the old one in the background, and any sync of the
//! new WAL first waits for the old one's. So after a power loss the old
//! WAL may have lost its last pages while the new one's first pages
//! survived; a preallocated WAL reads as zeros after its last record
//! whether or not pages were lost, so the old WAL alone cannot tell. The
//! new WAL's first record, its *log start* (`src/wal_record.rs`), names
//! the old WAL and its length. Recovery replays the new WAL only if the
//! old one reads to that length; if it does not, the old WAL lost its
//! tail, and:
//! - if any later WAL holds a sync point, the old WAL had been fully
//!   synced (a sync of a later WAL syncs it first): the damage is to
//!   synced bytes, corruption;
//! - otherwise the logged prefix ends where the old WAL's records end,
//!   and the later WALs, whose writes come after the lost ones, are not
//!   replayed: replaying them would leave a hole in the write sequence.
//!
//! `PointInTimeRecovery` stops at the first lost tail or damage, never an
//! error; `AbsoluteConsistency` reports a lost tail as corruption;
//! `SkipAnyCorruptedRecords` replays whatever checks out.
//! A WAL that is all zeros (made ahead for a rotation that never came, or
//! one that lost every page) is skipped; a log start naming a live WAL
//! that was skipped or is missing reads it as empty, so a WAL that lost
//! every page ends the prefix like any other lost tail.

use crate::error::{Error, Result};
use crate::filename::wal_path;
use crate::fs::FileSystem;
use crate::options::WalRecoveryMode;
use crate::wal_record::WalRecord;
use std::path::Path;
use strata_wal::{LogEnd, Reader, TornReason, BLOCK_SIZE, HEADER_SIZE};

/// What the caller made of a write batch read from a WAL.
pub type BatchOutcome = std::result::Result<(), String>;

/// Called for each write batch of the logged prefix: `(wal, offset, batch)`.
pub type OnBatch<'a> = dyn FnMut(u64, u64, &[u8]) -> Result<BatchOutcome> + 'a;

/// Read the WALs `numbers` (ascending: those at or above `log_number`,
/// the log number of `manifest`, found in `dir`) in order, calling
/// `on_batch(wal, offset, batch)` for each write batch of the logged
/// prefix. `on_batch` returns `Err(reason)` inside `Ok` for a batch it
/// finds damaged (the recovery mode decides what follows), or an outer
/// error that ends the replay.
pub fn read_wal_chain(
    fs: &dyn FileSystem,
    dir: &Path,
    manifest: &Path,
    log_number: u64,
    numbers: &[u64],
    mode: WalRecoveryMode,
    on_batch: &mut OnBatch<'_>,
) -> Result<()> {
    let load = |number: u64| {
        let path = wal_path(dir, number);
        fs.read(&path).map_err(|e| Error::io("read", &path, e))
    };
    read_wal_chain_with(
        fs, dir, manifest, log_number, numbers, mode, &load, on_batch,
    )
}

/// [`read_wal_chain`], reading each WAL's bytes with `load`: the change
/// feed passes only the synced prefix of the WAL being written
/// (`src/feed/`).
#[allow(clippy::too_many_arguments)]
pub fn read_wal_chain_with(
    fs: &dyn FileSystem,
    dir: &Path,
    manifest: &Path,
    log_number: u64,
    numbers: &[u64],
    mode: WalRecoveryMode,
    load: &dyn Fn(u64) -> Result<bytes::Bytes>,
    on_batch: &mut OnBatch<'_>,
) -> Result<()> {
    // The WAL read before this one: its number and where its records end.
    let mut previous: Option<(u64, u64)> = None;
    for (i, &number) in numbers.iter().enumerate() {
        let path = wal_path(dir, number);
        let data = load(number)?;
        if all_zero(&data) {
            continue; // never written
        }
        let mut reader = Reader::new(&data, mode);
        let mut first_record = true;
        // Where a zeroed tail ended the log in `AbsoluteConsistency`,
        // which reports it as an error.
        let mut zeroed_at = None;
        loop {
            let record = match reader.next_record() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                // Preallocated space a crash left unused: the end of the
                // log, even where any other torn tail is refused.
                Err(strata_wal::Error::TornTail {
                    reason: TornReason::ZeroedTail,
                    offset,
                }) => {
                    zeroed_at = Some(offset);
                    break;
                }
                Err(e) => {
                    let offset = crate::version::wal_error_offset(&e);
                    return Err(Error::corruption(&path, offset, e.to_string()));
                }
            };
            let (offset, first) = (record.offset, std::mem::take(&mut first_record));
            let outcome = match WalRecord::parse(record.data) {
                Ok(WalRecord::Batch(batch)) => on_batch(number, offset, batch)?,
                Ok(WalRecord::LogStart { .. }) if !first => {
                    Err("a log start record after the first record".to_owned())
                }
                Ok(WalRecord::LogStart {
                    previous_wal,
                    previous_len,
                }) => {
                    let previous = match previous {
                        Some(previous) => previous,
                        // The first WAL read follows a flushed one.
                        None if previous_wal < log_number => continue,
                        // A live WAL missing from the directory: a crash
                        // cannot do that (a WAL's entry is synced when it
                        // is made, and it is deleted only once a durable
                        // manifest edit moved the log number past it), so
                        // the manifest lost a synced edit, or someone
                        // deleted the WAL.
                        None if !fs.exists(&wal_path(dir, previous_wal)) => {
                            let reason = format!(
                                "WAL {previous_wal} is missing, but WAL {number} continues it \
                                 and the manifest's log number is {log_number}: the manifest \
                                 lost an edit, or the WAL was deleted"
                            );
                            match mode {
                                WalRecoveryMode::SkipAnyCorruptedRecords => {
                                    tracing::warn!(wal = number, %reason, "salvage: replaying past a missing WAL");
                                    continue;
                                }
                                WalRecoveryMode::PointInTimeRecovery => {
                                    tracing::warn!(wal = number, %reason, "replay ends: a WAL is missing");
                                    return Ok(());
                                }
                                _ => return Err(Error::corruption(manifest, 0, reason)),
                            }
                        }
                        // It follows a live WAL that lost every page (all
                        // zeros, skipped above): read as holding nothing.
                        None => (previous_wal, 0),
                    };
                    match continuation(previous, previous_wal, previous_len) {
                        Ok(()) => continue,
                        // Salvage: replay what checks out, hole or not.
                        Err(lost) if mode == WalRecoveryMode::SkipAnyCorruptedRecords => {
                            tracing::warn!(wal = previous.0, %lost, "salvage: replaying past a lost WAL tail");
                            continue;
                        }
                        Err(lost) => {
                            return lost_tail(fs, dir, &numbers[i..], mode, previous, lost)
                        }
                    }
                }
                Err(reason) => Err(reason),
            };
            if let Err(reason) = outcome {
                match mode {
                    WalRecoveryMode::PointInTimeRecovery => {
                        tracing::warn!(wal = number, offset, %reason, "replay ends at a damaged record");
                        return Ok(());
                    }
                    WalRecoveryMode::SkipAnyCorruptedRecords => {
                        tracing::warn!(wal = number, offset, %reason, "salvage: skipped a damaged record");
                    }
                    _ => return Err(Error::corruption(&path, offset, reason)),
                }
            }
        }
        if !reader.anomalies().is_empty() {
            tracing::warn!(
                wal = number,
                anomalies = ?reader.anomalies(),
                "salvage: skipped damaged parts of a WAL"
            );
        }
        if let Some(LogEnd::TornTail { offset, .. }) = reader.end() {
            tracing::info!(wal = number, offset, "WAL ends in a torn tail (a crash)");
        }
        let end = match (reader.end(), zeroed_at) {
            (_, Some(offset)) => offset,
            (Some(LogEnd::Clean { offset } | LogEnd::TornTail { offset, .. }), _) => *offset,
            (Some(LogEnd::Corruption { offset, .. }), _) => match mode {
                // Point-in-time: the log ends at the first damage.
                WalRecoveryMode::PointInTimeRecovery => {
                    tracing::warn!(wal = number, offset, "replay ends at corruption");
                    return Ok(());
                }
                _ => *offset,
            },
            (None, None) => data.len() as u64,
        };
        previous = Some((number, end));
    }
    Ok(())
}

/// Whether a WAL that reads to `end` continues into one whose log start
/// says it follows WAL `previous_wal` of `previous_len` bytes; `Err` says
/// what was lost.
fn continuation(
    (number, end): (u64, u64),
    previous_wal: u64,
    previous_len: u64,
) -> std::result::Result<(), String> {
    if previous_wal != number {
        return Err(format!(
            "the next WAL follows WAL {previous_wal}, not WAL {number}: a WAL is missing"
        ));
    }
    // A WAL ending less than a fragment header before a block boundary
    // reads on to the boundary (block-tail padding).
    let padded = |len: u64| {
        let room = BLOCK_SIZE as u64 - len % BLOCK_SIZE as u64;
        if room < HEADER_SIZE as u64 {
            len + room
        } else {
            len
        }
    };
    if end == previous_len || end == padded(previous_len) {
        return Ok(());
    }
    Err(format!(
        "records end at byte {end}, but the next WAL says this one held {previous_len} bytes"
    ))
}

/// WAL `previous` lost its tail (`lost` says how); `later` are the WALs
/// after it. Decide by the recovery mode and by whether a later WAL
/// proves `previous` was synced.
fn lost_tail(
    fs: &dyn FileSystem,
    dir: &Path,
    later: &[u64],
    mode: WalRecoveryMode,
    (number, end): (u64, u64),
    lost: String,
) -> Result<()> {
    let path = wal_path(dir, number);
    tracing::warn!(wal = number, end, %lost, ?mode, "a WAL lost its tail");
    match mode {
        WalRecoveryMode::PointInTimeRecovery | WalRecoveryMode::SkipAnyCorruptedRecords => Ok(()),
        WalRecoveryMode::AbsoluteConsistency => Err(Error::corruption(&path, end, lost)),
        WalRecoveryMode::TolerateCorruptedTailRecords => {
            for &n in later {
                let later_path = wal_path(dir, n);
                let data = fs
                    .read(&later_path)
                    .map_err(|e| Error::io("read", &later_path, e))?;
                let mut reader = Reader::new(&data, WalRecoveryMode::PointInTimeRecovery);
                while let Ok(Some(_)) = reader.next_record() {}
                if reader.has_sync_point() {
                    return Err(Error::corruption(
                        &path,
                        end,
                        format!("{lost}, and WAL {n} proves it was synced"),
                    ));
                }
            }
            // A power loss took the unsynced tail: the prefix ends here.
            Ok(())
        }
    }
}

/// Whether every byte is zero (compared a word at a time: a crashed
/// preallocated WAL is megabytes of zeros).
fn all_zero(data: &[u8]) -> bool {
    let mut words = data.chunks_exact(8);
    words.all(|w| w == [0u8; 8]) && words.remainder().iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::WriteBatch;
    use crate::fs::MemFileSystem;
    use crate::wal_record::encode_log_start;
    use std::path::PathBuf;

    /// A batch of one put `key`, sequence `seq`.
    fn batch(seq: u64, key: &str) -> Vec<u8> {
        let mut b = WriteBatch::new();
        b.put(key, b"v");
        b.set_sequence(seq);
        b.encoded().to_vec()
    }

    /// Frame `records` (and a sync point stating `synced` bytes before
    /// record `at`, if given) as the write path does.
    fn wal(records: &[Vec<u8>], sync_point: Option<(usize, u64)>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut end = 0;
        for (i, r) in records.iter().enumerate() {
            if let Some((at, synced)) = sync_point {
                if at == i {
                    end = strata_wal::encode_sync_point(&mut out, end, synced);
                }
            }
            end = strata_wal::encode_record(&mut out, end, r);
        }
        out
    }

    /// The keys `read_wal_chain` yields from WALs 5 and 6 as given.
    fn replayed(wal5: &[u8], wal6: &[u8], mode: WalRecoveryMode) -> Result<Vec<String>> {
        let fs = MemFileSystem::new();
        let dir = PathBuf::from("/db");
        fs.write_durable(&wal_path(&dir, 5), wal5);
        fs.write_durable(&wal_path(&dir, 6), wal6);
        let mut keys = Vec::new();
        read_wal_chain(
            &fs,
            &dir,
            Path::new("/db/MANIFEST-000001"),
            5,
            &[5, 6],
            mode,
            &mut |_, _, b| {
                let batch = crate::batch::DecodedBatch::new(b)
                    .map_err(|e| Error::InvalidArgument(e.reason.into()))?;
                for op in batch.iter().flatten() {
                    keys.push(String::from_utf8_lossy(op.key).into_owned());
                }
                Ok(Ok(()))
            },
        )?;
        Ok(keys)
    }

    /// How many batches `read_wal_chain` yields from `numbers` in `/db`.
    fn batches_replayed(fs: &MemFileSystem, log_number: u64, numbers: &[u64]) -> Result<usize> {
        let mut n = 0;
        read_wal_chain(
            fs,
            Path::new("/db"),
            Path::new("/db/MANIFEST-000001"),
            log_number,
            numbers,
            WalRecoveryMode::default(),
            &mut |_, _, _| {
                n += 1;
                Ok(Ok(()))
            },
        )?;
        Ok(n)
    }

    #[test]
    fn the_next_wal_is_replayed_only_when_the_previous_reads_to_the_length_it_names() {
        let wal5 = wal(&[batch(1, "a"), batch(2, "b"), batch(3, "c")], None);
        let start = encode_log_start(5, wal5.len() as u64).to_vec();
        let wal6 = wal(&[start, batch(4, "d")], None);
        let all = replayed(&wal5, &wal6, WalRecoveryMode::default()).unwrap();
        assert_eq!(all, ["a", "b", "c", "d"]);

        // A power loss took WAL 5's last page (zeros), WAL 6's survived:
        // replaying "d" without "c" would leave a hole.
        let mut torn = wal5.clone();
        let cut = torn.len() - 20;
        torn[cut..].fill(0);
        for mode in [
            WalRecoveryMode::TolerateCorruptedTailRecords,
            WalRecoveryMode::PointInTimeRecovery,
        ] {
            assert_eq!(
                replayed(&torn, &wal6, mode).unwrap(),
                ["a", "b"],
                "{mode:?}"
            );
        }
        assert!(replayed(&torn, &wal6, WalRecoveryMode::AbsoluteConsistency).is_err());
        // Salvage replays whatever checks out.
        assert_eq!(
            replayed(&torn, &wal6, WalRecoveryMode::SkipAnyCorruptedRecords).unwrap(),
            ["a", "b", "d"]
        );
    }

    #[test]
    fn a_lost_tail_a_later_sync_point_proves_synced_is_corruption() {
        let wal5 = wal(&[batch(1, "a"), batch(2, "b")], None);
        let start = encode_log_start(5, wal5.len() as u64).to_vec();
        // WAL 6 was synced (so WAL 5 was first) and says so.
        let wal6 = wal(&[start.clone(), batch(3, "c"), batch(4, "d")], Some((2, 0)));
        let mut torn = wal5.clone();
        let cut = torn.len() - 5;
        torn[cut..].fill(0);
        let e = replayed(&torn, &wal6, WalRecoveryMode::default()).unwrap_err();
        assert!(
            matches!(&e, Error::Corruption { file, .. } if file.ends_with("000005.log")),
            "{e:?}"
        );
        // Point-in-time recovery never fails: it stops.
        assert_eq!(
            replayed(&torn, &wal6, WalRecoveryMode::PointInTimeRecovery).unwrap(),
            ["a"]
        );
    }

    /// The first live WAL lost every page (all zeros after a power loss:
    /// never synced) while the next one's first page survived: replaying
    /// the next one would leave a hole. Found in review.
    #[test]
    fn a_first_live_wal_that_lost_every_page_ends_the_prefix() {
        let wal5 = wal(&[batch(1, "a")], None);
        let start = encode_log_start(5, wal5.len() as u64).to_vec();
        let wal6 = wal(&[start, batch(2, "b")], None);
        let zeros = vec![0u8; wal5.len() + 100];
        assert_eq!(
            replayed(&zeros, &wal6, WalRecoveryMode::default()).unwrap(),
            Vec::<String>::new()
        );
        // Missing outright: no crash does that (the manifest lost an
        // edit, or the WAL was deleted): corruption, named in the manifest.
        let fs = MemFileSystem::new();
        let dir = PathBuf::from("/db");
        let manifest = dir.join("MANIFEST-000001");
        fs.write_durable(&wal_path(&dir, 6), &wal6);
        let e = batches_replayed(&fs, 5, &[6]).unwrap_err();
        assert!(
            matches!(&e, Error::Corruption { file, .. } if *file == manifest),
            "{e:?}"
        );
        // A predecessor below the log number was flushed: replay.
        assert_eq!(batches_replayed(&fs, 6, &[6]).unwrap(), 1);
    }

    #[test]
    fn a_next_wal_naming_another_predecessor_means_one_is_missing() {
        let wal5 = wal(&[batch(1, "a")], None);
        let start = encode_log_start(4, 999).to_vec();
        let wal6 = wal(&[start, batch(2, "b")], None);
        assert_eq!(
            replayed(&wal5, &wal6, WalRecoveryMode::default()).unwrap(),
            ["a"]
        );
        // An all-zero WAL (made ahead, never used) is skipped.
        let start = encode_log_start(5, wal5.len() as u64).to_vec();
        let wal6 = wal(&[start, batch(2, "b")], None);
        let fs = MemFileSystem::new();
        let dir = PathBuf::from("/db");
        fs.write_durable(&wal_path(&dir, 5), &wal5);
        fs.write_durable(&wal_path(&dir, 6), &[0u8; 4096]);
        fs.write_durable(&wal_path(&dir, 7), &{
            let mut w = wal6.clone();
            w.extend_from_slice(&[0u8; 100]);
            w
        });
        assert_eq!(batches_replayed(&fs, 5, &[5, 6, 7]).unwrap(), 2);
    }

    #[test]
    fn a_wal_continues_only_at_the_length_its_successor_names() {
        assert!(continuation((7, 100), 7, 100).is_ok());
        assert!(continuation((7, 90), 7, 100).is_err());
        assert!(continuation((7, 100), 6, 100).is_err());
        // 3 bytes before a block boundary: padding, read up to the boundary.
        let near = BLOCK_SIZE as u64 - 3;
        assert!(continuation((7, BLOCK_SIZE as u64), 7, near).is_ok());
        assert!(continuation((7, near), 7, near).is_ok());
        let far = BLOCK_SIZE as u64 - 10;
        assert!(continuation((7, BLOCK_SIZE as u64), 7, far).is_err());
    }

    #[test]
    fn zero_check_looks_at_every_byte() {
        assert!(all_zero(&[]));
        assert!(all_zero(&[0; 19]));
        for i in 0..19 {
            let mut v = vec![0u8; 19];
            v[i] = 1;
            assert!(!all_zero(&v), "byte {i}");
        }
    }
}
