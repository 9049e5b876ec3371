//! strata's log record format: the framing of the write-ahead log and the
//! MANIFEST, LevelDB's log format.
//!
//! A log is a sequence of 32 KiB blocks; each record is cut into fragments
//! that never cross a block boundary, each fragment carrying a masked crc32, its
//! length and its type (FULL, or FIRST, MIDDLE…, LAST). The layout is drawn in
//! `format.rs` and specified in `docs/wal-format.md`.
//!
//! - [`encode_record`] frames a record without I/O; [`encode_sync_point`]
//!   frames a *sync point*, a fragment stating how much of the log was
//!   durably synced before it (not a record); [`Writer`] frames and appends
//!   to a [`Sink`], tracking written and synced offsets and writing sync
//!   points after its syncs.
//! - [`Reader`] reads a log held in memory under a [`RecoveryMode`], telling a
//!   torn tail (crash damage: the normal end after a crash) from corruption
//!   (damage to bytes a sync point proves were synced, or, under
//!   [`TailRule::EveryRecordSyncedButLast`], to any append but the last).
//!
//! The crate knows nothing of the engine: a record is opaque bytes.
//!
//! ```
//! use strata_wal::{LogEnd, Reader, RecoveryMode, Writer};
//!
//! let mut writer = Writer::new(Vec::new());
//! writer.add_record(b"put k1 v1").unwrap();
//! writer.add_record(&vec![b'x'; 100_000]).unwrap(); // spans four blocks
//! let log = writer.into_inner();
//!
//! let mut reader = Reader::new(&log, RecoveryMode::default());
//! let mut count = 0;
//! while let Some(record) = reader.next_record().unwrap() {
//!     assert!(record.data.len() == 9 || record.data.len() == 100_000);
//!     count += 1;
//! }
//! assert_eq!(count, 2);
//! assert_eq!(reader.end(), Some(&LogEnd::Clean { offset: log.len() as u64 }));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checksum;
mod error;
mod format;
mod fragment;
mod last_append;
mod proof;
mod reader;
mod recovery;
mod scan;
mod sink;
mod sync_point;
mod writer;
mod zeroed;

pub use checksum::{mask_crc, unmask_crc};
pub use error::{CorruptionReason, Error, TornReason};
pub use format::{
    encode_record, encoded_end, RecordType, BLOCK_SIZE, HEADER_SIZE, MAX_FRAGMENT_PAYLOAD,
};
pub use last_append::SECTOR_SIZE;
pub use reader::{Reader, Record};
pub use recovery::{Anomaly, LogEnd, RecoveryMode, TailRule};
pub use sink::Sink;
pub use sync_point::{
    encode_seal, encode_sync_point, seal_end, sync_point_end, SYNC_POINT_PAYLOAD, SYNC_POINT_SIZE,
};
pub use writer::Writer;
