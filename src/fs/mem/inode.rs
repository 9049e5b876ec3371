//! One in-memory file, tracked page by page so a power loss can keep any
//! subset of what was written since the last sync.
//!
//! `data` is what readers see (the page cache). The durable state is
//! `data` with every dirty page replaced by the content it had when it was
//! last made durable, cut or extended to `synced_len`. Each page written
//! since its last sync keeps that old content in `dirty` (`None`: zeros,
//! nothing durable there), saved at its first write, so memory grows with
//! unsynced pages only.
//!
//! Invariant: a page that is not dirty holds its durable content (bytes
//! at or past `synced_len` are zeros in such a page), so rebuilding the
//! durable file needs only the dirty pages.
//!
//! The file's length is metadata: a sync (of the whole file or of a range,
//! as `msync(MS_SYNC)` runs `fdatasync`'s path on Linux, which commits a
//! size change) makes the current length durable. Until then a power loss
//! leaves a length between the durable one and the current one. A
//! preallocated log (`fallocate`) and its cut to the written length on
//! close are such changes. On ext4 the next journal commit (any fsync on
//! the filesystem, or the 5 s timer) may make them durable earlier; the
//! model only lets the file's own sync do it, the side on which less
//! survives. The preallocated bytes are zeros either way, so what varies is
//! where the file ends, and the log reader treats a zero tail and a short
//! file alike.

use super::SplitMix64;
use std::collections::BTreeMap;
use std::ops::Range;

/// The unit a power loss keeps or loses: the page size of every Linux
/// machine strata runs on (x86-64, and arm64 kernels built for 4 KiB).
pub(crate) const PAGE: usize = 4096;

