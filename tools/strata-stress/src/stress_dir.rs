//! The `--dir` of strata-stress: what it holds, and the proof that
//! strata-stress made it. `crash` starts from an empty directory, so it
//! deletes what an earlier run left there, but only under the rules of
//! `owned_dir.rs`: the directory carries the `CREATED_BY_STRATA_STRESS`
//! marker (written when strata-stress creates it, or finds it empty), holds
//! nothing but the entries below, and no process has the database open.
//!
//! ```text
//! D/CREATED_BY_STRATA_STRESS   the marker
//! D/db/                        the database (strata's file names only)
//! D/expected, D/expected.tmp   the expected state (expected.rs)
//! D/counters, D/counters.tmp   the merge counters' expected state (counters.rs)
//! D/run.log                    the last crash-test child's stderr
//! D/checkpoints/<name>[.tmp]/  checkpoints the workload takes and checks,
//!                              and backups restored (`r...`, `restored`)
//! D/ingest/<name>.sst          table files built to ingest (ingest.rs)
//! D/ingested                   the ledger of ingestions into fresh ranges (ingested.rs)
//! D/backups/                   the backup engine's directory (backups.rs)
//! D/backup-bounds/<id>|next    what each backup must hold (backups.rs)
//! D/replica/                   the change feed's replica (replica.rs)
//! D/reader.log                 the last read-only reader's stderr (reader.rs)
//! ```

use strata_owned_dir::{Entry, Layout, Owner};

/// The top level of `--dir`.
static STRESS_DIR: Layout = Layout {
    entry: |name| match name {
        "db" | "replica" => Some(Entry::Dir(&DATABASE)),
        "checkpoints" => Some(Entry::Dir(&CHECKPOINTS)),
        "ingest" | "backup-bounds" => Some(Entry::Dir(&FILES)),
        "backups" => Some(Entry::EngineDir),
        "expected" | "expected.tmp" | "counters" | "counters.tmp" | "ingested" | "run.log"
        | "reader.log" => Some(Entry::File),
        _ => None,
    },
};

/// `D/checkpoints`: one database directory per checkpoint (its staging
/// directory, `<name>.tmp`, if a kill interrupted it).
static CHECKPOINTS: Layout = Layout {
    entry: |name| name.starts_with('r').then_some(Entry::Dir(&DATABASE)),
};

/// A directory of strata-stress's own files.
static FILES: Layout = Layout {
    entry: |_| Some(Entry::File),
};

/// `D/db`: what strata names its files (`src/filename.rs`), and the
/// change feed's state file (`CHANGEFEEDS`, `.new` while replaced), which
/// `parse_file_name` does not know.
static DATABASE: Layout = Layout {
    entry: |name| match name {
        "CHANGEFEEDS" | "CHANGEFEEDS.new" => Some(Entry::File),
        _ => strata::inspect::parse_file_name(name).map(|_| Entry::File),
    },
};

/// Who owns `--dir`.
pub fn owner() -> Owner<'static> {
    Owner {
        tool: "strata-stress",
        marker: "CREATED_BY_STRATA_STRESS",
        purpose: "a stress test's database and expected state".into(),
        layout: &STRESS_DIR,
        locks: &["db/LOCK", "replica/LOCK"],
        instead: "give --dir a path that does not exist yet",
    }
}
