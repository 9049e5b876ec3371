//! Values that expire, as the model tests hold them: a put with a time to
//! live is stored in the model as [`expiring`]`(value, expiry)`, and
//! readers compare what the database returns with [`live`] of it at the
//! clock's time. Merge operands written onto it are appended as onto any
//! value (`ack_log::apply`), so once the value has expired what is left
//! is the operands alone (docs/design/ttl.md: an expired value is a
//! delete at its sequence number, and operands above it merge onto
//! nothing).
//!
//! The encoding lives inside the model's value bytes, so the shared
//! ledger (`ack_log.rs`) checks prefixes of writes with expiring values
//! unchanged, comparing through [`live_model`].

// Not every test binary that includes `common` uses all of it.
#![allow(dead_code)]

use super::ack_log::Model;

/// No value the tests write starts with it.
const MARK: &[u8] = b"\0expiring\0";

/// `value` expiring at `expiry` (microseconds, the clock's scale): the
/// mark, the expiry and the value's length (u64 and u32, big-endian),
/// the value.
pub fn expiring(value: &[u8], expiry: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(MARK.len() + 12 + value.len());
    out.extend_from_slice(MARK);
    out.extend_from_slice(&expiry.to_be_bytes());
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// What a model value reads as at `now`: a plain value as it is; an
/// expiring one with what was merged onto it until its expiry, then the
/// merged operands alone (`,`-separated, as `Append` merges onto nothing),
/// or nothing.
pub fn live(value: &[u8], now: u64) -> Option<Vec<u8>> {
    let Some(rest) = value.strip_prefix(MARK) else {
        return Some(value.to_vec());
    };
    let expiry = u64::from_be_bytes(rest[..8].try_into().expect("an expiry"));
    let len = u32::from_be_bytes(rest[8..12].try_into().expect("a length")) as usize;
    let (base, merged) = rest[12..].split_at(len);
    if expiry > now {
        return Some([base, merged].concat());
    }
    // `merged` is empty or `,` followed by the operands.
    merged.get(1..).map(<[u8]>::to_vec)
}

/// The model as readers see it at `now`.
pub fn live_model(model: &Model, now: u64) -> Model {
    model
        .iter()
        .filter_map(|(k, v)| live(v, now).map(|v| (k.clone(), v)))
        .collect()
}
