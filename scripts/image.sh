#!/usr/bin/env bash
# Builds the container image milvusdb/milvus-backup:latest (and :<version>)
# with docker or podman, from the release binary, with no registry: the
# image is FROM scratch (see Containerfile) and this script stages its root
# file system — the binary, the shared libraries `ldd` lists, CA
# certificates, /etc/milvus-backup/config.yaml (scripts/image/config.yaml)
# and empty /backup and /tmp.
#
#   scripts/image.sh                             # cargo build --release, then the image
#   CONTAINER_ENGINE=podman scripts/image.sh     # docker or podman
#   MILVUS_BACKUP_BIN=path/to/milvus-backup scripts/image.sh   # this binary (debug info stripped)
#   scripts/image.sh engine                      # only pick (and install) the engine, print it
#
# The engine: $CONTAINER_ENGINE, else docker when its daemon answers, else
# podman; when there is neither and this runs as root with apt-get, podman
# and runc are installed from Debian. For podman, a containers.conf with
# this sandbox's needs (runc, no default ulimits; see scripts/README.md) is
# written beside the staged files and its path printed: run containers
# with CONTAINERS_CONF set to it.
#
# The last line is machine-readable:
#   IMAGE milvusdb/milvus-backup:latest version=… engine=… size_bytes=… build_s=… containers_conf=…
# Exit 3: no container engine and none can be installed (the reason is printed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

image=milvusdb/milvus-backup
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
stage=${MILVUS_BACKUP_IMAGE_DIR:-$target_dir/image}
mkdir -p "$stage"
containers_conf=""

fail() { echo "error: $*" >&2; exit "${2:-1}"; }

install_podman() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    fail "no container engine: install docker or podman (Debian: apt-get install podman runc), or set CONTAINER_ENGINE" 3
  fi
  echo "installing podman and runc from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q podman runc >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q podman runc >/dev/null; } ||
    fail "no container engine, and installing podman with apt-get failed — install docker or podman, or set CONTAINER_ENGINE" 3
}

pick_engine() {
  local engine=${CONTAINER_ENGINE:-}
  if [ -z "$engine" ]; then
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
      engine=docker
    else
      engine=podman
    fi
  fi
  case "$engine" in
    docker)
      docker info >/dev/null 2>&1 ||
        fail "CONTAINER_ENGINE=docker but no docker daemon answers — start it, or use CONTAINER_ENGINE=podman" 3 ;;
    podman)
      command -v podman >/dev/null && command -v runc >/dev/null || install_podman
      # This sandbox forbids raising rlimits and crun's cgroup setup:
      # runc, and no default ulimits (harmless elsewhere).
      containers_conf=${CONTAINERS_CONF:-$stage/containers.conf}
      if [ ! -e "$containers_conf" ]; then
        printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' >"$containers_conf"
      fi
      export CONTAINERS_CONF=$containers_conf ;;
    *) fail "CONTAINER_ENGINE=$engine: use docker or podman" ;;
  esac
  ENGINE=$engine
}

pick_engine
if [ "${1:-}" = engine ]; then
  echo "ENGINE $ENGINE containers_conf=$containers_conf"
  exit 0
fi

started=$(date +%s.%N)
bin=${MILVUS_BACKUP_BIN:-}
if [ -z "$bin" ]; then
  command -v cargo >/dev/null || fail "cargo not found — install Rust (https://rustup.rs), or name a binary with MILVUS_BACKUP_BIN"
  cargo build --release --locked -p milvus-backup
  bin=$target_dir/release/milvus-backup
fi
[ -x "$bin" ] || fail "$bin is not an executable — build it (cargo build --release) or fix MILVUS_BACKUP_BIN"
version=$("$bin" --version | awk '{print $2}')

# The root file system of the image.
root=$stage/rootfs
rm -rf "$root"
mkdir -p "$root/usr/local/bin" "$root/etc/milvus-backup" "$root/etc/ssl/certs" "$root/backup" "$root/tmp"
chmod 1777 "$root/tmp"
cp "$bin" "$root/usr/local/bin/milvus-backup"
# A release binary is stripped already; a debug one loses its debug info.
if command -v strip >/dev/null; then strip --strip-debug "$root/usr/local/bin/milvus-backup"; fi
# Every shared library the binary loads, and the loader, at their paths.
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
else
  echo "warning: /etc/ssl/certs/ca-certificates.crt not found: the image has no CA certificates (install ca-certificates)" >&2
fi
cp scripts/image/config.yaml "$root/etc/milvus-backup/config.yaml"

"$ENGINE" build -q -f Containerfile -t "$image:latest" -t "$image:$version" "$stage" >/dev/null
build_s=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $started }")
size=$("$ENGINE" image inspect --format '{{.Size}}' "$image:latest")
echo "built $image:latest and $image:$version with $ENGINE: $((size / 1024 / 1024)) MiB, ${build_s%.*} s (binary $(du -m "$root/usr/local/bin/milvus-backup" | cut -f1) MiB)"
[ -n "$containers_conf" ] && echo "podman here: run containers with CONTAINERS_CONF=$containers_conf"
echo "IMAGE $image:latest version=$version engine=$ENGINE size_bytes=$size build_s=$build_s containers_conf=$containers_conf"
