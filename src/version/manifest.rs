//! Reading a MANIFEST: a log (framed by the wal crate) of version edits,
//! replayed in order into the set of live tables and the counters.

use super::edit::{FileMeta, VersionEdit};
use super::NUM_LEVELS;
use crate::error::{Error, Result};
use crate::filename::MAX_FILE_NUMBER;
use std::collections::BTreeMap;
use std::path::Path;
use strata_sstable::{SeqNo, MAX_SEQNO};
use strata_wal::{LogEnd, Reader, RecoveryMode, TailRule, TornReason};

/// The state a manifest describes, and the edits that built it.
#[derive(Debug, Default)]
pub struct ManifestContents {
    /// Each edit with the file offset of its record.
    pub edits: Vec<(u64, VersionEdit)>,
    /// Live tables per level, by file number.
    pub levels: [BTreeMap<u64, FileMeta>; NUM_LEVELS],
    /// WALs below this number are no longer needed.
    pub log_number: u64,
    /// The next file number to hand out.
    pub next_file_number: u64,
    /// The last sequence number recorded.
    pub last_sequence: SeqNo,
    /// How the log ended (clean, or a torn tail: an edit that was being
    /// written when the process stopped, never acknowledged).
    pub end: Option<LogEnd>,
}

/// The page size a power loss keeps or loses pages of (the page cache's).
const PAGE_BYTES: usize = 4096;

/// Whether the damaged append from `offset` on looks like what a power
/// loss leaves: some of the pages it was written on lost, reading as
/// zeros, so the piece of it on one of those pages is all zeros. A flipped
/// bit or a stray write does not do that (unless it lands in an edit that
/// has such a piece of zeros anyway: a record's bytes are rarely zero
/// from a page boundary on).
fn lost_pages_shape(data: &[u8], offset: usize) -> bool {
    // The append from `offset` to the end, cut at page boundaries: a lost
    // page zeroes the whole piece that lay on it.
    let mut start = offset;
    while start < data.len() {
        let end = ((start / PAGE_BYTES + 1) * PAGE_BYTES).min(data.len());
        if data[start..end].iter().all(|&b| b == 0) {
            return true;
        }
        start = end;
    }
    false
}

/// Replay a manifest's bytes. A torn tail is accepted (the edit it held
/// was never installed); any other damage is `Corruption` naming the
/// offset.
///
/// Every edit is synced before the next is written (`log_and_apply`), so
/// only the last edit's append can hold crash damage: the log is read with
/// [`TailRule::EveryRecordSyncedButLast`], which calls damage corruption
/// as soon as anything valid after it shows a later append. Sync points
/// alone would wait for proof from a later 32 KiB block, and a MANIFEST is
/// usually one block: a flipped length in an early edit would read as a
/// torn tail and silently drop every synced edit after it.
pub fn read_manifest(path: &Path, data: &[u8]) -> Result<ManifestContents> {
    let mut contents = ManifestContents::default();
    let (mut have_log, mut have_next, mut have_seq) = (false, false, false);
    let mut reader = Reader::with_tail_rule(
        data,
        RecoveryMode::TolerateCorruptedTailRecords,
        TailRule::EveryRecordSyncedButLast,
    );
    loop {
        let record = match reader.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => return Err(Error::corruption(path, wal_error_offset(&e), e.to_string())),
        };
        let offset = record.offset;
        let edit = VersionEdit::decode(record.data).map_err(|e| {
            Error::corruption(
                path,
                offset,
                format!(
                    "bad version edit (at byte {} of the record): {}",
                    e.offset, e.reason
                ),
            )
        })?;
        apply(&mut contents, &edit).map_err(|reason| Error::corruption(path, offset, reason))?;
        have_log |= edit.log_number.is_some();
        have_next |= edit.next_file_number.is_some();
        have_seq |= edit.last_sequence.is_some();
        contents.edits.push((offset, edit));
    }
    contents.end = reader.end().cloned();
    // A crash leaves the last edit's append cut short, or with the pages
    // it lost reading as zeros; a last edit damaged any other way (a bad
    // checksum over bytes a crash could not have produced) is damage to an
    // edit that was synced and acted on (its WAL or input tables may be
    // gone): refuse, as LevelDB and RocksDB do, rather than drop it.
    if let Some(LogEnd::TornTail {
        offset,
        reason: reason @ TornReason::DamagedTail(_),
    }) = &contents.end
    {
        if !lost_pages_shape(data, *offset as usize) {
            return Err(Error::corruption(
                path,
                *offset,
                format!("the last version edit is damaged: {reason}"),
            ));
        }
    }
    if !(have_log && have_next && have_seq) {
        return Err(Error::corruption(
            path,
            data.len() as u64,
            "manifest lacks the log number, next file number or last sequence",
        ));
    }
    // Writes after the open take sequence numbers above the last sequence:
    // a table holding a higher one would shadow them.
    if let Some(meta) = contents
        .levels
        .iter()
        .flat_map(|l| l.values())
        .find(|m| m.largest_seqno > contents.last_sequence)
    {
        return Err(Error::corruption(
            path,
            data.len() as u64,
            format!(
                "table {} holds sequence numbers up to {}, past the last sequence {}",
                meta.number, meta.largest_seqno, contents.last_sequence
            ),
        ));
    }
    Ok(contents)
}

