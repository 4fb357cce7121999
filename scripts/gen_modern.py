#!/usr/bin/env python3
"""Deterministic Milvus 2.5-3.0 data model test data on Milvus Lite 3.2.2:
generate, dump, describe, bm25, drop.

Runs with venv-lite's python (pymilvus 3.0.2, MilvusClient):
`$MBT_PY_LITE scripts/gen_modern.py ... --port $MBT_LITE_PORT`.

  generate --host H --port P [--prefix gen_] [--rows 2000] [--seed 42] [--db DB]
      (Re)creates <prefix>modern and <prefix>plain in DB (created if missing)
      and prints one JSON object: {"server_version", "features",
      "collections": [{db, name, rows, pk, pk_type, ...}], "seconds"};
      `rows` is the count expected after the deletes.
  dump --host H --port P --collection NAME [--db DB] [--format jsonl|json]
      Every row, read with query_iterator, sorted by primary key, one
      canonical JSON object per line: nulls as null, GEOMETRY as WKT (as shapely
      writes it: Lite echoes the inserted spelling, Milvus its own) and
      TIMESTAMPTZ as the ISO string the server returns, sparse vectors as
      {"index": value}, floats as returned (float32 values widened to double),
      dynamic keys under "$meta". Function output fields (the BM25 `sparse`)
      are included: Lite returns them (Milvus 2.5+ refuses; then they are
      left out with a note on stderr and the dump says so in `--format json`).
  describe --host H --port P --collection NAME [--db DB]
      Schema without ids, timestamps or the collection's own name: fields
      (type, element type, type params with analyzer_params parsed, nullable,
      default_value, primary/auto_id/partition/clustering key, function
      output, description), struct array fields, functions, dynamic field,
      num_partitions, consistency level, description, properties, indexes
      (field, name, type, metric, params as strings, flattened), aliases,
      partitions (not for partition-key collections: those are internal),
      load state. Equal schemas give equal JSON text.
  bm25 --host H --port P --collection NAME [--db DB] [--queries 8]
      For N fixed query texts, the top-10 primary keys of a BM25 full-text
      search on `sparse`: a JSON list of lists. Ties are broken by primary
      key (see bm25_top).
  drop --host H --port P [--prefix gen_]
      Drops the prefixed collections (and their aliases) in every database,
      then the prefixed databases.

What `generate` makes (names get the prefix):
  modern  int64 pk (not autoID, negative and positive keys) and
          - nullable bool, int8, int16, int32, int64, float, double, varchar
            (each null in about 1/3 of the rows);
          - defaults: d_int32 INT32 default 7 (not nullable), d_varchar
            VARCHAR nullable default "unset", d_ts TIMESTAMPTZ default
            2000-01-01T00:00:00Z; in 1/5 of the rows the key is left out,
            in 1/5 it is None: both give the default (nullable + default:
            None means "use the default", as in Milvus), the rest set values;
          - geo GEOMETRY nullable: WKT POINT and POLYGON (Lite takes no other
            geometry: LINESTRING, MULTI*, Z, EMPTY and polygons with holes are
            refused), about 1/4 null;
          - ts TIMESTAMPTZ nullable: ISO 8601 with offsets from -12:00 to
            +14:00 and Z, some with microseconds, years 1900-2100; 1/12 naive
            (no offset: read in the collection's `timezone` property,
            Europe/Berlin); about 1/4 null;
          - body VARCHAR with enable_analyzer, enable_match and analyzer_params
            {"tokenizer": "standard", "filter": ["lowercase", {"type": "stop",
            "stop_words": [...]}]} (Lite knows only the standard and jieba
            tokenizers: {"type": "english"} is refused), feeding the BM25
            function `body_bm25` into `sparse` (is_function_output);
          - vec FLOAT_VECTOR dim 16; usparse, a user-provided SPARSE_FLOAT_VECTOR
            (no zero weights: Lite drops them; never empty: Lite refuses);
          - a_int64 ARRAY<INT64> and a_varchar ARRAY<VARCHAR> nullable: 1/4
            null, 1/4 empty, the rest 1-8 / 1-4 elements;
          - j JSON nullable: null, nested objects, lists, {} and [] (no JSON
            scalars: Lite refuses a bare number on insert and a bare string
            breaks every later query of that row; JSON `null` cannot be told
            from a SQL null: Lite stores both as null);
          - tenant VARCHAR partition key (num_partitions=4 asked; Lite ignores
            it and always makes 16 buckets _pk_0.._pk_15 beside _default, so
            describe says num_partitions 17);
          - the dynamic field: dyn_str, dyn_num, dyn_obj (nested) on some rows;
          - properties collection.ttl.seconds (10 years), mmap.enabled,
            timezone; consistency level Bounded and a description (Lite keeps
            neither: describe says Strong and "");
          - indexes: HNSW/COSINE on vec, SPARSE_INVERTED_INDEX/BM25 (bm25_k1,
            bm25_b) on sparse, SPARSE_INVERTED_INDEX/IP on usparse, INVERTED on
            tenant and ts (Lite has no RTREE: GEOMETRY takes no index);
          - alias <prefix>modern_alias; rows with id % 13 == 0 deleted; flushed;
            loaded.
  plain   int64 pk, float vector dim 8, varchar label; FLAT index; loaded.

Not in `modern`, because Lite 3.2.2 does not take them:
  - arrays of structs: create_struct_field_schema + add_field(ARRAY, STRUCT)
    is accepted by create_collection, but Lite drops the struct field from the
    schema (describe shows no struct_array_fields); an insert then puts the
    values into $meta (dynamic field on) or refuses the row (off). `generate`
    probes this again and reports features.struct_array;
  - nullable vectors: a null FLOAT_VECTOR comes back as zeros, and a batch
    whose values are all null is refused;
  - binary, float16, bfloat16 and int8 vectors (not Lite types).
Indexes are created with the build params as one JSON `params` entry (the
wire form older clients send): pymilvus 3.0.2 sends each build param as its
own key, which Lite drops (describe_index would show no params).

BM25 on Lite is scored with per-segment statistics (a TODO in its
engine/collection.py), so ranks depend on how rows fall into segments:
`generate` inserts everything, then flushes once (one segment per
partition), and `bm25` flushes first; a restore that inserts and flushes
once ranks the same.

Values come from seeded RNGs per collection (not per prefix), so the same
seed gives the same rows on every run, under any prefix and in any database.
"""
import argparse
import datetime as dt
import fcntl
import json
import logging
import math
import os
import random
import re
import struct
import sys
import time
import zlib

