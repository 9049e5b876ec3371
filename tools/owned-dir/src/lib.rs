//! Directories a tool may empty because it can prove it made what is in
//! them. db-bench deletes its database before every fill benchmark and
//! strata-stress deletes its directory before a crash test; a mistyped path
//! must never cost anyone data, so a tool deletes
//!
//! - only in a directory that holds its **marker**: a file the tool writes
//!   when it creates the directory (or finds it empty), naming the tool and
//!   what the directory is for; a directory without it is refused, and so
//!   is one whose marker names another tool or another purpose;
//! - only the entries its [`Layout`] says the tool and its engine create;
//!   any other entry is refused, by name, and nothing is deleted;
//! - nothing through a symbolic link: no engine makes one, so a link
//!   anywhere in the directory (or the directory itself being one) is
//!   refused;
//! - nothing while a database there is open: each lock file is taken,
//!   without waiting, both as a flock(2) lock (strata, fjall, sled) and as an
//!   fcntl(2) record lock (RocksDB), and held until the deletion is done,
//!   the lock files deleted last.
//!
//! Every refusal is an `Err` that starts with "refusing to delete", names
//! the path and says why.
//!
//! A crate of its own because two tools (db-bench, strata-stress) share it;
//! the engine library never deletes a directory and does not need it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// What a tool may find at one level of its directory.
pub struct Layout {
    /// What the entry called `name` is, if the tool or its engine makes it.
    pub entry: fn(&str) -> Option<Entry>,
}

/// One kind of entry a tool makes.
#[derive(Clone, Copy)]
pub enum Entry {
    /// A regular file.
    File,
    /// A directory whose entries follow a layout of their own.
    Dir(&'static Layout),
    /// A directory the engine owns whole, with names of its own choosing
    /// (fjall's `keyspaces/`, sled's `blobs/`): any entry but a link.
    EngineDir,
}

/// Who owns a directory and what it holds.
pub struct Owner<'a> {
    /// The tool's name, as the user runs it (`db-bench`).
    pub tool: &'static str,
    /// The marker's file name (`CREATED_BY_DB_BENCH`).
    pub marker: &'static str,
    /// What the directory is for, one line (`engine=strata`): written into
    /// the marker, and required to match before anything is deleted.
    pub purpose: String,
    /// The directory's top level (the marker aside).
    pub layout: &'a Layout,
    /// Lock files, relative to the directory (`LOCK`, `db/LOCK`).
    pub locks: &'a [&'a str],
    /// What the user can do instead, ending a refusal for a directory the
    /// tool cannot prove it made (`pass --use_existing_db to use it as it is`).
    pub instead: &'static str,
}

/// The first line of the marker; the second is `purpose: <purpose>`.
const MARKER_HEAD: &str = "This directory was created by ";
/// A marker is a few lines; anything longer is not one.
const MARKER_MAX_BYTES: u64 = 4096;

