#!/usr/bin/env python3
"""Helpers for scripts/testenv.sh (stdlib only unless a subcommand says so).

Subcommands:
  unpack SITE_PACKAGES OUT_DIR      unpack the Milvus binary + libs shipped in
                                    the `milvus` PyPI package into OUT_DIR
  render TEMPLATE OUT_DIR key=val... [--set a.b.c=val ...]
                                    write OUT_DIR/milvus.yaml from the package's
                                    template; `--set` replaces existing keys and
                                    fails when a key is missing
  etcd-conf OUT NAME DATA_DIR CLIENT_PORT PEER_PORT
                                    write an embedded-etcd config file
  hide-symbols BIN OUT LIB...       copy BIN to OUT with the dynamic exports that
                                    LIBs also define renamed (see below)
  ports-free PORT...                exit 1 (naming the port) if one is taken
  spawn PIDFILE LOG CWD [ENV=VAL ...] -- CMD...
                                    start CMD detached (new session, stdin
                                    /dev/null), write its own pid to PIDFILE
  http-ok URL TIMEOUT [TEXT]        exit 0 if URL answers 2xx (containing TEXT);
                                    tcp://HOST:PORT: if the port accepts a connection
  http-ok-many TIMEOUT NAME=URL[|TEXT]...  print the NAMEs that answer
  wait-milvus HOST PORT PID TIMEOUT [AUTH] wait until GetVersion answers (run
                                    with a venv python that has pymilvus; AUTH
                                    true: log in as root/Milvus)
  make-buckets ENDPOINT AK SK REGION BUCKET...   (needs boto3)
"""
import json
import lzma
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def die(msg):
    print(f"testenv_util: {msg}", file=sys.stderr)
    sys.exit(1)


def cmd_unpack(site_packages, out_dir):
    src = os.path.join(site_packages, "milvus", "data", "bin")
    if not os.path.isdir(src):
        die(f"no milvus binaries under {src}")
    os.makedirs(out_dir, exist_ok=True)
    for name in sorted(os.listdir(src)):
        if not name.endswith(".lzma"):
            continue
        target = os.path.join(out_dir, name[:-5])
        tmp = target + ".tmp"
        with lzma.open(os.path.join(src, name)) as fin, open(tmp, "wb") as fout:
            while True:
                chunk = fin.read(1 << 20)
                if not chunk:
                    break
                fout.write(chunk)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    glog = os.path.join(site_packages, "milvus", "data", "glog.conf")
    if os.path.isfile(glog):
        with open(glog, "rb") as f, open(os.path.join(out_dir, "glog.conf"), "wb") as g:
            g.write(f.read())


def _elf_sections(data):
    import struct

    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        die("not a little-endian ELF64 file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    out = []
    for i in range(shnum):
        name, typ, _flags, _addr, off, size, link, _info, _align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, shoff + i * shentsize)
        out.append({"type": typ, "offset": off, "size": size, "link": link, "entsize": entsize})
    return out


def _dynsym_names(path, defined_only=True):
    """(name offset, name) of the dynamic symbols of an ELF64 file."""
    import struct

    with open(path, "rb") as f:
        data = f.read()
    secs = _elf_sections(data)
    dynsym = next((s for s in secs if s["type"] == 11), None)  # SHT_DYNSYM
    if dynsym is None:
        return data, None, []
    strtab = secs[dynsym["link"]]
    out = []
    for off in range(dynsym["offset"], dynsym["offset"] + dynsym["size"], dynsym["entsize"]):
        st_name, _info, _other, st_shndx = struct.unpack_from("<IBBH", data, off)
        if st_name == 0 or (defined_only and st_shndx == 0):
            continue
        start = strtab["offset"] + st_name
        end = data.index(b"\0", start)
        out.append((start, data[start:end].decode("latin-1")))
    return data, strtab, out


def _self_relocated(path):
    """Names of symbols that the file's own dynamic relocations refer to."""
    import struct

    with open(path, "rb") as f:
        data = f.read()
    secs = _elf_sections(data)
    dynsym = next(s for s in secs if s["type"] == 11)
    strtab = secs[dynsym["link"]]
    names = set()
    for sec in secs:
        if sec["type"] != 4 or sec["link"] != secs.index(dynsym):  # SHT_RELA against .dynsym
            continue
        for off in range(sec["offset"], sec["offset"] + sec["size"], sec["entsize"] or 24):
            _r_offset, r_info, _addend = struct.unpack_from("<QQq", data, off)
            idx = r_info >> 32
            if idx == 0:
                continue
            (st_name,) = struct.unpack_from("<I", data, dynsym["offset"] + idx * dynsym["entsize"])
            start = strtab["offset"] + st_name
            names.add(data[start:data.index(b"\0", start)].decode("latin-1"))
    return names


