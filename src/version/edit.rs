//! Version edits: the records of the MANIFEST. Each edit says which tables
//! were added to or removed from which level, and advances the counters.
//!
//! An edit is a sequence of tagged fields (`docs/manifest-format.md`):
//!
//! ```text
//! +-----------+------------+------------------+
//! | tag varint| len varint | body (len bytes) |  ... repeated
//! +-----------+------------+------------------+
//! ```
//! Every field carries its length, so a reader can step over a field it
//! does not know. Tags at or above [`SAFE_TO_IGNORE`] may be skipped by
//! older readers; an unknown tag below it means the edit needs a newer
//! strata and is an error. Inside a body, a reader ignores bytes after the
//! fields it knows, so a later version may append fields to a body.

use super::bounds::LargestBound;
use crate::varint::{get_length_prefixed, get_varint64, put_length_prefixed, put_varint64};
use strata_sstable::SeqNo;

/// Tags from here up may be skipped by a reader that does not know them.
pub const SAFE_TO_IGNORE: u64 = 1 << 13;

const TAG_LOG_NUMBER: u64 = 1;
const TAG_NEXT_FILE_NUMBER: u64 = 2;
const TAG_LAST_SEQUENCE: u64 = 3;
const TAG_DELETED_FILE: u64 = 4;
const TAG_NEW_FILE: u64 = 5;
const TAG_KEYSPACE: u64 = 6;
const TAG_CREATE_KEYSPACE: u64 = 7;
const TAG_DROP_KEYSPACE: u64 = 8;
const TAG_KEYSPACE_LOG_NUMBER: u64 = 9;
const TAG_NEXT_KEYSPACE_ID: u64 = 10;
const TAG_KEYSPACE_PART: u64 = 11;
/// The blob files a table (added by a tag 5 field before it in the same
/// edit) references. Below `SAFE_TO_IGNORE`: a strata without blob files
/// refuses the MANIFEST rather than delete blob files it thinks stray.
const TAG_TABLE_BLOB_FILES: u64 = 12;
/// Garbage found in a blob file: references into it that a compaction
/// dropped or relocated (docs/design/blob-files.md). At or above
/// `SAFE_TO_IGNORE`: a strata without garbage accounting steps over it
/// and only loses the count.
const TAG_BLOB_FILE_GARBAGE: u64 = SAFE_TO_IGNORE + 1;
/// The largest tag below `SAFE_TO_IGNORE` an edit of this version holds.
const TAG_LAST: u64 = TAG_TABLE_BLOB_FILES;

/// Tag 5's trailing bounds flags: the largest key is a range tombstone's
/// exclusive end ([`LargestBound::Excluded`]).
const BOUNDS_LARGEST_EXCLUDED: u64 = 1;
/// Tag 5's trailing bounds flags: the table's range has no end
/// ([`LargestBound::Unbounded`]); the largest key field is empty.
const BOUNDS_NO_LARGEST: u64 = 2;

/// The id of the default keyspace, which every database has and which
/// edits without a keyspace field are about.
pub const DEFAULT_KEYSPACE_ID: u32 = 0;

/// What the manifest records about a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// File number (the table is `NNNNNN.sst`).
    pub number: u64,
    /// Size in bytes.
    pub size: u64,
    /// Smallest user key in the table (always inclusive).
    pub smallest: Vec<u8>,
    /// Largest user key in the table, bounding it as `largest_bound` says
    /// (empty when that is `Unbounded`). Compare bounds only through the
    /// methods in `bounds.rs`: `ends_before`, `may_contain`, `overlaps`.
    pub largest: Vec<u8>,
    /// Whether `largest` is in the table's range, just past it (a range
    /// tombstone's end), or the range has no end.
    pub largest_bound: LargestBound,
    /// Smallest sequence number in the table.
    pub smallest_seqno: SeqNo,
    /// Largest sequence number in the table.
    pub largest_seqno: SeqNo,
    /// The blob files (`NNNNNN.blob`) the table's blob references point
    /// into, ascending: each stays live while a live table lists it.
    pub blob_files: Vec<u64>,
    /// How many references, and how many of the blob files' stored bytes,
    /// the table holds into each of `blob_files` (same order). Empty when
    /// unknown: a table written before garbage accounting
    /// (docs/design/blob-files.md).
    pub blob_refs: Vec<BlobRefCount>,
}

