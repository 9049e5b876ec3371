//! What an adapter did with the flags, for the header: each flag mapped to
//! the engine's closest option, each flag it could not honour, and the
//! durability of a default write.

use std::fmt::Display;

#[derive(Default, Debug)]
pub struct Mapping {
    /// `--flag=value -> engine option`.
    pub mapped: Vec<String>,
    /// `--flag=value: why not`.
    pub unmatched: Vec<String>,
    /// What a write without `--sync` survives.
    pub durability: String,
    /// What `--sync=1` does.
    pub sync_durability: String,
}

impl Mapping {
    pub fn map(&mut self, flag: &str, value: impl Display, target: &str) {
        self.mapped.push(format!("--{flag}={value} -> {target}"));
    }

    /// Only the peers have options they cannot match.
    #[cfg_attr(
        not(any(feature = "rocksdb", feature = "fjall", feature = "sled")),
        allow(dead_code)
    )]
    pub fn unmatched(&mut self, flag: &str, value: impl Display, why: &str) {
        self.unmatched.push(format!("--{flag}={value}: {why}"));
    }
}