impl Owner<'_> {
    /// Create `dir` (and its parents) with the marker, unless it exists;
    /// an existing directory is left as it is. For commands that only add
    /// to the directory (a stress run), so a later clean-up can prove it.
    pub fn create(&self, dir: &Path) -> Result<(), String> {
        match fs::symlink_metadata(dir) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.create_marked(dir),
            Err(e) => Err(format!("cannot inspect {}: {e}", dir.display())),
        }
    }

    /// Make `dir` an empty directory holding only the marker: create it if
    /// missing, adopt it if empty, otherwise delete what the tool made in
    /// it, or refuse (see the module comment). Returns the entries deleted.
    pub fn empty(&self, dir: &Path) -> Result<usize, String> {
        let meta = match fs::symlink_metadata(dir) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.create_marked(dir)?;
                return Ok(0);
            }
            Err(e) => return Err(format!("cannot inspect {}: {e}", dir.display())),
        };
        if meta.file_type().is_symlink() {
            return Err(self.refusal(
                dir,
                &format!(
                    "it is a symbolic link; {} never deletes through a link \
                     (pass the directory it points to)",
                    self.tool
                ),
            ));
        }
        if !meta.is_dir() {
            return Err(self.refusal(dir, "it is not a directory"));
        }
        let listing = fs::read_dir(dir)
            .and_then(|entries| entries.collect::<io::Result<Vec<_>>>())
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        if listing.is_empty() {
            self.write_marker(dir)?;
            return Ok(0);
        }
        self.check_marker(dir)?;
        self.check_entries(dir, self.layout, true)?;
        let _held: Vec<HeldLock> = self
            .locks
            .iter()
            .filter_map(|name| self.take_lock(&dir.join(name)).transpose())
            .collect::<Result<_, _>>()?;
        let locks: Vec<PathBuf> = self.locks.iter().map(|l| dir.join(l)).collect();
        let mut later_dirs = Vec::new();
        let mut deleted = self
            .delete_entries(dir, self.layout, true, &locks, &mut later_dirs)
            .map_err(|e| format!("deleting in {}: {e}", dir.display()))?;
        // The lock files go last, while still held: a database opened in
        // the meantime found them locked and gave up.
        for lock in &locks {
            match fs::remove_file(lock) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot delete {}: {e}", lock.display())),
            }
        }
        for sub in later_dirs {
            // Not remove_dir_all: whatever appeared since stays.
            fs::remove_dir(&sub).map_err(|e| format!("cannot delete {}: {e}", sub.display()))?;
            deleted += 1;
        }
        Ok(deleted)
    }

    fn refusal(&self, path: &Path, why: &str) -> String {
        format!("refusing to delete {}: {why}", path.display())
    }

    fn marker_text(&self) -> String {
        format!(
            "{MARKER_HEAD}{tool}.\npurpose: {purpose}\n\
             {tool} deletes the files it made here, and only those, when it starts afresh;\n\
             delete this file to forbid that.\n",
            tool = self.tool,
            purpose = self.purpose
        )
    }

    fn create_marked(&self, dir: &Path) -> Result<(), String> {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        // create_dir, not create_dir_all: if someone else made it meanwhile,
        // this tool did not create it.
        fs::create_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        self.write_marker(dir)
    }

    fn write_marker(&self, dir: &Path) -> Result<(), String> {
        let path = dir.join(self.marker);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("cannot create the marker {}: {e}", path.display()))?;
        io::Write::write_all(&mut file, self.marker_text().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot write the marker {}: {e}", path.display()))
    }

    /// The marker must be a regular file naming this tool and purpose.
    fn check_marker(&self, dir: &Path) -> Result<(), String> {
        let path = dir.join(self.marker);
        let not_ours = |why: String| {
            self.refusal(
                dir,
                &format!(
                    "{why}, so {tool} cannot prove it created what is there; \
                     pick another directory, delete it yourself, or {instead}",
                    tool = self.tool,
                    instead = self.instead
                ),
            )
        };
        let text = match read_marker(&path) {
            Ok(Some(text)) => text,
            Ok(None) => {
                return Err(not_ours(format!(
                    "it is not empty and holds no {} marker",
                    self.marker
                )))
            }
            Err(e) => {
                return Err(not_ours(format!(
                    "its marker {} is not one {} wrote ({e})",
                    path.display(),
                    self.tool
                )))
            }
        };
        let mut lines = text.lines();
        let head = lines.next().unwrap_or_default();
        let purpose = lines.next().and_then(|l| l.strip_prefix("purpose: "));
        if head != format!("{MARKER_HEAD}{}.", self.tool) {
            return Err(not_ours(format!(
                "its marker {} does not name {}",
                self.marker, self.tool
            )));
        }
        if purpose != Some(self.purpose.as_str()) {
            return Err(self.refusal(
                dir,
                &format!(
                    "{} made it for `{}`, not for `{}`; pick another directory",
                    self.tool,
                    purpose.unwrap_or("?"),
                    self.purpose
                ),
            ));
        }
        Ok(())
    }

    /// Every entry must be one the layout allows, of the kind it says, and
    /// no link.
    fn check_entries(&self, dir: &Path, layout: &Layout, top: bool) -> Result<(), String> {
        let entries =
            fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(self.refusal(&path, &format!("{} never makes such a name", self.tool)));
            };
            if top && name == self.marker {
                continue;
            }
            // DirEntry::file_type does not follow links.
            let kind = entry
                .file_type()
                .map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
            if kind.is_symlink() {
                return Err(self.refusal(
                    &path,
                    "it is a symbolic link, which neither the tool nor its engine makes",
                ));
            }
            match ((layout.entry)(name), kind.is_dir(), kind.is_file()) {
                (Some(Entry::File), _, true) => {}
                (Some(Entry::Dir(inner)), true, _) => self.check_entries(&path, inner, false)?,
                (Some(Entry::EngineDir), true, _) => self.check_no_links(&path)?,
                (None, ..) => {
                    return Err(self.refusal(
                        dir,
                        &format!(
                            "it holds {}, which {} did not create; nothing was deleted",
                            path.display(),
                            self.tool
                        ),
                    ))
                }
                _ => {
                    return Err(self.refusal(
                        dir,
                        &format!(
                            "{} is not the kind of file {} creates under that name; \
                             nothing was deleted",
                            path.display(),
                            self.tool
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    fn check_no_links(&self, dir: &Path) -> Result<(), String> {
        let entries =
            fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
            let kind = entry
                .file_type()
                .map_err(|e| format!("cannot inspect {}: {e}", entry.path().display()))?;
            if kind.is_symlink() {
                return Err(self.refusal(
                    &entry.path(),
                    "it is a symbolic link, which no engine makes",
                ));
            }
            if kind.is_dir() {
                self.check_no_links(&entry.path())?;
            }
        }
        Ok(())
    }

    /// Take `path` as a lock, without waiting; `None` if there is no such
    /// file (no database was ever opened there).
    fn take_lock(&self, path: &Path) -> Result<Option<HeldLock>, String> {
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot open the lock file {}: {e}", path.display())),
        };
        let locked = |how: &str| {
            self.refusal(
                path.parent().unwrap_or(path),
                &format!(
                    "its database is open in another process ({} is locked, {how}); \
                     close that process first",
                    path.display()
                ),
            )
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(locked("flock")),
            Err(fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()))
            }
        }
        match rustix::fs::fcntl_lock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::ACCESS) => {
                return Err(locked("fcntl record lock"))
            }
            Err(e) => return Err(format!("cannot lock {}: {e}", path.display())),
        }
        Ok(Some(HeldLock { _file: file }))
    }

    /// Delete what `check_entries` accepted, except the lock files; the
    /// layout's own directories are left (emptied) in `later_dirs`,
    /// innermost first, to go after the locks.
    fn delete_entries(
        &self,
        dir: &Path,
        layout: &Layout,
        top: bool,
        locks: &[PathBuf],
        later_dirs: &mut Vec<PathBuf>,
    ) -> io::Result<usize> {
        let mut deleted = 0;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_str().unwrap_or_default();
            if (top && name == self.marker) || locks.contains(&path) {
                continue;
            }
            let kind = entry.file_type()?;
            match (layout.entry)(name) {
                Some(Entry::File) if kind.is_file() => fs::remove_file(&path)?,
                Some(Entry::Dir(inner)) if kind.is_dir() => {
                    deleted += self.delete_entries(&path, inner, false, locks, later_dirs)?;
                    later_dirs.push(path);
                    continue;
                }
                // std's remove_dir_all never follows a link, even one
                // made after the check.
                Some(Entry::EngineDir) if kind.is_dir() => fs::remove_dir_all(&path)?,
                // Appeared after the check: not ours to delete.
                _ => continue,
            }
            deleted += 1;
        }
        Ok(deleted)
    }
}

/// A lock file held with both lock kinds; closing the file releases them.
struct HeldLock {
    _file: File,
}

/// The marker's text; `None` when there is none.
fn read_marker(path: &Path) -> io::Result<Option<String>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    file.take(MARKER_MAX_BYTES).read_to_string(&mut text)?;
    Ok(Some(text))
}
