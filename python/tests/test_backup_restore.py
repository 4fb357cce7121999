"""Backups, restores and verifies through BackupClient against the real
server and Milvus: what is restored is compared with what was inserted."""

from __future__ import annotations

import time

import pytest

from milvus_data import row
from support import unique

from milvus_backup import Conflict, NotFound, TaskCancelled, TaskFailed, WaitTimeout


def assert_restored(milvus, name: str, rows: int, sample=(0, 1, 499, 998)) -> None:
    assert milvus.count(name) == rows
    pks = [pk for pk in sample if pk < rows] + [rows - 1]
    got = milvus.rows(name, pks)
    assert got == {pk: row(pk) for pk in pks}


def stored_segments(env, backup: str) -> set:
    """Segment ids of the insert logs stored under a backup's own folder
    (``<backup>/binlogs/insert_log/<coll>/<part>/<group>/<seg>/...``)."""
    segments = set()
    for key in env.backup_keys(backup):
        parts = key.split("/")
        if "insert_log" in parts:
            segments.add(parts[parts.index("insert_log") + 4])
    return segments


def test_create_list_restore_delete_round_trip(env, client, milvus, data, dropped):
    name = unique("rt")
    started = time.time()
    backup_id = client.create_backup(backup_name=name, collections=[data.small], compression=True)

    listed = {b["name"]: b for b in client.list_backups()}
    b = listed[name]
    assert b["id"] == backup_id == b.id
    assert b["status"] == "completed"
    assert b["size"] > 0 and b["entities"] == data.small_rows
    assert started - 5 <= b["created_at"] <= time.time() + 1
    assert b["collections"] == [f"default.{data.small}"]
    holding = client.list_backups(collection=data.small)
    assert name in [x.name for x in holding]
    assert all(f"default.{data.small}" in x.collections for x in holding)
    assert client.list_backups(collection=unique("absent")) == []

    info = client.get_backup(name)
    # (list reports the bytes stored, get_backup the bytes Milvus holds:
    # they differ for a compressed backup.)
    assert (info.id, info.entities, info.status) == (backup_id, data.small_rows, "completed")
    assert info.size > 0
    assert info.collection_details[0].name == data.small

    target = unique("rt_target")
    dropped.append(target)
    result = client.restore_backup(backup_name=name, target_collection=target)
    assert result.status == "completed"
    assert [(c.source, c.target) for c in result.collections] == [(f"default.{data.small}", f"default.{target}")]
    assert_restored(milvus, target, data.small_rows)

    assert client.delete_backup(backup_name=name) > 0
    with pytest.raises(NotFound):
        client.get_backup(name)
    assert name not in [x.name for x in client.list_backups()]


def test_incremental_backup_shares_unchanged_files_and_restores_alone(env, client, milvus, dropped):
    coll = unique("inc")
    dropped.append(coll)
    milvus.create(coll)
    milvus.insert(coll, range(600))
    base, inc = unique("inc_base"), unique("inc_next")
    client.create_backup(base, [coll])
    milvus.insert(coll, range(600, 900))

    client.create_incremental_backup(backup_name=inc, base_backup=base, collections=[coll])

    assert client.get_backup(inc).entities == 900
    # The first segment's files stay with the base; the increment stores
    # only the new segment's (yet restores all 900 rows, below).
    base_segments, inc_segments = stored_segments(env, base), stored_segments(env, inc)
    assert len(base_segments) == 1 and len(inc_segments) == 1
    assert not base_segments & inc_segments
    assert client.verify_backup(inc, deep=True)
    target = coll + "_r"
    dropped.append(target)
    client.restore_backup(inc, suffix="_r")
    assert milvus.count(target) == 900
    assert milvus.rows(target, [0, 599, 600, 899]) == {pk: row(pk) for pk in (0, 599, 600, 899)}


