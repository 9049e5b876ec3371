//! Keyspaces (RocksDB's column families): separate key spaces in one
//! database, each with its own memtables, levels, compactions and options,
//! sharing one WAL, one sequence of writes and the block cache.
//!
//! - `options.rs`: `KeyspaceOptions`, the per-keyspace knobs.
//! - `state.rs`: `KeyspaceState`, the engine's side of one keyspace.
//! - `registry.rs`: the live keyspaces by id and name.
//! - `handle.rs`: `Keyspace`, the public handle.
//! - `lifecycle.rs`: creating and dropping one.

mod handle;
mod lifecycle;
mod options;
mod registry;
mod state;

pub use handle::Keyspace;
pub use options::KeyspaceOptions;
pub(crate) use registry::Keyspaces;
pub(crate) use state::KeyspaceState;
