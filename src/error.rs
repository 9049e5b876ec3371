//! The engine's error type: every error says what went wrong and where.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong in strata.
///
/// The enum is `#[non_exhaustive]`: later versions may add variants, so match
/// with a wildcard arm.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed.
    Io {
        /// What strata was doing ("append", "sync", "rename", ...).
        op: &'static str,
        /// The file or directory it was doing it to.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A file's contents are not what strata wrote: a checksum mismatch, a
    /// truncated structure, an impossible length.
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset in that file where the damage was found.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The caller passed something strata cannot accept (an oversized key,
    /// inconsistent options, ...). Nothing was written.
    InvalidArgument(String),
    /// Another `Db` (in this or another process) has the database open.
    Locked {
        /// The lock file that is held.
        path: PathBuf,
    },
    /// A background job (WAL write, flush, compaction) failed earlier; the
    /// database refuses writes until [`Db::resume`](crate::Db::resume)
    /// clears the error (an I/O error whose cause is gone: a full disk
    /// with room again is retried on its own) or the database is
    /// reopened (always, and the only way after corruption or a panic).
    /// The original error is kept.
    Background(Arc<Error>),
    /// A write with `no_slowdown` would have had to wait for a write stall.
    WriteStall,
    /// The database was asked to do something after it began closing.
    Closed,
    /// The keyspace was dropped ([`Db::drop_keyspace`](crate::Db::drop_keyspace)):
    /// writes to it, and flushes and compactions of it, are refused. Reads
    /// through handles and iterators opened before the drop still work.
    KeyspaceDropped {
        /// The keyspace's name.
        name: String,
    },
    /// Code panicked in a background thread (flush, compaction, WAL
    /// syncer) or while writing (leading a write group). The panic is
    /// kept as a [`Error::Background`]: writes fail with it until the
    /// database is reopened, and nothing waits for the work that panicked.
    Panic {
        /// Where: "flush thread", "background compaction", "manual compaction", "WAL syncer
        /// thread", "write group leader", ...
        place: &'static str,
        /// The panic's message.
        message: String,
    },
    /// The keyspace's merge operator failed to combine a key's operands
    /// (or the keyspace has none): on a read, that read fails; in a flush
    /// or compaction, the job fails as a background error, as in RocksDB.
    MergeFailed {
        /// The key (its first 64 bytes, then `..`, if longer).
        key: Vec<u8>,
        /// The operator's name and its error.
        reason: String,
    },
    /// A [`Transaction`](crate::Transaction) could not commit: a commit
    /// made after its snapshot wrote a key it wrote (or, serializable, a
    /// key or range it read). Nothing of it was written; run it again
    /// from the start.
    Conflict {
        /// The keyspace's name.
        keyspace: String,
        /// The key (its first 64 bytes, then `..`, if longer).
        key: Vec<u8>,
    },
    /// A [`Transaction`](crate::Transaction) grew past a limit of its
    /// [`TransactionOptions`](crate::TransactionOptions); the write that
    /// would pass it was refused, and the transaction is unchanged.
    TransactionTooLarge {
        /// Which limit ("max_write_bytes", "max_tracked_reads").
        limit: &'static str,
        /// The limit's value.
        max: usize,
        /// What the transaction would have reached.
        would_be: usize,
    },
    /// A change feed ([`Db::updates_since`](crate::Db::updates_since), a
    /// [`ChangeFeed`](crate::ChangeFeed) cursor) was asked for writes whose
    /// WALs are deleted: the writes with sequence numbers `from..=to` may
    /// be among them. Nothing is skipped silently; the consumer must catch
    /// up another way (a checkpoint) and move on past `to`.
    ChangeFeedGap {
        /// The first sequence number asked for.
        from: u64,
        /// The last sequence number that may be missing.
        to: u64,
    },
    /// A write to a database opened read-only
    /// ([`Db::open_read_only`](crate::Db::open_read_only)).
    ReadOnly {
        /// The database's directory.
        path: PathBuf,
    },
}

/// `Result` with strata's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corruption(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corruption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// A copy of this error for another waiter (an I/O error keeps its
    /// kind and message).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Io { op, path, source } => Error::Io {
                op,
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Error::Corruption {
                file,
                offset,
                reason,
            } => Error::Corruption {
                file: file.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            Error::InvalidArgument(m) => Error::InvalidArgument(m.clone()),
            Error::Locked { path } => Error::Locked { path: path.clone() },
            Error::Background(e) => Error::Background(Arc::clone(e)),
            Error::WriteStall => Error::WriteStall,
            Error::Closed => Error::Closed,
            Error::KeyspaceDropped { name } => Error::KeyspaceDropped { name: name.clone() },
            Error::Panic { place, message } => Error::Panic {
                place,
                message: message.clone(),
            },
            Error::MergeFailed { key, reason } => Error::MergeFailed {
                key: key.clone(),
                reason: reason.clone(),
            },
            Error::Conflict { keyspace, key } => Error::Conflict {
                keyspace: keyspace.clone(),
                key: key.clone(),
            },
            Error::TransactionTooLarge {
                limit,
                max,
                would_be,
            } => Error::TransactionTooLarge {
                limit,
                max: *max,
                would_be: *would_be,
            },
            Error::ChangeFeedGap { from, to } => Error::ChangeFeedGap {
                from: *from,
                to: *to,
            },
            Error::ReadOnly { path } => Error::ReadOnly { path: path.clone() },
        }
    }

    /// True for an I/O error that says the disk is full or a quota is
    /// exhausted (ENOSPC, EDQUOT: [`io::ErrorKind::StorageFull`],
    /// [`io::ErrorKind::QuotaExceeded`]), also when it is the cause of a
    /// [`Error::Background`]. Once there is room again, writes resume on
    /// their own or with [`Db::resume`](crate::Db::resume).
    pub fn is_no_space(&self) -> bool {
        match self {
            Error::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
            ),
            Error::Background(inner) => inner.is_no_space(),
            _ => false,
        }
    }

    /// True for [`Error::Conflict`]: the transaction may succeed if run
    /// again.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }

    /// True for [`Error::Corruption`], also when it is the cause of a
    /// [`Error::Background`].
    pub fn is_corruption(&self) -> bool {
        match self {
            Error::Corruption { .. } => true,
            Error::Background(inner) => inner.is_corruption(),
            _ => false,
        }
    }
}

