//! The keyspaces the model, simulation and crash tests spread their
//! writes over, and one model for all of them: a model key is the
//! keyspace's index (one byte) followed by the key, so the shared ledger
//! (`ack_log.rs`) checks prefixes across keyspaces, and a batch moving a
//! value between two keyspaces is one write in it. A range delete in a
//! keyspace is a model range delete whose ends carry the keyspace too
//! ([`model_range`]). A dropped keyspace is a write deleting every key it
//! held.

use super::ack_log::{Model, Write, WriteOp};
use std::ops::Bound;
use strata::{Db, Error, Keyspace};

/// The default keyspace and three more, created on first use.
pub const KEYSPACES: [&str; 4] = ["default", "ks1", "ks2", "ks3"];

/// `key` of keyspace `ks` (an index into [`KEYSPACES`]) in the model.
pub fn model_key(ks: usize, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.push(ks as u8);
    out.extend_from_slice(key);
    out
}

/// Keyspace `ks`'s entries in the model, by their own keys.
pub fn entries_of(model: &Model, ks: usize) -> impl Iterator<Item = (&[u8], &Vec<u8>)> {
    model
        .range(vec![ks as u8]..vec![ks as u8 + 1])
        .map(|(k, v)| (&k[1..], v))
}

/// The range delete of keyspace `ks`'s keys in `[start, end)` (`end`
/// `None`: no end) in the model: both ends carry the keyspace, and no end
/// becomes the end of the keyspace's model keys, the first key of the
/// next keyspace.
pub fn model_range(ks: usize, start: &[u8], end: Option<&[u8]>) -> WriteOp {
    let end = match end {
        Some(end) => model_key(ks, end),
        None => vec![ks as u8 + 1],
    };
    WriteOp::DeleteRange(model_key(ks, start), Some(end))
}

/// A range of user keys as `delete_range` takes it.
pub type KeyBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// The inverse of [`model_range`]: the keyspace a model range delete is
/// in and the bounds to hand `delete_range` (an end at the next
/// keyspace: no end).
pub fn keyspace_range<'a>(start: &'a [u8], end: Option<&'a [u8]>) -> (usize, KeyBounds<'a>) {
    let ks = start[0];
    let end = match end {
        Some(e) if e.first() == Some(&ks) => Bound::Excluded(&e[1..]),
        Some(e) if e == [ks + 1] => Bound::Unbounded,
        other => panic!("a model range delete across keyspaces: {start:?} .. {other:?}"),
    };
    (usize::from(ks), (Bound::Included(&start[1..]), end))
}

/// The write that dropping keyspace `ks` makes to the model: it deletes
/// every key the keyspace held.
pub fn drop_write(ks: usize) -> Write {
    vec![model_range(ks, b"", None)]
}

/// Every entry of every live keyspace, as one model. A keyspace not in
/// [`KEYSPACES`] is an error (the tests make no other).
pub fn scan_keyspaces(db: &Db) -> Result<Model, Error> {
    let mut model = Model::new();
    for name in db.keyspace_names() {
        let Some(ks) = KEYSPACES.iter().position(|n| *n == name) else {
            panic!("a keyspace no test made: {name:?}");
        };
        // It exists: this only looks it up.
        let handle: Keyspace = db.keyspace(&name)?;
        for entry in handle.iter() {
            let (k, v) = entry?;
            model.insert(model_key(ks, &k), v.to_vec());
        }
    }
    Ok(model)
}
