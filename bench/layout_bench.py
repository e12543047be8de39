"""Layout benchmark: how the history table's physical layout changes the query benchmark's
queries, to choose partitioning or clustering by measurement.

    target/bench-venv/bin/python bench/query_bench.py --accounts 1000000   # builds the lake
    target/bench-venv/bin/python bench/layout_bench.py --out bench/results/layout.json

It takes the Account table of the query benchmark's lake (1,000,000 Ids, three versions each,
written a month apart on the org clock) and runs the same queries through `tidemark sql` over
three layouts of the same rows:
- appended: the table as `tidemark sync` writes it (unpartitioned, appended in time order);
- month_partitioned: rewritten with delta-rs, partitioned by the month of `_version_at`;
- id_clustered: the appended table after delta-rs `OPTIMIZE ZORDER BY (Id)` (files sorted by Id).
For the rewrites it also reports how long the rewrite took and how many files each layout has.

It also measures the alternative to computing live state on read: a materialised live table
(each Id's latest version, written once with delta-rs), the live count over it, and what keeping
it current costs per sync: a delta-rs MERGE of 10,000 changed records (a 1% change round).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable, WriterProperties, write_deltalake

from query_bench import ROOT, queries, tidemark_times


def variant_lake(base_lake, work, name):
    """A lake that shares every table of base_lake but Account, which the caller writes."""
    lake = os.path.join(work, name)
    shutil.rmtree(lake, ignore_errors=True)
    os.makedirs(os.path.join(lake, "objects"))
    for entry in os.listdir(os.path.join(base_lake, "objects")):
        if entry != "account":
            os.symlink(os.path.join(base_lake, "objects", entry), os.path.join(lake, "objects", entry))
    os.symlink(os.path.join(base_lake, "_tidemark"), os.path.join(lake, "_tidemark"))
    return lake, os.path.join(lake, "objects", "account")


def month_partitioned(base_lake, work):
    lake, table = variant_lake(base_lake, work, "month_partitioned")
    started = time.monotonic()
    source = DeltaTable(os.path.join(base_lake, "objects", "account")).to_pyarrow_dataset()
    month = lambda batch: pc.strftime(batch.column("_version_at"), format="%Y-%m")
    schema = source.schema.append(pa.field("_version_month", pa.string()))
    batches = (pa.RecordBatch.from_arrays([*b.columns, month(b)], schema=schema) for b in source.to_batches(batch_size=65_536))
    reader = pa.RecordBatchReader.from_batches(schema, batches)
    write_deltalake(table, reader, partition_by=["_version_month"], writer_properties=WriterProperties(compression="ZSTD"))
    return lake, time.monotonic() - started


def id_clustered(base_lake, work):
    lake, table = variant_lake(base_lake, work, "id_clustered")
    shutil.copytree(os.path.join(base_lake, "objects", "account"), table)
    started = time.monotonic()
    DeltaTable(table).optimize.z_order(["Id"], writer_properties=WriterProperties(compression="ZSTD"))
    return lake, time.monotonic() - started


def materialised_live(binary, base_lake, work):
    """Writes the live relation as its own table; returns its lake, query and upkeep figures."""
    lake, _ = variant_lake(base_lake, work, "materialised_live")
    live_parquet = os.path.join(work, "live.parquet")
    started = time.monotonic()
    subprocess.run([binary, "sql", "--lake", base_lake, "--format", "parquet", "--out", live_parquet, "SELECT * FROM account"], check=True)
    table = os.path.join(lake, "objects", "account_live")
    write_deltalake(table, pq.read_table(live_parquet), writer_properties=WriterProperties(compression="ZSTD"))
    build_s = time.monotonic() - started
    # A 1% change round: 10,000 records with a new value, merged by Id.
    changes = pq.read_table(live_parquet).slice(0, 10_000)
    changes = changes.set_column(changes.schema.get_field_index("industry"), "industry", pa.array(["Changed"] * changes.num_rows))
    started = time.monotonic()
    (DeltaTable(table).merge(source=changes, predicate="t.id = s.id", source_alias="s", target_alias="t")
        .when_matched_update_all().when_not_matched_insert_all().execute())
    merge_s = time.monotonic() - started
    sql = "SELECT industry, count(*) AS n FROM account_live_history GROUP BY industry ORDER BY industry"
    times, rows = tidemark_times(binary, lake, sql)
    return {"build_s": build_s, "merge_10k_s": merge_s, "live_count_s": statistics.median(times), "runs": times, "rows": rows}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tidemark"))
    ap.add_argument("--lake", default=os.path.join(ROOT, "target", "bench-query", "lake"))
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-layout"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "layout.json"))
    args = ap.parse_args()
    with open(os.path.join(ROOT, "bench", "results", "query.json")) as f:
        query_run = json.load(f)
    os.makedirs(args.work, exist_ok=True)

    layouts = {"appended": (args.lake, 0.0)}
    for name, build in [("month_partitioned", month_partitioned), ("id_clustered", id_clustered)]:
        print(f"writing {name}…", flush=True)
        layouts[name] = build(args.lake, args.work)

    results = {"benchmark": "layout", "as_of": query_run["as_of"], "layouts": {}}
    for name, (lake, rewrite_s) in layouts.items():
        table = DeltaTable(os.path.join(lake, "objects", "account"))
        entry = {"rewrite_s": rewrite_s, "files": len(table.file_uris()), "queries": {}}
        for query, (sql, _) in queries(query_run["as_of"], query_run["one_id"]).items():
            times, rows = tidemark_times(args.bin, lake, sql)
            entry["queries"][query] = {"seconds": statistics.median(times), "runs": times, "rows": rows}
            print(f"{name:18} {query:24} {statistics.median(times):.3f}s ({rows} rows)", flush=True)
        results["layouts"][name] = entry
    print("materialising the live table…", flush=True)
    results["materialised_live"] = materialised_live(args.bin, args.lake, args.work)
    print(json.dumps(results["materialised_live"]), flush=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
