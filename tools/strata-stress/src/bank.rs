//! A bank in keyspace `bank`: the crash test's check that optimistic
//! transactions are atomic and isolated through a kill -9.
//!
//! `ACCOUNTS` accounts start with `START` each, put in one synced batch by
//! the first run. A transfer is one transaction, at snapshot isolation or
//! serializable (drawn per transfer): it reads both accounts with
//! `get_for_update`, declines if the source holds less than the amount,
//! and otherwise writes both back and commits with `sync`. Any thread
//! transfers between any two accounts, so transfers conflict; a conflict
//! (`Error::Conflict`) writes nothing, and any other error fails the run.
//!
//! A transfer between accounts at most `REWRITE_SPAN` apart instead
//! rewrites the accounts between them: it scans them, deletes the span
//! with one range delete, and puts every account back, the two moved.
//! Atomicity keeps the range delete and the puts together through a kill
//! (else accounts go missing), and the range delete's conflicts (it
//! writes every key in the span) keep two transfers from overwriting each
//! other even though the scan alone is not a tracked read at snapshot
//! isolation (else the total changes).
//!
//! Each account's value is `balance:touches`, `touches` counting the
//! transfers that changed it, so after a kill the audit checks that the
//! total is intact, that no balance is negative, and that the touches sum
//! to an even number (every transfer touched two accounts); half the sum
//! is the transfers that survived, the crash test's sign of progress.

use crate::expected::AnyError;
use strata::{Db, Error, Isolation, Keyspace, TransactionOptions, WriteBatch, WriteOptions};

pub const ACCOUNTS: u32 = 100;
pub const START: i64 = 1000;
pub const KEYSPACE: &str = "bank";

pub fn account_key(i: u32) -> Vec<u8> {
    format!("account{i:05}").into_bytes()
}

fn account_value(balance: i64, touches: u64) -> Vec<u8> {
    format!("{balance}:{touches}").into_bytes()
}

/// An account's balance and touches, or an error naming it.
fn parse_account(i: u32, value: &[u8]) -> Result<(i64, u64), AnyError> {
    let text = String::from_utf8_lossy(value);
    text.split_once(':')
        .and_then(|(b, t)| Some((b.parse().ok()?, t.parse().ok()?)))
        .ok_or_else(|| format!("account {i} holds a foreign value {text:?}").into())
}

/// The bank's keyspace, created on first use.
pub fn open(db: &Db) -> Result<Keyspace, AnyError> {
    Ok(db.keyspace(KEYSPACE)?)
}

/// What an audit found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audit {
    pub total: i64,
    /// Transfers that changed the accounts, in all.
    pub transfers: u64,
}

/// Audit the accounts as they are now: `None` if the first batch never
/// made it (no account exists); an error if only some accounts exist, a
/// balance is negative, the total is not `ACCOUNTS * START`, or the
/// touches are odd (half a transfer).
pub fn audit(ks: &Keyspace) -> Result<Option<Audit>, AnyError> {
    audit_with(|key| Ok(ks.get(key)?))
}

/// [`audit`] over the accounts as `get` reads them (a read-only view's,
/// `reader.rs`).
pub fn audit_with(
    get: impl Fn(&[u8]) -> Result<Option<strata::Bytes>, AnyError>,
) -> Result<Option<Audit>, AnyError> {
    let mut total = 0i64;
    let mut touches = 0u64;
    let mut present = 0u32;
    for i in 0..ACCOUNTS {
        let Some(value) = get(&account_key(i))? else {
            continue;
        };
        present += 1;
        let (balance, t) = parse_account(i, &value)?;
        if balance < 0 {
            return Err(format!("account {i} holds a negative balance {balance}").into());
        }
        total += balance;
        touches += t;
    }
    if present == 0 {
        return Ok(None);
    }
    if present != ACCOUNTS {
        return Err(
            format!("{present} of {ACCOUNTS} accounts exist: the opening batch was torn").into(),
        );
    }
    let expected = i64::from(ACCOUNTS) * START;
    if total != expected {
        return Err(format!(
            "the bank's total is {total}, not {expected}: a transfer was lost in part or \
             two transfers overwrote each other"
        )
        .into());
    }
    if !touches.is_multiple_of(2) {
        return Err(format!(
            "the accounts were touched {touches} times, an odd number: half a transfer survived"
        )
        .into());
    }
    Ok(Some(Audit {
        total,
        transfers: touches / 2,
    }))
}

/// Open the accounts in one synced batch, unless they are open.
pub fn open_accounts(db: &Db, ks: &Keyspace) -> Result<(), AnyError> {
    if audit(ks)?.is_some() {
        return Ok(());
    }
    let mut batch = WriteBatch::new();
    for i in 0..ACCOUNTS {
        batch.put_in(ks, account_key(i), account_value(START, 0));
    }
    db.write_opt(
        batch,
        &WriteOptions {
            sync: true,
            ..Default::default()
        },
    )?;
    Ok(())
}

/// How a transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    Committed,
    /// The source held less than the amount: nothing written.
    Declined,
    /// Another commit wrote an account after this transaction's snapshot.
    Conflict,
}