os.environ.setdefault("no_proxy", "127.0.0.1,localhost")
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from pymilvus import DataType, Function, FunctionType, MilvusClient  # noqa: E402
from pymilvus.exceptions import MilvusException  # noqa: E402
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc, schema_pb2  # noqa: E402

TIMEOUT = 120  # seconds, every RPC
INSERT_BATCH = 500  # rows per insert
ITER_BATCH = 1000  # rows per query_iterator page
RETRIES = 5  # attempts of a call that failed with a transient error
TOP_K = 10  # bm25 hits per query

# pymilvus logs every failed RPC at ERROR, also the ones we expect and handle
logging.getLogger("pymilvus").setLevel(logging.CRITICAL)


def log(msg):
    print(f"[gen_modern] {msg}", file=sys.stderr)


# ------------------------------------------------------------------ server


def transient(exc):
    """A failure worth another attempt: the server is (re)starting or busy."""
    if isinstance(exc, grpc.RpcError):
        return exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    text = str(exc).lower()
    return isinstance(exc, MilvusException) and any(
        s in text for s in ("unavailable", "deadline exceeded", "connection refused", "socket closed",
                            "fail connecting"))


def retry(what, fn, *args, **kwargs):
    """fn(*args, **kwargs), again after a transient error (bounded: RETRIES
    attempts, 1+2+4+8 s apart). Lite replaces a row on a repeated primary
    key, so even an insert may be repeated."""
    for attempt in range(RETRIES):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            if attempt == RETRIES - 1 or not transient(e):
                raise
            log(f"{what}: {e}; retrying")
            time.sleep(2 ** attempt)
    raise AssertionError("unreachable")


class Server:
    """One Milvus (Lite) server: a MilvusClient per database, plus a raw
    gRPC stub for what MilvusClient hides (the full DescribeCollection
    proto, GetVersion, index params as one JSON entry)."""

    def __init__(self, host, port):
        self.host, self.port = host, str(port)
        self.uri = f"http://{host}:{port}"
        self.clients = {}
        self.channel = grpc.insecure_channel(f"{host}:{port}")
        self.stub = milvus_pb2_grpc.MilvusServiceStub(self.channel)
        resp = retry("GetVersion", self.stub.GetVersion, milvus_pb2.GetVersionRequest(), timeout=30)
        self.version_text = resp.version

    def client(self, db="default"):
        db = db or "default"
        if db not in self.clients:
            kwargs = {"db_name": db} if db != "default" else {}
            self.clients[db] = retry("connect", MilvusClient, uri=self.uri, timeout=30, **kwargs)
        return self.clients[db]

    def databases(self):
        return sorted(retry("list_databases", self.client().list_databases, timeout=TIMEOUT))

    def close(self):
        for c in self.clients.values():
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
        self.channel.close()


def check(status, what):
    """Raise on a failed common.Status (raw gRPC calls)."""
    if status.code != 0 or status.error_code != 0:
        raise SystemExit(f"{what}: {status.reason or status}")


# ------------------------------------------------------------------ values


def rng_for(seed, name):
    return random.Random(seed * 1_000_003 + zlib.crc32(name.encode()))


def f32(x):
    """Round to float32 so what we insert is exactly what Milvus returns."""
    return struct.unpack("f", struct.pack("f", x))[0]


def float_vec(r, dim):
    return [f32(r.uniform(-1.0, 1.0)) for _ in range(dim)]


WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "ünïcødé", "空"]

