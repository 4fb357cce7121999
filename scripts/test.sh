#!/usr/bin/env bash
# The whole test suite, from a bare machine: installs the test servers
# (Milvus 2.3.5 and 2.2.16, two S3 services; see scripts/testenv.sh), starts
# them once, and runs every unit and system test against them.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh storage::       # only tests whose name matches
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
scripts/testenv.sh start
if [ "${CI:-}" = "true" ] || [ "${MBT_STOP:-}" = "1" ]; then
  trap 'scripts/testenv.sh stop' EXIT
fi
# shellcheck disable=SC1091
source "${MILVUS_BACKUP_TESTENV:-/tmp/milvus-backup-testenv}/env.sh"
echo "test servers ready after $(( $(date +%s) - started )) s"

cargo test --workspace --all-targets --locked -- --test-threads "${MBT_TEST_THREADS:-4}" "$@"
echo "test suite finished in $(( $(date +%s) - started )) s"
