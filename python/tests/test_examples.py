"""The user guide's code: its basic usage and the three examples in
python/examples, run against a server of their own (a fresh backup root,
since the examples list and delete every backup they see)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
from pathlib import Path

import pytest

import support
from milvus_data import row
from support import unique

from milvus_backup import BackupClient

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_rag_backup_manager_backs_up_verifies_and_cleans_only_its_own(kb):
    client, docs, emb = kb
    manager = load("rag_backup_manager").RAGBackupManager(client, collections=[docs, emb])
    other = unique("not_rag")
    client.create_backup(other, [docs])

    name, out = run(manager.backup_knowledge_base)

    assert f"✅ Backup {name} created and verified" in out
    info = client.get_backup(name)
    assert sorted(info.collections) == sorted([f"default.{docs}", f"default.{emb}"])
    assert info.entities == 400
    # Nothing is 7 days old; with 0 days its own backup goes, the other stays.
    run(manager.cleanup_old_backups, 7)
    assert sorted(b["name"] for b in client.list_backups()) == sorted([name, other])
    _, out = run(manager.cleanup_old_backups, 0)
    assert f"Deleting old backup: {name}" in out
    assert [b["name"] for b in client.list_backups()] == [other]


def test_rag_version_manager_rolls_back_to_a_version(kb, milvus):
    client, docs, emb = kb
    manager = load("rag_version_manager").RAGVersionManager(client, collections=[docs, emb])

    _, out = run(manager.create_version, "v1.0", "Initial knowledge base")
    assert "✅ Version v1.0 created" in out
    milvus.insert(docs, range(200, 300))
    manager.create_version("v1.1", "Added new documents")
    assert milvus.count(docs) == 300
    assert client.get_backup("rag_version_v1_1").entities == 500

    _, out = run(manager.rollback_to_version, "v1.0")

    assert "✅ Rolled back to version v1.0" in out
    assert milvus.count(docs) == 200 and milvus.count(emb) == 200
    assert milvus.rows(docs, [0, 199, 250]) == {0: row(0), 199: row(199)}
    with pytest.raises(ValueError):
        manager.rollback_to_version("v9")
    _, out = run(manager.list_versions)
    assert "v1.0: Initial knowledge base" in out and "v1.1: Added new documents" in out


def test_backup_monitor_alerts_on_stale_and_corrupted_backups(env, kb, example_server):
    client, docs, _ = kb
    monitor_module = load("backup_monitor")
    good, bad = unique("mon_good"), unique("mon_bad")
    client.create_backup(good, [docs])
    client.create_backup(bad, [docs])

    healthy = monitor_module.BackupMonitor(client)
    run(healthy.check_backup_health)
    assert healthy.alerts == []

    # One data file of `bad` disappears.
    binlog = next(k for k in env.bucket.keys(f"{example_server.root}/{bad}/") if "/binlogs/insert_log/" in k)
    env.bucket.delete(binlog)

    monitor = monitor_module.BackupMonitor(client)
    _, out = run(monitor.check_backup_health)
    assert monitor.alerts == [f"Backup {bad} is corrupted!"]
    assert f"🚨 ALERT: Backup {bad} is corrupted!" in out

    stale = monitor_module.BackupMonitor(client, max_age=0)
    run(stale.check_backup_health)
    assert stale.alerts[0] == "No backup in last 0 hours!"
