#!/usr/bin/env bash
# Test environment for milvus-backup: real Milvus standalone servers and
# S3 (moto) servers as plain processes on 127.0.0.1, installed from PyPI.
#
#   scripts/testenv.sh install   create the virtualenvs (idempotent, fast no-op)
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
#   A    Milvus 2.3.5  on S3 bucket milvus-a, rootPath files      ports BASE+10..+21
#   B    Milvus 2.3.5  on S3 bucket milvus-b, rootPath files      ports BASE+30..+41
#   L    Milvus 2.3.5  local storage under $RUN_DIR/L/data        ports BASE+50..+61
#   V22  Milvus 2.2.16 on S3 bucket milvus-v22 (MBT_V22_STORAGE=local for local)
#                                                                 ports BASE+70..+81
#   Port block of a Milvus: +0 proxy (gRPC), +1 proxy internal, +2 rootCoord,
#   +3 queryCoord, +4 queryNode, +5 indexCoord, +6 indexNode, +7 dataCoord,
#   +8 dataNode, +9 etcd client, +10 etcd peer, +11 metrics/management HTTP.
#
# Environment:
#   MILVUS_BACKUP_CACHE    venv cache (default ~/.cache/milvus-backup-testenv)
#   MILVUS_BACKUP_TESTENV  run dir: data, logs, pids (default /tmp/milvus-backup-testenv)
#   MBT_SERVICES           Milvus instances to start, any of "A B L V22" (default all);
#                          S3 and S3B always start
#   MBT_READY_TIMEOUT      seconds to wait for each Milvus (default 180)
#   MBT_PORT_BASE          shift every port (default 19600)
#   MBT_V22_STORAGE        minio (default) or local
#
# See shared/TEST-ENV.md for why things are done this way (embedded etcd peer
# port, exec'ing the binary directly, pins needed by pymilvus).
set -euo pipefail

CACHE_DIR=${MILVUS_BACKUP_CACHE:-$HOME/.cache/milvus-backup-testenv}
RUN_DIR=${MILVUS_BACKUP_TESTENV:-/tmp/milvus-backup-testenv}
ALL_MILVUS="A B L V22"
READY_TIMEOUT=${MBT_READY_TIMEOUT:-180}
PORT_BASE=${MBT_PORT_BASE:-19600}
V22_STORAGE=${MBT_V22_STORAGE:-local}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
UTIL=$SCRIPT_DIR/testenv_util.py
PY=${MBT_BOOTSTRAP_PYTHON:-python3}
STOP_TIMEOUT=20

# Loopback traffic must never go through a proxy (gRPC honours http_proxy).
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
export NO_PROXY="$no_proxy"

# Pinned package sets. The marker file name embeds a hash of the spec, so a
# changed pin reinstalls that venv and nothing else.
PINS=("setuptools<70" "marshmallow<3.20" "environs<10")
SPEC_23=("milvus==2.3.5" "pymilvus==2.3.7" "${PINS[@]}")
SPEC_22=("milvus==2.2.16" "pymilvus==2.2.17" "${PINS[@]}")
SPEC_MOTO=("moto[server]" "boto3")

# S3 credentials: moto accepts anything.
S3_ACCESS_KEY=mbtaccesskey
S3_SECRET_KEY=mbtsecretkey
S3_REGION=us-east-1
S3_PORT=$((PORT_BASE + 300))
S3B_PORT=$((PORT_BASE + 301))
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
        *) die "unknown Milvus service '$1' (expected one of $ALL_MILVUS)" ;;
    esac
}
milvus_version() { case $1 in V22) echo 2.2.16 ;; *) echo 2.3.5 ;; esac; }
milvus_storage() {
    case $1 in
        A | B) echo minio ;;
        L) echo local ;;
        V22) echo "$V22_STORAGE" ;;
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
metrics_port() { echo $(($(milvus_base_port "$1") + 11)); }
venv_dir() { echo "$CACHE_DIR/venv-$1"; }
s3_port() { case $1 in S3) echo "$S3_PORT" ;; S3B) echo "$S3B_PORT" ;; esac; }

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
        S3 | S3B) [[ $cmdline == *moto_server* ]] || return 1 ;;
        *) [[ $cmdline == *"milvus run standalone"* ]] || return 1 ;;
    esac
    # a zombie is not running
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
    echo "$pid"
}

