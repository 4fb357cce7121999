#!/usr/bin/env bash
# Test environment for milvus-backup: real Milvus standalone servers and
# S3 (moto) servers as plain processes on 127.0.0.1, installed from PyPI.
#
#   scripts/testenv.sh install   create the virtualenvs (idempotent, fast no-op)
#   scripts/testenv.sh install-sdk  only the SDK tests' venv (venv-sdk)
#   scripts/testenv.sh start     install if needed, start what is not running,
#                                wait until healthy, write $RUN_DIR/env.sh
#   scripts/testenv.sh stop      stop every service started here (by pid)
#   scripts/testenv.sh status    one line per service
#   scripts/testenv.sh env       print the export lines tests source
#   scripts/testenv.sh logs      tail every log
#
# Services (fixed ports, shifted all at once by MBT_PORT_BASE, default 19600):
#   S3   moto S3 server, port BASE+300, buckets milvus-a milvus-b milvus-v22 milvus-backup
#   S3B  second, independent moto S3 server, port BASE+301, bucket milvus-backup
#   S3AUTH a moto S3 server that checks credentials and knows none: every
#        request is refused (for wrong-credential tests), port BASE+302
#   With MBT_S3_KIND=s3s, S3 and S3B are s3s-fs servers instead of moto (a
#   Rust S3 server on a local directory, $RUN_DIR/S3/data; same ports,
#   buckets and credentials); S3AUTH stays moto.
#   A    Milvus 2.3.5  on S3 bucket milvus-a, rootPath files      ports BASE+10..+21
#   B    Milvus 2.3.5  on S3 bucket milvus-b, rootPath files      ports BASE+30..+41
#   L    Milvus 2.3.5  local storage under $RUN_DIR/L/data        ports BASE+50..+61
#   V22  Milvus 2.2.16 local storage under $RUN_DIR/V22/data      ports BASE+70..+81
#        (MBT_V22_STORAGE=minio: S3 bucket milvus-v22, rootPath files)
#   AUTH Milvus 2.3.5 with authorization enabled (root/Milvus), local storage
#        under $RUN_DIR/AUTH/data                                  ports BASE+110..+121
#   AUTH2 a second one like AUTH (RBAC round trips)                ports BASE+130..+141
#   LITE Milvus Lite 3.2.2 (`milvus-lite server`, venv-lite), data under
#        $RUN_DIR/LITE/data, gRPC port BASE+90; no binlogs, no metrics port:
#        a source and target of logical (row-level) backups only
#   Port block of a Milvus: +0 proxy (gRPC), +1 proxy internal, +2 rootCoord,
#   +3 queryCoord, +4 queryNode, +5 indexCoord, +6 indexNode, +7 dataCoord,
#   +8 dataNode, +9 etcd client, +10 etcd peer, +11 metrics/management HTTP.
#
# Environment:
#   MILVUS_BACKUP_CACHE    venv cache (default ~/.cache/milvus-backup-testenv)
#   MILVUS_BACKUP_TESTENV  run dir: data, logs, pids (default /tmp/milvus-backup-testenv)
#   MBT_MINIMAL=1          install only the venvs the started services need (no
#                          schemathesis, no SDK test venv): the demo
#   MBT_SERVICES           Milvus instances to start, any of "A B L V22 LITE AUTH AUTH2" (default
#                          all); S3, S3B and S3AUTH always start. Only the ones named
#                          (and unhealthy) are (re)started: `MBT_SERVICES=LITE start`
#                          adds Lite beside running servers without touching them
#   MBT_READY_TIMEOUT      seconds to wait for each Milvus (default 180)
#   MBT_PORT_BASE          shift every port (default 19600)
#   MBT_V22_STORAGE        local (default) or minio
#   MBT_STOP_TIMEOUT       seconds between SIGTERM and SIGKILL on stop (default 20)
#   MBT_S3_KIND            moto (default) or s3s: what serves S3 and S3B. s3s-fs
#                          is installed once with cargo into $CACHE_DIR/s3s-fs
#
# See shared/TEST-ENV.md for why things are done this way (embedded etcd peer
# port, exec'ing the binary directly, pins needed by pymilvus).
set -euo pipefail

CACHE_DIR=${MILVUS_BACKUP_CACHE:-$HOME/.cache/milvus-backup-testenv}
RUN_DIR=${MILVUS_BACKUP_TESTENV:-/tmp/milvus-backup-testenv}
ALL_MILVUS="A B L V22 LITE AUTH AUTH2"
READY_TIMEOUT=${MBT_READY_TIMEOUT:-180}
PORT_BASE=${MBT_PORT_BASE:-19600}
V22_STORAGE=${MBT_V22_STORAGE:-local}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
UTIL=$SCRIPT_DIR/testenv_util.py
PY=${MBT_BOOTSTRAP_PYTHON:-python3}
STOP_TIMEOUT=${MBT_STOP_TIMEOUT:-20}

