//! strata behind the [`Engine`] trait.

use super::{
    parse_counter, Batch, Engine, EngineKind, Mapping, Op, Property, Scan, ScanStart, WriteOpts,
};
use crate::error::{Context, Result};
use crate::flags::{CompressionType, Flags, ZSTD_LEVEL};
use std::path::Path;
use strata::{Compression, Cursor, Db, Keyspace, Options, TransactionOptions, WriteOptions};

pub struct StrataEngine {
    db: Db,
    /// Keyspaces 1.. of `--num_column_families` (`keyspaces[i - 1]` is
    /// index `i`); index 0 is `db` itself, so a single-keyspace run takes
    /// exactly the path it took before keyspaces.
    keyspaces: Vec<Keyspace>,
    /// The default keyspace's handle, which `get_for_update` takes.
    default: Keyspace,
}

/// THE mapping from db_bench flags to strata's `Options`, in one place.
pub fn strata_options(flags: &Flags) -> (Options, Mapping) {
    let mut m = Mapping::default();
    let mut o = Options {
        create_if_missing: !flags.use_existing_db,
        ..Options::default()
    };

    o.write_buffer_size = flags.write_buffer_size as usize;
    m.map(
        "write_buffer_size",
        flags.write_buffer_size,
        "write_buffer_size",
    );
    o.max_write_buffer_number = flags.max_write_buffer_number as usize;
    m.map(
        "max_write_buffer_number",
        flags.max_write_buffer_number,
        "max_write_buffer_number",
    );
    o.block_size = flags.block_size as usize;
    m.map("block_size", flags.block_size, "block_size");
    o.bloom_bits_per_key = flags.bloom_bits_per_key();
    m.map("bloom_bits", o.bloom_bits_per_key, "bloom_bits_per_key");
    o.block_cache_bytes = flags.cache_size as usize;
    m.map("cache_size", flags.cache_size, "block_cache_bytes");
    o.cache_index_and_filter_blocks = flags.cache_index_and_filter_blocks;
    m.map(
        "cache_index_and_filter_blocks",
        flags.cache_index_and_filter_blocks,
        "cache_index_and_filter_blocks",
    );
    o.pin_l0_filter_and_index_blocks_in_cache = flags.pin_l0_filter_and_index_blocks_in_cache;
    m.map(
        "pin_l0_filter_and_index_blocks_in_cache",
        flags.pin_l0_filter_and_index_blocks_in_cache,
        "pin_l0_filter_and_index_blocks_in_cache",
    );
    o.enable_blob_files = flags.enable_blob_files;
    m.map(
        "enable_blob_files",
        flags.enable_blob_files,
        "enable_blob_files",
    );
    o.min_blob_size = flags.min_blob_size;
    m.map("min_blob_size", flags.min_blob_size, "min_blob_size");
    o.blob_file_size = flags.blob_file_size;
    m.map("blob_file_size", flags.blob_file_size, "blob_file_size");
    o.enable_blob_garbage_collection = flags.enable_blob_garbage_collection;
    m.map(
        "enable_blob_garbage_collection",
        flags.enable_blob_garbage_collection,
        "enable_blob_garbage_collection",
    );
    o.blob_garbage_collection_age_cutoff = flags.blob_garbage_collection_age_cutoff;
    m.map(
        "blob_garbage_collection_age_cutoff",
        flags.blob_garbage_collection_age_cutoff,
        "blob_garbage_collection_age_cutoff",
    );
    o.blob_garbage_collection_force_threshold = flags.blob_garbage_collection_force_threshold;
    m.map(
        "blob_garbage_collection_force_threshold",
        flags.blob_garbage_collection_force_threshold,
        "blob_garbage_collection_force_threshold",
    );
    o.blob_garbage_collection_min_garbage_ratio = flags.blob_garbage_collection_min_garbage_ratio;
    m.map(
        "blob_garbage_collection_min_garbage_ratio",
        flags.blob_garbage_collection_min_garbage_ratio,
        "blob_garbage_collection_min_garbage_ratio",
    );
    o.allow_mmap_reads = flags.mmap_read;
    m.map("mmap_read", flags.mmap_read, "allow_mmap_reads");
    o.compaction_output_drop_page_cache = flags.compaction_output_drop_page_cache;
    m.map(
        "compaction_output_drop_page_cache",
        flags.compaction_output_drop_page_cache,
        "compaction_output_drop_page_cache",
    );
    o.max_sequential_skip_in_iterations =
        usize::try_from(flags.max_sequential_skip_in_iterations).unwrap_or(usize::MAX);
    m.map(
        "max_sequential_skip_in_iterations",
        flags.max_sequential_skip_in_iterations,
        "max_sequential_skip_in_iterations",
    );
    if flags.statistics {
        // One for the whole run, as db_bench's `dbstats`: a benchmark that
        // starts a fresh database adds to the same figures.
        static STATISTICS: std::sync::OnceLock<std::sync::Arc<strata::Statistics>> =
            std::sync::OnceLock::new();
        o.statistics = Some(STATISTICS.get_or_init(strata::Statistics::new).clone());
        m.map("statistics", flags.statistics, "statistics");
    }
    o.compaction_readahead_size = flags.compaction_readahead_size as usize;
    m.map(
        "compaction_readahead_size",
        flags.compaction_readahead_size,
        "compaction_readahead_size",
    );
    o.compression = match flags.compression_type {
        CompressionType::None => Compression::None,
        CompressionType::Zstd => Compression::Zstd { level: ZSTD_LEVEL },
    };
    m.map(
        "compression_type",
        flags.compression_type.rocksdb_name(),
        &format!("compression {:?}", o.compression),
    );
    o.compression_opts = strata::CompressionOptions {
        max_dict_bytes: flags.compression_max_dict_bytes,
        zstd_max_train_bytes: flags.compression_zstd_max_train_bytes,
    };
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

    o.level0_file_num_compaction_trigger = flags.level0_file_num_compaction_trigger.max(1) as usize;
    m.map(
        "level0_file_num_compaction_trigger",
        flags.level0_file_num_compaction_trigger,
        "level0_file_num_compaction_trigger",
    );
    o.level0_slowdown_writes_trigger = (flags.level0_slowdown_writes_trigger.max(0) as usize)
        .max(o.level0_file_num_compaction_trigger);
    m.map(
        "level0_slowdown_writes_trigger",
        flags.level0_slowdown_writes_trigger,
        "level0_slowdown_writes_trigger",
    );
    o.level0_stop_writes_trigger =
        (flags.level0_stop_writes_trigger.max(0) as usize).max(o.level0_slowdown_writes_trigger);
    m.map(
        "level0_stop_writes_trigger",
        flags.level0_stop_writes_trigger,
        "level0_stop_writes_trigger",
    );
    o.max_bytes_for_level_base = flags.max_bytes_for_level_base;
    m.map(
        "max_bytes_for_level_base",
        flags.max_bytes_for_level_base,
        "max_bytes_for_level_base",
    );
    o.target_file_size_base = flags.target_file_size_base;
    m.map(
        "target_file_size_base",
        flags.target_file_size_base,
        "target_file_size_base",
    );
    o.max_background_jobs = flags.max_background_jobs.max(1) as usize;
    m.map(
        "max_background_jobs",
        flags.max_background_jobs,
        "max_background_jobs (one thread flushes, the rest compact)",
    );

    o.merge_operator = match flags.merge_operator.as_str() {
        "uint64add" => Some(std::sync::Arc::new(strata::UInt64Add)),
        "stringappend" => Some(std::sync::Arc::new(strata::Append::with_separator(","))),
        "max" => Some(std::sync::Arc::new(strata::Max)),
        _ => None,
    };
    o.max_successive_merges = flags.max_successive_merges;
    if flags.max_successive_merges > 0 {
        m.map(
            "max_successive_merges",
            flags.max_successive_merges,
            &format!("max_successive_merges {}", flags.max_successive_merges),
        );
    }
    if !flags.merge_operator.is_empty() {
        m.map(
            "merge_operator",
            &flags.merge_operator,
            &format!("merge_operator {}", flags.merge_operator),
        );
    }

    m.durability = "WAL record in the OS page cache (a store into the mapped, preallocated \
                    WAL) before a write returns; survives a process crash, not power loss \
                    (RocksDB's default level)"
        .into();
    m.sync_durability = "fsync of the WAL before the write returns".into();
    (o, m)
}

