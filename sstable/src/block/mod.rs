//! Blocks: sorted key/value entries with prefix-compressed keys and
//! restart points (LevelDB's block format). Data, index, properties and
//! meta-index blocks all use it; the layout is drawn in [`builder`].
//!
//! [`BlockBuilder`] encodes, [`Block`] validates the restart array of a
//! stored block, [`BlockIter`] walks it both ways and seeks by binary
//! search over the restart points.

pub mod builder;
pub(crate) mod cursor;
pub mod iter;
pub mod reader;

pub use builder::BlockBuilder;
pub use iter::BlockIter;
pub use reader::Block;