# Loopback traffic must never go through a proxy (gRPC honours http_proxy).
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
export NO_PROXY="$no_proxy"

# Package sets, installed with the constraints in scripts/testenv-constraints/
# (a `pip freeze` of venvs that passed), so a bare machine gets what was
# tested. The marker file name embeds a hash of spec + constraints, so a
# changed pin reinstalls that venv and nothing else.
PINS=("setuptools<70" "marshmallow<3.20" "environs<10")
SPEC_23=("milvus==2.3.5" "pymilvus==2.3.7" "${PINS[@]}")
SPEC_22=("milvus==2.2.16" "pymilvus==2.2.17" "${PINS[@]}")
SPEC_MOTO=("moto[server]" "boto3")
# s3s-fs: 0.17 needs rustc 1.96; 0.14.1 is the newest for rustc 1.92+.
S3S_FS_VERSION=0.14.1
S3S_FS=$CACHE_DIR/s3s-fs/bin/s3s-fs
# The REST API fuzzer (scripts/schemathesis.sh).
SPEC_SCHEMATHESIS=("schemathesis==4.32.5")
# The Python SDK's tests (python/tests): pytest, the SDK's one dependency
# (httpx), hatchling to build its wheel without build isolation, and the
# pymilvus of venv-2.3.5 (same pins) to make and read test collections.
SPEC_SDK=("pytest" "httpx" "hatchling" "schedule" "pymilvus==2.3.7" "${PINS[@]}")
# Milvus Lite and its pymilvus; minio, azure-storage-blob and ml_dtypes so
# that pymilvus's LocalBulkWriter imports; pyarrow and pandas to read exported
# Parquet and for the benchmark's pymilvus baseline; duckdb, geopandas,
# shapely and pyproj for scripts/interop.py (other tools reading an export).
SPEC_LITE=("milvus-lite==3.2.2" "pymilvus" "minio" "azure-storage-blob" "ml_dtypes" "pyarrow" "pandas"
    "duckdb" "geopandas" "shapely" "pyproj")
LITE_VERSION=3.2.2
CONSTRAINTS_DIR=$SCRIPT_DIR/testenv-constraints

# S3 credentials: moto accepts anything.
S3_ACCESS_KEY=mbtaccesskey
S3_SECRET_KEY=mbtsecretkey
S3_REGION=us-east-1
S3_PORT=$((PORT_BASE + 300))
S3B_PORT=$((PORT_BASE + 301))
S3AUTH_PORT=$((PORT_BASE + 302))
ALL_S3="S3 S3B S3AUTH"
BACKUP_BUCKET=milvus-backup
# The AWS C++ SDK inside Milvus otherwise asks the EC2 metadata address
# (169.254.169.254) for a region: traffic off this machine, and Milvus 2.2.16
# crashes when that fails.
NO_IMDS_ENV=(AWS_EC2_METADATA_DISABLED=true "AWS_REGION=$S3_REGION" "AWS_DEFAULT_REGION=$S3_REGION")

log() { printf '[testenv %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ------------------------------------------------------------- service facts

milvus_base_port() {
    case $1 in
        A) echo $((PORT_BASE + 10)) ;;
        B) echo $((PORT_BASE + 30)) ;;
        L) echo $((PORT_BASE + 50)) ;;
        V22) echo $((PORT_BASE + 70)) ;;
        LITE) echo $((PORT_BASE + 90)) ;;
        AUTH) echo $((PORT_BASE + 110)) ;;
        AUTH2) echo $((PORT_BASE + 130)) ;;
        *) die "unknown Milvus service '$1' (expected one of $ALL_MILVUS)" ;;
    esac
}
milvus_version() { case $1 in V22) echo 2.2.16 ;; LITE) echo "lite-$LITE_VERSION" ;; *) echo 2.3.5 ;; esac; }
milvus_storage() {
    case $1 in
        A | B) echo minio ;;
        L | AUTH | AUTH2) echo local ;;
        V22) echo "$V22_STORAGE" ;;
        LITE) echo none ;;
    esac
}
milvus_bucket() {
    [[ $(milvus_storage "$1") == minio ]] || { echo ""; return; }
    case $1 in A) echo milvus-a ;; B) echo milvus-b ;; V22) echo milvus-v22 ;; esac
}
milvus_root() {
    if [[ $(milvus_storage "$1") == minio ]]; then echo files; else echo "$RUN_DIR/$1/data"; fi
}
proxy_port() { milvus_base_port "$1"; }
# Authorization enabled (user root, password Milvus): the AUTH servers.
milvus_auth() { case $1 in AUTH | AUTH2) echo true ;; *) echo false ;; esac; }
# what a running instance must match to be reused by `start`
milvus_mode() { echo "$(milvus_version "$1") $(milvus_storage "$1") $(milvus_bucket "$1") $PORT_BASE$([[ $(milvus_auth "$1") == true ]] && echo " auth")"; }
metrics_port() { echo $(($(milvus_base_port "$1") + 11)); }
venv_dir() { case $1 in lite-*) echo "$CACHE_DIR/venv-lite" ;; *) echo "$CACHE_DIR/venv-$1" ;; esac; }
s3_port() { case $1 in S3) echo "$S3_PORT" ;; S3B) echo "$S3B_PORT" ;; S3AUTH) echo "$S3AUTH_PORT" ;; esac; }
# s3_kind SVC: moto or s3s (S3AUTH is always moto: it refuses every request).
s3_kind() { case $1 in S3AUTH) echo moto ;; *) echo "${MBT_S3_KIND:-moto}" ;; esac; }