# BM25 body text: a vocabulary with a Zipf-like frequency, so that common
# and rare terms both exist (and scores differ between documents).
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "zu", "pi", "do", "ge"]
VOCAB = WORDS + [a + b + c for a in SYLLABLES[:8] for b in SYLLABLES[4:] for c in ("", "n", "x")]
ZIPF = [1.0 / (k + 1) for k in range(len(VOCAB))]
STOP_WORDS = ["the", "a", "of", "and"]
ANALYZER = {"tokenizer": "standard", "filter": ["lowercase", {"type": "stop", "stop_words": STOP_WORDS}]}


def word(r, n=3):
    return "-".join(r.choice(WORDS) for _ in range(r.randint(1, n)))


def body_text(r):
    n = r.choice([0, 1, 2, 3, 5, 8, 13, 21, 34]) if r.random() < 0.1 else r.randint(3, 30)
    words = r.choices(VOCAB, weights=ZIPF, k=n)
    words = [w.capitalize() if r.random() < 0.1 else w for w in words]
    if n and r.random() < 0.3:
        words.insert(r.randrange(len(words) + 1), r.choice(STOP_WORDS))
    text = " ".join(words)
    return text + "." if text and r.random() < 0.5 else text


def maybe(r, p_null, make):
    """None with probability p_null, else make()."""
    return None if r.random() < p_null else make()


def coord(r, lo, hi):
    return repr(round(r.uniform(lo, hi), r.choice([0, 1, 3, 6])))


def geometry(r):
    """WKT POINT or closed POLYGON ring (what Lite takes)."""
    if r.random() < 0.6:
        return f"POINT ({coord(r, -180, 180)} {coord(r, -90, 90)})"
    x, y = r.uniform(-170, 160), r.uniform(-80, 70)
    w, h = r.uniform(0.5, 10), r.uniform(0.5, 10)
    ring = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)][: r.choice([3, 4])]
    ring.append(ring[0])
    return "POLYGON ((" + ", ".join(f"{round(a, 4)!r} {round(b, 4)!r}" for a, b in ring) + "))"


OFFSETS = ["Z", "+00:00", "+01:00", "-05:00", "+05:30", "-08:00", "+09:45", "+14:00", "-12:00", "-03:30"]
TIMEZONE = "Europe/Berlin"  # the collection's `timezone` property: naive inputs are read in it


def timestamptz(r):
    """ISO 8601 text with an offset (or none, 1 in 12: the collection's
    timezone applies), sometimes with microseconds."""
    t = dt.datetime(1900, 1, 1) + dt.timedelta(seconds=r.randrange(200 * 365 * 86400))
    if r.random() < 0.3:
        t = t.replace(microsecond=r.randrange(1_000_000))
    text = t.isoformat()
    if r.random() < 1 / 12:
        return text
    return text + r.choice(OFFSETS)


def json_value(r, i):
    kind = r.random()
    if kind < 0.6:
        return {"i": i, "tag": word(r, 1), "nested": {"x": r.randint(0, 9), "l": [1, "a", None, True]},
                "flag": r.random() < 0.3, "f": r.uniform(-1e3, 1e3)}
    if kind < 0.8:
        return [r.randint(-5, 5), word(r, 1), {"deep": {"deeper": [i]}}]
    return {} if kind < 0.9 else []


def sparse_vec(r):
    """1-6 nonzero float32 weights on uint32 indices (sometimes the top one)."""
    n = r.randint(1, 6)
    idx = {r.randrange(100_000) for _ in range(n)}
    if r.random() < 0.05:
        idx.add(2**32 - 2)
    return {k: f32(r.uniform(0.01, 5.0)) for k in sorted(idx)}


# ------------------------------------------------------------------ generate


def drop_prefixed(server, prefix):
    """Drop the prefixed collections (their aliases first) in every
    database, then the prefixed databases."""
    dropped = []
    for db in server.databases():
        c = server.client(db)
        for name in retry("list_collections", c.list_collections, timeout=TIMEOUT):
            if not name.startswith(prefix):
                continue
            for alias in retry("list_aliases", c.list_aliases, name, timeout=TIMEOUT).get("aliases", []):
                retry("drop_alias", c.drop_alias, alias, timeout=TIMEOUT)
                dropped.append(f"alias {db}.{alias}")
            retry("drop_collection", c.drop_collection, name, timeout=TIMEOUT)
            dropped.append(f"{db}.{name}")
        if db != "default" and db.startswith(prefix):
            retry("drop_database", server.client().drop_database, db, timeout=TIMEOUT)
            server.clients.pop(db, None)
            dropped.append(f"database {db}")
    return dropped


# Properties a database made by `generate --db` gets (a restore must bring
# them back with the database).
DB_PROPERTIES = {"database.max.collections": "64", "database.diskQuota.mb": "4096"}


def ensure_database(server, db):
    if db != "default" and db not in server.databases():
        retry("create_database", server.client().create_database, db, properties=DB_PROPERTIES,
              timeout=TIMEOUT)


