//! Appends records to a log through a [`Sink`].

use std::io;

use crate::format::encode_record;
use crate::sink::Sink;
use crate::sync_point::{encode_seal, encode_sync_point};

/// The framing buffer keeps its capacity between records up to this size, so
/// steady-state appends do not allocate; one huge record does not pin its
/// memory for the writer's lifetime.
const RETAINED_BUFFER_BYTES: usize = 1 << 20;

/// Frames records and appends them to a [`Sink`], tracking how many bytes
/// were appended and how many are known durable.
///
/// # Sync points
/// After a successful [`sync`](Self::sync), the next
/// [`add_record`](Self::add_record) first frames a sync point stating the
/// synced length, in the same append: a reader then treats damage to those
/// bytes as corruption instead of a crash's torn tail. The proof lags one
/// sync behind (the last synced stretch is stated only by the next record's
/// sync point), and a reader finds it only in a later block than the damage
/// or, after a damaged fragment whose header shows its end, later in the
/// same block; [`seal`](Self::seal), for a clean close, proves the whole log.
/// [`append_framed`](Self::append_framed) frames no sync points: a caller
/// that frames its own records frames its own with
/// [`encode_sync_point`](crate::encode_sync_point).
///
/// # After an I/O error
/// A failed `append`, `flush` or `sync` leaves the writer **failed**: the sink
/// may hold part of the record that was being appended (a torn tail a
/// [`Reader`](crate::Reader) will classify as such), so the writer's notion of
/// the file end can no longer be trusted. The offsets stay at the last call
/// that succeeded — `offset_written` never counts bytes of a failed append, and
/// `offset_synced` never advances past a failed sync — and every later call
/// returns an error without touching the sink. Like LevelDB after a failed
/// sync, the engine treats this as fatal for the log and opens a new one.
///
/// ```
/// use strata_wal::{Reader, RecoveryMode, Writer};
///
/// let mut writer = Writer::new(Vec::new());
/// writer.add_record(b"first").unwrap();
/// writer.add_record(b"second").unwrap();
/// writer.sync().unwrap();
/// assert_eq!(writer.offset_synced(), writer.offset_written());
///
/// let log = writer.into_inner();
/// let mut reader = Reader::new(&log, RecoveryMode::default());
/// assert_eq!(reader.next_record().unwrap().unwrap().data, b"first");
/// assert_eq!(reader.next_record().unwrap().unwrap().data, b"second");
/// assert!(reader.next_record().unwrap().is_none());
/// ```
#[derive(Debug)]
pub struct Writer<S: Sink> {
    sink: S,
    /// File offset just past the last byte appended successfully.
    offset_written: u64,
    /// File offset up to which a sync succeeded.
    offset_synced: u64,
    /// The greatest synced length a sync point in the log states (or, for
    /// a log continued by `with_offset`, its length then: bytes this writer
    /// did not sync are never stated).
    offset_stated: u64,
    /// Whether the last append was a seal (a second one would add nothing).
    sealed: bool,
    /// Reused between records so framing does not allocate.
    buffer: Vec<u8>,
    /// Set by the first I/O error; the kind is repeated to later callers.
    failed: Option<io::ErrorKind>,
}

impl<S: Sink> Writer<S> {
    /// A writer for an empty log.
    pub fn new(sink: S) -> Self {
        Self::with_offset(sink, 0)
    }

    /// A writer continuing a log that already holds `file_offset` bytes (all
    /// of them assumed durable by [`offset_synced`](Self::offset_synced)). The
    /// first record lands at `file_offset`, after zero-filling the block tail
    /// if fewer than 7 bytes remain in it. No sync point states those bytes
    /// until this writer has synced them itself: a file read back after a
    /// process crash may hold bytes that are in the page cache only.
    pub fn with_offset(sink: S, file_offset: u64) -> Self {
        Self {
            sink,
            offset_written: file_offset,
            offset_synced: file_offset,
            offset_stated: file_offset,
            sealed: false,
            buffer: Vec::new(),
            failed: None,
        }
    }

    /// Frames the record into a reused internal buffer and appends it with
    /// one `Sink::append` call, preceded by a sync point if a sync completed
    /// since the last one (see the type's documentation). Returns the file
    /// offset just past the record.
    pub fn add_record(&mut self, payload: &[u8]) -> io::Result<u64> {
        self.check_not_failed()?;
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        let mut offset = self.offset_written;
        let stating = (self.offset_synced > self.offset_stated).then_some(self.offset_synced);
        if let Some(synced) = stating {
            offset = encode_sync_point(&mut buffer, offset, synced);
        }
        let end = encode_record(&mut buffer, offset, payload);
        let result = self.append_checked(&buffer, end);
        if buffer.capacity() <= RETAINED_BUFFER_BYTES {
            self.buffer = buffer;
        }
        if let (Ok(()), Some(synced)) = (&result, stating) {
            self.offset_stated = synced;
        }
        result.map(|()| end)
    }

