"""``BackupClient``: the blocking client of ``milvus-backup server``."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Dict, List, Optional, Sequence, Union

import httpx

from . import _protocol as p
from .models import BackupInfo, CheckReport, RestoreResult, TaskStatus, VerifyReport

Names = Union[None, str, Sequence[str]]


class BackupClient:
    """A client of one ``milvus-backup server`` (its ``/api/v1`` REST API).

    Args:
        milvus_host, milvus_port: the Milvus this client means to back up.
            The server's own config decides which Milvus it works on; on
            first use the client asks the server (``/api/v1/check``) and
            raises :class:`~milvus_backup.MilvusMismatch`, naming both
            addresses, when they differ (``localhost`` and ``127.0.0.1``
            are the same; other names match when they resolve to a shared
            address). ``None`` skips that part of the check.
        backup_host, backup_port: where ``milvus-backup server`` listens.

        Settings not passed come from the environment, else the defaults:
        ``MILVUS_HOST`` (localhost), ``MILVUS_PORT`` (19530),
        ``MILVUS_BACKUP_HOST`` (localhost), ``MILVUS_BACKUP_PORT`` (8080),
        so ``BackupClient()``, as the user guide writes it, runs anywhere.
        token: the server's ``http.authToken``, sent as a bearer token.
        timeout: seconds for each HTTP request (not for a whole backup:
            long work runs as a server task that the client polls).
        scheme: ``http`` or ``https``.

    Long work (create, restore, verify) runs as a task on the server
    (``"async": true``); the methods that "wait" poll it until it ends and
    raise :class:`~milvus_backup.TaskFailed` when it failed.

    ``create_backup_async`` and ``get_backup_status`` are what the user
    guide awaits on this client::

        backup_id = await client.create_backup_async(backup_name="b", collections=["c"])
        status = await client.get_backup_status(backup_id)

    ``create_backup_async`` is a real coroutine. ``get_backup_status`` must
    also work unawaited (``client.get_backup_status(id)['progress']``), so
    it asks the server at once, blocking for that one short request, and
    returns a :class:`~milvus_backup.TaskStatus`, which is awaitable (it
    gives itself). Code that must never block the event loop uses
    :class:`~milvus_backup.AsyncBackupClient`, where every method is a
    coroutine.

    The client is thread-safe (``httpx.Client`` is); close it with
    ``close()`` or use it as a context manager.
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
        self._http = httpx.Client(timeout=timeout, headers=self._session.headers())

    # ---------------------------------------------------------- plumbing

    @property
    def base_url(self) -> str:
        """``scheme://backup_host:backup_port`` of the server."""
        return self._session.base_url

    def _send(self, req: p.Request) -> p.Answer:
        url = self._session.url(req)
        try:
            resp = self._http.request(req.method, url, params=req.params, json=req.json)
        except httpx.TransportError as e:
            raise p.unreachable(url, e, self._session.timeout) from e
        return p.answer_of(req, url, resp.status_code, resp.content)

    def _run(self, op: p.Op) -> Any:
        return p.run_sync(op, self._send, time.sleep)

    async def _run_async(self, op: p.Op) -> Any:
        from .aio import _async_sender

        # A fresh AsyncClient per call: each asyncio.run() has its own loop.
        async with httpx.AsyncClient(timeout=self._session.timeout, headers=self._session.headers()) as http:
            return await p.run_async(op, _async_sender(self._session, http), asyncio.sleep)

    def close(self) -> None:
        """Closes the HTTP connections."""
        self._http.close()

    def __enter__(self) -> "BackupClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---------------------------------------------------------- backups

    def create_backup(
        self,
        backup_name: str,
        collections: Names = None,
        compression: Union[bool, str] = False,
        *,
        wait: bool = True,
        wait_timeout: Optional[float] = None,
        **options: Any,
    ) -> str:
        """Creates a backup and, by default, waits until it is complete.

        Args:
            backup_name: letters, digits, ``_``, ``-`` and ``.``, starting
                with a letter, a digit or ``_``, not ending with ``.``, at
                most 128 characters (e.g. ``"rag_version_v1.0"``).
            collections: ``"coll"`` (database ``default``) or ``"db.coll"``
                names; every collection of every database when None.
            compression: ``True`` compresses with ``compression_algorithm``
                (default ``"zstd"``); a string names the algorithm
                (``"zstd"``, ``"gzip"``, ``"none"``); ``False`` leaves it to
                the server's ``backup.compression`` setting.
            wait: False returns the task id at once (poll it with
                :meth:`get_backup_status` or :meth:`wait`).
            wait_timeout: seconds to wait at most (WaitTimeout after).
            **options: the server's create options: ``databases`` (list of
                whole databases), ``db_collections`` ({db: [colls]}),
                ``filter`` (``db.coll``/``db.*`` patterns), ``force`` (skip
                the flush), ``meta_only``, ``compression_algorithm``,
                ``compression_level``, ``encrypt`` (with the server's key),
                ``base_backup``, ``incremental``, ``format``, ``rbac``,
                ``allow_unpersisted_deletes`` (back up even when Milvus 2.2
                has not yet written recent deletes to delta logs; the
                backup records them, a restore brings those rows back). Any
                other keyword is sent as a field of the request body as it
                is, so options a newer server takes (such as ``format``,
                which this server does not read yet) work once it does.

            ``dry_run=True`` asks the server for its plan instead
                (collections, segments, files, bytes, what is shared with
                the base) and writes nothing.

        Returns:
            The backup's id (with ``wait=False``: the create task's id,
            which ``get_backup_status`` and ``wait`` also take; with
            ``dry_run=True``: the plan, a dict).

        Raises:
            AlreadyExists: the name is taken. InvalidArgument: a bad name or
            option. NotFound: no such collection. TaskFailed: the backup
            failed (nothing is left of it). MilvusMismatch, Unauthorized,
            ServerUnavailable, UpstreamError.
        """
        return self._run(
            p.create_backup(self._session, backup_name, collections, compression, options, wait, wait_timeout)
        )

    async def create_backup_async(
        self,
        backup_name: str,
        collections: Names = None,
        compression: Union[bool, str] = False,
        **options: Any,
    ) -> str:
        """Coroutine: starts a backup and returns its task id at once,
        without blocking the event loop; follow it with
        ``await client.get_backup_status(id)`` (``'status'`` becomes
        ``'completed'``) or :meth:`wait`. Arguments as :meth:`create_backup`.
        """
        return await self._run_async(
            p.create_backup(self._session, backup_name, collections, compression, options, False, None)
        )

    def create_incremental_backup(
        self,
        backup_name: str,
        base_backup: str,
        collections: Names = None,
        *,
        wait: bool = True,
        wait_timeout: Optional[float] = None,
        **options: Any,
    ) -> str:
        """Creates a backup that shares the files unchanged since
        ``base_backup`` (a complete backup) instead of copying them again;
        it restores on its own like a full one. Returns the backup's id.
        Other arguments as :meth:`create_backup`; ``NotFound`` when the base
        does not exist, ``TaskFailed`` when its files are damaged."""
        return self.create_backup(
            backup_name, collections, wait=wait, wait_timeout=wait_timeout, base_backup=base_backup, **options
        )

    def list_backups(self, collection: Optional[str] = None) -> List[BackupInfo]:
        """Every backup in the server's backup storage, newest first;
        ``collection`` (``"coll"`` or ``"db.coll"``) keeps those holding it.

        Items index like the guide's dicts (``b['name']``, ``b['size']``
        in bytes, ``b['created_at']`` in Unix seconds) and have the same
        attributes (``b.name``)."""
        return self._run(p.list_backups(self._session, collection))

    def get_backup(self, name: str) -> BackupInfo:
        """One backup by name, with its collections (``collection_details``):
        complete in storage, or the task of this server making it.
        NotFound when there is none; Conflict when it is incomplete."""
        return self._run(p.get_backup(self._session, name))

    def delete_backup(self, backup_name: str) -> int:
        """Deletes a backup (complete or not); returns the number of objects
        removed. NotFound when there is none; Conflict while a task uses it."""
        return self._run(p.delete_backup(self._session, backup_name))

    # ---------------------------------------------------------- restore

    def restore_backup(
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
        """Restores a backup into the server's Milvus and waits until done.

        Args:
            collections: collections of the backup to restore (``coll`` or
                ``db.coll``); all when None.
            target_collection: restore the one collection (of
                ``collections``, or the backup's only one) under this name
                (``"name"`` in its database, or ``"db.name"``).
            suffix: appended to every restored collection's name.
            drop_existing: replace a target collection that exists (the
                backup is restored under a side name, checked, then swapped
                in; the original is untouched if anything fails). None (the
                default): replace when the collections are restored under
                their own names (no ``target_collection``, ``suffix`` or
                ``renames``), as the guide's rollback expects; False: an
                existing target is a Conflict.
            wait: False returns the started task (poll it with
                :meth:`get_restore_status` or :meth:`wait`).
            **options: the server's restore options: ``renames``
                ({old: new}, ``"db1.*": "db2.*"``), ``db_collections``,
                ``meta_only``, ``restore_index``, ``use_auto_index``,
                ``drop_exist_index``, ``skip_create_collection``,
                ``restore_plan``, ``task_id``, ``rbac``; other keywords are
                sent as request fields as they are. ``dry_run=True`` asks
                for the server's plan instead (targets, what exists and
                would be refused, staging, import jobs) and changes nothing.

        Returns:
            The finished restore task: targets per collection (with
            ``dry_run=True``: the plan, a dict).
        """
        return self._run(
            p.restore_backup(
                self._session, backup_name, collections, target_collection, suffix, drop_existing,
                options, wait, wait_timeout,
            )
        )

    # ---------------------------------------------------------- verify

    def verify_backup(self, backup_name: str, deep: bool = False, restore_test: bool = False) -> bool:
        """Whether the backup is whole: its meta files agree and every file
        exists with its size (``deep``: and its SHA-256; ``restore_test``:
        and it restores into throwaway collections with the recorded rows).
        False also for a damaged (422) or incomplete (409) backup; NotFound
        when there is none."""
        return self._run(p.verify_backup(self._session, backup_name, deep, restore_test, None))

    def verify_report(self, backup_name: str, deep: bool = False, restore_test: bool = False) -> VerifyReport:
        """The full verdict of :meth:`verify_backup`: ``ok``, files and
        bytes checked, ``problems`` (path, problem), ``restore_test``.
        Raises BackupDamaged/Conflict where verify_backup says False."""
        return self._run(p.verify_report(self._session, backup_name, deep, restore_test, None))

    # ---------------------------------------------------------- compare, migrate

    def compare(
        self,
        collection: str,
        target_collection: Optional[str] = None,
        to_config: Optional[str] = None,
        ignore_key: bool = False,
        show: int = 10,
        timeout: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Whether ``collection`` on the server's Milvus and
        ``target_collection`` (default: the same name) on the Milvus of
        ``to_config`` (a config file on the server's host; default: the
        server's own) hold the same rows: ``{'identical': bool,
        'rows_source', 'rows_target', 'ranges', 'ranges_differing',
        'only_in_source': {'count', 'keys'}, 'only_in_target', 'different',
        'schema_differences', ...}``. ``ignore_key`` compares rows without
        their primary keys (a copy whose keys were generated anew)."""
        body = p.compare_body(collection, target_collection, to_config, ignore_key, show)
        return self._run(p.live_task(self._session, "compare", body, timeout))

    def migrate(
        self,
        collection: str,
        to_config: Optional[str] = None,
        target_collection: Optional[str] = None,
        alias: Optional[str] = None,
        reconcile_existing: bool = False,
        timeout: Optional[float] = None,
    ) -> Dict[str, Any]:
        """One round of moving ``collection`` into the Milvus of
        ``to_config`` (as ``target_collection``, default the same name): the
        first creates the target like a restore and copies the rows, every
        later one copies only what changed. ``{'rows_source',
        'rows_target', 'ranges', 'ranges_differing', 'rows_copied',
        'rows_deleted', 'identical', 'created', ...}``. With ``alias``, the
        alias points at the target once a round finds it identical."""
        body = p.migrate_body(collection, to_config, target_collection, alias, reconcile_existing)
        return self._run(p.live_task(self._session, "migrate", body, timeout))

    # ---------------------------------------------------------- tasks

    def get_backup_status(self, id: str) -> TaskStatus:
        """Where a create stands: ``{'progress': 0..100, 'status':
        'running'|'completed'|'failed'|'cancelled', 'error': str|None}``.

        ``id`` is a create task's id or a backup's id. The result may also
        be awaited (``await client.get_backup_status(id)``), see the class
        docstring."""
        return self._run(p.task_status(self._session, "create", id))

    def get_restore_status(self, id: str) -> TaskStatus:
        """Where a restore task stands, as :meth:`get_backup_status`."""
        return self._run(p.task_status(self._session, "restore", id))

    def wait(self, id: str, timeout: Optional[float] = None, poll: float = 1.0) -> TaskStatus:
        """Waits until a create, restore or verify task ends, polling at
        most every ``poll`` seconds; returns its final status. Raises
        TaskFailed/TaskCancelled when it did not succeed, WaitTimeout after
        ``timeout`` seconds, NotFound for an unknown id."""
        return self._run(p.wait(self._session, id, timeout, poll))

    def cancel(self, id: str) -> TaskStatus:
        """Cancels a running task and returns once it stopped and cleaned
        up: a cancelled create leaves no backup, a cancelled restore drops
        the collection it was filling. Conflict when it already ended."""
        return self._run(p.cancel(self._session, id))

    def resume(self, id: str) -> TaskStatus:
        """Continues a create or restore task that failed or was interrupted
        (its server stopped) as a new task, with the options it recorded: a
        create keeps the files the first run stored, a restore skips the
        segments it imported. Returns the new task's status at once (its
        ``id`` is new: :meth:`wait` on it). Conflict when the task did not
        fail, NotFound for an unknown id."""
        return self._run(p.resume(self._session, id))

    def check(self) -> CheckReport:
        """The server's probe of its Milvus and both storages, step by step
        (never raises for failed steps: see ``passed``). Does not compare
        Milvus addresses; ``milvus_address`` says which Milvus it is."""
        return self._run(p.check(self._session))
