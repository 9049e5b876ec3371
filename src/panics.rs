//! Panics in the engine's own threads (and in a writer leading a group)
//! become background errors: whoever waits for that work sees the error
//! instead of waiting forever for work that will never finish.

use crate::error::Error;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Run `f`, turning a panic into [`Error::Panic`] naming `place`.
///
/// Unwind safety is asserted, not proved: after a panic the caller must
/// treat the state `f` touched as poisoned (record a background error, so
/// no later write, flush or compaction builds on it).
pub(crate) fn catch_panic<T>(place: &'static str, f: impl FnOnce() -> T) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| panic_error(place, payload))
}

/// The error for a panic caught in `place`.
pub(crate) fn panic_error(place: &'static str, payload: Box<dyn Any + Send>) -> Error {
    let message = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_owned()
    };
    Error::Panic { place, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panic_message_is_kept() {
        let e = catch_panic("test thread", || panic!("boom {}", 7)).unwrap_err();
        assert_eq!(e.to_string(), "panic in test thread: boom 7");
        let e = catch_panic("test thread", || std::panic::panic_any(5u8)).unwrap_err();
        assert!(matches!(
            e,
            Error::Panic {
                place: "test thread",
                ..
            }
        ));
        assert_eq!(catch_panic("test thread", || 3).unwrap(), 3);
    }
}
