//! The read-only reader (issue 20: "a read-only process reads while the
//! writer writes and compacts, and refreshes; it never sees a partial
//! batch"): `strata-stress read`, a process of its own that the crash
//! test starts beside each cycle's writer once it acknowledged its first
//! write, and stops after the kill, before the verifier reopens the
//! database.
//!
//! It opens `D/db` with [`Db::open_read_only`] (no LOCK, no file
//! changed) and, until its stdin closes, refreshes and checks what a
//! partial batch would break, in the view each refresh built:
//!
//! - the bank (`bank.rs`): every account or none, the total intact, no
//!   balance negative, the touches even (each transfer is one batch
//!   writing two accounts, or a range delete and the span's puts);
//! - the tokens (`moves.rs`): each in exactly one of the two keyspaces
//!   (each move is one batch across them);
//! - and that a refresh never goes back: the last sequence number, the
//!   transfers and the token moves seen never decrease, and what was
//!   there once (the accounts, the tokens) stays.
//!
//! The merge counters are not checked: a reader does not know a
//! non-default keyspace's merge operator (docs/design/merge.md §5).
//! A failure ends the process with a non-zero status and the message on
//! stderr (`D/reader.log`), which the crash test reports as the cycle's
//! failure; on a clean stop it prints one `reader ok:` line of counts.

use crate::expected::AnyError;
use crate::{bank, moves};
use std::io::Read as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use strata::{Db, Options, ReadOnlyDb};

/// Pause between one check and the next refresh: the reader shares the
/// machine with the writer it watches; this bounds its share, and is no
/// synchronisation (every view it builds must hold).
const PAUSE: Duration = Duration::from_millis(5);

/// Refreshes that may fail in a row on files the writer deleted.
const REFRESH_RETRIES: u32 = 20;

/// What a reader saw, in all.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Seen {
    pub refreshes: u64,
    /// Refreshes that failed on files the writer deleted, and were
    /// tried again.
    pub refresh_retries: u64,
    /// Views in which the bank was audited, and the tokens located.
    pub bank_audits: u64,
    pub token_checks: u64,
    /// The most transfers and token moves seen, and the last sequence
    /// number.
    pub transfers: u64,
    pub token_moves: u64,
    pub last_seq: u64,
}

impl Seen {
    pub fn line(&self) -> String {
        format!(
            "reader ok: refreshes={} refresh_retries={} bank_audits={} token_checks={} transfers={} token_moves={} last_seq={}",
            self.refreshes,
            self.refresh_retries,
            self.bank_audits,
            self.token_checks,
            self.transfers,
            self.token_moves,
            self.last_seq
        )
    }

    /// Check the view `db` holds now against the invariants and what was
    /// seen before.
    pub fn check(&mut self, db: &ReadOnlyDb) -> Result<(), AnyError> {
        let seq = db.last_sequence();
        if seq < self.last_seq {
            return Err(format!(
                "a refresh went back: last sequence number {seq} after {}",
                self.last_seq
            )
            .into());
        }
        self.last_seq = seq;
        let names = db.keyspace_names();
        let has = |name: &str| names.iter().any(|n| n == name);
        if has(bank::KEYSPACE) {
            match bank::audit_with(|key| Ok(db.get_in(bank::KEYSPACE, key)?))? {
                Some(audit) => {
                    if audit.transfers < self.transfers {
                        return Err(format!(
                            "a refresh went back: {} transfers after {}",
                            audit.transfers, self.transfers
                        )
                        .into());
                    }
                    self.transfers = audit.transfers;
                    self.bank_audits += 1;
                }
                None if self.bank_audits > 0 => {
                    return Err("the bank's accounts were seen, then gone".into())
                }
                None => {}
            }
        }
        if moves::KEYSPACES.iter().all(|k| has(k)) {
            let located =
                moves::locate_with(|side, key| Ok(db.get_in(moves::KEYSPACES[side], key)?))?;
            match located {
                Some(tokens) => {
                    let total: u64 = tokens.iter().map(|&(_, m)| m).sum();
                    if total < self.token_moves {
                        return Err(format!(
                            "a refresh went back: {total} token moves after {}",
                            self.token_moves
                        )
                        .into());
                    }
                    self.token_moves = total;
                    self.token_checks += 1;
                }
                None if self.token_checks > 0 => {
                    return Err("the tokens were seen, then gone".into())
                }
                None => {}
            }
        }
        Ok(())
    }
}

