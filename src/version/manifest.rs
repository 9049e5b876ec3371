//! Reading a MANIFEST: a log (framed by the wal crate) of version edits,
//! replayed in order into the set of live tables and the counters.

use super::edit::{FileMeta, VersionEdit};
use super::NUM_LEVELS;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;
use strata_sstable::SeqNo;
use strata_wal::{LogEnd, Reader, RecoveryMode, TornReason};

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

/// Replay a manifest's bytes. A torn tail is accepted (the edit it held
/// was never installed); any other damage is `Corruption` naming the
/// offset.
pub fn read_manifest(path: &Path, data: &[u8]) -> Result<ManifestContents> {
    let mut contents = ManifestContents::default();
    let (mut have_log, mut have_next, mut have_seq) = (false, false, false);
    let mut reader = Reader::new(data, RecoveryMode::TolerateCorruptedTailRecords);
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
    // A torn write cuts the log short (or leaves zeros); a full-length last
    // record with a bad checksum is damage to an edit that was synced and
    // acted on (its WAL or input tables may be gone): refuse, as LevelDB
    // and RocksDB do, rather than silently drop it.
    if let Some(LogEnd::TornTail {
        offset,
        reason: reason @ TornReason::DamagedTail(_),
    }) = &contents.end
    {
        return Err(Error::corruption(
            path,
            *offset,
            format!("the last version edit is damaged: {reason}"),
        ));
    }
    if !(have_log && have_next && have_seq) {
        return Err(Error::corruption(
            path,
            data.len() as u64,
            "manifest lacks the log number, next file number or last sequence",
        ));
    }
    Ok(contents)
}

fn apply(c: &mut ManifestContents, edit: &VersionEdit) -> std::result::Result<(), String> {
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

/// The file offset a wal-crate error names.
pub(crate) fn wal_error_offset(e: &strata_wal::Error) -> u64 {
    match e {
        strata_wal::Error::Corruption { offset, .. }
        | strata_wal::Error::TornTail { offset, .. } => *offset,
        #[allow(unreachable_patterns)]
        _ => 0,
    }
}
