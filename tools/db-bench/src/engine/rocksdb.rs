//! RocksDB (through the `rocksdb` crate) behind the [`Engine`] trait.
//! Built only with `--features rocksdb`.

use super::{
    parse_counter, Batch, Engine, EngineKind, Mapping, Op, Property, Scan, ScanStart, WriteOpts,
};
use crate::error::{BenchError, Result};
use crate::flags::{CompressionType, Flags, ZSTD_LEVEL};
use rocksdb::{
    BlockBasedOptions, BottommostLevelCompaction, Cache, ColumnFamily, ColumnFamilyDescriptor,
    CompactOptions, DBCompressionType, DBRawIterator, DBRawIteratorWithThreadMode, ErrorKind,
    MergeOperands, OptimisticTransactionDB, OptimisticTransactionOptions, Options, ReadOptions,
    WaitForCompactOptions, WriteBatch, WriteBatchWithTransaction, WriteOptions, DB,
};
use std::path::Path;

/// The database as opened: plain, or (`--optimistic_transaction_db`, as
/// db_bench) an `OptimisticTransactionDB`, whose plain reads and writes go
/// to its base DB as db_bench's do.
enum Handle {
    Plain(DB),
    Optimistic(OptimisticTransactionDB),
}

/// `$body` with `$db` bound to whichever database is open: the two are
/// different types sharing most methods (the crate's `DBCommon`).
macro_rules! with_db {
    ($handle:expr, $db:ident => $body:expr) => {
        match $handle {
            Handle::Plain($db) => $body,
            Handle::Optimistic($db) => $body,
        }
    };
}

pub struct RocksEngine {
    db: Handle,
    /// The column family names of `--num_column_families`, by index
    /// (index 0, "default", is reached without a handle). The handle is
    /// looked up by name per operation: the crate's `ColumnFamily` is
    /// borrowed from the `DB`, so it cannot be kept beside it; a lookup in
    /// a map of a few names, tens of nanoseconds.
    column_families: Vec<String>,
    /// Reused: `get_pinned` would create (and free) one per call.
    read: ReadOptions,
    plain: WriteOptions,
    sync: WriteOptions,
    no_wal: WriteOptions,
    sync_no_wal: WriteOptions,
    /// Reused by every transaction (RocksDB's defaults).
    transaction_options: OptimisticTransactionOptions,
}

impl From<rocksdb::Error> for BenchError {
    fn from(e: rocksdb::Error) -> Self {
        BenchError::new(format!("rocksdb: {e}"))
    }
}