/// The blob references a table holds into one blob file, or the garbage
/// a compaction found in one: a count, and the sum of the referenced
/// records' stored sizes (what a blob file's footer totals).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobRefCount {
    /// References (records).
    pub count: u64,
    /// Stored bytes of the referenced records' values.
    pub bytes: u64,
}

impl BlobRefCount {
    /// `self` plus `other`, saturating.
    pub fn plus(self, other: BlobRefCount) -> BlobRefCount {
        BlobRefCount {
            count: self.count.saturating_add(other.count),
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }
}

impl FileMeta {
    /// The references the table holds into blob file `number`, `None`
    /// when unknown (a table from before garbage accounting).
    pub fn blob_refs_into(&self, number: u64) -> Option<BlobRefCount> {
        if self.blob_refs.len() != self.blob_files.len() {
            return None;
        }
        let i = self.blob_files.binary_search(&number).ok()?;
        Some(self.blob_refs[i])
    }
}

impl FileMeta {
    /// What the manifest records about table `number` as its builder
    /// finished it: its size, its bounds (range tombstones included) and
    /// its seqno range (tombstones' included).
    pub fn from_built<W>(number: u64, built: &strata_sstable::BuiltTable<W>) -> FileMeta {
        FileMeta {
            number,
            size: built.file_size,
            smallest: built.bounds.smallest.clone(),
            largest: built.bounds.largest.clone(),
            largest_bound: built.bounds.largest_bound,
            smallest_seqno: built.properties.min_seqno,
            largest_seqno: built.properties.max_seqno,
            blob_files: Vec::new(),
            blob_refs: Vec::new(),
        }
    }
}

/// A change to the set of live tables and counters. The log number, the
/// tables and the creation or drop are about one keyspace, `keyspace`;
/// the counters are the database's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// The keyspace the log number, tables, creation and drop are about
    /// ([`DEFAULT_KEYSPACE_ID`] unless said).
    pub keyspace: u32,
    /// The edit creates `keyspace` with this name (and the log number,
    /// the WAL from which on its writes are logged).
    pub create_keyspace: Option<String>,
    /// The edit drops `keyspace`: its tables are no longer live.
    pub drop_keyspace: bool,
    /// WALs numbered below this hold nothing of `keyspace` that is not in
    /// its tables: recovery replays none of their records into it.
    pub log_number: Option<u64>,
    /// Log numbers of other keyspaces moved forward by this edit (those
    /// holding nothing unflushed), so that they do not keep old WALs.
    pub keyspace_log_numbers: Vec<(u32, u64)>,
    /// The next keyspace id to hand out: ids are never reused, so a WAL
    /// record of a dropped keyspace never reaches a new one.
    pub next_keyspace_id: Option<u32>,
    /// The next file number to hand out.
    pub next_file_number: Option<u64>,
    /// The last sequence number used by writes in the tables.
    pub last_sequence: Option<SeqNo>,
    /// Tables removed: (level, file number).
    pub deleted_files: Vec<(usize, u64)>,
    /// Tables added: (level, metadata).
    pub new_files: Vec<(usize, FileMeta)>,
    /// Garbage found in blob files of `keyspace` by this edit (a
    /// compaction's dropped or relocated references), added to what
    /// earlier edits found: (blob file number, garbage). A snapshot edit
    /// states each live blob file's whole garbage.
    pub blob_garbage: Vec<(u64, BlobRefCount)>,
    /// The same changes (log number, tables) to other keyspaces, logged
    /// in the same record: applied all together or not at all (a close or
    /// a resume writing every keyspace's memtables out at once). A part
    /// holds no counters, creation, drop or parts of its own.
    pub parts: Vec<VersionEdit>,
}

/// Why an edit could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditError {
    /// Byte offset within the edit.
    pub offset: usize,
    /// What was wrong.
    pub reason: String,
}

