"""What the client sends and how it reads states, without a server: the
Python keywords become the server's field names, unknown options pass
through, and the server's task states map onto the guide's four."""

from __future__ import annotations

import pytest

from milvus_backup import _protocol as p
from milvus_backup.models import status_of


@pytest.mark.parametrize(
    "compression, options, want",
    [
        (False, {}, {}),
        (True, {}, {"compress": "zstd"}),
        (True, {"compression_algorithm": "gzip", "compression_level": 6}, {"compress": "gzip", "compress_level": 6}),
        ("none", {}, {"compress": "none"}),
        (False, {"databases": ["db1"], "force": True, "meta_only": False}, {"db_collections": {"db1": []}, "force": True, "meta_only": False}),
        (False, {"encrypt": True, "base_backup": "b0", "incremental": False}, {"encrypt": True, "base_backup": "b0", "incremental": False}),
        # Not read by this server yet: sent as it is, for the server that does.
        (False, {"format": "v2", "some_new_option": 1}, {"format": "v2", "some_new_option": 1}),
        (False, {"filter": None}, {}),
        (False, {"allow_unpersisted_deletes": True}, {"allow_unpersisted_deletes": True}),
    ],
)
def test_create_body(compression, options, want):
    body = p.create_body("nightly", ["docs", "db1.images"], compression, options)
    assert body == {"backup_name": "nightly", "collection_names": ["docs", "db1.images"], "async": True, **want}


def test_restore_body():
    body = p.restore_body(
        "nightly", ["docs"], {"docs": "docs_v2"}, "_r", True,
        {"restore_index": True, "meta_only": False, "renames": {"db1.*": "db2.*"}, "future_field": "x"},
    )
    assert body == {
        "backup_name": "nightly",
        "collection_names": ["docs"],
        "collection_suffix": "_r",
        "dropExistCollection": True,
        "restoreIndex": True,
        "metaOnly": False,
        "collection_renames": {"db1.*": "db2.*", "docs": "docs_v2"},
        "future_field": "x",
        "async": True,
    }


@pytest.mark.parametrize(
    "state, code, want",
    [
        ("initial", 0, "running"),
        ("executing", 1, "running"),
        ("success", 2, "completed"),
        ("failed", 3, "failed"),
        ("interrupted", 3, "failed"),
        ("cancelled", 3, "cancelled"),
        (None, 1, "running"),  # the Go tool's answers have state_code only
        (None, 2, "completed"),
        (None, 3, "failed"),
    ],
)
def test_task_states(state, code, want):
    assert status_of({"state": state, "state_code": code}) == want


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("localhost", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.2", True),
        ("::1", "localhost", True),
        ("[::1]", "127.0.0.1", True),
        ("192.0.2.7", "127.0.0.1", False),
        ("192.0.2.7", "192.0.2.8", False),
    ],
)
def test_same_host(a, b, same):
    assert p.same_host(a, b) is same
