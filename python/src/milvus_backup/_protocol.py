"""Every operation of the SDK, once, free of I/O.

An operation is a generator: it yields a :class:`Request` (and receives the
server's :class:`Answer`, or has the request's exception thrown into it) or
a :class:`Sleep`, and returns the operation's result. ``client.py`` drives
operations with ``httpx.Client`` and ``time.sleep``; ``aio.py`` with
``httpx.AsyncClient`` and ``asyncio.sleep``. So the sync and the async
client cannot drift apart: request bodies, polling, the Milvus identity
check and result parsing live only here.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import socket
import time
from typing import Any, Dict, Generator, Iterable, List, Mapping, Optional, Sequence, Union

from . import errors
from .errors import BackupDamaged, Conflict, MilvusMismatch, NotFound
from .models import (
    COMPLETED,
    CANCELLED,
    RUNNING,
    BackupInfo,
    CheckReport,
    CheckStep,
    RestoreResult,
    TaskStatus,
    VerifyReport,
)

API = "/api/v1"


@dataclasses.dataclass
class Request:
    method: str
    path: str
    params: Optional[Dict[str, str]] = None
    json: Optional[Dict[str, Any]] = None
    #: A 409 answer means "the backup name is taken" (create).
    conflict_means_name_taken: bool = False


@dataclasses.dataclass
class Sleep:
    seconds: float


@dataclasses.dataclass
class Answer:
    data: Any
    request_id: str
    msg: str
    code: int


Op = Generator[Union[Request, Sleep], Any, Any]


class _FromEnv:
    """A connection setting not given: read from the environment, else the
    default (see :data:`ENV_SETTINGS`)."""

    def __repr__(self) -> str:
        return "<from the environment>"


FROM_ENV: Any = _FromEnv()

# Connection settings a client takes from the environment when they are not
# passed: (variable, default).
ENV_SETTINGS = {
    "milvus_host": ("MILVUS_HOST", "localhost"),
    "milvus_port": ("MILVUS_PORT", 19530),
    "backup_host": ("MILVUS_BACKUP_HOST", "localhost"),
    "backup_port": ("MILVUS_BACKUP_PORT", 8080),
}


def _setting(name: str, value: Any) -> Any:
    if value is not FROM_ENV:
        return value
    var, default = ENV_SETTINGS[name]
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{var}={raw!r} is not a port number") from None
    return raw


class Session:
    """What a client knows: where the server is, which Milvus it expects,
    and what it learnt (Milvus confirmed, the kind of each task id)."""

    def __init__(
        self,
        milvus_host: Optional[str],
        milvus_port: Optional[int],
        backup_host: str,
        backup_port: int,
        token: Optional[str],
        timeout: Optional[float],
        scheme: str,
    ) -> None:
        if scheme not in ("http", "https"):
            raise ValueError(f"scheme must be 'http' or 'https', not {scheme!r}")
        milvus_host = _setting("milvus_host", milvus_host)
        milvus_port = _setting("milvus_port", milvus_port)
        backup_host = _setting("backup_host", backup_host)
        backup_port = _setting("backup_port", backup_port)
        self.milvus_host = milvus_host
        self.milvus_port = int(milvus_port) if milvus_port is not None else None
        host = f"[{backup_host}]" if ":" in backup_host and not backup_host.startswith("[") else backup_host
        self.base_url = f"{scheme}://{host}:{int(backup_port)}"
        self.token = token
        self.timeout = timeout
        self.milvus_confirmed = False
        self.task_kinds: Dict[str, str] = {}

    def headers(self) -> Dict[str, str]:
        h = {"Accept": "application/json", "User-Agent": f"milvus-backup-sdk/{_version()}"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        return h

    def url(self, req: Request) -> str:
        return f"{self.base_url}{API}{req.path}"


def _version() -> str:
    from . import __version__

    return __version__


# ----------------------------------------------------------------- answers


def answer_of(req: Request, url: str, status: int, body: bytes) -> Answer:
    """The server's answer to ``req``, or the exception its status means."""
    try:
        env = json.loads(body.decode("utf-8")) if body else None
    except (ValueError, UnicodeDecodeError):
        env = None
    if not isinstance(env, dict):
        text = body[:200].decode("utf-8", "replace").strip()
        cls = errors.error_class(status) if status >= 400 else errors.BackupError
        raise cls(
            f"{req.method} {url} answered HTTP {status} without a JSON envelope"
            f"{': ' + text if text else ''} — is this a milvus-backup server?",
            status=status,
            url=url,
        )
    rid = env.get("requestId") or ""
    msg = env.get("msg") or ""
    code = env.get("code")
    if status >= 400:
        cls = errors.error_class(status, name_taken_on_conflict=req.conflict_means_name_taken)
        raise cls(msg or f"HTTP {status}", request_id=rid, status=status, code=code, url=url, data=env.get("data"))
    return Answer(data=env.get("data"), request_id=rid, msg=msg, code=code if isinstance(code, int) else 0)


