//! A checkpoint as one byte stream (docs/checkpoint-stream.md): what a
//! replication layer sends a new replica, written straight from the
//! source's files with no temporary directory, and installed from any
//! `Read` into an empty directory, every file checked.
//!
//! ```text
//! header: "STRATACP" | version u32 = 1 | sequence u64 | crc u32 (of the 20 bytes before)
//! entry:  tag u8 = 1 | name_len u16 | name | len u64 | crc u32 (of tag..len)
//!         | data[len] | data_crc u32
//! end:    tag u8 = 0 | file_count u32 | stream_crc u32 (of every byte before it)
//! ```
//! Integers are little-endian; CRCs are CRC-32 (IEEE). CURRENT is the
//! last entry.

use super::capture::Capture;
use crate::error::{Error, Result};
use crate::filename::{parse_file_name, FileKind};
use crate::fs::{FileSystem, WritableFile};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use strata_sstable::SeqNo;

/// The stream's first bytes.
pub const MAGIC: &[u8; 8] = b"STRATACP";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;
const TAG_END: u8 = 0;
const TAG_FILE: u8 = 1;
/// A strata file name is far shorter; longer is damage.
const MAX_NAME_BYTES: usize = 255;

/// What a stream was for a caller: `(sequence, files, bytes)`.
pub(crate) struct Sent {
    pub files: usize,
    pub bytes: u64,
}

/// A writer that keeps the CRC and count of what passed through it.
struct Crc<W> {
    inner: W,
    hasher: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> Crc<W> {
    fn put(&mut self, data: &[u8]) -> Result<()> {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        self.inner
            .write_all(data)
            .map_err(|e| Error::io("write checkpoint stream", "<writer>", e))
    }
}

/// Write `capture` to `out` in the stream format.
pub(crate) fn write_stream(
    fs: &dyn FileSystem,
    capture: &Capture,
    out: &mut impl Write,
) -> Result<Sent> {
    let mut w = Crc {
        inner: out,
        hasher: crc32fast::Hasher::new(),
        bytes: 0,
    };
    let mut header = Vec::with_capacity(24);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&capture.sequence.to_le_bytes());
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    w.put(&header)?;
    for file in &capture.files {
        let mut head = Vec::with_capacity(16 + file.name.len());
        head.push(TAG_FILE);
        head.extend_from_slice(&(file.name.len() as u16).to_le_bytes());
        head.extend_from_slice(file.name.as_bytes());
        head.extend_from_slice(&file.len.to_le_bytes());
        let crc = crc32fast::hash(&head);
        head.extend_from_slice(&crc.to_le_bytes());
        w.put(&head)?;
        let mut data_crc = crc32fast::Hasher::new();
        file.read_chunks(fs, |chunk| {
            data_crc.update(chunk);
            w.put(chunk)
        })?;
        w.put(&data_crc.finalize().to_le_bytes())?;
    }
    let mut end = vec![TAG_END];
    end.extend_from_slice(&(capture.files.len() as u32).to_le_bytes());
    w.put(&end)?;
    let stream_crc = w.hasher.clone().finalize();
    w.put(&stream_crc.to_le_bytes())?;
    w.inner
        .flush()
        .map_err(|e| Error::io("flush checkpoint stream", "<writer>", e))?;
    Ok(Sent {
        files: capture.files.len(),
        bytes: w.bytes,
    })
}

/// A reader that keeps the CRC of what it read and the offset.
struct Input<R> {
    inner: R,
    hasher: crc32fast::Hasher,
    offset: u64,
}

/// The path errors about the stream itself name.
fn stream_path() -> PathBuf {
    PathBuf::from("<checkpoint stream>")
}

impl<R: Read> Input<R> {
    fn take(&mut self, buf: &mut [u8]) -> Result<()> {
        self.inner.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::corruption(
                    stream_path(),
                    self.offset,
                    "the stream ends early: a checkpoint stream ends with its end record",
                )
            } else {
                Error::io("read checkpoint stream", stream_path(), e)
            }
        })?;
        self.hasher.update(buf);
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        self.take(&mut a)?;
        Ok(a)
    }

    fn bad(&self, at: u64, reason: impl Into<String>) -> Error {
        Error::corruption(stream_path(), at, reason)
    }
}

/// What [`install_stream`] installed: the sequence number and the file
/// count.
pub(crate) struct Installed {
    pub sequence: SeqNo,
    pub files: usize,
}

/// Read a stream from `input` into `dir` (missing or empty), checking
/// every CRC; CURRENT is written last, once the whole stream checked out,
/// so a failed install never leaves a directory that opens. On error the
/// files written are removed.
pub(crate) fn install_stream(
    fs: &dyn FileSystem,
    input: impl Read,
    dir: &Path,
) -> Result<Installed> {
    if fs.exists(dir) {
        let names = fs.list(dir).map_err(|e| Error::io("list", dir, e))?;
        if !names.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{} is not empty: a checkpoint is installed into an empty directory",
                dir.display()
            )));
        }
    }
    fs.create_dir_all(dir)
        .map_err(|e| Error::io("create directory", dir, e))?;
    let mut written = Vec::new();
    let result = install_into(fs, input, dir, &mut written);
    if result.is_err() {
        for path in &written {
            let _ = fs.remove(path);
        }
    }
    result
}

