#!/usr/bin/env python3
"""Is an export directory readable by other tools, with no arguments?
(venv-lite's python: pandas, pyarrow, duckdb, geopandas.)

  interop.py DIR
      Reads DIR with each tool as a user would and prints one JSON object:
        {"pandas": {"rows": n, "dtypes": {column: dtype}},
         "pyarrow_dataset": {"rows": n},
         "duckdb": {"rows": n},
         "geometry": {"column": c, "reader": "geopandas", "geom_types": [...], "rows": n},
         "rows": {"pandas": n, "pyarrow_dataset": n, "duckdb": n, "schema": n}}
      plus "columns": {"error": ...} when the readers see different columns.
      Each entry is {"error": "..."} instead when that reader fails. Exits 1
      if any does, with one line per failure on stderr: `interop: READER: message`.
  interop.py --make-sample DIR [--schema-name NAME] [--partition-dir NAME]
             [--no-geo-metadata]
      Writes a sample export with pyarrow in the layout of the Rust tool's
      logical export: DIR/NAME (default _schema.json) and Parquet files under
      DIR/PARTITION-DIR (default `all`), with a GeoParquet WKB column (its
      `geo` metadata left out with --no-geo-metadata).

The readers:
  pandas           pandas.read_parquet(DIR)
  pyarrow_dataset  pyarrow.dataset.dataset(DIR).to_table()
  duckdb           SELECT count(*) FROM read_parquet('DIR/**/*.parquet') (and
                   the column types DuckDB sees)
  geometry         geopandas.read_parquet(DIR): only when a file has GeoParquet
                   metadata (the `geo` key) or the schema file names a GEOMETRY
                   field (then missing metadata is an error). DuckDB's spatial
                   extension would be downloaded at run time, which cannot work
                   offline, so GeoPandas (shapely, pyproj from PyPI) checks it.
  rows             the readers must agree with each other and with the schema
                   file's `rows` (when it has one): pandas and pyarrow skip
                   every file *and directory* whose name starts with `_` or
                   `.`, so a partition directory `_default` is silently
                   unread by them, and DuckDB's glob does read it.
  columns          the readers must see the same columns: a directory named
                   `key=value` adds a column `key` in pandas and DuckDB (hive
                   partitioning), not in pyarrow.dataset.

pandas and pyarrow also try to read every other file under DIR as Parquet:
a schema file named `schema.json` makes both fail ("Could not open Parquet
input source ... Parquet magic bytes not found"); `_schema.json` is skipped.
"""
import argparse
import glob
import json
import os
import sys

GEO_META_KEY = b"geo"
GEOMETRY_TYPE_NAMES = {"geometry", "24"}  # schema_pb2.DataType Geometry = 24


def short(e):
    text = f"{type(e).__name__}: {e}"
    return " ".join(text.split())[:500]


def schema_file(d):
    """The export's schema file (_schema.json, else schema.json), parsed; None if absent."""
    for name in ("_schema.json", "schema.json"):
        p = os.path.join(d, name)
        if os.path.isfile(p):
            with open(p) as fh:
                return json.load(fh)
    return None


