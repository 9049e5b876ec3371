//! What a WAL record holds: a write batch (`src/batch.rs`), or a *log
//! start*, the first record of a WAL the write path moved to, naming the
//! WAL before it and that WAL's length.
//!
//! ```text
//! log start:
//! +----------------+-------------+---------+------------------------+-----------------------+
//! | sequence = 0   | count = 0   | tag = 1 | previous WAL number u64| previous WAL bytes u64|
//! +----------------+-------------+---------+------------------------+-----------------------+
//!   8 bytes LE       4 bytes LE    1 byte    8 bytes LE               8 bytes LE
//! ```
//!
//! A write batch never has sequence number 0 (numbers start at 1), so the
//! header tells the two apart. Why the log start exists: a WAL the write
//! path left behind is synced in the background, so after a power loss its
//! last pages may be gone while the next WAL's first pages survived. A
//! preallocated WAL reads as zeros after its last record either way, so
//! only the next WAL can say where the previous one really ended; recovery
//! replays the next WAL only if the previous one reads to that length
//! (`src/wal_replay.rs`). docs/wal-format.md has the whole rule.

use crate::batch::HEADER_LEN;

const LOG_START_TAG: u8 = 1;
const LOG_START_LEN: usize = HEADER_LEN + 1 + 8 + 8;

/// A decoded WAL record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalRecord<'a> {
    /// A write batch's encoding (validated when it is applied).
    Batch(&'a [u8]),
    /// The first record of a WAL that follows `previous_wal`, which held
    /// `previous_len` bytes when the write path moved on.
    LogStart {
        /// The number of the WAL written before this one.
        previous_wal: u64,
        /// Its length in bytes: every fragment framed into it.
        previous_len: u64,
    },
}

impl<'a> WalRecord<'a> {
    /// Tell a record's kind by its header. A record with sequence number 0
    /// that is not a well-formed log start is an error (damage).
    pub fn parse(data: &'a [u8]) -> Result<WalRecord<'a>, String> {
        // Too short for a header: the batch decoder refuses it.
        match data.get(..8) {
            Some(seq) if seq == [0u8; 8] => {}
            _ => return Ok(WalRecord::Batch(data)),
        }
        let well_formed = data.len() == LOG_START_LEN
            && data[8..HEADER_LEN] == [0; 4]
            && data[HEADER_LEN] == LOG_START_TAG;
        if !well_formed {
            return Err(format!(
                "record with sequence number 0 is not a log start ({} bytes)",
                data.len()
            ));
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&data[at..at + 8]);
            u64::from_le_bytes(b)
        };
        Ok(WalRecord::LogStart {
            previous_wal: u64_at(HEADER_LEN + 1),
            previous_len: u64_at(HEADER_LEN + 9),
        })
    }
}

/// The payload of a log start record.
pub fn encode_log_start(previous_wal: u64, previous_len: u64) -> [u8; LOG_START_LEN] {
    let mut out = [0u8; LOG_START_LEN];
    out[HEADER_LEN] = LOG_START_TAG;
    out[HEADER_LEN + 1..HEADER_LEN + 9].copy_from_slice(&previous_wal.to_le_bytes());
    out[HEADER_LEN + 9..].copy_from_slice(&previous_len.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::WriteBatch;

    #[test]
    fn log_starts_round_trip_and_batches_pass_through() {
        let start = encode_log_start(17, 123_456);
        assert_eq!(
            WalRecord::parse(&start),
            Ok(WalRecord::LogStart {
                previous_wal: 17,
                previous_len: 123_456
            })
        );
        let mut batch = WriteBatch::new();
        batch.put(b"k", b"v");
        batch.set_sequence(1);
        let rep = batch.encoded();
        assert_eq!(WalRecord::parse(rep), Ok(WalRecord::Batch(rep)));
        // Too short for a header: left to the batch decoder to refuse.
        assert_eq!(WalRecord::parse(b"abc"), Ok(WalRecord::Batch(b"abc")));
    }

    #[test]
    fn a_damaged_log_start_is_an_error() {
        let start = encode_log_start(3, 9);
        assert!(WalRecord::parse(&start[..start.len() - 1]).is_err());
        let mut bad_tag = start;
        bad_tag[HEADER_LEN] = 2;
        assert!(WalRecord::parse(&bad_tag).is_err());
        let mut counted = start;
        counted[8] = 1;
        assert!(WalRecord::parse(&counted).is_err());
    }
}
