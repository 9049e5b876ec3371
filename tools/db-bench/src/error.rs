//! The one error type of db-bench: a message that says what failed and
//! where, and the exit code the process ends with.

use std::fmt;

/// Exit code for a bad command line (clap uses the same).
pub const EXIT_USAGE: i32 = 2;
/// Exit code for a benchmark that failed while running.
pub const EXIT_FAILURE: i32 = 1;

/// What went wrong, as a sentence for the user.
#[derive(Debug)]
pub struct BenchError {
    message: String,
    exit_code: i32,
}

/// `Result` with db-bench's error.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;

impl BenchError {
    /// A failure while running (I/O, engine error, ...).
    pub fn new(message: impl Into<String>) -> Self {
        BenchError {
            message: message.into(),
            exit_code: EXIT_FAILURE,
        }
    }

    /// A flag or benchmark name the user got wrong.
    pub fn usage(message: impl Into<String>) -> Self {
        BenchError {
            message: message.into(),
            exit_code: EXIT_USAGE,
        }
    }

    /// The same error with what db-bench was doing in front.
    pub fn context(self, what: impl fmt::Display) -> Self {
        BenchError {
            message: format!("{what}: {}", self.message),
            exit_code: self.exit_code,
        }
    }

    pub fn exit_code(&self) -> i32 {
        self.exit_code
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BenchError {}

impl From<std::io::Error> for BenchError {
    fn from(e: std::io::Error) -> Self {
        BenchError::new(e.to_string())
    }
}

impl From<strata::Error> for BenchError {
    fn from(e: strata::Error) -> Self {
        BenchError::new(format!("strata: {e}"))
    }
}

impl From<serde_json::Error> for BenchError {
    fn from(e: serde_json::Error) -> Self {
        BenchError::new(format!("json: {e}"))
    }
}

/// Attach context to any error that converts into [`BenchError`].
pub trait Context<T> {
    fn context(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: Into<BenchError>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }
}