/// How a power loss treats what was written since the last sync.
pub(super) enum Loss<'a> {
    /// Every unsynced page reverts; the length reverts to the synced one.
    Drop,
    /// A random cut in the bytes written since the last sync: those before
    /// it survive, those after revert (a torn sequential write).
    Prefix(&'a mut SplitMix64),
    /// Each unsynced page independently survives or reverts, and the
    /// length is any value between the synced and the current one.
    Pages(&'a mut SplitMix64),
}

#[derive(Default)]
pub(super) struct Inode {
    data: Vec<u8>,
    /// The length a power loss starts from (the last synced length).
    synced_len: usize,
    /// Page index -> the page's durable content, for every page written
    /// (or cut off by a shrink) since it was last made durable.
    dirty: BTreeMap<usize, Option<Box<[u8]>>>,
    /// The bytes written since the last sync, as one span (a superset
    /// after range syncs): where [`Loss::Prefix`] cuts.
    unsynced_span: Option<Range<usize>>,
    /// No byte at or past this was ever written (only zero-extended), so
    /// pages there need no saving: a preallocated log's cut on close
    /// copies nothing.
    written_end: usize,
}

impl Inode {
    /// A file whose every byte is durable.
    pub fn durable(data: Vec<u8>) -> Inode {
        Inode {
            synced_len: data.len(),
            written_end: data.len(),
            data,
            ..Inode::default()
        }
    }

    /// The bytes readers see.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn append(&mut self, src: &[u8]) {
        self.write_at(self.data.len(), src);
    }

    /// Write `src` at `offset`, extending the file (with zeros before
    /// `offset` if it lies past the end).
    pub fn write_at(&mut self, offset: usize, src: &[u8]) {
        if src.is_empty() {
            return;
        }
        let end = offset + src.len();
        for page in offset / PAGE..end.div_ceil(PAGE) {
            self.save_durable_page(page);
        }
        if end > self.data.len() {
            self.data.resize(end, 0);
        }
        self.data[offset..end].copy_from_slice(src);
        self.written_end = self.written_end.max(end);
        self.unsynced_span = Some(match self.unsynced_span.take() {
            Some(span) => span.start.min(offset)..span.end.max(end),
            None => offset..end,
        });
    }

    /// Cut or extend (with zeros) the file to `len`, as `ftruncate` or
    /// `fallocate` would.
    pub fn set_len(&mut self, len: usize) {
        let current = self.data.len();
        if len < current {
            // The cut bytes are durable until the new length is: save
            // the pages that hold durable bytes past the cut.
            let durable_end = current.min(self.synced_len).min(self.written_end);
            for page in len / PAGE..durable_end.div_ceil(PAGE) {
                self.save_durable_page(page);
            }
            self.written_end = self.written_end.min(len);
        }
        // Extending adds zeros, which is also what the durable state holds
        // past its length (or, after a shrink, what the saved pages say).
        self.data.resize(len, 0);
    }

    /// Make every byte and the length durable (`fsync`/`fdatasync`).
    pub fn sync_all(&mut self) {
        self.dirty.clear();
        self.unsynced_span = None;
        self.synced_len = self.data.len();
    }

    /// Make the pages overlapping `range`, and the file's length, durable
    /// (`msync(MS_SYNC)` writes back whole pages, then syncs as
    /// `fdatasync` does). Other dirty pages stay at risk.
    pub fn sync_range(&mut self, range: Range<usize>) {
        if !range.is_empty() {
            let pages = range.start / PAGE..range.end.div_ceil(PAGE);
            self.dirty.retain(|page, _| !pages.contains(page));
        }
        self.make_length_durable();
        if self.dirty.is_empty() {
            self.unsynced_span = None;
        }
    }

    /// Flip bits of one byte, durably (for corruption tests). `None` if
    /// `offset` is past the end.
    pub fn corrupt_byte(&mut self, offset: usize, xor: u8) -> Option<()> {
        *self.data.get_mut(offset)? ^= xor;
        self.written_end = self.written_end.max(offset + 1);
        if let Some(saved) = self.dirty.get_mut(&(offset / PAGE)) {
            let page = saved.get_or_insert_with(|| vec![0; PAGE].into_boxed_slice());
            page[offset % PAGE] ^= xor;
        }
        Some(())
    }

    /// Cut the file to `len`, durably (for corruption tests).
    pub fn truncate_durably(&mut self, len: usize) {
        self.data.truncate(len);
        self.written_end = self.written_end.min(len);
        self.synced_len = self.synced_len.min(len);
        self.forget_durable_past(self.synced_len);
        if let Some(span) = &mut self.unsynced_span {
            span.end = span.end.min(len);
            span.start = span.start.min(span.end);
        }
    }

    /// Lose power: rebuild the file as the disk would hold it, by `loss`.
    /// Draws from the generator only when something is unsynced, in a
    /// fixed order (length first, then pages by offset), so a seed replays.
    pub fn lose_power(&mut self, mut loss: Loss<'_>) {
        let current = self.data.len();
        let synced = self.synced_len;
        if self.dirty.is_empty() && current == synced {
            return;
        }
        let mut cut = 0;
        let len = match &mut loss {
            Loss::Drop => synced,
            Loss::Prefix(rng) => {
                if let Some(span) = &self.unsynced_span {
                    cut = span.start + (rng.next() % (span.len() as u64 + 1)) as usize;
                }
                cut.max(synced)
            }
            Loss::Pages(rng) => {
                let (lo, hi) = (current.min(synced), current.max(synced));
                lo + (rng.next() % ((hi - lo) as u64 + 1)) as usize
            }
        };
        let mut data = std::mem::take(&mut self.data);
        data.resize(len, 0);
        for (&page, saved) in &self.dirty {
            let start = page * PAGE;
            // The page's bytes from here on revert to their durable content.
            let revert_from = match &mut loss {
                Loss::Drop => start,
                Loss::Prefix(_) => cut.max(start),
                Loss::Pages(rng) => {
                    let keep = rng.next() & 1 == 0;
                    if keep {
                        start + PAGE
                    } else {
                        start
                    }
                }
            };
            // Bytes past the current end have no new content to keep.
            let from = revert_from.min(current.max(start));
            let end = (start + PAGE).min(len);
            if from >= end {
                continue;
            }
            match saved {
                Some(old) => data[from..end].copy_from_slice(&old[from - start..end - start]),
                None => data[from..end].fill(0),
            }
        }
        // Restored pages may lie past where the last writes reached.
        self.written_end = data.len();
        self.data = data;
        self.sync_all();
    }

    /// Before page `page` first changes since its last sync, keep its
    /// durable content.
    fn save_durable_page(&mut self, page: usize) {
        if self.dirty.contains_key(&page) {
            return;
        }
        let start = page * PAGE;
        let saved = if start >= self.synced_len.min(self.written_end) {
            None // nothing durable there, or never written: zeros
        } else {
            let end = (start + PAGE).min(self.data.len());
            let mut old = vec![0; PAGE].into_boxed_slice();
            if start < end {
                old[..end - start].copy_from_slice(&self.data[start..end]);
            }
            Some(old)
        };
        self.dirty.insert(page, saved);
    }

    fn make_length_durable(&mut self) {
        self.synced_len = self.data.len();
        self.forget_durable_past(self.synced_len);
    }

    /// The durable file now ends at `len`: nothing past it can come back.
    fn forget_durable_past(&mut self, len: usize) {
        self.dirty.retain(|&page, _| page * PAGE < len);
        if let Some((&page, Some(old))) = self.dirty.last_key_value() {
            if (page + 1) * PAGE > len {
                let mut old = old.clone();
                old[len - page * PAGE..].fill(0);
                self.dirty.insert(page, Some(old));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(page: usize) -> Vec<u8> {
        vec![page as u8 + 1; PAGE]
    }

    /// Pages 0..n written and synced as `pattern(i)`, then pages rewritten
    /// (appended past the synced end) as `pattern(100 + i)`.
    fn synced_then_appended(synced_pages: usize, unsynced_pages: usize) -> Inode {
        let mut inode = Inode::default();
        for i in 0..synced_pages {
            inode.append(&pattern(i));
        }
        inode.sync_all();
        for i in 0..unsynced_pages {
            inode.append(&pattern(100 + i));
        }
        inode
    }

    /// Each page's one byte value (every page here holds one value).
    fn pages_of(inode: &Inode) -> Vec<u8> {
        inode
            .bytes()
            .chunks(PAGE)
            .map(|c| {
                assert!(c.iter().all(|&b| b == c[0]), "a page mixes contents");
                c[0]
            })
            .collect()
    }

    #[test]
    fn random_pages_leave_holes_and_keep_every_synced_page() {
        let mut saw_hole = false;
        for seed in 0..50 {
            let mut inode = synced_then_appended(3, 8);
            inode.lose_power(Loss::Pages(&mut SplitMix64(seed)));
            let pages = pages_of(&inode);
            assert!(pages.len() >= 3, "seed {seed}: a synced page vanished");
            for (i, page) in pages.iter().enumerate().take(3) {
                assert_eq!(*page, i as u8 + 1, "seed {seed}: synced page {i} changed");
            }
            for (i, page) in pages.iter().enumerate().skip(3) {
                assert!(
                    *page == 0 || *page == 100 + (i - 3) as u8 + 1,
                    "seed {seed}: page {i} is neither new nor a hole: {page:?}"
                );
            }
            // A hole: a zero page with a surviving new page after it.
            let first_zero = pages.iter().position(|&p| p == 0);
            saw_hole |= first_zero.is_some_and(|z| pages[z..].iter().any(|&p| p != 0));
        }
        assert!(saw_hole, "no seed left a zero-filled hole before kept data");
    }

    #[test]
    fn random_pages_replay_from_the_seed() {
        let run = |seed| {
            let mut inode = synced_then_appended(1, 16);
            inode.lose_power(Loss::Pages(&mut SplitMix64(seed)));
            inode.bytes().to_vec()
        };
        assert_eq!(run(7), run(7));
        assert!((0..8).any(|s| run(s) != run(7)), "the seed changes nothing");
    }

    #[test]
    fn a_range_sync_protects_only_its_pages() {
        // Three pages of a preallocated file written in place, the middle
        // one synced by range.
        let mut inode = Inode::default();
        inode.set_len(3 * PAGE);
        inode.sync_all();
        for i in 0..3 {
            inode.write_at(i * PAGE, &pattern(i));
        }
        inode.sync_range(PAGE + 10..PAGE + 20);
        inode.lose_power(Loss::Drop);
        assert_eq!(pages_of(&inode), [0, 2, 0]);
    }

    #[test]
    fn a_sync_of_a_partial_page_protects_the_whole_page_and_later_writes_are_at_risk() {
        let mut inode = Inode::default();
        inode.append(&[1; 100]);
        inode.sync_all();
        inode.append(&[2; 100]);
        inode.sync_range(100..200);
        inode.append(&[3; 100]);
        inode.lose_power(Loss::Drop);
        assert_eq!(inode.bytes(), [[1u8; 100], [2; 100]].concat());
    }

    #[test]
    fn an_unsynced_shrink_can_be_undone_with_the_old_bytes() {
        let mut inode = Inode::default();
        inode.append(&pattern(0));
        inode.append(&pattern(1));
        inode.sync_all();
        inode.set_len(PAGE + 10);
        inode.lose_power(Loss::Drop);
        assert!(inode.bytes() == [pattern(0), pattern(1)].concat());

        let mut durable = Inode::default();
        durable.append(&pattern(0));
        durable.append(&pattern(1));
        durable.sync_all();
        durable.set_len(PAGE + 10);
        durable.sync_all();
        durable.set_len(2 * PAGE);
        durable.sync_all();
        durable.lose_power(Loss::Drop);
        assert!(
            durable.bytes() == [pattern(0), vec![2; 10], vec![0; PAGE - 10]].concat(),
            "bytes cut by a durable shrink came back"
        );
    }

    #[test]
    fn random_prefix_of_an_appended_file_keeps_the_old_choice() {
        // The old model kept `synced + r % (unsynced + 1)` bytes; seeds
        // replayed by older tests must keep meaning the same.
        for seed in 0..20 {
            let mut inode = Inode::default();
            inode.append(&[1; 300]);
            inode.sync_all();
            inode.append(&[2; 5000]);
            inode.lose_power(Loss::Prefix(&mut SplitMix64(seed)));
            let keep = (SplitMix64(seed).next() % 5001) as usize;
            assert!(
                inode.bytes() == [vec![1u8; 300], vec![2; keep]].concat(),
                "seed {seed}: {} bytes, expected {}",
                inode.len(),
                300 + keep
            );
        }
    }
}
