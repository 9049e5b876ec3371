//! Reading a MANIFEST: a log (framed by the wal crate) of version edits,
//! replayed in order into the set of live tables and the counters.

use super::edit::{BlobRefCount, FileMeta, VersionEdit, DEFAULT_KEYSPACE_ID};
use super::NUM_LEVELS;
use crate::error::{Error, Result};
use crate::filename::MAX_FILE_NUMBER;
use std::collections::BTreeMap;
use std::path::Path;
use strata_sstable::{SeqNo, MAX_SEQNO};
use strata_wal::{
    LogEnd, Reader, RecordType, RecoveryMode, TailRule, TornReason, BLOCK_SIZE, HEADER_SIZE,
    SECTOR_SIZE,
};

/// The state a manifest describes, and the edits that built it.
#[derive(Debug)]
pub struct ManifestContents {
    /// Each edit with the file offset of its record.
    pub edits: Vec<(u64, VersionEdit)>,
    /// The live keyspaces by id (the default keyspace, id 0, always).
    pub keyspaces: BTreeMap<u32, KeyspaceContents>,
    /// The next keyspace id to hand out: above every id ever used.
    pub next_keyspace_id: u32,
    /// The next file number to hand out.
    pub next_file_number: u64,
    /// The last sequence number recorded.
    pub last_sequence: SeqNo,
    /// How the log ended (clean, or a torn tail: an edit that was being
    /// written when the process stopped, never acknowledged).
    pub end: Option<LogEnd>,
}

/// What a manifest says of one keyspace.
#[derive(Debug, Clone, Default)]
pub struct KeyspaceContents {
    /// Its name.
    pub name: String,
    /// Live tables per level, by file number.
    pub levels: [BTreeMap<u64, FileMeta>; NUM_LEVELS],
    /// WALs below this number hold nothing of it that is not in its
    /// tables.
    pub log_number: u64,
    /// The garbage the edits found in its blob files, summed, by blob
    /// file number (blob files no live table lists may remain: the
    /// version built from this leaves them out).
    pub blob_garbage: BTreeMap<u64, BlobRefCount>,
}

/// The default keyspace's name.
pub const DEFAULT_KEYSPACE_NAME: &str = "default";

impl Default for ManifestContents {
    fn default() -> Self {
        let default = KeyspaceContents {
            name: DEFAULT_KEYSPACE_NAME.to_owned(),
            ..KeyspaceContents::default()
        };
        ManifestContents {
            edits: Vec::new(),
            keyspaces: BTreeMap::from([(DEFAULT_KEYSPACE_ID, default)]),
            next_keyspace_id: DEFAULT_KEYSPACE_ID + 1,
            next_file_number: 0,
            last_sequence: 0,
            end: None,
        }
    }
}

/// Whether a power loss can have lost some of the append from `offset` on
/// (its bytes past the last sync): the piece of it on some disk sector
/// reads as zeros. A write(2)-appended file loses whole sectors (the crash
/// model of `TailRule::EveryRecordSyncedButLast`, docs/wal-format.md), and
/// a lost sector reads as zeros; the last piece, up to the end of the
/// file, may also be zeros a crash left after a cut. A flipped bit or a
/// stray write does not leave that (unless it lands in an edit that has
/// such a piece of zeros anyway: a record's bytes are rarely zero over a
/// whole sector).
fn a_sector_may_be_lost(data: &[u8], offset: usize) -> bool {
    let mut start = offset;
    while start < data.len() {
        let end = ((start / SECTOR_SIZE + 1) * SECTOR_SIZE).min(data.len());
        if data[start..end].iter().all(|&b| b == 0) {
            return true;
        }
        start = end;
    }
    false
}

/// Whether the record starting at `offset`, cut short by the end of the
/// file, holds the start of a version edit. The fragments before the cut
/// one were read valid, so each fills its block (FIRST and MIDDLE do): its
/// payload is the rest of the block after its header. Zeros at the end of
/// the file may be a crash's (a length that got ahead of the data), so the
/// cut is taken at the last nonzero byte. A torn sync point, or a fragment
/// no record starts with, is left to the log reader.
fn begins_an_edit_from(data: &[u8], offset: usize) -> bool {
    let data = &data[..data
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1)];
    let starts_record = matches!(
        data.get(offset + HEADER_SIZE - 1)
            .copied()
            .map(RecordType::from_u8),
        Some(Some(RecordType::Full | RecordType::First))
    );
    if !starts_record {
        return true;
    }
    let mut payload = Vec::new();
    let mut header = offset;
    while header + HEADER_SIZE <= data.len() {
        let block_end = (header / BLOCK_SIZE + 1) * BLOCK_SIZE;
        payload.extend_from_slice(&data[header + HEADER_SIZE..block_end.min(data.len())]);
        header = block_end;
    }
    VersionEdit::begins_an_edit(&payload)
}

