"""Push benchmark: `tidemark push` beside DuckDB and simple-salesforce, measured in one run.

    cargo build --release -p tidemark
    TIDEMARK_VENV=target/bench-venv TIDEMARK_REQUIREMENTS=bench/requirements.txt scripts/python-venv.sh
    target/bench-venv/bin/python bench/push_bench.py --rows 1000000 --out bench/results/push.json

The data (seeded `random.Random`): `--rows` invoices (invoice number, name, amount, tax rate,
date, paid, status, line count, notes), written as a Delta table the flow's query reads
(`<lake>/marts/bench_invoices`, written with the `deltalake` package) and, the same Arrow table,
as a Parquet file for DuckDB. The flow upserts them into the simulator's `Invoice__c` by
`Invoice_Number__c`. Steps:

1. The first run sends every row (the flow's snapshot is then the first version): reported.
2. (a) 5% of the rows change (amount and status). `tidemark push --dry-run` diffs the new result
   against the snapshot and sends nothing; beside it DuckDB counts
   `SELECT * FROM v2 EXCEPT SELECT * FROM v1` over the two versions' Parquet files. Each is its
   own process under /usr/bin/time -v (seconds, peak RSS), three times; medians. The two must
   find the same number of changed rows.
3. (b) 100,000 further rows change. `tidemark push` runs end to end (query, diff, Bulk API 2.0
   upsert jobs, results read back, snapshot committed); beside it simple-salesforce upserts
   100,000 changed rows of the same shape as CSV through `sf.bulk2.Invoice__c.upsert` (its
   process: reading the CSV, the job, waiting for it). Records per second of both; the org's
   truth is checked for the changed values after each.

`python bench/push_bench.py --duckdb-except V2 V1` is the DuckDB process itself;
`--sf-upsert CSV` the simple-salesforce one.
"""

import argparse
import datetime
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time

from benchlib import Sim, timed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATUSES = ["Draft", "Sent", "Paid", "Overdue", "Void"]
WORDS = ("net thirty due on receipt partial payment disputed line items reviewed by finance "
         "credit applied late fee waived annual contract renewal quarterly").split()


def invoices(rows, seed):
    """The first version of the invoices, as Python columns."""
    rng = random.Random(seed)
    base = datetime.date(2024, 1, 1)
    cols = {
        "invoice_number__c": [f"INV-{i:07d}" for i in range(rows)],
        "name": [f"Invoice {i}" for i in range(rows)],
        "amount__c": [round(rng.uniform(10, 50_000), 2) for _ in range(rows)],
        "tax_rate__c": [rng.choice([0.0, 5.0, 7.5, 10.0, 20.0]) for _ in range(rows)],
        "invoice_date__c": [base + datetime.timedelta(days=rng.randrange(700)) for _ in range(rows)],
        "paid__c": [rng.random() < 0.6 for _ in range(rows)],
        "status__c": [rng.choice(STATUSES) for _ in range(rows)],
        "line_count__c": [rng.randrange(1, 40) for _ in range(rows)],
        "notes__c": [" ".join(rng.choice(WORDS) for _ in range(6)) for _ in range(rows)],
    }
    return cols


def change(cols, count, seed):
    """Changes `count` distinct rows' amount and status; returns their indices."""
    rng = random.Random(seed)
    picked = rng.sample(range(len(cols["name"])), count)
    for i in picked:
        cols["amount__c"][i] = round(cols["amount__c"][i] + rng.uniform(1, 500), 2)
        cols["status__c"][i] = STATUSES[(STATUSES.index(cols["status__c"][i]) + 1) % len(STATUSES)]
    return picked


def arrow_table(cols):
    import pyarrow as pa
    return pa.table({
        "invoice_number__c": pa.array(cols["invoice_number__c"], pa.string()),
        "name": pa.array(cols["name"], pa.string()),
        "amount__c": pa.array(cols["amount__c"], pa.float64()),
        "tax_rate__c": pa.array(cols["tax_rate__c"], pa.float64()),
        "invoice_date__c": pa.array(cols["invoice_date__c"], pa.date32()),
        "paid__c": pa.array(cols["paid__c"], pa.bool_()),
        "status__c": pa.array(cols["status__c"], pa.string()),
        "line_count__c": pa.array(cols["line_count__c"], pa.int64()),
        "notes__c": pa.array(cols["notes__c"], pa.string()),
    })


