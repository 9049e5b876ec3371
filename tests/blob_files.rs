//! Key-value separation (issue 23, docs/design/blob-files.md): the
//! options, and large values stored in blob files.

use strata::{Compression, Db, Error, KeyspaceOptions, Options};

#[test]
fn blob_options_have_rocksdb_defaults_and_bad_values_are_refused() {
    let ks = KeyspaceOptions::default();
    assert!(!ks.enable_blob_files);
    assert_eq!(ks.min_blob_size, 0);
    assert_eq!(ks.blob_file_size, 256 << 20);
    assert_eq!(ks.blob_compression_type, Compression::None);
    assert!(!ks.enable_blob_garbage_collection);
    assert_eq!(ks.blob_garbage_collection_age_cutoff, 0.25);
    assert_eq!(ks.blob_garbage_collection_force_threshold, 1.0);

    let cases: [(Options, &str); 4] = [
        (
            Options {
                blob_garbage_collection_age_cutoff: 1.5,
                ..Options::default()
            },
            "blob_garbage_collection_age_cutoff",
        ),
        (
            Options {
                blob_garbage_collection_force_threshold: -0.1,
                ..Options::default()
            },
            "blob_garbage_collection_force_threshold",
        ),
        (
            Options {
                blob_file_size: 100,
                ..Options::default()
            },
            "blob_file_size",
        ),
        (
            Options {
                blob_compression_type: Compression::Zstd { level: 1000 },
                ..Options::default()
            },
            "blob_compression_type",
        ),
    ];
    for (options, name) in cases {
        match options.validate() {
            Err(Error::InvalidArgument(msg)) => assert!(msg.contains(name), "{msg}"),
            other => panic!("{name}: {other:?}"),
        }
    }

    // A keyspace's own options are validated when it is created.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let err = db
        .keyspace_with(
            "blobs",
            KeyspaceOptions {
                enable_blob_files: true,
                blob_garbage_collection_age_cutoff: f64::NAN,
                ..KeyspaceOptions::default()
            },
        )
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("age_cutoff")),
        "{err:?}"
    );
}
