//! `BlobResolvingIter`: a table iterator of the read path that shows each
//! blob reference as the put of the value it points to, so the user-key
//! iterator, merges, cursors and transactions above never meet one.
//! Compaction reads tables without it: references move unchanged.
//!
//! A reference is resolved when the iterator stops on it (one blob read
//! each, also for versions a scan then steps over); a failed read is the
//! positioning's error.

use super::BlobFileSet;
use crate::error::Result;
use crate::iter::InternalIterator;
use bytes::Bytes;
use std::sync::Arc;
use strata_sstable::{encode_internal_key, parse_internal_key, ValueKind};

pub(crate) struct BlobResolvingIter<I> {
    inner: I,
    blobs: Arc<BlobFileSet>,
    /// The current entry as a put, when it is a resolved reference.
    resolved: Option<(Vec<u8>, Bytes)>,
}

impl<I: InternalIterator> BlobResolvingIter<I> {
    pub fn new(inner: I, blobs: Arc<BlobFileSet>) -> Self {
        BlobResolvingIter {
            inner,
            blobs,
            resolved: None,
        }
    }

    fn resolve(&mut self) -> Result<()> {
        self.resolved = None;
        if !self.inner.valid() {
            return Ok(());
        }
        let Some(k) = parse_internal_key(self.inner.key()) else {
            return Ok(()); // the layers above report a malformed key
        };
        if k.kind != ValueKind::BlobIndex {
            return Ok(());
        }
        let value = self.blobs.resolve(self.inner.value(), k.user_key)?;
        let mut key = Vec::with_capacity(self.inner.key().len());
        encode_internal_key(&mut key, k.user_key, k.seqno, ValueKind::Put);
        self.resolved = Some((key, value));
        Ok(())
    }
}

impl<I: InternalIterator> InternalIterator for BlobResolvingIter<I> {
    fn valid(&self) -> bool {
        self.inner.valid()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.inner.seek_to_first()?;
        self.resolve()
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.inner.seek_to_last()?;
        self.resolve()
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.inner.seek(target)?;
        self.resolve()
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        self.inner.seek_for_prev(target)?;
        self.resolve()
    }

    fn next(&mut self) -> Result<()> {
        self.inner.next()?;
        self.resolve()
    }

    fn prev(&mut self) -> Result<()> {
        self.inner.prev()?;
        self.resolve()
    }

    fn key(&self) -> &[u8] {
        match &self.resolved {
            Some((key, _)) => key,
            None => self.inner.key(),
        }
    }

    fn value(&self) -> &[u8] {
        match &self.resolved {
            Some((_, value)) => value,
            None => self.inner.value(),
        }
    }

    fn value_bytes(&self) -> Bytes {
        match &self.resolved {
            Some((_, value)) => value.clone(),
            None => self.inner.value_bytes(),
        }
    }
}