def land(cols, lake, parquet_path):
    """The version as the flow's source table (overwritten) and as a Parquet file for DuckDB."""
    import pyarrow.parquet as pq
    from deltalake import write_deltalake
    table = arrow_table(cols)
    write_deltalake(os.path.join(lake, "marts", "bench_invoices"), table, mode="overwrite")
    pq.write_table(table, parquet_path)


def write_config(path, sim, lake):
    with open(path, "w") as f:
        f.write(f"""lake:
  location: {lake}
salesforce:
  auth:
    flow: client_credentials
    login_url: {sim.base}
    client_id: {sim.creds['client_id']}
    client_secret: {sim.creds['client_secret']}
  ca_file: {sim.ca_file}
push:
  invoices:
    query: SELECT * FROM bench_invoices
    object: Invoice__c
    mode: upsert
    external_id: Invoice_Number__c
""")


def push(binary, config, *extra):
    seconds, rss, out = timed([binary, "push", "invoices", "--config", config, *extra])
    return seconds, rss, out


def counted(out, what):
    m = re.search(rf"(\d+) {what}", out)
    return int(m.group(1)) if m else 0


def duckdb_except(v2, v1):
    import duckdb
    con = duckdb.connect()
    n = con.execute(f"SELECT count(*) FROM (SELECT * FROM read_parquet('{v2}') EXCEPT SELECT * FROM read_parquet('{v1}'))").fetchone()[0]
    print(n)


def sf_upsert(csv_path, base, token, ca_file):
    from simple_salesforce import Salesforce
    import requests
    http = requests.Session()
    http.trust_env = False
    http.verify = ca_file
    sf = Salesforce(instance_url=base, session_id=token, session=http, version="59.0")
    results = sf.bulk2.Invoice__c.upsert(csv_file=csv_path, external_id_field="Invoice_Number__c", wait=0.2)
    processed = sum(int(r.get("numberRecordsProcessed", 0)) for r in results)
    failed = sum(int(r.get("numberRecordsFailed", 0)) for r in results)
    print(json.dumps({"processed": processed, "failed": failed}))


def write_csv(cols, rows, path):
    import csv
    header = list(cols.keys())
    fields = {"invoice_number__c": "Invoice_Number__c", "name": "Name", "amount__c": "Amount__c",
              "tax_rate__c": "Tax_Rate__c", "invoice_date__c": "Invoice_Date__c", "paid__c": "Paid__c",
              "status__c": "Status__c", "line_count__c": "Line_Count__c", "notes__c": "Notes__c"}
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([fields[h] for h in header])
        for i in rows:
            row = []
            for h in header:
                v = cols[h][i]
                row.append(v.isoformat() if isinstance(v, datetime.date) else ("true" if v is True else "false" if v is False else v))
            w.writerow(row)


def truth_amounts(sim, numbers):
    """The org's Amount__c of the given invoice numbers (REST query, 200 at a time)."""
    headers = {"Authorization": f"Bearer {sim.token()}"}
    out = {}
    for k in range(0, len(numbers), 200):
        group = ",".join(f"'{n}'" for n in numbers[k:k + 200])
        soql = f"SELECT Invoice_Number__c, Amount__c FROM Invoice__c WHERE Invoice_Number__c IN ({group})"
        r = sim.session.get(f"{sim.base}/services/data/v66.0/query", headers=headers, params={"q": soql}).json()
        out.update({rec["Invoice_Number__c"]: rec["Amount__c"] for rec in r["records"]})
    return out


