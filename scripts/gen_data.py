#!/usr/bin/env python3
"""Deterministic Milvus test data: generate, dump, describe, drop.

Runs with a test-env venv python (pymilvus 2.3.7 for Milvus 2.3, 2.2.17 for
Milvus 2.2): `$MBT_PY_23 scripts/gen_data.py ...`.

  generate --host H --port P [--prefix gen_] [--rows 2000] [--seed 42]
      (Re)creates the prefixed collections below and prints one JSON object:
      {"server_version", "features", "collections": [{db, name, rows, pk,
      pk_type, auto_id, partitions, loaded, ...}]}; `rows` is the count
      expected after the deletes.
  dump --host H --port P --collection NAME [--db DB] [--format jsonl|json] [--keys N]
      Every row (all fields, vectors, JSON, arrays, dynamic keys under
      "$meta") sorted by primary key, one canonical JSON object per line;
      with --keys, the rows of the int64 keys 0..N-1 (one per key).
  describe --host H --port P --collection NAME [--db DB]
      Schema, consistency level, description, partitions, indexes as JSON,
      without ids or timestamps, so equal schemas compare equal.
  drop --host H --port P [--prefix gen_]
      Drops the prefixed collections (every database) and prefixed databases.
  late-deletes --host H --port P --collection NAME [--rows 6000] [--delete 5]
      (Re)creates a loaded collection (int64 pk `id`, `tag`, float vector),
      inserts and flushes --rows rows, then deletes --delete of them and
      returns at once, without a flush: Milvus 2.2 keeps such deletes of
      flushed segments in memory for dataNode.segment.syncPeriod (600 s).
      Prints {"rows": live rows, "deleted": [ids]}.
  dup-keys --host H --port P --collection NAME [--rows 3000] [--one-segment] [--delete 0]
      (Re)creates a loaded collection (int64 pk `id`, `tag`, float vector)
      and inserts the keys 0..rows twice: `tag` 1, flushed (unless
      --one-segment), then `tag` 2, left in a growing segment; then deletes
      the keys 0..delete-1. A query returns one row per key. Prints
      {"rows": keys left, "inserted": 2 * rows, "deleted": [ids]}.

  many, many-drop: N small collections across M databases (scripts/gen_many.py).
  edge --host H --port P [--prefix gen_]
      (Re)creates the edge-value collection set below (Milvus >= 2.3) and
      prints {"server_version", "collections": [...]} as `generate` does.

What `edge` makes (names get the prefix), every value one Milvus 2.3 takes:
  edge_values   int64 pk with -2^63, -2^63+1, 0 and negatives (and 2^63-2);
                int8..int64 at their limits; float, double, array<float>,
                array<double> with NaN, +-inf, -0.0, denormals and the limits;
                varchar and array<varchar(8)> elements filled to max_length
                with escapes, control characters and emoji; JSON and a
                dynamic key nested EDGE_DEPTH deep; FLAT index, loaded
  edge_varchar_keys  varchar pk with the empty string, NUL, unicode,
                escapes, control characters, a space and max-length keys;
                FLAT index, loaded
  edge_max_key  int64 pk with 2^63-1 (and -2^63, 0, negatives): Milvus 2.3.5
                counts that row but returns it to no query; FLAT, loaded

What `generate` makes (names get the prefix):
  all_types     int64 pk (not autoID), every scalar type of the server (bool,
                int8..int64, float, double, varchar, JSON >=2.2.8, arrays of
                int64/varchar >=2.3), float vector, dynamic field (>=2.2.9),
                partitions p1 p2 besides _default, 2 shards, IVF_FLAT index,
                loaded
  varchar_pk    varchar pk, HNSW index, loaded
  autoid        autoID int64 pk, IVF_FLAT index, no deletes, not loaded
  binary_vec    binary vector, BIN_IVF_FLAT index, not loaded (not on Milvus Lite)
  partition_key varchar partition key, num_partitions=4 (>=2.2.9), loaded
  in_db2        in database <prefix>db2 (servers with databases, >=2.3), loaded
Every collection gets two flushed insert batches (so several segments) and,
except autoid, flushed deletes (see write_segments for what 2.2 persists).
Values come from seeded RNGs per collection, so the same seed gives the same
rows on every server (array values come from their own stream, so the other
fields match between 2.2 and 2.3).
"""
import argparse
import fcntl
import json
import math
import os
import random
import re
import sys
import time
import zlib

os.environ.setdefault("no_proxy", "127.0.0.1,localhost")
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

from google.protobuf import json_format  # noqa: E402
from pymilvus import (  # noqa: E402
    Collection,
    CollectionSchema,
    DataType,
    FieldSchema,
    connections,
    utility,
)
from pymilvus.grpc_gen import milvus_pb2  # noqa: E402

try:  # pymilvus >= 2.2.9
    from pymilvus import db as milvus_db
except ImportError:  # pragma: no cover
    milvus_db = None

TIMEOUT = 120  # seconds, every RPC
FETCH_BATCH = 1000  # rows per `pk in [...]` query in dump
MIN_INT64_EXPR = -9223372036854775807  # the expression parser cannot take -2**63


def log(msg):
    print(f"[gen_data] {msg}", file=sys.stderr)


# ------------------------------------------------------------------ server


def parse_version(text):
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", text or "")
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


