"""Access-control overhead on `serve-sql`: the same answers read by a restricted role and by an
unrestricted one, side by side on one server, in one run.

    cargo build --release -p tidemark
    TIDEMARK_VENV=target/bench-venv TIDEMARK_REQUIREMENTS=bench/requirements.txt scripts/python-venv.sh
    target/bench-venv/bin/python bench/erase_bench.py --accounts 1000000   # builds the lake once
    target/bench-venv/bin/python bench/access_bench.py --lake target/bench-erase/lake --out bench/results/access.json

The lake: the query benchmark's 1,000,000 Accounts with 3 versions each. One `serve-sql` with
two users: `root` (everything, no rules) and `analyst`, whose role masks `phone` (last four),
denies `annualrevenue` and filters `account` (and its other forms) on
`industry = user_attr('industry')`, the most common industry. Each query runs `--repeat` times
in one psql session per user (`\\timing`); the median is reported:

- the analyst's query, through the guard (`TidemarkGuard`: row filter, then the masks);
- the reference: root's query giving the same rows by hand (the same predicate in `WHERE`),
  which DataFusion plans without any guard.

Both answers are compared (the masked column is left out of the comparison).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys

from benchlib import machine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def csv_rows(bin_path, lake, sql):
    out = subprocess.run([bin_path, "sql", "--lake", lake, "--format", "csv", sql], capture_output=True, text=True, check=True)
    return [line.split(",") for line in out.stdout.strip().splitlines()[1:]]


def start_server(bin_path, lake, config, env):
    proc = subprocess.Popen([bin_path, "serve-sql", "--config", config, "--lake", lake, "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = proc.stdout.readline()
    m = re.match(r"listening on 127\.0\.0\.1:(\d+) ", line)
    if not m:
        proc.kill()
        sys.exit(f"serve-sql did not start: {line!r}")
    return proc, int(m.group(1))


def timings(port, user, password, sql, repeat):
    """The query's result (the last run's) and each run's milliseconds, from one psql session."""
    script = "\\timing on\n" + "".join(f"{sql};\n" for _ in range(repeat))
    env = dict(os.environ, PGPASSWORD=password, PGSSLMODE="disable", PGPASSFILE="/nonexistent")
    out = subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port),
                          "-U", user, "-d", "tidemark"], input=script, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"psql as {user} failed: {out.stderr[-2000:]}")
    ms = [float(t) for t in re.findall(r"^Time: ([\d.]+) ms", out.stdout, re.M)]
    results = [l for l in out.stdout.splitlines() if l and not l.startswith("Time:")]
    per_run = len(results) // repeat
    return results[-per_run:] if per_run else [], ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tidemark"))
    ap.add_argument("--lake", default=os.path.join(ROOT, "target", "bench-erase", "lake"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "access.json"))
    args = ap.parse_args()
    industry = csv_rows(args.bin, args.lake,
                        "SELECT industry, count(*) AS n FROM account WHERE industry IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 1")[0][0]
    some_id = csv_rows(args.bin, args.lake, f"SELECT id FROM account WHERE industry = '{industry}' LIMIT 1")[0][0]
    work = os.path.dirname(os.path.abspath(args.out))
    config = os.path.join(work, "access-bench.yaml")
    with open(config, "w") as f:
        f.write(
            "sql:\n  query_log: {to: off}\n  users:\n"
            "    root: {password: root-pw, role: admin}\n"
            f"    analyst: {{password: analyst-pw, role: analyst, attributes: {{industry: '{industry}'}}}}\n"
            "  roles:\n    admin: {objects: ['*']}\n"
            "    analyst:\n      objects: [account]\n"
            "      columns: {account: {phone: 'mask:last4', annualrevenue: deny}}\n"
            "      rows: {account: \"industry = user_attr('industry')\"}\n")
    where = f"industry = '{industry}'"
    queries = [
        ("live count", "SELECT count(*) FROM account", f"SELECT count(*) FROM account WHERE {where}"),
        ("live group by", "SELECT rating, count(*) FROM account GROUP BY 1 ORDER BY 1",
         f"SELECT rating, count(*) FROM account WHERE {where} GROUP BY 1 ORDER BY 1"),
        ("history group by", "SELECT rating, count(*) FROM account_history GROUP BY 1 ORDER BY 1",
         f"SELECT rating, count(*) FROM account_history WHERE {where} GROUP BY 1 ORDER BY 1"),
        ("point lookup", f"SELECT id, name FROM account WHERE id = '{some_id}'",
         f"SELECT id, name FROM account WHERE id = '{some_id}' AND {where}"),
        ("masked column", "SELECT count(DISTINCT phone) FROM account",
         f"SELECT count(DISTINCT phone) FROM account WHERE {where}"),
    ]
    env = dict(os.environ, RUST_LOG="warn")
    proc, port = start_server(args.bin, args.lake, config, env)
    results = []
    try:
        for name, restricted, reference in queries:
            got, guarded_ms = timings(port, "analyst", "analyst-pw", restricted, args.repeat)
            want, reference_ms = timings(port, "root", "root-pw", reference, args.repeat)
            same = got == want or name == "masked column"
            if not same:
                sys.exit(f"{name}: the analyst got {got[:5]}, root {want[:5]}")
            row = {"query": name, "guarded_ms": statistics.median(guarded_ms),
                   "reference_ms": statistics.median(reference_ms), "runs": args.repeat}
            row["ratio"] = round(row["guarded_ms"] / row["reference_ms"], 2)
            results.append(row)
            print(f"{name:18} guarded {row['guarded_ms']:9.1f} ms   reference {row['reference_ms']:9.1f} ms   x{row['ratio']}", flush=True)
    finally:
        proc.terminate()
        proc.wait()
    report = {"benchmark": "access", "machine": machine(), "lake": args.lake, "industry_filter": industry, "queries": results}
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
