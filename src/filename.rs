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
//! and a higher number means created later.

use std::path::{Path, PathBuf};

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
}

pub fn wal_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.log"))
}

pub fn table_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.sst"))
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
        _ => None,
    }
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
}
