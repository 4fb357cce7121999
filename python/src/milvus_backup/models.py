"""What the client returns: typed dataclasses that also read like dicts.

Every model is a read-only :class:`collections.abc.Mapping` over its
fields, so the user guide's ``backup['name']``, ``status['progress']`` and
``max(backups, key=lambda b: b['created_at'])`` work, as do attributes
(``backup.name``) and ``dict(backup)``. ``raw`` keeps the server's JSON.

Task statuses are ``'running'``, ``'completed'``, ``'failed'`` or
``'cancelled'``: the server's ``initial``/``executing`` are running,
``success`` is completed, ``failed`` and ``interrupted`` (a server stopped
while the task ran) are failed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any, Dict, Generator, Iterator, List, Optional

__all__ = [
    "BackupInfo",
    "CollectionInfo",
    "TaskStatus",
    "RestoreResult",
    "RestoredCollection",
    "VerifyReport",
    "VerifyProblem",
    "CheckReport",
    "CheckStep",
]

RUNNING, COMPLETED, FAILED, CANCELLED = "running", "completed", "failed", "cancelled"


def status_of(data: Mapping) -> str:
    """A task's status from the server's ``state`` and ``state_code``."""
    state = data.get("state")
    if state == "cancelled":
        return CANCELLED
    if state == "success" or data.get("state_code") == 2:
        return COMPLETED
    if state in ("failed", "interrupted") or (data.get("state_code") or 0) >= 3:
        return FAILED
    return RUNNING


class _Record(Mapping):
    """Dict-style read access to a dataclass's fields (``raw`` excluded)."""

    def _keys(self) -> List[str]:
        return [f.name for f in dataclasses.fields(self) if f.name != "raw"]  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        if key in self._keys():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    __hash__ = None  # type: ignore[assignment]


@dataclasses.dataclass(eq=False)
class CollectionInfo(_Record):
    """One collection of a backup."""

    db: str
    name: str
    #: Bytes of its data files.
    size: int
    #: Rows backed up (0 while the backup is being made).
    entities: int
    partitions: List[str]
    raw: Dict[str, Any] = dataclasses.field(repr=False, default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.db}.{self.name}"

    @classmethod
    def from_brief(cls, c: Mapping) -> "CollectionInfo":
        parts = c.get("partition_backups") or []
        return cls(
            db=c.get("db_name") or "default",
            name=c.get("collection_name") or "",
            size=int(c.get("size") or 0),
            entities=sum(int(p.get("entities") or 0) for p in parts),
            partitions=[p.get("partition_name", "") for p in parts],
            raw=dict(c),
        )


@dataclasses.dataclass(eq=False)
class BackupInfo(_Record):
    """A backup, as ``list_backups`` and ``get_backup`` return it.

    ``status`` is ``'completed'``, ``'running'`` (being made by this
    server), ``'failed'``, ``'cancelled'``, ``'incomplete'`` (files
    without completion marks, e.g. left by a crash; only deletable), or
    (``list_backups``) ``'damaged'``: its meta files do not parse, or its
    last verification found damage.
    """

    name: str
    #: The backup's id (the creating task's id until the backup is written).
    id: str
    status: str
    #: Bytes of data files: as stored (``list_backups``), or as Milvus holds
    #: them (``get_backup``); the two differ for a compressed backup.
    size: int
    #: When the backup was taken (or started, while it is being written),
    #: seconds since the Unix epoch; an unfinished backup with no time
    #: recorded yet reads as now, so that age-based cleanups (the guide's
    #: ``cleanup_old_backups``) never take it for an old one.
    created_at: float
    #: Rows in the backup.
    entities: int
    #: ``db.collection`` names.
    collections: List[str]
    milvus_version: str
    #: 0-100 (100 once completed).
    progress: int
    #: Why it failed, when it did.
    error: Optional[str]
    #: Per collection, with sizes and rows (``get_backup`` only).
    collection_details: List[CollectionInfo]
    raw: Dict[str, Any] = dataclasses.field(repr=False, default_factory=dict)

    @classmethod
    def from_list_item(cls, d: Mapping) -> "BackupInfo":
        status = {2: COMPLETED, 1: RUNNING}.get(d.get("state_code"), "incomplete")
        if d.get("state") == "damaged":
            status = "damaged"
        return cls(
            name=d.get("name", ""),
            id=d.get("id", ""),
            status=status,
            size=int(d.get("size") or 0),
            created_at=_seconds(d.get("backup_timestamp") or d.get("start_time"))
            or (0.0 if status == COMPLETED else time.time()),
            entities=int(d.get("entities") or 0),
            collections=[
                f"{c.get('db_name') or 'default'}.{c.get('collection_name')}"
                for c in d.get("collection_backups") or []
            ],
            milvus_version=d.get("milvus_version") or "",
            progress=100 if status == COMPLETED else 0,
            error=None,
            collection_details=[],
            raw=dict(d),
        )

    @classmethod
    def from_brief(cls, d: Mapping) -> "BackupInfo":
        details = [CollectionInfo.from_brief(c) for c in d.get("collection_backups") or []]
        return cls(
            name=d.get("name", ""),
            id=d.get("id", ""),
            status=status_of(d),
            size=int(d.get("size") or 0),
            created_at=_seconds(d.get("backup_timestamp") or d.get("start_time")),
            entities=sum(c.entities for c in details),
            collections=[c.full_name for c in details],
            milvus_version=d.get("milvus_version") or "",
            progress=int(d.get("progress") or 0),
            error=d.get("errorMessage") or None,
            collection_details=details,
            raw=dict(d),
        )