fn rocksdb_options(flags: &Flags) -> (Options, Mapping) {
    let mut m = Mapping::default();
    let mut o = Options::default();
    o.create_if_missing(!flags.use_existing_db);
    if flags.statistics {
        o.enable_statistics();
        m.map("statistics", flags.statistics, "enable_statistics");
    }

    o.set_write_buffer_size(flags.write_buffer_size as usize);
    m.map(
        "write_buffer_size",
        flags.write_buffer_size,
        "write_buffer_size",
    );
    o.set_max_write_buffer_number(flags.max_write_buffer_number as i32);
    m.map(
        "max_write_buffer_number",
        flags.max_write_buffer_number,
        "max_write_buffer_number",
    );

    let mut table = BlockBasedOptions::default();
    table.set_block_size(flags.block_size as usize);
    m.map(
        "block_size",
        flags.block_size,
        "BlockBasedTableOptions::block_size",
    );
    let cache = Cache::new_lru_cache(flags.cache_size as usize);
    table.set_block_cache(&cache);
    m.map("cache_size", flags.cache_size, "LRU block_cache");
    table.set_cache_index_and_filter_blocks(flags.cache_index_and_filter_blocks);
    m.map(
        "cache_index_and_filter_blocks",
        flags.cache_index_and_filter_blocks,
        "BlockBasedTableOptions::cache_index_and_filter_blocks",
    );
    table
        .set_pin_l0_filter_and_index_blocks_in_cache(flags.pin_l0_filter_and_index_blocks_in_cache);
    m.map(
        "pin_l0_filter_and_index_blocks_in_cache",
        flags.pin_l0_filter_and_index_blocks_in_cache,
        "BlockBasedTableOptions::pin_l0_filter_and_index_blocks_in_cache",
    );
    o.set_allow_mmap_reads(flags.mmap_read);
    m.map("mmap_read", flags.mmap_read, "allow_mmap_reads");
    o.set_max_sequential_skip_in_iterations(flags.max_sequential_skip_in_iterations);
    m.map(
        "max_sequential_skip_in_iterations",
        flags.max_sequential_skip_in_iterations,
        "max_sequential_skip_in_iterations",
    );
    o.set_compaction_readahead_size(flags.compaction_readahead_size as usize);
    m.map(
        "compaction_readahead_size",
        flags.compaction_readahead_size,
        "compaction_readahead_size",
    );
    let bits = flags.bloom_bits_per_key();
    if bits > 0 {
        table.set_bloom_filter(f64::from(bits), false);
    }
    m.map(
        "bloom_bits",
        bits,
        "NewBloomFilterPolicy(bits) (full filter)",
    );
    o.set_block_based_table_factory(&table);

    match flags.compression_type {
        CompressionType::None => o.set_compression_type(DBCompressionType::None),
        CompressionType::Zstd => {
            o.set_compression_type(DBCompressionType::Zstd);
            o.set_compression_options(-14, ZSTD_LEVEL, 0, flags.compression_max_dict_bytes as i32);
            o.set_zstd_max_train_bytes(flags.compression_zstd_max_train_bytes as i32);
        }
    }
    m.map(
        "compression_type",
        flags.compression_type.rocksdb_name(),
        "compression",
    );
    m.map(
        "compression_max_dict_bytes",
        flags.compression_max_dict_bytes,
        "compression_opts.max_dict_bytes",
    );
    m.map(
        "compression_zstd_max_train_bytes",
        flags.compression_zstd_max_train_bytes,
        "compression_opts.zstd_max_train_bytes",
    );

    o.set_enable_blob_files(flags.enable_blob_files);
    m.map(
        "enable_blob_files",
        flags.enable_blob_files,
        "enable_blob_files",
    );
    o.set_min_blob_size(flags.min_blob_size);
    m.map("min_blob_size", flags.min_blob_size, "min_blob_size");
    o.set_blob_file_size(flags.blob_file_size);
    m.map("blob_file_size", flags.blob_file_size, "blob_file_size");
    o.set_enable_blob_gc(flags.enable_blob_garbage_collection);
    m.map(
        "enable_blob_garbage_collection",
        flags.enable_blob_garbage_collection,
        "enable_blob_garbage_collection",
    );
    o.set_blob_gc_age_cutoff(flags.blob_garbage_collection_age_cutoff);
    m.map(
        "blob_garbage_collection_age_cutoff",
        flags.blob_garbage_collection_age_cutoff,
        "blob_gc_age_cutoff",
    );
    o.set_blob_gc_force_threshold(flags.blob_garbage_collection_force_threshold);
    m.map(
        "blob_garbage_collection_force_threshold",
        flags.blob_garbage_collection_force_threshold,
        "blob_gc_force_threshold",
    );

    if flags.enable_blob_garbage_collection && flags.blob_garbage_collection_min_garbage_ratio > 0.0
    {
        m.unmatched(
            "blob_garbage_collection_min_garbage_ratio",
            flags.blob_garbage_collection_min_garbage_ratio,
            "RocksDB relocates from every blob file within the age cutoff, whatever its garbage",
        );
    }

    o.set_level_zero_file_num_compaction_trigger(flags.level0_file_num_compaction_trigger);
    m.map(
        "level0_file_num_compaction_trigger",
        flags.level0_file_num_compaction_trigger,
        "level0_file_num_compaction_trigger",
    );
    o.set_level_zero_slowdown_writes_trigger(flags.level0_slowdown_writes_trigger);
    m.map(
        "level0_slowdown_writes_trigger",
        flags.level0_slowdown_writes_trigger,
        "level0_slowdown_writes_trigger",
    );
    o.set_level_zero_stop_writes_trigger(flags.level0_stop_writes_trigger);
    m.map(
        "level0_stop_writes_trigger",
        flags.level0_stop_writes_trigger,
        "level0_stop_writes_trigger",
    );
    o.set_max_bytes_for_level_base(flags.max_bytes_for_level_base);
    m.map(
        "max_bytes_for_level_base",
        flags.max_bytes_for_level_base,
        "max_bytes_for_level_base",
    );
    o.set_target_file_size_base(flags.target_file_size_base);
    m.map(
        "target_file_size_base",
        flags.target_file_size_base,
        "target_file_size_base",
    );
    o.set_max_background_jobs(flags.max_background_jobs);
    m.map(
        "max_background_jobs",
        flags.max_background_jobs,
        "max_background_jobs",
    );

    // rust-rocksdb exposes none of RocksDB's built-in operators: each is a
    // closure doing what the built-in does (`uint64add`: 8-byte
    // little-endian sums, a value of another length counting as 0, as
    // `UInt64AddOperator` does after logging it).
    match flags.merge_operator.as_str() {
        "uint64add" => o.set_merge_operator_associative("uint64add", uint64add),
        "stringappend" => o.set_merge_operator_associative("stringappend", string_append),
        "max" => o.set_merge_operator_associative("max", max),
        _ => {}
    }
    if !flags.merge_operator.is_empty() {
        m.map(
            "merge_operator",
            &flags.merge_operator,
            &format!(
                "set_merge_operator_associative({}, a closure)",
                flags.merge_operator
            ),
        );
    }

    m.durability = "WAL record written to the OS (write syscall) before a write returns, \
                    no fsync (WriteOptions::sync = false, manual_wal_flush = false)"
        .into();
    m.sync_durability = "WriteOptions::sync = true: fsync of the WAL per write group".into();
    (o, m)
}

