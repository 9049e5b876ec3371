//! The crate's error type: what went wrong and, for damaged tables, where.

use std::fmt;

/// Everything that can go wrong while building or reading a table.
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// The table's bytes are not a valid table: checksum mismatch, truncation,
    /// a value out of range. `offset` is the position in the table file where
    /// the bad structure starts (for a block, the block's first byte).
    Corruption {
        /// Byte offset in the table file.
        offset: u64,
        /// What was wrong, in words.
        reason: String,
    },
    /// The underlying writer failed.
    Io(std::io::Error),
    /// The caller broke a contract: keys out of order, bad options.
    InvalidArgument(String),
}

/// `std::result::Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for [`Error::Corruption`]; the reason is built only on the
    /// error path, so call sites stay allocation-free when all is well.
    pub(crate) fn corruption(offset: u64, reason: impl Into<String>) -> Error {
        Error::Corruption {
            offset,
            reason: reason.into(),
        }
    }

    /// True for [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Corruption { offset, reason } => {
                write!(f, "table corruption at offset {offset}: {reason}")
            }
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}
