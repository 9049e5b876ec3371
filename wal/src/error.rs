//! What can be wrong with a log, and the error a [`Reader`](crate::Reader) returns.

use std::fmt;

use crate::format::RecordType;

/// What is wrong at an anomaly. Reported as corruption when a sync point
/// proves the bytes were synced, else as a [`TornReason::DamagedTail`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorruptionReason {
    /// The stored (masked) checksum disagrees with the one computed over type and payload.
    ChecksumMismatch {
        /// Masked checksum in the header.
        stored: u32,
        /// Masked checksum of the bytes read.
        computed: u32,
    },
    /// The header's length runs past the end of its block, or of the file.
    BadLength {
        /// Payload length in the header.
        length: u16,
        /// Payload bytes actually available after the header.
        room: usize,
    },
    /// The type byte is 0 (zeroed space) or one no writer uses.
    BadRecordType(u8),
    /// A MIDDLE or LAST fragment with no FIRST before it.
    OrphanFragment(RecordType),
    /// A FULL, FIRST or SYNC_POINT fragment arrived before the LAST fragment
    /// of the record that started at `record_offset`.
    UnfinishedRecord {
        /// File offset of the unfinished record's FIRST fragment.
        record_offset: u64,
        /// The fragment that interrupted it.
        found: RecordType,
    },
    /// A checksum-valid sync point states that more bytes were synced than
    /// precede it: no correct writer writes that, so it is corruption even
    /// where no other sync point proves the bytes synced.
    ImpossibleSyncPoint {
        /// The synced length it states.
        synced_len: u64,
    },
}

impl fmt::Display for CorruptionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Self::BadLength { length, room } => write!(
                f,
                "fragment length {length} exceeds the {room} bytes left in its block or file"
            ),
            Self::BadRecordType(0) => f.write_str("zeroed fragment header (record type 0)"),
            Self::BadRecordType(byte) => write!(f, "unknown record type {byte}"),
            Self::OrphanFragment(found) => write!(f, "{found} fragment with no FIRST fragment"),
            Self::UnfinishedRecord {
                record_offset,
                found,
            } => write!(
                f,
                "{found} fragment before the LAST fragment of the record at offset {record_offset}"
            ),
            Self::ImpossibleSyncPoint { synced_len } => write!(
                f,
                "sync point states {synced_len} synced bytes, more than precede it"
            ),
        }
    }
}

/// Why a log's tail is considered torn: the normal ending after a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TornReason {
    /// The file ends within a fragment header.
    TruncatedHeader,
    /// The header's length runs past the end of the file.
    TruncatedPayload {
        /// Payload length in the header.
        length: u16,
        /// Payload bytes present.
        available: usize,
    },
    /// Every byte from the tail to the end of the file is zero (preallocated space).
    ZeroedTail,
    /// The file ends after the FIRST (and maybe MIDDLE) fragments of a record.
    PartialRecord,
    /// Damage (a bad fragment, or fragments out of sequence) in bytes no
    /// sync point proves were synced: crash damage, possibly with valid
    /// fragments after it.
    DamagedTail(CorruptionReason),
}

impl fmt::Display for TornReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TruncatedHeader => f.write_str("file ends inside a fragment header"),
            Self::TruncatedPayload { length, available } => write!(
                f,
                "fragment of {length} bytes has only {available} before the end of the file"
            ),
            Self::ZeroedTail => f.write_str("zeroed (preallocated) space to the end of the file"),
            Self::PartialRecord => f.write_str("file ends inside a multi-fragment record"),
            Self::DamagedTail(reason) => write!(f, "{reason}, in bytes not proven synced"),
        }
    }
}

/// An anomaly the reader's [`RecoveryMode`](crate::RecoveryMode) does not tolerate.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Damage to bytes a sync point proves were synced.
    Corruption {
        /// File offset of the fragment header where the damage was detected.
        offset: u64,
        /// What was wrong.
        reason: CorruptionReason,
    },
    /// A torn tail; only [`RecoveryMode::AbsoluteConsistency`](crate::RecoveryMode::AbsoluteConsistency) reports it as an error.
    TornTail {
        /// First byte that is not part of a complete record.
        offset: u64,
        /// What the tail looks like.
        reason: TornReason,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Corruption { offset, reason } => {
                write!(f, "log corruption at offset {offset}: {reason}")
            }
            Self::TornTail { offset, reason } => {
                write!(f, "log has a torn tail at offset {offset}: {reason}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Log damage is bad data, not a failed system call.
impl From<Error> for std::io::Error {
    fn from(error: Error) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, error)
    }
}
