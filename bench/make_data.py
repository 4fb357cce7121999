"""Creates the benchmark collection: int64 primary keys and 256-dim float
vectors, enough rows for the requested size of binlogs, flushed.

    make_data.py --host H --port P --gib 1.0 [--name bench_vectors] [--reuse]
    make_data.py --host H --port P --rows 500000 --load [--name NAME]

--rows gives the row count instead of the size; --load also indexes
(FLAT) and loads the collection, as a logical export reads it.

--reuse keeps a collection of that name that already has the rows (a
kept bench run measured again without inserting gigabytes anew).

Prints {"name", "rows", "seconds"} as JSON.
"""
import argparse
import json
import sys
import time

import numpy as np
from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections, utility

DIM = 256
BATCH = 20_000


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--gib", type=float, default=1.0)
    p.add_argument("--name", default="bench_vectors")
    p.add_argument("--reuse", action="store_true")
    p.add_argument("--rows", type=int)
    p.add_argument("--load", action="store_true")
    a = p.parse_args()
    connections.connect(host=a.host, port=a.port, timeout=60)
    rows = a.rows or int(a.gib * (1 << 30) / (DIM * 4 + 8 + 16))
    if utility.has_collection(a.name):
        if a.reuse and Collection(a.name).num_entities == rows:
            print(json.dumps({"name": a.name, "rows": rows, "seconds": 0, "reused": True}))
            return
        utility.drop_collection(a.name)
    schema = CollectionSchema([
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=DIM),
    ])
    coll = Collection(a.name, schema, shards_num=1)
    rng = np.random.default_rng(7)
    t0 = time.monotonic()
    for start in range(0, rows, BATCH):
        n = min(BATCH, rows - start)
        coll.insert([list(range(start, start + n)), rng.random((n, DIM), dtype=np.float32)], timeout=120)
        print(f"[make_data] {start + n}/{rows} rows", file=sys.stderr, flush=True)
    coll.flush(timeout=600)
    if a.load:
        coll.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}})
        coll.load(timeout=600)
    print(json.dumps({"name": a.name, "rows": rows, "seconds": round(time.monotonic() - t0, 1)}))


if __name__ == "__main__":
    main()
