//! An in-memory filesystem for tests: deterministic, able to simulate power
//! loss and to fail chosen operations.
//!
//! Model: a file's bytes are visible to readers as soon as they are
//! written (like the page cache), but only what a `sync` made durable is
//! sure to survive [`MemFileSystem::power_loss`]; what it does to the rest
//! is chosen by [`UnsyncedData`], page by page (`inode.rs`). Directory
//! entries (creations, renames, removals) survive only once `sync_dir` was
//! called on their directory after the change, as on a real filesystem.
//! Handles opened before a power loss fail afterwards, as the process that
//! held them is gone.
//!
//! Logs of kind [`LogKind::MemoryMapped`] are the production mapped log
//! (`mapped_log.rs`) over an inode (`mem/mapping.rs`), so every engine test
//! on this filesystem runs the WAL code that ships.

mod inode;
mod mapping;
mod quota;
mod random_access;

use super::mapped_log::MappedLog;
use super::{FileLock, FileSystem, LogKind, WritableFile};
use bytes::Bytes;
use inode::{Inode, Loss};
use parking_lot::Mutex;
use quota::Need;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The kinds of operation a [`FaultPlan`] can fail. Those that write
/// data (creates, appends, preallocations and mapped stores) are also
/// refused once a quota ([`MemFileSystem::set_quota`]) leaves no room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FsOp {
    /// [`FileSystem::create`].
    Create,
    /// [`WritableFile::append`]; for a memory-mapped log, each store into
    /// one page (a crash can stop a copy between pages, as a kill in a
    /// page fault does) and each preallocation.
    Append,
    /// [`WritableFile::sync`].
    Sync,
    /// [`FileSystem::read`] and [`FileSystem::open_random_access`].
    Read,
    /// [`RandomAccessFile::read_at`](super::RandomAccessFile::read_at): a
    /// table block (or readahead window) read.
    ReadAt,
    /// [`FileSystem::rename`].
    Rename,
    /// [`FileSystem::hard_link`].
    Link,
    /// [`FileSystem::remove`].
    Remove,
    /// [`FileSystem::sync_dir`].
    SyncDir,
    /// [`FileSystem::list`].
    List,
}

/// Fail some operations: those of kind `op` (any kind if `None`) on a path
/// containing `path_contains` (any path if `None`), skipping the first
/// `skip` that match and failing the next `count`.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// Which operation kind to fail; `None` matches every kind.
    pub op: Option<FsOp>,
    /// Only paths whose string form contains this; `None` matches all.
    pub path_contains: Option<String>,
    /// How many matching operations succeed before failures start.
    pub skip: u64,
    /// How many matching operations fail (`u64::MAX`: all of them).
    pub count: u64,
}

impl FaultPlan {
    /// Fail every operation of kind `op` from now on.
    pub fn always(op: FsOp) -> Self {
        FaultPlan {
            op: Some(op),
            path_contains: None,
            skip: 0,
            count: u64::MAX,
        }
    }

    /// Fail the `n`-th (0-based) operation of kind `op`, once.
    pub fn nth(op: FsOp, n: u64) -> Self {
        FaultPlan {
            op: Some(op),
            path_contains: None,
            skip: n,
            count: 1,
        }
    }

    fn matches(&self, op: FsOp, path: &Path) -> bool {
        self.op.is_none_or(|o| o == op)
            && self
                .path_contains
                .as_deref()
                .is_none_or(|s| path.to_string_lossy().contains(s))
    }
}

#[derive(Default)]
struct State {
    /// Bumped by every power loss; handles from an older generation fail.
    generation: u64,
    /// Between [`MemFileSystem::crash`] and [`MemFileSystem::power_loss`]
    /// the machine is off: every operation fails.
    frozen: bool,
    next_inode: u64,
    inodes: HashMap<u64, Inode>,
    /// Directory entries as the running process sees them.
    live: BTreeMap<PathBuf, u64>,
    /// Directory entries that would survive a power loss.
    durable: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
    locks: HashMap<PathBuf, u64>,
    next_lock: u64,
    faults: Vec<FaultPlan>,
    /// Operations counted by `check`, all kinds together.
    total_ops: u64,
    /// Freeze the machine when `total_ops` reaches this (a crash at a
    /// chosen point in the operation sequence).
    crash_at_op: Option<u64>,
    /// Operations seen, by kind (for reports), and faults injected by kind.
    op_counts: BTreeMap<FsOp, u64>,
    /// Bytes returned by `read` and `read_at`, all files together.
    bytes_read: u64,
    fault_counts: BTreeMap<FsOp, u64>,
    /// Open handles per inode, in this power-loss generation: an unlinked
    /// file's bytes count against the quota until its last handle closes.
    open_handles: HashMap<u64, usize>,
    /// The most bytes the files may take (`quota.rs`); `None`: no limit.
    quota: Option<u64>,
}

