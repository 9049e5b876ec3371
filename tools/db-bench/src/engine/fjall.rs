//! fjall 3 behind the [`Engine`] trait. Built only with `--features fjall`.

use super::{
    parse_counter, Batch, Engine, EngineKind, Mapping, Op, Property, Scan, ScanStart, WriteOpts,
};
use crate::error::{BenchError, Result};
use crate::flags::{CompressionType, Flags};
use fjall::config::{
    BlockSizePolicy, BloomConstructionPolicy, CompressionPolicy, FilterPolicy, FilterPolicyEntry,
};
use fjall::{
    Database, Keyspace, KeyspaceCreateOptions, OptimisticTxDatabase, OptimisticWriteTx,
    PersistMode, Readable, UserKey, UserValue,
};
use std::path::Path;
use std::time::Duration;

pub struct FjallEngine {
    db: Database,
    /// The keyspaces of `--num_column_families`, by index ("default"
    /// first).
    trees: Vec<Keyspace>,
    /// With `--optimistic_transaction_db`: the database opened for
    /// optimistic transactions; `db` and `trees` are then its base
    /// database and keyspaces, which the plain reads and writes use (as
    /// db_bench uses RocksDB's base DB).
    optimistic: Option<OptimisticTxDatabase>,
}

impl From<fjall::Error> for BenchError {
    fn from(e: fjall::Error) -> Self {
        BenchError::new(format!("fjall: {e}"))
    }
}

/// The keyspace options and what was mapped.
fn fjall_options(flags: &Flags) -> (KeyspaceCreateOptions, Mapping) {
    let mut m = Mapping::default();
    let mut o = KeyspaceCreateOptions::default()
        .max_memtable_size(flags.write_buffer_size)
        .data_block_size_policy(BlockSizePolicy::all(flags.block_size));
    m.map(
        "write_buffer_size",
        flags.write_buffer_size,
        "max_memtable_size",
    );
    m.map("block_size", flags.block_size, "data_block_size_policy");
    m.map(
        "cache_size",
        flags.cache_size,
        "Database::builder().cache_size",
    );
    m.map(
        "max_background_jobs",
        flags.max_background_jobs,
        "worker_threads",
    );

    let bits = flags.bloom_bits_per_key();
    o = o.filter_policy(if bits == 0 {
        FilterPolicy::disabled()
    } else {
        FilterPolicy::all(FilterPolicyEntry::Bloom(
            BloomConstructionPolicy::BitsPerKey(bits as f32),
        ))
    });
    m.map("bloom_bits", bits, "filter_policy BitsPerKey (every level)");

    match flags.compression_type {
        CompressionType::None => {
            o = o.data_block_compression_policy(CompressionPolicy::disabled());
            m.map(
                "compression_type",
                "none",
                "data_block_compression_policy disabled",
            );
        }
        CompressionType::Zstd => {
            o = o
                .data_block_compression_policy(CompressionPolicy::all(fjall::CompressionType::Lz4));
            m.unmatched(
                "compression_type",
                "zstd",
                "fjall has no zstd; using lz4, the closest",
            );
        }
    }
    if flags.enable_blob_files {
        // fjall's key-value separation (lsm-tree's blob files). Its GC
        // rewrites a blob file once its stale fraction passes
        // `staleness_threshold`, among the oldest `age_cutoff` of them:
        // strata's min garbage ratio and age cutoff. Blobs are stored
        // uncompressed, as RocksDB's and strata's default.
        let threshold = u32::try_from(flags.min_blob_size).unwrap_or(u32::MAX);
        o = o.with_kv_separation(Some(
            fjall::KvSeparationOptions::default()
                .separation_threshold(threshold)
                .file_target_size(flags.blob_file_size)
                .staleness_threshold(flags.blob_garbage_collection_min_garbage_ratio as f32)
                .age_cutoff(flags.blob_garbage_collection_age_cutoff as f32)
                .compression(fjall::CompressionType::None),
        ));
        m.map(
            "enable_blob_files",
            true,
            "with_kv_separation (blob compression none)",
        );
        m.map(
            "min_blob_size",
            flags.min_blob_size,
            "KvSeparationOptions::separation_threshold",
        );
        m.map(
            "blob_file_size",
            flags.blob_file_size,
            "KvSeparationOptions::file_target_size",
        );
        m.map(
            "blob_garbage_collection_age_cutoff",
            flags.blob_garbage_collection_age_cutoff,
            "KvSeparationOptions::age_cutoff",
        );
        m.map(
            "blob_garbage_collection_min_garbage_ratio",
            flags.blob_garbage_collection_min_garbage_ratio,
            "KvSeparationOptions::staleness_threshold",
        );
        m.unmatched(
            "blob_garbage_collection_force_threshold",
            flags.blob_garbage_collection_force_threshold,
            "fjall forces no compaction for blob garbage",
        );
        if !flags.enable_blob_garbage_collection {
            m.unmatched(
                "enable_blob_garbage_collection",
                false,
                "fjall collects blob garbage whenever key-value separation is on",
            );
        }
    }
    if flags.disable_wal {
        o = o.manual_journal_persist(true);
        m.unmatched(
            "disable_wal",
            true,
            "fjall always journals; closest: manual_journal_persist (journal stays in user space)",
        );
    }
    m.unmatched(
        "max_write_buffer_number",
        flags.max_write_buffer_number,
        "fjall sizes sealed memtables by the database write buffer instead",
    );
    for (flag, value) in [
        (
            "level0_file_num_compaction_trigger",
            i64::from(flags.level0_file_num_compaction_trigger),
        ),
        (
            "level0_slowdown_writes_trigger",
            i64::from(flags.level0_slowdown_writes_trigger),
        ),
        (
            "level0_stop_writes_trigger",
            i64::from(flags.level0_stop_writes_trigger),
        ),
        (
            "max_bytes_for_level_base",
            flags.max_bytes_for_level_base as i64,
        ),
        ("target_file_size_base", flags.target_file_size_base as i64),
    ] {
        m.unmatched(
            flag,
            value,
            "fjall's leveled strategy keeps its own defaults",
        );
    }

    if flags.writes_per_range_tombstone > 0 {
        m.unmatched(
            "writes_per_range_tombstone",
            flags.writes_per_range_tombstone,
            NO_RANGE_DELETE,
        );
    }

    m.durability = "journal flushed to the OS (write syscall, PersistMode::Buffer) before a write \
                    returns: fjall's default (manual_journal_persist = false)"
        .into();
    m.sync_durability =
        "persist(PersistMode::SyncData) (fdatasync of the journal) after each write".into();
    (o, m)
}

