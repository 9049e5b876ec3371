//! `--benchmarks`: the list, and RocksDB's repeat suffix `name[X5-W1]`
//! (5 measured runs after 1 warm-up run).

use crate::error::{BenchError, Result};
use crate::plan::KNOWN_BENCHMARKS;

/// One entry of `--benchmarks`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchSpec {
    pub name: String,
    /// Measured runs (`X`), at least 1.
    pub repeat: u32,
    /// Warm-up runs (`W`), reported but not averaged.
    pub warmup: u32,
}

/// Parse `--benchmarks`; every name must be known.
pub fn parse_benchmarks(list: &str) -> Result<Vec<BenchSpec>> {
    let mut specs = Vec::new();
    for item in list.split(',').map(str::trim) {
        if item.is_empty() {
            continue; // db_bench ignores empty names
        }
        let spec = parse_one(item)?;
        if !KNOWN_BENCHMARKS.contains(&spec.name.as_str()) {
            let hint = closest(&spec.name)
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            return Err(BenchError::usage(format!(
                "unknown benchmark `{}`{hint}; known: {}",
                spec.name,
                KNOWN_BENCHMARKS.join(", ")
            )));
        }
        specs.push(spec);
    }
    if specs.is_empty() {
        return Err(BenchError::usage("--benchmarks is empty"));
    }
    Ok(specs)
}

fn parse_one(item: &str) -> Result<BenchSpec> {
    let bad = || BenchError::usage(format!("unknown benchmark arguments `{item}`"));
    let (name, args) = match item.strip_suffix(']') {
        Some(head) => {
            let (name, args) = head.split_once('[').ok_or_else(bad)?;
            (name, args)
        }
        None => (item, ""),
    };
    let mut spec = BenchSpec {
        name: name.to_string(),
        repeat: 1,
        warmup: 0,
    };
    for arg in args.split('-').filter(|a| !a.is_empty()) {
        let (kind, count) = arg.split_at(1);
        let count: u32 = count.parse().map_err(|_| bad())?;
        match kind {
            "X" => spec.repeat = count.max(1),
            "W" => spec.warmup = count,
            _ => return Err(bad()),
        }
    }
    Ok(spec)
}

/// The known benchmark nearest to `name` by edit distance, if close.
fn closest(name: &str) -> Option<&'static str> {
    KNOWN_BENCHMARKS
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 3.max(k.len() / 3))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeat_suffix() {
        let s = parse_benchmarks("fillseq,readrandom[X5-W1],overwrite[X3]").unwrap();
        assert_eq!(s[0].repeat, 1);
        assert_eq!(
            (s[1].name.as_str(), s[1].repeat, s[1].warmup),
            ("readrandom", 5, 1)
        );
        assert_eq!((s[2].repeat, s[2].warmup), (3, 0));
    }

    #[test]
    fn unknown_names_are_errors_with_a_hint() {
        let e = parse_benchmarks("fillseq,redrandom")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `readrandom`"), "{e}");
        assert!(parse_benchmarks("readrandom[Q5]").is_err());
        assert!(parse_benchmarks("readrandom[X5").is_err());
    }
}