class Server:
    """One Milvus server; one pymilvus alias per database."""

    def __init__(self, host, port):
        self.host, self.port = host, str(port)
        self.aliases = {}
        default = self.alias("default")
        self.version_text = utility.get_server_version(using=default)
        self.version = parse_version(self.version_text)
        v = self.version
        self.features = {
            "json": v >= (2, 2, 8),
            "dynamic_field": v >= (2, 2, 9),
            "partition_key": v >= (2, 2, 9),
            "array": v >= (2, 3, 0),
            "databases": v >= (2, 3, 0) and self._has_databases(default),
            # see write_segments
            "flushed_segment_deletes": v >= (2, 3, 0),
            # Milvus Lite (`milvus_lite-3.2.2`) has no binary vectors
            "binary_vector": not self.version_text.startswith("milvus_lite"),
        }

    def alias(self, db):
        db = db or "default"
        if db not in self.aliases:
            name = f"gen_{self.port}_{db}"
            kwargs = {}
            if db != "default":
                kwargs["db_name"] = db
            connections.connect(alias=name, host=self.host, port=self.port, timeout=30, **kwargs)
            self.aliases[db] = name
        return self.aliases[db]

    def stub(self, db):
        return connections._fetch_handler(self.alias(db))._stub  # noqa: SLF001

    @staticmethod
    def _has_databases(alias):
        if milvus_db is None:
            return False
        try:
            milvus_db.list_database(using=alias, timeout=TIMEOUT)
            return True
        except Exception:  # noqa: BLE001 - Unimplemented on servers without databases
            return False

    def databases(self):
        if not self.features["databases"]:
            return ["default"]
        return sorted(milvus_db.list_database(using=self.alias("default"), timeout=TIMEOUT))


# ------------------------------------------------------------------ values


def rng_for(seed, name):
    return random.Random(seed * 1_000_003 + zlib.crc32(name.encode()))


def f32(x):
    """Round to float32 so what we insert is exactly what Milvus returns."""
    import struct

    return struct.unpack("f", struct.pack("f", x))[0]


def float_vec(r, dim):
    return [f32(r.uniform(-1.0, 1.0)) for _ in range(dim)]


