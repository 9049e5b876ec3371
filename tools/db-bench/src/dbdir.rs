//! Where the databases live. `--db=PATH` is used as given (one engine) or
//! holds one directory per engine (several); without `--db` a fresh
//! temporary directory is made and removed at exit.
//!
//! db_bench destroys the database before every fill benchmark. db-bench
//! does it only where it can prove it made the database: a directory it
//! created (or found empty) and marked with `CREATED_BY_DB_BENCH`, holding
//! nothing but the engine's own files, whose lock no process holds
//! (`owned_dir.rs` has the rules). Anything else is refused with a message
//! naming the path and the reason; `--use_existing_db` uses a database as
//! it is, as in RocksDB.

use crate::engine::EngineKind;
use crate::engine_files;
use crate::error::{BenchError, Context, Result};
use std::path::{Path, PathBuf};
use strata_owned_dir::Owner;

/// The marker db-bench writes into each database directory it creates.
pub const MARKER: &str = "CREATED_BY_DB_BENCH";

pub struct DbDir {
    root: PathBuf,
    temporary: bool,
    per_engine: bool,
}

impl DbDir {
    pub fn new(db: Option<&Path>, engines: usize) -> Result<DbDir> {
        let (root, temporary) = match db {
            Some(p) => (p.to_path_buf(), false),
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0);
                let p = std::env::temp_dir()
                    .join(format!("db-bench-{}-{nanos:08x}", std::process::id()));
                // create_dir: fails if the name is taken, so what Drop
                // removes is a directory this process made.
                std::fs::create_dir(&p).context(format!("create {}", p.display()))?;
                (p, true)
            }
        };
        Ok(DbDir {
            root,
            temporary,
            per_engine: engines > 1,
        })
    }

    /// The database directory of `kind`.
    pub fn path(&self, kind: EngineKind) -> PathBuf {
        if self.per_engine {
            self.root.join(kind.name())
        } else {
            self.root.clone()
        }
    }
}

impl Drop for DbDir {
    fn drop(&mut self) {
        if self.temporary {
            // std's remove_dir_all never follows links.
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// Leave `path` an empty, marked directory for a fresh `kind` database:
/// create it, or delete the database db-bench made there before, or
/// refuse (a usage error) when that cannot be proven safe.
pub fn destroy(path: &Path, kind: EngineKind) -> Result<()> {
    let locks = [engine_files::lock_file(kind)];
    let owner = Owner {
        tool: "db-bench",
        marker: MARKER,
        purpose: format!(
            "a {} database (--engine={})",
            kind.display_name(),
            kind.name()
        ),
        layout: engine_files::layout(kind),
        locks: &locks,
        instead: "pass --use_existing_db to use it as it is",
    };
    owner.empty(path).map(|_| ()).map_err(BenchError::usage)
}