fn write_options(sync: bool, disable_wal: bool) -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(sync);
    w.disable_wal(disable_wal);
    w
}

impl RocksEngine {
    /// The handle of column family `index`.
    #[inline]
    fn cf(&self, index: usize) -> Result<&ColumnFamily> {
        let name = &self.column_families[index];
        with_db!(&self.db, db => db.cf_handle(name))
            .ok_or_else(|| BenchError::new(format!("rocksdb: no column family {name}")))
    }

    /// The `OptimisticTransactionDB`, which only `--optimistic_transaction_db`
    /// opens.
    fn optimistic(&self) -> Result<&OptimisticTransactionDB> {
        match &self.db {
            Handle::Optimistic(db) => Ok(db),
            Handle::Plain(_) => Err(BenchError::new(
                "rocksdb: transactions need --optimistic_transaction_db \
                 (db_bench opens an OptimisticTransactionDB only then)",
            )),
        }
    }

    /// `batch` for `OptimisticTransactionDB::Write`, which takes no range
    /// deletes.
    fn transaction_batch(&self, batch: &Batch) -> Result<WriteBatchWithTransaction<true>> {
        let mut b = WriteBatchWithTransaction::<true>::default();
        for (keyspace, k, op) in batch.iter() {
            match (keyspace, op) {
                (0, Op::Put(v)) => b.put(k, v),
                (0, Op::Delete) => b.delete(k),
                (0, Op::Merge(v)) => b.merge(k, v),
                (i, Op::Put(v)) => b.put_cf(self.cf(i)?, k, v),
                (i, Op::Delete) => b.delete_cf(self.cf(i)?, k),
                (i, Op::Merge(v)) => b.merge_cf(self.cf(i)?, k, v),
                (_, Op::DeleteRange(_)) => {
                    return Err(BenchError::new(
                        "rocksdb: an OptimisticTransactionDB's batch holds no range delete",
                    ))
                }
            }
        }
        Ok(b)
    }

    #[inline]
    fn write_opts(&self, w: WriteOpts) -> &WriteOptions {
        match (w.sync, w.disable_wal) {
            (false, false) => &self.plain,
            (true, false) => &self.sync,
            (false, true) => &self.no_wal,
            (true, true) => &self.sync_no_wal,
        }
    }
}