/// Open `db_dir` read-only and refresh and check until stdin closes.
pub fn read_until_stdin_closes(db_dir: &Path, options: Options) -> Result<Seen, AnyError> {
    let closed = Arc::new(AtomicBool::new(false));
    {
        let closed = Arc::clone(&closed);
        std::thread::spawn(move || {
            let _ = std::io::copy(
                &mut std::io::stdin().lock().take(u64::MAX),
                &mut std::io::sink(),
            );
            closed.store(true, Ordering::Release);
        });
    }
    let db = Db::open_read_only(db_dir, options)
        .map_err(|e| format!("open_read_only of {}: {e}", db_dir.display()))?;
    let mut seen = Seen::default();
    let mut failed_in_a_row = 0;
    loop {
        seen.check(&db)
            .map_err(|e| format!("after {} refreshes: {e}", seen.refreshes))?;
        if closed.load(Ordering::Acquire) {
            return Ok(seen);
        }
        std::thread::sleep(PAUSE);
        match db.refresh() {
            Ok(()) => {
                seen.refreshes += 1;
                failed_in_a_row = 0;
            }
            // The writer deleted what every build needed (flushing
            // without pause): the view is the one before; call again
            // (`ReadOnlyDb::refresh`). Bounded, so a refresh that can
            // never succeed still fails the run.
            Err(strata::Error::Io { .. }) if failed_in_a_row < REFRESH_RETRIES => {
                failed_in_a_row += 1;
                seen.refresh_retries += 1;
            }
            Err(e) => return Err(format!("refresh {} failed: {e}", seen.refreshes + 1).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata::{WriteBatch, WriteOptions};

    /// The checks fail on what a reader without batch atomicity would
    /// see: a transfer's two accounts written as two writes, with a
    /// refresh between them; a token put without its delete; a view
    /// older than one already seen.
    #[test]
    fn a_partial_batch_in_a_refreshed_view_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let bank_ks = bank::open(&db).unwrap();
        bank::open_accounts(&db, &bank_ks).unwrap();
        let tokens = moves::open(&db).unwrap();
        moves::place(&db, &tokens).unwrap();
        let ro = Db::open_read_only(dir.path(), Options::default()).unwrap();
        let mut seen = Seen::default();
        seen.check(&ro).unwrap();
        assert_eq!((seen.bank_audits, seen.token_checks), (1, 1));

        // A whole transfer, refreshed: fine.
        bank::transfer(&db, &bank_ks, 1, 2, 10, strata::Isolation::Snapshot).unwrap();
        ro.refresh().unwrap();
        seen.check(&ro).unwrap();
        assert_eq!(seen.transfers, 1);

        // Half a transfer: the debit alone, seen by a refresh.
        bank_ks.put(bank::account_key(1), "980:2").unwrap();
        ro.refresh().unwrap();
        let e = seen.check(&ro).unwrap_err().to_string();
        assert!(e.contains("the bank's total is 99990"), "{e}");
        bank_ks.put(bank::account_key(2), "1020:2").unwrap();
        ro.refresh().unwrap();
        seen.check(&ro).unwrap();

        // Half a move: the put in `moves_b` without the delete in `moves_a`.
        let mut b = WriteBatch::new();
        b.put_in(&tokens[1], moves::token_key(5), "token00005:1");
        db.write_opt(b, &WriteOptions::default()).unwrap();
        ro.refresh().unwrap();
        let e = seen.check(&ro).unwrap_err().to_string();
        assert!(e.contains("token 5 is in both"), "{e}");

        // The move's other half, then a view older than one seen.
        tokens[0].delete(moves::token_key(5)).unwrap();
        ro.refresh().unwrap();
        seen.check(&ro).unwrap();
        let mut ahead = seen.clone();
        ahead.last_seq += 1;
        let e = ahead.check(&ro).unwrap_err().to_string();
        assert!(e.contains("a refresh went back"), "{e}");
    }
}