impl FjallEngine {
    /// A write transaction on the `OptimisticTxDatabase`, durable as `w`
    /// asks.
    fn begin(&self, w: WriteOpts) -> Result<OptimisticWriteTx> {
        let otx = self.optimistic.as_ref().ok_or_else(|| {
            BenchError::new("fjall: transactions need --optimistic_transaction_db")
        })?;
        let tx = otx.write_tx()?;
        // Without `sync` the transaction keeps fjall's default for the
        // database (its journal written to the OS, or left in user space
        // with `--disable_wal`).
        Ok(if w.sync {
            tx.durability(Some(PersistMode::SyncData))
        } else {
            tx
        })
    }

    #[inline]
    fn after_write(&self, w: WriteOpts) -> Result<()> {
        if w.sync {
            self.db.persist(PersistMode::SyncData)?;
        }
        Ok(())
    }
}

/// Why the range delete benchmarks report fjall unsupported.
const NO_RANGE_DELETE: &str = "fjall has no range delete (RocksDB's DeleteRange); \
                               the benchmarks that need one report it unsupported";

impl Engine for FjallEngine {
    const KIND: EngineKind = EngineKind::Fjall;
    const RANGE_DELETES: bool = false;
    type Scan<'a> = FjallScan;

    fn mapping(flags: &Flags) -> Mapping {
        fjall_options(flags).1
    }

