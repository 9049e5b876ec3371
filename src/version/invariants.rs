//! The invariants every installed version keeps, checked on demand (tests
//! call it through `Db::check_invariants`).

use super::{BlobRefCount, FileMeta, Version, NUM_LEVELS};
use crate::filename::{parse_file_name, FileKind};
use crate::fs::FileSystem;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use strata_sstable::blob::BlobRef;
use strata_sstable::{ValueKind, MAX_SEQNO};

/// Check `version` and the directory holding it. `expect_no_strays` adds
/// the check that no table file exists that the version does not
/// reference (valid only when no flush or compaction is writing outputs
/// and no reader holds an obsolete version).
pub(crate) fn check(
    versions: &[std::sync::Arc<Version>],
    fs: &dyn FileSystem,
    dir: &Path,
    expect_no_strays: bool,
) -> Result<(), String> {
    for version in versions {
        check_version(version)?;
    }
    // Files on disk.
    let names = fs.list(dir).map_err(|e| e.to_string())?;
    let on_disk: BTreeSet<u64> = names
        .iter()
        .filter_map(|n| match parse_file_name(n) {
            Some(FileKind::Table(n)) => Some(n),
            _ => None,
        })
        .collect();
    let live: BTreeSet<u64> = versions
        .iter()
        .flat_map(|v| v.all_files().map(|(_, f)| f.meta.number))
        .collect();
    if let Some(missing) = live.difference(&on_disk).next() {
        return Err(format!("table {missing} is in the version but not on disk"));
    }
    if expect_no_strays {
        if let Some(stray) = on_disk.difference(&live).next() {
            return Err(format!("table {stray} is on disk but in no version"));
        }
    }
    Ok(())
}

/// Blob accounting: each table's recorded references per blob file are
/// the references it holds, and each blob file's values are its live
/// references plus its garbage, exactly (for blob files every listing
/// table has counts for: a table from before the counts makes it
/// unknown).
fn check_blob_accounting(version: &Version) -> Result<(), String> {
    let mut live: BTreeMap<u64, Option<BlobRefCount>> = BTreeMap::new();
    for (level, f) in version.all_files() {
        if !f.has_blob_files() {
            continue;
        }
        let mut held: BTreeMap<u64, BlobRefCount> = BTreeMap::new();
        let mut it = f.table().iter();
        it.seek_to_first().map_err(|e| e.to_string())?;
        while it.valid() {
            if it.parsed_key().kind == ValueKind::BlobIndex {
                let r = BlobRef::decode(it.value()).ok_or_else(|| {
                    format!(
                        "L{level} table {}: a malformed blob reference",
                        f.meta.number
                    )
                })?;
                let c = held.entry(r.file_number).or_default();
                *c = c.plus(BlobRefCount {
                    count: 1,
                    bytes: u64::from(r.size),
                });
            }
            it.next().map_err(|e| e.to_string())?;
        }
        if held.keys().any(|n| !f.meta.blob_files.contains(n)) {
            return Err(format!(
                "L{level} table {} refers to a blob file it does not list",
                f.meta.number
            ));
        }
        for &n in &f.meta.blob_files {
            let recorded = f.meta.blob_refs_into(n);
            if let Some(r) = recorded {
                let actual = held.get(&n).copied().unwrap_or_default();
                if r != actual {
                    return Err(format!(
                        "L{level} table {} records {r:?} references into blob file {n} \
                         but holds {actual:?}",
                        f.meta.number
                    ));
                }
            }
            let sum = live.entry(n).or_insert(Some(BlobRefCount::default()));
            *sum = sum.zip(recorded).map(|(s, r)| s.plus(r));
        }
    }
    for (n, refs) in live {
        let Some(refs) = refs else { continue };
        let Some(file) = version.blob_files().get(&n) else {
            return Err(format!("blob file {n} is listed but not in the version"));
        };
        let totals = file.totals().map_err(|e| e.to_string())?;
        let accounted = refs.plus(version.blob_garbage_of(n));
        if (accounted.count, accounted.bytes) != (totals.count, totals.bytes) {
            return Err(format!(
                "blob file {n} holds {} values of {} bytes, but its live references \
                 ({refs:?}) and garbage ({:?}) add up to {accounted:?}",
                totals.count,
                totals.bytes,
                version.blob_garbage_of(n)
            ));
        }
    }
    Ok(())
}