def unreachable(url: str, exc: BaseException, timeout: Optional[float]) -> errors.ServerUnavailable:
    """A transport failure (refused, reset, timed out) as ServerUnavailable."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        what = f"timed out after {timeout} s" if timeout is not None else "timed out"
    else:
        what = str(exc) or type(exc).__name__
    return errors.ServerUnavailable(
        f"cannot reach the backup server at {url}: {what} — check backup_host/backup_port "
        "and that `milvus-backup server` is running",
        url=url,
    )


# ------------------------------------------------------- Milvus identity

_ADDRESS = re.compile(r"\bat (\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):(\d+)\b")
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def check_report(data: Mapping) -> CheckReport:
    steps = [
        CheckStep(name=s.get("name", ""), status=s.get("status", ""), detail=s.get("detail", ""))
        for s in data.get("steps") or []
    ]
    address = None
    for s in steps:
        if s.name == "milvus":
            m = _ADDRESS.search(s.detail)
            if m:
                address = f"{m.group(1)}:{m.group(2)}"
    return CheckReport(
        passed=bool(data.get("passed")),
        milvus_version=data.get("milvus_version"),
        milvus_address=address,
        steps=steps,
        raw=dict(data),
    )


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _addresses(host: str) -> set:
    try:
        return {ai[4][0] for ai in socket.getaddrinfo(host, None)}
    except OSError:
        return set()


def same_host(a: str, b: str) -> bool:
    """Whether two host names denote the same machine, as far as this
    machine can tell: equal, both loopback, or resolving to a shared IP."""
    a, b = a.strip("[]").lower(), b.strip("[]").lower()
    if a == b or (_is_loopback(a) and _is_loopback(b)):
        return True
    return bool(_addresses(a) & _addresses(b))


def confirm_milvus(session: Session, report: CheckReport) -> None:
    """Raises MilvusMismatch unless the server's Milvus is the client's."""
    if session.milvus_host is None and session.milvus_port is None:
        return
    want = f"{session.milvus_host or '*'}:{session.milvus_port or '*'}"
    if report.milvus_address is None:
        detail = next((s.detail for s in report.steps if s.name == "milvus"), "no milvus step")
        raise MilvusMismatch(
            f"cannot tell which Milvus the backup server at {session.base_url} is configured for "
            f"(its check says: {detail}); this client expects Milvus at {want}"
        )
    host, _, port = report.milvus_address.rpartition(":")
    port_ok = session.milvus_port is None or int(port) == session.milvus_port
    host_ok = session.milvus_host is None or same_host(host, session.milvus_host)
    if not (port_ok and host_ok):
        raise MilvusMismatch(
            f"the backup server at {session.base_url} works on Milvus at {report.milvus_address}, "
            f"but this client was made for Milvus at {want} — point milvus_host/milvus_port at "
            "the server's Milvus (its milvus.address/milvus.port), or use the backup server "
            "configured for your Milvus"
        )


def ensure_milvus(session: Session) -> Op:
    """On first use: the server's Milvus must be the client's."""
    if session.milvus_confirmed:
        return
    answer = yield Request("GET", "/check")
    confirm_milvus(session, check_report(answer.data or {}))
    session.milvus_confirmed = True


# ------------------------------------------------------------ waiting

_STATUS_PATH = {
    "create": ("/get_backup", "backup_id"),
    "restore": ("/get_restore", "id"),
    "verify": ("/get_verify", "id"),
    "compare": ("/get_compare", "id"),
    "migrate": ("/get_migrate", "id"),
}


def status_request(kind: str, task_id: str) -> Request:
    path, param = _STATUS_PATH[kind]
    return Request("GET", path, params={param: task_id})


def find_task(session: Session, task_id: str) -> Op:
    """(kind, answer) of a task id: a create (or a backup's id), a restore
    or a verify."""
    if not task_id or not task_id.strip():
        raise errors.InvalidArgument("a task id is required")
    known = session.task_kinds.get(task_id)
    for kind in [known] if known else ["create", "restore", "verify"]:
        try:
            answer = yield status_request(kind, task_id)
        except NotFound:
            if known:
                raise
            continue
        session.task_kinds[task_id] = kind
        return kind, answer
    raise NotFound(
        f"the backup server at {session.base_url} knows no backup, create, restore or verify "
        f"task with id `{task_id}`"
    )


def wait_task(
    session: Session,
    kind: Optional[str],
    task_id: str,
    timeout: Optional[float] = None,
    poll: float = 1.0,
) -> Op:
    """Polls a task until it ends; returns the final answer's data.
    Raises TaskFailed/TaskCancelled when it did not succeed, WaitTimeout
    after ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    interval = min(0.2, poll)
    while True:
        if kind is None:
            kind, answer = yield from find_task(session, task_id)
        else:
            answer = yield status_request(kind, task_id)
        data = answer.data or {}
        st = TaskStatus.from_task(kind, data)
        if st.status == COMPLETED:
            return kind, data
        if st.status != RUNNING:
            cls = errors.TaskCancelled if st.status == CANCELLED else errors.TaskFailed
            raise cls(
                f"{kind} task `{task_id}`{_of(st.backup_name)} {st.status}: "
                f"{st.error or 'no reason given'}",
                task_id=task_id,
                state=data.get("state") or st.status,
                request_id=answer.request_id,
                url=session.base_url,
                data=data,
            )
        if deadline is not None and time.monotonic() >= deadline:
            raise errors.WaitTimeout(
                f"{kind} task `{task_id}`{_of(st.backup_name)} still running after {timeout} s "
                f"({st.progress}%, {st.step or 'no step'}); it goes on on the server",
                url=session.base_url,
                data=data,
            )
        wait = interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic()))
        yield Sleep(wait)
        interval = min(poll, interval * 1.5)