pid_file() { echo "$RUN_DIR/pids/$1.pid"; }
svc_log() { echo "$RUN_DIR/logs/$1.log"; }

# read_pid SVC: print the recorded pid if that process is alive and is ours.
read_pid() {
    local f pid cmdline
    f=$(pid_file "$1")
    [[ -f $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    case $1 in
        S3 | S3B | S3AUTH)
            if [[ $(s3_kind "$1") == s3s ]]; then
                [[ $cmdline == *s3s-fs* ]] || return 1
            else
                [[ $cmdline == *moto_server* ]] || return 1
            fi
            ;;
        LITE) [[ $cmdline == *milvus-lite" server "* ]] || return 1 ;;
        *) [[ $cmdline == *milvus*" run standalone"* ]] || return 1 ;;
    esac
    # a zombie is not running
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
    echo "$pid"
}

health_url() {
    case $1 in
        # moto's own API: not an S3 request, so S3AUTH lets it through.
        S3 | S3B | S3AUTH)
            if [[ $(s3_kind "$1") == s3s ]]; then
                echo "tcp://127.0.0.1:$(s3_port "$1")"
            else
                echo "http://127.0.0.1:$(s3_port "$1")/moto-api/"
            fi
            ;;
        # Lite has no HTTP port: its gRPC port accepting a connection
        LITE) echo "tcp://127.0.0.1:$(proxy_port "$1")" ;;
        *) echo "http://127.0.0.1:$(metrics_port "$1")/healthz|OK" ;;
    esac
}

# healthy_set SVC...: print the services that run (our pid) and answer health checks.
healthy_set() {
    local svc args=()
    for svc in "$@"; do
        read_pid "$svc" >/dev/null && args+=("$svc=$(health_url "$svc")")
    done
    ((${#args[@]} > 0)) || return 0
    "$PY" "$UTIL" http-ok-many 3 "${args[@]}"
}

requested_services() {
    local s out=""
    for s in ${MBT_SERVICES:-$ALL_MILVUS}; do
        milvus_base_port "$s" >/dev/null
        out+="$s "
    done
    echo "${out% }"
}

# ---------------------------------------------------------------- install

# Bump INSTALL_RECIPE when the install steps change, to redo every venv.
INSTALL_RECIPE=3
marker_for() {
    local name=$1; shift
    local hash
    hash=$({
        printf '%s\n' "$INSTALL_RECIPE" "$@"
        cat "$CONSTRAINTS_DIR/$name.txt" 2>/dev/null || true
    } | sha256sum | cut -c1-12)
    echo "$CACHE_DIR/$name/.installed-$hash"
}

# install_venv NAME PKG... : create $CACHE_DIR/NAME with PKGs (and, for a
# Milvus venv, the unpacked server binary in NAME/milvus-bin), once.
install_venv() {
    local name=$1; shift
    local dir=$CACHE_DIR/$name marker ilog=$CACHE_DIR/$name.install.log cons=()
    marker=$(marker_for "$name" "$@")
    [[ -f $marker ]] && return 0
    [[ -f $CONSTRAINTS_DIR/$name.txt ]] && cons=(-c "$CONSTRAINTS_DIR/$name.txt")
    log "installing $name: $*"
    rm -rf "$dir"
    if ! {
        "$PY" -m venv "$dir" &&
            "$dir/bin/python" -m pip install -q --upgrade pip &&
            "$dir/bin/python" -m pip install -q ${cons[@]+"${cons[@]}"} "$@"
    } >"$ilog" 2>&1; then
        tail -n 30 "$ilog" >&2
        die "pip install for $name failed (log: $ilog)"
    fi
    if [[ $name == venv-2.* ]]; then
        local sp
        sp=$("$dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
        "$dir/bin/python" "$UTIL" unpack "$sp" "$dir/milvus-bin" >>"$ilog" 2>&1 ||
            { tail -n 30 "$ilog" >&2; die "unpacking the Milvus binary for $name failed"; }
    fi
    touch "$marker"
    log "installed $name"
}

# The venvs this run needs: S3 and 2.3.5 always; 2.2.16 and Lite with their
# services; the schemathesis and SDK test venvs unless MBT_MINIMAL=1 (the
# demo installs only what it runs).
wanted_venvs() {
    local s=" ${MBT_SERVICES:-$ALL_MILVUS} "
    echo venv-moto venv-2.3.5
    if [[ $s == *" V22 "* ]]; then echo venv-2.2.16; fi
    if [[ $s == *" LITE "* ]]; then echo venv-lite; fi
    if [[ ${MBT_MINIMAL:-0} != 1 ]]; then echo venv-schemathesis venv-sdk; fi
}

# The package-set array of a venv, by name.
spec_name() {
    case $1 in
        venv-moto) echo SPEC_MOTO ;;
        venv-2.3.5) echo SPEC_23 ;;
        venv-2.2.16) echo SPEC_22 ;;
        venv-lite) echo SPEC_LITE ;;
        venv-schemathesis) echo SPEC_SCHEMATHESIS ;;
        venv-sdk) echo SPEC_SDK ;;
    esac
}