/// One keyspace's version: level order and the newer-above-older rule.
fn check_version(version: &Version) -> Result<(), String> {
    check_blob_accounting(version)?;
    // L0: newest first, with disjoint sequence ranges (one flush each).
    for pair in version.files(0).windows(2) {
        let (newer, older) = (&pair[0].meta, &pair[1].meta);
        if newer.smallest_seqno <= older.largest_seqno {
            return Err(format!(
                "L0 tables {} and {} are out of order or overlap in sequence numbers",
                newer.number, older.number
            ));
        }
    }
    // L1+: sorted, non-overlapping.
    for level in 1..NUM_LEVELS {
        for pair in version.files(level).windows(2) {
            if let Err(why) = ordered_in_a_level(&pair[0].meta, &pair[1].meta) {
                return Err(format!("L{level} {why}"));
            }
        }
    }
    // Every table's contents lie within the range the manifest records.
    for (level, f) in version.all_files() {
        if f.meta.key_range().is_empty() {
            return Err(format!(
                "L{level} table {}: its range holds no key",
                f.meta.number
            ));
        }
        let p = f.table().properties();
        let b = f.table().bounds();
        if (b.smallest.as_slice(), b.largest.as_slice(), b.largest_bound)
            != (
                f.meta.smallest.as_slice(),
                f.meta.largest.as_slice(),
                f.meta.largest_bound,
            )
            || p.min_seqno != f.meta.smallest_seqno
            || p.max_seqno != f.meta.largest_seqno
        {
            return Err(format!(
                "L{level} table {}: contents disagree with its metadata",
                f.meta.number
            ));
        }
    }
    // Newer versions of a key sit in upper levels: for every entry of a
    // deeper table, any version of the same key in an upper level is newer.
    for lower in 1..NUM_LEVELS {
        for f in version.files(lower).iter() {
            let mut it = f.table().iter();
            it.seek_to_first().map_err(|e| e.to_string())?;
            while it.valid() {
                let k = it.parsed_key();
                for upper in 0..lower {
                    for g in version
                        .files(upper)
                        .iter()
                        .filter(|g| g.contains_key(k.user_key))
                    {
                        let newest = g
                            .table()
                            .get(k.user_key, MAX_SEQNO)
                            .map_err(|e| e.to_string())?;
                        // A range tombstone covering the key in a newer
                        // source is newer than every version of it below
                        // (the source-order invariant the merging
                        // iterator's skip relies on).
                        let oldest_covering = g.table().range_tombstones().and_then(|list| {
                            list.stack(list.stack_at(k.user_key)?)?
                                .seqnos()
                                .last()
                                .copied()
                        });
                        if let Some(t) = oldest_covering.filter(|&t| t <= k.seqno) {
                            return Err(format!(
                                "key {:?} at seq {} in L{lower} table {} is not older than the range tombstone at seq {t} covering it in L{upper} table {}",
                                k.user_key.escape_ascii().to_string(),
                                k.seqno,
                                f.meta.number,
                                g.meta.number
                            ));
                        }
                        if let Some(found) = newest {
                            if found.seqno <= k.seqno {
                                return Err(format!(
                                    "key {:?} at seq {} in L{upper} table {} is not newer than seq {} in L{lower} table {}",
                                    k.user_key.escape_ascii().to_string(),
                                    found.seqno,
                                    g.meta.number,
                                    k.seqno,
                                    f.meta.number
                                ));
                            }
                        }
                    }
                }
                it.next().map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

/// Whether `a` ends before `b` starts, as adjacent tables of a sorted
/// level must: they share no key, except that `a` may end exclusively at
/// the key `b` starts with (a range tombstone cut there, its rest in `b`).
/// A table with no end is the level's last.
fn ordered_in_a_level(a: &FileMeta, b: &FileMeta) -> Result<(), String> {
    if !a.ends_before(&b.smallest) {
        return Err(format!(
            "tables {} and {} overlap or are out of order",
            a.number, b.number
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::LargestBound;
    use LargestBound::{Excluded, Included, Unbounded};

    fn meta(number: u64, smallest: &[u8], largest: &[u8], bound: LargestBound) -> FileMeta {
        FileMeta {
            number,
            size: 10,
            smallest: smallest.to_vec(),
            largest: largest.to_vec(),
            largest_bound: bound,
            smallest_seqno: 1,
            largest_seqno: 1,
            blob_files: Vec::new(),
            blob_refs: Vec::new(),
        }
    }

    #[test]
    fn adjacent_tables_share_a_key_only_across_an_exclusive_end() {
        let next = meta(2, b"c", b"e", Included);
        let ok = |a: FileMeta| ordered_in_a_level(&a, &next).is_ok();
        assert!(ok(meta(1, b"a", b"c", Excluded)));
        assert!(ok(meta(1, b"a", b"b", Included)));
        assert!(!ok(meta(1, b"a", b"c", Included)));
        assert!(!ok(meta(1, b"a", b"c\0", Excluded)));
        assert!(!ok(meta(1, b"a", b"", Unbounded)));
        assert!(!ok(meta(1, b"d", b"d", Included)), "out of order");
    }

    type TableSpec<'a> = (usize, &'a [(&'a str, u64)], &'a [(&'a str, &'a str, u64)]);

    /// Opens tables built in memory (`(level, points, tombstones)`) as one
    /// version.
    fn version_of(tables: &[TableSpec<'_>]) -> Version {
        version_recorded_as(tables, |_| {})
    }

    /// As `version_of`, with each table's metadata changed by `record`.
    fn version_recorded_as(tables: &[TableSpec<'_>], record: impl Fn(&mut FileMeta)) -> Version {
        use crate::{
            filename::table_path, fs::MemFileSystem, options::Options, version::TableOpener,
        };
        use strata_sstable::{TableBuilder, TableOptions, ValueKind};
        let fs = std::sync::Arc::new(MemFileSystem::new());
        let opener = TableOpener::new(fs.clone(), "/db".into(), &Options::default());
        let mut levels: [Vec<_>; NUM_LEVELS] = Default::default();
        for (i, &(level, points, tombstones)) in tables.iter().enumerate() {
            let mut b = TableBuilder::new(Vec::new(), TableOptions::default()).unwrap();
            for &(key, seqno) in points {
                b.add(key.as_bytes(), seqno, ValueKind::Put, b"v").unwrap();
            }
            for &(start, end, seqno) in tombstones {
                b.add_range_tombstone(start.as_bytes(), Some(end.as_bytes()), seqno)
                    .unwrap();
            }
            let built = b.finish().unwrap();
            let number = i as u64 + 1;
            fs.write_durable(&table_path(&opener.dir, number), &built.writer);
            let mut meta = FileMeta::from_built(number, &built);
            record(&mut meta);
            levels[level].push(opener.open(meta, level).unwrap());
        }
        Version::from_levels(levels)
    }

    #[test]
    fn a_range_tombstone_above_must_be_newer_than_the_keys_it_covers_below() {
        let newer = version_of(&[(1, &[], &[("a", "m", 9)]), (2, &[("c", 5)], &[])]);
        assert_eq!(check_version(&newer), Ok(()));
        let older = version_of(&[(1, &[], &[("a", "m", 4)]), (2, &[("c", 5)], &[])]);
        let err = check_version(&older).unwrap_err();
        assert!(err.contains("range tombstone at seq 4"), "{err}");
        // Not covering the key: no constraint.
        let beside = version_of(&[(1, &[], &[("d", "m", 4)]), (2, &[("c", 5)], &[])]);
        assert_eq!(check_version(&beside), Ok(()));
    }

    #[test]
    fn recorded_bounds_must_be_the_tables_own() {
        // A table of b@3 and [a, m)@9 ends just before m.
        let table: [TableSpec<'_>; 1] = [(1, &[("b", 3)], &[("a", "m", 9)])];
        assert_eq!(check_version(&version_of(&table)), Ok(()));
        let inclusive = version_recorded_as(&table, |m| m.largest_bound = Included);
        let err = check_version(&inclusive).unwrap_err();
        assert!(err.contains("disagree"), "{err}");
        let shorter = version_recorded_as(&table, |m| m.largest = b"l".to_vec());
        let err = check_version(&shorter).unwrap_err();
        assert!(err.contains("disagree"), "{err}");
    }
}