def _of(name: str) -> str:
    return f" of backup `{name}`" if name else ""


# ------------------------------------------------------------ operations

# Python keyword → server field, where they differ. Anything else passes
# through unchanged, so options the server learns later work at once.
_CREATE_FIELDS = {
    "compression_algorithm": "compress",
    "compression_level": "compress_level",
}
_RESTORE_FIELDS = {
    "meta_only": "metaOnly",
    "restore_index": "restoreIndex",
    "use_auto_index": "useAutoIndex",
    "drop_exist_index": "dropExistIndex",
    "drop_existing_index": "dropExistIndex",
    "skip_create_collection": "skipCreateCollection",
    "skip_unsupported": "skipUnsupported",
    "renames": "collection_renames",
    "restore_plan": "restorePlan",
    "task_id": "id",
}


def _names(value: Union[None, str, Iterable[str]], what: str) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    names = list(value)
    if not all(isinstance(n, str) for n in names):
        raise errors.InvalidArgument(f"{what} must be collection names (strings)")
    return names


def create_body(
    backup_name: str,
    collections: Union[None, str, Sequence[str]],
    compression: Union[bool, str, None],
    options: Mapping[str, Any],
) -> Dict[str, Any]:
    body: Dict[str, Any] = {"backup_name": backup_name}
    names = _names(collections, "collections")
    if names:
        body["collection_names"] = names
    opts = dict(options)
    databases = opts.pop("databases", None)
    if databases is not None:
        dbc: Dict[str, List[str]] = dict(opts.pop("db_collections", None) or {})
        for db in _names(databases, "databases"):
            dbc.setdefault(db, [])
        body["db_collections"] = dbc
    algorithm = opts.pop("compression_algorithm", None)
    if isinstance(compression, str):
        body["compress"] = compression
    elif compression:
        body["compress"] = algorithm or "zstd"
    elif algorithm is not None:
        body["compress"] = algorithm
    for key, value in opts.items():
        if value is not None:
            body[_CREATE_FIELDS.get(key, key)] = value
    body["async"] = True
    return body


