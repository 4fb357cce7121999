"""Test collections in a real Milvus, through pymilvus 2.3.7.

Rows are a pure function of their primary key (``row(pk)``), so a test
knows what any restored row must hold without reading the source again.
Vector components and scores are multiples of 1/8, exact in float32.
"""

from __future__ import annotations

import uuid
from typing import Dict, Iterable, List

from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections, utility

DIM = 16
FIELDS = ["pk", "title", "score", "vec"]


def row(pk: int) -> Dict[str, object]:
    return {
        "pk": pk,
        "title": f"doc-{pk:06d}",
        "score": ((pk * 7) % 101) / 8.0,
        "vec": [((pk * 31 + j * 17) % 97) / 8.0 for j in range(DIM)],
    }


class Milvus:
    def __init__(self, host: str, port: int):
        self.alias = f"sdk_{uuid.uuid4().hex[:8]}"
        connections.connect(alias=self.alias, host=host, port=str(port), timeout=60)

    def close(self) -> None:
        connections.disconnect(self.alias)

    def create(self, name: str) -> Collection:
        schema = CollectionSchema(
            [
                FieldSchema("pk", DataType.INT64, is_primary=True, auto_id=False),
                FieldSchema("title", DataType.VARCHAR, max_length=64),
                FieldSchema("score", DataType.DOUBLE),
                FieldSchema("vec", DataType.FLOAT_VECTOR, dim=DIM),
            ],
            description="milvus-backup-sdk test data",
        )
        c = Collection(name, schema, using=self.alias, shards_num=1, consistency_level="Strong")
        c.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}})
        return c

    def insert(self, name: str, pks: Iterable[int], segments: int = 1) -> None:
        """Inserts rows ``pks`` as ``segments`` flushed segments."""
        c = Collection(name, using=self.alias)
        pks = list(pks)
        per = max(1, -(-len(pks) // segments))
        for i in range(0, len(pks), per):
            batch = [row(pk) for pk in pks[i : i + per]]
            c.insert([[r[f] for r in batch] for f in FIELDS])
            c.flush()

    def count(self, name: str) -> int:
        c = self._loaded(name)
        return int(c.query(expr="", output_fields=["count(*)"])[0]["count(*)"])

    def rows(self, name: str, pks: List[int]) -> Dict[int, Dict[str, object]]:
        c = self._loaded(name)
        got = c.query(expr=f"pk in {list(pks)}", output_fields=FIELDS)
        out = {}
        for r in got:
            out[int(r["pk"])] = {
                "pk": int(r["pk"]),
                "title": r["title"],
                "score": float(r["score"]),
                "vec": [float(x) for x in r["vec"]],
            }
        return out

    def _loaded(self, name: str) -> Collection:
        c = Collection(name, using=self.alias)
        if not c.indexes:
            c.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}})
        c.load(timeout=120)
        return c

    def exists(self, name: str) -> bool:
        return utility.has_collection(name, using=self.alias)

    def drop(self, name: str) -> None:
        if utility.has_collection(name, using=self.alias):
            utility.drop_collection(name, using=self.alias)
