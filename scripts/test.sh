#!/usr/bin/env bash
# The whole test suite, from a bare machine: installs the test servers
# (Milvus 2.3.5 and 2.2.16, two S3 services; see scripts/testenv.sh), starts
# them once, and runs every unit and system test against them, then the
# Python SDK's tests (python/tests) against the binary just built.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh storage::       # only Rust tests whose name matches (no SDK tests)
#
# Servers keep running afterwards for quick re-runs, except under CI
# (CI=true) or with MBT_STOP=1; stop them with `scripts/testenv.sh stop`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null; then
  echo "error: cargo not found — install Rust (https://rustup.rs) first" >&2
  exit 1
fi

started=$(date +%s)
# A debug build of the workspace and its tests takes about 25 GB; a full
# disk shows up later as a linker "Bus error" or as failing servers.
free_gb=$(df -Pk . | awk 'NR==2 {print int($4 / 1048576)}')
if [ "$free_gb" -lt 30 ]; then
  echo "warning: only ${free_gb} GB free under $PWD; the build and the test servers need about 30 GB" >&2
fi
scripts/testenv.sh start
if [ "${CI:-}" = "true" ] || [ "${MBT_STOP:-}" = "1" ]; then
  trap 'scripts/testenv.sh stop' EXIT
fi
# shellcheck disable=SC1091
source "${MILVUS_BACKUP_TESTENV:-/tmp/milvus-backup-testenv}/env.sh"
echo "test servers ready after $(( $(date +%s) - started )) s"

# Build everything first; then the Python SDK's tests (python/) run beside
# the Rust tests, against a server run from the binary just built. They
# use their own collections and backup root, so they share the servers.
# Every cargo command below says --workspace: with -p a crate is built with
# only its own features, a second build of it and of its dependencies.
cargo test --workspace --all-targets --locked --no-run
cargo build --workspace --locked --bins
sdk_python=${MBT_PY_SDK:-${MILVUS_BACKUP_CACHE:-$HOME/.cache/milvus-backup-testenv}/venv-sdk/bin/python}
[ -x "$sdk_python" ] || scripts/testenv.sh install-sdk
"$sdk_python" -m pip install -q --no-deps --no-build-isolation --no-index --force-reinstall ./python
sdk_log=$(mktemp)
if [ $# -eq 0 ]; then
  # pytest exits non-zero on failures and with 5 when it ran no test: both fail below.
  MILVUS_BACKUP_BIN="$PWD/target/debug/milvus-backup" "$sdk_python" -m pytest python/tests -q -p no:cacheprovider >"$sdk_log" 2>&1 &
  sdk_pid=$!
fi

rust_status=0
if [ $# -eq 0 ]; then
  # Three groups side by side (the system tests mostly wait on the
  # servers): unit tests, the CLI's system tests, the REST server's tests.
  logs=$(mktemp -d)
  cargo test --workspace --lib --bins --locked -- --test-threads 2 >"$logs/unit.log" 2>&1 &
  unit_pid=$!
  # Each test binary generates (and drops) its own data on the servers:
  # the server's tests use their own prefix so the two never clash.
  MBT_GEN_PREFIX="${MBT_SERVER_GEN_PREFIX:-srv_}" cargo test --workspace --locked --test server -- --test-threads "${MBT_SERVER_TEST_THREADS:-2}" >"$logs/server.log" 2>&1 &
  server_pid=$!
  cargo test --workspace --locked --test system -- --test-threads "${MBT_TEST_THREADS:-4}" >"$logs/system.log" 2>&1 &
  system_pid=$!
  for group in unit server system; do
    pid_var="${group}_pid"
    if ! wait "${!pid_var}"; then rust_status=1; fi
    echo "--- cargo test: $group (finished after $(( $(date +%s) - started )) s) ---"
    cat "$logs/$group.log"
  done
  rm -rf "$logs"
else
  cargo test --workspace --all-targets --locked --no-fail-fast -- --test-threads "${MBT_TEST_THREADS:-4}" "$@" || rust_status=$?
fi
echo "cargo tests finished after $(( $(date +%s) - started )) s"

sdk_status=0
if [ -n "${sdk_pid:-}" ]; then
  wait "$sdk_pid" || sdk_status=$?
  echo "--- Python SDK tests (python/tests) ---"
  cat "$sdk_log"
fi
rm -f "$sdk_log"
echo "test suite finished in $(( $(date +%s) - started )) s"
[ "$rust_status" -eq 0 ] && [ "$sdk_status" -eq 0 ]
