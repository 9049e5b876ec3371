//! `KeyspaceOptions`: the knobs each keyspace has for itself (RocksDB's
//! `ColumnFamilyOptions`); the rest of [`Options`] is the database's.

use crate::error::Result;
use crate::options::{Compression, CompressionOptions, Options};

/// How one keyspace stores its data: memtable size, table format, level
/// shape and triggers. RocksDB: `ColumnFamilyOptions`; each field has the
/// name and meaning of the [`Options`] field it overrides for this
/// keyspace.
///
/// [`Db::keyspace`](crate::Db::keyspace) uses the values the database was
/// opened with ([`Options::keyspace_options`]); `KeyspaceOptions::default()`
/// holds strata's defaults.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use strata::{Compression, Db, KeyspaceOptions, Options};
/// let db = Db::open(dir.path(), Options::default())?;
/// let events = db.keyspace_with(
///     "events",
///     KeyspaceOptions { compression: Compression::Zstd { level: 3 }, ..Default::default() },
/// )?;
/// events.put(b"2026-12-05", b"opened")?;
/// # Ok::<(), strata::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct KeyspaceOptions {
    /// [`Options::write_buffer_size`].
    pub write_buffer_size: usize,
    /// [`Options::max_write_buffer_number`].
    pub max_write_buffer_number: usize,
    /// [`Options::memtable_max_range_deletions`].
    pub memtable_max_range_deletions: usize,
    /// [`Options::max_sequential_skip_in_iterations`].
    pub max_sequential_skip_in_iterations: usize,
    /// [`Options::merge_operator`].
    pub merge_operator: Option<std::sync::Arc<dyn crate::MergeOperator>>,
    /// [`Options::max_successive_merges`].
    pub max_successive_merges: usize,
    /// [`Options::compaction_filter_factory`].
    pub compaction_filter_factory: Option<std::sync::Arc<dyn crate::CompactionFilterFactory>>,
    /// [`Options::default_ttl`].
    pub default_ttl: Option<std::time::Duration>,
    /// [`Options::periodic_compaction_seconds`].
    pub periodic_compaction_seconds: u64,
    /// [`Options::block_size`].
    pub block_size: usize,
    /// [`Options::block_restart_interval`].
    pub block_restart_interval: usize,
    /// [`Options::bloom_bits_per_key`].
    pub bloom_bits_per_key: u32,
    /// [`Options::compression`].
    pub compression: Compression,
    /// [`Options::compression_per_level`].
    pub compression_per_level: Vec<Compression>,
    /// [`Options::compression_opts`].
    pub compression_opts: CompressionOptions,
    /// [`Options::block_align`].
    pub block_align: bool,
    /// [`Options::level0_file_num_compaction_trigger`].
    pub level0_file_num_compaction_trigger: usize,
    /// [`Options::level0_slowdown_writes_trigger`].
    pub level0_slowdown_writes_trigger: usize,
    /// [`Options::level0_stop_writes_trigger`].
    pub level0_stop_writes_trigger: usize,
    /// [`Options::max_bytes_for_level_base`].
    pub max_bytes_for_level_base: u64,
    /// [`Options::max_bytes_for_level_multiplier`].
    pub max_bytes_for_level_multiplier: f64,
    /// [`Options::target_file_size_base`].
    pub target_file_size_base: u64,
    /// [`Options::num_levels`].
    pub num_levels: usize,
    /// [`Options::level_compaction_dynamic_level_bytes`].
    pub level_compaction_dynamic_level_bytes: bool,
    /// [`Options::enable_blob_files`].
    pub enable_blob_files: bool,
    /// [`Options::min_blob_size`].
    pub min_blob_size: u64,
    /// [`Options::blob_file_size`].
    pub blob_file_size: u64,
    /// [`Options::blob_compression_type`].
    pub blob_compression_type: Compression,
    /// [`Options::enable_blob_garbage_collection`].
    pub enable_blob_garbage_collection: bool,
    /// [`Options::blob_garbage_collection_age_cutoff`].
    pub blob_garbage_collection_age_cutoff: f64,
    /// [`Options::blob_garbage_collection_force_threshold`].
    pub blob_garbage_collection_force_threshold: f64,
    /// [`Options::blob_garbage_collection_min_garbage_ratio`].
    pub blob_garbage_collection_min_garbage_ratio: f64,
}

impl Default for KeyspaceOptions {
    fn default() -> Self {
        Options::default().keyspace_options()
    }
}