def binary_vec(r, dim):
    return bytes(r.getrandbits(8) for _ in range(dim // 8))


WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "ünïcødé", "空"]


def word(r, n=3):
    return "-".join(r.choice(WORDS) for _ in range(r.randint(1, n)))


# ------------------------------------------------------------------ generate


def drop_prefixed(server, prefix):
    dropped = []
    for db in server.databases():
        alias = server.alias(db)
        for name in utility.list_collections(using=alias, timeout=TIMEOUT):
            if name.startswith(prefix):
                utility.drop_collection(name, using=alias, timeout=TIMEOUT)
                dropped.append(f"{db}.{name}")
        if db != "default" and db.startswith(prefix):
            milvus_db.drop_database(db, using=server.alias("default"), timeout=TIMEOUT)
            dropped.append(f"database {db}")
    return dropped


def create_collection(server, db, name, fields, *, description, consistency, shards=1,
                      dynamic=False, num_partitions=None):
    kwargs = {}
    if dynamic:
        kwargs["enable_dynamic_field"] = True
    schema = CollectionSchema(fields, description=description, **kwargs)
    ckw = {"shards_num": shards, "consistency_level": consistency, "timeout": TIMEOUT}
    if num_partitions:
        ckw["num_partitions"] = num_partitions
    return Collection(name, schema, using=server.alias(db), **ckw)


def insert_rows(coll, rows, partition=None):
    """Row-based insert: keys outside the schema go to $meta (dynamic field),
    and pymilvus takes the field types from the schema, not from Python."""
    for i in range(0, len(rows), 1000):
        coll.insert(rows[i:i + 1000], partition_name=partition, timeout=TIMEOUT)


def in_expr(field, values):
    return f"{field} in {json.dumps(list(values), ensure_ascii=False)}"


def write_segments(server, coll, pk, rows, victim, partitions=None):
    """Two flushed insert batches (so at least two segments per partition and
    shard), then deletes, then a flush. Returns the number of deleted rows.

    The deletes are sent while the second batch is still a growing segment:
    Milvus 2.2 only writes delta_log files for segments that the Flush seals,
    so on 2.2 only second-batch rows are deleted (deletes of already flushed
    segments would stay in the datanode's memory and never reach storage);
    from 2.3 on, rows of both batches are deleted."""
    parts = partitions or [None]

    def insert(batch):
        for k, p in enumerate(parts):
            insert_rows(coll, batch[k::len(parts)], partition=p)

    half = len(rows) // 2
    insert(rows[:half])
    coll.flush(timeout=TIMEOUT)
    insert(rows[half:])
    pool = rows if server.features["flushed_segment_deletes"] else rows[half:]
    victims = [row[pk] for row in pool if victim(row)]
    for i in range(0, len(victims), 500):
        coll.delete(in_expr(pk, victims[i:i + 500]), timeout=TIMEOUT)
    coll.flush(timeout=TIMEOUT)
    return len(victims)


def gen_all_types(server, prefix, n, seed):
    feats = server.features
    name = f"{prefix}all_types"
    r = rng_for(seed, name)
    ra = rng_for(seed, name + "/array")  # separate stream: other fields equal across versions
    dim = 16
    fields = [
        FieldSchema("id", DataType.INT64, is_primary=True, auto_id=False, description="primary key"),
        FieldSchema("f_bool", DataType.BOOL),
        FieldSchema("f_int8", DataType.INT8),
        FieldSchema("f_int16", DataType.INT16),
        FieldSchema("f_int32", DataType.INT32),
        FieldSchema("f_int64", DataType.INT64),
        FieldSchema("f_float", DataType.FLOAT),
        FieldSchema("f_double", DataType.DOUBLE),
        FieldSchema("f_varchar", DataType.VARCHAR, max_length=256, description="text"),
    ]
    if feats["json"]:
        fields.append(FieldSchema("f_json", DataType.JSON))
    if feats["array"]:
        fields.append(FieldSchema("f_array_int64", DataType.ARRAY, element_type=DataType.INT64,
                                  max_capacity=8))
        fields.append(FieldSchema("f_array_varchar", DataType.ARRAY, element_type=DataType.VARCHAR,
                                  max_capacity=4, max_length=32))
    fields.append(FieldSchema("vec", DataType.FLOAT_VECTOR, dim=dim))
    dynamic = feats["dynamic_field"]
    coll = create_collection(server, "default", name, fields, description="every scalar type",
                             consistency="Strong", shards=2, dynamic=dynamic)
    partitions = ["_default", "p1", "p2"]
    for p in partitions[1:]:
        coll.create_partition(p, description=f"partition {p}", timeout=TIMEOUT)

    def make_row(i):
        row = {
            "id": i * 3 - n,  # negative and positive keys
            "f_bool": r.random() < 0.5,
            "f_int8": r.randint(-128, 127),
            "f_int16": r.randint(-32768, 32767),
            "f_int32": r.randint(-(2**31), 2**31 - 1),
            "f_int64": r.randint(-(2**63), 2**63 - 1),
            "f_float": f32(r.uniform(-1e6, 1e6)),
            "f_double": r.uniform(-1e12, 1e12),
            "f_varchar": word(r, 5),
        }
        if feats["json"]:
            row["f_json"] = {"i": i, "tag": word(r, 1), "nested": {"x": r.randint(0, 9), "l": [1, "a", None]},
                             "flag": r.random() < 0.3}
        if feats["array"]:
            row["f_array_int64"] = [ra.randint(-(2**40), 2**40) for _ in range(ra.randint(0, 8))]
            row["f_array_varchar"] = [word(ra, 1) for _ in range(ra.randint(0, 4))]
        row["vec"] = float_vec(r, dim)
        if dynamic:
            if i % 2 == 0:
                row["dyn_str"] = word(r, 2)
            if i % 3 == 0:
                row["dyn_num"] = r.randint(0, 1000)
        return row

    rows = [make_row(i) for i in range(n)]
    # two batches, each flushed, spread over three partitions
    deleted = write_segments(server, coll, "id", rows, lambda row: row["id"] % 7 == 0, partitions)
    coll.create_index("vec", {"index_type": "IVF_FLAT", "metric_type": "L2", "params": {"nlist": 16}},
                      index_name="vec_ivf", timeout=TIMEOUT)
    coll.load(timeout=TIMEOUT)
    return info("default", name, n - deleted, "id", "int64", partitions, loaded=True,
                deleted=deleted, dynamic=dynamic, shards=2)


def gen_varchar_pk(server, prefix, n, seed):
    name = f"{prefix}varchar_pk"
    r = rng_for(seed, name)
    fields = [
        FieldSchema("pk", DataType.VARCHAR, is_primary=True, max_length=64),
        FieldSchema("n", DataType.INT32),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=8),
    ]
    coll = create_collection(server, "default", name, fields, description="varchar primary key",
                             consistency="Bounded")
    rows = [{"pk": f"key-{i:06d}-{word(r, 1)}", "n": i, "vec": float_vec(r, 8)} for i in range(n)]
    deleted = write_segments(server, coll, "pk", rows, lambda row: row["n"] % 10 == 3)
    coll.create_index("vec", {"index_type": "HNSW", "metric_type": "IP", "params": {"M": 8, "efConstruction": 32}},
                      index_name="vec_hnsw", timeout=TIMEOUT)
    coll.load(timeout=TIMEOUT)
    return info("default", name, n - deleted, "pk", "varchar", ["_default"], loaded=True, deleted=deleted)


def gen_autoid(server, prefix, n, seed):
    name = f"{prefix}autoid"
    r = rng_for(seed, name)
    fields = [
        FieldSchema("id", DataType.INT64, is_primary=True, auto_id=True),
        FieldSchema("label", DataType.VARCHAR, max_length=64),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=8),
    ]
    coll = create_collection(server, "default", name, fields, description="autoID primary key",
                             consistency="Session")
    rows = [{"label": f"row-{i:06d}", "vec": float_vec(r, 8)} for i in range(n)]
    write_segments(server, coll, "id", rows, lambda row: False)
    coll.create_index("vec", {"index_type": "IVF_FLAT", "metric_type": "COSINE" if server.version >= (2, 3, 0)
                              else "IP", "params": {"nlist": 8}}, index_name="vec_idx", timeout=TIMEOUT)
    return info("default", name, n, "id", "int64", ["_default"], loaded=False, auto_id=True)


def gen_binary(server, prefix, n, seed):
    name = f"{prefix}binary_vec"
    r = rng_for(seed, name)
    fields = [
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("bvec", DataType.BINARY_VECTOR, dim=64),
    ]
    coll = create_collection(server, "default", name, fields, description="binary vectors",
                             consistency="Eventually")
    rows = [{"id": i, "bvec": binary_vec(r, 64)} for i in range(n)]
    deleted = write_segments(server, coll, "id", rows, lambda row: row["id"] % 50 == 0)
    coll.create_index("bvec", {"index_type": "BIN_IVF_FLAT", "metric_type": "HAMMING", "params": {"nlist": 8}},
                      index_name="bvec_idx", timeout=TIMEOUT)
    return info("default", name, n - deleted, "id", "int64", ["_default"], loaded=False, deleted=deleted)


