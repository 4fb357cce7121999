#!/usr/bin/env python3
"""Files for the logical-backup tests, made and read by other tools
(run with venv-lite's python: pyarrow, pymilvus 3.0.2 with its bulk writer).

  inspect DIR
      Every .parquet file under DIR read with pyarrow: prints
      {"files": {path: {"rows": n, "columns": {name: arrow type}}}, "rows": total}.
  bulk-write SCHEMA_JSON DUMP_JSONL OUT_DIR parquet|json
      Writes the rows of DUMP_JSONL (gen_data.py dump output: one object per
      row, dynamic keys under "$meta") with pymilvus's LocalBulkWriter for the
      collection schema of an export's schema.json; prints the files written.
  corrupt GOOD_PARQUET OUT_PARQUET type|dim|missing COLUMN
      Copies a Parquet file with one column broken: `type` makes it a string
      column, `dim` adds one element to every vector (as a variable list),
      `missing` drops it.
"""
import glob
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq


def cmd_inspect(d):
    out, total = {}, 0
    for f in sorted(glob.glob(os.path.join(d, "**", "*.parquet"), recursive=True)):
        t = pq.read_table(f)
        out[os.path.relpath(f, d)] = {
            "rows": t.num_rows,
            "columns": {fld.name: str(fld.type) for fld in t.schema},
        }
        total += t.num_rows
    print(json.dumps({"files": out, "rows": total}, indent=1, sort_keys=True))


def cmd_bulk_write(schema_json, dump, out_dir, fmt):
    from pymilvus import CollectionSchema, DataType, FieldSchema
    from pymilvus.bulk_writer import BulkFileType, LocalBulkWriter

    meta = json.load(open(schema_json))["collection"]["schema"]
    fields = []
    for f in meta["fields"]:
        if f.get("is_dynamic"):
            continue
        params = {p["key"]: p["value"] for p in f.get("type_params") or []}
        kw = {}
        dt = DataType(f["data_type"])
        if "dim" in params:
            kw["dim"] = int(params["dim"])
        if "max_length" in params:
            kw["max_length"] = int(params["max_length"])
        if "max_capacity" in params:
            kw["max_capacity"] = int(params["max_capacity"])
        if dt == DataType.ARRAY:
            kw["element_type"] = DataType(f["element_type"])
            if kw["element_type"] == DataType.VARCHAR:
                kw.setdefault("max_length", 65535)
        fields.append(FieldSchema(f["name"], dt, is_primary=f.get("is_primary_key", False),
                                  auto_id=f.get("autoID", False), **kw))
    schema = CollectionSchema(fields, enable_dynamic_field=meta.get("enable_dynamic_field", False))
    file_type = BulkFileType.PARQUET if fmt == "parquet" else BulkFileType.JSON
    w = LocalBulkWriter(schema=schema, local_path=out_dir, file_type=file_type)
    with open(dump) as fh:
        for line in fh:
            row = json.loads(line)
            row.update(row.pop("$meta", None) or {})
            w.append_row(row)
    w.commit()
    print(json.dumps(w.batch_files))


def cmd_corrupt(good, out, kind, column):
    t = pq.read_table(good)
    i = t.schema.get_field_index(column)
    if kind == "missing":
        t = t.remove_column(i)
    elif kind == "type":
        t = t.set_column(i, column, pa.array([str(v) for v in t.column(i).to_pylist()]))
    elif kind == "dim":
        rows = [list(v) + [0.5] for v in t.column(i).to_pylist()]
        t = t.set_column(i, column, pa.array(rows, type=pa.list_(pa.float32())))
    else:
        sys.exit(f"unknown kind {kind}")
    pq.write_table(t, out)


def main(argv):
    cmd, args = argv[0], argv[1:]
    {"inspect": cmd_inspect, "bulk-write": cmd_bulk_write, "corrupt": cmd_corrupt}[cmd](*args)


if __name__ == "__main__":
    main(sys.argv[1:])