def _seconds(ms: Any) -> float:
    return int(ms or 0) / 1000.0


@dataclasses.dataclass(eq=False)
class TaskStatus(_Record):
    """Where a task stands: ``{'progress', 'status', 'error', ...}``.

    Awaiting a ``TaskStatus`` gives the status itself: this is what lets
    ``await client.get_backup_status(id)`` work on the synchronous
    :class:`~milvus_backup.BackupClient` (see its docstring).
    """

    #: The task's id (for a create: the backup's id once it is written).
    id: str
    #: ``create``, ``restore`` or ``verify``.
    kind: str
    #: 0-100.
    progress: int
    #: ``running``, ``completed``, ``failed`` or ``cancelled``.
    status: str
    #: Why it failed, else None.
    error: Optional[str]
    backup_name: str
    #: What the task is doing now (empty when done).
    step: str
    raw: Dict[str, Any] = dataclasses.field(repr=False, default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status != RUNNING

    def __await__(self) -> Generator[Any, None, "TaskStatus"]:
        return self
        yield  # pragma: no cover - makes this a generator

    @classmethod
    def from_task(cls, kind: str, d: Mapping) -> "TaskStatus":
        return cls(
            id=(d.get("task_id") or d.get("id") or "") if kind == "create" else d.get("id", ""),
            kind=d.get("kind") or kind,
            progress=int(d.get("progress") or 0),
            status=status_of(d),
            error=d.get("errorMessage") or None,
            backup_name=d.get("backup_name") or d.get("name") or "",
            step=d.get("step") or "",
            raw=dict(d),
        )


@dataclasses.dataclass(eq=False)
class RestoredCollection(_Record):
    source: str
    target: str
    status: str
    error: Optional[str]


@dataclasses.dataclass(eq=False)
class RestoreResult(_Record):
    """A restore task: what was restored where."""

    id: str
    backup_name: str
    status: str
    progress: int
    error: Optional[str]
    collections: List[RestoredCollection]
    raw: Dict[str, Any] = dataclasses.field(repr=False, default_factory=dict)

    @classmethod
    def from_task(cls, d: Mapping) -> "RestoreResult":
        return cls(
            id=d.get("id", ""),
            backup_name=d.get("backup_name", ""),
            status=status_of(d),
            progress=int(d.get("progress") or 0),
            error=d.get("errorMessage") or None,
            collections=[
                RestoredCollection(
                    source=f"{c.get('source_db_name')}.{c.get('source_collection_name')}",
                    target=f"{c.get('target_db_name')}.{c.get('target_collection_name')}",
                    status=status_of(c),
                    error=c.get("errorMessage") or None,
                )
                for c in d.get("collection_restore_tasks") or []
            ],
            raw=dict(d),
        )


@dataclasses.dataclass(eq=False)
class VerifyProblem(_Record):
    #: The object key (or meta file) concerned.
    path: str
    problem: str


@dataclasses.dataclass(eq=False)
class VerifyReport(_Record):
    """The verdict of a verify: ``ok`` and, when not, the problems."""

    id: str
    backup_name: str
    ok: bool
    deep: bool
    #: Files checked, and their bytes.
    files: int
    bytes: int
    problems: List[VerifyProblem]
    #: With ``restore_test``: per collection, rows backed up, imported and compared.
    restore_test: Optional[Dict[str, Any]]
    raw: Dict[str, Any] = dataclasses.field(repr=False, default_factory=dict)

    @classmethod
    def from_task(cls, d: Mapping) -> "VerifyReport":
        problems = [
            VerifyProblem(path=p.get("path", ""), problem=p.get("problem", ""))
            for p in d.get("problems") or []
        ]
        return cls(
            id=d.get("id", ""),
            backup_name=d.get("backup_name", ""),
            ok=bool(d.get("ok")) and not problems,
            deep=bool(d.get("deep")),
            files=int(d.get("files") or 0),
            bytes=int(d.get("bytes") or 0),
            problems=problems,
            restore_test=d.get("restore_test"),
            raw=dict(d),
        )


@dataclasses.dataclass(eq=False)
class CheckStep(_Record):
    name: str
    #: ``OK``, ``WARN``, ``FAIL`` or ``SKIP``.
    status: str
    detail: str


@dataclasses.dataclass(eq=False)
class CheckReport(_Record):
    """The server's probe of its Milvus and both storages."""

    passed: bool
    milvus_version: Optional[str]
    #: ``host:port`` of the Milvus the server is configured for, read from
    #: the ``milvus`` step (the server reports it only there).
    milvus_address: Optional[str]
    steps: List[CheckStep]
    raw: Dict[str, Any] = dataclasses.field(repr=False, default_factory=dict)