fn uint64add(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let value = |v: &[u8]| <[u8; 8]>::try_from(v).map_or(0, u64::from_le_bytes);
    let sum = existing
        .into_iter()
        .chain(operands.iter())
        .fold(0u64, |s, v| s.wrapping_add(value(v)));
    Some(sum.to_le_bytes().to_vec())
}

fn string_append(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for (i, part) in existing.into_iter().chain(operands.iter()).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(part);
    }
    Some(out)
}

fn max(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    existing
        .into_iter()
        .chain(operands.iter())
        .max()
        .map(<[u8]>::to_vec)
}

impl Engine for RocksEngine {
    const KIND: EngineKind = EngineKind::Rocksdb;
    const MERGES: bool = true;
    const INGESTS: bool = true;

    fn build_and_ingest(
        &self,
        flags: &Flags,
        file: &Path,
        produce: &mut super::ProduceEntries<'_>,
    ) -> Result<std::time::Duration> {
        // The table is built with the options the database uses.
        let (options, _) = rocksdb_options(flags);
        let mut writer = rocksdb::SstFileWriter::create(&options);
        writer.open(file)?;
        produce(&mut |k, v| Ok(writer.put(k, v)?))?;
        writer.finish()?;
        let start = std::time::Instant::now();
        let mut opts = rocksdb::IngestExternalFileOptions::default();
        opts.set_move_files(true);
        with_db!(&self.db, db => db.ingest_external_file_opts(&opts, vec![file]))?;
        Ok(start.elapsed())
    }
    type Scan<'a> = RocksScan<'a>;

    fn mapping(flags: &Flags) -> Mapping {
        rocksdb_options(flags).1
    }

