"""Query benchmark: Tidemark (DataFusion) beside DuckDB over the same Delta tables, in one run.

    cargo build --release -p tidemark
    TIDEMARK_VENV=target/bench-venv TIDEMARK_REQUIREMENTS=bench/requirements.txt scripts/python-venv.sh
    target/bench-venv/bin/python bench/query_bench.py --accounts 1000000 --out bench/results/query.json

The lake: a simulated org's Account (1,000,000 Ids, three versions each: the initial sync and
two rounds updating every Account, a month apart on the org clock) and Contact (1.25 versions per Account, one version each),
synced by `tidemark sync`. DuckDB reads the same tables through the views `tidemark catalog ddl
--engine duckdb` prints, with its delta extension loaded from the pip package.

Each query runs REPEAT times in each engine; the median is reported. Tidemark's figure is the
time `tidemark sql --timing` reports per statement (planning, opening the table, execution, and
writing CSV to /dev/null), DuckDB's the time its Python API takes to run the statement and fetch
every row. Both engines use the machine's cores (DataFusion's target partitions, DuckDB's
threads default to the core count).
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import time

from benchlib import Sim, timed, write_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPEAT = 5


def queries(as_of, one_id):
    """Name → (Tidemark SQL, DuckDB SQL). The DuckDB views come from `catalog ddl`."""
    live_count = "SELECT industry, count(*) AS n FROM account GROUP BY industry ORDER BY industry"
    scd2 = f"SELECT * FROM account_scd2 WHERE id = '{one_id}' ORDER BY valid_from"
    join = ("SELECT a.industry, count(*) AS contacts FROM contact c JOIN account a ON c.accountid = a.id "
            "GROUP BY a.industry ORDER BY a.industry")
    as_of_tm = f"SELECT count(*) AS n FROM as_of('account', TIMESTAMP '{as_of}')"
    as_of_duck = (f"SELECT count(*) AS n FROM (SELECT _deleted FROM account_history WHERE _version_at <= TIMESTAMPTZ '{as_of}' "
                  "QUALIFY row_number() OVER (PARTITION BY id ORDER BY _version_at DESC, _ingested_at DESC, _deleted DESC) = 1) "
                  "WHERE NOT _deleted")
    return {
        "live_count_by_picklist": (live_count, live_count),
        "as_of_count": (as_of_tm, as_of_duck),
        "scd2_one_id": (scd2, scd2),
        "join_two_objects": (join, join),
    }


def tidemark_times(binary, lake, sql):
    """Runs sql REPEAT times in one `tidemark sql` process; returns (seconds per run, rows)."""
    script = ";\n".join([sql] * REPEAT) + ";\n"
    out = subprocess.run([binary, "sql", "--lake", lake, "--timing", "--format", "csv"], input=script,
                         capture_output=True, text=True, check=True)
    times = [float(t) for t in re.findall(r"Time: ([0-9.]+) s", out.stderr)]
    rows = (len(out.stdout.strip().splitlines()) - REPEAT) // REPEAT  # minus one header per run
    return times, rows


def duckdb_connection(binary, lake):
    import duckdb
    import duckdb_extension_delta
    ext = os.path.join(os.path.dirname(duckdb_extension_delta.__file__), "extensions", f"v{duckdb.__version__}", "delta.duckdb_extension")
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions=false")
    con.execute(f"LOAD '{ext}'")
    ddl = subprocess.run([binary, "catalog", "ddl", "--engine", "duckdb", "--lake", lake], capture_output=True, text=True, check=True).stdout
    # The extension is loaded from the wheel above; the DDL's own INSTALL/LOAD need the internet.
    ddl = "\n".join(line for line in ddl.splitlines() if not re.match(r"\s*(INSTALL|LOAD)\b", line, re.I))
    con.execute(ddl)
    return con


def duckdb_times(con, sql):
    times, rows = [], 0
    for _ in range(REPEAT):
        started = time.perf_counter()
        rows = len(con.execute(sql).fetchall())
        times.append(time.perf_counter() - started)
    return times, rows


def build_lake(args, sim, env):
    cfg = os.path.join(args.work, "sync.yaml")
    write_config(cfg, sim, {"Account": "bulk", "Contact": "bulk"})
    lake = os.path.join(args.work, "lake")
    sync = [args.bin, "sync", "--quiet", "--objects", "Account,Contact", "--config", cfg, "--lake", lake]
    secs, _, _ = timed(sync, env)
    print(f"  initial sync {secs:.1f}s", flush=True)
    as_of = sim.session.get(f"{sim.base}/__admin/clock").json()["now"]
    for round_no in (1, 2):
        # A month apart, so the versions span three months (the layout benchmark partitions by month).
        sim.admin("clock/advance", {"minutes": 30 * 24 * 60})
        sim.admin("changes", {"objects": ["Account"], "updates": {"share": 1.0}, "seed": round_no})
        secs, _, _ = timed(sync, env)
        print(f"  change round {round_no} (every Account updated) synced in {secs:.1f}s", flush=True)
    return lake, as_of


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tidemark"))
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-query"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "query.json"))
    ap.add_argument("--reuse-lake", action="store_true", help="query the lake an earlier run built in --work")
    args = ap.parse_args()
    env = dict(os.environ, RUST_LOG="warn")
    instant_file = os.path.join(args.work, "as_of.txt")
    if args.reuse_lake:
        lake = os.path.join(args.work, "lake")
        with open(instant_file) as f:
            as_of = f.read().strip()
    else:
        shutil.rmtree(args.work, ignore_errors=True)
        os.makedirs(args.work)
        print(f"building the lake from a {args.accounts:,}-Account org…", flush=True)
        sim = Sim(args.bin, args.accounts, args.seed)
        try:
            lake, as_of = build_lake(args, sim, env)
        finally:
            sim.stop()
        with open(instant_file, "w") as f:
            f.write(as_of)

    one_id = subprocess.run([args.bin, "sql", "--lake", lake, "--format", "csv", "SELECT min(id) AS id FROM account"],
                            capture_output=True, text=True, check=True).stdout.splitlines()[1]
    counts = subprocess.run([args.bin, "sql", "--lake", lake, "--format", "csv",
                             "SELECT (SELECT count(*) FROM account_history) AS versions, (SELECT count(*) FROM account) AS live"],
                            capture_output=True, text=True, check=True).stdout.splitlines()[1]
    con = duckdb_connection(args.bin, lake)
    results = {"benchmark": "query", "accounts": args.accounts, "repeat": REPEAT, "account_versions_and_live": counts,
               "as_of": as_of, "one_id": one_id, "queries": {}}
    for name, (tm_sql, duck_sql) in queries(as_of, one_id).items():
        tm, tm_rows = tidemark_times(args.bin, lake, tm_sql)
        duck, duck_rows = duckdb_times(con, duck_sql)
        if tm_rows != duck_rows:
            raise SystemExit(f"{name}: Tidemark returned {tm_rows} rows, DuckDB {duck_rows}")
        entry = {"rows": tm_rows, "tidemark_s": statistics.median(tm), "duckdb_s": statistics.median(duck),
                 "tidemark_runs": tm, "duckdb_runs": duck}
        entry["ratio"] = entry["tidemark_s"] / entry["duckdb_s"]
        results["queries"][name] = entry
        print(f"{name}: tidemark {entry['tidemark_s']:.3f}s, duckdb {entry['duckdb_s']:.3f}s, ratio {entry['ratio']:.2f} ({tm_rows} rows)", flush=True)
    results["target_ratio_max"] = 1.5
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