def cmd_hide_symbols(binary, out, libs):
    """Milvus 2.2.16-lite exports every symbol of the OpenSSL 1.1 it links
    statically; the bundled AWS SDK, built for OpenSSL 1.0 (libcrypto.so.10),
    then binds HMAC_Init_ex & co. to those and crashes while creating its S3
    client. Renaming the clashing exports in .dynstr makes the dynamic linker
    resolve the SDK's calls to libcrypto.so.10; the binary's own (static)
    calls do not go through .dynsym and are unaffected, except the few the
    binary itself binds through dynamic relocations: those keep their names
    (allocators and two asm helpers; harmless for plain-http S3)."""
    clash = set()
    for lib in libs:
        clash.update(name.split("@")[0] for _, name in _dynsym_names(lib)[2])
    data, strtab, syms = _dynsym_names(binary, defined_only=False)
    if strtab is None:
        die(f"{binary} has no dynamic symbol table")
    data = bytearray(data)
    clash -= _self_relocated(binary)
    # Offsets any symbol name starts at; a renamed name must not be the tail
    # of another (string tables merge tails).
    starts = {start for start, _ in syms}
    tab_lo = strtab["offset"]
    renamed = skipped = 0
    defined = {start: name for start, name in _dynsym_names(binary)[2]}
    for start, name in defined.items():
        if name not in clash:
            continue
        lo = data.rindex(b"\0", tab_lo, start) + 1 if start > tab_lo else tab_lo
        if any(o in starts for o in range(lo, start)):
            skipped += 1
            continue
        data[start] = ord("Q") if name[0] != "Q" else ord("Z")
        renamed += 1
    if renamed == 0:
        die("no clashing symbols found; is this the expected binary?")
    tmp = f"{out}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o755)
    os.replace(tmp, out)
    print(f"renamed {renamed} exports, skipped {skipped} (shared string tails)")


TEMPLATE_VAR = re.compile(r"\{\{(.*?)\}\}")


def render_template(text, values):
    """Replace `{{ name(type): default }}` placeholders; unknown names keep the default."""

    def repl(m):
        inner = m.group(1).strip()
        default = None
        if ":" in inner:
            key, default = inner.split(":", 1)
            key, default = key.strip(), default.strip()
        else:
            key = inner
        key = key.split("(")[0].strip()
        if key in values:
            return str(values[key])
        if default is None:
            die(f"template variable {key!r} has no default; pass {key}=...")
        return default

    return TEMPLATE_VAR.sub(repl, text)


KEY_LINE = re.compile(r"^( *)([A-Za-z0-9_.]+):([^#]*)(#.*)?$")


def apply_sets(text, sets):
    """Replace values of existing dotted keys (2-space indented YAML)."""
    pending = dict(sets)
    out = []
    path = []
    for line in text.splitlines():
        m = KEY_LINE.match(line.rstrip())
        if line.strip().startswith("#") or not m:
            out.append(line)
            continue
        indent, key = m.group(1), m.group(2)
        level = len(indent) // 2
        path = path[:level] + [key]
        dotted = ".".join(path)
        if dotted in pending:
            line = f"{indent}{key}: {pending.pop(dotted)}"
        out.append(line)
    if pending:
        die(f"config keys not found in template: {', '.join(sorted(pending))}")
    return "\n".join(out) + "\n"


