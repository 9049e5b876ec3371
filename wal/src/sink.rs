//! Where framed bytes go.

/// The destination of a [`Writer`](crate::Writer): an append-only file, in
/// the engine through its filesystem trait; a `Vec<u8>` in tests and benches.
///
/// Each method either succeeds completely or returns an error; after an error
/// the writer stops using the sink (see [`Writer`](crate::Writer)), so an
/// implementation need not make a failed `append` atomic.
pub trait Sink {
    /// Appends `data` at the end of the log.
    fn append(&mut self, data: &[u8]) -> std::io::Result<()>;
    /// Hands buffered bytes to the operating system (survives a process crash).
    fn flush(&mut self) -> std::io::Result<()>;
    /// Makes every appended byte durable (fsync; survives a power loss).
    fn sync(&mut self) -> std::io::Result<()>;
}

/// An in-memory log; `flush` and `sync` are no-ops.
impl Sink for Vec<u8> {
    fn append(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Lets a writer borrow a sink the caller keeps.
impl<S: Sink + ?Sized> Sink for &mut S {
    fn append(&mut self, data: &[u8]) -> std::io::Result<()> {
        (**self).append(data)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        (**self).flush()
    }

    fn sync(&mut self) -> std::io::Result<()> {
        (**self).sync()
    }
}

/// Lets the engine hold a `Writer<Box<dyn Sink>>` over any file type.
impl<S: Sink + ?Sized> Sink for Box<S> {
    fn append(&mut self, data: &[u8]) -> std::io::Result<()> {
        (**self).append(data)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        (**self).flush()
    }

    fn sync(&mut self) -> std::io::Result<()> {
        (**self).sync()
    }
}
