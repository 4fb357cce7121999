"""Every exception class, each raised by a real server's answer (or by a
real refused/hanging connection), and the Milvus identity check."""

from __future__ import annotations

import socket

import pytest

import support
from support import unique

from milvus_backup import (
    AlreadyExists,
    BackupClient,
    BackupDamaged,
    Conflict,
    InvalidArgument,
    MilvusMismatch,
    NotFound,
    ServerUnavailable,
    Unauthorized,
    UpstreamError,
)


def test_not_found_carries_the_servers_message_and_request_id(client):
    name = unique("absent")
    with pytest.raises(NotFound) as e:
        client.get_backup(name)
    assert e.value.status == 404 and e.value.code == 404
    assert name in e.value.message
    assert len(e.value.request_id) >= 32
    assert e.value.request_id in str(e.value)
    with pytest.raises(NotFound):
        client.delete_backup(name)
    with pytest.raises(NotFound):
        client.get_restore_status("no-such-task")
    with pytest.raises(NotFound):
        client.wait("no-such-task")
    with pytest.raises(NotFound):
        client.create_backup(unique("nocoll"), [unique("absent_coll")])


def test_a_taken_name_is_already_exists_and_a_bad_name_invalid_argument(client, data):
    name = unique("dup")
    client.create_backup(name, [data.small])
    with pytest.raises(AlreadyExists) as e:
        client.create_backup(name, [data.small])
    assert e.value.status == 409 and name in e.value.message
    assert isinstance(e.value, Conflict)

    with pytest.raises(InvalidArgument) as e:
        client.create_backup("no spaces allowed!", [data.small])
    assert e.value.status == 400
    with pytest.raises(InvalidArgument):
        client.get_restore_status("")
    client.delete_backup(name)


def test_conflicts(client, milvus, data):
    name = unique("conflict")
    client.create_backup(name, [data.small])
    # The collection exists: a restore under its own name that must not
    # replace it is refused (by default it would replace it, atomically).
    with pytest.raises(Conflict) as e:
        client.restore_backup(name, drop_existing=False)
    assert e.value.status == 409 and data.small in e.value.message
    # The way out is named as the SDK's own argument.
    assert "drop_existing=True" in e.value.message and "--drop" not in e.value.message
    assert not isinstance(e.value, AlreadyExists)
    # A finished task cannot be cancelled.
    verify = client.verify_report(name)
    with pytest.raises(Conflict):
        client.cancel(verify.id)
    client.delete_backup(name)


def test_a_wrong_or_missing_token_is_unauthorized(env):
    for token in ("wrong-token", None):
        with env.client(token=token) as c:
            with pytest.raises(Unauthorized) as e:
                c.list_backups()
            assert e.value.status == 401 and e.value.request_id


def test_a_tampered_encrypted_meta_file_is_backup_damaged(env, client, milvus, data, dropped):
    name = unique("sealed")
    client.create_backup(name, [data.small], encrypt=True)
    assert client.get_backup(name).entities == data.small_rows
    key = f"{env.root}/{name}/meta/full_meta.json"
    env.bucket.flip_byte(key, offset=-20)

    with pytest.raises(BackupDamaged) as e:
        client.get_backup(name)
    assert e.value.status == 422 and "full_meta.json" in e.value.message
    target = unique("sealed_target")
    dropped.append(target)
    with pytest.raises(BackupDamaged):
        client.restore_backup(name, target_collection=target)
    assert client.verify_backup(name) is False
    assert not milvus.exists(target)
    client.delete_backup(name)


def test_connection_refused_and_timeouts_are_server_unavailable_naming_the_url(env):
    port = support.free_port()  # nothing listens there
    with BackupClient(env.milvus_host, env.milvus_port, "127.0.0.1", port) as c:
        with pytest.raises(ServerUnavailable) as e:
            c.list_backups()
    assert f"http://127.0.0.1:{port}/api/v1/" in e.value.message
    assert e.value.url.startswith(f"http://127.0.0.1:{port}/")

    # A server that accepts connections and never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        with BackupClient(env.milvus_host, env.milvus_port, "127.0.0.1", port, timeout=0.5) as c:
            with pytest.raises(ServerUnavailable) as e:
                c.check()
    assert "timed out after 0.5 s" in e.value.message
    assert f"http://127.0.0.1:{port}/api/v1/check" in e.value.message


@pytest.fixture(scope="module")
def broken_servers(env):
    """Two more servers on fresh roots: one whose Milvus does not listen,
    one whose backup storage refuses every request (S3AUTH)."""
    dead_milvus_port = support.free_port()
    root = unique("root_broken")
    v = env.vars
    no_milvus = support.Server(support.config_yaml(v, root, milvus_port=dead_milvus_port))
    refused = support.Server(support.config_yaml(v, root, backup_endpoint=v["MBT_S3AUTH_ENDPOINT"]))
    yield no_milvus, dead_milvus_port, refused
    no_milvus.stop()
    refused.stop()
    env.bucket.delete_prefix(f"{root}/")


def test_an_unreachable_milvus_behind_the_server_is_server_unavailable(env, broken_servers):
    no_milvus, dead_port, _ = broken_servers
    with BackupClient("127.0.0.1", dead_port, "127.0.0.1", no_milvus.port) as c:
        report = c.check()
        assert not report.passed and report.milvus_address == f"127.0.0.1:{dead_port}"
        with pytest.raises(ServerUnavailable) as e:
            c.create_backup(unique("nomilvus"))
    assert e.value.status == 503 and f"127.0.0.1:{dead_port}" in e.value.message


def test_a_storage_refusing_the_server_is_upstream_error(env, broken_servers):
    _, _, refused = broken_servers
    with BackupClient(env.milvus_host, env.milvus_port, "127.0.0.1", refused.port) as c:
        with pytest.raises(UpstreamError) as e:
            c.list_backups()
    assert e.value.status == 502 and e.value.request_id


def test_a_client_for_another_milvus_is_refused_naming_both(env):
    server_milvus = f"{env.milvus_host}:{env.milvus_port}"
    other_port = int(env.vars["MBT_B_PORT"])
    for host, port, want in [
        (env.milvus_host, other_port, f"{env.milvus_host}:{other_port}"),
        ("192.0.2.7", env.milvus_port, f"192.0.2.7:{env.milvus_port}"),
    ]:
        with BackupClient(host, port, "127.0.0.1", env.server.port, token=env.server.token) as wrong:
            with pytest.raises(MilvusMismatch) as e:
                wrong.list_backups()
            assert server_milvus in e.value.message and want in e.value.message
            with pytest.raises(MilvusMismatch):
                wrong.create_backup(unique("wrong"))
    # localhost is 127.0.0.1; the check then passes.
    with BackupClient("localhost", env.milvus_port, "127.0.0.1", env.server.port, token=env.server.token) as c:
        assert isinstance(c.list_backups(), list)