    /// Appends bytes already framed by [`encode_record`] (one or more records
    /// back to back) starting at the current `offset_written`; `end_offset` is
    /// what the last `encode_record` call returned.
    ///
    /// REQUIRES: the first record was framed at `offset_written()`. A length
    /// that disagrees with `end_offset` is refused with `InvalidInput` before
    /// anything is appended (the writer stays usable).
    pub fn append_framed(&mut self, framed: &[u8], end_offset: u64) -> io::Result<()> {
        self.check_not_failed()?;
        let expected = end_offset.checked_sub(self.offset_written);
        if expected != Some(framed.len() as u64) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "strata-wal: {} framed bytes cannot end at offset {end_offset} \
                     when the log ends at {}",
                    framed.len(),
                    self.offset_written
                ),
            ));
        }
        self.append_checked(framed, end_offset)
    }

    /// Hands appended bytes to the operating system.
    pub fn flush(&mut self) -> io::Result<()> {
        self.check_not_failed()?;
        let result = self.sink.flush();
        self.note_failure(result)
    }

    /// Flushes, then makes every appended byte durable; on success
    /// `offset_synced()` equals `offset_written()`. The next record is
    /// preceded by a sync point stating the new synced length.
    pub fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        let target = self.offset_written;
        let result = self.sink.sync();
        self.note_failure(result)?;
        self.offset_synced = target;
        Ok(())
    }

    /// For a clean close: makes the whole log durable and proves it. Syncs,
    /// appends a seal (a sync point at a block start, stating the synced
    /// length: see [`encode_seal`](crate::encode_seal)), and syncs again.
    /// Afterwards damage anywhere before the seal reads as corruption.
    ///
    /// The first sync is needed because a sync point may only state a sync
    /// that completed before it was written: if one sync covered both the
    /// records and the sync point, a power loss during it could keep the
    /// sync point and lose a record, and the log would read as corrupt.
    ///
    /// Costs up to one block (32 KiB) of file space: the rest of the current
    /// block is filled. Sealing again with nothing appended since does nothing.
    pub fn seal(&mut self) -> io::Result<()> {
        self.check_not_failed()?;
        if self.sealed && self.offset_synced == self.offset_written {
            return Ok(());
        }
        self.sync()?;
        let synced = self.offset_synced;
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        let end = encode_seal(&mut buffer, self.offset_written, synced);
        let result = self.append_checked(&buffer, end);
        self.buffer = buffer;
        result?;
        self.offset_stated = synced;
        self.sync()?;
        self.sealed = true;
        Ok(())
    }

    /// File offset just past the last byte appended successfully.
    pub fn offset_written(&self) -> u64 {
        self.offset_written
    }

    /// File offset up to which bytes are known durable.
    pub fn offset_synced(&self) -> u64 {
        self.offset_synced
    }

    /// The greatest synced length a sync point appended by this writer
    /// states: what a reader can prove (once its proof walk reaches the sync
    /// point; see [`Reader`](crate::Reader)). Starts at the `with_offset`
    /// length (0 for a new log).
    pub fn offset_stated(&self) -> u64 {
        self.offset_stated
    }

    /// Whether an I/O error has put the writer in the failed state (see the
    /// type's documentation).
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// The sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The sink, mutably. Appending to it directly desynchronises the
    /// writer's offsets; it is meant for inspection and fault injection.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Gives the sink back.
    pub fn into_inner(self) -> S {
        self.sink
    }

    fn append_checked(&mut self, framed: &[u8], end_offset: u64) -> io::Result<()> {
        let result = self.sink.append(framed);
        self.note_failure(result)?;
        debug_assert_eq!(self.offset_written + framed.len() as u64, end_offset);
        self.offset_written = end_offset;
        self.sealed = false;
        Ok(())
    }

    fn note_failure(&mut self, result: io::Result<()>) -> io::Result<()> {
        if let Err(error) = &result {
            self.failed = Some(error.kind());
        }
        result
    }

    fn check_not_failed(&self) -> io::Result<()> {
        match self.failed {
            None => Ok(()),
            Some(kind) => Err(io::Error::new(
                kind,
                format!(
                    "strata-wal: the log writer failed earlier; the file may hold a torn \
                     record after offset {}",
                    self.offset_written
                ),
            )),
        }
    }
}
