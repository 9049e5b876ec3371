//! Arbitrary bytes as a write batch read back from a WAL record. Nothing
//! may panic; no more records decode than the header counts; a range
//! delete that decodes has no end or an end after its start; the records
//! that decode (puts, deletes, range deletes), put into a new `WriteBatch`
//! with `push_op`, come back out identical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::inspect::{BatchOp, DecodedBatch};
use strata::WriteBatch;
use strata_sstable::ValueKind;

fuzz_target!(|data: &[u8]| {
    let Ok(decoded) = DecodedBatch::new(data) else {
        assert!(data.len() < 12, "a full header always decodes");
        return;
    };
    let mut ops: Vec<BatchOp<'_>> = Vec::new();
    let mut failed = false;
    for op in decoded.iter() {
        match op {
            Ok(op) => {
                assert!(!failed, "a record after an error");
                if op.kind == ValueKind::RangeDelete {
                    assert!(op.range_end().is_none_or(|end| end > op.key));
                }
                ops.push(op);
            }
            Err(e) => {
                assert!(e.offset <= data.len());
                failed = true;
            }
        }
    }
    assert!(ops.len() as u64 <= u64::from(decoded.count()));
    let mut batch = WriteBatch::new();
    for op in &ops {
        batch.push_op(*op);
    }
    assert_eq!(batch.len(), ops.len());
    let again: Vec<BatchOp<'_>> = batch.iter().map(|r| r.expect("own encoding")).collect();
    assert_eq!(again, ops);
});
