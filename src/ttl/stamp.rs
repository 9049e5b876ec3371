//! Writes get their expiry where they enter the write path, from the
//! database's clock: the write's own time to live
//! ([`WriteOptions::ttl`](crate::WriteOptions::ttl)) for every plain put
//! in it, else the keyspace's
//! [`default_ttl`](crate::KeyspaceOptions::default_ttl). The WAL then
//! holds the absolute expiry, so a replay after a crash expires the value
//! when the first write would have.

use crate::batch::WriteBatch;
use crate::core::DbInner;
use crate::version::DEFAULT_KEYSPACE_ID;
use std::time::Duration;

impl DbInner {
    /// Turn the plain puts of `batch` that get a time to live into
    /// expiring ones. A write with no `ttl` into keyspaces without a
    /// default one (the common case) costs a look at each keyspace it
    /// names.
    pub(crate) fn stamp_expiry(&self, batch: &mut WriteBatch, ttl: Option<Duration>) {
        if ttl.is_none()
            && !batch
                .keyspaces()
                .iter()
                .any(|&id| self.default_ttl(id).is_some())
        {
            return;
        }
        let now = self.options.clock.now_micros();
        batch.expire_puts(|keyspace| {
            ttl.or_else(|| self.default_ttl(keyspace))
                .map(|t| expiry_after(now, t))
        });
    }

    /// Keyspace `id`'s default time to live (none for a keyspace that is
    /// not live: the write fails on it anyway).
    fn default_ttl(&self, id: u32) -> Option<Duration> {
        if id == DEFAULT_KEYSPACE_ID {
            return self.default_ks.options().default_ttl;
        }
        self.keyspaces
            .load()
            .get(id)
            .and_then(|ks| ks.options().default_ttl)
    }
}

/// The expiry of a value written at `now` (micros) to live `ttl`; one
/// that would pass the clock's range never expires.
pub(crate) fn expiry_after(now: u64, ttl: Duration) -> u64 {
    now.saturating_add(u64::try_from(ttl.as_micros()).unwrap_or(u64::MAX))
}