venv_marker() {
    local -n spec=$(spec_name "$1")
    marker_for "$1" "${spec[@]}"
}

installed() {
    local v
    for v in $(wanted_venvs); do
        [[ -f $(venv_marker "$v") ]] || return 1
    done
}

cmd_install() {
    installed && return 0
    command -v "$PY" >/dev/null || die "$PY not found (set MBT_BOOTSTRAP_PYTHON)"
    "$PY" -c 'import venv, lzma' 2>/dev/null || die "$PY lacks the venv or lzma module"
    mkdir -p "$CACHE_DIR"
    # One installer at a time per cache (parallel test runners may race).
    exec 8>"$CACHE_DIR/.install.lock"
    flock -w 1800 8 || die "timed out waiting for $CACHE_DIR/.install.lock"
    local pids=() rc=0 p v
    for v in $(wanted_venvs); do
        local -n spec=$(spec_name "$v")
        install_venv "$v" "${spec[@]}" &
        pids+=($!)
        unset -n spec
    done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    exec 8>&-
    [[ $rc -eq 0 ]] || die "install failed"
}

# The SDK tests' venv alone: `start` calls this when the servers are already
# up, since it never touches the venvs those servers run from.
cmd_install_sdk() {
    [[ ${MBT_MINIMAL:-0} == 1 ]] && return 0
    [[ -f $(marker_for venv-sdk "${SPEC_SDK[@]}") ]] && return 0
    mkdir -p "$CACHE_DIR"
    exec 8>"$CACHE_DIR/.install.lock"
    flock -w 1800 8 || die "timed out waiting for $CACHE_DIR/.install.lock"
    install_venv venv-sdk "${SPEC_SDK[@]}"
    exec 8>&-
}

# ---------------------------------------------------------------- start

# install_s3s_fs: the s3s-fs binary, built once with cargo (a few minutes).
install_s3s_fs() {
    [[ -x $S3S_FS ]] && return 0
    command -v cargo >/dev/null || die "MBT_S3_KIND=s3s needs cargo to install s3s-fs"
    local target
    target=$(mktemp -d)
    log "installing s3s-fs $S3S_FS_VERSION with cargo (once)"
    CARGO_TARGET_DIR=$target cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary \
        --locked --root "$CACHE_DIR/s3s-fs" >"$CACHE_DIR/s3s-fs.install.log" 2>&1 ||
        { rm -rf "$target"; die "installing s3s-fs failed: $CACHE_DIR/s3s-fs.install.log"; }
    rm -rf "$target"
}

start_s3() {
    local svc=$1 port
    port=$(s3_port "$svc")
    "$PY" "$UTIL" ports-free "$port"
    mkdir -p "$RUN_DIR/$svc"
    : >"$(svc_log "$svc")"
    if [[ $(s3_kind "$svc") == s3s ]]; then
        install_s3s_fs
        rm -rf "$RUN_DIR/$svc/data"
        mkdir -p "$RUN_DIR/$svc/data"
        "$PY" "$UTIL" spawn "$(pid_file "$svc")" "$(svc_log "$svc")" "$RUN_DIR/$svc" -- \
            "$S3S_FS" --host 127.0.0.1 --port "$port" --access-key "$S3_ACCESS_KEY" \
            --secret-key "$S3_SECRET_KEY" "$RUN_DIR/$svc/data" >/dev/null
        return
    fi
    local auth=()
    [ "$svc" = S3AUTH ] && auth=(INITIAL_NO_AUTH_ACTION_COUNT=0)
    "$PY" "$UTIL" spawn "$(pid_file "$svc")" "$(svc_log "$svc")" "$RUN_DIR/$svc" "${NO_IMDS_ENV[@]}" ${auth[@]+"${auth[@]}"} -- \
        "$CACHE_DIR/venv-moto/bin/moto_server" -H 127.0.0.1 -p "$port" >/dev/null
}