def gen_partition_key(server, prefix, n, seed):
    name = f"{prefix}partition_key"
    r = rng_for(seed, name)
    fields = [
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("tenant", DataType.VARCHAR, max_length=32, is_partition_key=True),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=8),
    ]
    coll = create_collection(server, "default", name, fields, description="partition key",
                             consistency="Strong", num_partitions=4)
    rows = [{"id": i, "tenant": f"tenant-{r.randint(0, 9)}", "vec": float_vec(r, 8)} for i in range(n)]
    deleted = write_segments(server, coll, "id", rows, lambda row: row["id"] % 40 == 1)
    coll.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}},
                      index_name="vec_flat", timeout=TIMEOUT)
    coll.load(timeout=TIMEOUT)
    parts = sorted(p.name for p in coll.partitions)
    return info("default", name, n - deleted, "id", "int64", parts, loaded=True, deleted=deleted,
                partition_key="tenant")


def gen_db2(server, prefix, n, seed):
    db = f"{prefix}db2"
    milvus_db.create_database(db, using=server.alias("default"), timeout=TIMEOUT)
    name = f"{prefix}in_db2"
    r = rng_for(seed, name)
    fields = [
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("score", DataType.DOUBLE),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=8),
    ]
    coll = create_collection(server, db, name, fields, description="in a second database",
                             consistency="Bounded")
    rows = [{"id": 1_000_000 + i, "score": r.random(), "vec": float_vec(r, 8)} for i in range(n)]
    deleted = write_segments(server, coll, "id", rows, lambda row: row["id"] % 100 == 0)
    coll.create_index("vec", {"index_type": "IVF_FLAT", "metric_type": "L2", "params": {"nlist": 8}},
                      index_name="vec_idx", timeout=TIMEOUT)
    coll.load(timeout=TIMEOUT)
    return info(db, name, n - deleted, "id", "int64", ["_default"], loaded=True, deleted=deleted)


# ------------------------------------------------------------------ edge values

# Deepest JSON pymilvus 2.3.7 sends (its encoder stops at 1024 levels;
# Milvus 2.3.5 took 1000 levels in a JSON field and in a dynamic key).
EDGE_DEPTH = 1000
F32_MAX = 3.4028234663852886e38
EDGE_FLOATS = [math.nan, math.inf, -math.inf, -0.0, 1.401298464324817e-45, F32_MAX, -F32_MAX,
               1.1754943508222875e-38, 0.1]
EDGE_DOUBLES = [math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308,
                -1.7976931348623157e308, 2.2250738585072014e-308, 0.1]
# each 8 bytes (max_length 8), but the last two
EDGE_ELEMENTS = ["\\\"'\U0001F600x", '""""""""', "\\" * 8, "".join(chr(c) for c in range(1, 9)),
                 "\U0001F600\U0001F600", "\u00e9\"\\\u00e9\"\\", "", "\\u0041"]
EDGE_STRINGS = ["", " ", "\"", "\\", "'", "\\\"'\U0001F600", "\t\n\r\x01\x7f", "\u00e9\u4e2d\U0010FFFF",
                "\\u0041 \\n", "</script>", "z" * 64, "\U0001F600" * 16]


def nested(depth, leaf):
    value = leaf
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


def gen_edge_values(server, prefix):
    name = f"{prefix}edge_values"
    fields = [
        FieldSchema("id", DataType.INT64, is_primary=True, auto_id=False),
        FieldSchema("f_int8", DataType.INT8), FieldSchema("f_int16", DataType.INT16),
        FieldSchema("f_int32", DataType.INT32), FieldSchema("f_int64", DataType.INT64),
        FieldSchema("f_float", DataType.FLOAT), FieldSchema("f_double", DataType.DOUBLE),
        FieldSchema("a_float", DataType.ARRAY, element_type=DataType.FLOAT, max_capacity=16),
        FieldSchema("a_double", DataType.ARRAY, element_type=DataType.DOUBLE, max_capacity=16),
        FieldSchema("a_varchar", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=8,
                    max_length=8),
        FieldSchema("f_varchar", DataType.VARCHAR, max_length=64),
        FieldSchema("f_json", DataType.JSON),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=4),
    ]
    coll = create_collection(server, "default", name, fields, description="edge values",
                             consistency="Strong", dynamic=True)
    i64 = 2**63
    keys = [-i64, -i64 + 1, -i64 + 2, -1, 0, 1, i64 - 2] + [k * 7919 - 500_000 for k in range(120)]
    ints = {"f_int8": [-128, 127, 0, -1], "f_int16": [-32768, 32767, 0, -1],
            "f_int32": [-(2**31), 2**31 - 1, 0, -1], "f_int64": [-i64, i64 - 1, 0, -1]}
    rows = []
    for i, k in enumerate(keys):
        row = {"id": k, "f_float": EDGE_FLOATS[i % len(EDGE_FLOATS)],
               "f_double": EDGE_DOUBLES[i % len(EDGE_DOUBLES)],
               "a_float": EDGE_FLOATS[i % 3:] + EDGE_FLOATS[:i % 3],
               "a_double": EDGE_DOUBLES[:1 + i % len(EDGE_DOUBLES)],
               "a_varchar": EDGE_ELEMENTS[i % 4:],
               "f_varchar": EDGE_STRINGS[i % len(EDGE_STRINGS)],
               "f_json": (nested(EDGE_DEPTH, i) if i % 5 == 0 else
                          {"b": i, "a": EDGE_STRINGS[i % len(EDGE_STRINGS)], "n": [1.5, -0.0, 2**53 + 1]}),
               "vec": [0.25 * (i % 8), -1.0, 0.5, float(i % 3)]}
        for f, vals in ints.items():
            row[f] = vals[i % len(vals)]
        if i % 3 == 0:
            row["deep"] = nested(EDGE_DEPTH - 2, "leaf")
        elif i % 3 == 1:
            row["esc"] = EDGE_STRINGS[i % len(EDGE_STRINGS)]
        rows.append(row)
    for i in range(0, len(rows), 40):
        insert_rows(coll, rows[i:i + 40])
    coll.flush(timeout=TIMEOUT)
    coll.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}}, timeout=TIMEOUT)
    coll.load(timeout=TIMEOUT)
    return info("default", name, len(rows), "id", "int64", ["_default"], loaded=True, dynamic=True)


