"""Maintenance benchmark: the query benchmark's queries on a lake built by 100 incremental syncs,
before and after `tidemark maintain`, with DuckDB (delta extension) reading the same lake as the
reference, in one run.

    cargo build --release -p tidemark
    TIDEMARK_VENV=target/bench-venv TIDEMARK_REQUIREMENTS=bench/requirements.txt scripts/python-venv.sh
    target/bench-venv/bin/python bench/maintain_bench.py --accounts 100000 --out bench/results/maintain.json

The lake: Account and Contact of a simulated org, an initial Bulk sync, then `--rounds`
incremental syncs, each after a change round (1% of records updated, a few created and
deleted) an hour later on the org's clock. Each incremental sync adds a few small files to
each table. Then, on the same lake: every query `REPEAT` times (median) by Tidemark and by
DuckDB, `tidemark maintain` (timed, its report kept), and every query again. The answers
before and after must be identical.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess

from benchlib import Sim, machine, timed, write_config
from query_bench import REPEAT, duckdb_connection, duckdb_times, queries, tidemark_times

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def files_of(lake, table):
    folder = os.path.join(lake, table)
    paths = [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".parquet")]
    return len(paths), sum(os.path.getsize(p) for p in paths)


def referenced_files(binary, lake):
    """Data files each table's current version reads (the report's "files" after the arrow)."""
    out = subprocess.run([binary, "maintain", "--dry-run", "--lake", lake], capture_output=True, text=True, check=True).stdout
    return {line.split()[0]: int(line.split()[1]) for line in out.splitlines()[1:] if line.strip()}


def answers(binary, lake, sql):
    return subprocess.run([binary, "sql", "--lake", lake, "--format", "csv", sql], capture_output=True, text=True, check=True).stdout


def measure(binary, lake, as_of, one_id):
    con = duckdb_connection(binary, lake)
    out = {}
    for name, (tm_sql, duck_sql) in queries(as_of, one_id).items():
        tm, rows = tidemark_times(binary, lake, tm_sql)
        duck, _ = duckdb_times(con, duck_sql)
        out[name] = {"rows": rows, "tidemark_s": statistics.median(tm), "duckdb_s": statistics.median(duck),
                     "tidemark_runs": tm, "duckdb_runs": duck, "answer": answers(binary, lake, tm_sql)}
        print(f"  {name}: tidemark {out[name]['tidemark_s']:.3f}s, duckdb {out[name]['duckdb_s']:.3f}s", flush=True)
    con.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tidemark"))
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-maintain"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "maintain.json"))
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    env = dict(os.environ, RUST_LOG="warn")
    lake = os.path.join(args.work, "lake")
    cfg = os.path.join(args.work, "sync.yaml")
    results = {"benchmark": "maintain", "machine": machine(), "accounts": args.accounts, "rounds": args.rounds, "repeat": REPEAT}

    print(f"building the lake: a {args.accounts:,}-Account org, {args.rounds} incremental syncs…", flush=True)
    sim = Sim(args.bin, args.accounts, args.seed)
    try:
        write_config(cfg, sim, {"Account": "auto", "Contact": "auto"})
        sync = [args.bin, "sync", "--quiet", "--objects", "Account,Contact", "--config", cfg, "--lake", lake]
        secs, _, _ = timed(sync, env)
        print(f"  initial sync {secs:.1f}s", flush=True)
        as_of = sim.session.get(f"{sim.base}/__admin/clock").json()["now"]
        sync_seconds = []
        for round_no in range(1, args.rounds + 1):
            sim.admin("clock/advance", {"minutes": 60})
            sim.admin("changes", {"objects": ["Account", "Contact"], "updates": {"share": 0.01},
                                  "creates": 20, "deletes": 5, "seed": round_no})
            secs, _, _ = timed(sync, env)
            sync_seconds.append(secs)
        print(f"  {args.rounds} incremental syncs, median {statistics.median(sync_seconds):.2f}s each", flush=True)
    finally:
        sim.stop()
    results["incremental_sync_median_s"] = statistics.median(sync_seconds)
    one_id = answers(args.bin, lake, "SELECT min(id) AS id FROM account").splitlines()[1]

    results["before"] = {"referenced_files": referenced_files(args.bin, lake),
                         "account_files_on_disk": files_of(lake, "objects/account")}
    print("before maintenance:", flush=True)
    results["before"]["queries"] = measure(args.bin, lake, as_of, one_id)

    secs, rss, out = timed([args.bin, "maintain", "--lake", lake], env)
    results["maintain"] = {"seconds": secs, "peak_rss_mb": rss, "report": out}
    print(f"tidemark maintain: {secs:.1f}s, peak RSS {rss:.0f} MB\n{out}", flush=True)

    results["after"] = {"referenced_files": referenced_files(args.bin, lake),
                        "account_files_on_disk": files_of(lake, "objects/account")}
    print("after maintenance:", flush=True)
    results["after"]["queries"] = measure(args.bin, lake, as_of, one_id)
    for name, before in results["before"]["queries"].items():
        after = results["after"]["queries"][name]
        if before.pop("answer") != after.pop("answer"):
            raise SystemExit(f"{name}: the answer changed with compaction")
        after["speedup"] = before["tidemark_s"] / after["tidemark_s"]
        after["duckdb_speedup"] = before["duckdb_s"] / after["duckdb_s"]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps({k: v for k, v in results.items() if k not in ("before", "after")}, indent=2))


if __name__ == "__main__":
    main()
