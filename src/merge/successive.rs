//! `max_successive_merges` (RocksDB's name): a merge that finds more than
//! that many operands of its key at the head of the memtable is stored as
//! a put of the merged value, so a key merged without end (a counter)
//! does not make every read walk and merge an ever longer run of
//! operands until the next flush or compaction.
//!
//! Done where the write goes into the memtable, after its record is in
//! the WAL (as RocksDB's `MemTableInserter::MergeCF`): the WAL keeps the
//! operand, so a replay after a crash stores the operand again and reads
//! give the same value. The value merged onto is read at the sequence
//! number just below the operand's, which is exact only when every write
//! numbered before it is already in the memtables: memtable inserts run
//! in parallel, and an older write of the key still on its way would be
//! overwritten by the put (an increment lost). So it is done only when
//! everything before the write is published (a lone writer, or the first
//! of its group once those before it are visible), and only for a batch
//! of one merge (a batch's own earlier records are not in the memtable
//! yet). Otherwise the operand is stored as it is: the option is a bound
//! on read cost, never a change in what is read. Nor is it done over an
//! expiring value not yet expired (the merged value would outlive it:
//! docs/design/ttl.md), or when the merge fails (the operand stays, and
//! reads report the failure as before).

use crate::batch::{BatchOp, WriteBatch};
use crate::core::DbInner;
use crate::key_walk::{Base, KeyWalk, Step};
use crate::memtable::ActiveMemTables;
use crate::version::DEFAULT_KEYSPACE_ID;
use strata_sstable::{BlockReadOptions, SeqNo, ValueKind};

impl DbInner {
    /// Insert `batch` (numbered from `first_seq`) with its merge stored as
    /// a put of the merged value if `max_successive_merges` asks for it
    /// and it is safe; `false` (nothing inserted) otherwise, for the
    /// caller to insert the batch as it is. REQUIRES: `batch`'s record
    /// is sequenced; its memtable set is `mems`.
    pub(crate) fn insert_collapsing_merges(
        &self,
        mems: &ActiveMemTables,
        first_seq: SeqNo,
        batch: &WriteBatch,
    ) -> bool {
        if batch.count() != 1 {
            return false;
        }
        let Some(Ok(op)) = batch.iter().next() else {
            return false;
        };
        if op.kind != ValueKind::Merge {
            return false;
        }
        let ks = if op.keyspace == DEFAULT_KEYSPACE_ID {
            std::sync::Arc::clone(&self.default_ks)
        } else {
            match self.keyspaces.load().get(op.keyspace) {
                Some(ks) => std::sync::Arc::clone(ks),
                None => return false,
            }
        };
        let options = ks.options();
        let limit = options.max_successive_merges;
        if limit == 0 || self.visible_sequence() + 1 < first_seq {
            return false;
        }
        let Some(mem) = mems.get(op.keyspace) else {
            return false;
        };
        let Some(below) = first_seq.checked_sub(1) else {
            return false;
        };
        // The operands at the head of the key in this memtable.
        let mut head = KeyWalk::new(below);
        let _ = mem.walk(op.key, &mut head);
        if head.operands.len() < limit {
            return false;
        }
        let Some(value) = self.merged_value(&ks, op.key, op.value, below) else {
            return false;
        };
        mem.insert_batch(
            first_seq,
            std::iter::once(BatchOp {
                keyspace: op.keyspace,
                kind: ValueKind::Put,
                key: op.key,
                value: &value,
            }),
        );
        true
    }

    /// `operand` merged onto the value of `key` at sequence number `at`,
    /// or `None` when that cannot be stored as a put (an expiring base
    /// not yet expired, a read or merge error).
    fn merged_value(
        &self,
        ks: &crate::keyspace::KeyspaceState,
        key: &[u8],
        operand: &[u8],
        at: SeqNo,
    ) -> Option<Vec<u8>> {
        let sv = ks.current_super_version();
        let mut walk = KeyWalk::new(at);
        walk.operands.push(bytes::Bytes::copy_from_slice(operand));
        // The new operand is the newest; `KeyWalk::new` starts at `at`.
        let mut base = None;
        for mem in std::iter::once(&sv.mem).chain(sv.imms.iter()) {
            if let Step::Decided(b) = mem.walk(key, &mut walk) {
                base = Some(b);
                break;
            }
        }
        let base = match base {
            Some(b) => b,
            None => match sv.version.walk(key, &mut walk, BlockReadOptions::default()) {
                Ok(Step::Decided(b)) => b,
                Ok(Step::Continue) => Base::None,
                Err(_) => return None,
            },
        };
        let base = match base {
            Base::None => None,
            Base::Value(v) => Some(v),
            Base::Expiring(stored) => {
                let (expiry, _) = crate::ttl::split_expiring(&stored)?;
                if self.options.clock.now_micros() < expiry {
                    return None;
                }
                None
            }
        };
        let operator = ks.options().merge_operator.clone();
        super::full_merge(operator.as_ref(), key, base.as_deref(), &walk.operands).ok()
    }
}