def gen_edge_varchar_keys(server, prefix):
    name = f"{prefix}edge_varchar_keys"
    fields = [FieldSchema("pk", DataType.VARCHAR, is_primary=True, max_length=64),
              FieldSchema("n", DataType.INT64), FieldSchema("vec", DataType.FLOAT_VECTOR, dim=4)]
    coll = create_collection(server, "default", name, fields, description="edge varchar keys",
                             consistency="Strong")
    keys = EDGE_STRINGS + ["\U0001F600" * 15 + "abcd", "a" * 63 + "\\", "a\x00b"]
    keys += [f"key-{i:04d}-\u00e9\"" for i in range(100)]
    rows = [{"pk": k, "n": i, "vec": [float(i % 5), 0.5, -0.5, 1.0]} for i, k in enumerate(keys)]
    insert_rows(coll, rows)
    coll.flush(timeout=TIMEOUT)
    coll.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}}, timeout=TIMEOUT)
    coll.load(timeout=TIMEOUT)
    return info("default", name, len(rows), "pk", "varchar", ["_default"], loaded=True)


def gen_edge_max_key(server, prefix):
    name = f"{prefix}edge_max_key"
    fields = [FieldSchema("id", DataType.INT64, is_primary=True, auto_id=False),
              FieldSchema("n", DataType.INT64), FieldSchema("vec", DataType.FLOAT_VECTOR, dim=4)]
    coll = create_collection(server, "default", name, fields, description="the largest int64 key",
                             consistency="Strong")
    keys = [2**63 - 1, -(2**63), 0, -1, -7] + list(range(100, 150))
    insert_rows(coll, [{"id": k, "n": i, "vec": [1.0, 0.0, float(i % 3), 0.5]} for i, k in enumerate(keys)])
    coll.flush(timeout=TIMEOUT)
    coll.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}}, timeout=TIMEOUT)
    coll.load(timeout=TIMEOUT)
    return info("default", name, len(keys), "id", "int64", ["_default"], loaded=True)


def cmd_edge(args):
    server = Server(args.host, args.port)
    if not server.features["array"]:
        raise SystemExit("edge: the edge collection set needs Milvus 2.3 or later (arrays)")
    sys.setrecursionlimit(10 * EDGE_DEPTH + 1000)
    t0 = time.monotonic()
    for n in ("edge_values", "edge_varchar_keys", "edge_max_key"):
        if utility.has_collection(args.prefix + n, using=server.alias("default")):
            utility.drop_collection(args.prefix + n, using=server.alias("default"))
    out = [make(server, args.prefix) for make in (gen_edge_values, gen_edge_varchar_keys, gen_edge_max_key)]
    print(json.dumps({"server_version": server.version_text, "prefix": args.prefix,
                      "collections": out, "seconds": round(time.monotonic() - t0, 1)}, indent=2))


def info(db, name, rows, pk, pk_type, partitions, *, loaded, auto_id=False, deleted=0, **extra):
    d = {"db": db, "name": name, "rows": rows, "pk": pk, "pk_type": pk_type, "auto_id": auto_id,
         "partitions": partitions, "loaded": loaded, "deleted": deleted}
    d.update(extra)
    return d


def cmd_generate(args):
    server = Server(args.host, args.port)
    t0 = time.monotonic()
    dropped = drop_prefixed(server, args.prefix)
    if dropped:
        log(f"dropped earlier data: {', '.join(dropped)}")
    makers = [gen_all_types, gen_varchar_pk, gen_autoid]
    if server.features["binary_vector"]:
        makers.append(gen_binary)
    if server.features["partition_key"]:
        makers.append(gen_partition_key)
    if server.features["databases"]:
        makers.append(gen_db2)
    out = []
    for make in makers:
        t = time.monotonic()
        out.append(make(server, args.prefix, args.rows, args.seed))
        log(f"{out[-1]['db']}.{out[-1]['name']}: {out[-1]['rows']} rows in {time.monotonic() - t:.1f}s")
    result = {"server_version": server.version_text, "features": server.features,
              "prefix": args.prefix, "seed": args.seed, "rows_per_collection": args.rows,
              "collections": out, "seconds": round(time.monotonic() - t0, 1)}
    print(json.dumps(result, indent=2, sort_keys=True))


# ------------------------------------------------------------------ describe


def kv_list_to_dict(pairs):
    out = {}
    for p in pairs or []:
        key, value = p.get("key"), p.get("value", "")
        if key == "params":  # index params nest a JSON object
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[key] = value
    return dict(sorted(out.items()))