fn write_options(w: WriteOpts) -> WriteOptions {
    WriteOptions {
        sync: w.sync,
        disable_wal: w.disable_wal,
        no_slowdown: false,
        ttl: None,
    }
}

impl Engine for StrataEngine {
    const KIND: EngineKind = EngineKind::Strata;
    const MERGES: bool = true;
    const INGESTS: bool = true;

    fn build_and_ingest(
        &self,
        flags: &Flags,
        file: &Path,
        produce: &mut super::ProduceEntries<'_>,
    ) -> Result<std::time::Duration> {
        // The table is built as the database builds its own.
        let (options, _) = strata_options(flags);
        let mut writer = strata::SstWriter::create(file, &options)
            .context(format!("create {}", file.display()))?;
        produce(&mut |k, v| Ok(writer.put(k, v)?))?;
        writer.finish()?;
        let start = std::time::Instant::now();
        let opts = strata::IngestOptions {
            move_files: true,
            ..strata::IngestOptions::default()
        };
        self.db.ingest(&[file], &opts)?;
        Ok(start.elapsed())
    }
    type Scan<'a> = StrataScan;

    fn mapping(flags: &Flags) -> Mapping {
        strata_options(flags).1
    }

    fn open(path: &Path, flags: &Flags) -> Result<Self> {
        let (options, _) = strata_options(flags);
        let db = Db::open(path, options).context(format!("open {}", path.display()))?;
        // Created with the options the database was opened with, as
        // db_bench creates its column families with the same options.
        let keyspaces = (1..flags.num_column_families as usize)
            .map(|i| {
                let name = Flags::keyspace_name(i);
                db.keyspace(&name).context(format!("keyspace {name}"))
            })
            .collect::<Result<Vec<_>>>()?;
        let default = db.keyspace("default").context("keyspace default")?;
        Ok(StrataEngine {
            db,
            keyspaces,
            default,
        })
    }