    fn open(path: &Path, flags: &Flags) -> Result<Self> {
        let (mut options, _) = rocksdb_options(flags);
        let column_families: Vec<String> = (0..flags.num_column_families as usize)
            .map(Flags::keyspace_name)
            .collect();
        // As db_bench: every column family with the same options (one
        // block cache shared by all), created at open when missing. Not
        // `DB::open_cf`: it opens every column family, "default" included,
        // with `Options::default()` (a 32 MiB cache, no filter policy).
        options.create_missing_column_families(true);
        let descriptors: Vec<ColumnFamilyDescriptor> = column_families
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(name, options.clone()))
            .collect();
        let failed =
            |e: rocksdb::Error| BenchError::new(format!("rocksdb: open {}: {e}", path.display()));
        let db = if flags.optimistic_transaction_db {
            Handle::Optimistic(
                OptimisticTransactionDB::open_cf_descriptors(&options, path, descriptors)
                    .map_err(failed)?,
            )
        } else {
            Handle::Plain(DB::open_cf_descriptors(&options, path, descriptors).map_err(failed)?)
        };
        Ok(RocksEngine {
            db,
            column_families,
            read: ReadOptions::default(),
            plain: write_options(false, false),
            sync: write_options(true, false),
            no_wal: write_options(false, true),
            sync_no_wal: write_options(true, true),
            transaction_options: OptimisticTransactionOptions::default(),
        })
    }

    #[inline]
    fn put(&self, keyspace: usize, key: &[u8], value: &[u8], w: WriteOpts) -> Result<()> {
        let w = self.write_opts(w);
        Ok(match keyspace {
            0 => with_db!(&self.db, db => db.put_opt(key, value, w)),
            i => with_db!(&self.db, db => db.put_cf_opt(self.cf(i)?, key, value, w)),
        }?)
    }

    #[inline]
    fn delete(&self, keyspace: usize, key: &[u8], w: WriteOpts) -> Result<()> {
        let w = self.write_opts(w);
        Ok(match keyspace {
            0 => with_db!(&self.db, db => db.delete_opt(key, w)),
            i => with_db!(&self.db, db => db.delete_cf_opt(self.cf(i)?, key, w)),
        }?)
    }

    #[inline]
    fn merge(&self, keyspace: usize, key: &[u8], operand: &[u8], w: WriteOpts) -> Result<()> {
        let w = self.write_opts(w);
        Ok(match keyspace {
            0 => with_db!(&self.db, db => db.merge_opt(key, operand, w)),
            i => with_db!(&self.db, db => db.merge_cf_opt(self.cf(i)?, key, operand, w)),
        }?)
    }

    fn delete_range(&self, keyspace: usize, start: &[u8], end: &[u8], w: WriteOpts) -> Result<()> {
        let w = self.write_opts(w);
        let cf = self.cf(keyspace)?;
        Ok(with_db!(&self.db, db => db.delete_range_cf_opt(cf, start, end, w))?)
    }

    const TRANSACTIONS: bool = true;

    fn write_in_transaction(&self, batch: &Batch, w: WriteOpts) -> Result<()> {
        let db = self.optimistic()?;
        // `OptimisticTransactionDB::Write`: the batch committed as one
        // transaction (db_bench's writes with `--optimistic_transaction_db`).
        let b = self.transaction_batch(batch)?;
        Ok(db.write_opt(b, self.write_opts(w))?)
    }

    fn increment_in_transaction(&self, keys: &[Vec<u8>], delta: u64, w: WriteOpts) -> Result<bool> {
        let db = self.optimistic()?;
        // As db_bench's `RandomTransactionInserter`: no snapshot set, so
        // each key is validated from when `GetForUpdate` read it.
        let tx = db.transaction_opt(self.write_opts(w), &self.transaction_options);
        for k in keys {
            let now = match tx.get_pinned_for_update_opt(k, true, &self.read)? {
                Some(v) => parse_counter(&v),
                None => 0,
            };
            tx.put(k, (now + delta).to_string())?;
        }
        match tx.commit() {
            Ok(()) => Ok(true),
            // Busy: a key was written after it was read; TryAgain: the
            // memtables no longer reach back to the read (RocksDB cannot
            // tell). db_bench counts both as a failed transaction and
            // goes on.
            Err(e) if matches!(e.kind(), ErrorKind::Busy | ErrorKind::TryAgain) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn write(&self, batch: &Batch, w: WriteOpts) -> Result<()> {
        let db = match &self.db {
            Handle::Plain(db) => db,
            // The crate writes an `OptimisticTransactionDB`'s batches only
            // through `OptimisticTransactionDB::Write`.
            Handle::Optimistic(_) => return self.write_in_transaction(batch, w),
        };
        let mut b = WriteBatch::default();
        for (keyspace, k, op) in batch.iter() {
            match (keyspace, op) {
                (0, Op::Put(v)) => b.put(k, v),
                (0, Op::Delete) => b.delete(k),
                (0, Op::DeleteRange(end)) => b.delete_range(k, end),
                (0, Op::Merge(v)) => b.merge(k, v),
                (i, Op::Merge(v)) => b.merge_cf(self.cf(i)?, k, v),
                (i, Op::Put(v)) => b.put_cf(self.cf(i)?, k, v),
                (i, Op::Delete) => b.delete_cf(self.cf(i)?, k),
                (i, Op::DeleteRange(end)) => b.delete_range_cf(self.cf(i)?, k, end),
            }
        }
        Ok(db.write_opt(b, self.write_opts(w))?)
    }

    #[inline]
    fn get(&self, keyspace: usize, key: &[u8]) -> Result<Option<usize>> {
        let value = match keyspace {
            0 => with_db!(&self.db, db => db.get_pinned_opt(key, &self.read)),
            i => with_db!(&self.db, db => db.get_pinned_cf_opt(self.cf(i)?, key, &self.read)),
        }?;
        Ok(value.map(|v| v.len()))
    }

    fn scan(&self, keyspace: usize, start: ScanStart<'_>) -> Result<RocksScan<'_>> {
        let mut iter = match (&self.db, keyspace) {
            (Handle::Plain(db), 0) => RawIter::Plain(db.raw_iterator()),
            (Handle::Plain(db), i) => RawIter::Plain(db.raw_iterator_cf(self.cf(i)?)),
            (Handle::Optimistic(db), 0) => RawIter::Optimistic(db.raw_iterator()),
            (Handle::Optimistic(db), i) => RawIter::Optimistic(db.raw_iterator_cf(self.cf(i)?)),
        };
        let reverse = matches!(start, ScanStart::Last);
        match start {
            ScanStart::First => iter.seek_to_first(),
            ScanStart::Last => iter.seek_to_last(),
            ScanStart::Seek(k) => iter.seek(k),
        }
        Ok(RocksScan {
            iter,
            reverse,
            positioned: true,
        })
    }

    fn flush(&self) -> Result<()> {
        with_db!(&self.db, db => db.flush())?;
        for i in 1..self.column_families.len() {
            with_db!(&self.db, db => db.flush_cf(self.cf(i)?))?;
        }
        Ok(())
    }

    fn compact(&self) -> Result<bool> {
        let mut opts = CompactOptions::default();
        opts.set_bottommost_level_compaction(BottommostLevelCompaction::ForceOptimized);
        with_db!(&self.db, db => db.compact_range_opt::<&[u8], &[u8]>(None, None, &opts));
        for i in 1..self.column_families.len() {
            let cf = self.cf(i)?;
            with_db!(&self.db, db => db.compact_range_cf_opt::<&[u8], &[u8]>(cf, None, None, &opts));
        }
        Ok(true)
    }

    fn wait_for_compactions(&self) -> Result<()> {
        let mut opts = WaitForCompactOptions::default();
        opts.set_flush(true);
        Ok(with_db!(&self.db, db => db.wait_for_compact(&opts))?)
    }

    fn verify_checksums(&self) -> Result<bool> {
        Ok(false) // the rocksdb crate does not expose DB::VerifyChecksum
    }

    fn property(&self, p: Property) -> Option<String> {
        let name = match p {
            Property::Stats => "rocksdb.stats",
            Property::LevelStats => "rocksdb.levelstats",
            Property::SsTables => "rocksdb.sstables",
            Property::Statistics => "rocksdb.options-statistics",
        };
        with_db!(&self.db, db => db.property_value(name))
            .ok()
            .flatten()
    }
}

/// A raw iterator over whichever database is open.
enum RawIter<'a> {
    Plain(DBRawIterator<'a>),
    Optimistic(DBRawIteratorWithThreadMode<'a, OptimisticTransactionDB>),
}

macro_rules! with_iter {
    ($iter:expr, $it:ident => $body:expr) => {
        match $iter {
            RawIter::Plain($it) => $body,
            RawIter::Optimistic($it) => $body,
        }
    };
}

impl RawIter<'_> {
    fn seek_to_first(&mut self) {
        with_iter!(self, it => it.seek_to_first())
    }
    fn seek_to_last(&mut self) {
        with_iter!(self, it => it.seek_to_last())
    }
    fn seek(&mut self, key: &[u8]) {
        with_iter!(self, it => it.seek(key))
    }
    fn next(&mut self) {
        with_iter!(self, it => it.next())
    }
    fn prev(&mut self) {
        with_iter!(self, it => it.prev())
    }
    fn valid(&self) -> bool {
        with_iter!(self, it => it.valid())
    }
    fn status(&self) -> std::result::Result<(), rocksdb::Error> {
        with_iter!(self, it => it.status())
    }
    fn entry(&self) -> Option<(&[u8], &[u8])> {
        with_iter!(self, it => it.key().zip(it.value()))
    }
}

pub struct RocksScan<'a> {
    iter: RawIter<'a>,
    reverse: bool,
    positioned: bool,
}

impl Scan for RocksScan<'_> {
    #[inline]
    fn next_entry(&mut self) -> Result<Option<(&[u8], &[u8])>> {
        if self.positioned {
            self.positioned = false;
        } else if self.reverse {
            self.iter.prev();
        } else {
            self.iter.next();
        }
        if !self.iter.valid() {
            self.iter.status()?;
            return Ok(None);
        }
        Ok(self.iter.entry())
    }
}