def describe_raw(server, db, name):
    req = milvus_pb2.DescribeCollectionRequest(collection_name=name)
    if db != "default" and hasattr(req, "db_name"):
        req.db_name = db
    resp = server.stub(db).DescribeCollection(req, timeout=TIMEOUT)
    if resp.status.error_code != 0 or getattr(resp.status, "code", 0) not in (0, None):
        raise SystemExit(f"describe {db}.{name}: {resp.status.reason}")
    return resp


def describe(server, db, name):
    alias = server.alias(db)
    resp = describe_raw(server, db, name)
    schema = json_format.MessageToDict(resp.schema, preserving_proto_field_name=True)
    fields = []
    for f in schema.get("fields", []):
        f.pop("fieldID", None)
        f["type_params"] = kv_list_to_dict(f.get("type_params"))
        f["index_params"] = kv_list_to_dict(f.get("index_params"))
        for k in ("type_params", "index_params"):
            if not f[k]:
                del f[k]
        if f.get("element_type") == "None":
            del f["element_type"]
        fields.append(dict(sorted(f.items())))
    coll = Collection(name, using=alias)
    partitions = sorted(p.name for p in coll.partitions)
    indexes = []
    for idx in coll.indexes:
        params = dict(idx.params)
        if isinstance(params.get("params"), str):
            try:
                params["params"] = json.loads(params["params"])
            except ValueError:
                pass
        indexes.append({"field_name": idx.field_name, "index_name": idx.index_name,
                        "params": dict(sorted(params.items()))})
    indexes.sort(key=lambda x: (x["field_name"], x["index_name"]))
    desc = json_format.MessageToDict(resp, preserving_proto_field_name=True)
    try:
        load_state = str(utility.load_state(name, using=alias, timeout=TIMEOUT)).split(".")[-1]
    except Exception:  # noqa: BLE001
        load_state = "unknown"
    out = {
        "db": db,
        "name": schema.get("name", name),
        "description": schema.get("description", ""),
        "auto_id": any(f.get("autoID") for f in fields),
        "enable_dynamic_field": bool(schema.get("enable_dynamic_field", False)),
        "consistency_level": desc.get("consistency_level", "Strong"),
        "shards_num": resp.shards_num,
        "num_partitions": getattr(resp, "num_partitions", 0),
        "properties": kv_list_to_dict(desc.get("properties")),
        "aliases": sorted(resp.aliases),
        "fields": fields,
        "partitions": partitions,
        "indexes": indexes,
        "load_state": load_state,
    }
    return out


def cmd_describe(args):
    server = Server(args.host, args.port)
    with collection_lock(server, args.db, args.collection):
        described = describe(server, args.db, args.collection)
    print(json.dumps(described, indent=2, sort_keys=True, ensure_ascii=False))


# ------------------------------------------------------------------ dump

DEFAULT_INDEX = {
    DataType.FLOAT_VECTOR: {"index_type": "FLAT", "metric_type": "L2", "params": {}},
    DataType.BINARY_VECTOR: {"index_type": "BIN_FLAT", "metric_type": "HAMMING", "params": {}},
}


