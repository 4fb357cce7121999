"""Many small collections across several databases, for the many-collections
tests and bench (a multi-tenant layout: one collection per customer).
Commands of gen_data.py (`$MBT_PY_23 scripts/gen_data.py many ...`):

  many --host H --port P [--prefix many_] [--collections 300] [--databases 10]
       [--rows 1000] [--vary] [--dim 8] [--seed 42] [--flush] [--workers 4]
      (Re)creates databases <prefix>db00..<prefix>db{M-1} and collections
      <prefix>c0000.. spread over them round-robin, each with an int64 pk
      `id` (keys 0..rows-1; --vary: collection i has rows + i), an int64 `tag` and a float vector `vec`, rows
      inserted in one batch (column-based), no index, not loaded. The data is
      left in growing segments for the backup's flush to persist; --flush asks
      for a flush of every database's collections in one Flush call each
      (without waiting). Prints {"collections": [{db, name, rows}], "seconds"}.
  many-drop --host H --port P [--prefix many_] [--workers 4]
      Drops the prefixed collections of every database, several at once, then
      the prefixed databases. Prints {"dropped": n}.
"""
import json
import time
from concurrent.futures import ThreadPoolExecutor

from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, utility
from pymilvus.grpc_gen import milvus_pb2

try:  # pymilvus >= 2.2.9
    from pymilvus import db as milvus_db
except ImportError:  # pragma: no cover
    milvus_db = None

TIMEOUT = 120


def add_commands(sub, common):
    m = sub.add_parser("many")
    common(m)
    m.add_argument("--prefix", default="many_")
    m.add_argument("--collections", type=int, default=300)
    m.add_argument("--databases", type=int, default=10)
    m.add_argument("--rows", type=int, default=1000)
    m.add_argument("--dim", type=int, default=8)
    m.add_argument("--seed", type=int, default=42)
    m.add_argument("--flush", action="store_true", help="one Flush call per database, not waited for")
    m.add_argument("--workers", type=int, default=4)
    m.add_argument("--vary", action="store_true", help="collection i gets rows + i rows")
    d = sub.add_parser("many-drop")
    common(d)
    d.add_argument("--prefix", default="many_")
    d.add_argument("--workers", type=int, default=4)


def layout(prefix, collections, databases):
    """(db, name) of every collection, in creation order."""
    dbs = [f"{prefix}db{j:02d}" for j in range(databases)]
    return [(dbs[i % databases], f"{prefix}c{i:04d}") for i in range(collections)]


def columns(seed, i, rows, dim):
    """Deterministic columns of collection i: keys, tags, vectors."""
    import random
    r = random.Random(seed * 1_000_003 + i)
    ids = list(range(rows))
    tags = [r.randrange(1000) for _ in range(rows)]
    vecs = [[r.random() for _ in range(dim)] for _ in range(rows)]
    return [ids, tags, vecs]


def make_one(server, db, name, i, args):
    alias = server.alias(db)
    if utility.has_collection(name, using=alias, timeout=TIMEOUT):
        utility.drop_collection(name, using=alias, timeout=TIMEOUT)
    schema = CollectionSchema([
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("tag", DataType.INT64),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=args.dim),
    ], description=f"tenant {i}")
    coll = Collection(name, schema, using=alias, shards_num=1, timeout=TIMEOUT)
    rows = args.rows + (i if args.vary else 0)
    data = columns(args.seed, i, rows, args.dim)
    step = 50_000
    for start in range(0, rows, step):
        coll.insert([c[start:start + step] for c in data], timeout=TIMEOUT)
    return {"db": db, "name": name, "rows": rows}


def cmd_many(server_cls, args):
    started = time.time()
    server = server_cls(args.host, args.port)
    if not server.features["databases"]:
        raise SystemExit("many: the server has no databases (Milvus >= 2.3 has)")
    plan = layout(args.prefix, args.collections, args.databases)
    have = set(server.databases())
    for db in sorted({db for db, _ in plan} - have):
        milvus_db.create_database(db, using=server.alias("default"), timeout=TIMEOUT)
    for db in sorted({db for db, _ in plan}):
        server.alias(db)  # connect once, before the threads share them
    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        made = list(pool.map(lambda p: make_one(server, p[1][0], p[1][1], p[0], args), enumerate(plan)))
    if args.flush:
        for db in sorted({db for db, _ in plan}):
            names = [n for d, n in plan if d == db]
            req = milvus_pb2.FlushRequest(db_name=db, collection_names=names)
            server.stub(db).Flush(req, timeout=TIMEOUT)
    print(json.dumps({"collections": made, "seconds": round(time.time() - started, 2)}))


def cmd_many_drop(server_cls, args):
    server = server_cls(args.host, args.port)
    victims = []
    for db in server.databases():
        alias = server.alias(db)
        victims += [(alias, n) for n in utility.list_collections(using=alias, timeout=TIMEOUT)
                    if n.startswith(args.prefix)]
    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        list(pool.map(lambda v: utility.drop_collection(v[1], using=v[0], timeout=TIMEOUT), victims))
    for db in server.databases():
        if db != "default" and db.startswith(args.prefix):
            drop_database(server, db)
    print(json.dumps({"dropped": len(victims)}))


def drop_database(server, db):
    """Drops an emptied database; Milvus may refuse it for a moment after
    its last collection was dropped."""
    for attempt in range(10):
        try:
            milvus_db.drop_database(db, using=server.alias("default"), timeout=TIMEOUT)
            return
        except Exception:  # noqa: BLE001 - retried, then raised
            if attempt == 9:
                raise
            time.sleep(1)


def commands(server_cls):
    return {"many": lambda a: cmd_many(server_cls, a),
            "many-drop": lambda a: cmd_many_drop(server_cls, a)}
