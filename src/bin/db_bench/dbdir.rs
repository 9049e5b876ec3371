//! Where the databases live. `--db=PATH` is used as given (one engine) or
//! holds one directory per engine (several); without `--db` a fresh
//! temporary directory is made and removed at exit.
//!
//! Destroying a database (db_bench does it before every fill) removes a
//! directory tree, so db-bench only destroys directories that are empty or
//! hold one of the marker files a known engine writes: a mistyped `--db`
//! cannot wipe unrelated data.

use crate::engine::EngineKind;
use crate::error::{BenchError, Context, Result};
use std::path::{Path, PathBuf};

/// Files one of the engines always creates in its directory (strata and
/// RocksDB: `CURRENT`/`LOCK`; fjall: `version`/`lock`; sled: `conf`/`db`).
const MARKERS: &[&str] = &["CURRENT", "LOCK", "version", "lock", "conf", "db"];

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
                std::fs::create_dir_all(&p).context(format!("create {}", p.display()))?;
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
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// Remove the database at `path` (nothing if it does not exist).
pub fn destroy(path: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(BenchError::from(e).context(format!("read {}", path.display()))),
    };
    let names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let is_db = names.is_empty() || names.iter().any(|n| MARKERS.contains(&n.as_str()));
    if !is_db {
        return Err(BenchError::usage(format!(
            "{} is not empty and holds no database db-bench knows; refusing to delete it \
             (pick another --db, or pass --use_existing_db to keep it)",
            path.display()
        )));
    }
    std::fs::remove_dir_all(path).context(format!("remove {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_destroy_unknown_directories() {
        let dir =
            std::env::temp_dir().join(format!("db-bench-destroy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("precious.txt"), b"x").unwrap();
        assert!(destroy(&dir).is_err());
        std::fs::write(dir.join("CURRENT"), b"MANIFEST-000001\n").unwrap();
        destroy(&dir).unwrap();
        assert!(!dir.exists());
        destroy(&dir).unwrap(); // absent: nothing to do
    }
}