def create_backup(
    session: Session,
    backup_name: str,
    collections: Union[None, str, Sequence[str]],
    compression: Union[bool, str, None],
    options: Mapping[str, Any],
    wait: bool,
    wait_timeout: Optional[float],
) -> Op:
    yield from ensure_milvus(session)
    answer = yield Request(
        "POST", "/create", json=create_body(backup_name, collections, compression, options),
        conflict_means_name_taken=True,
    )
    data = answer.data or {}
    if data.get("dry_run"):
        # The server planned the backup and wrote nothing: no task to wait for.
        return data.get("plan") or {}
    task_id = data.get("task_id") or data.get("id")
    session.task_kinds[task_id] = "create"
    if not wait:
        return task_id
    _, done = yield from wait_task(session, "create", task_id, wait_timeout)
    return done.get("id") or task_id


def list_backups(session: Session, collection: Optional[str]) -> Op:
    yield from ensure_milvus(session)
    params = {"collection_name": collection} if collection else None
    answer = yield Request("GET", "/list", params=params)
    return [BackupInfo.from_list_item(d) for d in answer.data or []]


def get_backup(session: Session, name: str) -> Op:
    yield from ensure_milvus(session)
    answer = yield Request("GET", "/get_backup", params={"backup_name": name})
    return BackupInfo.from_brief(answer.data or {})


def delete_backup(session: Session, name: str) -> Op:
    yield from ensure_milvus(session)
    answer = yield Request("DELETE", "/delete", params={"backup_name": name})
    return int((answer.data or {}).get("deleted_objects") or 0)


def restore_body(
    backup_name: str,
    collections: List[str],
    renames: Dict[str, str],
    suffix: Optional[str],
    drop_existing: Optional[bool],
    options: Mapping[str, Any],
) -> Dict[str, Any]:
    body: Dict[str, Any] = {"backup_name": backup_name}
    if collections:
        body["collection_names"] = collections
    if suffix:
        body["collection_suffix"] = suffix
    if drop_existing is None:
        # the guide's meaning: a restore under the collections' own names
        # replaces them
        drop_existing = not (
            suffix or renames or options.get("renames") or options.get("restore_plan")
        )
    if drop_existing:
        body["dropExistCollection"] = True
    for key, value in options.items():
        if value is not None:
            body[_RESTORE_FIELDS.get(key, key)] = value
    if renames:
        body["collection_renames"] = {**(body.get("collection_renames") or {}), **renames}
    body["async"] = True
    return body


def restore_backup(
    session: Session,
    backup_name: str,
    collections: Union[None, str, Sequence[str]],
    target_collection: Optional[str],
    suffix: Optional[str],
    drop_existing: Optional[bool],
    options: Mapping[str, Any],
    wait: bool,
    wait_timeout: Optional[float],
) -> Op:
    yield from ensure_milvus(session)
    names = _names(collections, "collections")
    renames: Dict[str, str] = {}
    if target_collection:
        source = names
        if not source:
            info = yield from get_backup(session, backup_name)
            source = info.collections
        if len(source) != 1:
            raise errors.InvalidArgument(
                f"target_collection names one collection, but backup `{backup_name}` has "
                f"{len(source)} to restore ({', '.join(source) or 'none'}) — pick one with "
                "collections=[...], or use suffix= or renames={old: new}"
            )
        renames[source[0]] = target_collection
    answer = yield Request(
        "POST", "/restore", json=restore_body(backup_name, names, renames, suffix, drop_existing, options)
    )
    data = answer.data or {}
    if data.get("dry_run"):
        # The server planned the restore and changed nothing.
        return data.get("plan") or {}
    task_id = data.get("id")
    session.task_kinds[task_id] = "restore"
    if not wait:
        return RestoreResult.from_task(data)
    _, done = yield from wait_task(session, "restore", task_id, wait_timeout)
    return RestoreResult.from_task(done)


def verify_report(
    session: Session, backup_name: str, deep: bool, restore_test: bool, wait_timeout: Optional[float]
) -> Op:
    yield from ensure_milvus(session)
    answer = yield Request(
        "POST", "/verify",
        json={"backup_name": backup_name, "deep": deep, "restore_test": restore_test, "async": True},
    )
    task_id = (answer.data or {}).get("id")
    session.task_kinds[task_id] = "verify"
    _, done = yield from wait_task(session, "verify", task_id, wait_timeout)
    return VerifyReport.from_task(done)


