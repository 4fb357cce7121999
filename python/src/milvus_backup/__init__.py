"""Python client of ``milvus-backup server``: back up, list, restore,
verify and delete Milvus backups, blocking or with asyncio.

    from milvus_backup import BackupClient

    client = BackupClient(milvus_host="localhost", milvus_port=19530,
                          backup_host="localhost", backup_port=8080)
    backup_id = client.create_backup("nightly", collections=["docs"], compression=True)
    for b in client.list_backups():
        print(b["name"], b["size"], b["created_at"])
    client.restore_backup("nightly", target_collection="docs_restored")
    assert client.verify_backup("nightly", deep=True)

Modules: ``client`` (:class:`BackupClient`), ``aio``
(:class:`AsyncBackupClient`), ``models`` (what methods return),
``errors`` (what they raise); ``_protocol`` holds every operation once,
free of I/O, for both clients.
"""

from .aio import AsyncBackupClient
from .client import BackupClient
from .errors import (
    AlreadyExists,
    BackupDamaged,
    BackupError,
    Conflict,
    InvalidArgument,
    MilvusMismatch,
    NotFound,
    ServerUnavailable,
    TaskCancelled,
    TaskFailed,
    Unauthorized,
    UpstreamError,
    WaitTimeout,
)
from .models import (
    BackupInfo,
    CheckReport,
    CheckStep,
    CollectionInfo,
    RestoreResult,
    RestoredCollection,
    TaskStatus,
    VerifyProblem,
    VerifyReport,
)

#: The package's version: the Rust workspace's (Cargo.toml).
__version__ = "0.1.0"

__all__ = [
    "__version__",
    "BackupClient",
    "AsyncBackupClient",
    "BackupError",
    "InvalidArgument",
    "Unauthorized",
    "NotFound",
    "Conflict",
    "AlreadyExists",
    "BackupDamaged",
    "UpstreamError",
    "ServerUnavailable",
    "MilvusMismatch",
    "TaskFailed",
    "TaskCancelled",
    "WaitTimeout",
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
