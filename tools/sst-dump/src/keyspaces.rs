//! Keyspace names by id, as a MANIFEST's edits give them: every keyspace
//! ever created, dropped ones too, so that an edit or a WAL record of a
//! dropped keyspace still shows its name. A WAL holds ids only; its names
//! come from the MANIFEST beside it (the one CURRENT names), when there is
//! one that reads.

use std::collections::BTreeMap;
use std::path::Path;

use strata::inspect::{
    parse_file_name, read_manifest, FileKind, VersionEdit, DEFAULT_KEYSPACE_ID,
    DEFAULT_KEYSPACE_NAME,
};

use crate::escape::escaped;
use crate::input;

/// What is known of a keyspace id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyspaceName {
    pub name: String,
    /// An edit dropped it.
    pub dropped: bool,
}

/// Names by id; the default keyspace's always.
#[derive(Clone, Debug)]
pub struct KeyspaceNames {
    by_id: BTreeMap<u32, KeyspaceName>,
}

impl Default for KeyspaceNames {
    fn default() -> Self {
        let default = KeyspaceName {
            name: DEFAULT_KEYSPACE_NAME.to_string(),
            dropped: false,
        };
        KeyspaceNames {
            by_id: BTreeMap::from([(DEFAULT_KEYSPACE_ID, default)]),
        }
    }
}

impl KeyspaceNames {
    /// Takes in one edit, in MANIFEST order.
    pub fn learn(&mut self, edit: &VersionEdit) {
        if let Some(name) = &edit.create_keyspace {
            self.by_id.insert(
                edit.keyspace,
                KeyspaceName {
                    name: name.clone(),
                    dropped: false,
                },
            );
        }
        if edit.drop_keyspace {
            if let Some(k) = self.by_id.get_mut(&edit.keyspace) {
                k.dropped = true;
            }
        }
    }

    pub fn get(&self, id: u32) -> Option<&KeyspaceName> {
        self.by_id.get(&id)
    }

    /// The name of keyspace `id`, if known.
    pub fn name(&self, id: u32) -> Option<String> {
        self.get(id).map(|k| k.name.clone())
    }

    /// For text: the name, escaped, or `#id` when unknown.
    pub fn label(&self, id: u32) -> String {
        match self.get(id) {
            Some(k) => escaped(k.name.as_bytes()),
            None => format!("#{id}"),
        }
    }

    /// The names the MANIFEST that CURRENT names in `dir` gives; `None`
    /// when there is no CURRENT or the MANIFEST does not read (its damage
    /// is for a directory or MANIFEST dump to report, not a WAL dump).
    pub fn of_directory(dir: &Path, max_input_bytes: u64) -> Option<KeyspaceNames> {
        let current = input::read(&dir.join("CURRENT"), max_input_bytes).ok()?;
        let name = std::str::from_utf8(&current).ok()?.strip_suffix('\n')?;
        if !matches!(parse_file_name(name), Some(FileKind::Manifest(_))) {
            return None;
        }
        let path = dir.join(name);
        let data = input::read(&path, max_input_bytes).ok()?;
        let contents = read_manifest(&path, &data).ok()?;
        let mut names = KeyspaceNames::default();
        for (_, edit) in &contents.edits {
            names.learn(edit);
        }
        Some(names)
    }
}