impl State {
    /// Count the operation and decide whether a fault plan fails it.
    fn check(&mut self, op: FsOp, path: &Path) -> io::Result<()> {
        if self.frozen {
            return Err(io::Error::other("simulated crash: the machine is off"));
        }
        *self.op_counts.entry(op).or_default() += 1;
        self.total_ops += 1;
        if self.crash_at_op.is_some_and(|n| self.total_ops >= n) {
            self.frozen = true;
            self.crash_at_op = None;
            return Err(io::Error::other("simulated crash: the machine is off"));
        }
        let mut fail = false;
        for plan in &mut self.faults {
            if plan.count == 0 || !plan.matches(op, path) {
                continue;
            }
            if plan.skip > 0 {
                plan.skip -= 1;
            } else {
                plan.count = plan.count.saturating_sub(1);
                fail = true;
            }
        }
        if fail {
            *self.fault_counts.entry(op).or_default() += 1;
            return Err(io::Error::other(format!(
                "injected fault: {op:?} on {}",
                path.display()
            )));
        }
        Ok(())
    }

    /// Fail if the machine is off, without counting an operation (for
    /// calls no fault plan targets).
    fn check_running(&self) -> io::Result<()> {
        if self.frozen {
            return Err(io::Error::other("simulated crash: the machine is off"));
        }
        Ok(())
    }

    fn inode_of(&self, path: &Path) -> io::Result<u64> {
        self.live.get(path).copied().ok_or_else(|| not_found(path))
    }

