"""Fixtures: one real ``milvus-backup server`` per run (Milvus A of the test
environment, backups in the S3 bucket under a fresh root, a bearer token
and an encryption key), the test collections every module shares, and a
cleanup list for what a test restores.

Needs ``scripts/testenv.sh start`` and a ``milvus-backup`` binary
($MILVUS_BACKUP_BIN, default target/debug/milvus-backup).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Iterator, List

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import support  # noqa: E402
from milvus_data import Milvus  # noqa: E402

from milvus_backup import BackupClient  # noqa: E402


@dataclasses.dataclass
class Env:
    vars: dict
    server: support.Server
    root: str
    bucket: support.Bucket
    milvus_host: str
    milvus_port: int

    def client(self, **kw) -> BackupClient:
        kw.setdefault("token", self.server.token)
        return BackupClient(self.milvus_host, self.milvus_port, "127.0.0.1", self.server.port, **kw)

    def backup_keys(self, backup: str) -> List[str]:
        return self.bucket.keys(f"{self.root}/{backup}/")


@pytest.fixture(scope="session")
def env() -> Iterator[Env]:
    v = support.testenv()
    root = support.unique("root")
    # One copy and one import at a time: a restore's progress moves once
    # per imported segment, and Milvus may finish concurrent imports
    # together (0 → 100); one at a time, each segment shows.
    server = support.Server(
        support.config_yaml(v, root),
        token=support.unique("token"),
        sets=["backup.parallelism.copydata=1", "backup.parallelism.importJob=1"],
        envs={"MILVUS_BACKUP_ENCRYPTION_KEY": support.keygen()},
    )
    bucket = support.Bucket(
        v["MBT_S3_ENDPOINT"], v["MBT_BACKUP_BUCKET"], v["MBT_S3_ACCESS_KEY"], v["MBT_S3_SECRET_KEY"], v["MBT_S3_REGION"]
    )
    try:
        yield Env(v, server, root, bucket, v["MBT_A_HOST"], int(v["MBT_A_PORT"]))
    finally:
        server.stop()
        bucket.delete_prefix(f"{root}/")


@pytest.fixture(scope="session")
def milvus(env: Env) -> Iterator[Milvus]:
    m = Milvus(env.milvus_host, env.milvus_port)
    yield m
    m.close()


@dataclasses.dataclass
class Data:
    #: 1000 rows in one segment.
    small: str
    small_rows: int
    #: 4000 rows in eight segments: long enough restores to watch and cancel.
    big: str
    big_rows: int


@pytest.fixture(scope="session")
def data(milvus: Milvus) -> Iterator[Data]:
    d = Data(support.unique("small"), 1000, support.unique("big"), 4000)
    try:
        milvus.create(d.small)
        milvus.insert(d.small, range(d.small_rows), segments=1)
        milvus.create(d.big)
        milvus.insert(d.big, range(d.big_rows), segments=8)
        yield d
    finally:
        milvus.drop(d.small)
        milvus.drop(d.big)


@pytest.fixture
def client(env: Env) -> Iterator[BackupClient]:
    c = env.client()
    yield c
    c.close()


@pytest.fixture
def dropped(milvus: Milvus) -> Iterator[List[str]]:
    """Collection names to drop after the test."""
    names: List[str] = []
    yield names
    for n in names:
        milvus.drop(n)
