//! sled 0.34 behind the [`Engine`] trait. Built only with `--features sled`.

use super::{Batch, Engine, EngineKind, Mapping, Op, Property, Scan, ScanStart, WriteOpts};
use crate::error::{BenchError, Result};
use crate::flags::{CompressionType, Flags};
use sled::IVec;
use std::path::Path;

pub struct SledEngine {
    db: sled::Db,
}

impl From<sled::Error> for BenchError {
    fn from(e: sled::Error) -> Self {
        BenchError::new(format!("sled: {e}"))
    }
}

/// sled's own default: its write buffers are flushed (and fsynced) every
/// 500 ms by a background thread.
const FLUSH_EVERY_MS: u64 = 500;

fn sled_mapping(flags: &Flags) -> Mapping {
    let mut m = Mapping::default();
    m.map("cache_size", flags.cache_size, "Config::cache_capacity");
    if flags.compression_type == CompressionType::Zstd {
        m.unmatched(
            "compression_type",
            "zstd",
            "needs sled's `compression` feature; off",
        );
    }
    for (flag, value) in [
        ("write_buffer_size", flags.write_buffer_size.to_string()),
        (
            "max_write_buffer_number",
            flags.max_write_buffer_number.to_string(),
        ),
        ("block_size", flags.block_size.to_string()),
        ("bloom_bits", flags.bloom_bits_per_key().to_string()),
        ("disable_wal", flags.disable_wal.to_string()),
    ] {
        m.unmatched(flag, value, "sled is a B-tree with a log; no such knob");
    }
    m.unmatched(
        "level0_*/max_bytes_for_level_base/target_file_size_base/max_background_jobs",
        "-",
        "not an LSM tree",
    );
    if flags.writes_per_range_tombstone > 0 {
        m.unmatched(
            "writes_per_range_tombstone",
            flags.writes_per_range_tombstone,
            NO_RANGE_DELETE,
        );
    }
    m.durability = format!(
        "WEAKER than the others: writes stay in sled's user-space buffers until its \
         background flush (every {FLUSH_EVERY_MS} ms); sled cannot hand each write to the OS"
    );
    m.sync_durability = "Db::flush() (write + fsync) after each write".into();
    m
}

impl SledEngine {
    /// A sync write flushes sled (it has no per-write fsync).
    #[inline]
    fn after_write(&self, w: WriteOpts) -> Result<()> {
        if w.sync {
            self.db.flush()?;
        }
        Ok(())
    }
}

/// Why the range delete benchmarks report sled unsupported.
const NO_RANGE_DELETE: &str = "sled has no range delete (RocksDB's DeleteRange); \
                               the benchmarks that need one report it unsupported";

impl Engine for SledEngine {
    const KIND: EngineKind = EngineKind::Sled;
    const RANGE_DELETES: bool = false;
    type Scan<'a> = SledScan;

    fn mapping(flags: &Flags) -> Mapping {
        sled_mapping(flags)
    }

    fn open(path: &Path, flags: &Flags) -> Result<Self> {
        // sled's trees would do, but a batch over several is a
        // transaction, not the plain batch the others write.
        if flags.num_column_families > 1 {
            return Err(BenchError::usage(
                "sled: --num_column_families above 1 is not supported by the sled adapter",
            ));
        }
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(flags.cache_size)
            .flush_every_ms(Some(FLUSH_EVERY_MS))
            .open()
            .map_err(|e| BenchError::new(format!("sled: open {}: {e}", path.display())))?;
        Ok(SledEngine { db })
    }

    #[inline]
    fn put(&self, _keyspace: usize, key: &[u8], value: &[u8], w: WriteOpts) -> Result<()> {
        self.db.insert(key, value)?;
        self.after_write(w)
    }

    #[inline]
    fn delete(&self, _keyspace: usize, key: &[u8], w: WriteOpts) -> Result<()> {
        self.db.remove(key)?;
        self.after_write(w)
    }

    fn delete_range(&self, _: usize, _: &[u8], _: &[u8], _: WriteOpts) -> Result<()> {
        Err(BenchError::new(NO_RANGE_DELETE))
    }

    fn write(&self, batch: &Batch, w: WriteOpts) -> Result<()> {
        let mut b = sled::Batch::default();
        for (_, k, op) in batch.iter() {
            match op {
                Op::Put(v) => b.insert(k, v),
                Op::Delete => b.remove(k),
                Op::DeleteRange(_) => return Err(BenchError::new(NO_RANGE_DELETE)),
                Op::Merge(_) => return Err(BenchError::new("sled has no merge operator")),
            }
        }
        self.db.apply_batch(b)?;
        self.after_write(w)
    }

    #[inline]
    fn get(&self, _keyspace: usize, key: &[u8]) -> Result<Option<usize>> {
        Ok(self.db.get(key)?.map(|v| v.len()))
    }

    fn scan(&self, _keyspace: usize, start: ScanStart<'_>) -> Result<SledScan> {
        let (iter, reverse) = match start {
            ScanStart::First => (self.db.iter(), false),
            ScanStart::Last => (self.db.iter(), true),
            ScanStart::Seek(k) => (self.db.range(k..), false),
        };
        Ok(SledScan {
            iter,
            reverse,
            current: None,
        })
    }

    fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    fn compact(&self) -> Result<bool> {
        Ok(false) // sled compacts its log segments on its own
    }

    fn wait_for_compactions(&self) -> Result<()> {
        Ok(())
    }

    fn verify_checksums(&self) -> Result<bool> {
        Ok(false)
    }

    fn property(&self, p: Property) -> Option<String> {
        match p {
            Property::Stats => Some(format!(
                "sled: {} bytes on disk, {} entries",
                self.db.size_on_disk().unwrap_or(0),
                self.db.len()
            )),
            Property::LevelStats | Property::SsTables | Property::Statistics => None,
        }
    }
}

pub struct SledScan {
    iter: sled::Iter,
    reverse: bool,
    current: Option<(IVec, IVec)>,
}

impl Scan for SledScan {
    #[inline]
    fn next_entry(&mut self) -> Result<Option<(&[u8], &[u8])>> {
        let item = if self.reverse {
            self.iter.next_back()
        } else {
            self.iter.next()
        };
        self.current = item.transpose()?;
        Ok(self.current.as_ref().map(|(k, v)| (&k[..], &v[..])))
    }
}