# wait_s3 SVC BUCKET...: wait for the moto server, then create buckets.
wait_s3() {
    local svc=$1; shift
    local port deadline pid
    port=$(s3_port "$svc")
    deadline=$((SECONDS + 60))
    until "$PY" "$UTIL" http-ok "$(health_url "$svc")" 2; do
        pid=$(read_pid "$svc") || { tail -n 30 "$(svc_log "$svc")" >&2; die "$svc exited during start-up"; }
        ((SECONDS < deadline)) || { tail -n 30 "$(svc_log "$svc")" >&2; die "$svc not answering on port $port after 60 s"; }
        sleep 0.5
    done
    [ "$#" -gt 0 ] || return 0
    "$CACHE_DIR/venv-moto/bin/python" "$UTIL" make-buckets "http://127.0.0.1:$port" \
        "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$S3_REGION" "$@" >/dev/null ||
        die "creating buckets on $svc failed"
}

# render_milvus_config SVC: write $RUN_DIR/SVC/configs/{milvus.yaml,etcd.yaml,glog.conf}
render_milvus_config() {
    local svc=$1 ver base dir venv storage
    ver=$(milvus_version "$svc")
    base=$(milvus_base_port "$svc")
    dir=$RUN_DIR/$svc
    venv=$(venv_dir "$ver")
    storage=$(milvus_storage "$svc")
    local sp template
    sp=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    template=$sp/milvus/data/config.yaml.template
    [[ -f $template ]] || die "no Milvus config template at $template"

    local args=(
        "etcd_port=$((base + 9))"
        "etcd_log_path=$dir/logs/etcd.log"
        "etcd_log_level=warn"
        "etcd_data_dir=$dir/data/etcd.data"
        "local_storage_dir=$dir/data"
        "rocksmq_data_dir=$dir/data/rocksmq"
        "rocketmq_data_dir=$dir/data/rocksmq"
        # Milvus logs go to stdout/stderr, i.e. $RUN_DIR/logs/SVC.log only
        "system_log_path="
        "system_log_level=info"
        "log_stdout=true"
        "proxy_port=$((base + 0))"
        "proxy_internal_port=$((base + 1))"
        "root_coord_port=$((base + 2))"
        "query_coord_port=$((base + 3))"
        "query_node_port=$((base + 4))"
        "index_coord_port=$((base + 5))"
        "index_node_port=$((base + 6))"
        "data_coord_port=$((base + 7))"
        "data_node_port=$((base + 8))"
        --etcd-config "$dir/configs/etcd.yaml"
        --replace "localhost:$((base + 9))=127.0.0.1:$((base + 9))"
        --set "common.storageType=$storage"
        # test servers: SIGTERM should end them in seconds, not 30 minutes
        --set "common.gracefulStopTimeout=5"
    )
    [[ $(milvus_auth "$svc") == true ]] && args+=(--set "common.security.authorizationEnabled=true")
    if [[ $storage == minio ]]; then
        args+=(
            --set "minio.address=127.0.0.1"
            --set "minio.port=$S3_PORT"
            --set "minio.accessKeyID=$S3_ACCESS_KEY"
            --set "minio.secretAccessKey=$S3_SECRET_KEY"
            --set "minio.bucketName=$(milvus_bucket "$svc")"
            --set "minio.rootPath=$(milvus_root "$svc")"
            --set "minio.useSSL=false"
            --set "minio.region=$S3_REGION"
        )
    fi
    if [[ $ver == 2.3.* ]]; then
        # advertise loopback instead of the first non-loopback interface
        local c
        for c in rootCoord proxy queryCoord queryNode indexNode dataCoord dataNode; do
            args+=(--set "$c.ip=127.0.0.1")
        done
    fi
    "$venv/bin/python" "$UTIL" render "$template" "$dir/configs" "${args[@]}"
    "$PY" "$UTIL" etcd-conf "$dir/configs/etcd.yaml" "mbt-$svc" "$dir/data/etcd.data" \
        "$((base + 9))" "$((base + 10))"
    cp "$venv/milvus-bin/glog.conf" "$dir/configs/glog.conf" 2>/dev/null || true
}

start_milvus() {
    local svc=$1 ver base dir venv ports=() i
    ver=$(milvus_version "$svc")
    base=$(milvus_base_port "$svc")
    dir=$RUN_DIR/$svc
    venv=$(venv_dir "$ver")
    for i in $(seq 0 11); do ports+=($((base + i))); done
    "$PY" "$UTIL" ports-free "${ports[@]}"
    rm -rf "$dir"
    mkdir -p "$dir/configs" "$dir/logs" "$dir/data" "$dir/run"
    render_milvus_config "$svc"
    milvus_mode "$svc" >"$dir/mode"
    local exe=$venv/milvus-bin/milvus
    if [[ $ver == 2.2.* && $(milvus_storage "$svc") == minio ]]; then
        exe=$venv/milvus-bin/milvus-s3fix
        [[ -x $exe ]] || "$PY" "$UTIL" hide-symbols "$venv/milvus-bin/milvus" "$exe" \
            "$venv/milvus-bin/libcrypto.so.10" "$venv/milvus-bin/libssl.so.10" >&2 ||
            die "could not prepare $exe"
    fi
    : >"$(svc_log "$svc")"
    "$PY" "$UTIL" spawn "$(pid_file "$svc")" "$(svc_log "$svc")" "$dir" \
        "MILVUSCONF=$dir/configs" "DEPLOY_MODE=STANDALONE" "METRICS_PORT=$(metrics_port "$svc")" \
        "MILVUS_RUN_DIR=$dir/run" "${NO_IMDS_ENV[@]}" "LD_LIBRARY_PATH=$venv/milvus-bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        -- "$exe" run standalone >/dev/null
}

