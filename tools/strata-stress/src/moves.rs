//! Tokens moved between two keyspaces: the crash test's check that a
//! batch across keyspaces is atomic through a kill -9.
//!
//! `TOKENS` keys live in keyspace `moves_a` or `moves_b`, never both and
//! never neither: the first run puts them all in `moves_a` in one synced
//! batch, and from then on a move is one batch deleting a token in one
//! keyspace and putting it in the other (with a counter of its moves in
//! the value). Thread `t` moves the tokens `j` with `j % threads == t`, so
//! it knows where its tokens are. After a kill, every token must be in
//! exactly one keyspace (or none at all, if the first batch never made
//! it); the write log (`write_log.rs`) checks separately that recovery
//! applied exactly the logged prefix in every keyspace.

use crate::expected::AnyError;
use strata::{Db, Keyspace, WriteBatch, WriteOptions};

pub const TOKENS: u32 = 64;
pub const KEYSPACES: [&str; 2] = ["moves_a", "moves_b"];

pub fn token_key(j: u32) -> Vec<u8> {
    format!("token{j:05}").into_bytes()
}

fn token_value(j: u32, moves: u64) -> Vec<u8> {
    format!("token{j:05}:{moves}").into_bytes()
}

/// The two keyspaces, created on first use.
pub fn open(db: &Db) -> Result<[Keyspace; 2], AnyError> {
    Ok([db.keyspace(KEYSPACES[0])?, db.keyspace(KEYSPACES[1])?])
}

/// Where each token is (`0` or `1`) and how often it moved; `None` for a
/// database the first batch never reached. An error if a token is in
/// both keyspaces or neither, or its value is not its own.
pub fn locate(ks: &[Keyspace; 2]) -> Result<Option<Vec<(usize, u64)>>, AnyError> {
    locate_with(|side, key| Ok(ks[side].get(key)?))
}

/// [`locate`] with the keyspaces as `get(side, key)` reads them (a
/// read-only view's, `reader.rs`).
pub fn locate_with(
    get: impl Fn(usize, &[u8]) -> Result<Option<strata::Bytes>, AnyError>,
) -> Result<Option<Vec<(usize, u64)>>, AnyError> {
    let mut found = Vec::with_capacity(TOKENS as usize);
    for j in 0..TOKENS {
        let key = token_key(j);
        let a = get(0, &key)?;
        let b = get(1, &key)?;
        let (side, value) = match (a, b) {
            (Some(v), None) => (0, v),
            (None, Some(v)) => (1, v),
            (Some(_), Some(_)) => {
                return Err(format!("move torn: token {j} is in both keyspaces").into())
            }
            (None, None) => {
                if j == 0 {
                    // Not placed yet: then no token may be.
                    found.clear();
                    for k in 1..TOKENS {
                        let key = token_key(k);
                        if get(0, &key)?.is_some() || get(1, &key)?.is_some() {
                            return Err(format!(
                                "token {k} is placed but token 0 is in neither keyspace"
                            )
                            .into());
                        }
                    }
                    return Ok(None);
                }
                return Err(format!("move torn: token {j} is in neither keyspace").into());
            }
        };
        let text = String::from_utf8_lossy(&value).into_owned();
        let moves = text
            .strip_prefix(&format!("token{j:05}:"))
            .and_then(|m| m.parse::<u64>().ok())
            .ok_or_else(|| format!("token {j} holds a foreign value {text:?}"))?;
        // A token's moves alternate sides, starting in `moves_a`.
        if moves % 2 != side as u64 {
            return Err(format!(
                "token {j} moved {moves} times but is in {}",
                KEYSPACES[side]
            )
            .into());
        }
        found.push((side, moves));
    }
    Ok(Some(found))
}

/// Place every token in `moves_a` in one synced batch, unless placed.
pub fn place(db: &Db, ks: &[Keyspace; 2]) -> Result<Vec<(usize, u64)>, AnyError> {
    if let Some(found) = locate(ks)? {
        return Ok(found);
    }
    let mut batch = WriteBatch::new();
    for j in 0..TOKENS {
        batch.put_in(&ks[0], token_key(j), token_value(j, 0));
    }
    db.write_opt(
        batch,
        &WriteOptions {
            sync: true,
            ..Default::default()
        },
    )?;
    Ok(vec![(0, 0); TOKENS as usize])
}

/// Move token `j` from where it is (`at`, after `moves` moves) to the
/// other keyspace in one batch.
pub fn move_token(
    db: &Db,
    ks: &[Keyspace; 2],
    j: u32,
    at: (usize, u64),
    sync: bool,
) -> Result<(usize, u64), AnyError> {
    let (from, moves) = at;
    let to = 1 - from;
    let mut batch = WriteBatch::new();
    batch.delete_in(&ks[from], token_key(j));
    batch.put_in(&ks[to], token_key(j), token_value(j, moves + 1));
    db.write_opt(
        batch,
        &WriteOptions {
            sync,
            ..Default::default()
        },
    )?;
    Ok((to, moves + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_in_both_keyspaces_or_neither_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), strata::Options::default()).unwrap();
        let ks = open(&db).unwrap();
        assert!(locate(&ks).unwrap().is_none(), "nothing placed yet");
        let at = place(&db, &ks).unwrap();
        let moved = move_token(&db, &ks, 3, at[3], false).unwrap();
        assert_eq!(moved, (1, 1));
        assert_eq!(locate(&ks).unwrap().unwrap()[3], (1, 1));
        // Half a move: the put without the delete.
        ks[0].put(token_key(3), token_value(3, 0)).unwrap();
        let e = locate(&ks).unwrap_err().to_string();
        assert!(e.contains("token 3 is in both"), "{e}");
        // The delete without the put.
        ks[0].delete(token_key(3)).unwrap();
        ks[1].delete(token_key(3)).unwrap();
        let e = locate(&ks).unwrap_err().to_string();
        assert!(e.contains("token 3 is in neither"), "{e}");
    }
}