healthy() {
    local svc=$1
    read_pid "$svc" >/dev/null || return 1
    case $svc in
        S3 | S3B) "$PY" "$UTIL" http-ok "http://127.0.0.1:$(s3_port "$svc")/" 3 ;;
        *) "$PY" "$UTIL" http-ok "http://127.0.0.1:$(metrics_port "$svc")/healthz" 3 OK ;;
    esac
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
INSTALL_RECIPE=2
spec_hash() { printf '%s\n' "$INSTALL_RECIPE" "$@" | sha256sum | cut -c1-12; }
marker_for() {
    local name=$1; shift
    echo "$CACHE_DIR/$name/.installed-$(spec_hash "$@")"
}

# install_venv NAME PKG... : create $CACHE_DIR/NAME with PKGs (and, for a
# Milvus venv, the unpacked server binary in NAME/milvus-bin), once.
install_venv() {
    local name=$1; shift
    local dir=$CACHE_DIR/$name marker ilog=$CACHE_DIR/$name.install.log
    marker=$(marker_for "$name" "$@")
    [[ -f $marker ]] && return 0
    log "installing $name: $*"
    rm -rf "$dir"
    if ! {
        "$PY" -m venv "$dir" &&
            "$dir/bin/python" -m pip install -q --upgrade pip &&
            "$dir/bin/python" -m pip install -q "$@"
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

installed() {
    [[ -f $(marker_for venv-2.3.5 "${SPEC_23[@]}") ]] &&
        [[ -f $(marker_for venv-2.2.16 "${SPEC_22[@]}") ]] &&
        [[ -f $(marker_for venv-moto "${SPEC_MOTO[@]}") ]]
}

cmd_install() {
    installed && return 0
    command -v "$PY" >/dev/null || die "$PY not found (set MBT_BOOTSTRAP_PYTHON)"
    "$PY" -c 'import venv, lzma' 2>/dev/null || die "$PY lacks the venv or lzma module"
    mkdir -p "$CACHE_DIR"
    # One installer at a time per cache (parallel test runners may race).
    exec 8>"$CACHE_DIR/.install.lock"
    flock -w 1800 8 || die "timed out waiting for $CACHE_DIR/.install.lock"
    local pids=() rc=0 p
    install_venv venv-moto "${SPEC_MOTO[@]}" &
    pids+=($!)
    install_venv venv-2.3.5 "${SPEC_23[@]}" &
    pids+=($!)
    install_venv venv-2.2.16 "${SPEC_22[@]}" &
    pids+=($!)
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    exec 8>&-
    [[ $rc -eq 0 ]] || die "install failed"
}

# ---------------------------------------------------------------- start

start_s3() {
    local svc=$1 port
    port=$(s3_port "$svc")
    "$PY" "$UTIL" ports-free "$port"
    mkdir -p "$RUN_DIR/$svc"
    : >"$(svc_log "$svc")"
    "$PY" "$UTIL" spawn "$(pid_file "$svc")" "$(svc_log "$svc")" "$RUN_DIR/$svc" "${NO_IMDS_ENV[@]}" -- \
        "$CACHE_DIR/venv-moto/bin/moto_server" -H 127.0.0.1 -p "$port" >/dev/null
}

# wait_s3 SVC BUCKET...: wait for the moto server, then create buckets.
wait_s3() {
    local svc=$1; shift
    local port deadline pid
    port=$(s3_port "$svc")
    deadline=$((SECONDS + 60))
    until "$PY" "$UTIL" http-ok "http://127.0.0.1:$port/" 2; do
        pid=$(read_pid "$svc") || { tail -n 30 "$(svc_log "$svc")" >&2; die "$svc exited during start-up"; }
        ((SECONDS < deadline)) || { tail -n 30 "$(svc_log "$svc")" >&2; die "$svc not answering on port $port after 60 s"; }
        sleep 0.5
    done
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
        "system_log_path=$dir/logs"
        "system_log_level=info"
        "log_stdout=false"
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
    )
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
    : >"$(svc_log "$svc")"
    "$PY" "$UTIL" spawn "$(pid_file "$svc")" "$(svc_log "$svc")" "$dir" \
        "MILVUSCONF=$dir/configs" "DEPLOY_MODE=STANDALONE" "METRICS_PORT=$(metrics_port "$svc")" \
        "MILVUS_RUN_DIR=$dir/run" "${NO_IMDS_ENV[@]}" "LD_LIBRARY_PATH=$venv/milvus-bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        -- "$venv/milvus-bin/milvus" run standalone >/dev/null
}

wait_milvus() {
    local svc=$1 pid
    pid=$(read_pid "$svc") || pid=0
    if ! "$(venv_dir "$(milvus_version "$svc")")/bin/python" "$UTIL" wait-milvus \
        127.0.0.1 "$(proxy_port "$svc")" "$pid" "$READY_TIMEOUT" >"$RUN_DIR/$svc/version" 2>"$RUN_DIR/$svc/wait.err"; then
        {
            echo "---- $svc failed to become ready: $(cat "$RUN_DIR/$svc/wait.err")"
            echo "---- tail of $(svc_log "$svc")"
            tail -n 30 "$(svc_log "$svc")" 2>/dev/null || true
            local f
            for f in "$RUN_DIR/$svc"/logs/milvus*.log; do
                [[ -f $f ]] || continue
                echo "---- tail of $f"
                tail -n 40 "$f"
            done
        } >&2
        return 1
    fi
    # /healthz may lag GetVersion by a moment; bounded.
    local deadline=$((SECONDS + 30))
    until "$PY" "$UTIL" http-ok "http://127.0.0.1:$(metrics_port "$svc")/healthz" 3 OK; do
        ((SECONDS < deadline)) || { log "$svc: /healthz not OK after 30 s"; return 1; }
        sleep 1
    done
}

# stop_pids SVC...: SIGTERM all, wait (bounded), SIGKILL the rest, drop pid files.
stop_services() {
    local svc pid pids=() left
    for svc in "$@"; do
        if pid=$(read_pid "$svc"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while ((${#pids[@]} > 0)); do
        left=()
        for pid in "${pids[@]}"; do
            if [[ -d /proc/$pid ]] && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
                left+=("$pid")
            fi
        done
        pids=(${left[@]+"${left[@]}"})
        ((${#pids[@]} > 0)) || break
        if ((SECONDS >= deadline)); then
            log "SIGKILL after ${STOP_TIMEOUT}s: ${pids[*]}"
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

write_env() {
    local f=$RUN_DIR/env.sh tmp svc services
    services=$(running_milvus)
    tmp=$f.tmp
    {
        echo "# generated by scripts/testenv.sh start; source this file"
        kv MBT_RUN_DIR "$RUN_DIR"
        kv MBT_SERVICES "$services"
        kv MBT_S3_ENDPOINT "http://127.0.0.1:$S3_PORT"
        kv MBT_S3B_ENDPOINT "http://127.0.0.1:$S3B_PORT"
        kv MBT_S3_ACCESS_KEY "$S3_ACCESS_KEY"
        kv MBT_S3_SECRET_KEY "$S3_SECRET_KEY"
        kv MBT_S3_REGION "$S3_REGION"
        kv MBT_BACKUP_BUCKET "$BACKUP_BUCKET"
        for svc in $services; do
            kv "MBT_${svc}_HOST" 127.0.0.1
            kv "MBT_${svc}_PORT" "$(proxy_port "$svc")"
            kv "MBT_${svc}_MGMT" "http://127.0.0.1:$(metrics_port "$svc")"
            kv "MBT_${svc}_STORAGE" "$(milvus_storage "$svc")"
            kv "MBT_${svc}_BUCKET" "$(milvus_bucket "$svc")"
            kv "MBT_${svc}_ROOT" "$(milvus_root "$svc")"
            kv "MBT_${svc}_VERSION" "$(milvus_version "$svc")"
        done
        kv MBT_PY_23 "$(venv_dir 2.3.5)/bin/python"
        kv MBT_PY_22 "$(venv_dir 2.2.16)/bin/python"
        kv MBT_GEN_DATA "$SCRIPT_DIR/gen_data.py"
    } >"$tmp"
    mv "$tmp" "$f"
}

cmd_start() {
    local want svc t0=$SECONDS
    want=$(requested_services)
    cmd_install
    mkdir -p "$RUN_DIR/pids" "$RUN_DIR/logs"
    exec 9>"$RUN_DIR/.lock"
    flock -w 600 9 || die "another testenv.sh start/stop holds $RUN_DIR/.lock"

    # Which services need a (re)start? An S3 restart loses its buckets'
    # contents, so the Milvus servers on it restart too.
    local s3_restart=() milvus_restart=()
    for svc in S3 S3B; do healthy "$svc" || s3_restart+=("$svc"); done
    for svc in $want; do
        if ! healthy "$svc"; then
            milvus_restart+=("$svc")
        elif [[ " ${s3_restart[*]-} " == *" S3 "* && $(milvus_storage "$svc") == minio ]]; then
            milvus_restart+=("$svc")
        fi
    done
    if ((${#s3_restart[@]} == 0 && ${#milvus_restart[@]} == 0)); then
        write_env
        log "already running and healthy: S3 S3B $(running_milvus)"
        return 0
    fi
    # Anything being restarted is stopped first (stale or unhealthy process).
    stop_services ${s3_restart[@]+"${s3_restart[@]}"} ${milvus_restart[@]+"${milvus_restart[@]}"}

    local svc_list="${s3_restart[*]-} ${milvus_restart[*]-}"
    log "starting: ${svc_list}"
    for svc in ${s3_restart[@]+"${s3_restart[@]}"}; do start_s3 "$svc"; done
    for svc in ${s3_restart[@]+"${s3_restart[@]}"}; do
        case $svc in
            S3) wait_s3 S3 milvus-a milvus-b milvus-v22 "$BACKUP_BUCKET" ;;
            S3B) wait_s3 S3B "$BACKUP_BUCKET" ;;
        esac
    done
    local t_s3=$SECONDS
    for svc in ${milvus_restart[@]+"${milvus_restart[@]}"}; do start_milvus "$svc"; done
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
        die "not ready: ${failed% } (logs: $RUN_DIR/logs, $RUN_DIR/<svc>/logs); 'scripts/testenv.sh stop' to clean up"
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
    for svc in $ALL_MILVUS S3 S3B; do read_pid "$svc" >/dev/null && any+="$svc "; done
    # Milvus first (it talks to S3 while shutting down), then S3.
    stop_services $ALL_MILVUS
    stop_services S3 S3B
    rm -f "$RUN_DIR/env.sh"
    log "stopped: ${any:-nothing was running}"
}

cmd_status() {
    local svc pid state rss port rc=0
    for svc in S3 S3B $ALL_MILVUS; do
        case $svc in S3 | S3B) port=$(s3_port "$svc") ;; *) port=$(proxy_port "$svc") ;; esac
        if pid=$(read_pid "$svc"); then
            rss=$(awk '/^VmRSS/ {printf "%d MiB", $2/1024}' "/proc/$pid/status" 2>/dev/null || echo "?")
            if healthy "$svc"; then state="running healthy"; else state="running UNHEALTHY"; rc=1; fi
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
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        env) cmd_env ;;
        logs) cmd_logs ;;
        *) die "usage: $0 install|start|stop|status|env|logs" ;;
    esac
}

main "$@"