def create_index(server, db, coll, field, index_type, metric_type=None, params=None, index_name=""):
    """CreateIndex with the build params as one JSON `params` entry: Lite
    keeps them that way (pymilvus 3.0.2 sends each param as its own key,
    which Lite drops), and Milvus takes both forms."""
    kv = [common_pb2.KeyValuePair(key="index_type", value=index_type)]
    if metric_type:
        kv.append(common_pb2.KeyValuePair(key="metric_type", value=metric_type))
    if params:
        kv.append(common_pb2.KeyValuePair(key="params", value=json.dumps(params, sort_keys=True)))
    req = milvus_pb2.CreateIndexRequest(collection_name=coll, field_name=field, index_name=index_name,
                                        extra_params=kv, db_name=db if db != "default" else "")
    check(retry(f"create_index {coll}.{field}", server.stub.CreateIndex, req, timeout=TIMEOUT),
          f"create_index {coll}.{field}")


def load_and_wait(client, name, deadline_s=TIMEOUT):
    """load_collection, then poll the load state (bounded)."""
    retry("load_collection", client.load_collection, name, timeout=TIMEOUT)
    deadline = time.monotonic() + deadline_s
    while True:
        state = str(retry("get_load_state", client.get_load_state, name, timeout=TIMEOUT)["state"])
        if state.endswith("Loaded"):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: not loaded after {deadline_s}s (state {state})")
        time.sleep(0.5)


def insert_rows(client, name, rows):
    for i in range(0, len(rows), INSERT_BATCH):
        retry(f"insert {name}", client.insert, name, rows[i:i + INSERT_BATCH], timeout=TIMEOUT)


def probe_struct_arrays(server, db, prefix):
    """Does the server keep an array-of-struct field? (Lite 3.2.2 accepts
    the schema and silently drops the field.)"""
    c = server.client(db)
    name = f"{prefix}probe_struct"
    if c.has_collection(name, timeout=TIMEOUT):
        c.drop_collection(name, timeout=TIMEOUT)
    s = c.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    st = c.create_struct_field_schema()
    st.add_field("sx", DataType.INT32)
    s.add_field("structs", DataType.ARRAY, element_type=DataType.STRUCT, struct_schema=st, max_capacity=4)
    try:
        c.create_collection(name, schema=s, timeout=TIMEOUT)
    except MilvusException:
        return False
    try:
        resp = describe_raw(server, db, name)
        return len(resp.schema.struct_array_fields) > 0
    finally:
        c.drop_collection(name, timeout=TIMEOUT)


