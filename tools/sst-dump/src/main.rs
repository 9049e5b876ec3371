//! sst-dump: inspect and verify strata tables, write-ahead logs, MANIFESTs
//! and database directories, in the manner of RocksDB's `sst_dump` and
//! `ldb`. See the README's "sst-dump" section.
//!
//! Each command's work is a function from bytes to a report (`check::check`,
//! `scan::scan`, `raw::raw`, `verify::verify`, `recompress::recompress`,
//! `wal::dump`, `manifest::dump`, `dir::inspect`, `identify::identify`)
//! that never panics; this file only reads the file, picks the function
//! and prints. Exit status: 0 all checked out, 1 corruption, 2 bad usage.

mod blob;
mod check;
mod cli;
#[cfg(test)]
mod damage;
mod dir;
mod escape;
mod identify;
mod input;
mod keyspaces;
mod manifest;
mod output;
mod raw;
mod recompress;
mod scan;
mod table;
mod verify;
mod wal;

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use strata_sstable::bytes::Bytes;

use crate::cli::{Cli, Command};
use crate::escape::Style;
use crate::identify::{Identity, Kind};
use crate::output::{Outcome, Status};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap: 0 for --help and --version, 2 for usage errors.
            return if e.exit_code() == 0 {
                ExitCode::SUCCESS
            } else {
                Status::Usage.exit_code()
            };
        }
    };
    match run(&cli) {
        Ok(outcome) => {
            if cli.json {
                output::print(&output::json_text(&serde_json::Value::Object(outcome.json)));
            } else {
                output::print(&outcome.text);
            }
            outcome.status.exit_code()
        }
        Err(usage) => {
            // Not eprintln!: it panics when stderr is a closed pipe.
            let _ = writeln!(std::io::stderr(), "sst-dump: {usage}");
            Status::Usage.exit_code()
        }
    }
}

/// Runs the command; `Err` is a usage error (exit 2).
fn run(cli: &Cli) -> Result<Outcome, String> {
    let path = cli.file.as_path();
    let style = Style {
        hex: cli.output_hex,
    };
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (identity, data) = if meta.is_dir() {
        (identify::directory(), Bytes::new())
    } else {
        let data = input::read(path, cli.max_input_bytes)?;
        (identify::identify(&data), Bytes::from(data))
    };
    let command = cli.command.unwrap_or(match identity.kind {
        Kind::Wal | Kind::Manifest | Kind::Empty => Command::Dump,
        Kind::Current => Command::Identify,
        Kind::Table | Kind::Blob | Kind::Directory | Kind::Unknown => Command::Check,
    });
    let bounds = cli.bounds(command)?;
    let mut outcome = match (identity.kind, command) {
        (_, Command::Identify) => Outcome::of(&identity),
        (Kind::Unknown, _) => unknown(&identity),
        (Kind::Table, Command::Check) => Outcome::of(&check::check(&data, cli.verify_checksum)),
        (Kind::Table, Command::Scan) => {
            Outcome::of(&scan::scan(&data, &bounds, cli.verify_checksum, style))
        }
        (Kind::Table, Command::Verify) => Outcome::of(&verify::verify(&data)),
        (Kind::Table, Command::Raw) => raw(path, &data, style)?,
        (Kind::Table, Command::Recompress) => {
            let report =
                recompress::recompress(&data, &cli.compression_levels, cli.verify_checksum)
                    .map_err(|e| e.0)?;
            Outcome::of(&report)
        }
        (
            Kind::Wal | Kind::Empty,
            Command::Dump | Command::Scan | Command::Check | Command::Verify,
        ) => {
            // The names of the keyspaces are in the MANIFEST beside the log.
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let names = keyspaces::KeyspaceNames::of_directory(dir, cli.max_input_bytes);
            let mut report = wal::dump(&data, cli.print_value, style, names.as_ref());
            report.summary_only = matches!(command, Command::Check | Command::Verify);
            Outcome::of(&report)
        }
        (Kind::Manifest, Command::Dump | Command::Scan | Command::Check | Command::Verify) => {
            let mut report = manifest::dump(path, &data, style);
            report.summary_only = matches!(command, Command::Check | Command::Verify);
            Outcome::of(&report)
        }
        (Kind::Blob, Command::Scan | Command::Dump) => Outcome::of(&blob::read(&data, true, style)),
        (Kind::Blob, Command::Check | Command::Verify) => {
            Outcome::of(&blob::read(&data, false, style))
        }
        (Kind::Directory, Command::Check | Command::Verify) => {
            Outcome::of(&dir::inspect(path, style, cli.max_input_bytes))
        }
        (kind, command) => {
            return Err(format!(
                "--command={} does not apply to {} ({})",
                command.name(),
                path.display(),
                kind.name()
            ))
        }
    };
    if identity.kind == Kind::Table && (cli.show_properties || cli.list_meta_blocks) {
        let info = table::TableInfo::of(&data, cli.show_properties, cli.list_meta_blocks, style);
        outcome.append("table_info", &info);
    }
    let mut head = serde_json::Map::new();
    head.insert("file".into(), path.display().to_string().into());
    head.insert("kind".into(), identity.kind.name().into());
    head.insert("command".into(), command.name().into());
    head.insert("ok".into(), (outcome.status == Status::Ok).into());
    head.append(&mut outcome.json);
    outcome.json = head;
    Ok(outcome)
}

/// A file that is no strata file: every command reports why (exit 1).
fn unknown(identity: &Identity) -> Outcome {
    let mut outcome = Outcome::of(identity);
    outcome.status = Status::Corrupt;
    outcome
}

/// `raw`: the dump goes to a new file `<file>_dump.txt` beside the path
/// given (beside a link, not its target); stdout gets a summary.
fn raw(path: &Path, data: &Bytes, style: Style) -> Result<Outcome, String> {
    let dump = raw::raw(data, style);
    let mut target = path.as_os_str().to_owned();
    target.push("_dump.txt");
    let target = std::path::PathBuf::from(target);
    input::write_new(&target, &dump.dump_text())?;
    let mut outcome = Outcome::of(&dump);
    outcome.text = format!("raw dump written to {}\n{}", target.display(), outcome.text);
    outcome
        .json
        .insert("dump_file".into(), target.display().to_string().into());
    Ok(outcome)
}