def verify_backup(
    session: Session, backup_name: str, deep: bool, restore_test: bool, wait_timeout: Optional[float]
) -> Op:
    try:
        report = yield from verify_report(session, backup_name, deep, restore_test, wait_timeout)
    except (BackupDamaged, Conflict):
        # 422: damaged meta; 409: incomplete (no completion marks). Neither
        # can be restored, which is what this question asks.
        return False
    return report.ok


def task_status(session: Session, kind: str, task_id: str) -> Op:
    yield from ensure_milvus(session)
    answer = yield status_request(kind, task_id)
    return TaskStatus.from_task(kind, answer.data or {})


def wait(session: Session, task_id: str, timeout: Optional[float], poll: float) -> Op:
    yield from ensure_milvus(session)
    kind, data = yield from wait_task(session, session.task_kinds.get(task_id), task_id, timeout, poll)
    return TaskStatus.from_task(kind, data)


def cancel(session: Session, task_id: str) -> Op:
    yield from ensure_milvus(session)
    answer = yield Request("POST", "/cancel", params={"id": task_id})
    data = answer.data or {}
    return TaskStatus.from_task(data.get("kind") or "create", data)


def resume(session: Session, task_id: str) -> Op:
    yield from ensure_milvus(session)
    answer = yield Request("POST", "/resume", params={"id": task_id})
    data = answer.data or {}
    kind = data.get("kind") or session.task_kinds.get(task_id) or "create"
    status = TaskStatus.from_task(kind, data)
    session.task_kinds[status.id] = kind
    return status


def compare_body(
    collection: str, target_collection: Optional[str], to_config: Optional[str],
    ignore_key: bool, show: int,
) -> Dict[str, Any]:
    body: Dict[str, Any] = {"collection_name": collection, "ignore_key": ignore_key, "show": show}
    if target_collection:
        body["target_collection"] = target_collection
    if to_config:
        body["to_config"] = to_config
    return body


def migrate_body(
    collection: str, to_config: Optional[str], target_collection: Optional[str],
    alias: Optional[str], reconcile_existing: bool,
) -> Dict[str, Any]:
    body: Dict[str, Any] = {"collection_name": collection, "reconcile_existing": reconcile_existing}
    for k, v in [("to_config", to_config), ("target_collection", target_collection), ("alias", alias)]:
        if v:
            body[k] = v
    return body


def live_task(
    session: Session, kind: str, body: Dict[str, Any], wait_timeout: Optional[float]
) -> Op:
    """Starts a compare or migrate task on the server's Milvus and waits:
    its ``result`` (the CLI's ``--json`` answer)."""
    yield from ensure_milvus(session)
    answer = yield Request("POST", f"/{kind}", json={**body, "async": True})
    task_id = (answer.data or {}).get("id")
    session.task_kinds[task_id] = kind
    _, done = yield from wait_task(session, kind, task_id, wait_timeout)
    return done.get("result") or {}


def check(session: Session) -> Op:
    answer = yield Request("GET", "/check")
    return check_report(answer.data or {})


def run_sync(op: Op, send: Any, sleep: Any) -> Any:
    """Drives an operation with a blocking ``send(Request) -> Answer``."""
    try:
        step = next(op)
        while True:
            if isinstance(step, Sleep):
                sleep(step.seconds)
                step = op.send(None)
                continue
            try:
                answer = send(step)
            except errors.BackupError as e:
                step = op.throw(e)
                continue
            step = op.send(answer)
    except StopIteration as stop:
        return stop.value


async def run_async(op: Op, send: Any, sleep: Any) -> Any:
    """Drives an operation with a coroutine ``send(Request) -> Answer``."""
    try:
        step = next(op)
        while True:
            if isinstance(step, Sleep):
                await sleep(step.seconds)
                step = op.send(None)
                continue
            try:
                answer = await send(step)
            except errors.BackupError as e:
                step = op.throw(e)
                continue
            step = op.send(answer)
    except StopIteration as stop:
        return stop.value

