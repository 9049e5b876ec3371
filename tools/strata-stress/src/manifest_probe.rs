//! Before reopening: which in-flight ingestions the MANIFEST already
//! names. An ingestion commits with one MANIFEST edit (`src/ingest/job.rs`),
//! so after a kill it is in a table the MANIFEST lists, or nowhere the
//! reopened database reads. The verifier then holds recovery to it: an
//! ingestion the MANIFEST names must be there whole after the reopen
//! (the kill only cut off its return), one it does not must be absent.
//! Without this, "old" after a kill could hide a committed ingestion that
//! recovery lost.

use crate::expected::AnyError;
use std::collections::BTreeSet;
use std::path::Path;
use strata::inspect::{read_current_manifest, read_manifest};
use strata_sstable::bytes::Bytes;
use strata_sstable::{BlockReadOptions, Table, TableReadOptions, ValueKind, MAX_SEQNO};

/// One thing to look for: a put of `key` in keyspace `keyspace` whose
/// value names ingestion `batch`.
pub struct Probe<'a> {
    pub keyspace: &'a str,
    pub key: Vec<u8>,
    pub batch: u64,
}

/// The batches of `probes` some table the MANIFEST lists holds
/// (`batch_of` reads the batch a value of a keyspace names; `None`: no
/// database yet).
pub fn committed(
    dir: &Path,
    probes: &[Probe<'_>],
    batch_of: &dyn Fn(&str, &[u8]) -> Option<u64>,
) -> Result<Option<BTreeSet<u64>>, AnyError> {
    if !dir.join("CURRENT").exists() {
        return Ok(None);
    }
    let mut found = BTreeSet::new();
    if probes.is_empty() {
        return Ok(Some(found));
    }
    let fs = strata::fs::OsFileSystem;
    let (path, data) = read_current_manifest(&fs, dir)?;
    let manifest = read_manifest(&path, &data)?;
    for (_, ks) in manifest.keyspaces.iter() {
        let mine: Vec<&Probe<'_>> = probes.iter().filter(|p| p.keyspace == ks.name).collect();
        if mine.is_empty() {
            continue;
        }
        for meta in ks.levels.iter().flat_map(|l| l.values()) {
            let covering: Vec<&&Probe<'_>> = mine
                .iter()
                .filter(|p| meta.smallest.as_slice() <= p.key.as_slice() && p.key <= meta.largest)
                .collect();
            if covering.is_empty() {
                continue;
            }
            let table_path = dir.join(format!("{:06}.sst", meta.number));
            let table = Table::open(
                Bytes::from(std::fs::read(&table_path)?),
                TableReadOptions::default(),
            )
            .map_err(|e| format!("{}: {e}", table_path.display()))?;
            for p in covering {
                let reads = BlockReadOptions {
                    verify_checksums: true,
                    fill_cache: false,
                    readahead_bytes: 0,
                };
                table
                    .get_versions(&p.key, MAX_SEQNO, reads, &mut |f| {
                        if f.kind == ValueKind::Put && batch_of(&ks.name, &f.value) == Some(p.batch)
                        {
                            found.insert(p.batch);
                        }
                        true
                    })
                    .map_err(|e| format!("{}: {e}", table_path.display()))?;
            }
        }
    }
    Ok(Some(found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{self, ValueId};
    use strata::{Db, IngestOptions, Options, SstWriter};

    #[test]
    fn an_ingestion_the_manifest_names_is_found_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let db_dir = dir.path().join("db");
        let db = Db::open(&db_dir, Options::default()).unwrap();
        let put = |i: u32, batch: u64| {
            let id = ValueId {
                key: i,
                gen: 1,
                batch,
            };
            (value::key(i), value::encode(&id, 40))
        };
        // Batch 7 written (and flushed) as ordinary writes, batch 9
        // ingested over it, batch 8 never written.
        let (k, v) = put(5, 7);
        db.put(&k, &v).unwrap();
        db.flush().unwrap();
        let file = dir.path().join("in.sst");
        let mut w = SstWriter::create(&file, &Options::default()).unwrap();
        let (k, v) = put(5, 9);
        w.put(&k, &v).unwrap();
        w.finish().unwrap();
        db.ingest(&[&file], &IngestOptions::default()).unwrap();
        drop(db);
        let probe = |batch| Probe {
            keyspace: "default",
            key: value::key(5),
            batch,
        };
        let batch_of = |_: &str, v: &[u8]| value::decode(v).ok().flatten().map(|id| id.batch);
        let found = committed(&db_dir, &[probe(7), probe(8), probe(9)], &batch_of)
            .unwrap()
            .unwrap();
        assert_eq!(found, BTreeSet::from([7, 9]));
        assert_eq!(
            committed(&dir.path().join("none"), &[], &batch_of).unwrap(),
            None
        );
    }
}