/// Replay a manifest's bytes. A torn tail is accepted (the edit it held
/// was never installed); any other damage is `Corruption` naming the
/// offset.
///
/// Every edit is synced before the next is written (`log_and_apply`), so
/// only the last edit's append can hold crash damage: the log is read with
/// [`TailRule::EveryRecordSyncedButLast`], which calls damage corruption
/// unless a crash of a `write(2)`-appended file (cut anywhere, sectors of
/// the last append lost) can leave it. Sync points alone would wait for
/// proof from a later 32 KiB block, and a MANIFEST is usually one block: a
/// flipped bit in an early edit would read as a torn tail and silently
/// drop every synced edit after it.
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
    // The tail rule already called corruption whatever damage no crash
    // leaves, in the last edit too (an edit that was synced and acted on:
    // its WAL or input tables may be gone; refused, as LevelDB and RocksDB
    // do, rather than dropped). One case it cannot judge: a record whose
    // length runs past the end of the file reads exactly like the last
    // edit cut short, its payload might hold anything, records included,
    // so a damaged length in an earlier edit looks the same. What a
    // MANIFEST record holds tells them apart: a cut edit's bytes begin a
    // version edit (unless a sector of them was lost too); the bytes behind
    // a damaged length hold the records after it, whose framing reads as
    // no field.
    if let Some(LogEnd::TornTail {
        offset,
        reason: reason @ TornReason::TruncatedPayload { .. },
    }) = &contents.end
    {
        let offset = *offset as usize;
        if !a_sector_may_be_lost(data, offset) && !begins_an_edit_from(data, offset) {
            return Err(Error::corruption(
                path,
                offset as u64,
                format!(
                    "a version edit runs past the end of the file, and its bytes are \
                     no version edit's start: a damaged length, not a cut write ({reason})"
                ),
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
        .all_tables()
        .map(|(_, _, m)| m)
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
    /// The largest number of a live table or of a blob file one lists.
    pub fn max_table_number(&self) -> Option<u64> {
        // Blob files the tables list count too: their numbers come from
        // the same counter.
        self.all_tables()
            .map(|(_, _, m)| m.blob_files.iter().copied().fold(m.number, u64::max))
            .max()
    }

    /// Every live table of every keyspace: (keyspace id, level, table).
    pub fn all_tables(&self) -> impl Iterator<Item = (u32, usize, &FileMeta)> {
        self.keyspaces.iter().flat_map(|(&id, ks)| {
            ks.levels
                .iter()
                .enumerate()
                .flat_map(move |(level, files)| files.values().map(move |m| (id, level, m)))
        })
    }

    /// WALs below this number are no longer needed: the smallest log
    /// number of a live keyspace.
    pub fn log_number(&self) -> u64 {
        self.keyspaces
            .values()
            .map(|ks| ks.log_number)
            .min()
            .unwrap_or(0)
    }

    /// The default keyspace.
    pub fn default_keyspace(&self) -> &KeyspaceContents {
        &self.keyspaces[&DEFAULT_KEYSPACE_ID]
    }
}

fn apply(c: &mut ManifestContents, edit: &VersionEdit) -> std::result::Result<(), String> {
    check_numbers(edit)?;
    if let Some(v) = edit.next_file_number {
        c.next_file_number = v;
    }
    if let Some(v) = edit.last_sequence {
        c.last_sequence = v;
    }
    if let Some(v) = edit.next_keyspace_id {
        c.next_keyspace_id = c.next_keyspace_id.max(v);
    }
    for &(id, number) in &edit.keyspace_log_numbers {
        // A keyspace dropped since is no longer tracked.
        if let Some(ks) = c.keyspaces.get_mut(&id) {
            ks.log_number = ks.log_number.max(number);
        }
    }
    apply_keyspace_change(c, edit)?;
    for part in &edit.parts {
        check_numbers(part)?;
        apply_keyspace_change(c, part)?;
    }
    Ok(())
}

/// The part of `edit` about its keyspace: creation, log number, tables,
/// drop.
fn apply_keyspace_change(
    c: &mut ManifestContents,
    edit: &VersionEdit,
) -> std::result::Result<(), String> {
    let id = edit.keyspace;
    if let Some(name) = &edit.create_keyspace {
        if let Some((other, _)) = c.keyspaces.iter().find(|(_, ks)| &ks.name == name) {
            return Err(format!(
                "edit creates keyspace {id} named {name:?}, the name of keyspace {other}"
            ));
        }
        if c.keyspaces.contains_key(&id) {
            return Err(format!("edit creates keyspace {id}, which exists"));
        }
        c.keyspaces.insert(
            id,
            KeyspaceContents {
                name: name.clone(),
                ..KeyspaceContents::default()
            },
        );
        c.next_keyspace_id = c.next_keyspace_id.max(id.saturating_add(1));
    }
    let Some(ks) = c.keyspaces.get_mut(&id) else {
        return Err(format!("edit changes keyspace {id}, which does not exist"));
    };
    if let Some(v) = edit.log_number {
        ks.log_number = v;
    }
    for &(level, number) in &edit.deleted_files {
        if ks.levels[level].remove(&number).is_none() {
            return Err(format!(
                "edit deletes table {number} which is not live in L{level}"
            ));
        }
    }
    if edit.drop_keyspace {
        if id == DEFAULT_KEYSPACE_ID {
            return Err("edit drops the default keyspace".to_owned());
        }
        c.keyspaces.remove(&id);
        if !edit.new_files.is_empty() {
            return Err(format!("edit drops keyspace {id} and adds tables to it"));
        }
        return Ok(());
    }
    for (level, meta) in &edit.new_files {
        let live = |k: &KeyspaceContents| k.levels.iter().any(|l| l.contains_key(&meta.number));
        if c.keyspaces.values().any(live) {
            return Err(format!(
                "edit adds table {} which is already live",
                meta.number
            ));
        }
        if meta.key_range().is_empty() || meta.smallest_seqno > meta.largest_seqno {
            return Err(format!(
                "table {} has an inverted key or sequence range",
                meta.number
            ));
        }
        if let Some(ks) = c.keyspaces.get_mut(&id) {
            ks.levels[*level].insert(meta.number, meta.clone());
        }
    }
    if let Some(ks) = c.keyspaces.get_mut(&id) {
        for &(number, g) in &edit.blob_garbage {
            let total = ks.blob_garbage.entry(number).or_default();
            *total = total.plus(g);
        }
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
    for &(_, n) in &edit.keyspace_log_numbers {
        file("keyspace log number", n)?;
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
    for &(number, _) in &edit.blob_garbage {
        file("blob file number", number)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::LargestBound;
    use std::path::PathBuf;

    const PATH: &str = "/db/MANIFEST-000004";

    fn table(number: u64, largest: &[u8], largest_bound: LargestBound) -> FileMeta {
        FileMeta {
            number,
            size: 1000,
            smallest: b"b".to_vec(),
            largest: largest.to_vec(),
            largest_bound,
            smallest_seqno: 1,
            largest_seqno: 2,
            blob_files: Vec::new(),
            blob_refs: Vec::new(),
        }
    }

    /// A manifest of a snapshot edit, then one adding `meta` to L1 whose
    /// last byte (its bounds flags, when it has any) `patch` may change;
    /// and the second record's offset.
    fn manifest(meta: FileMeta, patch: Option<u8>) -> (Vec<u8>, u64) {
        let mut log = strata_wal::Writer::new(Vec::new());
        let mut snapshot = Vec::new();
        VersionEdit {
            log_number: Some(3),
            next_file_number: Some(20),
            last_sequence: Some(9),
            ..Default::default()
        }
        .encode(&mut snapshot);
        log.add_record(&snapshot).unwrap();
        let offset = log.offset_written();
        let mut edit = Vec::new();
        VersionEdit {
            new_files: vec![(1, meta)],
            ..Default::default()
        }
        .encode(&mut edit);
        if let (Some(byte), Some(last)) = (patch, edit.last_mut()) {
            *last = byte;
        }
        log.add_record(&edit).unwrap();
        (log.into_inner(), offset)
    }

    fn replayed(data: &[u8]) -> Result<FileMeta> {
        let contents = read_manifest(Path::new(PATH), data)?;
        Ok(contents.default_keyspace().levels[1][&7].clone())
    }

    fn corruption(data: &[u8]) -> (PathBuf, u64, String) {
        match read_manifest(Path::new(PATH), data) {
            Err(Error::Corruption {
                file,
                offset,
                reason,
            }) => (file, offset, reason),
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn tables_with_each_largest_bound_replay_as_written() {
        for meta in [
            table(7, b"m", LargestBound::Included),
            table(7, b"m", LargestBound::Excluded),
            table(7, b"", LargestBound::Unbounded),
        ] {
            let (data, _) = manifest(meta.clone(), None);
            assert_eq!(replayed(&data).unwrap(), meta);
        }
    }

    #[test]
    fn bad_bounds_flags_are_corruption_at_their_edit() {
        // The flags are the edit's last byte: 1 for an exclusive end.
        let excluded = table(7, b"m", LargestBound::Excluded);
        for (flags, says) in [(3, "both"), (4, "unknown bits"), (0x41, "unknown bits")] {
            let (data, offset) = manifest(excluded.clone(), Some(flags));
            let (file, at, reason) = corruption(&data);
            assert_eq!((file.as_path(), at), (Path::new(PATH), offset), "{reason}");
            assert!(reason.contains(says), "{flags}: {reason}");
        }
        // No largest key, yet one in the field.
        let (data, offset) = manifest(excluded, Some(2));
        let (_, at, reason) = corruption(&data);
        assert_eq!(at, offset);
        assert!(reason.contains("no largest key"), "{reason}");
    }

    #[test]
    fn a_table_ending_at_or_before_its_start_is_corruption() {
        // `b` is the smallest key: `[b, b]` holds it, `[b, b)` nothing.
        let (data, _) = manifest(table(7, b"b", LargestBound::Included), None);
        assert!(replayed(&data).is_ok());
        for meta in [
            table(7, b"b", LargestBound::Excluded),
            table(7, b"a", LargestBound::Included),
            table(7, b"a\xff", LargestBound::Excluded),
        ] {
            let (data, offset) = manifest(meta, None);
            let (_, at, reason) = corruption(&data);
            assert_eq!(at, offset);
            assert!(reason.contains("inverted key"), "{reason}");
        }
    }
}