impl Options {
    /// The per-keyspace part of these options: what the default keyspace
    /// uses, and what [`Db::keyspace`](crate::Db::keyspace) gives a
    /// keyspace it creates.
    pub fn keyspace_options(&self) -> KeyspaceOptions {
        KeyspaceOptions {
            write_buffer_size: self.write_buffer_size,
            max_write_buffer_number: self.max_write_buffer_number,
            memtable_max_range_deletions: self.memtable_max_range_deletions,
            max_sequential_skip_in_iterations: self.max_sequential_skip_in_iterations,
            merge_operator: self.merge_operator.clone(),
            max_successive_merges: self.max_successive_merges,
            compaction_filter_factory: self.compaction_filter_factory.clone(),
            default_ttl: self.default_ttl,
            periodic_compaction_seconds: self.periodic_compaction_seconds,
            block_size: self.block_size,
            block_restart_interval: self.block_restart_interval,
            bloom_bits_per_key: self.bloom_bits_per_key,
            compression: self.compression.clone(),
            compression_per_level: self.compression_per_level.clone(),
            compression_opts: self.compression_opts.clone(),
            block_align: self.block_align,
            level0_file_num_compaction_trigger: self.level0_file_num_compaction_trigger,
            level0_slowdown_writes_trigger: self.level0_slowdown_writes_trigger,
            level0_stop_writes_trigger: self.level0_stop_writes_trigger,
            max_bytes_for_level_base: self.max_bytes_for_level_base,
            max_bytes_for_level_multiplier: self.max_bytes_for_level_multiplier,
            target_file_size_base: self.target_file_size_base,
            num_levels: self.num_levels,
            level_compaction_dynamic_level_bytes: self.level_compaction_dynamic_level_bytes,
            enable_blob_files: self.enable_blob_files,
            min_blob_size: self.min_blob_size,
            blob_file_size: self.blob_file_size,
            blob_compression_type: self.blob_compression_type.clone(),
            enable_blob_garbage_collection: self.enable_blob_garbage_collection,
            blob_garbage_collection_age_cutoff: self.blob_garbage_collection_age_cutoff,
            blob_garbage_collection_force_threshold: self.blob_garbage_collection_force_threshold,
            blob_garbage_collection_min_garbage_ratio: self
                .blob_garbage_collection_min_garbage_ratio,
        }
    }

    /// These options with the per-keyspace fields taken from `ks`: what
    /// the engine reads for that keyspace's memtables, tables and
    /// compactions. Fails as [`Options::validate`] does.
    pub(crate) fn for_keyspace(&self, ks: &KeyspaceOptions) -> Result<Options> {
        let options = Options {
            write_buffer_size: ks.write_buffer_size,
            max_write_buffer_number: ks.max_write_buffer_number,
            memtable_max_range_deletions: ks.memtable_max_range_deletions,
            max_sequential_skip_in_iterations: ks.max_sequential_skip_in_iterations,
            merge_operator: ks.merge_operator.clone(),
            max_successive_merges: ks.max_successive_merges,
            compaction_filter_factory: ks.compaction_filter_factory.clone(),
            default_ttl: ks.default_ttl,
            periodic_compaction_seconds: ks.periodic_compaction_seconds,
            block_size: ks.block_size,
            block_restart_interval: ks.block_restart_interval,
            bloom_bits_per_key: ks.bloom_bits_per_key,
            compression: ks.compression.clone(),
            compression_per_level: ks.compression_per_level.clone(),
            compression_opts: ks.compression_opts.clone(),
            block_align: ks.block_align,
            level0_file_num_compaction_trigger: ks.level0_file_num_compaction_trigger,
            level0_slowdown_writes_trigger: ks.level0_slowdown_writes_trigger,
            level0_stop_writes_trigger: ks.level0_stop_writes_trigger,
            max_bytes_for_level_base: ks.max_bytes_for_level_base,
            max_bytes_for_level_multiplier: ks.max_bytes_for_level_multiplier,
            target_file_size_base: ks.target_file_size_base,
            num_levels: ks.num_levels,
            level_compaction_dynamic_level_bytes: ks.level_compaction_dynamic_level_bytes,
            enable_blob_files: ks.enable_blob_files,
            min_blob_size: ks.min_blob_size,
            blob_file_size: ks.blob_file_size,
            blob_compression_type: ks.blob_compression_type.clone(),
            enable_blob_garbage_collection: ks.enable_blob_garbage_collection,
            blob_garbage_collection_age_cutoff: ks.blob_garbage_collection_age_cutoff,
            blob_garbage_collection_force_threshold: ks.blob_garbage_collection_force_threshold,
            blob_garbage_collection_min_garbage_ratio: ks.blob_garbage_collection_min_garbage_ratio,
            ..self.clone()
        };
        options.validate()?;
        Ok(options)
    }
}
