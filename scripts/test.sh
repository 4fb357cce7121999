#!/usr/bin/env bash
# The whole test suite, from a bare machine: installs the test servers
# (Milvus 2.3.5 and 2.2.16, two S3 services; see scripts/testenv.sh), starts
# them once, and runs every unit and system test against them, then the
# Python SDK's tests (python/tests) against the binary just built.
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
echo "cargo tests finished after $(( $(date +%s) - started )) s"

# The Python SDK (python/), installed afresh into venv-sdk (made by
# `testenv.sh start`), against a server run from the binary built here.
# `cargo test` builds it already; the build makes that explicit (a no-op).
cargo build --locked -p milvus-backup
sdk_python=${MBT_PY_SDK:-${MILVUS_BACKUP_CACHE:-$HOME/.cache/milvus-backup-testenv}/venv-sdk/bin/python}
[ -x "$sdk_python" ] || scripts/testenv.sh install-sdk
"$sdk_python" -m pip install -q --no-deps --no-build-isolation --no-index --force-reinstall ./python
# pytest exits non-zero on failures and with 5 when it ran no test: both fail here.
MILVUS_BACKUP_BIN="$PWD/target/debug/milvus-backup" "$sdk_python" -m pytest python/tests -q -p no:cacheprovider
echo "test suite finished in $(( $(date +%s) - started )) s"
