//! `BlobWriter`: a flush's blob files. Each plain put whose value is at
//! least `min_blob_size` bytes goes to the current blob file, and the
//! table gets a blob reference in its place; a file is finished at
//! `blob_file_size` and the next one started. Merge operands, puts with a
//! time to live and what a flush merges stay in the table (the read and
//! compaction paths of those kinds then need no blob access).

use crate::error::{table_write_error, Error, Result};
use crate::filename::blob_path;
use crate::fs::{WriteAdapter, Writeback};
use crate::options::{Compression, Options};
use crate::version::{BlobRefCount, TableOpener};
use std::collections::BTreeMap;
use std::path::PathBuf;
use strata_sstable::blob::{BlobFileBuilder, BlobRef};

/// What decides a keyspace's separation (its options).
#[derive(Clone, Debug)]
pub(crate) struct BlobSettings {
    pub keyspace_id: u32,
    pub min_blob_size: u64,
    pub blob_file_size: u64,
    pub compression: Compression,
    /// `Options::bytes_per_sync`.
    pub bytes_per_sync: u64,
}

impl BlobSettings {
    /// The settings of `options` for keyspace `keyspace_id`, `None`
    /// without `enable_blob_files`.
    pub fn of(options: &Options, keyspace_id: u32) -> Option<BlobSettings> {
        options.enable_blob_files.then(|| BlobSettings {
            keyspace_id,
            min_blob_size: options.min_blob_size,
            blob_file_size: options.blob_file_size,
            compression: options.blob_compression_type.clone(),
            bytes_per_sync: options.bytes_per_sync,
        })
    }
}

/// The blob files one flush writes.
pub(crate) struct BlobWriter<'a> {
    settings: BlobSettings,
    new_number: &'a mut dyn FnMut() -> Result<u64>,
    current: Option<(u64, BlobFileBuilder<WriteAdapter>)>,
    /// Every file created, finished or not (removed if the flush fails).
    created: Vec<u64>,
    /// The references handed out since the last `take_refs`, per file.
    refs: BTreeMap<u64, BlobRefCount>,
    /// Bytes of the files finished.
    bytes_written: u64,
    dir: PathBuf,
    opener: TableOpener,
}

impl<'a> BlobWriter<'a> {
    pub fn new(
        settings: BlobSettings,
        opener: &TableOpener,
        new_number: &'a mut dyn FnMut() -> Result<u64>,
    ) -> BlobWriter<'a> {
        BlobWriter {
            settings,
            new_number,
            current: None,
            created: Vec::new(),
            refs: BTreeMap::new(),
            bytes_written: 0,
            dir: opener.dir.clone(),
            opener: opener.clone(),
        }
    }

    /// The encoded blob reference to store in place of `value`, or
    /// `None` if it stays in the table.
    pub fn separate(&mut self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        if (value.len() as u64) < self.settings.min_blob_size {
            return Ok(None);
        }
        if self.current.is_none() {
            let number = (self.new_number)()?;
            self.created.push(number);
            let path = blob_path(&self.dir, number);
            let file = self
                .opener
                .fs
                .create(&path)
                .map_err(|e| Error::io("create blob file", &path, e))?;
            let builder = BlobFileBuilder::new(
                WriteAdapter(file, None, Writeback::every(self.settings.bytes_per_sync)),
                self.settings.keyspace_id,
                self.settings.compression.clone(),
            )
            .map_err(|e| table_write_error(&path, e))?;
            self.current = Some((number, builder));
        }
        let Some((number, builder)) = self.current.as_mut() else {
            unreachable!("a blob file was just started");
        };
        let number = *number;
        let place = builder
            .add(key, value)
            .map_err(|e| table_write_error(blob_path(&self.dir, number), e))?;
        let refs = self.refs.entry(number).or_default();
        *refs = refs.plus(BlobRefCount {
            count: 1,
            bytes: u64::from(place.size),
        });
        if builder.file_size() >= self.settings.blob_file_size {
            self.finish_current()?;
        }
        Ok(Some(
            BlobRef {
                file_number: number,
                offset: place.offset,
                size: place.size,
            }
            .encode(),
        ))
    }

    /// Finish the current file: footer, fsync (before any MANIFEST edit
    /// can list it, and before a table referring to it is opened; the
    /// caller syncs the directory after its tables).
    pub fn finish_current(&mut self) -> Result<()> {
        if let Some((number, builder)) = self.current.take() {
            let path = blob_path(&self.dir, number);
            let built = builder.finish().map_err(|e| table_write_error(&path, e))?;
            self.bytes_written += built.file_size;
            let WriteAdapter(mut file, ..) = built.writer;
            file.sync()
                .map_err(|e| Error::io("sync blob file", &path, e))?;
        }
        Ok(())
    }

    /// Bytes of the blob files finished so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// The references handed out since the last call, per blob file,
    /// ascending: what the table they went to lists.
    pub fn take_refs(&mut self) -> Vec<(u64, BlobRefCount)> {
        std::mem::take(&mut self.refs).into_iter().collect()
    }

    /// Finish and sync every file: the references handed out (those not
    /// taken yet), per blob file, ascending.
    pub fn finish(mut self) -> Result<Vec<(u64, BlobRefCount)>> {
        self.finish_current()?;
        self.created.clear();
        Ok(self.take_refs())
    }

    /// Remove every file written (the flush failed, or wrote no table).
    pub fn abandon(mut self) {
        self.current = None;
        for n in std::mem::take(&mut self.created) {
            let _ = self.opener.fs.remove(&blob_path(&self.dir, n));
        }
    }
}
