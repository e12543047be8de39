"""Sync benchmark: Tidemark syncing a simulated 1,000,000-Account org, beside DuckDB turning the
same records (as CSV on local disk) into a Delta table, measured in one run.

    cargo build --release -p tidemark
    TIDEMARK_VENV=target/bench-venv TIDEMARK_REQUIREMENTS=bench/requirements.txt scripts/python-venv.sh
    target/bench-venv/bin/python bench/sync_bench.py --accounts 1000000 --out bench/results/sync.json

Measures (each `tidemark sync` is its own process, so its peak RSS is the sync's alone):
- Bulk path: initial sync of Account through Bulk API 2.0 into a fresh lake;
- REST path: the same through REST query pages;
- 1% change round: updates to 1% of Accounts, then an incremental sync;
- reference: the same Account records fetched as one CSV file, then DuckDB reads the CSV and
  delta-rs writes the Delta table (DuckDB cannot create Delta tables itself).
"""

import argparse
import json
import os
import shutil
import time

from benchlib import Sim, timed, versions_written, write_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def account_soql(sim, headers):
    """The SELECT Tidemark issues for Account: every field but compounds and base64."""
    d = sim.session.get(f"{sim.base}/services/data/v66.0/sobjects/Account/describe", headers=headers).json()
    skip = {"address", "location", "base64"}
    names = [f["name"] for f in d["fields"] if f["type"] not in skip]
    names.sort(key=lambda n: n != "Id")
    return "SELECT " + ", ".join(names) + " FROM Account"


def fetch_csv(sim, path):
    """Downloads Account through a Bulk 2.0 query into one CSV file (one header row)."""
    headers = {"Authorization": f"Bearer {sim.token()}"}
    api = f"{sim.base}/services/data/v66.0/jobs/query"
    job = sim.session.post(api, headers=headers, json={"operation": "query", "query": account_soql(sim, headers)}).json()
    while sim.session.get(f"{api}/{job['id']}", headers=headers).json()["state"] != "JobComplete":
        time.sleep(0.2)  # polling a remote job, as any Bulk client does
    locator, first, rows = None, True, 0
    with open(path, "wb") as out:
        while True:
            params = {"maxRecords": 100000}
            if locator:
                params["locator"] = locator
            r = sim.session.get(f"{api}/{job['id']}/results", headers=headers, params=params)
            body = r.content
            if not first:
                body = body[body.index(b"\n") + 1:]
            out.write(body)
            first = False
            rows += int(r.headers["Sforce-NumberOfRecords"])
            locator = r.headers.get("Sforce-Locator")
            if not locator or locator == "null":
                return rows


def duckdb_csv_to_delta(csv_path, table_path):
    """DuckDB reads the CSV; delta-rs writes the Delta table (zstd, as Tidemark does)."""
    import duckdb
    from deltalake import WriterProperties, write_deltalake
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    started = time.monotonic()
    reader = con.sql(f"SELECT * FROM read_csv('{csv_path}', header=true)").to_arrow_reader(batch_size=122_880)
    write_deltalake(table_path, reader, writer_properties=WriterProperties(compression="ZSTD"))
    return time.monotonic() - started


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tidemark"))
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-sync"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "sync.json"))
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    env = dict(os.environ, RUST_LOG="warn")

    print(f"generating a {args.accounts:,}-Account org…", flush=True)
    started = time.monotonic()
    sim = Sim(args.bin, args.accounts, args.seed)
    print(f"  ready in {time.monotonic() - started:.1f}s", flush=True)
    results = {"benchmark": "sync", "accounts": args.accounts}
    try:
        bulk_cfg, rest_cfg = os.path.join(args.work, "bulk.yaml"), os.path.join(args.work, "rest.yaml")
        write_config(bulk_cfg, sim, {"Account": "bulk"})
        write_config(rest_cfg, sim, {"Account": "rest"})
        bulk_lake, rest_lake = os.path.join(args.work, "lake-bulk"), os.path.join(args.work, "lake-rest")

        secs, rss, out = timed([args.bin, "sync", "--quiet", "--objects", "Account", "--config", bulk_cfg, "--lake", bulk_lake], env)
        n = versions_written(out)
        results["bulk"] = {"records": n, "seconds": secs, "records_per_s": n / secs, "peak_rss_mb": rss}
        print(f"bulk: {n:,} records in {secs:.1f}s ({n / secs:,.0f}/s), peak RSS {rss:.0f} MB", flush=True)

        secs, rss, out = timed([args.bin, "sync", "--quiet", "--objects", "Account", "--config", rest_cfg, "--lake", rest_lake], env)
        n = versions_written(out)
        results["rest"] = {"records": n, "seconds": secs, "records_per_s": n / secs, "peak_rss_mb": rss}
        print(f"rest: {n:,} records in {secs:.1f}s ({n / secs:,.0f}/s), peak RSS {rss:.0f} MB", flush=True)

        sim.admin("clock/advance", {"minutes": 10})
        changed = sim.admin("changes", {"objects": ["Account"], "updates": {"share": 0.01}, "seed": 7})
        secs, rss, out = timed([args.bin, "sync", "--quiet", "--objects", "Account", "--config", bulk_cfg, "--lake", bulk_lake], env)
        n = versions_written(out)
        results["change_round_1pct"] = {"updated": len(changed["updated"]), "versions": n, "seconds": secs, "peak_rss_mb": rss}
        print(f"1% change round: {n:,} versions in {secs:.2f}s", flush=True)

        # Live state is computed on read: `status` counts versions and live records (a window
        # over every version) — the cost a reader pays instead of a materialised live table.
        secs, rss, out = timed([args.bin, "status", "--lake", bulk_lake], env)
        results["status_live_on_read"] = {"seconds": secs, "peak_rss_mb": rss, "output": out.strip().splitlines()[-1]}
        print(f"status (versions + live count on read): {secs:.2f}s", flush=True)

        csv_path = os.path.join(args.work, "account.csv")
        rows = fetch_csv(sim, csv_path)
        secs = duckdb_csv_to_delta(csv_path, os.path.join(args.work, "duckdb-delta"))
        results["duckdb_csv_to_delta"] = {"records": rows, "csv_bytes": os.path.getsize(csv_path), "seconds": secs, "records_per_s": rows / secs}
        print(f"duckdb CSV → Delta: {rows:,} records ({os.path.getsize(csv_path) / 1e6:.0f} MB) in {secs:.1f}s", flush=True)
        results["bulk_vs_duckdb"] = results["bulk"]["seconds"] / secs
        results["targets"] = {"bulk_vs_duckdb_max": 1.5, "rest_records_per_s_min": 50000, "change_round_seconds_max": 2, "peak_rss_mb_max": 500}
    finally:
        sim.stop()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