    /// Move directory `from`, and everything under it, to `to` (which must
    /// not exist). A simplification: the move is durable at once, entries
    /// under it included, as if the parent had been synced; only a
    /// checkpoint's staging directory is renamed, after everything in it
    /// was synced.
    fn rename_dir(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        if self.dirs.contains(to) || self.live.contains_key(to) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists", to.display()),
            ));
        }
        let moved =
            |p: &Path| -> Option<PathBuf> { p.strip_prefix(from).ok().map(|rest| to.join(rest)) };
        let move_entries = |map: &mut BTreeMap<PathBuf, u64>| {
            let under: Vec<PathBuf> = map
                .keys()
                .filter(|p| p.starts_with(from))
                .cloned()
                .collect();
            for old in under {
                if let (Some(id), Some(new)) = (map.remove(&old), moved(&old)) {
                    map.insert(new, id);
                }
            }
        };
        move_entries(&mut self.live);
        move_entries(&mut self.durable);
        let dirs: Vec<PathBuf> = self
            .dirs
            .iter()
            .filter(|p| p.starts_with(from))
            .cloned()
            .collect();
        for old in dirs {
            self.dirs.remove(&old);
            if let Some(new) = moved(&old) {
                self.dirs.insert(new);
            }
        }
        for ancestor in to.ancestors() {
            self.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

fn stale() -> io::Error {
    io::Error::other("file handle opened before a simulated power loss")
}

/// An in-memory [`FileSystem`]. Cloning gives another handle to the same
/// files, so a test can keep one while the database owns another.
#[derive(Clone, Default)]
pub struct MemFileSystem {
    state: Arc<Mutex<State>>,
}

/// What [`MemFileSystem::power_loss`] keeps of data that was written but not
/// synced.
#[derive(Debug, Clone, Copy)]
pub enum UnsyncedData {
    /// Drop all of it.
    Drop,
    /// Keep a pseudo-random prefix of each file's unsynced bytes (a torn
    /// write), chosen from this seed.
    KeepRandomPrefix(u64),
    /// What a disk may really hold after a power loss: each 4 KiB page
    /// written since it was last synced independently keeps its new
    /// content or reverts to its last synced content (zeros where nothing
    /// was synced, so a kept page can follow a hole of zeros), and each
    /// file's length is anything between its synced and its current one.
    /// Pages a sync covered never change. Chosen from this seed.
    KeepRandomPages(u64),
}

impl MemFileSystem {
    /// An empty filesystem.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a fault plan; operations matching it fail from now on.
    pub fn add_fault(&self, plan: FaultPlan) {
        self.state.lock().faults.push(plan);
    }

    /// Remove every fault plan.
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    /// Operations seen so far, by kind.
    pub fn op_counts(&self) -> BTreeMap<FsOp, u64> {
        self.state.lock().op_counts.clone()
    }

    /// Bytes read so far by [`FileSystem::read`] and by reads at offsets
    /// (table blocks), all files together: what a read path costs.
    pub fn bytes_read(&self) -> u64 {
        self.state.lock().bytes_read
    }

    /// Faults injected so far, by kind.
    pub fn fault_counts(&self) -> BTreeMap<FsOp, u64> {
        self.state.lock().fault_counts.clone()
    }

    /// Stop the machine at this instant: every operation fails until
    /// [`power_loss`](Self::power_loss) reboots it. Lets a test crash a
    /// database and then drop its handle without the handle's clean close
    /// (or a background thread still running) changing any file.
    pub fn crash(&self) {
        self.state.lock().frozen = true;
    }

    /// Crash (as [`crash`](Self::crash)) when `n` more operations have been
    /// attempted: the `n`-th fails and so does everything after it.
    pub fn crash_after(&self, n: u64) {
        let mut st = self.state.lock();
        st.crash_at_op = Some(st.total_ops + n.max(1));
    }

    /// Whether the machine is off (crashed, not yet rebooted).
    pub fn is_crashed(&self) -> bool {
        self.state.lock().frozen
    }

    /// Simulate a power loss and reboot: unsynced directory entries
    /// vanish, unsynced file data is lost or kept as `unsynced` says
    /// (files are visited in a fixed order, so a seed replays), locks are
    /// released, and every handle opened before fails from now on. Fault
    /// plans are cleared.
    pub fn power_loss(&self, unsynced: UnsyncedData) {
        let mut st = self.state.lock();
        st.frozen = false;
        let mut rng = SplitMix64(match unsynced {
            UnsyncedData::Drop => 0,
            UnsyncedData::KeepRandomPrefix(seed) | UnsyncedData::KeepRandomPages(seed) => seed,
        });
        st.generation += 1;
        st.crash_at_op = None;
        st.live = st.durable.clone();
        let referenced: BTreeSet<u64> = st.live.values().copied().collect();
        st.inodes.retain(|id, _| referenced.contains(id));
        // Walk inodes in a fixed order so the random choices replay exactly.
        let mut ids: Vec<u64> = st.inodes.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(inode) = st.inodes.get_mut(&id) {
                inode.lose_power(match unsynced {
                    UnsyncedData::Drop => Loss::Drop,
                    UnsyncedData::KeepRandomPrefix(_) => Loss::Prefix(&mut rng),
                    UnsyncedData::KeepRandomPages(_) => Loss::Pages(&mut rng),
                });
            }
        }
        st.locks.clear();
        st.faults.clear();
        // The process that held the handles is gone.
        st.open_handles.clear();
    }

    /// Limit the bytes the files may take to `bytes` (`None`: no limit),
    /// as a full disk does: past it, creates, appends, preallocations
    /// and (once the files take more than the limit) mapped stores fail
    /// with [`io::ErrorKind::StorageFull`]. Raising or removing the limit,
    /// or deleting and closing files, makes room again. A file counts at
    /// its length (preallocation included) while it has a directory entry
    /// or an open handle. Power loss keeps the limit.
    pub fn set_quota(&self, bytes: Option<u64>) {
        self.state.lock().quota = bytes;
    }

    /// Bytes the files take now, as the quota counts them.
    pub fn used_bytes(&self) -> u64 {
        self.state.lock().used_bytes()
    }

    /// Overwrite one byte of a file (for corruption tests). The change is
    /// treated as durable.
    pub fn corrupt_byte(&self, path: &Path, offset: usize, xor: u8) -> io::Result<()> {
        let mut st = self.state.lock();
        let id = st.inode_of(path)?;
        let inode = st.inodes.get_mut(&id).ok_or_else(|| not_found(path))?;
        inode
            .corrupt_byte(offset, xor)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset past end"))
    }

    /// Cut a file to `len` bytes (for corruption tests); durable.
    pub fn truncate(&self, path: &Path, len: usize) -> io::Result<()> {
        let mut st = self.state.lock();
        let id = st.inode_of(path)?;
        let inode = st.inodes.get_mut(&id).ok_or_else(|| not_found(path))?;
        inode.truncate_durably(len);
        Ok(())
    }

    /// Write a whole file durably (directory entry included), for tests
    /// that plant files.
    pub fn write_durable(&self, path: &Path, data: &[u8]) {
        let mut st = self.state.lock();
        let id = st.next_inode;
        st.next_inode += 1;
        st.inodes.insert(id, Inode::durable(data.to_vec()));
        st.live.insert(path.to_path_buf(), id);
        st.durable.insert(path.to_path_buf(), id);
    }
}

