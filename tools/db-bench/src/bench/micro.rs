//! Micro benchmarks that touch no database: crc32c (the block checksum:
//! strata checksums blocks with CRC-32 via crc32fast, so that is what is
//! measured, over `--block_size` bytes, ~5 GB in all), compress and
//! uncompress (zstd over a `--block_size` value, 1 GiB in all), as
//! db_bench's `Crc32c`, `Compress` and `Uncompress`.

use super::{Ctx, ThreadState};
use crate::engine::Engine;
use crate::error::{BenchError, Result};
use crate::flags::{CompressionType, ZSTD_LEVEL};
use crate::stats::OpKind;
use crate::values::ValueGen;

pub fn crc32c<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState) -> Result<()> {
    let size = ctx.flags.block_size as usize;
    let data = vec![b'x'; size];
    let mut bytes = 0u64;
    let mut val = 0u32;
    while bytes < 5000 * 1_048_576 {
        val = val.wrapping_add(crc32fast::hash(std::hint::black_box(&data)));
        th.stats.finished_ops(1, OpKind::Crc);
        bytes += size as u64;
    }
    std::hint::black_box(val);
    th.stats.add_bytes(bytes);
    th.stats.add_message(&format!("({size} per op)"));
    Ok(())
}

fn zstd_err(e: std::io::Error) -> BenchError {
    BenchError::new(format!("zstd: {e}"))
}

pub fn compress<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState) -> Result<()> {
    if ctx.flags.compression_type == CompressionType::None {
        th.stats.add_message("(compression type not supported)");
        return Ok(());
    }
    let mut values = ValueGen::new(ctx.values);
    let input = values.generate(ctx.flags.block_size as usize).to_vec();
    let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(zstd_err)?;
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(input.len()));
    let (mut bytes, mut produced) = (0u64, 0u64);
    while bytes < 1 << 30 {
        out.clear();
        compressor
            .compress_to_buffer(&input, &mut out)
            .map_err(zstd_err)?;
        produced += out.len() as u64;
        bytes += input.len() as u64;
        th.stats.finished_ops(1, OpKind::Compress);
    }
    th.stats.add_message(&format!(
        "(output: {:.1}%)",
        produced as f64 * 100.0 / bytes as f64
    ));
    th.stats.add_bytes(bytes);
    Ok(())
}

pub fn uncompress<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState) -> Result<()> {
    if ctx.flags.compression_type == CompressionType::None {
        th.stats.add_message("(compression type not supported)");
        return Ok(());
    }
    let mut values = ValueGen::new(ctx.values);
    let input = values.generate(ctx.flags.block_size as usize).to_vec();
    let compressed = zstd::bulk::compress(&input, ZSTD_LEVEL).map_err(zstd_err)?;
    let mut decompressor = zstd::bulk::Decompressor::new().map_err(zstd_err)?;
    let mut out = Vec::with_capacity(input.len());
    let mut bytes = 0u64;
    while bytes < 1 << 30 {
        out.clear();
        decompressor
            .decompress_to_buffer(&compressed, &mut out)
            .map_err(zstd_err)?;
        bytes += input.len() as u64;
        th.stats.finished_ops(1, OpKind::Uncompress);
    }
    th.stats.add_bytes(bytes);
    Ok(())
}
