"""asyncio: the user guide's example on BackupClient, unchanged, and every
coroutine of AsyncBackupClient."""

from __future__ import annotations

import asyncio
import contextlib
import io

import pytest

from milvus_data import row
from support import unique

from milvus_backup import AsyncBackupClient, Conflict, NotFound, TaskStatus


def test_the_guides_asyncio_example_runs_unchanged_on_backup_client(env, data):
    client = env.client()
    backup_name = unique("guide_async")
    my_collection = data.big

    # ---- the guide's code ("异步备份"), names substituted ----
    async def async_backup():
        """异步创建备份"""
        backup_id = await client.create_backup_async(
            backup_name=backup_name,
            collections=[my_collection]
        )

        # 监控备份进度
        while True:
            status = await client.get_backup_status(backup_id)
            print(f"Progress: {status['progress']}%")

            if status['status'] == 'completed':
                break

            await asyncio.sleep(1)
    # ---- end of the guide's code ----

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        asyncio.run(asyncio.wait_for(async_backup(), timeout=180))
    lines = out.getvalue().splitlines()
    assert lines[-1] == "Progress: 100%", lines
    info = client.get_backup(backup_name)
    assert info.status == "completed" and info.entities == data.big_rows
    # The sync call works too, and what it returns is awaitable.
    status = client.get_backup_status(info.id)
    assert isinstance(status, TaskStatus) and status["status"] == "completed"
    client.delete_backup(backup_name)
    client.close()


def test_create_backup_async_does_not_block_the_event_loop(env, data):
    client = env.client()
    name = unique("nonblocking")

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.ensure_future(ticker())
        task_id = await client.create_backup_async(name, [data.small])
        t.cancel()
        return task_id, ticks

    task_id, ticks = asyncio.run(main())
    # The identity check and the create request took their time while the
    # loop went on ticking.
    assert ticks >= 1
    assert client.wait(task_id, timeout=120).status == "completed"
    client.delete_backup(name)
    client.close()


def test_every_coroutine_of_async_backup_client(env, milvus, data, dropped):
    async def main():
        async with AsyncBackupClient(
            env.milvus_host, env.milvus_port, "127.0.0.1", env.server.port, token=env.server.token
        ) as c:
            report = await c.check()
            assert report.passed and report.milvus_address == f"{env.milvus_host}:{env.milvus_port}"

            base, inc = unique("aio_base"), unique("aio_inc")
            base_id = await c.create_backup(base, [data.small], compression=True)
            assert (await c.get_backup(base)).id == base_id
            assert base in [b["name"] for b in await c.list_backups(collection=data.small)]
            assert (await c.get_backup_status(base_id))["status"] == "completed"
            inc_id = await c.create_incremental_backup(inc, base_backup=base, collections=[data.small])
            assert inc_id != base_id
            assert await c.verify_backup(inc, deep=True) is True
            assert (await c.verify_report(base)).ok

            started_name = unique("aio_started")
            task_id = await c.create_backup_async(started_name, [data.small])
            done = await c.wait(task_id, timeout=120)
            assert done.status == "completed" and done.kind == "create"
            with pytest.raises(Conflict):
                await c.cancel(task_id)

            target = unique("aio_target")
            dropped.append(target)
            started = await c.restore_backup(inc, target_collection=target, wait=False)
            await c.wait(started.id, timeout=180)
            assert (await c.get_restore_status(started.id))["status"] == "completed"
            assert milvus.count(target) == data.small_rows
            assert milvus.rows(target, [0, 999]) == {0: row(0), 999: row(999)}

            assert await c.delete_backup(inc) > 0
            with pytest.raises(NotFound):
                await c.get_backup(inc)
            for name in (base, started_name):
                await c.delete_backup(name)

    asyncio.run(asyncio.wait_for(main(), timeout=300))
