"""Exceptions: every failure the server reports, by its HTTP status.

The server maps each failure kind to one HTTP status in one place
(``crates/server/src/error.rs``); this module maps the status back to one
exception class, never the message text. Every exception carries the
server's message (``message``), its request id (``request_id``), the HTTP
status (``status``), the envelope's ``code`` and the URL asked.

Class tree::

    BackupError
    ├── InvalidArgument      400  bad input (name, parameter, unsupported option)
    ├── Unauthorized         401  token missing or wrong
    ├── NotFound             404  unknown backup, collection or task
    ├── Conflict             409  backup incomplete or in use, task finished
    │   └── AlreadyExists    409  on create: the backup name is taken
    ├── BackupDamaged        422  the backup is damaged
    ├── UpstreamError        502  Milvus or storage failed or refused credentials
    ├── ServerUnavailable    503, connection refused, timeouts
    ├── MilvusMismatch       the server backs up another Milvus than the client's
    ├── TaskFailed           a create/restore/verify task ended without success
    │   └── TaskCancelled
    └── WaitTimeout          a wait ran out of time (also a TimeoutError)
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = [
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
]


class BackupError(Exception):
    """Base class of every error of this package.

    Attributes:
        message: what went wrong, as the server (or the client) said it.
        request_id: the server's ``requestId`` of the failed request, if any.
        status: the HTTP status, if the server answered.
        code: the envelope's ``code`` (0 success, 400, 404, 1 not supported,
            2 no permission, 3 failure), if the server answered.
        url: the URL asked, if any.
        data: the envelope's ``data`` (e.g. the task a failure concerns).
    """

    def __init__(
        self,
        message: str,
        *,
        request_id: Optional[str] = None,
        status: Optional[int] = None,
        code: Optional[int] = None,
        url: Optional[str] = None,
        data: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        self.status = status
        self.code = code
        self.url = url
        self.data = data

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.request_id:
            parts.append(f"request id {self.request_id}")
        if len(parts) == 1:
            return self.message
        return f"{parts[0]} ({', '.join(parts[1:])})"


class InvalidArgument(BackupError):
    """400: the request is invalid (bad name, bad parameter, or an option
    this server does not support)."""


class Unauthorized(BackupError):
    """401: the server has ``http.authToken`` set and the client's token is
    missing or wrong."""


class NotFound(BackupError):
    """404: unknown backup, collection or task."""


class Conflict(BackupError):
    """409: the backup is incomplete or in use, the name is being created,
    the task already finished, or a restore target exists."""


class AlreadyExists(Conflict):
    """409 on create: a backup of that name exists or is being created.

    The server answers every conflict with the same status and code, so the
    client raises this class where the request makes a 409 mean "name
    taken" (create), and :class:`Conflict` elsewhere (a restore whose target
    collection exists raises ``Conflict``)."""


class BackupDamaged(BackupError):
    """422: the backup is damaged or was tampered with."""


class UpstreamError(BackupError):
    """502: Milvus or a storage failed, or refused the server's credentials."""


class ServerUnavailable(BackupError):
    """The backup server, or the Milvus/storage behind it, cannot be reached:
    HTTP 503, connection refused, or a timeout. The message names the URL."""


class MilvusMismatch(BackupError):
    """The backup server is configured for another Milvus than the client's
    ``milvus_host``/``milvus_port``; the message names both addresses."""


class TaskFailed(BackupError):
    """A create, restore or verify task ended without success.

    Attributes:
        task_id: the task's id.
        state: the server's task state (``failed``, ``cancelled``,
            ``interrupted``).

    The server's task views do not say which kind of failure ended a task
    (only its message), so a failed task is this class, not one of the
    status classes."""

    def __init__(self, message: str, *, task_id: str, state: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.task_id = task_id
        self.state = state


class TaskCancelled(TaskFailed):
    """The task was cancelled (see ``BackupClient.cancel``)."""


class WaitTimeout(BackupError, TimeoutError):
    """A wait for a task ran out of time; the task goes on on the server
    (cancel it with ``BackupClient.cancel``)."""


_BY_STATUS = {
    400: InvalidArgument,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    422: BackupDamaged,
    502: UpstreamError,
    503: ServerUnavailable,
}


def error_class(status: int, *, name_taken_on_conflict: bool = False) -> type:
    """The exception class for an HTTP error status."""
    if status == 409 and name_taken_on_conflict:
        return AlreadyExists
    return _BY_STATUS.get(status, BackupError)
