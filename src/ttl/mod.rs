//! Time to live: values that expire (docs/design/ttl.md). An expiring
//! value is a point entry of kind `PutWithExpiry` whose value begins with
//! its expiry (`expiry.rs`); time comes from the [`Clock`] in
//! [`Options::clock`](crate::Options::clock) (`clock.rs`); writes get
//! their expiry where they enter the write path (`stamp.rs`).

mod clock;
mod expiry;
mod stamp;

pub use clock::{Clock, ManualClock, SystemClock};
pub(crate) use expiry::{encode_expiring, split_expiring, unexpired_value, EXPIRY_LEN};
