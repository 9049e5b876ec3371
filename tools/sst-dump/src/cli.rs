//! The command line: RocksDB sst_dump's flags (`--file=`, `--command=`,
//! `--from`, `--to`, `--prefix`, `--read_num`, `--input_key_hex`,
//! `--output_hex`, `--show_properties`, `--list_meta_blocks`,
//! `--verify_checksum`) plus `--json`.

use std::path::PathBuf;

use clap::{ArgAction, Parser, ValueEnum};

use crate::escape::parse_hex;
use crate::scan::Bounds;

/// Inspect and verify strata tables, write-ahead logs, MANIFESTs and
/// database directories. The kind of file is told from its content.
///
/// Exit status: 0 when everything checked out, 1 when corruption was found,
/// 2 on bad usage.
#[derive(Debug, Parser)]
#[command(name = "sst-dump", version)]
pub struct Cli {
    /// A table, a WAL, a MANIFEST, or a database directory.
    #[arg(long, value_name = "PATH")]
    pub file: PathBuf,

    /// What to do. Tables: check (default), scan, raw, verify, recompress.
    /// WAL and MANIFEST: dump (default; scan is the same), check and verify
    /// (summary only). Directories: check or verify. Any file: identify.
    #[arg(long, value_enum)]
    pub command: Option<Command>,

    /// scan: first user key shown (inclusive).
    #[arg(long)]
    pub from: Option<String>,

    /// scan: user keys from here on are not shown (exclusive).
    #[arg(long)]
    pub to: Option<String>,

    /// scan: only user keys with this prefix.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub prefix: Option<String>,

    /// scan: show at most this many entries.
    #[arg(long = "read_num", value_name = "N")]
    pub read_num: Option<u64>,

    /// --from, --to and --prefix are hex (`0x6B6579` or `6b6579`).
    #[arg(long = "input_key_hex")]
    pub input_key_hex: bool,

    /// Print keys and values as hex instead of escaped text.
    #[arg(long = "output_hex")]
    pub output_hex: bool,

    /// Tables: print the properties block.
    #[arg(long = "show_properties")]
    pub show_properties: bool,

    /// Tables: list the meta-index entries.
    #[arg(long = "list_meta_blocks")]
    pub list_meta_blocks: bool,

    /// Tables: check block checksums while reading (default true;
    /// `--verify_checksum=false` reads damaged blocks as they are).
    #[arg(
        long = "verify_checksum",
        value_name = "BOOL",
        num_args = 0..=1,
        default_value_t = true,
        default_missing_value = "true",
        action = ArgAction::Set
    )]
    pub verify_checksum: bool,

    /// recompress: zstd levels to try, after no compression.
    #[arg(
        long = "compression_levels",
        value_name = "LEVELS",
        value_delimiter = ',',
        default_values_t = [1, 3, 9],
        allow_negative_numbers = true
    )]
    pub compression_levels: Vec<i32>,

    /// WAL dump: print the values of puts too.
    #[arg(long = "print_value")]
    pub print_value: bool,

    /// Refuse input files larger than this many bytes (every command reads
    /// its file whole, as do directory checks each live file).
    #[arg(
        long = "max_input_bytes",
        value_name = "BYTES",
        default_value_t = crate::input::DEFAULT_MAX_INPUT_BYTES
    )]
    pub max_input_bytes: u64,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Command {
    Check,
    Scan,
    Raw,
    Verify,
    Recompress,
    Identify,
    Dump,
}

impl Command {
    pub fn name(self) -> &'static str {
        match self {
            Command::Check => "check",
            Command::Scan => "scan",
            Command::Raw => "raw",
            Command::Verify => "verify",
            Command::Recompress => "recompress",
            Command::Identify => "identify",
            Command::Dump => "dump",
        }
    }
}

impl Cli {
    /// The scan bounds, keys decoded. `Err` on bad hex or a scan-only flag
    /// given to another command.
    pub fn bounds(&self, command: Command) -> Result<Bounds, String> {
        let given = self.from.is_some()
            || self.to.is_some()
            || self.prefix.is_some()
            || self.read_num.is_some();
        if given && command != Command::Scan {
            return Err(format!(
                "--from, --to, --prefix and --read_num apply to scan, not {}",
                command.name()
            ));
        }
        let key = |k: &Option<String>| -> Result<Option<Vec<u8>>, String> {
            match k {
                None => Ok(None),
                Some(text) if self.input_key_hex => parse_hex(text).map(Some),
                Some(text) => Ok(Some(text.as_bytes().to_vec())),
            }
        };
        Ok(Bounds {
            from: key(&self.from)?,
            to: key(&self.to)?,
            prefix: key(&self.prefix)?,
            read_num: self.read_num,
        })
    }
}
