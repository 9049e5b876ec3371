//! Validation by lookups: when the oracle no longer reaches back to a
//! transaction's snapshot, each key it checks is looked up through the
//! memtables and levels for its newest version, and each range it read or
//! deletes is scanned for versions, as of a pinned sequence number; the
//! oracle certifies the rest (everything numbered after the pin) as usual.
//!
//! Cost: one seek through every source (memtables, L0 tables, one table
//! per deeper level, bloom filters unused) per key checked, and a scan of
//! every version in each range read or deleted (up to the first newer
//! than the snapshot), plus a pass over the sources' range tombstones;
//! reading tables may mean I/O. Only transactions older than
//! the oracle's record pay it (see `oracle.rs`), and none of it happens
//! under a lock: the pin keeps the oracle from evicting what the
//! transaction will still be certified against.
//!
//! Why the versions are there to find: the transaction's snapshot is
//! registered, so compaction keeps the newest version of each key in the
//! stripe after it, and keeps its sequence number (only versions older
//! than every snapshot are renumbered to 0). A put and a delete both made
//! after the snapshot may be dropped together when nothing older remains
//! beneath them; the key then reads as absent both at the snapshot and
//! now, and the transaction commits as if it ran after them both, which is
//! serializable as far as values go (RocksDB's lookups behave the same).

use super::footprint::{Footprint, KeyRange};
use super::oracle::Pin;
use crate::core::DbInner;
use crate::error::Result;
use crate::iter::{InternalIterator, MergingIter, RangeDelSkipper};
use crate::keyspace::KeyspaceState;
use crate::memtable::MemTableIter;
use crate::read::{ReadSpec, SuperVersion};
use std::sync::Arc;
use strata_sstable::{encode_seek_key, parse_internal_key, FragmentedRangeTombstones, SeqNo};

/// A key that was written after the transaction's snapshot.
pub(crate) type Written = (u32, Vec<u8>);

impl DbInner {
    /// Whether anything `check` names was written after `after`, looked
    /// up as of a pin on the oracle (returned: hold it until the commit is
    /// certified). `Ok((pin, None))`: nothing up to the pin was.
    pub(crate) fn validate_by_lookup(
        &self,
        check: &Footprint,
        after: SeqNo,
    ) -> Result<(Pin, Option<Written>)> {
        let pin = self.write_path.pipeline.oracle.pin(self.visible_sequence());
        // The pin may be past the visible number (the oracle's record
        // starts later): the writes up to it are numbered, soon visible.
        self.wait_published(pin.at)?;
        let keyspaces = self.all_keyspaces();
        for (id, _, key) in check.keys() {
            let Some(ks) = keyspaces.get(id) else {
                continue; // dropped: the commit fails on it anyway
            };
            if let Some(written) = newest_after(self, ks, key, None, after, pin.at)? {
                return Ok((pin, Some((id, written))));
            }
        }
        for range in &check.ranges {
            let Some(ks) = keyspaces.get(range.keyspace) else {
                continue;
            };
            if let Some(written) = newest_after(self, ks, &range.start, Some(range), after, pin.at)?
            {
                return Ok((pin, Some((range.keyspace, written))));
            }
        }
        Ok((pin, None))
    }
}

/// A key of `ks` (`key` itself, or with `range` any key in it) with a
/// version numbered in `(after, at]`, point or range tombstone.
fn newest_after(
    db: &DbInner,
    ks: &KeyspaceState,
    key: &[u8],
    range: Option<&KeyRange>,
    after: SeqNo,
    at: SeqNo,
) -> Result<Option<Vec<u8>>> {
    let view = db.read_view(
        ks,
        ReadSpec {
            seq: Some(at),
            ..ReadSpec::default()
        },
    );
    let sv = &view.sv;
    let newer = |s: SeqNo| s > after && s <= at;
    for tombstones in range_tombstones(sv) {
        for t in tombstones.fragments() {
            if !newer(t.seqno) {
                continue;
            }
            let hit = match range {
                Some(r) => r.overlaps(&KeyRange {
                    keyspace: r.keyspace,
                    start: t.start.to_vec(),
                    end: t.end.as_ref().map(|e| e.to_vec()),
                }),
                None => t.start.as_ref() <= key && t.end.as_deref().is_none_or(|e| key < e),
            };
            if hit {
                return Ok(Some(match range {
                    Some(r) => t.start.to_vec().max(r.start.clone()),
                    None => key.to_vec(),
                }));
            }
        }
    }
    let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
    for mem in std::iter::once(&sv.mem).chain(&sv.imms) {
        children.push(Box::new(MemTableIter::new(Arc::clone(mem))));
    }
    sv.version
        .add_iterators(&mut children, &mut RangeDelSkipper::none(), view.blocks);
    let mut merged = MergingIter::new(children);
    let mut target = Vec::new();
    encode_seek_key(&mut target, key, at);
    merged.seek(&target)?;
    while merged.valid() {
        let Some(parsed) = parse_internal_key(merged.key()) else {
            break;
        };
        match range {
            None => {
                // The newest version at or below `at` comes first.
                return Ok((parsed.user_key == key && newer(parsed.seqno)).then(|| key.to_vec()));
            }
            Some(r) => {
                if r.end.as_deref().is_some_and(|e| parsed.user_key >= e) {
                    break;
                }
                if newer(parsed.seqno) {
                    return Ok(Some(parsed.user_key.to_vec()));
                }
            }
        }
        merged.next()?;
    }
    Ok(None)
}

/// Every source's range tombstones: memtables, then tables.
fn range_tombstones(sv: &SuperVersion) -> Vec<Arc<FragmentedRangeTombstones>> {
    let mut out: Vec<_> = std::iter::once(&sv.mem)
        .chain(&sv.imms)
        .filter_map(|m| m.range_del_snapshot())
        .collect();
    if sv.version.has_range_dels() {
        out.extend(
            sv.version
                .all_files()
                .filter_map(|(_, f)| f.table().range_tombstones().cloned()),
        );
    }
    out
}
