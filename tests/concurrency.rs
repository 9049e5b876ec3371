//! Many threads writing and reading at once; at the end every write is
//! there.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strata::fs::MemFileSystem;
use strata::WriteBatch;

#[test]
fn eight_threads_write_and_read_concurrently() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 3000;
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let id = t * PER_THREAD + i;
                    if i % 10 == 0 {
                        let mut b = WriteBatch::new();
                        b.put(key(id), value(id, 0));
                        b.put(format!("batch-{t}-{i}"), b"x");
                        db.write(b).unwrap();
                    } else {
                        db.put(key(id), value(id, 0)).unwrap();
                    }
                    // Read back our own write and a neighbour's key.
                    assert_eq!(db.get(key(id)).unwrap().unwrap(), value(id, 0));
                    let other = ((t + 1) % THREADS) * PER_THREAD + i / 2;
                    if let Some(v) = db.get(key(other)).unwrap() {
                        assert_eq!(v, value(other, 0));
                    }
                    if i % 500 == 0 {
                        let n = db.prefix(format!("batch-{t}-")).count();
                        assert!(n >= i / 10);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    for id in 0..THREADS * PER_THREAD {
        assert_eq!(db.get(key(id)).unwrap().unwrap(), value(id, 0), "key {id}");
    }
    assert_eq!(db.prefix(b"key").count(), THREADS * PER_THREAD);
    assert_eq!(db.prefix(b"batch-").count(), THREADS * PER_THREAD / 10);
}
