//! A checker for transaction histories, after Adya's direct serialization
//! graph (Adya, Liskov, O'Neil: "Generalized Isolation Level Definitions",
//! 2000; the anomalies of Berenson et al. 1995 in its terms).
//!
//! The workload makes versions recoverable the way Jepsen's Elle does with
//! list-append: every write of key `k` by transaction `t` reads `k`'s list
//! of writer ids and writes it back with `t` appended. The final list of a
//! key is then its version order (every committed writer once, in order),
//! and a read that saw a list saw the version its last id wrote.
//!
//! From committed transactions it builds the dependencies:
//! - `ww`: the writer of a version to the writer of the next;
//! - `wr`: the writer of the version a read saw, to the reader;
//! - `rw` (item anti-dependency): a reader to the writer of the version
//!   after the one it read;
//! - `rw` (predicate anti-dependency): a range reader to the first writer
//!   after what it saw of each key in the range (a key it did not see
//!   at all: its first writer, an insert into the range).
//!
//! and looks for the cycles each level forbids:
//! - G0 (write cycles): a cycle of `ww` edges;
//! - G1a (aborted reads): a read of an aborted transaction's write;
//! - G1c (circular information flow): a cycle of `ww`/`wr` edges;
//! - G-single (read skew, forbidden by snapshot isolation): a cycle with
//!   exactly one anti-dependency edge;
//! - G2-item / G2 (forbidden by serializability): any cycle, with item
//!   or predicate anti-dependencies.
//!
//! Beside cycles, a read whose list is not a prefix of the key's final
//! list, or a committed writer missing from it (a lost update), breaks the
//! version order and is reported too. (G1b, intermediate reads, cannot
//! arise: each transaction writes a key at most once.)

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub type TxnId = u64;

/// What a transaction saw of one key: the list of writer ids.
pub type Seen = Vec<TxnId>;

/// One transaction as the client recorded it.
#[derive(Clone, Debug, Default)]
pub struct Txn {
    pub id: TxnId,
    pub committed: bool,
    /// Keys read (before any write of its own to them), with what was seen.
    pub reads: Vec<(String, Seen)>,
    /// Range reads: `[start, end)` and what was seen of each key in it.
    pub scans: Vec<(String, String, BTreeMap<String, Seen>)>,
    /// Keys written (each at most once).
    pub writes: Vec<String>,
}

/// The isolation level to check against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Snapshot,
    Serializable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Edge {
    Ww,
    Wr,
    Rw,
}

