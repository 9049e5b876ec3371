//! The entries each engine makes in its database directory, and its lock
//! file: what db-bench may delete there before a fill, and which lock says
//! the database is open. A name not listed here is never deleted.

use crate::engine::EngineKind;
use strata_owned_dir::{Entry, Layout};

/// The top level of `kind`'s database directory.
pub fn layout(kind: EngineKind) -> &'static Layout {
    match kind {
        EngineKind::Strata => &STRATA,
        EngineKind::Rocksdb => &ROCKSDB,
        EngineKind::Fjall => &FJALL,
        EngineKind::Sled => &SLED,
    }
}

/// The file `kind` locks while a database is open (strata, fjall and sled
/// with flock(2), RocksDB with an fcntl(2) record lock).
pub fn lock_file(kind: EngineKind) -> &'static str {
    match kind {
        EngineKind::Strata | EngineKind::Rocksdb => "LOCK",
        EngineKind::Fjall => "lock",
        EngineKind::Sled => "db",
    }
}

/// strata: the names `src/filename.rs` gives (CURRENT, LOCK, MANIFEST-n,
/// n.log, n.sst, n.dbtmp).
static STRATA: Layout = Layout {
    entry: |name| strata::inspect::parse_file_name(name).map(|_| Entry::File),
};

/// RocksDB (`file/filename.cc`): CURRENT, LOCK, IDENTITY, the info log,
/// MANIFEST-n, OPTIONS-n, and numbered logs, tables, blob files and
/// temporary files.
static ROCKSDB: Layout = Layout {
    entry: |name| {
        let numbered = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let ours = match name {
            "CURRENT" | "LOCK" | "IDENTITY" | "LOG" => true,
            _ => {
                name.strip_prefix("LOG.old.").is_some_and(numbered)
                    || name.strip_prefix("MANIFEST-").is_some_and(numbered)
                    || name
                        .strip_prefix("OPTIONS-")
                        .map(|n| n.strip_suffix(".dbtmp").unwrap_or(n))
                        .is_some_and(numbered)
                    || name.rsplit_once('.').is_some_and(|(stem, ext)| {
                        numbered(stem) && matches!(ext, "log" | "sst" | "ldb" | "blob" | "dbtmp")
                    })
            }
        };
        ours.then_some(Entry::File)
    },
};

/// fjall 3 (`src/file.rs`, `src/journal/`): its version marker and lock,
/// its journals (`n.jnl`) and the keyspaces' trees.
static FJALL: Layout = Layout {
    entry: |name| match name {
        "version" | "lock" => Some(Entry::File),
        "keyspaces" => Some(Entry::EngineDir),
        _ => name
            .strip_suffix(".jnl")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .then_some(Entry::File),
    },
};

/// sled 0.34: its config, its one data file (also its lock), snapshots,
/// and the directory of large values.
static SLED: Layout = Layout {
    entry: |name| match name {
        "conf" | "db" => Some(Entry::File),
        "blobs" => Some(Entry::EngineDir),
        _ => {
            let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
            name.strip_prefix("snap.")
                .map(|s| s.strip_suffix(".generating").unwrap_or(s))
                .is_some_and(hex)
                .then_some(Entry::File)
        }
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    fn is_file(kind: EngineKind, name: &str) -> bool {
        matches!((layout(kind).entry)(name), Some(Entry::File))
    }

    #[test]
    fn each_engine_claims_its_own_names_and_no_others() {
        for name in [
            "CURRENT",
            "LOCK",
            "MANIFEST-000003",
            "000007.log",
            "000012.sst",
            "000009.blob",
        ] {
            assert!(is_file(EngineKind::Strata, name), "{name}");
            assert!(is_file(EngineKind::Rocksdb, name), "{name}");
        }
        for name in ["IDENTITY", "LOG", "LOG.old.1700000000", "OPTIONS-000005"] {
            assert!(is_file(EngineKind::Rocksdb, name), "{name}");
            assert!(!is_file(EngineKind::Strata, name), "{name}");
        }
        assert!(is_file(EngineKind::Sled, "snap.00000000004A2F10"));
        assert!(is_file(EngineKind::Fjall, "12.jnl"));
        assert!(matches!(
            (layout(EngineKind::Fjall).entry)("keyspaces"),
            Some(Entry::EngineDir)
        ));
        for kind in EngineKind::ALL {
            for name in ["notes.txt", "db.bak", ".git", "MANIFEST-", "x.sst", "src"] {
                assert!((layout(kind).entry)(name).is_none(), "{kind:?} {name}");
            }
            assert!((layout(kind).entry)(lock_file(kind)).is_some(), "{kind:?}");
        }
    }
}
