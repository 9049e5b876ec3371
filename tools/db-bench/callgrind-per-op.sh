#!/bin/sh
# Instructions per operation of a db-bench read benchmark over an existing
# strata database, counted by callgrind: two runs of N1 and N2 operations
# on fresh copies of the database, and the difference of their totals over
# N2 - N1, so that opening, WAL replay and exit cancel out. Counts are
# stable from run to run, unlike wall-clock time on a shared machine
# (docs/performance.md, "Range deletes", uses it).
#
# usage: tools/db-bench/callgrind-per-op.sh DB_BENCH DB BENCHMARK [N1 N2 [FLAGS...]]
#   DB_BENCH  a release db-bench binary (copy it out of target/ first)
#   DB        a database db-bench made; it is copied, never opened itself
#   FLAGS     more db-bench flags, none of those in CG_FLAGS
# CG_FLAGS (default "--num=1000000 --seed=1 --cache_size=67108864
# --seek_nexts=10") holds the flags every run gets.
# CG_OUT (default ./callgrind-per-op) receives the callgrind profiles
# (BENCH-N.out, for callgrind_annotate) and db-bench's output.
set -eu
if [ $# -lt 3 ]; then
    sed -n '2,/^set -eu/p' "$0" | sed '$d'
    exit 2
fi
B=$1; DB=$2; BENCH=$3; N1=${4:-20000}; N2=${5:-60000}
shift 3; if [ $# -ge 2 ]; then shift 2; else shift $#; fi
OUT=${CG_OUT:-./callgrind-per-op}; mkdir -p "$OUT"
FLAGS=${CG_FLAGS:---num=1000000 --seed=1 --cache_size=67108864 --seek_nexts=10}
tag=$(basename "$DB")-$BENCH
total() {
    n=$1; shift
    rm -rf "$OUT/db"; cp -r "$DB" "$OUT/db"
    # $FLAGS unquoted: one word per flag.
    # shellcheck disable=SC2086
    if ! valgrind --tool=callgrind --callgrind-out-file="$OUT/$tag-$n.out" \
        "$B" --engine=strata --use_existing_db --db="$OUT/db" $FLAGS \
        --reads="$n" --benchmarks="$BENCH" "$@" >"$OUT/$tag-$n.log" 2>&1; then
        echo "db-bench failed, see $OUT/$tag-$n.log:" >&2
        grep -v '^==' "$OUT/$tag-$n.log" | tail -5 >&2
        exit 1
    fi
    rm -rf "$OUT/db"
    sed -n 's/^summary: //p' "$OUT/$tag-$n.out"
}
a=$(total "$N1" "$@"); b=$(total "$N2" "$@")
echo "$tag $(( (b - a) / (N2 - N1) )) instructions/op ($a at $N1, $b at $N2)"