def gen_modern(server, db, prefix, n, seed):
    c = server.client(db)
    name = f"{prefix}modern"
    r = rng_for(seed, "modern")  # not the prefix: the same rows under any prefix
    s = c.create_schema(auto_id=False, enable_dynamic_field=True,
                        description="Milvus 2.5-3.0 data model on Lite")
    s.add_field("id", DataType.INT64, is_primary=True, description="primary key")
    s.add_field("n_bool", DataType.BOOL, nullable=True)
    s.add_field("n_int8", DataType.INT8, nullable=True)
    s.add_field("n_int16", DataType.INT16, nullable=True)
    s.add_field("n_int32", DataType.INT32, nullable=True)
    s.add_field("n_int64", DataType.INT64, nullable=True)
    s.add_field("n_float", DataType.FLOAT, nullable=True)
    s.add_field("n_double", DataType.DOUBLE, nullable=True)
    s.add_field("n_varchar", DataType.VARCHAR, max_length=128, nullable=True, description="nullable text")
    s.add_field("d_int32", DataType.INT32, default_value=7)
    s.add_field("d_varchar", DataType.VARCHAR, max_length=32, nullable=True, default_value="unset")
    s.add_field("d_ts", DataType.TIMESTAMPTZ, default_value="2000-01-01T00:00:00Z")
    s.add_field("geo", DataType.GEOMETRY, nullable=True)
    s.add_field("ts", DataType.TIMESTAMPTZ, nullable=True)
    s.add_field("body", DataType.VARCHAR, max_length=4096, enable_analyzer=True, enable_match=True,
                analyzer_params=ANALYZER)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR, description="BM25 of body")
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=16)
    s.add_field("usparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("a_int64", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8, nullable=True)
    s.add_field("a_varchar", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=32,
                nullable=True)
    s.add_field("j", DataType.JSON, nullable=True)
    s.add_field("tenant", DataType.VARCHAR, max_length=32, is_partition_key=True)
    s.add_function(Function(name="body_bm25", function_type=FunctionType.BM25, input_field_names=["body"],
                            output_field_names=["sparse"], description="full text"))
    properties = {"collection.ttl.seconds": str(10 * 365 * 86400), "mmap.enabled": "true", "timezone": TIMEZONE}
    retry("create_collection", c.create_collection, name, schema=s, num_partitions=4,
          consistency_level="Bounded", properties=properties, timeout=TIMEOUT)

    tenants = [f"tenant-{k:02d}" for k in range(12)]

    def make_row(i):
        row = {
            "id": i * 7 - n,  # negative and positive keys
            "n_bool": maybe(r, 1 / 3, lambda: r.random() < 0.5),
            "n_int8": maybe(r, 1 / 3, lambda: r.randint(-128, 127)),
            "n_int16": maybe(r, 1 / 3, lambda: r.randint(-32768, 32767)),
            "n_int32": maybe(r, 1 / 3, lambda: r.randint(-(2**31), 2**31 - 1)),
            "n_int64": maybe(r, 1 / 3, lambda: r.randint(-(2**63), 2**63 - 1)),
            "n_float": maybe(r, 1 / 3, lambda: f32(r.uniform(-1e6, 1e6))),
            "n_double": maybe(r, 1 / 3, lambda: r.uniform(-1e12, 1e12)),
            "n_varchar": maybe(r, 1 / 3, lambda: word(r, 5)),
            "geo": maybe(r, 1 / 4, lambda: geometry(r)),
            "ts": maybe(r, 1 / 4, lambda: timestamptz(r)),
            "body": body_text(r),
            "vec": float_vec(r, 16),
            "usparse": sparse_vec(r),
            "a_int64": r.choice([None, [], 1, 1]),
            "a_varchar": r.choice([None, [], 1, 1]),
            "j": maybe(r, 1 / 3, lambda: json_value(r, i)),
            "tenant": r.choice(tenants),
        }
        if row["a_int64"] == 1:
            row["a_int64"] = [r.randint(-(2**40), 2**40) for _ in range(r.randint(1, 8))]
        if row["a_varchar"] == 1:
            row["a_varchar"] = [word(r, 1) for _ in range(r.randint(1, 4))]
        # defaults: key left out (i % 5 == 0), None (== 1), a value (else)
        if i % 5 == 1:
            row.update(d_int32=None, d_varchar=None, d_ts=None)
        elif i % 5 != 0:
            row.update(d_int32=r.randint(-1000, 1000), d_varchar=word(r, 1)[:32], d_ts=timestamptz(r))
        # the dynamic field
        if i % 2 == 0:
            row["dyn_str"] = word(r, 2)
        if i % 3 == 0:
            row["dyn_num"] = r.randint(0, 1000)
        if i % 7 == 0:
            row["dyn_obj"] = {"k": word(r, 1), "v": [r.random() < 0.5, None]}
        return row

    rows = [make_row(i) for i in range(n)]
    insert_rows(c, name, rows)
    victims = [row["id"] for row in rows if row["id"] % 13 == 0]
    for i in range(0, len(victims), 500):
        retry(f"delete {name}", c.delete, name, ids=victims[i:i + 500], timeout=TIMEOUT)
    retry(f"flush {name}", c.flush, name, timeout=TIMEOUT)
    create_index(server, db, name, "vec", "HNSW", "COSINE", {"M": 8, "efConstruction": 64}, "vec_hnsw")
    create_index(server, db, name, "sparse", "SPARSE_INVERTED_INDEX", "BM25",
                 {"bm25_k1": 1.2, "bm25_b": 0.75}, "sparse_bm25")
    create_index(server, db, name, "usparse", "SPARSE_INVERTED_INDEX", "IP", None, "usparse_ip")
    create_index(server, db, name, "tenant", "INVERTED", None, None, "tenant_inv")
    create_index(server, db, name, "ts", "INVERTED", None, None, "ts_inv")
    retry("create_alias", c.create_alias, name, f"{name}_alias", timeout=TIMEOUT)
    load_and_wait(c, name)
    return info(db, name, n - len(victims), "id", "int64", loaded=True, deleted=len(victims),
                dynamic=True, partition_key="tenant", functions=["body_bm25"], alias=f"{name}_alias")


def gen_plain(server, db, prefix, n, seed):
    c = server.client(db)
    name = f"{prefix}plain"
    r = rng_for(seed, "plain")
    s = c.create_schema(auto_id=False, enable_dynamic_field=False, description="plain")
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
    s.add_field("label", DataType.VARCHAR, max_length=64)
    retry("create_collection", c.create_collection, name, schema=s, timeout=TIMEOUT)
    rows = [{"id": i, "vec": float_vec(r, 8), "label": f"row-{i:06d}-{word(r, 1)}"} for i in range(n)]
    insert_rows(c, name, rows)
    retry(f"flush {name}", c.flush, name, timeout=TIMEOUT)
    create_index(server, db, name, "vec", "FLAT", "L2", None, "vec_flat")
    load_and_wait(c, name)
    return info(db, name, n, "id", "int64", loaded=True)


def info(db, name, rows, pk, pk_type, **extra):
    out = {"db": db, "name": name, "rows": rows, "pk": pk, "pk_type": pk_type, "auto_id": False}
    out.update(extra)
    return out


def cmd_generate(args):
    t0 = time.monotonic()
    server = Server(args.host, args.port)
    ensure_database(server, args.db)
    # only this database's prefixed collections: another --db keeps its own
    c = server.client(args.db)
    for name in retry("list_collections", c.list_collections, timeout=TIMEOUT):
        if name.startswith(args.prefix):
            for alias in c.list_aliases(name, timeout=TIMEOUT).get("aliases", []):
                c.drop_alias(alias, timeout=TIMEOUT)
            c.drop_collection(name, timeout=TIMEOUT)
    features = {"struct_array": probe_struct_arrays(server, args.db, args.prefix)}
    out = []
    for make in (gen_modern, gen_plain):
        t = time.monotonic()
        out.append(make(server, args.db, args.prefix, args.rows, args.seed))
        log(f"{out[-1]['db']}.{out[-1]['name']}: {out[-1]['rows']} rows in {time.monotonic() - t:.1f}s")
    result = {"server_version": server.version_text, "features": features, "prefix": args.prefix,
              "seed": args.seed, "rows_per_collection": args.rows, "collections": out,
              "seconds": round(time.monotonic() - t0, 1)}
    print(json.dumps(result, indent=2, sort_keys=True))


# ------------------------------------------------------------------ describe


def parse_json_text(value):
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def kv_dict(pairs, parse=()):
    """KeyValuePair list → sorted dict; keys in `parse` hold JSON text."""
    out = {}
    for p in pairs:
        out[p.key] = parse_json_text(p.value) if p.key in parse else p.value
    return dict(sorted(out.items()))


def default_value(field):
    """The proto default (ValueField oneof) as {"kind", "value"}, or None."""
    which = field.default_value.WhichOneof("data")
    if which is None:
        return None
    value = getattr(field.default_value, which)
    if isinstance(value, bytes):
        value = value.hex()
    return {"kind": which, "value": canonical(value)}


def describe_field(f):
    return {
        "name": f.name,
        "description": f.description,
        "data_type": schema_pb2.DataType.Name(f.data_type),
        "element_type": schema_pb2.DataType.Name(f.element_type) if f.element_type else None,
        "type_params": kv_dict(f.type_params, parse=("analyzer_params", "multi_analyzer_params")),
        "index_params": kv_dict(f.index_params, parse=("params",)),
        "nullable": f.nullable,
        "default_value": default_value(f),
        "is_primary": f.is_primary_key,
        "auto_id": f.autoID,
        "is_partition_key": f.is_partition_key,
        "is_clustering_key": f.is_clustering_key,
        "is_function_output": f.is_function_output,
        "is_dynamic": f.is_dynamic,
    }


def describe_raw(server, db, name):
    req = milvus_pb2.DescribeCollectionRequest(collection_name=name, db_name=db if db != "default" else "")
    resp = retry("DescribeCollection", server.stub.DescribeCollection, req, timeout=TIMEOUT)
    check(resp.status, f"describe {db}.{name}")
    return resp


def describe_indexes(server, db, name):
    """Every index, params flattened into one dict of strings: Lite answers
    {"params": "{\\"M\\": 8}"} where Milvus answers {"M": "8"}."""
    req = milvus_pb2.DescribeIndexRequest(collection_name=name, db_name=db if db != "default" else "")
    resp = retry("DescribeIndex", server.stub.DescribeIndex, req, timeout=TIMEOUT)
    if resp.status.code != 0 or resp.status.error_code != 0:
        if "index" in resp.status.reason.lower() and "not" in resp.status.reason.lower():
            return []  # no index at all
        check(resp.status, f"describe_index {db}.{name}")
    out = []
    for d in resp.index_descriptions:
        raw = {p.key: p.value for p in d.params}
        params = {}
        nested = parse_json_text(raw.pop("params", "{}"))
        if isinstance(nested, dict):
            params.update({k: v if isinstance(v, str) else json.dumps(v, sort_keys=True)
                           for k, v in nested.items()})
        index_type = raw.pop("index_type", None)
        metric_type = raw.pop("metric_type", None)
        params.update(raw)
        out.append({"field_name": d.field_name, "index_name": d.index_name, "index_type": index_type,
                    "metric_type": metric_type, "params": dict(sorted(params.items()))})
    return sorted(out, key=lambda x: (x["field_name"], x["index_name"]))


def describe(server, db, name):
    c = server.client(db)
    resp = describe_raw(server, db, name)
    schema = resp.schema
    fields = [describe_field(f) for f in schema.fields]
    structs = [json_format.MessageToDict(sf, preserving_proto_field_name=True)
               for sf in schema.struct_array_fields]
    for sf in structs:  # ids are server-assigned
        sf.pop("fieldID", None)
        for f in sf.get("fields", []):
            f.pop("fieldID", None)
    functions = []
    for fn in schema.functions:
        functions.append({
            "name": fn.name,
            "description": fn.description,
            "type": schema_pb2.FunctionType.Name(fn.type),
            "input_field_names": list(fn.input_field_names),
            "output_field_names": list(fn.output_field_names),
            "params": kv_dict(fn.params, parse=[p.key for p in fn.params]),
        })
    has_partition_key = any(f["is_partition_key"] for f in fields)
    aliases = retry("list_aliases", c.list_aliases, name, timeout=TIMEOUT).get("aliases", [])
    state = str(retry("get_load_state", c.get_load_state, name, timeout=TIMEOUT)["state"]).split(".")[-1]
    out = {
        "description": schema.description,
        "auto_id": any(f["auto_id"] for f in fields) or schema.autoID,
        "enable_dynamic_field": schema.enable_dynamic_field,
        "consistency_level": common_pb2.ConsistencyLevel.Name(resp.consistency_level),
        "shards_num": resp.shards_num,
        "num_partitions": resp.num_partitions,
        "properties": kv_dict(resp.properties),
        "aliases": sorted(aliases),
        "fields": fields,
        "struct_array_fields": structs,
        "functions": sorted(functions, key=lambda x: x["name"]),
        "indexes": describe_indexes(server, db, name),
        "load_state": state,
    }
    if not has_partition_key:  # a partition key's partitions are the server's own
        out["partitions"] = sorted(retry("list_partitions", c.list_partitions, name, timeout=TIMEOUT))
    return out


class collection_lock:
    """A dump loads a released collection and releases it again: another
    dump or a describe of the same collection waits (an exclusive lock file
    per server and collection), as in gen_data.py."""

    def __init__(self, server, db, name):
        self.path = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                 f"milvus-backup-dump-{server.host}-{server.port}-{db}.{name}.lock")

    def __enter__(self):
        self.file = open(self.path, "w")
        fcntl.flock(self.file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.file.close()


def cmd_describe(args):
    server = Server(args.host, args.port)
    with collection_lock(server, args.db, args.collection):
        described = describe(server, args.db, args.collection)
    print(json.dumps(described, indent=2, sort_keys=True, ensure_ascii=False))


# ------------------------------------------------------------------ dump


def canonical(value):
    """JSON-safe, deterministic form of one value (as gen_data.py)."""
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return repr(value)
        return value
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return canonical(value.tolist())
    if hasattr(value, "item"):
        return value.item()
    return value


def canonical_geometry(text):
    """A geometry's WKT as shapely writes it. Lite answers the text as it
    was inserted ('point (1 2)', 'POINT (159.0 55.0)'); Milvus stores WKB
    and answers its own spelling. The value, not the spelling, is compared."""
    import shapely.wkt  # noqa: E402 (only dumps of geometries need it)
    return shapely.wkt.loads(text).wkt


def canonical_sparse(value):
    """A sparse row ({index: weight}, or pymilvus's other shapes) as
    {"index": weight} in index order; None stays None."""
    if value is None:
        return None
    if hasattr(value, "tocoo"):  # scipy sparse row
        coo = value.tocoo()
        value = dict(zip(coo.col.tolist(), coo.data.tolist()))
    elif isinstance(value, (list, tuple)):  # [(index, weight), ...]
        value = dict(value)
    return {str(k): canonical(float(v)) for k, v in sorted(value.items(), key=lambda kv: int(kv[0]))}


def ensure_loaded(client, name):
    """Load a released collection for the dump; True if we did (release after)."""
    state = str(retry("get_load_state", client.get_load_state, name, timeout=TIMEOUT)["state"])
    if state.endswith("Loaded"):
        return False
    load_and_wait(client, name)
    return True


def iterate(client, name, output):
    it = retry("query_iterator", client.query_iterator, name, batch_size=ITER_BATCH,
               output_fields=output, timeout=TIMEOUT)
    try:
        while True:
            page = retry("query_iterator.next", it.next)
            if not page:
                return
            yield from page
    finally:
        it.close()


def dump_rows(server, db, name, notes):
    with collection_lock(server, db, name):
        yield from _dump_rows(server, db, name, notes)


def _dump_rows(server, db, name, notes):
    c = server.client(db)
    schema = describe_raw(server, db, name).schema
    fields = {f.name: f for f in schema.fields}
    pk = next(f.name for f in schema.fields if f.is_primary_key)
    dynamic = schema.enable_dynamic_field
    fn_outputs = [f.name for f in schema.fields if f.is_function_output]
    names = list(fields)
    loaded_here = ensure_loaded(c, name)
    try:
        output = names + (["$meta"] if dynamic else [])
        try:
            rows = list(iterate(c, name, output))
        except MilvusException as e:
            if not any(f in str(e) for f in fn_outputs):
                raise
            # Milvus 2.5+ refuses to return function outputs; Lite does not
            notes.append(f"function output fields {fn_outputs} left out: {e}")
            log(notes[-1])
            names = [x for x in names if x not in fn_outputs]
            output = names + (["$meta"] if dynamic else [])
            rows = list(iterate(c, name, output))
        count = retry("count", c.query, name, filter="", output_fields=["count(*)"], timeout=TIMEOUT)
        expected = count[0]["count(*)"]
        if len(rows) != expected:
            raise SystemExit(f"dump {db}.{name}: query_iterator gave {len(rows)} rows, count(*) says {expected}")
        rows.sort(key=lambda row: row[pk])
        for row in rows:
            yield normalise_row(row, fields, names, dynamic, pk)
    finally:
        if loaded_here:
            retry("release_collection", c.release_collection, name, timeout=TIMEOUT)


def normalise_row(row, fields, names, dynamic, pk):
    """One row as canonical JSON values: sparse vectors as sorted
    {"index": weight}, dynamic keys (flattened by pymilvus, or a "$meta"
    object) under "$meta", None (a null) kept as null."""
    out = {}
    meta = {}
    for k, v in row.items():
        if k in names:
            if fields[k].data_type == schema_pb2.DataType.SparseFloatVector:
                out[k] = canonical_sparse(v)
            elif fields[k].data_type == schema_pb2.DataType.Geometry and v is not None:
                out[k] = canonical_geometry(v)
            else:
                out[k] = canonical(v)
        elif k == "$meta":
            meta.update(v if isinstance(v, dict) else json.loads(v))
        elif k not in fields:  # a dynamic key flattened into the row
            meta[k] = v
    missing = [k for k in names if k not in out]
    if missing:  # a field the server did not return is not a null
        raise SystemExit(f"dump: the row with {pk} {row.get(pk)} lacks fields {missing}")
    if dynamic:
        out["$meta"] = canonical(meta)
    return out


def cmd_dump(args):
    server = Server(args.host, args.port)
    t0 = time.monotonic()
    notes = []
    n = 0
    if args.format == "json":
        rows = list(dump_rows(server, args.db, args.collection, notes))
        n = len(rows)
        print(json.dumps({"db": args.db, "collection": args.collection, "count": n, "notes": notes,
                          "rows": rows}, sort_keys=True, ensure_ascii=False))
    else:
        for row in dump_rows(server, args.db, args.collection, notes):
            sys.stdout.write(json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n")
            n += 1
    log(f"dumped {n} rows of {args.db}.{args.collection} in {time.monotonic() - t0:.1f}s")


# ------------------------------------------------------------------ bm25


def bm25_queries(count):
    """Fixed query texts (independent of --seed): 1-3 words of the body
    vocabulary, common and rare ones, plus a stop word and a miss."""
    r = random.Random(20240523)
    out = ["the " + VOCAB[0], "nothingmatchesthis"]
    while len(out) < count:
        text = " ".join(r.choices(VOCAB, weights=ZIPF, k=r.randint(1, 3)))
        if text not in out:
            out.append(text)
    return out[:count]


def bm25_top(client, name, text, k=TOP_K):
    """The top-k primary keys of one BM25 search, deterministic: hits with
    equal scores (rounded to 5 decimals) are ordered by primary key. The
    limit grows until the k-th score's tie group ends inside the answer."""
    limit = k * 2
    while True:
        res = retry("search", client.search, name, data=[text], anns_field="sparse", limit=limit,
                    search_params={"metric_type": "BM25"}, output_fields=[], timeout=TIMEOUT)
        hits = [(round(float(h["distance"]), 5), h["id"]) for h in res[0]]
        if len(hits) < limit or len(hits) <= k or hits[k - 1][0] != hits[-1][0]:
            break
        limit *= 2
    # keep the server's order between score groups (Lite answers -score,
    # ascending; Milvus +score, descending), the pk order inside a group
    group, last, keyed = -1, None, []
    for score, pk in hits:
        if score != last:
            group, last = group + 1, score
        keyed.append((group, pk))
    return [pk for _, pk in sorted(keyed)[:k]]


def cmd_bm25(args):
    server = Server(args.host, args.port)
    c = server.client(args.db)
    # Lite scores BM25 per segment: flush so that all rows are in segments
    retry("flush", c.flush, args.collection, timeout=TIMEOUT)
    with collection_lock(server, args.db, args.collection):
        loaded_here = ensure_loaded(c, args.collection)
        try:
            out = [bm25_top(c, args.collection, q) for q in bm25_queries(args.queries)]
        finally:
            if loaded_here:
                c.release_collection(args.collection, timeout=TIMEOUT)
    print(json.dumps(out))


def cmd_drop(args):
    server = Server(args.host, args.port)
    print(json.dumps({"dropped": drop_prefixed(server, args.prefix)}))


# ------------------------------------------------------------------ main


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp, db=True):
        sp.add_argument("--host", default=os.environ.get("MBT_HOST", "127.0.0.1"))
        sp.add_argument("--port", type=int, required=True)
        if db:
            sp.add_argument("--db", default="default")

    g = sub.add_parser("generate")
    common(g)
    g.add_argument("--prefix", default="gen_")
    g.add_argument("--rows", type=int, default=2000)
    g.add_argument("--seed", type=int, default=42)
    d = sub.add_parser("dump")
    common(d)
    d.add_argument("--collection", required=True)
    d.add_argument("--format", choices=["jsonl", "json"], default="jsonl")
    s = sub.add_parser("describe")
    common(s)
    s.add_argument("--collection", required=True)
    b = sub.add_parser("bm25")
    common(b)
    b.add_argument("--collection", required=True)
    b.add_argument("--queries", type=int, default=8)
    x = sub.add_parser("drop")
    common(x, db=False)
    x.add_argument("--prefix", default="gen_")
    args = p.parse_args(argv)
    if getattr(args, "prefix", None) is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args.prefix):
        p.error("--prefix must be letters, digits, underscores, not starting with a digit")
    if getattr(args, "rows", 1) < 1:
        p.error("--rows must be at least 1")
    if getattr(args, "queries", 1) < 1:
        p.error("--queries must be at least 1")
    {"generate": cmd_generate, "dump": cmd_dump, "describe": cmd_describe, "bm25": cmd_bm25,
     "drop": cmd_drop}[args.cmd](args)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:  # e.g. `dump ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