impl VersionEdit {
    /// Append the encoded edit to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        let field = |out: &mut Vec<u8>, tag: u64, body: &[u8]| {
            put_varint64(out, tag);
            put_length_prefixed(out, body);
        };
        // Written only when not the default, so an edit of a database
        // without keyspaces reads as before in an older strata.
        if self.keyspace != DEFAULT_KEYSPACE_ID {
            body.clear();
            put_varint64(&mut body, u64::from(self.keyspace));
            field(out, TAG_KEYSPACE, &body);
        }
        if let Some(name) = &self.create_keyspace {
            body.clear();
            put_length_prefixed(&mut body, name.as_bytes());
            field(out, TAG_CREATE_KEYSPACE, &body);
        }
        if self.drop_keyspace {
            field(out, TAG_DROP_KEYSPACE, &[]);
        }
        for &(keyspace, number) in &self.keyspace_log_numbers {
            body.clear();
            put_varint64(&mut body, u64::from(keyspace));
            put_varint64(&mut body, number);
            field(out, TAG_KEYSPACE_LOG_NUMBER, &body);
        }
        if let Some(id) = self.next_keyspace_id {
            body.clear();
            put_varint64(&mut body, u64::from(id));
            field(out, TAG_NEXT_KEYSPACE_ID, &body);
        }
        for (tag, value) in [
            (TAG_LOG_NUMBER, self.log_number),
            (TAG_NEXT_FILE_NUMBER, self.next_file_number),
            (TAG_LAST_SEQUENCE, self.last_sequence),
        ] {
            if let Some(v) = value {
                body.clear();
                put_varint64(&mut body, v);
                field(out, tag, &body);
            }
        }
        for &(level, number) in &self.deleted_files {
            body.clear();
            put_varint64(&mut body, level as u64);
            put_varint64(&mut body, number);
            field(out, TAG_DELETED_FILE, &body);
        }
        for (level, f) in &self.new_files {
            body.clear();
            put_varint64(&mut body, *level as u64);
            put_varint64(&mut body, f.number);
            put_varint64(&mut body, f.size);
            put_length_prefixed(&mut body, &f.smallest);
            let (largest, flags): (&[u8], u64) = match f.largest_bound {
                LargestBound::Included => (&f.largest, 0),
                LargestBound::Excluded => (&f.largest, BOUNDS_LARGEST_EXCLUDED),
                LargestBound::Unbounded => (&[], BOUNDS_NO_LARGEST),
            };
            debug_assert!(
                f.largest_bound != LargestBound::Unbounded || f.largest.is_empty(),
                "table {} has no end but a largest key",
                f.number
            );
            put_length_prefixed(&mut body, largest);
            put_varint64(&mut body, f.smallest_seqno);
            put_varint64(&mut body, f.largest_seqno);
            // Only when not zero: a table without range tombstones is
            // recorded byte for byte as before they existed.
            if flags != 0 {
                put_varint64(&mut body, flags);
            }
            field(out, TAG_NEW_FILE, &body);
            if !f.blob_files.is_empty() {
                body.clear();
                put_varint64(&mut body, f.number);
                put_varint64(&mut body, f.blob_files.len() as u64);
                for n in &f.blob_files {
                    put_varint64(&mut body, *n);
                }
                // Appended to the body (an older reader ignores it): the
                // references per blob file, when known.
                if f.blob_refs.len() == f.blob_files.len() {
                    for r in &f.blob_refs {
                        put_varint64(&mut body, r.count);
                        put_varint64(&mut body, r.bytes);
                    }
                }
                field(out, TAG_TABLE_BLOB_FILES, &body);
            }
        }
        for (number, garbage) in &self.blob_garbage {
            body.clear();
            put_varint64(&mut body, *number);
            put_varint64(&mut body, garbage.count);
            put_varint64(&mut body, garbage.bytes);
            field(out, TAG_BLOB_FILE_GARBAGE, &body);
        }
        for part in &self.parts {
            body.clear();
            part.encode(&mut body);
            field(out, TAG_KEYSPACE_PART, &body);
        }
    }

    /// Decode an edit; never panics, whatever the bytes.
    pub fn decode(input: &[u8]) -> Result<VersionEdit, EditError> {
        Self::decode_nested(input, false)
    }

    /// Decode an edit, or a keyspace part of one (`part`: which may hold
    /// no parts itself, so decoding never recurses deeper).
    fn decode_nested(input: &[u8], part: bool) -> Result<VersionEdit, EditError> {
        let mut edit = VersionEdit::default();
        let mut pos = 0;
        while pos < input.len() {
            let err = |reason: &str| EditError {
                offset: pos,
                reason: reason.to_owned(),
            };
            let (tag, n) = get_varint64(&input[pos..]).ok_or_else(|| err("bad field tag"))?;
            let (body, m) = get_length_prefixed(&input[pos + n..])
                .ok_or_else(|| err("field length runs past the end of the edit"))?;
            edit.decode_field(tag, body, part)
                .map_err(|reason| err(&reason))?;
            pos += n + m;
        }
        Ok(edit)
    }

    /// Whether `prefix` can be the start of an edit's encoding, the rest
    /// cut off: every field it holds whole decodes, and the field the end
    /// cuts short is cut in its tag, its length or its body, its tag (if
    /// whole) one an edit may hold. Never panics, whatever the bytes.
    ///
    /// What a MANIFEST's last edit cut short by a crash leaves; other bytes
    /// behind a record header whose length runs past the end of the file
    /// (later records, after a damaged length) rarely pass: a record header
    /// or sync point read as a field tag is one no edit holds.
    pub fn begins_an_edit(prefix: &[u8]) -> bool {
        let mut edit = VersionEdit::default();
        let mut rest = prefix;
        while !rest.is_empty() {
            let Some((tag, n)) = get_varint64(rest) else {
                return cut_varint(rest);
            };
            if !(1..=TAG_LAST).contains(&tag) && tag < SAFE_TO_IGNORE {
                return false;
            }
            let Some((len, m)) = get_varint64(&rest[n..]) else {
                return cut_varint(&rest[n..]);
            };
            let after_length = &rest[n + m..];
            let Some(body) = usize::try_from(len)
                .ok()
                .and_then(|len| after_length.get(..len))
            else {
                return true; // the body is cut short
            };
            if edit.decode_field(tag, body, false).is_err() {
                return false;
            }
            rest = &after_length[body.len()..];
        }
        true
    }

    /// Applies one whole field to `self`, or says why it cannot be.
    fn decode_field(&mut self, tag: u64, body: &[u8], in_part: bool) -> Result<(), String> {
        let mut r = BodyReader { body, pos: 0 };
        let parsed = match tag {
            TAG_LOG_NUMBER => r.u64().map(|v| self.log_number = Some(v)),
            TAG_NEXT_FILE_NUMBER => r.u64().map(|v| self.next_file_number = Some(v)),
            TAG_LAST_SEQUENCE => r.u64().map(|v| self.last_sequence = Some(v)),
            TAG_DELETED_FILE => (|| {
                let level = r.level()?;
                let number = r.u64()?;
                self.deleted_files.push((level, number));
                Some(())
            })(),
            TAG_NEW_FILE => {
                let new_file = r.new_file()?;
                self.new_files.push(new_file);
                return Ok(());
            }
            TAG_TABLE_BLOB_FILES => {
                let malformed = || format!("field with tag {TAG_TABLE_BLOB_FILES} is malformed");
                let number = r.u64().ok_or_else(malformed)?;
                let count = r.u64().ok_or_else(malformed)?;
                let mut blob_files = Vec::new();
                for _ in 0..count {
                    blob_files.push(r.u64().ok_or_else(malformed)?);
                }
                // Written since garbage accounting: the references per
                // blob file. Absent: unknown.
                let mut blob_refs = Vec::new();
                if r.pos < r.body.len() {
                    for _ in 0..count {
                        let refs = r.u64().ok_or_else(malformed)?;
                        let bytes = r.u64().ok_or_else(malformed)?;
                        blob_refs.push(BlobRefCount { count: refs, bytes });
                    }
                }
                let Some((_, table)) = self.new_files.iter_mut().rfind(|(_, f)| f.number == number)
                else {
                    return Err(format!(
                        "blob files listed for table {number}, which the edit does not add"
                    ));
                };
                table.blob_files = blob_files;
                table.blob_refs = blob_refs;
                return Ok(());
            }
            TAG_BLOB_FILE_GARBAGE => (|| {
                let number = r.u64()?;
                let count = r.u64()?;
                let bytes = r.u64()?;
                self.blob_garbage
                    .push((number, BlobRefCount { count, bytes }));
                Some(())
            })(),
            TAG_KEYSPACE => r.keyspace().map(|id| self.keyspace = id),
            TAG_CREATE_KEYSPACE => r
                .bytes()
                .and_then(|name| std::str::from_utf8(name).ok())
                .map(|name| self.create_keyspace = Some(name.to_owned())),
            TAG_DROP_KEYSPACE => {
                self.drop_keyspace = true;
                Some(())
            }
            TAG_KEYSPACE_LOG_NUMBER => (|| {
                let keyspace = r.keyspace()?;
                let number = r.u64()?;
                self.keyspace_log_numbers.push((keyspace, number));
                Some(())
            })(),
            TAG_NEXT_KEYSPACE_ID => r.keyspace().map(|id| self.next_keyspace_id = Some(id)),
            TAG_KEYSPACE_PART => {
                if in_part {
                    return Err("keyspace parts do not nest".to_owned());
                }
                let part = VersionEdit::decode_nested(body, true)
                    .map_err(|e| format!("keyspace part: {} at byte {}", e.reason, e.offset))?;
                let only_keyspace_fields = part.create_keyspace.is_none()
                    && !part.drop_keyspace
                    && part.next_file_number.is_none()
                    && part.last_sequence.is_none()
                    && part.next_keyspace_id.is_none()
                    && part.keyspace_log_numbers.is_empty();
                if !only_keyspace_fields {
                    return Err(
                        "a keyspace part holds more than a keyspace's log number and tables"
                            .to_owned(),
                    );
                }
                self.parts.push(part);
                return Ok(());
            }
            t if t >= SAFE_TO_IGNORE => Some(()),
            t => {
                return Err(format!(
                    "unknown field tag {t} that must be understood (written by a newer strata?)"
                ))
            }
        };
        parsed.ok_or_else(|| format!("field with tag {tag} is malformed"))
    }
}