    #[inline]
    fn put(&self, keyspace: usize, key: &[u8], value: &[u8], w: WriteOpts) -> Result<()> {
        let w = write_options(w);
        Ok(match keyspace {
            0 => self.db.put_opt(key, value, &w),
            i => self.keyspaces[i - 1].put_opt(key, value, &w),
        }?)
    }

    #[inline]
    fn delete(&self, keyspace: usize, key: &[u8], w: WriteOpts) -> Result<()> {
        let w = write_options(w);
        Ok(match keyspace {
            0 => self.db.delete_opt(key, &w),
            i => self.keyspaces[i - 1].delete_opt(key, &w),
        }?)
    }

    #[inline]
    fn merge(&self, keyspace: usize, key: &[u8], operand: &[u8], w: WriteOpts) -> Result<()> {
        let w = write_options(w);
        Ok(match keyspace {
            0 => self.db.merge_opt(key, operand, &w),
            i => self.keyspaces[i - 1].merge_opt(key, operand, &w),
        }?)
    }

    fn delete_range(&self, keyspace: usize, start: &[u8], end: &[u8], w: WriteOpts) -> Result<()> {
        let w = write_options(w);
        Ok(match keyspace {
            0 => self.db.delete_range_opt(start..end, &w),
            i => self.keyspaces[i - 1].delete_range_opt(start..end, &w),
        }?)
    }

    const TRANSACTIONS: bool = true;

    fn write_in_transaction(&self, batch: &Batch, w: WriteOpts) -> Result<()> {
        let mut tx = self.db.transaction_with(TransactionOptions {
            write_options: write_options(w),
            ..TransactionOptions::default()
        });
        for (keyspace, k, op) in batch.iter() {
            match (keyspace, op) {
                (0, Op::Put(v)) => tx.put(k, v)?,
                (0, Op::Delete) => tx.delete(k)?,
                (i, Op::Put(v)) => tx.put_in(&self.keyspaces[i - 1], k, v)?,
                (i, Op::Delete) => tx.delete_in(&self.keyspaces[i - 1], k)?,
                (_, Op::Merge(_) | Op::DeleteRange(_)) => {
                    return Err(crate::error::BenchError::new(
                        "a transaction's fill holds only puts and deletes".to_string(),
                    ))
                }
            }
        }
        Ok(tx.commit()?)
    }

