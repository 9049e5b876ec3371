//! Arbitrary bytes as a MANIFEST version edit, and as a whole MANIFEST
//! (raw, and framed as one log record). Nothing may panic; an edit that
//! decodes re-encodes to an edit that decodes to the same value, and every
//! prefix of it begins an edit (`VersionEdit::begins_an_edit`, how
//! `read_manifest` tells a last edit cut by a crash from a damaged length);
//! a manifest that replays lists each table in one level at most.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use strata::inspect::{read_manifest, VersionEdit};

fuzz_target!(|data: &[u8]| {
    if let Ok(edit) = VersionEdit::decode(data) {
        let mut encoded = Vec::new();
        edit.encode(&mut encoded);
        assert_eq!(VersionEdit::decode(&encoded).as_ref(), Ok(&edit));
        // A crash may cut the last edit anywhere (every prefix for short
        // edits; a stride keeps long ones fast).
        let step = data.len() / 512 + 1;
        for len in (0..=data.len()).step_by(step).chain([data.len()]) {
            assert!(VersionEdit::begins_an_edit(&data[..len]), "cut at {len}");
        }
    }
    let path = Path::new("/db/MANIFEST-000001");
    check(read_manifest(path, data));
    let mut writer = strata_wal::Writer::new(Vec::new());
    if writer.add_record(data).is_ok() {
        check(read_manifest(path, &writer.into_inner()));
    }
});

fn check(result: strata::Result<strata::inspect::ManifestContents>) {
    let Ok(contents) = result else {
        return;
    };
    let mut seen = std::collections::BTreeSet::new();
    for keyspace in contents.keyspaces.values() {
        for level in &keyspace.levels {
            for (number, meta) in level {
                assert_eq!(*number, meta.number);
                assert!(seen.insert(*number), "table {number} live twice");
                assert!(!meta.key_range().is_empty());
            }
        }
    }
    assert!(
        contents.keyspaces.contains_key(&0),
        "the default keyspace is always live"
    );
}
