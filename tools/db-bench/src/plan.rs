//! What each benchmark name means: its method, whether it wants a fresh
//! database, how many operations each thread does and with which key and
//! value sizes. The adjustments are db_bench's (`fillsync` does num/1000
//! synced writes, `readmissing` reads keys one byte longer than any written,
//! ...).

use crate::engine::WriteOpts;
use crate::flags::Flags;
use crate::keys::KeyOrder;

/// Every name `--benchmarks` accepts.
pub const KNOWN_BENCHMARKS: &[&str] = &[
    "fillseq",
    "fillrandom",
    "filluniquerandom",
    "fillbatch",
    "fillsync",
    "fill100K",
    "overwrite",
    "overwritezipf",
    "readseq",
    "readreverse",
    "readrandom",
    "readmissing",
    "readhot",
    "seekrandom",
    "seekordered",
    "deleteseq",
    "deleterandom",
    "deleterange",
    "ingest",
    "mergerandom",
    "readwhilewriting",
    "seekrandomwhilewriting",
    "readrandomwriterandom",
    "updaterandom",
    "randomtransaction",
    "flush",
    "compact",
    "waitforcompaction",
    "stats",
    "levelstats",
    "sstables",
    "verifychecksum",
    "checkpoint",
    "open",
    "crc32c",
    "compress",
    "uncompress",
];

/// A benchmark that runs on threads and reports a result line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Fill(KeyOrder),
    Delete {
        sequential: bool,
    },
    /// Range deletes of `--range_tombstone_width` keys, in key order.
    DeleteRange,
    /// Merges into random keys with `--merge_operator`.
    MergeRandom,
    /// `--num` keys in order written to one table file outside the
    /// database, which is then ingested (moved) into it.
    Ingest,
    ReadRandom,
    ReadHot,
    ReadSeq,
    ReadReverse,
    SeekRandom,
    SeekOrdered,
    ReadWhileWriting,
    SeekRandomWhileWriting,
    ReadRandomWriteRandom,
    UpdateRandom,
    /// One key of each `--transaction_sets` set, read for update and
    /// incremented in one optimistic transaction.
    RandomTransaction,
    Compact,
    VerifyChecksum,
    /// One checkpoint of the database (RocksDB's `Checkpoint`).
    Checkpoint,
    Open,
    Crc32c,
    Compress,
    Uncompress,
}

/// A benchmark that does one thing and prints no result line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meta {
    Flush,
    WaitForCompaction,
    Stats,
    LevelStats,
    SsTables,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Run(Method),
    Meta(Meta),
}

/// One benchmark, ready to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: String,
    pub action: Action,
    /// Destroy and recreate the database first (skipped entirely with
    /// `--use_existing_db`).
    pub fresh_db: bool,
    /// Threads to start, the background writer included.
    pub threads: usize,
    /// Thread 0 writes until the others finish; its numbers are not
    /// reported.
    pub background_writer: bool,
    /// Keys a fill writes (`--num`, or `--num/1000` for fillsync and
    /// fill100K).
    pub num: u64,
    /// Keys that exist after a full fill: reads pick from `0..key_range`.
    pub key_range: u64,
    pub reads: u64,
    pub writes: u64,
    pub deletes: u64,
    /// readrandomwriterandom and updaterandom: the larger of reads and
    /// writes.
    pub readwrites: u64,
    pub key_size: usize,
    pub value_size: usize,
    pub entries_per_batch: u64,
    /// Keys one range delete spans (`--range_tombstone_width`).
    pub range_width: u64,
    pub write: WriteOpts,
    /// `--duration` for the benchmarks it applies to, else 0.
    pub duration_secs: u64,
    /// Said on stderr before the run (e.g. a thread count that was
    /// overridden).
    pub note: Option<String>,
}