def geometry_fields(meta):
    """Names of GEOMETRY fields in a schema file: any object with a `name`
    and a `data_type` (or `type`) that is 24 or "Geometry"."""
    out = []

    def walk(v):
        if isinstance(v, dict):
            t = v.get("data_type", v.get("type"))
            if "name" in v and t is not None and str(t).lower() in GEOMETRY_TYPE_NAMES:
                out.append(v["name"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(meta)
    return sorted(set(out))


def parquet_files(d):
    return sorted(glob.glob(os.path.join(d, "**", "*.parquet"), recursive=True))


def geo_metadata(files):
    """(file, decoded `geo` metadata) of the first Parquet file that has it."""
    import pyarrow.parquet as pq

    for f in files:
        md = pq.read_schema(f).metadata or {}
        if GEO_META_KEY in md:
            return f, json.loads(md[GEO_META_KEY])
    return None, None


def check_pandas(d):
    import pandas as pd

    df = pd.read_parquet(d)
    return {"rows": len(df), "dtypes": {str(c): str(t) for c, t in df.dtypes.items()}}


def check_pyarrow(d):
    import pyarrow.dataset as ds

    t = ds.dataset(d).to_table()
    return {"rows": t.num_rows, "columns": t.schema.names}


def check_duckdb(d):
    import duckdb

    con = duckdb.connect()
    try:
        # Never fetch an extension from the network (offline here). DuckDB
        # 2.0 needs none for GeoParquet: it reads a WKB column with `geo`
        # metadata as its core type GEOMETRY('OGC:CRS84').
        con.execute("SET autoinstall_known_extensions = false")
        pattern = os.path.join(d, "**", "*.parquet").replace("'", "''")
        source = f"read_parquet('{pattern}')"
        (n,) = con.execute(f"SELECT count(*) FROM {source}").fetchone()
        types = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        return {"rows": n, "types": types}
    finally:
        con.close()


def check_geometry(d, files, meta):
    """GeoPandas on DIR, when there is geometry to check; None when not."""
    path, geo = geo_metadata(files)
    declared = geometry_fields(meta) if meta is not None else []
    if geo is None:
        if declared:
            raise ValueError(f"GEOMETRY field(s) {declared} in the schema file, but no Parquet file "
                             f"has GeoParquet metadata (key 'geo')")
        return None
    import geopandas

    column = geo.get("primary_column")
    gdf = geopandas.read_parquet(d)
    if gdf.geometry.name != column:
        raise ValueError(f"geopandas took {gdf.geometry.name!r} as geometry, the metadata says {column!r}")
    types = sorted({t for t in gdf.geometry.geom_type.dropna().unique()})
    return {"column": column, "reader": "geopandas", "geom_types": types, "rows": len(gdf),
            "nulls": int(gdf.geometry.isna().sum()), "encoding": geo["columns"][column].get("encoding"),
            "version": geo.get("version"), "file": os.path.relpath(path, d)}


def check(d):
    out, failures = {}, []
    meta = None
    try:
        meta = schema_file(d)
    except Exception as e:  # noqa: BLE001
        failures.append(("schema", short(e)))
    files = parquet_files(d)
    for key, fn in (("pandas", check_pandas), ("pyarrow_dataset", check_pyarrow), ("duckdb", check_duckdb)):
        try:
            out[key] = fn(d)
        except Exception as e:  # noqa: BLE001
            out[key] = {"error": short(e)}
            failures.append((key, out[key]["error"]))
    try:
        geo = check_geometry(d, files, meta)
        out["geometry"] = geo if geo is not None else {"skipped": "no GeoParquet metadata, no GEOMETRY field"}
    except Exception as e:  # noqa: BLE001
        out["geometry"] = {"error": short(e)}
        failures.append(("geometry", out["geometry"]["error"]))
    counts = {k: out[k]["rows"] for k in ("pandas", "pyarrow_dataset", "duckdb") if "rows" in out[k]}
    if isinstance(meta, dict) and isinstance(meta.get("rows"), int):
        counts["schema"] = meta["rows"]
    if len(set(counts.values())) > 1:
        out["rows"] = {"error": "readers disagree: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
                       "counts": counts}
        failures.append(("rows", out["rows"]["error"]))
    else:
        out["rows"] = counts
    # a directory named key=value adds a column (hive partitioning) in
    # pandas and DuckDB, not in pyarrow.dataset's default
    columns = {"pandas": out["pandas"].get("dtypes"), "pyarrow_dataset": out["pyarrow_dataset"].get("columns"),
               "duckdb": out["duckdb"].get("types")}
    columns = {k: set(v) for k, v in columns.items() if v is not None and out[k]["rows"] > 0}
    if len({frozenset(v) for v in columns.values()}) > 1:
        common = set.intersection(*columns.values())
        extra = {k: sorted(v - common) for k, v in columns.items()}
        out["columns"] = {"error": f"readers see different columns; beyond the common ones: {extra}"}
        failures.append(("columns", out["columns"]["error"]))
    return out, failures


# ------------------------------------------------------------------ sample


def make_sample(d, schema_name, partition_dir, geo_metadata=True):
    """Two Parquet files (5 + 4 rows) of a modern collection's columns and a
    schema file listing them, as the Rust logical export lays them out."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import shapely

    geo_meta = {"version": "1.1.0", "primary_column": "geo",
                "columns": {"geo": {"encoding": "WKB", "geometry_types": []}}}
    wkt = ["POINT (1 2)", "POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0))", None, "POINT (-71.06 42.36)",
           "POLYGON ((10 10, 12 10, 11 12, 10 10))", "POINT (0 0)", None, "POINT (180 -90)",
           "POLYGON ((0 0, 5 0, 5 5, 0 0))"]

    def table(lo, hi):
        n = hi - lo
        ids = list(range(lo, hi))
        geo = [None if w is None else shapely.to_wkb(shapely.from_wkt(w)) for w in wkt[lo:hi]]
        cols = {
            "id": pa.array(ids, pa.int64()),
            "n_int32": pa.array([None if i % 3 == 0 else i * 10 for i in ids], pa.int32()),
            "n_varchar": pa.array([None if i % 3 == 1 else f"row {i}" for i in ids], pa.string()),
            "ts": pa.array([None if i % 4 == 0 else 1_700_000_000_000_000 + i for i in ids],
                           pa.timestamp("us", tz="UTC")),
            "a_int64": pa.array([None if i % 4 == 1 else list(range(i % 3)) for i in ids], pa.list_(pa.int64())),
            "j": pa.array([None if i % 3 == 2 else json.dumps({"i": i, "n": {"x": [1, None]}}) for i in ids],
                          pa.string()),
            "vec": pa.array([[float(i)] * 4 for i in ids], pa.list_(pa.float32(), 4)),
            "usparse": pa.array([[(i, 0.5), (i + 100, 1.5)] for i in ids], pa.map_(pa.uint32(), pa.float32())),
            "geo": pa.array(geo, pa.binary()),
            "$meta": pa.array([json.dumps({"dyn": i}) for i in ids], pa.string()),
        }
        assert all(len(c) == n for c in cols.values())
        t = pa.table(cols)
        if not geo_metadata:
            return t
        return t.replace_schema_metadata({GEO_META_KEY: json.dumps(geo_meta).encode()})

    os.makedirs(os.path.join(d, partition_dir), exist_ok=True)
    files = []
    for k, (lo, hi) in enumerate([(0, 5), (5, 9)]):
        rel = os.path.join(partition_dir, f"part-000-{k:05d}.parquet")
        pq.write_table(table(lo, hi), os.path.join(d, rel))
        files.append({"path": rel, "partition": "", "rows": hi - lo})
    meta = {"format_version": 1, "format": "parquet", "rows": 9, "files": files,
            "collection": {"schema": {"fields": [
                {"name": "id", "data_type": 5, "is_primary_key": True},
                {"name": "geo", "data_type": 24, "nullable": True}]}}}
    with open(os.path.join(d, schema_name), "w") as fh:
        json.dump(meta, fh, indent=1)
    return {"dir": d, "schema": schema_name, "files": [f["path"] for f in files]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("dir")
    p.add_argument("--make-sample", action="store_true", help="write a sample export into DIR")
    p.add_argument("--schema-name", default="_schema.json")
    p.add_argument("--partition-dir", default="all")
    p.add_argument("--no-geo-metadata", action="store_true")
    args = p.parse_args(argv)
    if args.make_sample:
        print(json.dumps(make_sample(args.dir, args.schema_name, args.partition_dir,
                                           geo_metadata=not args.no_geo_metadata)))
        return 0
    if not os.path.isdir(args.dir):
        p.error(f"{args.dir}: not a directory")
    out, failures = check(args.dir)
    print(json.dumps(out, indent=2, sort_keys=True))
    for reader, message in failures:
        print(f"interop: {reader}: {message}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