/// An open file: its inode, and the power-loss generation it was opened in.
/// Counted in `State::open_handles` while it exists.
struct Handle {
    state: Arc<Mutex<State>>,
    path: PathBuf,
    inode: u64,
    generation: u64,
}

impl Handle {
    /// A handle on inode `id`, counted as open. REQUIRES: `st` is this
    /// filesystem's state, locked.
    fn open(state: &Arc<Mutex<State>>, st: &mut State, path: &Path, id: u64) -> Handle {
        *st.open_handles.entry(id).or_default() += 1;
        Handle {
            state: Arc::clone(state),
            path: path.to_path_buf(),
            inode: id,
            generation: st.generation,
        }
    }
}

impl Clone for Handle {
    fn clone(&self) -> Handle {
        let mut st = self.state.lock();
        if st.generation == self.generation {
            *st.open_handles.entry(self.inode).or_default() += 1;
        }
        Handle {
            state: Arc::clone(&self.state),
            path: self.path.clone(),
            inode: self.inode,
            generation: self.generation,
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut st = self.state.lock();
        // A power loss since has forgotten every handle.
        if st.generation != self.generation {
            return;
        }
        if let Some(n) = st.open_handles.get_mut(&self.inode) {
            *n -= 1;
            if *n == 0 {
                st.open_handles.remove(&self.inode);
            }
        }
    }
}

impl Handle {
    /// Run `f` on the inode, counted as `op` (`None`: not counted, but
    /// still refused by a crashed machine or a stale handle).
    fn with_inode<R>(&self, op: Option<FsOp>, f: impl FnOnce(&mut Inode) -> R) -> io::Result<R> {
        let mut st = self.state.lock();
        if st.generation != self.generation {
            return Err(stale());
        }
        match op {
            Some(op) => st.check(op, &self.path)?,
            None => st.check_running()?,
        }
        // The inode outlives its directory entry (an unlinked open file).
        let inode = st.inodes.get_mut(&self.inode).ok_or_else(stale)?;
        Ok(f(inode))
    }

    /// Like [`with_inode`](Self::with_inode) for an operation that writes
    /// data (`what`, counted as `op`): refused, changing nothing, when the
    /// quota leaves less room than `need` says it takes.
    fn write_inode<R>(
        &self,
        op: FsOp,
        what: &str,
        need: impl FnOnce(&Inode) -> Need,
        f: impl FnOnce(&mut Inode) -> R,
    ) -> io::Result<R> {
        let mut st = self.state.lock();
        if st.generation != self.generation {
            return Err(stale());
        }
        st.check(op, &self.path)?;
        let inode = st.inodes.get(&self.inode).ok_or_else(stale)?;
        let need = need(inode);
        st.admit(what, &self.path, need)?;
        let inode = st.inodes.get_mut(&self.inode).ok_or_else(stale)?;
        Ok(f(inode))
    }
}

/// A plain file written with appends (tables, the MANIFEST, logs of kind
/// [`LogKind::Write`]).
struct MemWritableFile {
    handle: Handle,
    len: u64,
}

impl WritableFile for MemWritableFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.handle.write_inode(
            FsOp::Append,
            "append",
            |_| Need::Bytes(data.len() as u64),
            |inode| inode.append(data),
        )?;
        self.len += data.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.handle
            .with_inode(Some(FsOp::Sync), |inode| inode.sync_all())
    }

    fn len(&self) -> u64 {
        self.len
    }
}

impl MemFileSystem {
    /// Create (or truncate: a new inode) the file at `path`.
    fn create_file(&self, path: &Path) -> io::Result<Handle> {
        let mut st = self.state.lock();
        st.check(FsOp::Create, path)?;
        st.admit("create", path, Need::Entry)?;
        let id = st.next_inode;
        st.next_inode += 1;
        st.inodes.insert(id, Inode::default());
        st.live.insert(path.to_path_buf(), id);
        Ok(Handle::open(&self.state, &mut st, path, id))
    }
}

