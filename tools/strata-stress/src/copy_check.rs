//! A copy of the running database (a checkpoint, a restored backup) must
//! equal a snapshot of the source at the copy's sequence number, in every
//! keyspace: no write missing, torn or extra. (A keyspace created after
//! the copy was captured is not in it, and must be empty in the snapshot.)

use crate::expected::AnyError;
use strata::{Db, Options, Snapshot};

/// Check that `copy` (opened with `options`) holds exactly what
/// `snapshot` of `source` reads, keyspace by keyspace; `what` names the
/// copy and `sequence` its sequence number in the error.
pub fn equals_snapshot(
    source: &Db,
    snapshot: &Snapshot,
    copy: &Db,
    options: &Options,
    what: &str,
    sequence: u64,
) -> Result<(), AnyError> {
    let mut names = copy.keyspace_names();
    names.sort();
    let mut source_names = source.keyspace_names();
    source_names.sort();
    if let Some(extra) = names.iter().find(|n| !source_names.contains(n)) {
        return Err(format!(
            "{what} has keyspace {extra:?}, which the source does not: {names:?}, the source {source_names:?}"
        )
        .into());
    }
    // A keyspace the copy lacks was created after its capture (another
    // thread opened it meanwhile): the snapshot must see nothing in it.
    for missing in source_names.iter().filter(|n| !names.contains(n)) {
        let from = source.keyspace(missing)?;
        if let Some(entry) = snapshot.keyspace(&from).iter().next() {
            return Err(format!(
                "{what} lacks keyspace {missing:?}, where the snapshot at sequence {sequence} holds {:?}",
                entry?.0
            )
            .into());
        }
    }
    for ks in &names {
        // The counters' keyspace opens with its merge operator.
        let copied = if ks == crate::counters::KEYSPACE {
            crate::counters::open(copy, options)?
        } else {
            copy.keyspace(ks)?
        };
        let from = source.keyspace(ks)?;
        let mut expected = snapshot.keyspace(&from).iter();
        let mut got = copied.iter();
        let mut count = 0u64;
        loop {
            match (expected.next().transpose()?, got.next().transpose()?) {
                (None, None) => break,
                (e, g) if e == g => count += 1,
                (e, g) => {
                    return Err(format!(
                    "{what} at sequence {sequence} differs from the snapshot in keyspace {ks:?} \
                         after {count} equal entries: snapshot {:?}, copy {:?}",
                    e.map(|(k, _)| k),
                    g.map(|(k, _)| k)
                )
                    .into())
                }
            }
        }
    }
    Ok(())
}
