//! A backup's metadata file, `meta/<id>` (docs/backup-format.md): which
//! files make the backup, where each is kept, its size and checksum, and
//! the name it takes when restored. Text, one item a line, ending in a
//! CRC-32 of everything before it:
//!
//! ```text
//! strata-backup 1
//! id 3
//! timestamp 1764950400
//! sequence 123456
//! file shared/000012_3c8f2a91_1048576.sst 1048576 3c8f2a91 000012.sst
//! file private/3/000015.log 5120 0a1b2c3d 000015.log
//! file private/3/MANIFEST-000020 612 deadbeef MANIFEST-000020
//! file private/3/CURRENT 16 01234567 CURRENT
//! end 4
//! crc32 9a0b1c2d
//! ```

use crate::error::{Error, Result};
use crate::filename::{parse_file_name, FileKind};
use std::fmt::Write as _;
use std::path::Path;

/// The format version this code writes and reads.
const VERSION: u32 = 1;
const FIRST_LINE: &str = "strata-backup";

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackupFile {
    /// Where it is kept, relative to the backup directory:
    /// `shared/<number>_<crc>_<size>.sst` or `private/<id>/<name>`.
    pub stored: String,
    pub size: u64,
    pub crc32: u32,
    /// Its name in a restored database.
    pub name: String,
}

/// What `meta/<id>` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackupMeta {
    pub id: u32,
    pub timestamp_secs: u64,
    pub sequence: u64,
    /// In restore order: CURRENT last.
    pub files: Vec<BackupFile>,
}

impl BackupMeta {
    pub fn encode(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(s, "{FIRST_LINE} {VERSION}");
        let _ = writeln!(s, "id {}", self.id);
        let _ = writeln!(s, "timestamp {}", self.timestamp_secs);
        let _ = writeln!(s, "sequence {}", self.sequence);
        for f in &self.files {
            let _ = writeln!(s, "file {} {} {:08x} {}", f.stored, f.size, f.crc32, f.name);
        }
        let _ = writeln!(s, "end {}", self.files.len());
        let crc = crc32fast::hash(s.as_bytes());
        let _ = writeln!(s, "crc32 {crc:08x}");
        s
    }

    /// Parse `data`, the contents of `path`, checking its checksum and
    /// every name in it (a damaged or planted file must not make a
    /// restore write outside its directory).
    pub fn decode(path: &Path, data: &[u8]) -> Result<BackupMeta> {
        let bad = |offset: usize, reason: String| Error::corruption(path, offset as u64, reason);
        let text =
            std::str::from_utf8(data).map_err(|e| bad(e.valid_up_to(), "not UTF-8 text".into()))?;
        let text = text
            .strip_suffix('\n')
            .ok_or_else(|| bad(data.len(), "does not end with a newline".into()))?;
        let body_end = text
            .rfind('\n')
            .map(|i| i + 1)
            .ok_or_else(|| bad(0, "no checksum line".into()))?;
        let (body, last) = text.split_at(body_end);
        let actual = crc32fast::hash(body.as_bytes());
        if last != format!("crc32 {actual:08x}") {
            return Err(bad(
                body_end,
                format!("checksum mismatch: the last line is {last:?}, the contents give crc32 {actual:08x}"),
            ));
        }
        let mut lines = body.lines();
        let mut offset = 0usize;
        let mut next = |what: &str| -> Result<(usize, Vec<&str>)> {
            let line = lines
                .next()
                .ok_or_else(|| bad(offset, format!("ends before its {what} line")))?;
            let at = offset;
            offset += line.len() + 1;
            Ok((at, line.split(' ').collect()))
        };
        let (at, first) = next("first")?;
        if first != [FIRST_LINE, &VERSION.to_string()] {
            return Err(bad(
                at,
                format!("not a version {VERSION} strata backup metadata file"),
            ));
        }
        let mut number = |key: &str| -> Result<u64> {
            let (at, words) = next(key)?;
            match words.as_slice() {
                [k, v] if *k == key => v
                    .parse()
                    .map_err(|_| bad(at, format!("`{key}` is not a number"))),
                _ => Err(bad(at, format!("expected the `{key}` line"))),
            }
        };
        let id = number("id")?;
        let timestamp_secs = number("timestamp")?;
        let sequence = number("sequence")?;
        let id = u32::try_from(id).map_err(|_| bad(0, format!("backup id {id} is too large")))?;
        let mut files = Vec::new();
        loop {
            let (at, words) = next("end")?;
            match words.as_slice() {
                ["file", stored, size, crc, name] => {
                    let size = size
                        .parse()
                        .map_err(|_| bad(at, "a file size that is not a number".into()))?;
                    let crc32 = u32::from_str_radix(crc, 16)
                        .map_err(|_| bad(at, "a file checksum that is not hex".into()))?;
                    let file = BackupFile {
                        stored: (*stored).to_owned(),
                        size,
                        crc32,
                        name: (*name).to_owned(),
                    };
                    check_names(&file, id).map_err(|reason| bad(at, reason))?;
                    files.push(file);
                }
                ["end", count] => {
                    if count.parse::<usize>().ok() != Some(files.len()) {
                        return Err(bad(
                            at,
                            format!("`end {count}` after {} files", files.len()),
                        ));
                    }
                    break;
                }
                _ => return Err(bad(at, "expected a `file` or the `end` line".into())),
            }
        }
        Ok(BackupMeta {
            id,
            timestamp_secs,
            sequence,
            files,
        })
    }
}