struct MemFileLock {
    state: Arc<Mutex<State>>,
    path: PathBuf,
    id: u64,
}

impl FileLock for MemFileLock {}

impl Drop for MemFileLock {
    fn drop(&mut self) {
        let mut st = self.state.lock();
        if st.locks.get(&self.path) == Some(&self.id) {
            st.locks.remove(&self.path);
        }
    }
}

impl FileSystem for MemFileSystem {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        for ancestor in dir.ancestors() {
            st.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(MemWritableFile {
            handle: self.create_file(path)?,
            len: 0,
        }))
    }

    fn create_log(
        &self,
        path: &Path,
        initial_bytes: u64,
        kind: LogKind,
    ) -> io::Result<Box<dyn WritableFile>> {
        match kind {
            LogKind::MemoryMapped => {
                let backend = mapping::MemMapping::new(self.create_file(path)?);
                Ok(Box::new(MappedLog::create(backend, initial_bytes)?))
            }
            LogKind::Write => self.create(path),
        }
    }

    /// The mapped log, as on ext4 or xfs: the engine's tests run the WAL
    /// that ships by default.
    fn auto_log_kind(&self, _dir: &Path) -> LogKind {
        LogKind::MemoryMapped
    }

    fn read(&self, path: &Path) -> io::Result<Bytes> {
        let mut st = self.state.lock();
        st.check(FsOp::Read, path)?;
        let id = st.inode_of(path)?;
        let inode = st.inodes.get(&id).ok_or_else(|| not_found(path))?;
        let bytes = Bytes::copy_from_slice(inode.bytes());
        st.bytes_read += bytes.len() as u64;
        Ok(bytes)
    }

    fn open_random_access(
        &self,
        path: &Path,
        options: super::RandomAccessOptions,
    ) -> io::Result<Arc<dyn super::RandomAccessFile>> {
        random_access::open(self, path, options)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(FsOp::Rename, from)?;
        if !st.live.contains_key(from) && st.dirs.contains(from) {
            return st.rename_dir(from, to);
        }
        let id = st.inode_of(from)?;
        st.live.remove(from);
        st.live.insert(to.to_path_buf(), id);
        Ok(())
    }

    /// A second entry for the same inode: the file's synced and unsynced
    /// bytes are shared, and the entry survives a power loss once its
    /// directory is synced.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(FsOp::Link, to)?;
        let id = st.inode_of(from)?;
        if st.live.contains_key(to) || st.dirs.contains(to) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: file exists", to.display()),
            ));
        }
        st.admit("link", to, Need::Entry)?;
        st.live.insert(to.to_path_buf(), id);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(FsOp::Remove, path)?;
        st.inode_of(path)?;
        st.live.remove(path);
        Ok(())
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(FsOp::Remove, dir)?;
        if !st.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let in_use = st.live.keys().any(|p| p.starts_with(dir))
            || st.dirs.iter().any(|d| d != dir && d.starts_with(dir));
        if in_use {
            return Err(io::Error::new(
                io::ErrorKind::DirectoryNotEmpty,
                format!("{}: directory not empty", dir.display()),
            ));
        }
        st.dirs.remove(dir);
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut st = self.state.lock();
        st.check(FsOp::List, dir)?;
        if !st.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        // Files and subdirectories, as `read_dir` lists them.
        Ok(st
            .live
            .keys()
            .chain(st.dirs.iter())
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn exists(&self, path: &Path) -> bool {
        let st = self.state.lock();
        st.live.contains_key(path) || st.dirs.contains(path)
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        let st = self.state.lock();
        let id = st.inode_of(path)?;
        Ok(st.inodes.get(&id).map_or(0, |i| i.len() as u64))
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(FsOp::Sync, path)?;
        let id = st.inode_of(path)?;
        if let Some(inode) = st.inodes.get_mut(&id) {
            inode.sync_all();
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(FsOp::SyncDir, dir)?;
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        let live: Vec<(PathBuf, u64)> = st
            .live
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, id)| (p.clone(), *id))
            .collect();
        st.durable.retain(|p, _| !in_dir(p));
        st.durable.extend(live);
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let mut st = self.state.lock();
        if st.frozen {
            return Err(io::Error::other("simulated crash: the machine is off"));
        }
        if st.locks.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "lock held by another open database",
            ));
        }
        let id = st.next_lock;
        st.next_lock += 1;
        st.locks.insert(path.to_path_buf(), id);
        Ok(Box::new(MemFileLock {
            state: Arc::clone(&self.state),
            path: path.to_path_buf(),
            id,
        }))
    }
}

