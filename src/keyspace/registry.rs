//! The live keyspaces of an open database, by id and by name.

use super::state::KeyspaceState;
use std::sync::Arc;

/// The live keyspaces. Immutable: a creation or drop builds a new one
/// (rare), so a lookup is a load and a search with no lock.
#[derive(Clone, Default)]
pub(crate) struct Keyspaces {
    /// Sorted by id; the default keyspace (0) first.
    by_id: Vec<Arc<KeyspaceState>>,
}

impl Keyspaces {
    pub fn new(mut all: Vec<Arc<KeyspaceState>>) -> Self {
        all.sort_by_key(|ks| ks.id);
        Keyspaces { by_id: all }
    }

    pub fn get(&self, id: u32) -> Option<&Arc<KeyspaceState>> {
        self.by_id
            .binary_search_by_key(&id, |ks| ks.id)
            .ok()
            .map(|i| &self.by_id[i])
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<KeyspaceState>> {
        self.by_id.iter().find(|ks| ks.name == name)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Every live keyspace, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<KeyspaceState>> {
        self.by_id.iter()
    }

    pub fn with(&self, ks: Arc<KeyspaceState>) -> Self {
        let mut all = self.by_id.clone();
        all.retain(|k| k.id != ks.id);
        all.push(ks);
        Keyspaces::new(all)
    }

    pub fn without(&self, id: u32) -> Self {
        let mut all = self.by_id.clone();
        all.retain(|k| k.id != id);
        Keyspaces { by_id: all }
    }
}