    fn open(path: &Path, flags: &Flags) -> Result<Self> {
        let (options, _) = fjall_options(flags);
        let failed =
            |e: fjall::Error| BenchError::new(format!("fjall: open {}: {e}", path.display()));
        let names: Vec<String> = (0..flags.num_column_families as usize)
            .map(Flags::keyspace_name)
            .collect();
        if flags.optimistic_transaction_db {
            let otx = OptimisticTxDatabase::builder(path)
                .cache_size(flags.cache_size)
                .worker_threads(flags.max_background_jobs.max(1) as usize)
                .manual_journal_persist(flags.disable_wal)
                .journal_compression(fjall::CompressionType::None)
                .open()
                .map_err(failed)?;
            let trees = names
                .iter()
                .map(|name| {
                    otx.keyspace(name, || options.clone())
                        .map(|k| AsRef::<Keyspace>::as_ref(&k).clone())
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            // `inner` is public though hidden from fjall's docs: the base
            // database, for the flush, compaction and size calls.
            let db = otx.inner().clone();
            return Ok(FjallEngine {
                db,
                trees,
                optimistic: Some(otx),
            });
        }
        let db = Database::builder(path)
            .cache_size(flags.cache_size)
            .worker_threads(flags.max_background_jobs.max(1) as usize)
            .manual_journal_persist(flags.disable_wal)
            // Like strata's and RocksDB's WALs (the lz4 feature, needed
            // for --compression_type=zstd's closest match, would turn
            // journal compression on).
            .journal_compression(fjall::CompressionType::None)
            .open()
            .map_err(failed)?;
        let trees = names
            .iter()
            .map(|name| db.keyspace(name, || options.clone()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(FjallEngine {
            db,
            trees,
            optimistic: None,
        })
    }

    #[inline]
    fn put(&self, keyspace: usize, key: &[u8], value: &[u8], w: WriteOpts) -> Result<()> {
        self.trees[keyspace].insert(key, value)?;
        self.after_write(w)
    }

    #[inline]
    fn delete(&self, keyspace: usize, key: &[u8], w: WriteOpts) -> Result<()> {
        self.trees[keyspace].remove(key)?;
        self.after_write(w)
    }

    fn delete_range(&self, _: usize, _: &[u8], _: &[u8], _: WriteOpts) -> Result<()> {
        Err(BenchError::new(NO_RANGE_DELETE))
    }

    fn write(&self, batch: &Batch, w: WriteOpts) -> Result<()> {
        let mut b = self.db.batch();
        for (keyspace, k, op) in batch.iter() {
            match op {
                Op::Put(v) => b.insert(&self.trees[keyspace], k, v),
                Op::Delete => b.remove(&self.trees[keyspace], k),
                Op::DeleteRange(_) => return Err(BenchError::new(NO_RANGE_DELETE)),
                Op::Merge(_) => return Err(BenchError::new("fjall has no merge operator")),
            }
        }
        b.commit()?;
        self.after_write(w)
    }

    const TRANSACTIONS: bool = true;

    fn write_in_transaction(&self, batch: &Batch, w: WriteOpts) -> Result<()> {
        let mut tx = self.begin(w)?;
        for (keyspace, k, op) in batch.iter() {
            match op {
                Op::Put(v) => tx.insert(&self.trees[keyspace], k, v),
                Op::Delete => tx.remove(&self.trees[keyspace], k),
                Op::DeleteRange(_) => return Err(BenchError::new(NO_RANGE_DELETE)),
                Op::Merge(_) => return Err(BenchError::new("fjall has no merge operator")),
            }
        }
        match tx.commit()? {
            Ok(()) => Ok(()),
            Err(conflict) => Err(BenchError::new(format!(
                "fjall: a transaction of blind writes conflicted: {conflict}"
            ))),
        }
    }

    fn increment_in_transaction(&self, keys: &[Vec<u8>], delta: u64, w: WriteOpts) -> Result<bool> {
        let mut tx = self.begin(w)?;
        let tree = &self.trees[0];
        for k in keys {
            // fjall tracks every read of a write transaction (its `get` is
            // RocksDB's `GetForUpdate`): a commit after the snapshot
            // that wrote the key conflicts.
            let now = match tx.get(tree, k)? {
                Some(v) => parse_counter(&v),
                None => 0,
            };
            tx.insert(tree, k.as_slice(), (now + delta).to_string().as_bytes());
        }
        Ok(tx.commit()?.is_ok())
    }

    #[inline]
    fn get(&self, keyspace: usize, key: &[u8]) -> Result<Option<usize>> {
        Ok(self.trees[keyspace].get(key)?.map(|v| v.len()))
    }

    fn scan(&self, keyspace: usize, start: ScanStart<'_>) -> Result<FjallScan> {
        let tree = &self.trees[keyspace];
        let (iter, reverse) = match start {
            ScanStart::First => (tree.iter(), false),
            ScanStart::Last => (tree.iter(), true),
            ScanStart::Seek(k) => (tree.range(k..), false),
        };
        Ok(FjallScan {
            iter,
            reverse,
            current: None,
        })
    }

    fn flush(&self) -> Result<()> {
        for tree in &self.trees {
            tree.rotate_memtable_and_wait()?;
        }
        Ok(())
    }

    fn compact(&self) -> Result<bool> {
        for tree in &self.trees {
            tree.major_compact()?;
        }
        Ok(true)
    }

    fn wait_for_compactions(&self) -> Result<()> {
        // fjall has no wait call: poll its counters.
        while self.db.outstanding_flushes() > 0 || self.db.active_compactions() > 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    fn verify_checksums(&self) -> Result<bool> {
        Ok(false)
    }

    fn property(&self, p: Property) -> Option<String> {
        match p {
            Property::Stats => Some(format!(
                "fjall: {} tables ({} in L0), {} journals, {} bytes on disk, \
                 {} compactions done, {} running, {:.1} s compacting",
                self.trees.iter().map(Keyspace::table_count).sum::<usize>(),
                self.trees
                    .iter()
                    .map(Keyspace::l0_table_count)
                    .sum::<usize>(),
                self.db.journal_count(),
                self.db.disk_space().unwrap_or(0),
                self.db.compactions_completed(),
                self.db.active_compactions(),
                self.db.time_compacting().as_secs_f64()
            )),
            Property::LevelStats => Some(format!(
                "tables: {} ({} in L0)",
                self.trees.iter().map(Keyspace::table_count).sum::<usize>(),
                self.trees
                    .iter()
                    .map(Keyspace::l0_table_count)
                    .sum::<usize>()
            )),
            Property::SsTables | Property::Statistics => None,
        }
    }
}

pub struct FjallScan {
    iter: fjall::Iter,
    reverse: bool,
    current: Option<(UserKey, UserValue)>,
}

impl Scan for FjallScan {
    #[inline]
    fn next_entry(&mut self) -> Result<Option<(&[u8], &[u8])>> {
        let item = if self.reverse {
            self.iter.next_back()
        } else {
            self.iter.next()
        };
        self.current = match item {
            Some(guard) => Some(guard.into_inner()?),
            None => None,
        };
        Ok(self.current.as_ref().map(|(k, v)| (&k[..], &v[..])))
    }
}