# start_lite: Milvus Lite's own server process (a Python program: the pid
# recorded is the server itself).
start_lite() {
    local dir=$RUN_DIR/LITE port
    port=$(proxy_port LITE)
    "$PY" "$UTIL" ports-free "$port"
    rm -rf "$dir"
    mkdir -p "$dir/data"
    milvus_mode LITE >"$dir/mode"
    : >"$(svc_log LITE)"
    "$PY" "$UTIL" spawn "$(pid_file LITE)" "$(svc_log LITE)" "$dir" -- \
        "$CACHE_DIR/venv-lite/bin/milvus-lite" server --data-dir "$dir/data" \
        --host 127.0.0.1 --port "$port" >/dev/null
}

wait_milvus() {
    local svc=$1 pid
    pid=$(read_pid "$svc") || pid=0
    if ! "$(venv_dir "$(milvus_version "$svc")")/bin/python" "$UTIL" wait-milvus \
        127.0.0.1 "$(proxy_port "$svc")" "$pid" "$READY_TIMEOUT" "$(milvus_auth "$svc")" >"$RUN_DIR/$svc/version" 2>"$RUN_DIR/$svc/wait.err"; then
        {
            echo "---- $svc failed to become ready: $(cat "$RUN_DIR/$svc/wait.err")"
            echo "---- first errors in $(svc_log "$svc")"
            grep -m 15 -E '^(panic|fatal error)|\[(ERROR|FATAL)\]|error while loading|symbol lookup' \
                "$(svc_log "$svc")" 2>/dev/null | cut -c1-400 || true
            echo "---- tail of $(svc_log "$svc")"
            tail -n 30 "$(svc_log "$svc")" 2>/dev/null | cut -c1-400 || true
        } >&2
        return 1
    fi
    [[ $svc == LITE ]] && return 0
    # /healthz may lag GetVersion by a moment; bounded.
    local deadline=$((SECONDS + 30))
    until "$PY" "$UTIL" http-ok "http://127.0.0.1:$(metrics_port "$svc")/healthz" 3 OK; do
        ((SECONDS < deadline)) || { log "$svc: /healthz not OK after 30 s"; return 1; }
        sleep 1
    done
}

