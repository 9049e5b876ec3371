//! The keyspaces the model, simulation and crash tests spread their
//! writes over, and one model for all of them: a model key is the
//! keyspace's index (one byte) followed by the key, so the shared ledger
//! (`ack_log.rs`) checks prefixes across keyspaces, and a batch moving a
//! value between two keyspaces is one write in it. A dropped keyspace is a
//! write deleting every key it held.

use super::ack_log::{Model, Write};
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

/// The write that dropping keyspace `ks` makes to the model: a delete of
/// each key it holds.
pub fn drop_write(model: &Model, ks: usize) -> Write {
    entries_of(model, ks)
        .map(|(k, _)| (model_key(ks, k), None))
        .collect()
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
