#!/usr/bin/env bash
# Benchmark (not a test): many small collections, one per tenant, on
# Milvus 2.3.5. COLLECTIONS (default 300) collections spread over DATABASES
# (default 10) databases, ROWS rows each (default 1000; int64 key, int64
# tag, 8-dim vector; `gen_data.py many`, left unflushed for the backup's
# flush) are backed up (`create -d` every database), verified (`verify
# --restore-test`: each collection restored into a throwaway one on A and
# its rows counted) and restored into a second Milvus (B). All of it twice
# in one run: with the default parallelism (`backup.parallelism.
# backupCollection` 4, `restoreCollection` 2, `importJob` 4) and with one
# collection at a time (both keys 1); the data is made anew before each
# create, so both flush the same. Prints the wall time of each step, per
# collection, and the speed-up.
#
#   bench/many_collections.sh
#
# Env: COLLECTIONS, DATABASES, ROWS; VERIFY=restore-test (default), plain
# (`verify`: every file checked, no restore) or 0 (skipped);
# IMPORT_MODE=insert restores with `--import-mode insert` (the binlogs' rows
# inserted by the tool, not imported by Milvus one segment at a time); RESTORE=0
# skips the restore (Milvus standalone imports one segment at a time, so a
# restore of many collections takes seconds each).
# Uses its own servers (run dir /tmp/milvus-backup-bench-many, ports
# 22xxx); with MILVUS_BACKUP_BENCH_REUSE=1 the test environment already
# running at $MILVUS_BACKUP_TESTENV instead (A and B; left running).
# MILVUS_BACKUP_BIN: a binary already built (else a release build).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${COLLECTIONS:-300}
dbs=${DATABASES:-10}
rows=${ROWS:-1000}
verify=${VERIFY:-restore-test}
restore=${RESTORE:-1}
restore_args=()
[ -n "${IMPORT_MODE:-}" ] && restore_args=(--import-mode "$IMPORT_MODE")
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_servers many 22000 "A B"

bench_binary
work=$(mktemp -d)
root=bench_many_$$
prefix=bench_many_
for inst in A B; do
    bench_s3_config "$work/$inst.yaml" "$root" "$inst"
done
gen() { "$MBT_PY_23" scripts/gen_data.py "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
per() { awk -v t="$1" -v n="$n" 'BEGIN { printf "%.3f", t / n }'; }
databases=$(for ((j = 0; j < dbs; j++)); do printf '%sdb%02d,' "$prefix" "$j"; done)
databases=${databases%,}

declare -A took
for mode in default one; do
    sets=()
    [ "$mode" = one ] && sets=(--set backup.parallelism.backupCollection=1 --set backup.parallelism.restoreCollection=1)
    mb() { local inst=$1; shift; "$bin" -q --config "$work/$inst.yaml" "${sets[@]}" "$@"; }
    echo "== $mode: making $n collections x $rows rows in $dbs databases" >&2
    gen many-drop --port "$MBT_A_PORT" --prefix "$prefix" >/dev/null
    gen many-drop --port "$MBT_B_PORT" --prefix "$prefix" >/dev/null
    gen many --port "$MBT_A_PORT" --prefix "$prefix" --collections "$n" --databases "$dbs" --rows "$rows" --workers 4 >/dev/null
    name=${prefix}$mode
    t0=$(now)
    mb A create -n "$name" -d "$databases" >/dev/null
    took[$mode,create]=$(secs "$t0" "$(now)")
    if [ "$verify" != 0 ]; then
        vargs=(verify -n "$name")
        [ "$verify" = restore-test ] && vargs+=(--restore-test)
        t0=$(now)
        mb A "${vargs[@]}" >/dev/null
        took[$mode,verify]=$(secs "$t0" "$(now)")
    else
        took[$mode,verify]=0
    fi
    took[$mode,restore]=0
    if [ "$restore" != 0 ]; then
        t0=$(now)
        mb B restore -n "$name" "${restore_args[@]}" >/dev/null
        took[$mode,restore]=$(secs "$t0" "$(now)")
    fi
    mb A delete -n "$name" --yes >/dev/null
    gen many-drop --port "$MBT_B_PORT" --prefix "$prefix" >/dev/null
    echo "   create ${took[$mode,create]} s, verify ($verify) ${took[$mode,verify]} s, restore ${took[$mode,restore]} s" >&2
done
gen many-drop --port "$MBT_A_PORT" --prefix "$prefix" >/dev/null

printf '%s collections x %s rows in %s databases (Milvus %s):\n' "$n" "$rows" "$dbs" "$MBT_A_VERSION"
printf '  %-26s %10s %10s %10s\n' step "default" "one" "speed-up"
for step in create verify restore; do
    label=$step
    [ "$step" = verify ] && label="verify ($verify)"
    [ "$step" = restore ] && [ -n "${IMPORT_MODE:-}" ] && label="restore ($IMPORT_MODE)"
    d=${took[default,$step]} o=${took[one,$step]}
    [ "$d" = 0 ] && continue
    printf '  %-26s %9ss %9ss %9sx\n' "$label" "$d" "$o" "$(awk -v d="$d" -v o="$o" 'BEGIN { printf "%.1f", o / d }')"
    printf '  %-26s %9ss %9ss\n' "  per collection" "$(per "$d")" "$(per "$o")"
done
rm -rf "$work"
