"""``AsyncBackupClient``: every method of ``BackupClient`` as a coroutine."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Dict, List, Optional, Union

import httpx

from . import _protocol as p
from .client import Names
from .models import BackupInfo, CheckReport, RestoreResult, TaskStatus, VerifyReport


def _async_sender(session: p.Session, http: httpx.AsyncClient) -> Callable[[p.Request], Awaitable[p.Answer]]:
    async def send(req: p.Request) -> p.Answer:
        url = session.url(req)
        try:
            resp = await http.request(req.method, url, params=req.params, json=req.json)
        except httpx.TransportError as e:
            raise p.unreachable(url, e, session.timeout) from e
        return p.answer_of(req, url, resp.status_code, resp.content)

    return send


class AsyncBackupClient:
    """The asyncio twin of :class:`~milvus_backup.BackupClient`: same
    arguments, same methods and results, each method a coroutine that
    never blocks the event loop (waits use ``asyncio.sleep``)::

        async with AsyncBackupClient(backup_port=8080) as client:
            task_id = await client.create_backup_async("nightly", ["docs"])
            while (await client.get_backup_status(task_id))["status"] == "running":
                await asyncio.sleep(1)

    Use one instance within one event loop (``httpx.AsyncClient`` is bound
    to the loop it first ran in); close it with ``await aclose()``.
    """

    def __init__(
        self,
        milvus_host: Optional[str] = p.FROM_ENV,
        milvus_port: Optional[int] = p.FROM_ENV,
        backup_host: str = p.FROM_ENV,
        backup_port: int = p.FROM_ENV,
        *,
        token: Optional[str] = None,
        timeout: Optional[float] = 30.0,
        scheme: str = "http",
    ) -> None:
        self._session = p.Session(milvus_host, milvus_port, backup_host, backup_port, token, timeout, scheme)
        self._http = httpx.AsyncClient(timeout=timeout, headers=self._session.headers())
        self._send = _async_sender(self._session, self._http)

    @property
    def base_url(self) -> str:
        return self._session.base_url

    async def _run(self, op: p.Op) -> Any:
        return await p.run_async(op, self._send, asyncio.sleep)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncBackupClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def create_backup(
        self,
        backup_name: str,
        collections: Names = None,
        compression: Union[bool, str] = False,
        *,
        wait: bool = True,
        wait_timeout: Optional[float] = None,
        **options: Any,
    ) -> str:
        """See :meth:`BackupClient.create_backup`."""
        return await self._run(
            p.create_backup(self._session, backup_name, collections, compression, options, wait, wait_timeout)
        )

    async def create_backup_async(
        self, backup_name: str, collections: Names = None, compression: Union[bool, str] = False, **options: Any
    ) -> str:
        """Starts a backup and returns its task id at once (``create_backup``
        with ``wait=False``)."""
        return await self._run(
            p.create_backup(self._session, backup_name, collections, compression, options, False, None)
        )

    async def create_incremental_backup(
        self,
        backup_name: str,
        base_backup: str,
        collections: Names = None,
        *,
        wait: bool = True,
        wait_timeout: Optional[float] = None,
        **options: Any,
    ) -> str:
        """See :meth:`BackupClient.create_incremental_backup`."""
        return await self.create_backup(
            backup_name, collections, wait=wait, wait_timeout=wait_timeout, base_backup=base_backup, **options
        )

    async def list_backups(self, collection: Optional[str] = None) -> List[BackupInfo]:
        """See :meth:`BackupClient.list_backups`."""
        return await self._run(p.list_backups(self._session, collection))

    async def get_backup(self, name: str) -> BackupInfo:
        """See :meth:`BackupClient.get_backup`."""
        return await self._run(p.get_backup(self._session, name))

    async def delete_backup(self, backup_name: str) -> int:
        """See :meth:`BackupClient.delete_backup`."""
        return await self._run(p.delete_backup(self._session, backup_name))

    async def restore_backup(
        self,
        backup_name: str,
        collections: Names = None,
        target_collection: Optional[str] = None,
        suffix: Optional[str] = None,
        drop_existing: Optional[bool] = None,
        *,
        wait: bool = True,
        wait_timeout: Optional[float] = None,
        **options: Any,
    ) -> RestoreResult:
        """See :meth:`BackupClient.restore_backup`."""
        return await self._run(
            p.restore_backup(
                self._session, backup_name, collections, target_collection, suffix, drop_existing,
                options, wait, wait_timeout,
            )
        )

    async def verify_backup(self, backup_name: str, deep: bool = False, restore_test: bool = False) -> bool:
        """See :meth:`BackupClient.verify_backup`."""
        return await self._run(p.verify_backup(self._session, backup_name, deep, restore_test, None))

    async def verify_report(self, backup_name: str, deep: bool = False, restore_test: bool = False) -> VerifyReport:
        """See :meth:`BackupClient.verify_report`."""
        return await self._run(p.verify_report(self._session, backup_name, deep, restore_test, None))

    async def get_backup_status(self, id: str) -> TaskStatus:
        """See :meth:`BackupClient.get_backup_status`."""
        return await self._run(p.task_status(self._session, "create", id))

    async def get_restore_status(self, id: str) -> TaskStatus:
        """See :meth:`BackupClient.get_restore_status`."""
        return await self._run(p.task_status(self._session, "restore", id))

    async def wait(self, id: str, timeout: Optional[float] = None, poll: float = 1.0) -> TaskStatus:
        """See :meth:`BackupClient.wait`."""
        return await self._run(p.wait(self._session, id, timeout, poll))

    async def cancel(self, id: str) -> TaskStatus:
        """See :meth:`BackupClient.cancel`."""
        return await self._run(p.cancel(self._session, id))

    async def resume(self, id: str) -> TaskStatus:
        """See :meth:`BackupClient.resume`."""
        return await self._run(p.resume(self._session, id))

    async def check(self) -> CheckReport:
        """See :meth:`BackupClient.check`."""
        return await self._run(p.check(self._session))

    async def compare(
        self,
        collection: str,
        target_collection: Optional[str] = None,
        to_config: Optional[str] = None,
        ignore_key: bool = False,
        show: int = 10,
        timeout: Optional[float] = None,
    ) -> Dict[str, Any]:
        """See :meth:`BackupClient.compare`."""
        body = p.compare_body(collection, target_collection, to_config, ignore_key, show)
        return await self._run(p.live_task(self._session, "compare", body, timeout))

    async def migrate(
        self,
        collection: str,
        to_config: Optional[str] = None,
        target_collection: Optional[str] = None,
        alias: Optional[str] = None,
        reconcile_existing: bool = False,
        timeout: Optional[float] = None,
    ) -> Dict[str, Any]:
        """See :meth:`BackupClient.migrate`."""
        body = p.migrate_body(collection, to_config, target_collection, alias, reconcile_existing)
        return await self._run(p.live_task(self._session, "migrate", body, timeout))