# stop_services SVC...: SIGTERM all, wait (bounded), SIGKILL the rest, drop pid files.
stop_services() {
    local svc pid pids=() svcs=() left=() lsvcs=() i
    for svc in "$@"; do
        if pid=$(read_pid "$svc"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            svcs+=("$svc")
        fi
    done
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while ((${#pids[@]} > 0)); do
        left=()
        lsvcs=()
        for i in "${!pids[@]}"; do
            pid=${pids[$i]}
            [[ -d /proc/$pid && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || continue
            # Milvus 2.2.16 hangs in a C++ destructor after a complete
            # graceful stop; nothing is left to lose at that point.
            if grep -q "All cleanup done, handleSignals goroutine quit" "$(svc_log "${svcs[$i]}")" 2>/dev/null; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
            left+=("$pid")
            lsvcs+=("${svcs[$i]}")
        done
        pids=(${left[@]+"${left[@]}"})
        svcs=(${lsvcs[@]+"${lsvcs[@]}"})
        ((${#pids[@]} > 0)) || break
        if ((SECONDS >= deadline)); then
            log "SIGKILL after ${STOP_TIMEOUT}s: ${svcs[*]} (pids ${pids[*]})"
            kill -KILL "${pids[@]}" 2>/dev/null || true
            sleep 1
            break
        fi
        sleep 0.5
    done
    for svc in "$@"; do rm -f "$(pid_file "$svc")"; done
}

running_milvus() {
    local s out=""
    for s in $ALL_MILVUS; do read_pid "$s" >/dev/null && out+="$s "; done
    echo "${out% }"
}

# kv NAME VALUE: one export line; plain values bare, others double-quoted
# (easy for both `source` and a line parser in a test harness).
kv() {
    if [[ $2 =~ ^[A-Za-z0-9_./:@%+,=-]*$ ]]; then
        printf 'export %s=%s\n' "$1" "$2"
    else
        local v=${2//\\/\\\\}
        v=${v//\"/\\\"}
        v=${v//\$/\\\$}
        v=${v//\`/\\\`}
        printf 'export %s="%s"\n' "$1" "$v"
    fi
}

# Lite's variables; also kept in $RUN_DIR/LITE/env.sh, which tests read
# when env.sh lacks them (rewritten by a testenv.sh that knows no Lite).
lite_env() {
    kv MBT_LITE_HOST 127.0.0.1
    kv MBT_LITE_PORT "$(proxy_port LITE)"
    kv MBT_LITE_VERSION "$(milvus_version LITE)"
    kv MBT_LITE_DATA "$RUN_DIR/LITE/data"
    kv MBT_PY_LITE "$CACHE_DIR/venv-lite/bin/python"
}

write_env() {
    local f=$RUN_DIR/env.sh tmp svc services
    services=$(running_milvus)
    tmp=$f.tmp
    {
        echo "# generated by scripts/testenv.sh start; source this file"
        kv MBT_RUN_DIR "$RUN_DIR"
        kv MBT_SERVICES "$services"
        kv MBT_S3_KIND "$(s3_kind S3)"
        kv MBT_S3_ENDPOINT "http://127.0.0.1:$S3_PORT"
        kv MBT_S3B_ENDPOINT "http://127.0.0.1:$S3B_PORT"
        kv MBT_S3_ACCESS_KEY "$S3_ACCESS_KEY"
        kv MBT_S3_SECRET_KEY "$S3_SECRET_KEY"
        kv MBT_S3_REGION "$S3_REGION"
        kv MBT_S3B_ACCESS_KEY "$S3_ACCESS_KEY"
        kv MBT_S3B_SECRET_KEY "$S3_SECRET_KEY"
        kv MBT_S3B_REGION "$S3_REGION"
        kv MBT_S3AUTH_ENDPOINT "http://127.0.0.1:$S3AUTH_PORT"
        kv MBT_BACKUP_BUCKET "$BACKUP_BUCKET"
        for svc in $services; do
            if [[ $svc == LITE ]]; then
                lite_env | tee "$RUN_DIR/LITE/env.sh"
                continue
            fi
            kv "MBT_${svc}_HOST" 127.0.0.1
            kv "MBT_${svc}_PORT" "$(proxy_port "$svc")"
            kv "MBT_${svc}_MGMT" "http://127.0.0.1:$(metrics_port "$svc")"
            kv "MBT_${svc}_STORAGE" "$(milvus_storage "$svc")"
            kv "MBT_${svc}_BUCKET" "$(milvus_bucket "$svc")"
            kv "MBT_${svc}_ROOT" "$(milvus_root "$svc")"
            kv "MBT_${svc}_VERSION" "$(milvus_version "$svc")"
            if [[ $(milvus_auth "$svc") == true ]]; then
                kv "MBT_${svc}_USER" root
                kv "MBT_${svc}_PASSWORD" Milvus
            fi
        done
        kv MBT_PY_23 "$(venv_dir 2.3.5)/bin/python"
        kv MBT_PY_22 "$(venv_dir 2.2.16)/bin/python"
        kv MBT_GEN_DATA "$SCRIPT_DIR/gen_data.py"
        kv MBT_SCHEMATHESIS "$CACHE_DIR/venv-schemathesis/bin/schemathesis"
        kv MBT_PY_SDK "$CACHE_DIR/venv-sdk/bin/python"
    } >"$tmp"
    mv "$tmp" "$f"
}

cmd_start() {
    local want svc t0=$SECONDS
    want=$(requested_services)
    mkdir -p "$RUN_DIR/pids" "$RUN_DIR/logs"
    exec 9>"$RUN_DIR/.lock"
    flock -w 600 9 || die "another testenv.sh start/stop holds $RUN_DIR/.lock"

    # Which services need a (re)start? An S3 restart loses its buckets'
    # contents, so the Milvus servers on it restart too.
    local s3_restart=() milvus_restart=() ok
    # shellcheck disable=SC2086 # word lists on purpose
    ok=" $(healthy_set $ALL_S3 $ALL_MILVUS) "
    for svc in $ALL_S3; do [[ $ok == *" $svc "* ]] || s3_restart+=("$svc"); done
    local candidates=$want
    # an S3 restart also takes down whatever runs on it, wanted or not
    [[ " ${s3_restart[*]-} " == *" S3 "* ]] && candidates="$want $(running_milvus)"
    # shellcheck disable=SC2086
    for svc in $(printf '%s\n' $candidates | awk '!seen[$0]++'); do
        if [[ $ok != *" $svc "* ]] || [[ $(cat "$RUN_DIR/$svc/mode" 2>/dev/null) != "$(milvus_mode "$svc")" ]]; then
            milvus_restart+=("$svc")
        elif [[ " ${s3_restart[*]-} " == *" S3 "* && $(milvus_storage "$svc") == minio ]]; then
            milvus_restart+=("$svc")
        fi
    done
    if ((${#s3_restart[@]} == 0 && ${#milvus_restart[@]} == 0)); then
        # the venvs may have been deleted under running servers
        [[ -x $(venv_dir 2.3.5)/bin/python ]] || cmd_install
        cmd_install_sdk
        write_env
        log "already running and healthy: $ALL_S3 $(running_milvus)"
        return 0
    fi
    # Install (or update) only now: a venv is never replaced under servers
    # that are fine as they are.
    cmd_install
    # Anything being restarted is stopped first (stale or unhealthy process).
    stop_services ${s3_restart[@]+"${s3_restart[@]}"} ${milvus_restart[@]+"${milvus_restart[@]}"}

    local svc_list="${s3_restart[*]-} ${milvus_restart[*]-}"
    log "starting: ${svc_list}"
    for svc in ${s3_restart[@]+"${s3_restart[@]}"}; do start_s3 "$svc"; done
    for svc in ${s3_restart[@]+"${s3_restart[@]}"}; do
        case $svc in
            S3) wait_s3 S3 milvus-a milvus-b milvus-v22 "$BACKUP_BUCKET" ;;
            S3B) wait_s3 S3B "$BACKUP_BUCKET" ;;
            S3AUTH) wait_s3 S3AUTH ;;
        esac
    done
    local t_s3=$SECONDS
    for svc in ${milvus_restart[@]+"${milvus_restart[@]}"}; do
        if [[ $svc == LITE ]]; then start_lite; else start_milvus "$svc"; fi
    done
    local pids=() rc=0 i failed=""
    for svc in ${milvus_restart[@]+"${milvus_restart[@]}"}; do
        wait_milvus "$svc" &
        pids+=($!)
    done
    i=0
    for svc in ${milvus_restart[@]+"${milvus_restart[@]}"}; do
        if ! wait "${pids[$i]}"; then rc=1; failed+="$svc "; fi
        i=$((i + 1))
    done
    if ((rc != 0)); then
        die "not ready: ${failed% } (logs: $RUN_DIR/logs; 'scripts/testenv.sh logs'); 'scripts/testenv.sh stop' to clean up"
    fi
    write_env
    for svc in ${milvus_restart[@]+"${milvus_restart[@]}"}; do
        log "$svc ready: $(cat "$RUN_DIR/$svc/version") on 127.0.0.1:$(proxy_port "$svc")"
    done
    log "started in $((SECONDS - t0)) s (S3 ready after $((t_s3 - t0)) s); env: $RUN_DIR/env.sh"
}

cmd_stop() {
    mkdir -p "$RUN_DIR"
    exec 9>"$RUN_DIR/.lock"
    flock -w 600 9 || die "another testenv.sh start/stop holds $RUN_DIR/.lock"
    local svc any=""
    for svc in $ALL_MILVUS $ALL_S3; do read_pid "$svc" >/dev/null && any+="$svc "; done
    # Milvus first (it talks to S3 while shutting down), then S3.
    local pid
    for svc in $ALL_MILVUS; do
        # Milvus 2.3 leaves /tmp/milvus/server_id_<pid> behind
        pid=$(read_pid "$svc") && rm -f "/tmp/milvus/server_id_$pid"
    done
    # shellcheck disable=SC2086
    stop_services $ALL_MILVUS
    stop_services $ALL_S3
    rm -f "$RUN_DIR/env.sh"
    log "stopped: ${any:-nothing was running}"
}

cmd_status() {
    local svc pid state rss port rc=0 ok
    # shellcheck disable=SC2086
    ok=" $(healthy_set $ALL_S3 $ALL_MILVUS) "
    for svc in $ALL_S3 $ALL_MILVUS; do
        case $svc in S3 | S3B | S3AUTH) port=$(s3_port "$svc") ;; *) port=$(proxy_port "$svc") ;; esac
        if pid=$(read_pid "$svc"); then
            rss=$(awk '/^VmRSS/ {printf "%d MiB", $2/1024}' "/proc/$pid/status" 2>/dev/null || echo "?")
            if [[ $ok == *" $svc "* ]]; then state="running healthy"; else state="running UNHEALTHY"; rc=1; fi
            printf '%-4s %-18s pid=%-8s port=%-6s rss=%s\n' "$svc" "$state" "$pid" "$port" "$rss"
        else
            printf '%-4s %-18s port=%s\n' "$svc" "stopped" "$port"
        fi
    done
    return $rc
}

cmd_env() {
    [[ -f $RUN_DIR/env.sh ]] || die "no $RUN_DIR/env.sh: run 'scripts/testenv.sh start' first"
    cat "$RUN_DIR/env.sh"
}

cmd_logs() {
    local n=${MBT_LOG_LINES:-40} f
    for f in "$RUN_DIR"/logs/*.log "$RUN_DIR"/*/logs/*.log; do
        [[ -f $f ]] || continue
        echo "==== $f"
        tail -n "$n" "$f"
    done
}

main() {
    local cmd=${1:-}
    case $cmd in
        install) cmd_install ;;
        install-sdk) cmd_install_sdk ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        env) cmd_env ;;
        logs) cmd_logs ;;
        *) die "usage: $0 install|install-sdk|start|stop|status|env|logs" ;;
    esac
}

main "$@"
