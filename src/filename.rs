//! The names of the files in a database directory.
//!
//! ```text
//! 000007.log      write-ahead log number 7
//! 000012.sst      table number 12
//! MANIFEST-000003 the log of version edits number 3
//! CURRENT         names the live manifest ("MANIFEST-000003\n")
//! LOCK            held while a Db has the directory open
//! 000013.dbtmp    a temporary file (a CURRENT being replaced)
//! ```
//! File numbers come from one counter, so every file has a distinct number
//! and a higher number means created later. The counter never passes
//! [`MAX_FILE_NUMBER`]; a file named with a larger number was not made by
//! strata, and opening refuses it (see [`parse_checked`]).

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The largest file number strata hands out or accepts from a file name
/// or the MANIFEST: 62 bits, RocksDB's limit too (`kFileNumberMask`).
/// Far below `u64::MAX`, so the counter, and a number plus one, never wrap.
pub const MAX_FILE_NUMBER: u64 = (1 << 62) - 1;

/// What a file in the database directory is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `NNNNNN.log`
    Wal(u64),
    /// `NNNNNN.sst`
    Table(u64),
    /// `MANIFEST-NNNNNN`
    Manifest(u64),
    /// `CURRENT`
    Current,
    /// `LOCK`
    Lock,
    /// `NNNNNN.dbtmp`
    Temp(u64),
    /// `NNNNNN.blob`: values of a keyspace with blob files
    /// (docs/blob-format.md).
    Blob(u64),
}

impl FileKind {
    /// The file's number, for the kinds that carry one.
    pub fn number(self) -> Option<u64> {
        match self {
            FileKind::Wal(n)
            | FileKind::Table(n)
            | FileKind::Manifest(n)
            | FileKind::Temp(n)
            | FileKind::Blob(n) => Some(n),
            FileKind::Current | FileKind::Lock => None,
        }
    }

    /// Whether a copy of the database holds files of this kind: tables,
    /// blob files, WALs, the MANIFEST and CURRENT, not the LOCK or
    /// temporary files. The names a checkpoint stream or a backup may
    /// bring into a directory.
    pub fn is_database_file(self) -> bool {
        match self {
            FileKind::Table(_)
            | FileKind::Blob(_)
            | FileKind::Wal(_)
            | FileKind::Manifest(_)
            | FileKind::Current => true,
            FileKind::Lock | FileKind::Temp(_) => false,
        }
    }
}

pub fn wal_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.log"))
}

pub fn table_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.sst"))
}

pub fn blob_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.blob"))
}

pub fn manifest_name(number: u64) -> String {
    format!("MANIFEST-{number:06}")
}

pub fn manifest_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(manifest_name(number))
}

pub fn current_path(dir: &Path) -> PathBuf {
    dir.join("CURRENT")
}

pub fn lock_path(dir: &Path) -> PathBuf {
    dir.join("LOCK")
}

pub fn temp_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.dbtmp"))
}

/// Recognise a file name; `None` for names strata did not create.
pub fn parse_file_name(name: &str) -> Option<FileKind> {
    match name {
        "CURRENT" => return Some(FileKind::Current),
        "LOCK" => return Some(FileKind::Lock),
        _ => {}
    }
    if let Some(n) = name.strip_prefix("MANIFEST-") {
        return parse_number(n).map(FileKind::Manifest);
    }
    let (stem, ext) = name.rsplit_once('.')?;
    let number = parse_number(stem)?;
    match ext {
        "log" => Some(FileKind::Wal(number)),
        "sst" => Some(FileKind::Table(number)),
        "dbtmp" => Some(FileKind::Temp(number)),
        "blob" => Some(FileKind::Blob(number)),
        _ => None,
    }
}

/// Recognise a file in directory `dir` as [`parse_file_name`] does, and
/// check its number. A name of strata's form whose number exceeds
/// [`MAX_FILE_NUMBER`] is corruption naming the file: opening would replay
/// or delete it like any other, and its number would push the file
/// counter to wrap, so that new tables overwrite live ones. Such a file
/// is refused, not ignored; move it out of the directory to open.
pub fn parse_checked(dir: &Path, name: &str) -> Result<Option<FileKind>> {
    let kind = parse_file_name(name);
    let too_large = match kind {
        Some(k) => k.number().is_some_and(|n| n > MAX_FILE_NUMBER),
        // Strata's form with a number that does not even fit in 64 bits.
        None => number_part(name).is_some_and(|digits| parse_number(digits).is_none()),
    };
    if too_large {
        return Err(Error::corruption(
            dir.join(name),
            0,
            format!(
                "the number in the file's name exceeds the largest strata uses ({MAX_FILE_NUMBER})"
            ),
        ));
    }
    Ok(kind)
}

/// The digits of a name of the form of a numbered strata file, whatever
/// their value.
fn number_part(name: &str) -> Option<&str> {
    let digits = match name.strip_prefix("MANIFEST-") {
        Some(n) => n,
        None => match name.rsplit_once('.')? {
            (stem, "log" | "sst" | "dbtmp") => stem,
            _ => return None,
        },
    };
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

fn parse_number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let dir = Path::new("/db");
        for (path, kind) in [
            (wal_path(dir, 7), FileKind::Wal(7)),
            (table_path(dir, 1_234_567), FileKind::Table(1_234_567)),
            (blob_path(dir, 42), FileKind::Blob(42)),
            (manifest_path(dir, 3), FileKind::Manifest(3)),
            (current_path(dir), FileKind::Current),
            (lock_path(dir), FileKind::Lock),
            (temp_path(dir, 9), FileKind::Temp(9)),
        ] {
            let name = path.file_name().unwrap().to_str().unwrap();
            assert_eq!(parse_file_name(name), Some(kind), "{name}");
        }
        for junk in [
            "",
            "x.sst",
            "12.txt",
            "MANIFEST-",
            "MANIFEST-x",
            "-1.log",
            "+1.log",
        ] {
            assert_eq!(parse_file_name(junk), None, "{junk}");
        }
    }

    #[test]
    fn numbers_past_the_limit_are_refused_naming_the_file() {
        let dir = Path::new("/db");
        assert_eq!(
            parse_checked(dir, &format!("{MAX_FILE_NUMBER}.sst")).unwrap(),
            Some(FileKind::Table(MAX_FILE_NUMBER))
        );
        assert_eq!(parse_checked(dir, "notes.txt").unwrap(), None);
        assert_eq!(parse_checked(dir, "LOCK").unwrap(), Some(FileKind::Lock));
        let past = MAX_FILE_NUMBER + 1;
        for name in [
            format!("{past}.log"),
            "18446744073709551614.log".to_owned(),
            "99999999999999999999999.log".to_owned(),
            format!("{past}.sst"),
            format!("MANIFEST-{past}"),
            format!("{past}.dbtmp"),
        ] {
            match parse_checked(dir, &name) {
                Err(Error::Corruption { file, .. }) => assert_eq!(file, dir.join(&name)),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