/// What may clear a background error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// A full disk or quota: `resume()` clears it once there is room, and
    /// the flush thread retries on a schedule.
    Automatic,
    /// Another I/O error: `resume()` retries the failed work.
    Manual,
    /// Corruption, a panic, anything that is not an I/O error: only a
    /// reopen.
    None,
}

impl Error {
    /// How this error, as a background error, may be cleared
    /// (`resume.rs` explains each way).
    pub(crate) fn recovery(&self) -> Recovery {
        match self {
            Error::Background(inner) => inner.recovery(),
            Error::Io { .. } if self.is_no_space() => Recovery::Automatic,
            Error::Io { .. } => Recovery::Manual,
            _ => Recovery::None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, path, source } => {
                write!(f, "I/O error during {op} on {}: {source}", path.display())
            }
            Error::Corruption {
                file,
                offset,
                reason,
            } => write!(
                f,
                "corruption in {} at offset {offset}: {reason}",
                file.display()
            ),
            Error::InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
            Error::Locked { path } => write!(
                f,
                "database is locked: {} is held by another open Db",
                path.display()
            ),
            Error::Background(inner) => {
                let remedy = match inner.recovery() {
                    Recovery::Automatic => {
                        "free space: writes resume on their own, or with Db::resume()"
                    }
                    Recovery::Manual => {
                        "Db::resume() retries the failed work, or reopen the database"
                    }
                    Recovery::None => "reopen the database",
                };
                write!(
                    f,
                    "writes stopped after a background error ({remedy}): {inner}"
                )
            }
            Error::WriteStall => write!(
                f,
                "write would stall and no_slowdown was set; nothing was written"
            ),
            Error::Closed => write!(f, "database is closing"),
            Error::KeyspaceDropped { name } => write!(f, "keyspace {name:?} was dropped"),
            Error::Panic { place, message } => write!(f, "panic in {place}: {message}"),
            Error::MergeFailed { key, reason } => {
                write!(f, "merge of key '{}' failed: {reason}", key.escape_ascii())
            }
            Error::Conflict { keyspace, key } => write!(
                f,
                "transaction conflict on key '{}' in keyspace {keyspace:?}: \
                 written by another commit after the transaction's snapshot; retry it",
                key.escape_ascii()
            ),
            Error::TransactionTooLarge {
                limit,
                max,
                would_be,
            } => write!(
                f,
                "transaction would reach {would_be}, past its {limit} of {max}; \
                 nothing was added"
            ),
            Error::ReadOnly { path } => write!(
                f,
                "{} is open read-only: writes are refused",
                path.display()
            ),
            Error::ChangeFeedGap { from, to } => write!(
                f,
                "change feed gap: the WALs holding sequence numbers {from} to {to} are deleted \
                 (wal_ttl_seconds / wal_size_limit_mb passed, or the database restarted its WAL)"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Background(inner) => Some(inner.as_ref()),
            _ => None,
        }
    }
}

/// Turn a format crate's error reading a table into an engine error
/// naming the file.
pub(crate) fn table_error(file: impl Into<PathBuf>, e: strata_sstable::Error) -> Error {
    table_error_during("read table", file.into(), e)
}

/// Turn a format crate's error building a table (a flush's or a
/// compaction's output) into an engine error naming the file: a full disk
/// there is a failed write, not a failed read.
pub(crate) fn table_write_error(file: impl Into<PathBuf>, e: strata_sstable::Error) -> Error {
    table_error_during("write table", file.into(), e)
}

fn table_error_during(op: &'static str, file: PathBuf, e: strata_sstable::Error) -> Error {
    match e {
        strata_sstable::Error::Corruption { offset, reason } => Error::Corruption {
            file,
            offset,
            reason,
        },
        strata_sstable::Error::Io(source) => Error::Io {
            op,
            path: file,
            source,
        },
        strata_sstable::Error::InvalidArgument(msg) => Error::InvalidArgument(msg),
        other => Error::Corruption {
            file,
            offset: 0,
            reason: other.to_string(),
        },
    }
}