def canonical(value):
    """JSON-safe, deterministic form of one field value."""
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return repr(value)
        return value
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        if len(value) == 1 and isinstance(value[0], (bytes, bytearray)):  # binary vector
            return value[0].hex()
        return [canonical(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return canonical(value.tolist())
    if hasattr(value, "item"):
        return value.item()
    return value


def ensure_loaded(coll, alias):
    """Index + load so the collection can be queried; returns an undo list."""
    undo = []
    state = str(utility.load_state(coll.name, using=alias, timeout=TIMEOUT))
    if state.endswith("Loaded"):
        return undo
    indexed = {idx.field_name for idx in coll.indexes}
    for f in coll.schema.fields:
        if f.dtype in DEFAULT_INDEX and f.name not in indexed:
            coll.create_index(f.name, DEFAULT_INDEX[f.dtype], index_name=f"gen_dump_{f.name}", timeout=TIMEOUT)
            undo.append(("drop_index", f"gen_dump_{f.name}"))
    coll.load(timeout=TIMEOUT)
    undo.insert(0, ("release", None))
    return undo


def undo_load(coll, undo):
    for action, arg in undo:
        if action == "release":
            coll.release(timeout=TIMEOUT)
        elif action == "drop_index":
            coll.drop_index(index_name=arg, timeout=TIMEOUT)


def all_pks(coll, pk_field, is_varchar):
    """Every primary key, sorted. A query without limit has no 16384-row cap
    (checked with 20,000 rows on 2.2.16 and 2.3.5); only the key column
    travels, the rows follow in batches of FETCH_BATCH."""
    if is_varchar:
        exprs = [f'{pk_field} >= ""']
    else:
        exprs = [f"{pk_field} >= {MIN_INT64_EXPR}", f"{pk_field} < {MIN_INT64_EXPR}"]
    pks = []
    for expr in exprs:
        res = coll.query(expr, output_fields=[pk_field], consistency_level="Strong", timeout=TIMEOUT)
        pks.extend(r[pk_field] for r in res)
    return sorted(pks)


class collection_lock:
    """Tests dump and describe the same source collection at once. A dump
    may add an index and load the collection, then undo both (undo_load):
    another dump must not query it once released, and a describe must not
    see the dump's index. So dumps and describes of one collection take
    turns (an exclusive lock file per server and collection)."""

    def __init__(self, server, db, name):
        self.path = os.path.join(
            os.environ.get("TMPDIR", "/tmp"),
            f"milvus-backup-dump-{server.host}-{server.port}-{db}.{name}.lock",
        )

    def __enter__(self):
        self.file = open(self.path, "w")
        fcntl.flock(self.file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.file.close()


def dump_rows(server, db, name, keys=None):
    with collection_lock(server, db, name):
        yield from _dump_rows(server, db, name, keys)


def _dump_rows(server, db, name, keys=None):
    alias = server.alias(db)
    coll = Collection(name, using=alias)
    fields = coll.schema.fields
    pk = next(f for f in fields if f.is_primary)
    is_varchar = pk.dtype == DataType.VARCHAR
    names = [f.name for f in fields]
    dynamic = bool(getattr(coll.schema, "enable_dynamic_field", False))
    undo = ensure_loaded(coll, alias)
    try:
        # A query for every key misses keys written twice into one segment
        # (2.3.5 returned 1,500 of 3,000 such keys): --keys N asks for 0..N-1.
        pks = list(range(keys)) if keys is not None else all_pks(coll, pk.name, is_varchar)
        if len(set(pks)) != len(pks):
            # Milvus keeps every copy of a key written twice; a query by key
            # returns one of them: the dump has that one.
            log(f"warning: {len(pks) - len(set(pks))} duplicate primary keys in {db}.{name}")
            pks = sorted(set(pks))
        output = names + (["$meta"] if dynamic else [])
        for i in range(0, len(pks), FETCH_BATCH):
            chunk = pks[i:i + FETCH_BATCH]
            res = coll.query(in_expr(pk.name, chunk), output_fields=output, consistency_level="Strong",
                             timeout=TIMEOUT)
            res.sort(key=lambda row: row[pk.name])
            if len(res) != len(chunk):
                raise SystemExit(f"dump {db}.{name}: asked for {len(chunk)} rows, got {len(res)}")
            for row in res:
                yield normalise_row(row, names, dynamic)
    finally:
        undo_load(coll, undo)


def normalise_row(row, names, dynamic):
    out = {}
    meta = {}
    for k, v in row.items():
        if k in names:
            out[k] = canonical(v)
        elif k == "$meta":
            meta.update(v if isinstance(v, dict) else json.loads(v))
        else:  # a dynamic key flattened into the row
            meta[k] = v
    if dynamic:
        out["$meta"] = canonical(meta)
    return out


def cmd_dump(args):
    server = Server(args.host, args.port)
    t0 = time.monotonic()
    n = 0
    if args.format == "json":
        rows = list(dump_rows(server, args.db, args.collection, args.keys))
        n = len(rows)
        print(json.dumps({"db": args.db, "collection": args.collection, "count": n, "rows": rows},
                         sort_keys=True, ensure_ascii=False))
    else:
        for row in dump_rows(server, args.db, args.collection, args.keys):
            sys.stdout.write(json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n")
            n += 1
    log(f"dumped {n} rows of {args.db}.{args.collection} in {time.monotonic() - t0:.1f}s")


def small_collection(server, name, seed):
    """A loaded-to-be collection `name`: int64 pk `id`, int64 `tag`, an
    8-dim float vector; Strong consistency. Dropped first when it exists."""
    alias = server.alias("default")
    if utility.has_collection(name, using=alias, timeout=TIMEOUT):
        utility.drop_collection(name, using=alias, timeout=TIMEOUT)
    fields = [
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("tag", DataType.INT64),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=8),
    ]
    coll = create_collection(server, "default", name, fields, description="issue 23",
                             consistency="Strong")
    return coll, rng_for(seed, name)


def load_flat(coll):
    coll.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}},
                      index_name="vec_idx", timeout=TIMEOUT)
    coll.load(timeout=TIMEOUT)