/// Check `history` (with `finals`: each key's list at the end) against
/// `level`; `Err` names the first anomaly found.
pub fn check(history: &[Txn], finals: &BTreeMap<String, Seen>, level: Level) -> Result<(), String> {
    let by_id: HashMap<TxnId, &Txn> = history.iter().map(|t| (t.id, t)).collect();
    let committed = |id: TxnId| by_id.get(&id).is_some_and(|t| t.committed);
    // Version order, and G1a.
    for (key, list) in finals {
        for &w in list {
            if !committed(w) {
                return Err(format!(
                    "G1a: key {key} holds a write of uncommitted txn {w}"
                ));
            }
        }
        let unique: BTreeSet<_> = list.iter().collect();
        if unique.len() != list.len() {
            return Err(format!("key {key} holds a writer twice: {list:?}"));
        }
    }
    for t in history.iter().filter(|t| t.committed) {
        for k in &t.writes {
            if !finals.get(k).is_some_and(|l| l.contains(&t.id)) {
                return Err(format!(
                    "lost update: txn {} wrote {k}, missing from {:?}",
                    t.id,
                    finals.get(k)
                ));
            }
        }
    }
    let empty = Vec::new();
    let final_of = |k: &str| finals.get(k).unwrap_or(&empty);
    let mut edges: BTreeSet<(TxnId, TxnId, Edge)> = BTreeSet::new();
    for list in finals.values() {
        for pair in list.windows(2) {
            edges.insert((pair[0], pair[1], Edge::Ww));
        }
    }
    // Reads: wr from the writer seen, rw to the next writer.
    let mut read_edges = |t: &Txn, key: &str, seen: &Seen| -> Result<(), String> {
        let fin = final_of(key);
        if !fin.starts_with(seen) {
            return Err(format!(
                "txn {} read {key} as {seen:?}, not a prefix of its final {fin:?}",
                t.id
            ));
        }
        for &w in seen {
            if !committed(w) {
                return Err(format!(
                    "G1a: txn {} read {key} written by aborted txn {w}",
                    t.id
                ));
            }
        }
        if let Some(&w) = seen.last() {
            if w != t.id {
                edges.insert((w, t.id, Edge::Wr));
            }
        }
        if let Some(&next) = fin.get(seen.len()) {
            if next != t.id {
                edges.insert((t.id, next, Edge::Rw));
            }
        }
        Ok(())
    };
    for t in history.iter().filter(|t| t.committed) {
        for (key, seen) in &t.reads {
            read_edges(t, key, seen)?;
        }
        for (start, end, seen) in &t.scans {
            for (key, _) in finals.range(start.clone()..end.clone()) {
                let s = seen.get(key).unwrap_or(&empty);
                read_edges(t, key, s)?;
            }
            for key in seen.keys() {
                if !finals.contains_key(key) {
                    return Err(format!("txn {} saw {key}, which no one wrote", t.id));
                }
            }
        }
    }
    let with = |allowed: &[Edge]| -> HashMap<TxnId, Vec<TxnId>> {
        let mut g: HashMap<TxnId, Vec<TxnId>> = HashMap::new();
        for &(a, b, e) in &edges {
            if allowed.contains(&e) {
                g.entry(a).or_default().push(b);
            }
        }
        g
    };
    if let Some(c) = find_cycle(&with(&[Edge::Ww])) {
        return Err(format!("G0: write cycle {c:?}"));
    }
    let flow = with(&[Edge::Ww, Edge::Wr]);
    if let Some(c) = find_cycle(&flow) {
        return Err(format!("G1c: circular information flow {c:?}"));
    }
    // G-single: one rw edge a -> b closed by ww/wr edges from b to a.
    for &(a, b, e) in &edges {
        if e == Edge::Rw && reaches(&flow, b, a) {
            return Err(format!(
                "G-single: txn {a} -rw-> {b}, and {b} reaches {a} by ww/wr"
            ));
        }
    }
    if level == Level::Serializable {
        if let Some(c) = find_cycle(&with(&[Edge::Ww, Edge::Wr, Edge::Rw])) {
            return Err(format!("G2: cycle with anti-dependencies {c:?}"));
        }
    }
    Ok(())
}

fn reaches(g: &HashMap<TxnId, Vec<TxnId>>, from: TxnId, to: TxnId) -> bool {
    let mut seen = BTreeSet::from([from]);
    let mut stack = vec![from];
    while let Some(n) = stack.pop() {
        if n == to {
            return true;
        }
        for &m in g.get(&n).into_iter().flatten() {
            if seen.insert(m) {
                stack.push(m);
            }
        }
    }
    false
}

/// A cycle in `g`, if any (iterative depth-first search, three colours).
fn find_cycle(g: &HashMap<TxnId, Vec<TxnId>>) -> Option<Vec<TxnId>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        Grey,
        Black,
    }
    let mut colour: HashMap<TxnId, Colour> = HashMap::new();
    let mut nodes: Vec<TxnId> = g.keys().copied().collect();
    nodes.sort_unstable();
    for &root in &nodes {
        if colour.contains_key(&root) {
            continue;
        }
        let mut path: Vec<(TxnId, usize)> = vec![(root, 0)];
        colour.insert(root, Colour::Grey);
        while let Some(&mut (n, ref mut i)) = path.last_mut() {
            let next = g.get(&n).and_then(|out| out.get(*i)).copied();
            *i += 1;
            match next {
                None => {
                    colour.insert(n, Colour::Black);
                    path.pop();
                }
                Some(m) => match colour.get(&m) {
                    Some(Colour::Grey) => {
                        let from = path.iter().position(|&(p, _)| p == m).unwrap_or(0);
                        return Some(path[from..].iter().map(|&(p, _)| p).collect());
                    }
                    Some(Colour::Black) => {}
                    None => {
                        colour.insert(m, Colour::Grey);
                        path.push((m, 0));
                    }
                },
            }
        }
    }
    None
}