    fn increment_in_transaction(&self, keys: &[Vec<u8>], delta: u64, w: WriteOpts) -> Result<bool> {
        let mut tx = self.db.transaction_with(TransactionOptions {
            write_options: write_options(w),
            ..TransactionOptions::default()
        });
        for k in keys {
            let now = match tx.get_for_update(&self.default, k)? {
                Some(v) => parse_counter(&v),
                None => 0,
            };
            tx.put(k, (now + delta).to_string())?;
        }
        match tx.commit() {
            Ok(()) => Ok(true),
            Err(strata::Error::Conflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn write(&self, batch: &Batch, w: WriteOpts) -> Result<()> {
        let mut b = self.db.new_batch();
        for (keyspace, k, op) in batch.iter() {
            match (keyspace, op) {
                (0, Op::Put(v)) => b.put(k, v),
                (0, Op::Delete) => b.delete(k),
                (0, Op::DeleteRange(end)) => b.delete_range(k..end),
                (0, Op::Merge(v)) => b.merge(k, v),
                (i, Op::Merge(v)) => b.merge_in(&self.keyspaces[i - 1], k, v),
                (i, Op::Put(v)) => b.put_in(&self.keyspaces[i - 1], k, v),
                (i, Op::Delete) => b.delete_in(&self.keyspaces[i - 1], k),
                (i, Op::DeleteRange(end)) => b.delete_range_in(&self.keyspaces[i - 1], k..end),
            }
        }
        Ok(self.db.write_opt(b, &write_options(w))?)
    }

    #[inline]
    fn get(&self, keyspace: usize, key: &[u8]) -> Result<Option<usize>> {
        let value = match keyspace {
            0 => self.db.get(key),
            i => self.keyspaces[i - 1].get(key),
        }?;
        Ok(value.map(|v| v.len()))
    }

    fn scan(&self, keyspace: usize, start: ScanStart<'_>) -> Result<StrataScan> {
        let mut cursor = match keyspace {
            0 => self.db.cursor(),
            i => self.keyspaces[i - 1].cursor(),
        };
        let reverse = matches!(start, ScanStart::Last);
        match start {
            ScanStart::First => cursor.seek_to_first()?,
            ScanStart::Last => cursor.seek_to_last()?,
            ScanStart::Seek(k) => cursor.seek(k)?,
        }
        Ok(StrataScan {
            cursor,
            reverse,
            positioned: true,
        })
    }

    fn flush(&self) -> Result<()> {
        Ok(self.db.flush_all()?)
    }

    fn compact(&self) -> Result<bool> {
        self.db.compact_range::<&[u8], _>(..)?;
        for keyspace in &self.keyspaces {
            keyspace.compact_range::<&[u8], _>(..)?;
        }
        Ok(true)
    }

    fn checkpoint(&self) -> Result<Option<(f64, String)>> {
        let mut target = self.db.path().as_os_str().to_owned();
        target.push(".checkpoint");
        let target = std::path::PathBuf::from(target);
        let started = std::time::Instant::now();
        let info = self.db.checkpoint(&target)?;
        let secs = started.elapsed().as_secs_f64();
        // Made by this call just now, under a name of its own: only the
        // checkpoint's links and copies go.
        std::fs::remove_dir_all(&target)
            .context(format!("remove checkpoint {}", target.display()))?;
        Ok(Some((
            secs,
            format!(
                "sequence {} files {} tables linked {}",
                info.sequence, info.files, info.tables_linked
            ),
        )))
    }

    fn wait_for_compactions(&self) -> Result<()> {
        Ok(self.db.wait_for_compactions()?)
    }

    fn verify_checksums(&self) -> Result<bool> {
        self.db.verify_checksums()?;
        Ok(true)
    }

    fn property(&self, p: Property) -> Option<String> {
        match p {
            Property::Stats => self.db.property("strata.stats"),
            Property::LevelStats => self.db.property("strata.levelstats"),
            Property::SsTables => self.db.property("strata.sstables"),
            Property::Statistics => self.db.statistics().map(|s| s.to_text()),
        }
    }
}

pub struct StrataScan {
    cursor: Cursor,
    reverse: bool,
    /// True until the first `next_entry`: the cursor is already on it.
    positioned: bool,
}

impl Scan for StrataScan {
    #[inline]
    fn next_entry(&mut self) -> Result<Option<(&[u8], &[u8])>> {
        if self.positioned {
            self.positioned = false;
        } else if self.reverse {
            self.cursor.prev()?;
        } else {
            self.cursor.next()?;
        }
        Ok(self.cursor.key().zip(self.cursor.value()))
    }
}