def flip_one_binlog_byte(env, backup: str) -> str:
    """Inverts the middle byte of one insert log of the backup; returns its
    key relative to the backup's folder (as verify reports it)."""
    key = sorted(k for k in env.backup_keys(backup) if "/binlogs/insert_log/" in k)[0]
    env.bucket.flip_byte(key, offset=len(env.bucket.get(key)) // 2)
    return key[len(f"{env.root}/{backup}/"):]


def test_verify_finds_one_flipped_byte(env, client, data):
    name = unique("flip")
    client.create_backup(name, [data.small])
    assert client.verify_backup(backup_name=name) is True
    assert client.verify_backup(name, deep=True) is True

    flipped = flip_one_binlog_byte(env, name)

    # Same size, but the rewritten object's ETag is not the one recorded at
    # the copy: plain verify tells too, and deep names the file.
    assert client.verify_backup(name) is False
    assert client.verify_backup(name, deep=True) is False
    report = client.verify_report(name, deep=True)
    assert (report.ok, report.deep, report.files > 0) == (False, True, True)
    assert [p.path for p in report.problems] == [flipped], report.problems
    client.delete_backup(name)


def test_restore_of_a_damaged_compressed_backup_fails_its_task(env, client, milvus, data, dropped):
    name = unique("flipz")
    client.create_backup(name, [data.small], compression="zstd")
    flipped = flip_one_binlog_byte(env, name)
    target = unique("flipz_target")
    dropped.append(target)

    with pytest.raises(TaskFailed) as failed:
        client.restore_backup(name, target_collection=target)

    assert failed.value.state == "failed" and failed.value.task_id
    assert flipped in failed.value.message
    assert not milvus.exists(target)
    client.delete_backup(name)


def test_async_restore_progress_rises_until_completed(env, client, milvus, data, dropped):
    name = unique("prog")
    client.create_backup(name, [data.big])
    target = unique("prog_target")
    dropped.append(target)

    started = client.restore_backup(name, target_collection=target, wait=False)
    assert started.status == "running"
    seen = []
    deadline = time.monotonic() + 180
    while True:
        status = client.get_restore_status(started.id)
        seen.append(status["progress"])
        if status["status"] != "running":
            break
        assert time.monotonic() < deadline, seen
        time.sleep(0.1)

    assert status["status"] == "completed" and status["error"] is None
    assert seen == sorted(seen), seen
    between = sorted({p for p in seen if 0 < p < 100})
    assert len(between) >= 2, f"progress seen: {seen}"
    assert seen[-1] == 100
    assert client.wait(started.id).status == "completed"
    assert_restored(milvus, target, data.big_rows, sample=(0, 500, 1999, 2500))


def test_cancel_stops_a_running_restore_and_drops_its_target(env, client, milvus, data, dropped):
    name = unique("cancel")
    client.create_backup(name, [data.big])
    target = unique("cancel_target")
    dropped.append(target)
    started = client.restore_backup(name, target_collection=target, wait=False)
    with pytest.raises(WaitTimeout):
        client.wait(started.id, timeout=0.5)

    cancelled = client.cancel(started.id)

    assert cancelled.status == "cancelled" and cancelled.kind == "restore"
    assert client.get_restore_status(started.id).status == "cancelled"
    with pytest.raises(TaskCancelled):
        client.wait(started.id)
    assert not milvus.exists(target)
    # Only a failed or interrupted task resumes; a cancelled one is done with.
    with pytest.raises(Conflict, match="only a failed or interrupted"):
        client.resume(started.id)
    with pytest.raises(NotFound):
        client.resume("no_such_task")


def test_dry_runs_return_the_plan_and_change_nothing(env, client, milvus, data):
    name = unique("dry")
    plan = client.create_backup(backup_name=name, collections=[data.small], dry_run=True)
    assert plan["name"] == name
    assert plan["collections"][0]["collection"] == f"default.{data.small}"
    assert plan["totals"]["segments"] >= 1 and plan["totals"]["files"] >= 1
    assert name not in [b.name for b in client.list_backups()]

    client.create_backup(backup_name=name, collections=[data.small])
    target = unique("dry_target")
    plan = client.restore_backup(backup_name=name, target_collection=target, dry_run=True)
    task = plan["tasks"][0]
    assert task["target"]["name"] == target and task["exists"] is False
    assert task["imports"], plan
    assert not milvus.exists(target)
    client.delete_backup(backup_name=name)