/// Move `amount` from account `from` to account `to` in one synced
/// transaction.
pub fn transfer(
    db: &Db,
    ks: &Keyspace,
    from: u32,
    to: u32,
    amount: i64,
    isolation: Isolation,
) -> Result<Transfer, AnyError> {
    let mut tx = db.transaction_with(TransactionOptions {
        isolation,
        write_options: WriteOptions {
            sync: true,
            ..Default::default()
        },
        ..TransactionOptions::default()
    });
    let read = |tx: &mut strata::Transaction, i: u32| -> Result<(i64, u64), AnyError> {
        let value = tx
            .get_for_update(ks, account_key(i))?
            .ok_or_else(|| format!("account {i} is missing inside a transfer"))?;
        let (balance, touches) = parse_account(i, &value)?;
        if balance < 0 {
            return Err(format!("a transfer read account {i}'s balance as {balance}").into());
        }
        Ok((balance, touches))
    };
    if from.abs_diff(to) <= REWRITE_SPAN {
        return transfer_by_rewrite(tx, ks, from, to, amount);
    }
    let (from_balance, from_touches) = read(&mut tx, from)?;
    let (to_balance, to_touches) = read(&mut tx, to)?;
    if from_balance < amount {
        tx.rollback();
        return Ok(Transfer::Declined);
    }
    tx.put_in(
        ks,
        account_key(from),
        account_value(from_balance - amount, from_touches + 1),
    )?;
    tx.put_in(
        ks,
        account_key(to),
        account_value(to_balance + amount, to_touches + 1),
    )?;
    match tx.commit() {
        Ok(()) => Ok(Transfer::Committed),
        Err(Error::Conflict { .. }) => Ok(Transfer::Conflict),
        Err(e) => Err(e.into()),
    }
}

/// Transfers between accounts this close rewrite the span between them.
const REWRITE_SPAN: u32 = 6;

/// A transfer as a rewrite of accounts `from..=to` (either order): scan,
/// one range delete, every account put back.
fn transfer_by_rewrite(
    mut tx: strata::Transaction,
    ks: &Keyspace,
    from: u32,
    to: u32,
    amount: i64,
) -> Result<Transfer, AnyError> {
    let (lo, hi) = (from.min(to), from.max(to));
    let span = account_key(lo)..=account_key(hi);
    let mut accounts = Vec::new();
    for entry in tx.range_in(ks, span.clone())? {
        let (key, value) = entry?;
        let i = lo + accounts.len() as u32;
        if key[..] != account_key(i)[..] {
            return Err(format!("a rewrite found {key:?} where account {i} belongs").into());
        }
        accounts.push(parse_account(i, &value)?);
    }
    if accounts.len() as u32 != hi - lo + 1 {
        return Err(format!("a rewrite found {} accounts in {lo}..={hi}", accounts.len()).into());
    }
    let (f, t) = ((from - lo) as usize, (to - lo) as usize);
    if accounts[f].0 < amount {
        tx.rollback();
        return Ok(Transfer::Declined);
    }
    accounts[f] = (accounts[f].0 - amount, accounts[f].1 + 1);
    accounts[t] = (accounts[t].0 + amount, accounts[t].1 + 1);
    tx.delete_range_in(ks, span)?;
    for (n, (balance, touches)) in accounts.into_iter().enumerate() {
        tx.put_in(
            ks,
            account_key(lo + n as u32),
            account_value(balance, touches),
        )?;
    }
    match tx.commit() {
        Ok(()) => Ok(Transfer::Committed),
        Err(Error::Conflict { .. }) => Ok(Transfer::Conflict),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_refuses_a_changed_total_a_negative_balance_and_half_a_transfer() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), strata::Options::default()).unwrap();
        let ks = open(&db).unwrap();
        assert_eq!(audit(&ks).unwrap(), None, "nothing opened yet");
        open_accounts(&db, &ks).unwrap();
        let t = transfer(&db, &ks, 3, 7, 40, Isolation::Serializable).unwrap();
        assert_eq!(t, Transfer::Committed);
        let t = transfer(&db, &ks, 3, 7, START, Isolation::Snapshot).unwrap();
        assert_eq!(t, Transfer::Declined, "account 3 holds START - 40");
        // 3 and 7 are close (a rewrite of 3..=7 with a range delete);
        // 90 and 10 far apart (two get_for_update): a transfer each.
        let t = transfer(&db, &ks, 90, 10, 5, Isolation::Snapshot).unwrap();
        assert_eq!(t, Transfer::Committed);
        let t = transfer(&db, &ks, 10, 90, 5, Isolation::Snapshot).unwrap();
        assert_eq!(t, Transfer::Committed);
        let found = audit(&ks).unwrap().unwrap();
        assert_eq!(found.total, i64::from(ACCOUNTS) * START);
        assert_eq!(found.transfers, 3);

        // Half a transfer: the debit without the credit.
        ks.put(account_key(3), account_value(START - 80, 2))
            .unwrap();
        let e = audit(&ks).unwrap_err().to_string();
        assert!(e.contains("total is"), "{e}");
        // The total restored, but a touch counted once: half a transfer.
        ks.put(account_key(3), account_value(START - 40, 2))
            .unwrap();
        let e = audit(&ks).unwrap_err().to_string();
        assert!(e.contains("odd number"), "{e}");
        // A negative balance, the total kept.
        ks.put(account_key(3), account_value(-10, 1)).unwrap();
        ks.put(
            account_key(7),
            account_value(START + 40 + START - 40 + 10, 1),
        )
        .unwrap();
        let e = audit(&ks).unwrap_err().to_string();
        assert!(e.contains("negative balance -10"), "{e}");
        // A missing account.
        ks.put(account_key(3), account_value(START - 40, 1))
            .unwrap();
        ks.put(account_key(7), account_value(START + 40, 1))
            .unwrap();
        assert!(audit(&ks).unwrap().is_some());
        ks.delete(account_key(50)).unwrap();
        let e = audit(&ks).unwrap_err().to_string();
        assert!(e.contains("99 of 100 accounts"), "{e}");
    }
}
