//! The public iterators: a seekable [`Cursor`] and the double-ended
//! [`Iter`] that `range`, `prefix` and `iter` return.

use crate::error::Result;
use crate::iter::DbIter;
use crate::read::ReadView;
use bytes::Bytes;

/// A seekable position in the database at a fixed point in time (the
/// snapshot or the moment it was created). Writes made afterwards are not
/// seen; flushes and compactions do not disturb it.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let db = strata::Db::open(dir.path(), strata::Options::default()).unwrap();
/// db.put(b"a", b"1")?;
/// db.put(b"c", b"3")?;
/// let mut cursor = db.cursor();
/// cursor.seek(b"b")?;
/// assert_eq!(cursor.key(), Some(&b"c"[..]));
/// cursor.prev()?;
/// assert_eq!(cursor.value(), Some(&b"1"[..]));
/// # Ok::<(), strata::Error>(())
/// ```
pub struct Cursor {
    iter: DbIter,
}

impl Cursor {
    pub(crate) fn new(iter: DbIter) -> Self {
        Cursor { iter }
    }

    /// Whether the cursor is at an entry.
    pub fn valid(&self) -> bool {
        self.iter.valid()
    }

    /// Position at the first key `>= key`.
    pub fn seek(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        self.iter.seek(key.as_ref())
    }

    /// Position at the last key `<= key`.
    pub fn seek_for_prev(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        self.iter.seek_for_prev(key.as_ref())
    }

    /// Position at the last key `< key`.
    pub(crate) fn seek_before(&mut self, key: &[u8]) -> Result<()> {
        self.iter.seek_before(key)
    }

    /// Position at the first key.
    pub fn seek_to_first(&mut self) -> Result<()> {
        self.iter.seek_to_first()
    }

    /// Position at the last key.
    pub fn seek_to_last(&mut self) -> Result<()> {
        self.iter.seek_to_last()
    }

    /// Move to the next key; no-op when not valid.
    #[expect(
        clippy::should_implement_trait,
        reason = "a cursor moves in place and can fail; it is not an Iterator"
    )]
    pub fn next(&mut self) -> Result<()> {
        if self.iter.valid() {
            self.iter.next()?;
        }
        Ok(())
    }

    /// Move to the previous key; no-op when not valid.
    pub fn prev(&mut self) -> Result<()> {
        if self.iter.valid() {
            self.iter.prev()?;
        }
        Ok(())
    }

    /// The current key, or `None` when not valid.
    pub fn key(&self) -> Option<&[u8]> {
        self.iter.valid().then(|| self.iter.key())
    }

    /// The current value, or `None` when not valid.
    pub fn value(&self) -> Option<&[u8]> {
        self.iter.valid().then(|| self.iter.value())
    }
}

/// A double-ended iterator over `(key, value)` pairs in key order, at a
/// fixed point in time. Items are `Result`s: a damaged table surfaces as
/// an `Err` item, after which the iterator ends.
///
/// Iterating from both ends at once is allowed; the two ends stop when
/// they meet.
pub struct Iter {
    view: ReadView,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    front: Option<DbIter>,
    back: Option<DbIter>,
    /// The end's iterator was placed (`skip_front_to`, `skip_back_before`)
    /// on the entry it yields next, rather than on the one it yielded.
    front_placed: bool,
    back_placed: bool,
    /// The last key yielded from each end, to stop where they meet.
    front_last: Option<Bytes>,
    back_last: Option<Bytes>,
    done: bool,
}

impl Iter {
    pub(crate) fn new(view: ReadView, lower: Option<Vec<u8>>, upper: Option<Vec<u8>>) -> Self {
        let empty = matches!((&lower, &upper), (Some(l), Some(u)) if l >= u);
        Iter {
            view,
            lower,
            upper,
            front: None,
            back: None,
            front_placed: false,
            back_placed: false,
            front_last: None,
            back_last: None,
            done: empty,
        }
    }

    fn make(&self) -> DbIter {
        self.view.db_iter(self.lower.clone(), self.upper.clone())
    }

    fn fail<T>(&mut self, e: crate::Error) -> Option<Result<T>> {
        self.done = true;
        Some(Err(e))
    }

    /// Move the front past every key before `target` (`None`: past every
    /// key), with one seek: a transaction's iterator skips a range it
    /// deleted.
    pub(crate) fn skip_front_to(&mut self, target: Option<&[u8]>) -> Result<()> {
        if self.done {
            return Ok(());
        }
        let Some(target) = target else {
            self.done = true;
            return Ok(());
        };
        let mut it = self.front.take().unwrap_or_else(|| self.make());
        let r = it.seek(target);
        self.front = Some(it);
        self.front_placed = true;
        if r.is_err() {
            self.done = true;
        }
        r
    }

    /// Move the back before every key from `target` on, with one seek.
    pub(crate) fn skip_back_before(&mut self, target: &[u8]) -> Result<()> {
        if self.done {
            return Ok(());
        }
        let mut it = self.back.take().unwrap_or_else(|| self.make());
        let r = it.seek_before(target);
        self.back = Some(it);
        self.back_placed = true;
        if r.is_err() {
            self.done = true;
        }
        r
    }
}

impl Iterator for Iter {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let moved = match self.front.as_mut() {
            Some(_) if self.front_placed => {
                self.front_placed = false;
                Ok(())
            }
            Some(it) => it.next(),
            None => {
                let mut it = self.make();
                let r = it.seek_to_first();
                self.front = Some(it);
                r
            }
        };
        if let Err(e) = moved {
            return self.fail(e);
        }
        let it = self.front.as_ref()?;
        if !it.valid() {
            self.done = true;
            return None;
        }
        let key = Bytes::copy_from_slice(it.key());
        if self.back_last.as_ref().is_some_and(|b| key >= *b) {
            self.done = true;
            return None;
        }
        let value = it.value_bytes();
        self.front_last = Some(key.clone());
        Some(Ok((key, value)))
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let moved = match self.back.as_mut() {
            Some(_) if self.back_placed => {
                self.back_placed = false;
                Ok(())
            }
            Some(it) => it.prev(),
            None => {
                let mut it = self.make();
                let r = it.seek_to_last();
                self.back = Some(it);
                r
            }
        };
        if let Err(e) = moved {
            return self.fail(e);
        }
        let it = self.back.as_ref()?;
        if !it.valid() {
            self.done = true;
            return None;
        }
        let key = Bytes::copy_from_slice(it.key());
        if self.front_last.as_ref().is_some_and(|f| key <= *f) {
            self.done = true;
            return None;
        }
        let value = it.value_bytes();
        self.back_last = Some(key.clone());
        Some(Ok((key, value)))
    }
}

impl std::iter::FusedIterator for Iter {}