def insert_under(text, section, block_lines):
    """Insert lines right after the top-level `section:` line."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.rstrip() == f"{section}:":
            return "\n".join(lines[: i + 1] + block_lines + lines[i + 1 :]) + "\n"
    die(f"section {section!r} not found in config")


def cmd_render(template, out_dir, args):
    values, sets, replaces, extra_etcd = {}, {}, [], None
    it = iter(args)
    for a in it:
        if a == "--set":
            k, v = next(it).split("=", 1)
            sets[k] = v
        elif a == "--replace":
            replaces.append(next(it).split("=", 1))
        elif a == "--etcd-config":
            extra_etcd = next(it)
        else:
            k, v = a.split("=", 1)
            values[k] = v
    with open(template, encoding="utf-8") as f:
        text = f.read()
    text = render_template(text, values)
    text = apply_sets(text, sets)
    for old, new in replaces:
        if old not in text:
            die(f"--replace: {old!r} not found in config")
        text = text.replace(old, new)
    if extra_etcd:
        if re.search(r"^  config:", text, re.M):
            die("template already has etcd.config; update testenv_util.py")
        text = insert_under(text, "etcd", ["  config:", f"    path: {extra_etcd}"])
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "milvus.yaml"), "w", encoding="utf-8") as f:
        f.write(text)


def cmd_etcd_conf(out, name, data_dir, client_port, peer_port):
    client = f"http://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    with open(out, "w", encoding="utf-8") as f:
        f.write(
            f"name: {name}\n"
            f"data-dir: {data_dir}\n"
            f"listen-client-urls: {client}\n"
            f"advertise-client-urls: {client}\n"
            f"listen-peer-urls: {peer}\n"
            f"initial-advertise-peer-urls: {peer}\n"
            f"initial-cluster: {name}={peer}\n"
            "initial-cluster-state: new\n"
            "initial-cluster-token: " + name + "\n"
        )


def cmd_ports_free(ports):
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # like the servers themselves: TIME_WAIT leftovers do not block a bind
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", int(p)))
        except OSError as e:
            die(f"port {p} is already in use ({e.strerror}); stop whatever holds it "
                f"(`ss -ltnp 'sport = :{p}'`) or set MBT_PORT_BASE")
        finally:
            s.close()


def cmd_spawn(pidfile, logfile, cwd, rest):
    env = dict(os.environ)
    i = 0
    while i < len(rest) and rest[i] != "--":
        k, v = rest[i].split("=", 1)
        env[k] = v
        i += 1
    cmd = rest[i + 1 :]
    if not cmd:
        die("spawn: no command")
    with open(logfile, "ab") as log, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=devnull, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )
    with open(pidfile + ".tmp", "w") as f:
        f.write(f"{proc.pid}\n")
    os.replace(pidfile + ".tmp", pidfile)
    print(proc.pid)


def no_proxy_opener():
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_ok(url, timeout, text=None):
    if url.startswith("tcp://"):  # a port that accepts a connection (no HTTP)
        host, _, port = url[len("tcp://"):].rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=float(timeout)).close()
            return True
        except (OSError, ValueError):
            return False
    try:
        with no_proxy_opener().open(url, timeout=float(timeout)) as r:
            body = r.read(4096).decode("utf-8", "replace")
            return 200 <= r.status < 300 and (text is None or text in body)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def cmd_http_ok(url, timeout, text=None):
    sys.exit(0 if http_ok(url, timeout, text) else 1)


def cmd_http_ok_many(timeout, pairs):
    """NAME=URL[|TEXT] ...: print the NAMEs whose URL answers (in parallel)."""
    from concurrent.futures import ThreadPoolExecutor

    def check(pair):
        name, rest = pair.split("=", 1)
        url, _, text = rest.partition("|")
        return name if http_ok(url, timeout, text or None) else None

    with ThreadPoolExecutor(max_workers=max(1, len(pairs))) as ex:
        print(" ".join(n for n in ex.map(check, pairs) if n))


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def cmd_wait_milvus(host, port, pid, timeout, auth="false"):
    # gRPC honours http_proxy; loopback must never go through a proxy.
    os.environ["no_proxy"] = os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    from pymilvus import connections, utility  # noqa: E402

    deadline = time.monotonic() + float(timeout)
    pid = int(pid)
    last = "no attempt"
    alias = f"wait_{port}"
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            die(f"Milvus pid {pid} (port {port}) exited during start-up")
        try:
            creds = {"user": "root", "password": "Milvus"} if auth == "true" else {}
            connections.connect(alias=alias, host=host, port=str(port), timeout=5, **creds)
            version = utility.get_server_version(using=alias)
            utility.list_collections(using=alias, timeout=10)
            connections.disconnect(alias)
            print(version)
            return
        except Exception as e:  # noqa: BLE001 - any failure means "not ready yet"
            last = f"{type(e).__name__}: {e}"
            try:
                connections.disconnect(alias)
            except Exception:  # noqa: BLE001
                pass
        time.sleep(2)
    die(f"Milvus on {host}:{port} not ready after {timeout}s (last error: {last[:300]})")


def cmd_make_buckets(endpoint, ak, sk, region, buckets):
    import boto3  # noqa: E402
    from botocore.config import Config  # noqa: E402

    s3 = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
        region_name=region, config=Config(retries={"max_attempts": 3},
                                          connect_timeout=5, read_timeout=30),
    )
    have = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for b in buckets:
        if b not in have:
            s3.create_bucket(Bucket=b)
    print(json.dumps(sorted(have | set(buckets))))


def main(argv):
    if not argv:
        die(__doc__)
    cmd, args = argv[0], argv[1:]
    if cmd == "unpack":
        cmd_unpack(*args)
    elif cmd == "render":
        cmd_render(args[0], args[1], args[2:])
    elif cmd == "etcd-conf":
        cmd_etcd_conf(*args)
    elif cmd == "hide-symbols":
        cmd_hide_symbols(args[0], args[1], args[2:])
    elif cmd == "ports-free":
        cmd_ports_free(args)
    elif cmd == "spawn":
        cmd_spawn(args[0], args[1], args[2], args[3:])
    elif cmd == "http-ok-many":
        cmd_http_ok_many(args[0], args[1:])
    elif cmd == "http-ok":
        cmd_http_ok(*args)
    elif cmd == "wait-milvus":
        cmd_wait_milvus(*args)
    elif cmd == "make-buckets":
        cmd_make_buckets(args[0], args[1], args[2], args[3], args[4:])
    else:
        die(f"unknown subcommand {cmd!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