/// Whether `bytes` is a varint cut short by their end: fewer than a
/// varint's 10 bytes, each saying another follows.
fn cut_varint(bytes: &[u8]) -> bool {
    bytes.len() < 10 && bytes.iter().all(|&byte| byte & 0x80 != 0)
}

/// Reads the fields of one body; `None` when the body is too short.
struct BodyReader<'a> {
    body: &'a [u8],
    pos: usize,
}

impl<'a> BodyReader<'a> {
    fn u64(&mut self) -> Option<u64> {
        let (v, n) = get_varint64(self.body.get(self.pos..)?)?;
        self.pos += n;
        Some(v)
    }

    fn level(&mut self) -> Option<usize> {
        let level = self.u64()?;
        (level < crate::version::NUM_LEVELS as u64).then_some(level as usize)
    }

    fn keyspace(&mut self) -> Option<u32> {
        u32::try_from(self.u64()?).ok()
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let (b, n) = get_length_prefixed(self.body.get(self.pos..)?)?;
        self.pos += n;
        Some(b)
    }

    /// A new-file body (tag 5): level and table.
    fn new_file(&mut self) -> Result<(usize, FileMeta), String> {
        let malformed = || format!("field with tag {TAG_NEW_FILE} is malformed");
        let level = self.level().ok_or_else(malformed)?;
        let mut meta = FileMeta {
            number: self.u64().ok_or_else(malformed)?,
            size: self.u64().ok_or_else(malformed)?,
            smallest: self.bytes().ok_or_else(malformed)?.to_vec(),
            largest: self.bytes().ok_or_else(malformed)?.to_vec(),
            largest_bound: LargestBound::Included,
            smallest_seqno: self.u64().ok_or_else(malformed)?,
            largest_seqno: self.u64().ok_or_else(malformed)?,
            blob_files: Vec::new(),
            blob_refs: Vec::new(),
        };
        // Written only when not zero (and never by a strata from before
        // range deletes).
        let flags = if self.pos < self.body.len() {
            self.u64().ok_or_else(malformed)?
        } else {
            0
        };
        let number = meta.number;
        meta.largest_bound = match flags {
            0 => LargestBound::Included,
            BOUNDS_LARGEST_EXCLUDED => LargestBound::Excluded,
            BOUNDS_NO_LARGEST if meta.largest.is_empty() => LargestBound::Unbounded,
            BOUNDS_NO_LARGEST => {
                return Err(format!(
                    "table {number}'s bounds flags say it has no largest key, \
                     but the field holds {} bytes",
                    meta.largest.len()
                ))
            }
            f if f == BOUNDS_LARGEST_EXCLUDED | BOUNDS_NO_LARGEST => {
                return Err(format!(
                    "table {number}'s bounds flags {f} say both that its largest key \
                     is exclusive and that it has none"
                ))
            }
            f => {
                return Err(format!(
                    "table {number}'s bounds flags {f:#x} hold unknown bits \
                     (written by a newer strata?)"
                ))
            }
        };
        Ok((level, meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn meta(number: u64) -> FileMeta {
        FileMeta {
            number,
            size: 4096 * number,
            smallest: b"apple".to_vec(),
            largest: b"zebra".to_vec(),
            largest_bound: LargestBound::Included,
            smallest_seqno: 7,
            largest_seqno: 99,
            blob_files: Vec::new(),
            blob_refs: Vec::new(),
        }
    }

    /// The body of a new-file field as `encode` wrote it before range
    /// deletes (no bounds flags), with `trailer` appended.
    fn new_file_field(level: u64, m: &FileMeta, trailer: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        put_varint64(&mut body, level);
        put_varint64(&mut body, m.number);
        put_varint64(&mut body, m.size);
        put_length_prefixed(&mut body, &m.smallest);
        put_length_prefixed(&mut body, &m.largest);
        put_varint64(&mut body, m.smallest_seqno);
        put_varint64(&mut body, m.largest_seqno);
        body.extend_from_slice(trailer);
        let mut field = Vec::new();
        put_varint64(&mut field, TAG_NEW_FILE);
        put_length_prefixed(&mut field, &body);
        field
    }

    #[test]
    fn a_table_with_an_included_end_is_recorded_as_before_bounds_flags() {
        let m = meta(9);
        let mut buf = Vec::new();
        VersionEdit {
            new_files: vec![(2, m.clone())],
            ..Default::default()
        }
        .encode(&mut buf);
        assert_eq!(buf, new_file_field(2, &m, &[]));
    }

    #[test]
    fn every_largest_bound_round_trips_through_its_flags() {
        let excluded = FileMeta {
            largest_bound: LargestBound::Excluded,
            ..meta(10)
        };
        let unbounded = FileMeta {
            largest: Vec::new(),
            largest_bound: LargestBound::Unbounded,
            ..meta(11)
        };
        let edit = VersionEdit {
            new_files: vec![(1, meta(9)), (1, excluded.clone()), (6, unbounded.clone())],
            ..Default::default()
        };
        let mut buf = Vec::new();
        edit.encode(&mut buf);
        assert_eq!(VersionEdit::decode(&buf), Ok(edit));
        // The flags are the body's last field: 1 for an exclusive end, 2
        // (with an empty key) for none.
        let mut one = Vec::new();
        VersionEdit {
            new_files: vec![(1, excluded.clone())],
            ..Default::default()
        }
        .encode(&mut one);
        assert_eq!(one, new_file_field(1, &excluded, &[1]));
        let mut two = Vec::new();
        VersionEdit {
            new_files: vec![(6, unbounded.clone())],
            ..Default::default()
        }
        .encode(&mut two);
        assert_eq!(two, new_file_field(6, &unbounded, &[2]));
        // A zero written anyway, and bytes after the flags, read as before.
        for trailer in [&[0][..], &[1, 7, 7], &[0, 0x85, 1]] {
            let decoded = VersionEdit::decode(&new_file_field(1, &excluded, trailer)).unwrap();
            let want = if trailer[0] == 1 {
                LargestBound::Excluded
            } else {
                LargestBound::Included
            };
            assert_eq!(decoded.new_files[0].1.largest_bound, want, "{trailer:?}");
        }
    }

    #[test]
    fn bounds_flags_with_unknown_bits_or_both_bits_are_rejected() {
        let m = meta(12);
        let empty_largest = FileMeta {
            largest: Vec::new(),
            ..meta(13)
        };
        for (table, flags, says) in [
            (&m, vec![3], "both"),
            (&empty_largest, vec![3], "both"),
            (&m, vec![4], "unknown bits"),
            (&m, vec![0x85, 0x01], "unknown bits"),
            (&m, vec![2], "no largest key"),
            (&m, vec![0x80], "malformed"),
        ] {
            let field = new_file_field(1, table, &flags);
            let err = VersionEdit::decode(&field).unwrap_err();
            assert!(err.reason.contains(says), "{flags:?}: {err:?}");
            assert!(!VersionEdit::begins_an_edit(&field), "{flags:?}");
        }
    }

    #[test]
    fn edits_round_trip() {
        let edit = VersionEdit {
            log_number: Some(12),
            next_file_number: Some(40),
            last_sequence: Some(1 << 50),
            deleted_files: vec![(0, 3), (4, 17)],
            new_files: vec![(1, meta(20)), (6, meta(21))],
            ..Default::default()
        };
        let mut buf = Vec::new();
        edit.encode(&mut buf);
        assert_eq!(VersionEdit::decode(&buf), Ok(edit));
        let edit = VersionEdit {
            log_number: Some(3),
            new_files: vec![(0, meta(5))],
            parts: vec![
                VersionEdit {
                    keyspace: 2,
                    log_number: Some(3),
                    new_files: vec![(0, meta(6))],
                    ..Default::default()
                },
                VersionEdit {
                    keyspace: 4,
                    log_number: Some(3),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let mut buf = Vec::new();
        edit.encode(&mut buf);
        assert_eq!(VersionEdit::decode(&buf), Ok(edit));
        let edit = VersionEdit {
            keyspace: 7,
            create_keyspace: Some("users".into()),
            log_number: Some(30),
            keyspace_log_numbers: vec![(0, 30), (3, 29)],
            next_keyspace_id: Some(8),
            ..Default::default()
        };
        let mut buf = Vec::new();
        edit.encode(&mut buf);
        assert_eq!(VersionEdit::decode(&buf), Ok(edit));
    }

    #[test]
    fn blob_reference_counts_and_garbage_round_trip_and_old_bodies_still_read() {
        let with_refs = FileMeta {
            blob_files: vec![3, 7],
            blob_refs: vec![
                BlobRefCount {
                    count: 10,
                    bytes: 5000,
                },
                BlobRefCount {
                    count: 1,
                    bytes: 1 << 40,
                },
            ],
            ..meta(9)
        };
        let edit = VersionEdit {
            new_files: vec![(1, with_refs.clone())],
            blob_garbage: vec![
                (
                    3,
                    BlobRefCount {
                        count: 4,
                        bytes: 2000,
                    },
                ),
                (5, BlobRefCount::default()),
            ],
            ..Default::default()
        };
        let mut buf = Vec::new();
        edit.encode(&mut buf);
        let decoded = VersionEdit::decode(&buf).unwrap();
        assert_eq!(decoded, edit);
        assert_eq!(
            decoded.new_files[0].1.blob_refs_into(7),
            Some(BlobRefCount {
                count: 1,
                bytes: 1 << 40
            })
        );
        assert_eq!(decoded.new_files[0].1.blob_refs_into(4), None);
        for len in 0..=buf.len() {
            assert!(VersionEdit::begins_an_edit(&buf[..len]), "{len} bytes");
        }
        // A tag 12 body from before the counts: the files, counts unknown.
        let without_refs = FileMeta {
            blob_refs: Vec::new(),
            ..with_refs
        };
        let mut old = Vec::new();
        VersionEdit {
            new_files: vec![(1, without_refs.clone())],
            ..Default::default()
        }
        .encode(&mut old);
        let decoded = VersionEdit::decode(&old).unwrap();
        assert_eq!(decoded.new_files[0].1, without_refs);
        assert_eq!(decoded.new_files[0].1.blob_refs_into(3), None);
        // The garbage field may be skipped by a strata without garbage
        // accounting.
        const { assert!(TAG_BLOB_FILE_GARBAGE >= SAFE_TO_IGNORE) };
    }

    #[test]
    fn unknown_tags_are_skipped_only_when_safe() {
        let mut buf = Vec::new();
        VersionEdit {
            log_number: Some(5),
            ..Default::default()
        }
        .encode(&mut buf);
        let mut safe = buf.clone();
        put_varint64(&mut safe, SAFE_TO_IGNORE + 3);
        put_length_prefixed(&mut safe, b"future field");
        assert_eq!(VersionEdit::decode(&safe).unwrap().log_number, Some(5));

        let mut unsafe_tag = buf;
        put_varint64(&mut unsafe_tag, 99);
        put_length_prefixed(&mut unsafe_tag, b"?");
        let err = VersionEdit::decode(&unsafe_tag).unwrap_err();
        assert!(err.reason.contains("must be understood"), "{err:?}");
    }

    #[test]
    fn bodies_may_grow_new_trailing_fields() {
        let mut body = Vec::new();
        put_varint64(&mut body, 8);
        body.extend_from_slice(b"appended by a later version");
        let mut buf = Vec::new();
        put_varint64(&mut buf, TAG_LOG_NUMBER);
        put_length_prefixed(&mut buf, &body);
        assert_eq!(VersionEdit::decode(&buf).unwrap().log_number, Some(8));
    }

    #[test]
    fn a_part_holds_only_a_keyspace_change() {
        let nested = VersionEdit {
            parts: vec![VersionEdit {
                keyspace: 1,
                parts: vec![VersionEdit::default()],
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut buf = Vec::new();
        nested.encode(&mut buf);
        assert!(VersionEdit::decode(&buf).is_err(), "parts do not nest");
        let counters = VersionEdit {
            parts: vec![VersionEdit {
                keyspace: 1,
                last_sequence: Some(9),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut buf = Vec::new();
        counters.encode(&mut buf);
        assert!(
            VersionEdit::decode(&buf).is_err(),
            "counters are the edit's"
        );
    }

    #[test]
    fn levels_out_of_range_are_rejected() {
        let mut buf = Vec::new();
        VersionEdit {
            deleted_files: vec![(crate::version::NUM_LEVELS, 1)],
            ..Default::default()
        }
        .encode(&mut buf);
        assert!(VersionEdit::decode(&buf).is_err());
    }

    #[test]
    fn every_prefix_of_an_edit_begins_one_and_other_bytes_do_not() {
        let edit = VersionEdit {
            keyspace: 2,
            create_keyspace: Some("events".into()),
            drop_keyspace: true,
            log_number: Some(12),
            keyspace_log_numbers: vec![(1, 9)],
            next_keyspace_id: Some(3),
            next_file_number: Some(400),
            last_sequence: Some(1 << 50),
            deleted_files: vec![(0, 3)],
            new_files: vec![(1, meta(20))],
            blob_garbage: vec![(
                8,
                BlobRefCount {
                    count: 2,
                    bytes: 900,
                },
            )],
            parts: vec![VersionEdit {
                keyspace: 1,
                log_number: Some(12),
                ..Default::default()
            }],
        };
        let mut buf = Vec::new();
        edit.encode(&mut buf);
        for len in 0..=buf.len() {
            assert!(VersionEdit::begins_an_edit(&buf[..len]), "{len} bytes");
        }
        let mut future = buf.clone();
        put_varint64(&mut future, SAFE_TO_IGNORE + 1);
        future.push(0x85); // a length cut short
        assert!(VersionEdit::begins_an_edit(&future));
        // A whole edit, then what follows it in a MANIFEST: a sync point
        // (its checksum read as a tag no edit holds).
        let mut then_framing = buf.clone();
        then_framing.extend_from_slice(&[0x26, 0x8b, 0xf9, 0x71, 0x08, 0x00, 0x90]);
        assert!(!VersionEdit::begins_an_edit(&then_framing));
        // A whole field that does not decode.
        let mut bad_level = Vec::new();
        put_varint64(&mut bad_level, TAG_DELETED_FILE);
        put_length_prefixed(&mut bad_level, &[99, 1]);
        assert!(!VersionEdit::begins_an_edit(&bad_level));
        assert!(!VersionEdit::begins_an_edit(&[0xff; 10]), "an overlong tag");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = VersionEdit::begins_an_edit(&bytes);
            let _ = VersionEdit::decode(&bytes);
        }
    }
}
