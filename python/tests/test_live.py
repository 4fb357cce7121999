"""compare and migrate through the SDK against the server's Milvus: a
migrate round into a new collection, then compare says identical; a row
deleted from the copy makes compare name its key."""

from __future__ import annotations

from support import unique


def test_migrate_round_then_compare(env, client, milvus, data, dropped):
    target = unique("mig")
    dropped.append(target)
    r = client.migrate(data.small, target_collection=target)
    assert r["created"] is True and r["identical"] is True, r
    assert r["rows_copied"] == data.small_rows, r
    assert milvus.count(target) == data.small_rows

    c = client.compare(data.small, target_collection=target)
    assert c["identical"] is True and c["rows_target"] == data.small_rows, c

    milvus._loaded(target).delete("pk in [3]")
    c = client.compare(data.small, target_collection=target)
    assert c["identical"] is False, c
    assert c["only_in_source"] == {"count": 1, "keys": [3]}, c

    # A second round copies only that row back.
    r = client.migrate(data.small, target_collection=target)
    assert r["created"] is False and r["rows_copied"] == 1 and r["identical"] is True, r
