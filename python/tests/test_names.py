"""Through BackupClient against the real server: backup names with dots
(the guide's ``rag_version_v1.0``) work in create, list, get, verify,
restore and delete, a name that is no single folder is refused; and a
backup that verify found damaged lists as damaged."""

from __future__ import annotations

import pytest

from support import unique

from milvus_backup import NotFound


def test_a_dotted_backup_name_works_through_the_sdk(env, client, milvus, data, dropped):
    name = f"{unique('rag_version')}_v1.0"
    client.create_backup(backup_name=name, collections=[data.small])
    assert name in [b.name for b in client.list_backups()]
    assert client.get_backup(name).entities == data.small_rows
    assert client.verify_backup(name)
    target = unique("dotted_target")
    dropped.append(target)
    result = client.restore_backup(backup_name=name, target_collection=target)
    assert result.status == "completed"
    assert milvus.count(target) == data.small_rows
    assert client.delete_backup(backup_name=name) > 0
    with pytest.raises(NotFound):
        client.get_backup(name)


def test_a_name_that_is_no_single_folder_is_refused_with_the_rule(client, data):
    with pytest.raises(Exception) as refused:
        client.create_backup(backup_name="v1/../x", collections=[data.small])
    assert "letters, digits, `_`, `-` and `.`" in str(refused.value)


def test_a_backup_verify_found_damaged_lists_as_damaged(env, client, data):
    name = unique("verdict")
    client.create_backup(name, [data.small])
    assert client.verify_backup(name) is True
    assert {b.name: b.status for b in client.list_backups()}[name] == "completed"
    key = sorted(k for k in env.backup_keys(name) if "/binlogs/insert_log/" in k)[0]
    env.bucket.flip_byte(key, offset=len(env.bucket.get(key)) // 2)
    assert client.verify_backup(name, deep=True) is False
    # The verdict is kept: the list says so, without verifying again.
    assert {b.name: b.status for b in client.list_backups()}[name] == "damaged"
    client.delete_backup(name)