def cmd_late_deletes(args):
    server = Server(args.host, args.port)
    coll, r = small_collection(server, args.collection, args.seed)
    insert_rows(coll, [{"id": i, "tag": i, "vec": float_vec(r, 8)} for i in range(args.rows)])
    coll.flush(timeout=TIMEOUT)
    load_flat(coll)
    step = max(args.rows // max(args.delete, 1), 1)
    victims = list(range(0, args.rows, step))[:args.delete]
    coll.delete(in_expr("id", victims), timeout=TIMEOUT)
    print(json.dumps({"rows": args.rows - len(victims), "deleted": victims}))


def cmd_dup_keys(args):
    server = Server(args.host, args.port)
    coll, r = small_collection(server, args.collection, args.seed)
    insert_rows(coll, [{"id": i, "tag": 1, "vec": float_vec(r, 8)} for i in range(args.rows)])
    if not args.one_segment:
        coll.flush(timeout=TIMEOUT)
    insert_rows(coll, [{"id": i, "tag": 2, "vec": float_vec(r, 8)} for i in range(args.rows)])
    load_flat(coll)
    victims = list(range(args.delete))
    if victims:
        coll.delete(in_expr("id", victims), timeout=TIMEOUT)
    print(json.dumps({"rows": args.rows - len(victims), "inserted": 2 * args.rows,
                      "deleted": victims}))


def cmd_delete_keys(args):
    """Deletes the rows with the given int64 or varchar keys."""
    server = Server(args.host, args.port)
    coll = Collection(args.collection, using=server.alias(args.db))
    keys = [int(k) if args.int else k for k in args.keys.split(",")]
    coll.delete(in_expr(args.pk, keys), timeout=TIMEOUT)
    print(json.dumps({"deleted": keys}))


def cmd_append(args):
    """Inserts ROWS new rows with keys FIRST_NEW.. into a `small_collection`."""
    server = Server(args.host, args.port)
    coll = Collection(args.collection, using=server.alias("default"))
    r = rng_for(args.seed, args.collection)
    insert_rows(coll, [{"id": args.first_new + i, "tag": -2, "vec": float_vec(r, 8)}
                       for i in range(args.rows)])
    print(json.dumps({"inserted": args.rows}))


def cmd_writer(args):
    """Writes into a `small_collection` (made with `late-deletes --delete 0`)
    for SECONDS: each round inserts new keys, upserts existing ones with a new
    `tag` and deletes some, as an application in use does. Prints what it did."""
    server = Server(args.host, args.port)
    coll = Collection(args.collection, using=server.alias("default"))
    r = rng_for(args.seed, args.collection)
    next_key, live = args.first_new, list(range(args.first_new))
    done = {"inserted": 0, "upserted": 0, "deleted": 0, "rounds": 0}
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        new = [{"id": next_key + i, "tag": -1, "vec": float_vec(r, 8)} for i in range(50)]
        next_key += len(new)
        coll.insert(new, timeout=TIMEOUT)
        live.extend(row["id"] for row in new)
        changed = r.sample(live, 40)
        coll.upsert([{"id": k, "tag": 7_000_000 + done["rounds"], "vec": float_vec(r, 8)}
                     for k in changed], timeout=TIMEOUT)
        gone = set(r.sample(live, 20))
        coll.delete(in_expr("id", sorted(gone)), timeout=TIMEOUT)
        live = [k for k in live if k not in gone]
        done["inserted"] += len(new)
        done["upserted"] += len(changed)
        done["deleted"] += len(gone)
        done["rounds"] += 1
        time.sleep(args.pause)
    done["rows"] = len(live)
    print(json.dumps(done))


def cmd_drop(args):
    server = Server(args.host, args.port)
    dropped = drop_prefixed(server, args.prefix)
    print(json.dumps({"dropped": dropped}))


# ------------------------------------------------------------------ main


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp):
        sp.add_argument("--host", default=os.environ.get("MBT_HOST", "127.0.0.1"))
        sp.add_argument("--port", type=int, required=True)

    g = sub.add_parser("generate")
    common(g)
    g.add_argument("--prefix", default="gen_")
    g.add_argument("--rows", type=int, default=2000)
    g.add_argument("--seed", type=int, default=42)
    d = sub.add_parser("dump")
    common(d)
    d.add_argument("--collection", required=True)
    d.add_argument("--db", default="default")
    d.add_argument("--format", choices=["jsonl", "json"], default="jsonl")
    d.add_argument("--keys", type=int, help="the int64 keys 0..KEYS-1, not every key the server lists")
    s = sub.add_parser("describe")
    common(s)
    s.add_argument("--collection", required=True)
    s.add_argument("--db", default="default")
    e = sub.add_parser("edge")
    common(e)
    e.add_argument("--prefix", default="gen_")
    x = sub.add_parser("drop")
    common(x)
    x.add_argument("--prefix", default="gen_")
    k = sub.add_parser("delete-keys")
    common(k)
    k.add_argument("--collection", required=True)
    k.add_argument("--db", default="default")
    k.add_argument("--pk", default="id")
    k.add_argument("--keys", required=True, help="comma-separated")
    k.add_argument("--int", action="store_true", help="the keys are int64")
    ap = sub.add_parser("append")
    common(ap)
    ap.add_argument("--collection", required=True)
    ap.add_argument("--first-new", type=int, required=True)
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--seed", type=int, default=9)
    w = sub.add_parser("writer")
    common(w)
    w.add_argument("--collection", required=True)
    w.add_argument("--seconds", type=float, default=60)
    w.add_argument("--first-new", type=int, required=True, help="rows already there: keys 0..N-1")
    w.add_argument("--pause", type=float, default=0.2)
    w.add_argument("--seed", type=int, default=7)
    for cmd, rows in [("late-deletes", 6000), ("dup-keys", 3000)]:
        sp = sub.add_parser(cmd)
        common(sp)
        sp.add_argument("--collection", required=True)
        sp.add_argument("--rows", type=int, default=rows)
        sp.add_argument("--seed", type=int, default=42)
        sp.add_argument("--delete", type=int, default=5 if cmd == "late-deletes" else 0)
        if cmd == "dup-keys":
            sp.add_argument("--one-segment", action="store_true",
                            help="no flush between the two inserts (both in one growing segment)")
    import gen_many
    gen_many.add_commands(sub, common)
    args = p.parse_args(argv)
    if getattr(args, "prefix", None) is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args.prefix):
        p.error("--prefix must be letters, digits, underscores, not starting with a digit")
    if getattr(args, "rows", 1) < 1:
        p.error("--rows must be at least 1")
    {"generate": cmd_generate, "dump": cmd_dump, "describe": cmd_describe, "drop": cmd_drop,
     "late-deletes": cmd_late_deletes, "dup-keys": cmd_dup_keys, "edge": cmd_edge,
     "delete-keys": cmd_delete_keys, "writer": cmd_writer, "append": cmd_append,
     **gen_many.commands(Server)}[args.cmd](args)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:  # e.g. `dump ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    finally:
        try:
            for a in list(connections.list_connections()):
                connections.disconnect(a[0])
        except Exception:  # noqa: BLE001
            pass
