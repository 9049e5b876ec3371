//! Files a job uses by path that the current versions may not name: the
//! tables and blob files a checkpoint or backup captured (it links or
//! copies them after writes go on, when a compaction may have replaced
//! them), and the tables an ingestion brought in before its MANIFEST edit
//! (RocksDB's `pending_outputs_`).
//!
//! The ordinary path never needs this: a table leaves the disk when the
//! last version holding it lets go (`TableFile`'s drop). A clean-up that
//! deletes whatever the current versions do not name (a resume's, after a
//! background error) must leave these alone.

use std::collections::HashMap;
use std::sync::Arc;

/// How many holds each file number has. A leaf lock.
#[derive(Default)]
pub(crate) struct HeldFiles(parking_lot::Mutex<HashMap<u64, usize>>);

impl HeldFiles {
    /// Hold `numbers` until the returned hold is dropped.
    pub fn hold(self: &Arc<Self>, numbers: impl IntoIterator<Item = u64>) -> FileHold {
        let mut hold = FileHold {
            held: Arc::clone(self),
            numbers: Vec::new(),
        };
        for n in numbers {
            hold.add(n);
        }
        hold
    }

    /// Whether some job holds file `number`.
    pub fn is_held(&self, number: u64) -> bool {
        self.0.lock().contains_key(&number)
    }
}

/// Holds file numbers from deletion by a clean-up until dropped.
pub(crate) struct FileHold {
    held: Arc<HeldFiles>,
    numbers: Vec<u64>,
}

impl FileHold {
    /// Hold `number` too. Done before the file is made, so a clean-up
    /// listing the directory never meets it unheld.
    pub fn add(&mut self, number: u64) {
        *self.held.0.lock().entry(number).or_insert(0) += 1;
        self.numbers.push(number);
    }
}

impl Drop for FileHold {
    fn drop(&mut self) {
        let mut counts = self.held.0.lock();
        for n in &self.numbers {
            if let Some(c) = counts.get_mut(n) {
                *c -= 1;
                if *c == 0 {
                    counts.remove(n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_is_held_until_its_last_hold_is_dropped() {
        let held = Arc::new(HeldFiles::default());
        let a = held.hold([7, 9]);
        let mut b = held.hold([7]);
        b.add(11);
        assert!(held.is_held(7) && held.is_held(9) && held.is_held(11));
        drop(a);
        assert!(held.is_held(7) && !held.is_held(9) && held.is_held(11));
        drop(b);
        assert!(!held.is_held(7) && !held.is_held(11));
    }
}