impl Plan {
    /// REQUIRES: `name` is in [`KNOWN_BENCHMARKS`].
    pub fn new(name: &str, flags: &Flags) -> Plan {
        let flag_num = flags.num.max(1) as u64;
        let per_thread = |n: i64| if n < 0 { flag_num } else { n as u64 };
        let mut p = Plan {
            name: name.to_string(),
            action: Action::Meta(Meta::Stats),
            fresh_db: false,
            threads: flags.threads as usize,
            background_writer: false,
            num: flag_num,
            key_range: flag_num,
            reads: per_thread(flags.reads),
            writes: 0,
            deletes: per_thread(flags.deletes),
            readwrites: if flags.writes < 0 && flags.reads < 0 {
                flag_num
            } else {
                flags.writes.max(flags.reads).max(0) as u64
            },
            key_size: flags.key_size as usize,
            value_size: flags.value_size as usize,
            entries_per_batch: flags.batch_size,
            range_width: flags.range_tombstone_width.max(1) as u64,
            write: WriteOpts {
                sync: flags.sync,
                disable_wal: flags.disable_wal,
            },
            duration_secs: flags.duration,
            note: None,
        };
        let fill = |p: &mut Plan, order| {
            p.fresh_db = true;
            p.action = Action::Run(Method::Fill(order));
        };
        match name {
            "fillseq" => fill(&mut p, KeyOrder::Sequential),
            "fillbatch" => {
                fill(&mut p, KeyOrder::Sequential);
                p.entries_per_batch = 1000;
            }
            "fillrandom" => fill(&mut p, KeyOrder::Random),
            "filluniquerandom" => {
                fill(&mut p, KeyOrder::UniqueRandom);
                if p.threads > 1 {
                    p.note =
                        Some("filluniquerandom multithreaded not supported, use 1 thread".into());
                    p.threads = 1;
                }
            }
            "overwrite" => p.action = Action::Run(Method::Fill(KeyOrder::Random)),
            // Not db_bench's: overwrite with Zipf-distributed keys, so a
            // few keys pile up versions in the memtable (issue 24 item 2:
            // follow it with seekrandom, no flush between).
            "overwritezipf" => p.action = Action::Run(Method::Fill(KeyOrder::Zipf)),
            "fillsync" => {
                fill(&mut p, KeyOrder::Random);
                p.num = (flag_num / 1000).max(1);
                p.write.sync = true;
            }
            "fill100K" => {
                fill(&mut p, KeyOrder::Random);
                p.num = (flag_num / 1000).max(1);
                p.value_size = 100 * 1000;
            }
            "readseq" => p.action = Action::Run(Method::ReadSeq),
            "readreverse" => p.action = Action::Run(Method::ReadReverse),
            "readrandom" => p.action = Action::Run(Method::ReadRandom),
            "readmissing" => {
                p.action = Action::Run(Method::ReadRandom);
                p.key_size += 1;
            }
            "readhot" => p.action = Action::Run(Method::ReadHot),
            "seekrandom" => p.action = Action::Run(Method::SeekRandom),
            "seekordered" => p.action = Action::Run(Method::SeekOrdered),
            "deleteseq" => p.action = Action::Run(Method::Delete { sequential: true }),
            "deleterandom" => p.action = Action::Run(Method::Delete { sequential: false }),
            "deleterange" => p.action = Action::Run(Method::DeleteRange),
            "mergerandom" => p.action = Action::Run(Method::MergeRandom),
            // Not db_bench's (it has no such benchmark): fillseq's keys,
            // bulk loaded (issue 20).
            "ingest" => {
                p.fresh_db = true;
                p.action = Action::Run(Method::Ingest);
            }
            "readwhilewriting" | "seekrandomwhilewriting" => {
                p.action = Action::Run(if name == "readwhilewriting" {
                    Method::ReadWhileWriting
                } else {
                    Method::SeekRandomWhileWriting
                });
                p.threads += 1;
                p.background_writer = true;
            }
            "readrandomwriterandom" => p.action = Action::Run(Method::ReadRandomWriteRandom),
            "updaterandom" => p.action = Action::Run(Method::UpdateRandom),
            "randomtransaction" => p.action = Action::Run(Method::RandomTransaction),
            "compact" => p.action = Action::Run(Method::Compact),
            "verifychecksum" => p.action = Action::Run(Method::VerifyChecksum),
            "checkpoint" => p.action = Action::Run(Method::Checkpoint),
            "open" => {
                p.action = Action::Run(Method::Open);
                p.num = (flag_num / 10_000).max(1);
            }
            "crc32c" => p.action = Action::Run(Method::Crc32c),
            "compress" => p.action = Action::Run(Method::Compress),
            "uncompress" => p.action = Action::Run(Method::Uncompress),
            "flush" => p.action = Action::Meta(Meta::Flush),
            "waitforcompaction" => p.action = Action::Meta(Meta::WaitForCompaction),
            "stats" => p.action = Action::Meta(Meta::Stats),
            "levelstats" => p.action = Action::Meta(Meta::LevelStats),
            "sstables" => p.action = Action::Meta(Meta::SsTables),
            _ => debug_assert!(false, "unknown benchmark {name} passed validation"),
        }
        if matches!(
            p.action,
            Action::Run(
                Method::Compact
                    | Method::VerifyChecksum
                    | Method::Checkpoint
                    | Method::Open
                    | Method::Ingest
            )
        ) {
            p.threads = 1; // one database-wide operation, not one per thread
        }
        p.writes = if flags.writes < 0 {
            p.num
        } else {
            flags.writes as u64
        };
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn flags(args: &[&str]) -> Flags {
        Flags::try_parse_from(std::iter::once("db-bench").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn every_known_name_has_a_plan() {
        let f = flags(&[]);
        for name in KNOWN_BENCHMARKS {
            let p = Plan::new(name, &f);
            assert_eq!(p.name, *name);
        }
    }

    #[test]
    fn db_bench_adjustments() {
        let f = flags(&["--num=5000", "--threads=2"]);
        let sync = Plan::new("fillsync", &f);
        assert_eq!((sync.num, sync.writes, sync.write.sync), (5, 5, true));
        assert_eq!(Plan::new("fill100K", &f).value_size, 100_000);
        assert_eq!(Plan::new("readmissing", &f).key_size, 17);
        assert_eq!(Plan::new("fillbatch", &f).entries_per_batch, 1000);
        let rww = Plan::new("readwhilewriting", &f);
        assert_eq!((rww.threads, rww.background_writer), (3, true));
        assert_eq!(Plan::new("filluniquerandom", &f).threads, 1);
        assert_eq!(Plan::new("readrandom", &f).reads, 5000);
        assert_eq!(Plan::new("readrandom", &flags(&["--reads=7"])).reads, 7);
        let range = Plan::new("deleterange", &flags(&["--range_tombstone_width=7"]));
        assert_eq!(range.action, Action::Run(Method::DeleteRange));
        assert_eq!(range.range_width, 7);
    }
}
