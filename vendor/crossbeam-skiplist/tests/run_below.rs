//! strata's patch: `for_each_run_below` hands out a run of the nodes just
//! below a bound, in order, ending at the bound's predecessor.

use crossbeam_skiplist::SkipMap;
use std::ops::Bound;

/// What every run must be: a non-empty (when anything precedes `bound`)
/// contiguous stretch of the keys below `bound`, in ascending order, whose
/// last key is the last one below `bound`.
fn check_run(keys: &[u64], bound: Bound<&u64>, run: &[u64]) {
    let below: Vec<u64> = keys
        .iter()
        .copied()
        .filter(|k| match bound {
            Bound::Unbounded => true,
            Bound::Included(b) => k <= b,
            Bound::Excluded(b) => k < b,
        })
        .collect();
    if below.is_empty() {
        assert!(run.is_empty(), "nothing below {bound:?}, yet {run:?}");
        return;
    }
    assert!(!run.is_empty(), "keys below {bound:?}, yet an empty run");
    assert!(
        below.ends_with(run),
        "run {run:?} is not the end of the keys below {bound:?}"
    );
}

#[test]
fn a_run_is_the_end_of_the_keys_below_the_bound() {
    let map = SkipMap::new();
    let keys: Vec<u64> = (0..3000).map(|i| i * 3).collect();
    // Inserted out of order, as a memtable's keys come: a list filled in
    // key order lays its towers out in the order the height generator
    // drew them, and its draws are correlated enough to double the runs
    // at some levels.
    for i in 0..3000 {
        let k = keys[(i * 1777) % 3000];
        map.insert(k, k * 10);
    }
    let mut total = [0usize; 8];
    let mut runs = 0usize;
    let mut longer = [0usize; 8];
    for b in (0..9100).step_by(7) {
        for bound in [Bound::Included(&b), Bound::Excluded(&b), Bound::Unbounded] {
            let mut previous: Vec<u64> = Vec::new();
            for level in 0..8 {
                let mut run = Vec::new();
                map.for_each_run_below(bound, level, |k, v| {
                    assert_eq!(*v, k * 10);
                    run.push(*k);
                });
                check_run(&keys, bound, &run);
                // A run one level up starts at a taller tower, so at or
                // before this one.
                assert!(run.ends_with(&previous), "level {level}: {run:?} / {previous:?}");
                if level > 0 && run.len() > previous.len() {
                    longer[level] += 1;
                }
                total[level] += run.len();
                previous = run;
            }
            runs += 1;
        }
    }
    // At level `l` a run goes back to a tower taller than `l`, one node in
    // 2^l: level 0 is one node (none only below `Excluded(&0)`), and each
    // level up about doubles it (checked up to level 5, where 3,000 keys
    // still hold some 90 such towers).
    assert_eq!(total[0], runs - 1);
    for level in 1..6 {
        let mean = total[level] as f64 / runs as f64;
        let expected = f64::from(1u32 << level);
        assert!(
            mean > expected * 0.5 && mean < expected * 1.6,
            "level {level}: mean run length {mean}, expected about {expected}"
        );
        assert!(longer[level] > 0, "level {level} never longer than {}", level - 1);
    }
}

#[test]
fn level_zero_gives_one_node_and_an_empty_list_none() {
    let map: SkipMap<u64, ()> = SkipMap::new();
    let mut run = Vec::new();
    map.for_each_run_below(Bound::Unbounded, 4, |k, _| run.push(*k));
    assert!(run.is_empty());
    for k in 0..100u64 {
        map.insert(k, ());
    }
    map.for_each_run_below(Bound::Excluded(&50), 0, |k, _| run.push(*k));
    assert_eq!(run, vec![49]);
}

#[test]
fn removed_nodes_are_not_in_a_run() {
    let map = SkipMap::new();
    let mut keys: Vec<u64> = (0..2000).collect();
    for &k in &keys {
        map.insert(k, ());
    }
    for k in (0..2000).filter(|k| k % 3 == 1) {
        map.remove(&k);
    }
    keys.retain(|k| k % 3 != 1);
    for level in [0, 2, 4, 6] {
        for b in 0..2005u64 {
            let mut run = Vec::new();
            map.for_each_run_below(Bound::Excluded(&b), level, |k, _| run.push(*k));
            check_run(&keys, Bound::Excluded(&b), &run);
        }
    }
}

#[test]
fn runs_stay_ordered_while_other_threads_insert() {
    let map = SkipMap::new();
    for k in (0..20_000u64).step_by(2) {
        map.insert(k, ());
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            for k in (1..20_000u64).step_by(2) {
                map.insert(k, ());
            }
        });
        for _ in 0..4 {
            let mut bound = 20_000u64;
            loop {
                let mut run = Vec::new();
                map.for_each_run_below(Bound::Excluded(&bound), 4, |k, _| run.push(*k));
                let Some(&last) = run.last() else { break };
                assert!(run.windows(2).all(|w| w[0] < w[1]), "{run:?}");
                assert!(last < bound);
                // Every even key was there before the walk began.
                let even_below = if bound % 2 == 0 { bound - 2 } else { bound - 1 };
                assert!(last >= even_below, "skipped {even_below}: run ends at {last}");
                bound = run[0];
            }
        }
    });
}
