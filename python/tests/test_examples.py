"""The user guide's code: its basic usage and the three examples in
python/examples, run against a server of their own (a fresh backup root,
since the examples list and delete every backup they see)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import schedule
from pymilvus import Collection, utility

import support
from milvus_data import row
from support import unique

from milvus_backup import BackupClient

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def example_server(env):
    root = unique("root_examples")
    server = support.Server(support.config_yaml(env.vars, root))
    server.root = root
    yield server
    server.stop()
    env.bucket.delete_prefix(f"{root}/")


@pytest.fixture(scope="module")
def knowledge_base(env, milvus, example_server):
    """``documents`` and ``embeddings``, 200 rows each (a rollback may
    replace them, with the same rows)."""
    docs, emb = unique("documents"), unique("embeddings")
    try:
        for name in (docs, emb):
            milvus.create(name)
            milvus.insert(name, range(200))
        yield docs, emb
    finally:
        milvus.drop(docs)
        milvus.drop(emb)


@pytest.fixture
def kb(env, example_server, knowledge_base):
    """A client of the example server and the knowledge base; every backup
    is deleted afterwards."""
    client = BackupClient(env.milvus_host, env.milvus_port, "127.0.0.1", example_server.port)
    yield (client, *knowledge_base)
    for b in client.list_backups():
        client.delete_backup(b["name"])
    client.close()


def run(fn, *args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = fn(*args)
    return result, out.getvalue()


def test_the_guides_basic_usage(kb, milvus, dropped):
    client, my_collection, _ = kb
    backup_name = unique("guide")
    my_collection_restored = unique("guide_restored")
    dropped.append(my_collection_restored)

    # ---- the guide's code ("基础使用"), names substituted ----
    backup_id = client.create_backup(
        backup_name=backup_name,
        collections=[my_collection],
        compression=True
    )

    print(f"Backup created: {backup_id}")

    backups = client.list_backups()
    for backup in backups:
        print(f"{backup['name']}: {backup['size']} bytes")

    client.restore_backup(
        backup_name=backup_name,
        target_collection=my_collection_restored
    )

    print("Backup restored successfully!")

    client.delete_backup(backup_name=backup_name)
    # ---- end ----

    assert [b["name"] for b in backups] == [backup_name]
    assert milvus.count(my_collection_restored) == 200
    assert milvus.rows(my_collection_restored, [0, 199]) == {0: row(0), 199: row(199)}
    assert client.list_backups() == []


def example_env(env, example_server) -> dict:
    """The connection settings the examples read from the environment."""
    return {
        "MILVUS_HOST": env.milvus_host,
        "MILVUS_PORT": str(env.milvus_port),
        "MILVUS_BACKUP_HOST": "127.0.0.1",
        "MILVUS_BACKUP_PORT": str(example_server.port),
    }


@pytest.fixture
def guide_kb(env, milvus, example_server, monkeypatch):
    """The guide's knowledge base under its own names, ``documents`` and
    ``embeddings`` (200 rows each, indexed, loaded), the examples'
    connection settings in the environment; afterwards every backup and
    both collections are removed."""
    names = ("documents", "embeddings")
    for name in names:
        if utility.has_collection(name, using=milvus.alias):
            utility.drop_collection(name, using=milvus.alias)
        milvus.create(name)
        milvus.insert(name, range(200))
        Collection(name, using=milvus.alias).load()
    settings = example_env(env, example_server)
    for k, v in settings.items():
        monkeypatch.setenv(k, v)
    client = BackupClient(env.milvus_host, env.milvus_port, "127.0.0.1", example_server.port)
    try:
        yield client, settings
    finally:
        for b in client.list_backups():
            client.delete_backup(b["name"])
        client.close()
        for name in utility.list_collections(using=milvus.alias):
            if name in names or name.startswith(tuple(f"{n}_mbr_" for n in names)):
                utility.drop_collection(name, using=milvus.alias)


def guide_code(name: str, until: str = None) -> str:
    """An example's source, up to the line ``until`` (the guide's endless
    scheduler loop) when given."""
    text = (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")
    if until:
        text = text[: text.index(until)]
    return text


def searchable(milvus, name: str):
    """(id, load state, index count) of a collection."""
    c = Collection(name, using=milvus.alias)
    return c.describe()["collection_id"], str(utility.load_state(name, using=milvus.alias)), len(c.indexes)


def test_the_guides_rag_rollback_runs_as_written_and_leaves_the_old_version_searchable(guide_kb, milvus):
    client, settings = guide_kb
    before = {n: searchable(milvus, n)[0] for n in ("documents", "embeddings")}

    # The guide's 场景2, run as a program, exactly as written.
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "rag_version_manager.py")],
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 0, done.stderr
    for line in ("✅ Version v1.0 created", "✅ Version v1.1 created", "✅ Rolled back to version v1.0"):
        assert line in done.stdout, done.stdout
    # The rollback replaced both collections: new ones, the same rows,
    # indexed and loaded; nothing left beside them.
    for name in ("documents", "embeddings"):
        cid, state, indexes = searchable(milvus, name)
        assert cid != before[name], f"{name} was replaced"
        assert state == "Loaded" and indexes == 1, (name, state, indexes)
        assert milvus.count(name) == 200
        assert milvus.rows(name, [0, 199]) == {0: row(0), 199: row(199)}
    left = [c for c in utility.list_collections(using=milvus.alias) if "_mbr_" in c]
    assert left == []
    names = sorted(b["name"] for b in client.list_backups())
    assert names == ["rag_version_v1.0", "rag_version_v1.1"]


def test_the_guides_scheduled_backup_backs_up_verifies_and_keeps_fresh_backups(guide_kb):
    client, _ = guide_kb
    module: dict = {}
    schedule.clear()
    try:
        # The guide's 场景1 up to its endless scheduler loop: the manager
        # and its daily job.
        exec(compile(guide_code("rag_backup_manager", until="# 运行调度器"), "rag_backup_manager.py", "exec"), module)
        (job,) = schedule.jobs
        assert job.unit == "days" and str(job.at_time) == "02:00:00"
        manager = module["manager"]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            manager.backup_knowledge_base()
    finally:
        schedule.clear()

    (backup,) = client.list_backups()
    assert backup["name"].startswith("rag_kb_")
    assert f"✅ Backup {backup['name']} created and verified" in out.getvalue()
    info = client.get_backup(backup["name"])
    assert sorted(info.collections) == ["default.documents", "default.embeddings"]
    assert info.entities == 400
    # Its cleanup of backups older than 7 days deleted nothing fresh.
    assert "Deleting old backup" not in out.getvalue()


def test_the_guides_monitor_alerts_on_a_corrupted_backup_only(env, guide_kb, example_server):
    client, _ = guide_kb
    good, bad = unique("mon_good"), unique("mon_bad")
    client.create_backup(good, ["documents"])
    client.create_backup(bad, ["documents"])
    binlog = next(k for k in env.bucket.keys(f"{example_server.root}/{bad}/") if "/binlogs/insert_log/" in k)
    env.bucket.delete(binlog)

    module: dict = {}
    schedule.clear()
    try:
        # The guide's 监控和告警, as written: a monitor and an hourly job.
        exec(compile(guide_code("backup_monitor"), "backup_monitor.py", "exec"), module)
        (job,) = schedule.jobs
        assert job.unit == "hours"
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            module["monitor"].check_backup_health()
    finally:
        schedule.clear()

    alerts = [line for line in out.getvalue().splitlines() if "ALERT" in line]
    assert alerts == [f"🚨 ALERT: Backup {bad} is corrupted!"], out.getvalue()