fn install_into(
    fs: &dyn FileSystem,
    input: impl Read,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<Installed> {
    let mut r = Input {
        inner: input,
        hasher: crc32fast::Hasher::new(),
        offset: 0,
    };
    let magic: [u8; 8] = r.array()?;
    if &magic != MAGIC {
        return Err(r.bad(0, "not a strata checkpoint stream (bad magic)"));
    }
    let version = u32::from_le_bytes(r.array()?);
    let sequence = u64::from_le_bytes(r.array()?);
    let mut header = Vec::from(&magic[..]);
    header.extend_from_slice(&version.to_le_bytes());
    header.extend_from_slice(&sequence.to_le_bytes());
    let crc = u32::from_le_bytes(r.array()?);
    if crc != crc32fast::hash(&header) {
        return Err(r.bad(0, "the stream header's checksum does not match"));
    }
    if version != VERSION {
        return Err(r.bad(
            8,
            format!("checkpoint stream version {version}; this strata reads {VERSION}"),
        ));
    }
    let mut names = BTreeSet::new();
    let mut current: Option<Vec<u8>> = None;
    loop {
        let at = r.offset;
        let [tag] = r.array::<1>()?;
        match tag {
            TAG_FILE => {}
            TAG_END => {
                let count = u32::from_le_bytes(r.array()?);
                let expected = r.hasher.clone().finalize();
                let crc = u32::from_le_bytes(r.array()?);
                if crc != expected {
                    return Err(r.bad(at, "the stream's checksum does not match"));
                }
                if count as usize != names.len() {
                    return Err(r.bad(
                        at,
                        format!(
                            "the end record counts {count} files, the stream held {}",
                            names.len()
                        ),
                    ));
                }
                let Some(current) = current else {
                    return Err(r.bad(at, "the stream holds no CURRENT file"));
                };
                check_current(&current, &names).map_err(|reason| r.bad(at, reason))?;
                let path = dir.join("CURRENT");
                write_whole(fs, &path, &current)?;
                written.push(path);
                fs.sync_dir(dir)
                    .map_err(|e| Error::io("sync directory", dir, e))?;
                return Ok(Installed {
                    sequence,
                    files: names.len(),
                });
            }
            other => return Err(r.bad(at, format!("unknown record tag {other}"))),
        }
        let name_len = u16::from_le_bytes(r.array()?) as usize;
        if name_len == 0 || name_len > MAX_NAME_BYTES {
            return Err(r.bad(at, format!("a file name of {name_len} bytes")));
        }
        let mut name = vec![0u8; name_len];
        r.take(&mut name)?;
        let len = u64::from_le_bytes(r.array()?);
        let mut head = vec![TAG_FILE];
        head.extend_from_slice(&(name_len as u16).to_le_bytes());
        head.extend_from_slice(&name);
        head.extend_from_slice(&len.to_le_bytes());
        let crc = u32::from_le_bytes(r.array()?);
        if crc != crc32fast::hash(&head) {
            return Err(r.bad(at, "a file header's checksum does not match"));
        }
        // Only the names a database directory holds: never a path.
        let name = String::from_utf8(name)
            .ok()
            .filter(|n| parse_file_name(n).is_some_and(FileKind::is_database_file))
            .ok_or_else(|| r.bad(at, "a file name that is not a strata database file's"))?;
        if !names.insert(name.clone()) {
            return Err(r.bad(at, format!("{name} appears twice")));
        }
        let path = dir.join(&name);
        let data_at = r.offset;
        let mut data_crc = crc32fast::Hasher::new();
        let mut buf = vec![0u8; len.min(super::capture::COPY_CHUNK_BYTES as u64) as usize];
        if name == "CURRENT" {
            if len > 4096 {
                return Err(r.bad(at, format!("a CURRENT of {len} bytes")));
            }
            let mut bytes = vec![0u8; len as usize];
            r.take(&mut bytes)?;
            data_crc.update(&bytes);
            current = Some(bytes);
        } else {
            let mut out: Box<dyn WritableFile> = fs
                .create(&path)
                .map_err(|e| Error::io("create", &path, e))?;
            written.push(path.clone());
            let mut left = len;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                r.take(&mut buf[..n])?;
                data_crc.update(&buf[..n]);
                out.append(&buf[..n])
                    .map_err(|e| Error::io("append", &path, e))?;
                left -= n as u64;
            }
            out.sync().map_err(|e| Error::io("sync", &path, e))?;
        }
        let crc = u32::from_le_bytes(r.array()?);
        if crc != data_crc.finalize() {
            return Err(Error::corruption(
                &path,
                0,
                format!("its checksum in the checkpoint stream (at byte {data_at}) does not match its {len} bytes"),
            ));
        }
    }
}

/// CURRENT must name a manifest the stream held.
fn check_current(current: &[u8], names: &BTreeSet<String>) -> std::result::Result<(), String> {
    let name = std::str::from_utf8(current)
        .ok()
        .and_then(|s| s.strip_suffix('\n'))
        .filter(|s| matches!(parse_file_name(s), Some(FileKind::Manifest(_))))
        .ok_or("CURRENT does not name a manifest")?;
    if !names.contains(name) {
        return Err(format!(
            "CURRENT names {name}, which the stream does not hold"
        ));
    }
    Ok(())
}

/// Write `data` as the whole of `path`, synced.
fn write_whole(fs: &dyn FileSystem, path: &Path, data: &[u8]) -> Result<()> {
    let mut f = fs.create(path).map_err(|e| Error::io("create", path, e))?;
    f.append(data)
        .and_then(|_| f.sync())
        .map_err(|e| Error::io("write", path, e))
}