def check_delivered(sim, cols, rows, who):
    sample = rows[:1000]
    numbers = [cols["invoice_number__c"][i] for i in sample]
    got = truth_amounts(sim, numbers)
    wrong = [n for n, i in zip(numbers, sample) if abs(got.get(n, -1) - cols["amount__c"][i]) > 0.005]
    if wrong:
        sys.exit(f"{who}: {len(wrong)} of {len(sample)} sampled invoices do not hold the pushed amount, e.g. {wrong[:3]}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--changed-share", type=float, default=0.05)
    p.add_argument("--upsert-rows", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--bin", default=os.path.join(ROOT, "target/release/tidemark"))
    p.add_argument("--work", default="/tmp/tidemark-push-bench")
    p.add_argument("--out", default=os.path.join(ROOT, "bench/results/push.json"))
    p.add_argument("--duckdb-except", nargs=2)
    p.add_argument("--sf-upsert", nargs=4)
    args = p.parse_args()
    if args.duckdb_except:
        return duckdb_except(*args.duckdb_except)
    if args.sf_upsert:
        return sf_upsert(*args.sf_upsert)

    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    lake = os.path.join(args.work, "lake")
    v1, v2 = os.path.join(args.work, "v1.parquet"), os.path.join(args.work, "v2.parquet")
    # HTTPS: simple-salesforce builds https:// URLs; both clients pay for TLS alike.
    sim = Sim(args.bin, 0, 7, tls_dir=os.path.join(args.work, "tls"))
    results = {"date": datetime.date.today().isoformat(), "machine": platform.machine(), "cpus": os.cpu_count(),
               "rows": args.rows}
    try:
        config = os.path.join(args.work, "push.yaml")
        write_config(config, sim, lake)
        cols = invoices(args.rows, 11)
        land(cols, lake, v1)
        seconds, rss, out = push(args.bin, config)
        sent = counted(out, "upsert")
        print(f"first run: {sent} rows in {seconds:.1f}s ({sent / seconds:,.0f}/s), {rss:.0f} MB", flush=True)
        results["first_run"] = {"rows": sent, "seconds": seconds, "rows_per_s": sent / seconds, "peak_rss_mb": rss}

        # (a) The diff of two versions with 5% changed.
        changed = change(cols, int(args.rows * args.changed_share), 12)
        land(cols, lake, v2)
        tm, dk = [], []
        for _ in range(args.repeat):
            seconds, rss, out = push(args.bin, config, "--dry-run", "--sample", "0")
            found = counted(out, "changed")
            tm.append((seconds, rss))
            seconds, rss, out = timed([sys.executable, __file__, "--duckdb-except", v2, v1])
            dk.append((seconds, rss))
            if found != len(changed) or int(out.strip()) != len(changed):
                sys.exit(f"the diffs disagree: tidemark {found}, duckdb {out.strip()}, changed {len(changed)}")
        med = lambda xs, k: statistics.median(x[k] for x in xs)
        results["diff"] = {
            "changed": len(changed),
            "tidemark_seconds": med(tm, 0), "tidemark_peak_rss_mb": med(tm, 1),
            "duckdb_seconds": med(dk, 0), "duckdb_peak_rss_mb": med(dk, 1),
            "ratio": med(tm, 0) / med(dk, 0), "runs": {"tidemark": tm, "duckdb": dk},
        }
        print(f"diff: tidemark {med(tm, 0):.2f}s {med(tm, 1):.0f} MB, duckdb EXCEPT {med(dk, 0):.2f}s {med(dk, 1):.0f} MB", flush=True)
        seconds, _, out = push(args.bin, config)  # deliver the 5% so the snapshot is v2

        # (b) 100,000 changed rows end to end.
        up = change(cols, args.upsert_rows, 13)
        land(cols, lake, v1)
        seconds, rss, out = push(args.bin, config)
        if counted(out, "upsert") != len(up):
            sys.exit(f"tidemark sent {counted(out, 'upsert')} rows, not {len(up)}:\n{out}")
        check_delivered(sim, cols, up, "tidemark")
        results["upsert_tidemark"] = {"rows": len(up), "seconds": seconds, "rows_per_s": len(up) / seconds, "peak_rss_mb": rss}
        print(f"upsert: tidemark {len(up)} rows in {seconds:.1f}s ({len(up) / seconds:,.0f}/s)", flush=True)
        up2 = change(cols, args.upsert_rows, 14)
        csv_path = os.path.join(args.work, "upsert.csv")
        write_csv(cols, up2, csv_path)
        seconds, rss, out = timed([sys.executable, __file__, "--sf-upsert", csv_path, sim.base, sim.token(), sim.ca_file])
        done = json.loads(out.strip().splitlines()[-1])
        if done["processed"] != len(up2) or done["failed"]:
            sys.exit(f"simple-salesforce: {done}")
        check_delivered(sim, cols, up2, "simple-salesforce")
        results["upsert_simple_salesforce"] = {"rows": len(up2), "seconds": seconds, "rows_per_s": len(up2) / seconds,
                                               "peak_rss_mb": rss}
        print(f"upsert: simple-salesforce {len(up2)} rows in {seconds:.1f}s ({len(up2) / seconds:,.0f}/s)", flush=True)
    finally:
        sim.stop()
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