impl ManifestContents {
    /// The largest number of a live table.
    pub fn max_table_number(&self) -> Option<u64> {
        self.levels
            .iter()
            .filter_map(|l| l.keys().next_back().copied())
            .max()
    }
}

fn apply(c: &mut ManifestContents, edit: &VersionEdit) -> std::result::Result<(), String> {
    check_numbers(edit)?;
    if let Some(v) = edit.log_number {
        c.log_number = v;
    }
    if let Some(v) = edit.next_file_number {
        c.next_file_number = v;
    }
    if let Some(v) = edit.last_sequence {
        c.last_sequence = v;
    }
    for &(level, number) in &edit.deleted_files {
        if c.levels[level].remove(&number).is_none() {
            return Err(format!(
                "edit deletes table {number} which is not live in L{level}"
            ));
        }
    }
    for (level, meta) in &edit.new_files {
        if c.levels.iter().any(|l| l.contains_key(&meta.number)) {
            return Err(format!(
                "edit adds table {} which is already live",
                meta.number
            ));
        }
        if meta.smallest > meta.largest || meta.smallest_seqno > meta.largest_seqno {
            return Err(format!(
                "table {} has an inverted key or sequence range",
                meta.number
            ));
        }
        c.levels[*level].insert(meta.number, meta.clone());
    }
    Ok(())
}

/// Every number in an edit lies in the range strata uses: file numbers up
/// to [`MAX_FILE_NUMBER`] (the next file number one past it at most),
/// sequence numbers up to [`MAX_SEQNO`], the 56 bits an internal key
/// holds. A number outside is damage, and using it would wrap a counter
/// or give new writes sequence numbers below those already stored.
fn check_numbers(edit: &VersionEdit) -> std::result::Result<(), String> {
    let file = |what: &str, n: u64| {
        if n > MAX_FILE_NUMBER {
            return Err(format!(
                "{what} {n} exceeds the largest file number ({MAX_FILE_NUMBER})"
            ));
        }
        Ok(())
    };
    let seq = |what: &str, n: SeqNo| {
        if n > MAX_SEQNO {
            return Err(format!(
                "{what} {n} exceeds the largest sequence number ({MAX_SEQNO})"
            ));
        }
        Ok(())
    };
    if let Some(n) = edit.log_number {
        file("log number", n)?;
    }
    if let Some(n) = edit.next_file_number {
        if n == 0 || n > MAX_FILE_NUMBER + 1 {
            return Err(format!(
                "next file number {n} is outside 1..={}",
                MAX_FILE_NUMBER + 1
            ));
        }
    }
    if let Some(n) = edit.last_sequence {
        seq("last sequence", n)?;
    }
    for &(_, number) in &edit.deleted_files {
        file("deleted table number", number)?;
    }
    for (_, meta) in &edit.new_files {
        file("table number", meta.number)?;
        seq(
            &format!("table {}'s largest sequence number", meta.number),
            meta.largest_seqno,
        )?;
    }
    Ok(())
}

/// The file offset a wal-crate error names.
pub(crate) fn wal_error_offset(e: &strata_wal::Error) -> u64 {
    match e {
        strata_wal::Error::Corruption { offset, .. }
        | strata_wal::Error::TornTail { offset, .. } => *offset,
        #[allow(unreachable_patterns)]
        _ => 0,
    }
}