/// The name a shared table is kept under: its number, checksum and size,
/// so two databases' tables of one number never share a file.
pub(crate) fn shared_name(number: u64, crc32: u32, size: u64) -> String {
    format!("shared/{number:06}_{crc32:08x}_{size}.sst")
}

/// A file's names must be what strata writes: a database file's name to
/// restore as, kept in `shared/` (tables) or in this backup's `private/`
/// directory. Nothing else may come from a metadata file.
fn check_names(file: &BackupFile, id: u32) -> std::result::Result<(), String> {
    let kind = parse_file_name(&file.name);
    if !kind.is_some_and(FileKind::is_database_file) {
        return Err(format!("{:?} is not a database file's name", file.name));
    }
    let ok = match kind {
        Some(FileKind::Table(n)) => file.stored == shared_name(n, file.crc32, file.size),
        _ => file.stored == format!("private/{id}/{}", file.name),
    };
    if !ok {
        return Err(format!(
            "{:?} is not where backup {id} keeps {:?}",
            file.stored, file.name
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> BackupMeta {
        BackupMeta {
            id: 3,
            timestamp_secs: 1_764_950_400,
            sequence: 123_456,
            files: vec![
                BackupFile {
                    stored: shared_name(12, 0x3c8f_2a91, 1_048_576),
                    size: 1_048_576,
                    crc32: 0x3c8f_2a91,
                    name: "000012.sst".into(),
                },
                BackupFile {
                    stored: "private/3/CURRENT".into(),
                    size: 16,
                    crc32: 1,
                    name: "CURRENT".into(),
                },
            ],
        }
    }

    #[test]
    fn metadata_round_trips_and_any_changed_byte_is_caught() {
        let meta = sample();
        let text = meta.encode();
        let path = Path::new("/b/meta/3");
        assert_eq!(BackupMeta::decode(path, text.as_bytes()).unwrap(), meta);
        for i in 0..text.len() {
            let mut damaged = text.clone().into_bytes();
            damaged[i] ^= 0x01;
            match BackupMeta::decode(path, &damaged) {
                Err(Error::Corruption { file, .. }) => assert_eq!(file, path),
                Ok(m) => panic!("byte {i} changed and still decoded as {m:?}"),
                Err(e) => panic!("byte {i}: {e:?}"),
            }
        }
    }

    #[test]
    fn names_outside_the_layout_are_refused_even_with_a_good_checksum() {
        for (stored, name) in [
            ("private/3/../../etc", "CURRENT"),
            ("private/4/CURRENT", "CURRENT"),
            ("private/3/LOCK", "LOCK"),
            ("shared/000012_00000000_1.sst", "000012.sst"),
        ] {
            let mut meta = sample();
            meta.files[1].stored = stored.into();
            meta.files[1].name = name.into();
            let text = meta.encode();
            assert!(
                matches!(
                    BackupMeta::decode(Path::new("m"), text.as_bytes()),
                    Err(Error::Corruption { .. })
                ),
                "{stored} {name}"
            );
        }
    }
}
