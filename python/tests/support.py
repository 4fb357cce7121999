"""Test helpers: the test environment, a real ``milvus-backup server``
process, test collections in a real Milvus (pymilvus), and raw access to
the backup bucket on the S3 (moto) server.

Everything made here has a unique name (``sdk_<what>_<random>``) and is
removed by the fixture that made it; the Milvus and S3 servers are shared
with other test runs, so nothing here touches what it did not create.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional, Sequence
from urllib.parse import quote

import httpx

REPO = Path(__file__).resolve().parents[2]
# Loopback traffic must never go through a proxy.
os.environ["no_proxy"] = os.environ["NO_PROXY"] = "127.0.0.1,localhost"


def unique(what: str) -> str:
    return f"sdk_{what}_{uuid.uuid4().hex[:10]}"


def testenv() -> Dict[str, str]:
    """MBT_* variables: from the environment, else from the run dir's env.sh."""
    env = {k: v for k, v in os.environ.items() if k.startswith("MBT_")}
    if "MBT_S3_ENDPOINT" in env:
        return env
    run_dir = os.environ.get("MILVUS_BACKUP_TESTENV", "/tmp/milvus-backup-testenv")
    path = Path(run_dir) / "env.sh"
    if not path.exists():
        raise RuntimeError(f"no test environment: {path} is missing — run scripts/testenv.sh start")
    for line in path.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            k, v = line[len("export "):].split("=", 1)
            env[k] = v.strip('"')
    return env


def binary() -> Path:
    """The ``milvus-backup`` binary: $MILVUS_BACKUP_BIN or target/debug."""
    path = Path(os.environ.get("MILVUS_BACKUP_BIN") or REPO / "target" / "debug" / "milvus-backup")
    if not path.is_absolute():
        path = REPO / path
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"no milvus-backup binary at {path} — build it (cargo build -p milvus-backup) or set MILVUS_BACKUP_BIN")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host_port(endpoint: str):
    hp = endpoint.split("://", 1)[-1]
    host, port = hp.rsplit(":", 1)
    return host, int(port)


def config_yaml(env: Dict[str, str], backup_root: str, milvus_port: Optional[int] = None, backup_endpoint: Optional[str] = None) -> str:
    """backup.yaml for Milvus A with backups in the backup bucket under
    ``backup_root`` (the shape of crates/cli/tests/system/env.rs)."""
    s3_host, s3_port = host_port(env["MBT_S3_ENDPOINT"])
    b_host, b_port = host_port(backup_endpoint or env["MBT_S3_ENDPOINT"])
    return f"""
milvus:
  address: {env['MBT_A_HOST']}
  port: {milvus_port or env['MBT_A_PORT']}
minio:
  storageType: minio
  address: {s3_host}
  port: {s3_port}
  accessKeyID: {env['MBT_S3_ACCESS_KEY']}
  secretAccessKey: {env['MBT_S3_SECRET_KEY']}
  bucketName: "{env['MBT_A_BUCKET']}"
  rootPath: "{env['MBT_A_ROOT']}"
  backupStorageType: minio
  backupAddress: {b_host}
  backupPort: {b_port}
  backupAccessKeyID: {env['MBT_S3_ACCESS_KEY']}
  backupSecretAccessKey: {env['MBT_S3_SECRET_KEY']}
  backupBucketName: {env['MBT_BACKUP_BUCKET']}
  backupRootPath: "{backup_root}"
  crossStorage: {'true' if backup_endpoint else 'false'}
backup:
  gcPause: {{ enable: true, seconds: 120, address: "{env['MBT_A_MGMT']}" }}
"""


class Server:
    """A ``milvus-backup server`` child process on a free loopback port."""

    def __init__(self, yaml: str, *, token: Optional[str] = None, sets: Sequence[str] = (), envs: Optional[Dict[str, str]] = None):
        self.dir = Path(tempfile.mkdtemp(prefix="sdk-server-"))
        cfg = self.dir / "backup.yaml"
        cfg.write_text(yaml)
        self.log = self.dir / "server.log"
        self.port = free_port()
        self.token = token
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MILVUS_", "MINIO_", "BACKUP_"))}
        env.update({"RUST_LOG": "error,milvus_backup=info", "NO_COLOR": "1"})
        if token:
            env["MILVUS_BACKUP_AUTH_TOKEN"] = token
        env.update(envs or {})
        cmd = [str(binary()), "--config", str(cfg), "--set", "http.address=127.0.0.1"]
        for s in sets:
            cmd += ["--set", s]
        cmd += ["server", "-p", str(self.port)]
        out = open(self.log, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
        out.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server not ready after 60 s: {self.log_text()}")
            time.sleep(0.1)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 30 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def keygen() -> str:
    """A fresh age identity from ``milvus-backup keygen``."""
    out = subprocess.run([str(binary()), "keygen"], capture_output=True, text=True, timeout=30, check=True).stdout
    return next(line for line in out.splitlines() if line.startswith("AGE-SECRET-KEY-"))


# ------------------------------------------------------------------ S3

_NS = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}


def _sigv4(method: str, url: httpx.URL, body: bytes, access_key: str, secret_key: str, region: str) -> Dict[str, str]:
    """AWS Signature V4 headers for one S3 request (moto refuses some
    unsigned writes)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest()
    host = url.netloc.decode()
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(url.params.multi_items())
    )
    headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [method, quote(url.path, safe="/-_.~"), query]
        + [f"{k}:{headers[k]}" for k in sorted(headers)]
        + ["", signed, payload]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "x-amz-content-sha256": payload,
        "x-amz-date": amz_date,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}",
    }


class Bucket:
    """Signed HTTP requests to one bucket of the S3 (moto) server."""

    def __init__(self, endpoint: str, bucket: str, access_key: str, secret_key: str, region: str):
        self.base = f"{endpoint.rstrip('/')}/{bucket}"
        self.creds = (access_key, secret_key, region)
        self.http = httpx.Client(timeout=30, event_hooks={"request": [self._sign]})

    def _sign(self, request: httpx.Request) -> None:
        request.headers.update(_sigv4(request.method, request.url, request.read(), *self.creds))

    def keys(self, prefix: str) -> List[str]:
        keys: List[str] = []
        token = None
        while True:
            params = {"list-type": "2", "prefix": prefix}
            if token:
                params["continuation-token"] = token
            r = self.http.get(self.base, params=params)
            r.raise_for_status()
            root = ET.fromstring(r.content)
            keys += [e.text for e in root.iterfind("s3:Contents/s3:Key", _NS)]
            token = root.findtext("s3:NextContinuationToken", namespaces=_NS)
            if not token:
                return keys

    def get(self, key: str) -> bytes:
        r = self.http.get(f"{self.base}/{key}")
        r.raise_for_status()
        return r.content

    def put(self, key: str, body: bytes) -> None:
        self.http.put(f"{self.base}/{key}", content=body).raise_for_status()

    def flip_byte(self, key: str, offset: int = -1) -> None:
        """Rewrites ``key`` with one byte inverted (same size)."""
        body = bytearray(self.get(key))
        body[offset] ^= 0xFF
        self.put(key, bytes(body))

    def delete(self, key: str) -> None:
        self.http.delete(f"{self.base}/{key}").raise_for_status()

    def delete_prefix(self, prefix: str) -> None:
        for k in self.keys(prefix):
            self.delete(k)
