//! sst-dump run as a binary on databases the engine wrote: scans list what
//! was written, bounds bound it, damage is found at the damaged block's
//! offset with exit status 1, WAL and MANIFEST dumps match the writes and
//! the engine's version, and directory mode agrees with `Db::live_files`.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use strata::inspect::LargestBound;
use strata::{Db, LiveFile, Options, WriteBatch};
use strata_sstable::bytes::Bytes;
use strata_sstable::{Table, TableReadOptions, FOOTER_LEN};

/// What one run printed and how it exited.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

fn sst_dump(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_sst-dump"))
        .args(args)
        .output()
        .expect("run sst-dump");
    Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn file_arg(path: &Path) -> String {
    format!("--file={}", path.display())
}

/// Runs with `--file=path` first.
fn dump(path: &Path, args: &[&str]) -> Run {
    let file = file_arg(path);
    let mut all = vec![file.as_str()];
    all.extend_from_slice(args);
    sst_dump(&all)
}

fn small_options() -> Options {
    Options {
        write_buffer_size: 64 * 1024,
        block_size: 1024,
        ..Options::default()
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn value(i: usize) -> Vec<u8> {
    format!("value-{i}-{}", "x".repeat(i % 40)).into_bytes()
}

/// An entry as the scan shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    key: Vec<u8>,
    seq: u64,
    put: bool,
    value: Vec<u8>,
}

/// The entries of the one table `build_one_table` writes, in table order.
const ONE_TABLE_KEYS: usize = 600;

/// A closed database holding one table with every third key deleted
/// (tombstones for keys never put), keys written in a shuffled order so
/// that sequence numbers and key order differ, plus one key with bytes
/// that must be escaped. Returns the table path and its entries in order.
fn build_one_table(dir: &Path) -> (PathBuf, Vec<Entry>) {
    let db = Db::open(
        dir,
        Options {
            block_size: 1024,
            ..Options::default()
        },
    )
    .unwrap();
    let mut entries = Vec::new();
    let mut seq = 0;
    for j in 0..ONE_TABLE_KEYS {
        let i = (j * 7) % ONE_TABLE_KEYS; // 7 is prime to 600: a permutation
        seq += 1;
        let put = matches!(i % 3, 1 | 2); // every third key is only ever deleted
        if put {
            db.put(key(i), value(i)).unwrap();
        } else {
            db.delete(key(i)).unwrap();
        }
        entries.push(Entry {
            key: key(i),
            seq,
            put,
            value: if put { value(i) } else { Vec::new() },
        });
    }
    let odd = b"odd\x00\x1b[2J\xff\n".to_vec();
    db.put(&odd, b"\x07bell").unwrap();
    entries.push(Entry {
        key: odd,
        seq: seq + 1,
        put: true,
        value: b"\x07bell".to_vec(),
    });
    db.flush().unwrap();
    let live = db.live_files();
    assert_eq!(live.len(), 1, "one flush, one table: {live:?}");
    drop(db);
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    (dir.join(format!("{:06}.sst", live[0].number)), entries)
}

fn escaped(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

fn scan_line(e: &Entry) -> String {
    format!(
        "'{}' seq:{}, type:{} => {}",
        escaped(&e.key),
        e.seq,
        u8::from(e.put),
        escaped(&e.value)
    )
}

/// The entry lines of a text scan (the first line shows the bounds).
fn scan_lines(run: &Run) -> Vec<String> {
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    run.stdout.lines().skip(1).map(str::to_string).collect()
}

fn open_table(path: &Path) -> Table {
    let bytes = Bytes::from(std::fs::read(path).unwrap());
    Table::open(bytes, TableReadOptions::default()).unwrap()
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn scan_lists_exactly_the_entries_written() {
    let dir = tempfile::tempdir().unwrap();
    let (sst, entries) = build_one_table(dir.path());
    let expected: Vec<String> = entries.iter().map(scan_line).collect();
    let run = dump(&sst, &["--command=scan"]);
    assert_eq!(scan_lines(&run), expected);
    assert!(
        run.stdout
            .bytes()
            .all(|b| b == b'\n' || (0x20..0x7f).contains(&b)),
        "only printable ASCII reaches the terminal"
    );

    let json = dump(&sst, &["--command=scan", "--json"]).json();
    assert_eq!(json["kind"], "table");
    assert_eq!(json["ok"], true);
    let got = json["entries"].as_array().unwrap();
    assert_eq!(got.len(), entries.len());
    for (g, e) in got.iter().zip(&entries) {
        assert_eq!(g["key"], escaped(&e.key));
        assert_eq!(g["seq"], e.seq);
        assert_eq!(g["kind"], if e.put { "PUT" } else { "DELETE" });
        assert_eq!(g["value"], escaped(&e.value));
    }
}

#[test]
fn from_to_prefix_and_read_num_bound_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let (sst, entries) = build_one_table(dir.path());
    let lines = |f: &dyn Fn(&Entry) -> bool| -> Vec<String> {
        entries.iter().filter(|e| f(e)).map(scan_line).collect()
    };

    // --from inclusive, --to exclusive, both on user keys.
    let run = dump(
        &sst,
        &["--command=scan", "--from=key00100", "--to=key00200"],
    );
    let want =
        lines(&|e| e.key.as_slice() >= &b"key00100"[..] && e.key.as_slice() < &b"key00200"[..]);
    assert_eq!(want.len(), 100);
    assert_eq!(scan_lines(&run), want);

    // Bounds that fall between keys, and open-ended ones.
    let run = dump(&sst, &["--command=scan", "--from=key00099x"]);
    assert_eq!(
        scan_lines(&run),
        lines(&|e| e.key.as_slice() > &b"key00099x"[..])
    );
    let run = dump(&sst, &["--command=scan", "--to=key00005"]);
    assert_eq!(
        scan_lines(&run),
        lines(&|e| e.key.as_slice() < &b"key00005"[..])
    );
    let run = dump(&sst, &["--command=scan", "--from=zzz"]);
    assert_eq!(scan_lines(&run), Vec::<String>::new());

    let run = dump(&sst, &["--command=scan", "--prefix=key003"]);
    let want = lines(&|e| e.key.starts_with(b"key003"));
    assert_eq!(want.len(), 100);
    assert_eq!(scan_lines(&run), want);

    let run = dump(
        &sst,
        &["--command=scan", "--prefix=key0031", "--read_num=4"],
    );
    let want: Vec<String> = lines(&|e| e.key.starts_with(b"key0031"))
        .into_iter()
        .take(4)
        .collect();
    assert_eq!(scan_lines(&run), want);

    // Hex in: "key004" is 6B 65 79 30 30 34. Hex out: keys and values.
    let run = dump(
        &sst,
        &[
            "--command=scan",
            "--input_key_hex",
            "--prefix=0x6B6579303034",
        ],
    );
    assert_eq!(scan_lines(&run), lines(&|e| e.key.starts_with(b"key004")));
    let run = dump(
        &sst,
        &[
            "--command=scan",
            "--output_hex",
            "--from=key00001",
            "--read_num=1",
        ],
    );
    let seq = entries.iter().find(|e| e.key == b"key00001").unwrap().seq;
    assert_eq!(
        scan_lines(&run),
        [format!(
            "'0x6B65793030303031' seq:{seq}, type:1 => 0x76616C75652D312D78"
        )]
    );
}

#[test]
fn check_and_verify_pass_on_healthy_files() {
    let dir = tempfile::tempdir().unwrap();
    let (sst, entries) = build_one_table(dir.path());
    let run = dump(&sst, &[]);
    assert_eq!(run.code, 0, "check is the default: {}", run.stdout);
    assert!(run
        .stdout
        .contains(&format!("read {} entries", entries.len())));
    let json = dump(&sst, &["--command=check", "--json"]).json();
    assert_eq!(json["command"], "check");
    assert_eq!(json["entries_read"], entries.len());
    assert_eq!(json["properties_entries"], entries.len());
    assert_eq!(
        json["deletions_read"],
        entries.iter().filter(|e| !e.put).count()
    );

    let run = dump(&sst, &["--command=verify"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "ok\n"));

    let run = dump(&sst, &["--show_properties", "--list_meta_blocks"]);
    assert_eq!(run.code, 0);
    assert!(run
        .stdout
        .contains(&format!("  # entries: {}", entries.len())));
    assert!(run.stdout.contains("strata.properties: offset"));
}

/// Checks that `check` and `verify` exit 1 naming `offset` on a copy of
/// `sst` with one byte flipped at `flip_at`.
fn assert_damage_found(sst: &Path, flip_at: u64, offset: u64, what: &str) {
    let damaged = sst.with_extension("damaged");
    std::fs::copy(sst, &damaged).unwrap();
    flip(&damaged, flip_at);
    for command in ["--command=check", "--command=verify", "--command=scan"] {
        let run = dump(&damaged, &[command]);
        assert_eq!(
            run.code, 1,
            "{what}, {command}: {}{}",
            run.stdout, run.stderr
        );
        let needle = format!("corruption at offset {offset}: ");
        assert!(
            run.stdout.contains(&needle),
            "{what}, {command}: {}",
            run.stdout
        );
        assert!(
            run.stdout.contains(what),
            "{what}, {command}: {}",
            run.stdout
        );
    }
    let json = dump(&damaged, &["--command=verify", "--json"]).json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["problem"]["offset"], offset);
}

#[test]
fn a_flipped_byte_is_found_at_its_blocks_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (sst, _) = build_one_table(dir.path());
    let table = open_table(&sst);
    let blocks = table.index_entries().unwrap();
    assert!(blocks.len() > 5, "several data blocks: {}", blocks.len());

    let (_, data_block) = blocks[3];
    assert_damage_found(
        &sst,
        data_block.offset + data_block.size / 2,
        data_block.offset,
        "data block checksum mismatch",
    );
    let index = table.footer().index;
    assert_damage_found(
        &sst,
        index.offset + 1,
        index.offset,
        "index block checksum mismatch",
    );
    let footer = table.file_size() - FOOTER_LEN as u64;
    assert_damage_found(&sst, footer + 3, footer, "footer checksum mismatch");

    // raw dumps around the damage and names the block.
    let damaged = sst.with_extension("damaged");
    std::fs::copy(&sst, &damaged).unwrap();
    flip(&damaged, data_block.offset + 2);
    let run = dump(&damaged, &["--command=raw"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let text = std::fs::read_to_string(format!("{}_dump.txt", damaged.display())).unwrap();
    assert!(text.contains(&format!(
        "data block 3 @ offset {}, {} bytes stored, compression none",
        data_block.offset, data_block.size
    )));
    assert!(text.contains("(MISMATCH)"), "{text}");
}

/// A copy of a format-version-1 table main wrote before version 2 existed
/// (strata-sstable's fixture), in `dir`: raw writes beside its input.
fn version_1_fixture(dir: &Path) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../sstable/tests/fixtures/format-v1/none.sst");
    let copy = dir.join("000001.sst");
    std::fs::copy(fixture, &copy).unwrap();
    copy
}

#[test]
fn a_version_1_table_checks_scans_and_dumps_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let sst = version_1_fixture(dir.path());
    let run = dump(&sst, &["--command=check"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout.contains("read 24 entries (6 deletions)"),
        "{}",
        run.stdout
    );
    let run = dump(&sst, &["--command=verify"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "ok\n"));
    let scan = dump(&sst, &["--command=scan"]);
    let lines = scan_lines(&scan);
    assert_eq!(lines.len(), 24);
    assert_eq!(lines[0], "'k00' seq:50, type:1 => v00v00");

    let run = dump(&sst, &["--show_properties"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("  format version: 1\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("  data block alignment: 0\n"),
        "{}",
        run.stdout
    );
    let run = dump(&sst, &["--command=raw"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let text = std::fs::read_to_string(format!("{}_dump.txt", sst.display())).unwrap();
    assert!(text.contains("  format version: 1\n"), "{text}");
    assert!(text.contains("'k22' seq:49"), "{text}");
}

#[test]
fn a_version_5_table_shows_its_alignment_and_nonzero_padding_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (sst, _) = build_one_table(dir.path());
    let run = dump(&sst, &["--show_properties"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("  format version: 5\n"),
        "{}",
        run.stdout
    );
    // block_size 1024: blocks start on multiples of 1 KiB.
    assert!(
        run.stdout.contains("  data block alignment: 1024\n"),
        "{}",
        run.stdout
    );

    let table = open_table(&sst);
    let blocks = table.index_entries().unwrap();
    let (gap_start, gap_end) = blocks
        .windows(2)
        .map(|w| (w[0].1.end_with_trailer().unwrap(), w[1].1.offset))
        .find(|(end, next)| next > end)
        .expect("padding between two data blocks");
    assert_eq!(gap_end % 1024, 0);
    let damaged = sst.with_extension("damaged");
    std::fs::copy(&sst, &damaged).unwrap();
    flip(&damaged, gap_start);
    // No entry covers padding, so only the commands that check the whole
    // file see it.
    for command in ["--command=check", "--command=verify"] {
        let run = dump(&damaged, &[command]);
        assert_eq!(run.code, 1, "{command}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains(&format!(
                "corruption at offset {gap_start}: padding after a data block is not zero"
            )),
            "{command}: {}",
            run.stdout
        );
    }
}

#[test]
fn raw_writes_every_block_and_recompress_reports_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let (sst, entries) = build_one_table(dir.path());
    let table = open_table(&sst);
    let run = dump(&sst, &["--command=raw"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let text = std::fs::read_to_string(format!("{}_dump.txt", sst.display())).unwrap();
    for section in [
        "Footer Details",
        "Metaindex Details",
        "Table Properties",
        "Filter Details",
        "Index Details",
        "Data Blocks",
    ] {
        assert!(text.contains(section), "{section}");
    }
    for (i, (_, h)) in table.index_entries().unwrap().iter().enumerate() {
        assert!(text.contains(&format!("data block {i} @ offset {}, ", h.offset)));
        assert!(text.contains(&format!(
            "block handle: offset {}, size {}",
            h.offset, h.size
        )));
    }
    for e in &entries {
        assert!(text.contains(&format!("  {}\n", scan_line(e))), "{e:?}");
    }

    let json = dump(
        &sst,
        &["--command=recompress", "--compression_levels=1,3", "--json"],
    )
    .json();
    let trials = json["trials"].as_array().unwrap();
    let names: Vec<&str> = trials
        .iter()
        .map(|t| t["compression"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["none", "zstd:1", "zstd:3"]);
    assert_eq!(
        trials[0]["file_size"],
        table.file_size(),
        "same options, same table"
    );
    assert!(trials[1]["file_size"].as_u64() < trials[0]["file_size"].as_u64());
    assert_eq!(json["entries"], entries.len());
}

#[test]
fn a_version_2_table_checks_and_shows_its_alignment_as_before() {
    // Written by the builder of 80a29ca (padding after every block).
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../sstable/tests/fixtures/before-v3/none.sst");
    let sst = dir.path().join("000001.sst");
    std::fs::copy(fixture, &sst).unwrap();
    let run = dump(&sst, &["--show_properties"]);
    assert_eq!(run.code, 0);
    for line in ["  format version: 2\n", "  data block alignment: 256\n"] {
        assert!(run.stdout.contains(line), "{}", run.stdout);
    }
    for command in ["--command=check", "--command=verify"] {
        let run = dump(&sst, &[command]);
        assert_eq!(run.code, 0, "{command}: {}", run.stdout);
    }
    assert_eq!(scan_lines(&dump(&sst, &["--command=scan"])).len(), 24);
}

#[test]
fn a_table_of_4_kib_values_dumps_checks_and_recompresses_at_about_its_data() {
    // Values of 4 KiB (a block of one entry is a little over a unit,
    // written without padding) and of 50 bytes (blocks that fit one).
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let value_of =
        |i: usize| vec![b'a' + (i % 26) as u8; if i.is_multiple_of(3) { 50 } else { 4096 }];
    let mut data = 0;
    for i in 0..300 {
        db.put(key(i), value_of(i)).unwrap();
        data += key(i).len() + 8 + value_of(i).len();
    }
    db.flush().unwrap();
    let live = db.live_files();
    assert_eq!(live.len(), 1, "{live:?}");
    drop(db);
    let sst = dir.path().join(format!("{:06}.sst", live[0].number));
    let table = open_table(&sst);
    // Version 2 padded every 4 KiB entry's block to 8 KiB.
    assert!(
        table.file_size() < (data + data / 20) as u64,
        "{} bytes for {data}",
        table.file_size()
    );
    let run = dump(&sst, &["--show_properties"]);
    assert_eq!(run.code, 0);
    for line in ["  format version: 5\n", "  data block alignment: 4096\n"] {
        assert!(run.stdout.contains(line), "{}", run.stdout);
    }
    for command in ["--command=check", "--command=verify"] {
        let run = dump(&sst, &[command]);
        assert_eq!(run.code, 0, "{command}: {}", run.stdout);
    }
    let scan = dump(&sst, &["--command=scan"]);
    assert_eq!(scan_lines(&scan).len(), 300);
    let run = dump(&sst, &["--command=raw"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    // Recompress rebuilds with the table's options: the same layout.
    let json = dump(
        &sst,
        &["--command=recompress", "--compression_levels=1", "--json"],
    )
    .json();
    let trials = json["trials"].as_array().unwrap();
    assert_eq!(trials[0]["compression"], "none");
    assert_eq!(trials[0]["file_size"], table.file_size());
}

/// Writes batches without flushing; the WAL holds them after close.
#[test]
fn wal_dump_shows_every_batch_and_how_the_log_ends() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let mut expected = Vec::new();
    let mut seq = 1;
    for b in 0..50usize {
        let mut batch = WriteBatch::new();
        let mut ops = Vec::new();
        for i in 0..(b % 4 + 1) {
            let k = key(b * 10 + i);
            if (b + i) % 5 == 0 {
                batch.delete(&k);
                ops.push(format!("DELETE '{}'", escaped(&k)));
            } else {
                batch.put(&k, value(b));
                ops.push(format!("PUT '{}'", escaped(&k)));
            }
        }
        expected.push((seq, ops.len(), ops.join(" ")));
        seq += ops.len() as u64;
        db.write(batch).unwrap();
    }
    drop(db);
    let wal = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();

    let run = dump(&wal, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let mut lines = run.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("Sequence,Count,ByteSize,Physical Offset,Key(s)")
    );
    let json = dump(&wal, &["--json"]).json();
    assert_eq!(json["kind"], "wal");
    let records = json["records"].as_array().unwrap();
    assert_eq!(records.len(), expected.len());
    let log_len = std::fs::metadata(&wal).unwrap().len();
    for ((r, line), (seq, count, ops)) in records.iter().zip(lines).zip(&expected) {
        let prefix = format!("{seq},{count},{},{},", r["byte_size"], r["offset"]);
        assert_eq!(line, format!("{prefix}{ops}"));
        assert_eq!(r["sequence"], *seq);
    }
    assert_eq!(json["end"]["state"], "clean");
    assert_eq!(json["end"]["offset"], log_len);

    // A torn tail is the normal end after a crash: reported, exit 0. (The
    // clean close sealed the log after its last record; cut into that
    // record.)
    let torn = dir.path().join("torn.log");
    let bytes = std::fs::read(&wal).unwrap();
    let last = records.last().unwrap()["offset"].as_u64().unwrap();
    std::fs::write(&torn, &bytes[..last as usize + 10]).unwrap();
    let json = dump(&torn, &["--json"]).json();
    assert_eq!(json["end"]["state"], "torn_tail");
    assert_eq!(json["end"]["offset"], last);
    assert_eq!(
        json["records"].as_array().unwrap().len(),
        expected.len() - 1
    );
    assert_eq!(dump(&torn, &["--command=verify"]).code, 0);

    // Damage before valid records is corruption, at the damaged record.
    let second = records[1]["offset"].as_u64().unwrap();
    let corrupt = dir.path().join("corrupt.log");
    let mut bytes = bytes.clone();
    bytes[second as usize + 9] ^= 1;
    std::fs::write(&corrupt, &bytes).unwrap();
    let run = dump(&corrupt, &["--command=verify"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("corruption at offset {second}: checksum mismatch")),
        "{}",
        run.stdout
    );
    let json = dump(&corrupt, &["--json"]).json();
    assert_eq!(
        json["records"].as_array().unwrap().len(),
        expected.len() - 1,
        "the others are still shown"
    );
}

fn live_files_json(tables: &Value) -> Vec<LiveFile> {
    let mut files: Vec<LiveFile> = tables
        .as_array()
        .unwrap()
        .iter()
        .map(|t| LiveFile {
            keyspace: t["keyspace"].as_str().unwrap_or("default").into(),
            level: t["level"].as_u64().unwrap() as usize,
            number: t["number"].as_u64().unwrap(),
            size: t["size"].as_u64().unwrap(),
            smallest: t["smallest"].as_str().unwrap().as_bytes().to_vec(),
            largest: t["largest"].as_str().unwrap().as_bytes().to_vec(),
            largest_bound: match t["largest_bound"].as_str() {
                None => LargestBound::Included,
                Some("excluded") => LargestBound::Excluded,
                Some("unbounded") => LargestBound::Unbounded,
                Some(other) => panic!("largest_bound {other:?}"),
            },
            smallest_seqno: t["smallest_seqno"].as_u64().unwrap(),
            largest_seqno: t["largest_seqno"].as_u64().unwrap(),
            num_entries: t["num_entries"].as_u64().unwrap_or(0),
            num_deletions: t["num_deletions"].as_u64().unwrap_or(0),
        })
        .collect();
    files.sort_by_key(|f| f.number);
    files
}

/// The live tables of a MANIFEST dump's JSON, each with its keyspace's
/// name as directory mode gives it.
fn manifest_tables(json: &Value) -> Vec<Value> {
    let mut tables = Vec::new();
    for ks in json["live"]["keyspaces"].as_array().unwrap() {
        for level in ks["levels"].as_array().unwrap() {
            for t in level.as_array().unwrap() {
                let mut t = t.clone();
                t["keyspace"] = ks["name"].clone();
                tables.push(t);
            }
        }
    }
    tables
}

fn sorted(mut files: Vec<LiveFile>) -> Vec<LiveFile> {
    files.sort_by_key(|f| f.number);
    files
}

/// A database with several tables, open. How many memtables a flush
/// takes at once, and when compaction merges L0, depend on the background
/// threads' timing: the tables come from explicit flushes (at least six)
/// and compaction never starts, so the count does not.
fn build_many_tables(dir: &Path) -> Db {
    let options = Options {
        level0_file_num_compaction_trigger: 1000,
        level0_slowdown_writes_trigger: 1000,
        level0_stop_writes_trigger: 1000,
        ..small_options()
    };
    let db = Db::open(dir, options).unwrap();
    for i in 0..3000 {
        db.put(key(i * 7919 % 3000), value(i)).unwrap();
        if i % 10 == 0 {
            db.delete(key(i / 2)).unwrap();
        }
        if i % 500 == 499 {
            db.flush().unwrap();
        }
    }
    db.flush().unwrap();
    db.wait_for_compactions().unwrap();
    db
}

#[test]
fn manifest_dump_gives_the_engines_live_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_many_tables(dir.path());
    let live = sorted(db.live_files());
    assert!(live.len() >= 3, "{live:?}");
    drop(db);
    let current = std::fs::read_to_string(dir.path().join("CURRENT")).unwrap();
    let manifest = dir.path().join(current.trim_end());

    let run = dump(&manifest, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    for f in &live {
        let line = format!(
            " {}:{}[{} .. {}]['{}' .. '{}']",
            f.number,
            f.size,
            f.smallest_seqno,
            f.largest_seqno,
            escaped(&f.smallest),
            escaped(&f.largest)
        );
        assert!(run.stdout.contains(&line), "{line}\n{}", run.stdout);
    }
    assert!(run.stdout.contains("--- level 0 --- version# "));

    let json = dump(&manifest, &["--json"]).json();
    assert_eq!(json["kind"], "manifest");
    let tables = manifest_tables(&json);
    let mut got = live_files_json(&Value::Array(tables));
    for (g, l) in got.iter_mut().zip(&live) {
        (g.num_entries, g.num_deletions) = (l.num_entries, l.num_deletions);
    }
    assert_eq!(got, live);
    // Every live table was added by some edit.
    let added: Vec<u64> = json["edits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["added"].as_array().unwrap().clone())
        .map(|f| f["number"].as_u64().unwrap())
        .collect();
    assert!(live.iter().all(|f| added.contains(&f.number)));
}

#[test]
fn directory_mode_lists_the_engines_version_without_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_many_tables(dir.path());
    let live = sorted(db.live_files());

    // The database is open and holds its LOCK: sst-dump reads around it.
    let json = dump(dir.path(), &["--json"]).json();
    assert_eq!(json["kind"], "directory");
    assert_eq!(json["ok"], true, "{json:#}");
    assert_eq!(live_files_json(&json["tables"]), live);
    assert_eq!(json["total_files"], live.len());
    assert_eq!(
        json["total_bytes"],
        live.iter().map(|f| f.size).sum::<u64>()
    );
    db.put(b"still", b"writable").unwrap();
    assert_eq!(db.get(b"still").unwrap().as_deref(), Some(&b"writable"[..]));
    drop(db);

    let run = dump(dir.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("verify: ok"), "{}", run.stdout);

    // One damaged live table: exit 1, naming the file and the block.
    let victim = &live[live.len() / 2];
    let path = dir.path().join(format!("{:06}.sst", victim.number));
    let (_, block) = open_table(&path).index_entries().unwrap()[1];
    flip(&path, block.offset + 4);
    let run = dump(dir.path(), &["--command=verify"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let needle = format!(
        "{:06}.sst: corruption at offset {}: data block checksum mismatch",
        victim.number, block.offset
    );
    assert!(run.stdout.contains(&needle), "{}", run.stdout);
}

#[test]
fn identify_tells_files_apart_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_many_tables(dir.path());
    let live = db.live_files();
    db.put(b"in the wal", b"only").unwrap();
    drop(db);
    let copy = |from: &Path, name: &str| {
        let to = dir.path().join(name);
        std::fs::copy(from, &to).unwrap();
        to
    };
    let table = copy(&dir.path().join(format!("{:06}.sst", live[0].number)), "a");
    let current = std::fs::read_to_string(dir.path().join("CURRENT")).unwrap();
    let manifest = copy(&dir.path().join(current.trim_end()), "b");
    let wal = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "log") && std::fs::metadata(p).unwrap().len() > 0
        })
        .expect("a WAL with records");
    let wal = copy(&wal, "c");
    let empty = dir.path().join("d");
    std::fs::write(&empty, b"").unwrap();
    let junk = dir.path().join("e");
    std::fs::write(
        &junk,
        b"not a strata file at all, just some text\n".repeat(3),
    )
    .unwrap();

    for (path, kind, code) in [
        (&table, "table", 0),
        (&manifest, "manifest", 0),
        (&wal, "wal", 0),
        (&dir.path().join("CURRENT"), "current", 0),
        (&empty, "empty", 0),
        (&dir.path().to_path_buf(), "directory", 0),
        (&junk, "unknown", 1),
    ] {
        let run = dump(path, &["--command=identify"]);
        assert_eq!(run.code, code, "{kind}: {}", run.stdout);
        assert!(
            run.stdout.starts_with(&format!("{kind}: ")),
            "{kind}: {}",
            run.stdout
        );
        let json = dump(path, &["--command=identify", "--json"]).json();
        assert_eq!(json["kind"], kind);
    }
    let run = dump(&dir.path().join("CURRENT"), &[]);
    assert_eq!(run.code, 0, "CURRENT is identified by default");
    assert!(
        run.stdout.starts_with("current: names MANIFEST-"),
        "{}",
        run.stdout
    );
    let run = dump(&junk, &[]);
    assert_eq!(run.code, 1, "no strata file: nothing checks out");
    assert!(run.stdout.contains("not a table"), "{}", run.stdout);

    // Truncated and zeroed copies of every kind: never a panic (a panic
    // exits 101), always 0 or 1.
    for source in [&table, &manifest, &wal] {
        let bytes = std::fs::read(source).unwrap();
        for cut in [1, 7, 47, 48, 49, bytes.len() / 2, bytes.len() - 1] {
            let path = dir.path().join("cut");
            std::fs::write(&path, &bytes[..cut.min(bytes.len())]).unwrap();
            for command in ["identify", "check", "verify"] {
                let run = dump(&path, &[&format!("--command={command}")]);
                assert!(
                    (0..=1).contains(&run.code),
                    "{cut} {command}: {}",
                    run.stderr
                );
                assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
            }
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (sst, _) = build_one_table(dir.path());
    let missing = dir.path().join("missing.sst");
    let current = dir.path().join("CURRENT");
    for (path, args) in [
        (&sst, vec!["--command=frobnicate"]),
        (&sst, vec!["--bogus"]),
        (&missing, vec![]),
        (
            &sst,
            vec!["--command=scan", "--input_key_hex", "--from=0xZZ"],
        ),
        (&sst, vec!["--command=scan", "--prefix=a", "--from=b"]),
        (&sst, vec!["--command=verify", "--from=a"]),
        (
            &sst,
            vec!["--command=recompress", "--compression_levels=99"],
        ),
        (&current, vec!["--command=raw"]),
        (&dir.path().to_path_buf(), vec!["--command=scan"]),
    ] {
        let run = dump(path, &args);
        assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(!run.stderr.is_empty());
    }
    assert_eq!(sst_dump(&[]).code, 2, "--file is required");
    assert_eq!(sst_dump(&["--help"]).code, 0);
}

#[test]
fn raw_never_writes_through_a_link_or_over_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let (sst, _) = build_one_table(dir.path());
    let target = PathBuf::from(format!("{}_dump.txt", sst.display()));

    // A link where the dump would go: refused, its target untouched.
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, b"keep me").unwrap();
    std::os::unix::fs::symlink(&victim, &target).unwrap();
    let run = dump(&sst, &["--command=raw"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("is a symbolic link"), "{}", run.stderr);
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    // A dangling link too: following it would create a file elsewhere.
    std::fs::remove_file(&target).unwrap();
    let elsewhere = dir.path().join("elsewhere.txt");
    std::os::unix::fs::symlink(&elsewhere, &target).unwrap();
    assert_eq!(dump(&sst, &["--command=raw"]).code, 2);
    assert!(!elsewhere.exists());
    std::fs::remove_file(&target).unwrap();

    // The first dump is written; a second does not replace it.
    assert_eq!(dump(&sst, &["--command=raw"]).code, 0);
    let first = std::fs::read(&target).unwrap();
    let run = dump(&sst, &["--command=raw"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    assert_eq!(std::fs::read(&target).unwrap(), first);

    // Given a link to a table, the dump goes beside the link (as
    // documented: `<file>_dump.txt` for the path given), not its target.
    let other = tempfile::tempdir().unwrap();
    let link = other.path().join("t.sst");
    std::os::unix::fs::symlink(&sst, &link).unwrap();
    assert_eq!(dump(&link, &["--command=raw"]).code, 0);
    assert!(other.path().join("t.sst_dump.txt").is_file());
}

#[test]
fn only_regular_files_within_the_size_limit_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let (sst, _) = build_one_table(dir.path());
    // Devices and FIFOs: refused at once (a FIFO must not block the open).
    let fifo = dir.path().join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    for (path, kind) in [
        (Path::new("/dev/zero"), "a character device"),
        (fifo.as_path(), "a FIFO"),
    ] {
        for command in ["--command=raw", "--command=identify"] {
            let run = dump(path, &[command]);
            assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
            let want = format!("not a regular file ({kind})");
            assert!(run.stderr.contains(&want), "{}", run.stderr);
        }
    }
    assert!(!dir.path().join("fifo_dump.txt").exists());

    // Above --max_input_bytes: refused, naming the size and the flag.
    let size = std::fs::metadata(&sst).unwrap().len();
    let limit = format!("--max_input_bytes={}", size - 1);
    let run = dump(&sst, &["--command=check", &limit]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "{size} bytes, more than --max_input_bytes={}",
            size - 1
        )),
        "{}",
        run.stderr
    );
    let limit = format!("--max_input_bytes={size}");
    assert_eq!(dump(&sst, &["--command=check", &limit]).code, 0);
}

#[test]
fn directory_mode_reports_a_live_wal_that_is_a_device() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_many_tables(dir.path());
    drop(db);
    // A WAL name newer than any: directory mode reads it as live.
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("999999.log")).unwrap();
    let run = dump(dir.path(), &["--command=verify"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("not a regular file (a character device)"),
        "{}",
        run.stdout
    );
}

/// What `build_keyspaces` wrote and the engine reported.
struct Keyspaces {
    /// Every live table, with its keyspace's name.
    live: Vec<LiveFile>,
    /// The live keyspaces' names.
    names: Vec<String>,
    /// The operations left in the WAL, in order: (keyspace name, op, key).
    unflushed: Vec<(&'static str, &'static str, String)>,
}

/// A closed database with the keyspaces "default", "users" and "events"
/// and a dropped one, "scratch", each of which had tables from explicit
/// flushes (compaction never starts, no memtable fills, so the tables do
/// not depend on timing); then writes to every keyspace, one batch over
/// several, and a write to "scratch" before it was dropped, all left in
/// the WAL.
fn build_keyspaces(dir: &Path) -> Keyspaces {
    let options = Options {
        write_buffer_size: 16 << 20,
        level0_file_num_compaction_trigger: 1000,
        level0_slowdown_writes_trigger: 1000,
        level0_stop_writes_trigger: 1000,
        ..Options::default()
    };
    let db = Db::open(dir, options).unwrap();
    let users = db.keyspace("users").unwrap();
    let scratch = db.keyspace("scratch").unwrap();
    let events = db.keyspace("events").unwrap();
    for i in 0..600 {
        db.put(key(i), value(i)).unwrap();
        users.put(key(i * 7 % 600), value(i)).unwrap();
        events.put(key(i / 2), value(i)).unwrap();
        if i % 3 == 0 {
            scratch.put(key(i), b"gone").unwrap();
        }
        if i % 200 == 199 {
            users.flush().unwrap();
            events.flush().unwrap();
        }
        if i % 300 == 299 {
            db.flush().unwrap();
            scratch.flush().unwrap();
        }
    }
    let mut batch = WriteBatch::new();
    batch.put_in(&users, b"u-unflushed", b"1");
    batch.put(b"d-unflushed", b"2");
    batch.delete_in(&events, b"e-unflushed");
    db.write(batch).unwrap();
    scratch.put(b"s-unflushed", b"3").unwrap();
    users.delete(b"u-deleted").unwrap();
    let unflushed = vec![
        ("users", "PUT", "u-unflushed".to_string()),
        ("default", "PUT", "d-unflushed".to_string()),
        ("events", "DELETE", "e-unflushed".to_string()),
        ("scratch", "PUT", "s-unflushed".to_string()),
        ("users", "DELETE", "u-deleted".to_string()),
    ];
    db.drop_keyspace("scratch").unwrap();
    let live = sorted(db.live_files());
    let names = db.keyspace_names();
    drop((users, scratch, events));
    drop(db);
    Keyspaces {
        live,
        names,
        unflushed,
    }
}

/// The id each live keyspace has in a dump's JSON, by name.
fn keyspace_ids(keyspaces: &Value) -> std::collections::BTreeMap<String, u64> {
    keyspaces
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let name = k["name"].as_str().unwrap().to_string();
            (name, k["id"].as_u64().unwrap())
        })
        .collect()
}

/// The tables listed under each `--- keyspace "name" ...` heading of a
/// text dump, by file number.
fn tables_by_keyspace_text(text: &str) -> Vec<(String, u64)> {
    let mut current = None;
    let mut tables = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("--- keyspace \"") {
            current = Some(rest.split('"').next().unwrap().to_string());
        } else if let Some(table) = line.strip_prefix(' ') {
            let number = table.split(':').next().unwrap();
            if let (Some(ks), Ok(number)) = (&current, number.parse()) {
                tables.push((ks.clone(), number));
            }
        }
    }
    tables.sort_by_key(|&(_, number)| number);
    tables
}

#[test]
fn manifest_and_directory_dumps_show_each_keyspace_and_its_tables() {
    let dir = tempfile::tempdir().unwrap();
    let built = build_keyspaces(dir.path());
    let mut names = built.names.clone();
    names.sort();
    assert_eq!(names, ["default", "events", "users"]);
    for name in &names {
        assert!(built.live.iter().any(|f| &f.keyspace == name), "{name}");
    }
    let by_keyspace: Vec<(String, u64)> = built
        .live
        .iter()
        .map(|f| (f.keyspace.clone(), f.number))
        .collect();
    let current = std::fs::read_to_string(dir.path().join("CURRENT")).unwrap();
    let manifest = dir.path().join(current.trim_end());

    // MANIFEST mode: the live keyspaces, their tables, the edits.
    let json = dump(&manifest, &["--json"]).json();
    assert_eq!(json["ok"], true, "{json:#}");
    let ids = keyspace_ids(&json["live"]["keyspaces"]);
    assert_eq!(ids.keys().cloned().collect::<Vec<_>>(), names);
    assert_eq!(ids["default"], 0);
    let mut got = live_files_json(&Value::Array(manifest_tables(&json)));
    for (g, l) in got.iter_mut().zip(&built.live) {
        (g.num_entries, g.num_deletions) = (l.num_entries, l.num_deletions);
    }
    assert_eq!(got, built.live);
    let log_numbers: Vec<u64> = json["live"]["keyspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["log_number"].as_u64().unwrap())
        .collect();
    assert_eq!(
        json["live"]["log_number"].as_u64(),
        log_numbers.iter().min().copied()
    );
    let edits = json["edits"].as_array().unwrap();
    let created: Vec<(&str, u64)> = edits
        .iter()
        .filter_map(|e| Some((e["create_keyspace"].as_str()?, e["keyspace"].as_u64()?)))
        .collect();
    let scratch_id = created.iter().find(|(n, _)| *n == "scratch").unwrap().1;
    assert_eq!(created.len(), 3, "{created:?}");
    for (name, id) in &created {
        if *name != "scratch" {
            assert_eq!(ids[*name], *id, "{name}");
        }
    }
    assert!(!ids.values().any(|&id| id == scratch_id));
    let drops: Vec<&Value> = edits
        .iter()
        .filter(|e| e["drop_keyspace"] == true)
        .collect();
    assert_eq!(drops.len(), 1);
    assert_eq!(drops[0]["keyspace"], scratch_id);
    assert_eq!(drops[0]["keyspace_name"], "scratch");
    // Every edit names its keyspace; tables are added to the keyspace
    // they are live in.
    for e in edits {
        let name = e["keyspace_name"].as_str().unwrap();
        for f in e["added"].as_array().unwrap() {
            let number = f["number"].as_u64().unwrap();
            if let Some(live) = built.live.iter().find(|l| l.number == number) {
                assert_eq!(live.keyspace, name, "table {number}");
            }
        }
    }

    let run = dump(&manifest, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(tables_by_keyspace_text(&run.stdout), by_keyspace);
    let drop_line = format!("keyspace \"scratch\" (id {scratch_id}) drop_keyspace");
    assert!(run.stdout.contains(&drop_line), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!(
            "keyspace \"scratch\" (id {scratch_id}) create_keyspace \"scratch\""
        )),
        "{}",
        run.stdout
    );

    // Directory mode: the same keyspaces and tables, each table checked.
    let json = dump(dir.path(), &["--json"]).json();
    assert_eq!(json["ok"], true, "{json:#}");
    assert_eq!(keyspace_ids(&json["keyspaces"]), ids);
    assert_eq!(live_files_json(&json["tables"]), built.live);
    for k in json["keyspaces"].as_array().unwrap() {
        let name = k["name"].as_str().unwrap();
        let mine: Vec<&LiveFile> = built.live.iter().filter(|f| f.keyspace == name).collect();
        assert_eq!(k["files"], mine.len(), "{name}");
        assert_eq!(
            k["bytes"],
            mine.iter().map(|f| f.size).sum::<u64>(),
            "{name}"
        );
    }
    assert_eq!(json["total_files"], built.live.len());
    let run = dump(dir.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(tables_by_keyspace_text(&run.stdout), by_keyspace);
    assert!(run.stdout.contains("verify: ok"), "{}", run.stdout);
}

#[test]
fn wal_dump_names_each_operations_keyspace_from_the_manifest_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let built = build_keyspaces(dir.path());
    let wal = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max()
        .unwrap();
    let current = std::fs::read_to_string(dir.path().join("CURRENT")).unwrap();
    let manifest = dump(&dir.path().join(current.trim_end()), &["--json"]).json();
    let mut ids = std::collections::BTreeMap::new();
    for e in manifest["edits"].as_array().unwrap() {
        if let Some(name) = e["create_keyspace"].as_str() {
            ids.insert(name.to_string(), e["keyspace"].as_u64().unwrap());
        }
    }
    ids.insert("default".into(), 0);

    // The last records of the newest WAL are the unflushed writes.
    let json = dump(&wal, &["--json"]).json();
    assert_eq!(json["ok"], true, "{json:#}");
    let ops: Vec<Value> = json["records"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["ops"].as_array().unwrap().clone())
        .collect();
    let tail = &ops[ops.len() - built.unflushed.len()..];
    for (op, (name, kind, key)) in tail.iter().zip(&built.unflushed) {
        assert_eq!(op["op"], *kind);
        assert_eq!(op["key"], key.as_str());
        assert_eq!(op["keyspace"], ids[*name], "{op}");
        assert_eq!(op["keyspace_name"], *name, "{op}");
    }
    let run = dump(&wal, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let batch_line = "PUT(users) 'u-unflushed' PUT 'd-unflushed' DELETE(events) 'e-unflushed'";
    assert!(run.stdout.contains(batch_line), "{}", run.stdout);
    assert!(
        run.stdout.contains("PUT(scratch) 's-unflushed'"),
        "{}",
        run.stdout
    );

    // Without the MANIFEST beside it, ids only.
    let alone = tempfile::tempdir().unwrap();
    let copy = alone.path().join(wal.file_name().unwrap());
    std::fs::copy(&wal, &copy).unwrap();
    let json = dump(&copy, &["--json"]).json();
    let ops: Vec<Value> = json["records"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["ops"].as_array().unwrap().clone())
        .collect();
    let tail = &ops[ops.len() - built.unflushed.len()..];
    for (op, (name, _, _)) in tail.iter().zip(&built.unflushed) {
        assert_eq!(op["keyspace"], ids[*name], "{op}");
        assert!(op.get("keyspace_name").is_none(), "{op}");
    }
    let run = dump(&copy, &[]);
    let batch_line = format!(
        "PUT(#{}) 'u-unflushed' PUT 'd-unflushed' DELETE(#{}) 'e-unflushed'",
        ids["users"], ids["events"]
    );
    assert!(run.stdout.contains(&batch_line), "{}", run.stdout);
}

/// A close with writes no WAL holds, in two keyspaces, installs both
/// keyspaces' tables with one edit: the dump shows its keyspace parts.
#[test]
fn manifest_dump_shows_an_edit_with_keyspace_parts() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_options()).unwrap();
    let users = db.keyspace("users").unwrap();
    let mut batch = db.new_batch();
    batch.put(b"a", b"1");
    batch.put_in(&users, b"u", b"2");
    let unlogged = strata::WriteOptions {
        disable_wal: true,
        ..Default::default()
    };
    db.write_opt(batch, &unlogged).unwrap();
    drop(users);
    db.close().unwrap();
    let current = std::fs::read_to_string(dir.path().join("CURRENT")).unwrap();
    let manifest = dir.path().join(current.trim_end());
    let json = dump(&manifest, &["--json"]).json();
    let with_parts: Vec<&Value> = json["edits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["parts"].as_array().is_some_and(|p| !p.is_empty()))
        .collect();
    assert_eq!(with_parts.len(), 1, "{json:#}");
    let part = &with_parts[0]["parts"][0];
    assert_eq!(part["keyspace_name"], "users");
    assert_eq!(part["added"].as_array().unwrap().len(), 1);
    assert_eq!(with_parts[0]["added"].as_array().unwrap().len(), 1);
    let text = dump(&manifest, &[]).stdout;
    assert!(text.contains("  and keyspace \"users\""), "{text}");
}
