//! Observability: the [`EventListener`] callbacks and how the engine
//! calls them (`notifier.rs`), and the write stall condition it reports
//! (`stall_watch.rs`). Tracing spans and events are emitted where the
//! work happens; docs/observability.md lists them.

mod jobs;
mod listener;
mod notifier;
mod stall_watch;

pub(crate) use jobs::{job_status, CompactionEvents, FlushEvents};
pub use listener::{
    BackgroundErrorInfo, CompactionJobInfo, CompactionReason, EventListener, FlushJobInfo,
    JobStatus, TableFileCreationInfo, TableFileCreationReason, TableFileDeletionInfo,
    WalFileCreationInfo, WriteStallCause, WriteStallCondition, WriteStallInfo,
};
pub(crate) use notifier::Notifier;
pub(crate) use stall_watch::StallWatch;