/// A tiny deterministic generator (SplitMix64) so power-loss choices replay
/// from a seed without a dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn power_loss_keeps_only_synced_data_and_synced_entries() {
        let fs = MemFileSystem::new();
        fs.create_dir_all(&p("/db")).unwrap();
        let mut a = fs.create(&p("/db/a")).unwrap();
        a.append(b"hello").unwrap();
        a.sync().unwrap();
        a.append(b" world").unwrap();
        fs.sync_dir(&p("/db")).unwrap();
        let mut b = fs.create(&p("/db/b")).unwrap();
        b.append(b"unsynced entry").unwrap();
        b.sync().unwrap();
        assert_eq!(&fs.read(&p("/db/a")).unwrap()[..], b"hello world");

        fs.power_loss(UnsyncedData::Drop);
        assert_eq!(&fs.read(&p("/db/a")).unwrap()[..], b"hello");
        assert!(
            !fs.exists(&p("/db/b")),
            "entry created after the last sync_dir survived"
        );
        assert!(
            a.append(b"x").is_err(),
            "a handle from before the crash still works"
        );
    }

    #[test]
    fn a_hard_link_shares_the_file_and_is_durable_once_its_directory_is_synced() {
        let fs = MemFileSystem::new();
        fs.create_dir_all(&p("/ext")).unwrap();
        fs.create_dir_all(&p("/db")).unwrap();
        let mut a = fs.create(&p("/ext/a")).unwrap();
        a.append(b"table").unwrap();
        a.sync().unwrap();
        fs.sync_dir(&p("/ext")).unwrap();
        fs.hard_link(&p("/ext/a"), &p("/db/1")).unwrap();
        assert_eq!(&fs.read(&p("/db/1")).unwrap()[..], b"table");
        let taken = fs.hard_link(&p("/ext/a"), &p("/db/1")).unwrap_err();
        assert_eq!(taken.kind(), io::ErrorKind::AlreadyExists);
        fs.power_loss(UnsyncedData::Drop);
        assert!(!fs.exists(&p("/db/1")), "an unsynced link survived");
        fs.hard_link(&p("/ext/a"), &p("/db/1")).unwrap();
        fs.sync_dir(&p("/db")).unwrap();
        fs.remove(&p("/ext/a")).unwrap();
        fs.sync_dir(&p("/ext")).unwrap();
        fs.power_loss(UnsyncedData::Drop);
        assert_eq!(&fs.read(&p("/db/1")).unwrap()[..], b"table");
    }

    #[test]
    fn a_crashed_machine_changes_nothing_until_reboot() {
        let fs = MemFileSystem::new();
        fs.create_dir_all(&p("/db")).unwrap();
        let mut a = fs.create(&p("/db/a")).unwrap();
        fs.crash();
        assert!(a.append(b"late").is_err());
        assert!(fs.create(&p("/db/b")).is_err());
        assert!(fs.rename(&p("/db/a"), &p("/db/c")).is_err());
        fs.power_loss(UnsyncedData::Drop);
        assert!(fs.create(&p("/db/b")).is_ok());
    }

    #[test]
    fn unsynced_rename_and_remove_are_undone_by_power_loss() {
        let fs = MemFileSystem::new();
        fs.create_dir_all(&p("/db")).unwrap();
        fs.write_durable(&p("/db/old"), b"1");
        fs.write_durable(&p("/db/gone"), b"2");
        fs.rename(&p("/db/old"), &p("/db/new")).unwrap();
        fs.remove(&p("/db/gone")).unwrap();
        let mut names = fs.list(&p("/db")).unwrap();
        names.sort();
        assert_eq!(names, ["new"]);
        fs.power_loss(UnsyncedData::Drop);
        let mut names = fs.list(&p("/db")).unwrap();
        names.sort();
        assert_eq!(names, ["gone", "old"]);
    }

    #[test]
    fn random_prefix_keeps_some_unsynced_bytes_deterministically() {
        let run = |seed| {
            let fs = MemFileSystem::new();
            fs.create_dir_all(&p("/d")).unwrap();
            let mut f = fs.create(&p("/d/f")).unwrap();
            fs.sync_dir(&p("/d")).unwrap();
            f.append(&[7u8; 1000]).unwrap();
            fs.power_loss(UnsyncedData::KeepRandomPrefix(seed));
            fs.file_size(&p("/d/f")).unwrap()
        };
        assert_eq!(run(42), run(42));
        assert!((0..20).map(run).any(|n| n > 0 && n < 1000));
    }

    #[test]
    fn fault_plans_fail_the_chosen_operation() {
        let fs = MemFileSystem::new();
        fs.create_dir_all(&p("/d")).unwrap();
        fs.add_fault(FaultPlan::nth(FsOp::Sync, 1));
        let mut f = fs.create(&p("/d/f")).unwrap();
        f.sync().unwrap();
        assert!(f.sync().is_err());
        f.sync().unwrap();
        assert_eq!(fs.fault_counts().get(&FsOp::Sync), Some(&1));
    }

    fn is_no_space(e: &io::Error) -> bool {
        e.kind() == io::ErrorKind::StorageFull
    }

    #[test]
    fn a_quota_refuses_what_would_pass_it_and_raising_it_makes_room() {
        let fs = MemFileSystem::new();
        fs.create_dir_all(&p("/d")).unwrap();
        fs.set_quota(Some(10_000));
        let mut a = fs.create(&p("/d/a")).unwrap();
        a.append(&[1; 6000]).unwrap();
        let e = a.append(&[2; 5000]).unwrap_err();
        assert!(is_no_space(&e), "{e}");
        assert!(
            e.to_string().contains("/d/a"),
            "the error names the file: {e}"
        );
        assert_eq!(
            fs.read(&p("/d/a")).unwrap().len(),
            6000,
            "a refused append wrote"
        );
        assert_eq!(a.len(), 6000);
        let mut b = fs.create(&p("/d/b")).unwrap();
        b.append(&[3; 4000]).unwrap();
        assert_eq!(fs.used_bytes(), 10_000);
        let e = fs
            .create(&p("/d/c"))
            .err()
            .expect("a create with no byte free");
        assert!(is_no_space(&e), "{e}");
        assert!(!fs.exists(&p("/d/c")));
        // Syncs, renames and removals need no room.
        a.sync().unwrap();
        fs.rename(&p("/d/b"), &p("/d/b2")).unwrap();
        fs.sync_dir(&p("/d")).unwrap();
        fs.set_quota(Some(20_000));
        let mut c = fs.create(&p("/d/c")).unwrap();
        c.append(&[4; 10_000]).unwrap();
        assert!(c.append(&[4]).is_err());
        fs.set_quota(None);
        c.append(&[4; 100_000]).unwrap();
    }

    #[test]
    fn an_unlinked_file_keeps_its_space_until_its_last_handle_closes() {
        let fs = MemFileSystem::new();
        fs.create_dir_all(&p("/d")).unwrap();
        fs.set_quota(Some(8000));
        let mut a = fs.create(&p("/d/a")).unwrap();
        a.append(&[1; 6000]).unwrap();
        fs.remove(&p("/d/a")).unwrap();
        assert_eq!(
            fs.used_bytes(),
            6000,
            "an open unlinked file freed its space"
        );
        let mut b = fs.create(&p("/d/b")).unwrap();
        assert!(is_no_space(&b.append(&[2; 4000]).unwrap_err()));
        drop(a);
        assert_eq!(fs.used_bytes(), 0);
        b.append(&[2; 4000]).unwrap();
        // A file replaced by a create is unlinked too.
        let mut b2 = fs.create(&p("/d/b")).unwrap();
        assert_eq!(fs.used_bytes(), 4000);
        drop(b);
        assert_eq!(fs.used_bytes(), 0);
        b2.append(&[3; 8000]).unwrap();
    }

    #[test]
    fn a_power_loss_closes_every_handle_and_keeps_the_quota() {
        let fs = MemFileSystem::new();
        fs.create_dir_all(&p("/d")).unwrap();
        fs.set_quota(Some(5000));
        let mut a = fs.create(&p("/d/a")).unwrap();
        a.append(&[1; 5000]).unwrap();
        fs.remove(&p("/d/a")).unwrap();
        fs.power_loss(UnsyncedData::Drop);
        assert_eq!(
            fs.used_bytes(),
            0,
            "a dead process's handle still holds space"
        );
        drop(a);
        let mut b = fs.create(&p("/d/b")).unwrap();
        b.append(&[2; 5000]).unwrap();
        assert!(is_no_space(&b.append(&[2]).unwrap_err()));
    }

    #[test]
    fn a_mapped_log_meets_the_quota_when_it_preallocates_and_stores_only_over_it() {
        let fs = MemFileSystem::new();
        fs.create_dir_all(&p("/d")).unwrap();
        let mib = 1u64 << 20;
        fs.set_quota(Some(mib + mib / 2));
        let mut log = fs
            .create_log(&p("/d/1.log"), mib, LogKind::MemoryMapped)
            .unwrap();
        assert_eq!(fs.used_bytes(), mib, "the preallocation counts");
        // Stores into the preallocated pages need no room.
        log.append(&[5; 10_000]).unwrap();
        // Growing past the quota, even by just the pages the append
        // needs: refused.
        let e = log.append(&vec![6; (mib + mib / 2) as usize]).unwrap_err();
        assert!(is_no_space(&e), "{e}");
        assert_eq!(log.len(), 10_000);
        // A second log cannot even preallocate; its empty file is left
        // for its creator to remove.
        let e = fs
            .create_log(&p("/d/2.log"), mib, LogKind::MemoryMapped)
            .err()
            .expect("a preallocation past the quota");
        assert!(is_no_space(&e), "{e}");
        assert_eq!(fs.file_size(&p("/d/2.log")).unwrap(), 0);
        // Over the limit, stores into allocated pages fail too.
        fs.set_quota(Some(mib - 1));
        let e = log.append(&[7; 100]).unwrap_err();
        assert!(is_no_space(&e), "{e}");
        fs.set_quota(Some(mib));
        log.append(&[7; 100]).unwrap();
        let data = fs.read(&p("/d/1.log")).unwrap();
        assert!(data[..10_000].iter().all(|&b| b == 5) && data[10_000..10_100] == [7; 100]);
    }

    #[test]
    fn a_hard_link_shares_the_bytes_and_outlives_the_first_name() {
        let fs = MemFileSystem::new();
        fs.create_dir_all(&p("/a")).unwrap();
        let mut f = fs.create(&p("/a/x")).unwrap();
        f.append(b"hello").unwrap();
        f.sync().unwrap();
        fs.hard_link(&p("/a/x"), &p("/a/y")).unwrap();
        let e = fs.hard_link(&p("/a/x"), &p("/a/y")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        fs.remove(&p("/a/x")).unwrap();
        assert_eq!(&fs.read(&p("/a/y")).unwrap()[..], b"hello");
        // The link is an entry like any other: durable once synced.
        fs.sync_dir(&p("/a")).unwrap();
        fs.power_loss(UnsyncedData::Drop);
        assert_eq!(&fs.read(&p("/a/y")).unwrap()[..], b"hello");
    }

    #[test]
    fn a_directory_renames_with_its_files_and_removes_only_when_empty() {
        let fs = MemFileSystem::new();
        fs.create_dir_all(&p("/s/sub")).unwrap();
        fs.write_durable(&p("/s/f"), b"1");
        fs.write_durable(&p("/s/sub/g"), b"2");
        assert_eq!(fs.list(&p("/s")).unwrap(), ["f", "sub"]);
        fs.rename(&p("/s"), &p("/t")).unwrap();
        assert!(!fs.exists(&p("/s")) && !fs.exists(&p("/s/f")));
        assert_eq!(&fs.read(&p("/t/sub/g")).unwrap()[..], b"2");
        let e = fs.remove_dir(&p("/t/sub")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::DirectoryNotEmpty);
        fs.remove(&p("/t/sub/g")).unwrap();
        fs.remove_dir(&p("/t/sub")).unwrap();
        assert_eq!(fs.list(&p("/t")).unwrap(), ["f"]);
    }

    #[test]
    fn lock_is_exclusive_until_dropped() {
        let fs = MemFileSystem::new();
        let l = fs.lock(&p("/d/LOCK")).unwrap();
        assert_eq!(
            fs.lock(&p("/d/LOCK")).err().map(|e| e.kind()),
            Some(io::ErrorKind::WouldBlock)
        );
        drop(l);
        fs.lock(&p("/d/LOCK")).unwrap();
    }
}
