"""Dimension-model benchmark: `tidemark model run` beside DuckDB running the AWS post's SCD2
algorithm on native tables over the same CSV files, measured in one run.

    cargo build --release -p tidemark
    TIDEMARK_VENV=target/bench-venv TIDEMARK_REQUIREMENTS=bench/requirements.txt scripts/python-venv.sh
    target/bench-venv/bin/python bench/model_bench.py --keys 1000000 --out bench/results/models.json

The data (seeded `random.Random`, written as CSV): `customer_master` (customer_id, first_name,
last_name, employer_name, row_audit_ts, rec_source_status) and `customer_address` (customer_id,
email_id, city, country, row_audit_ts, rec_source_status), one row per key in each; then one
change-only increment file per source: 5% of keys updated (half a master attribute, half an
address attribute, each with a later row_audit_ts), 1% new keys (a row in both files) and 0.5%
deleted (a master row with status D).

Measures, each its own process under /usr/bin/time -v (seconds and peak RSS):
- Tidemark: `tidemark model run --run-date 2024-01-01` over the initial files (the initial
  build), then the increment files land and `tidemark model run --run-date 2024-02-01`;
- DuckDB (default threads, a database file): the post's algorithm. Initial: COPY the initial CSVs
  into native staging tables, latest-row-per-key views (row_number), the joined source view,
  the dimension populated with surrogate keys, rec_eff_dt, rec_exp_dt 9999-12-31 and a hash.
  Incremental: COPY (append) the increment CSVs into the staging tables, a temp table of changes
  (full outer join of the source view, minus D rows, with the current dimension rows, classified
  I/U/D by hash), UPDATE rec_exp_dt of U and D rows to the run date minus one day, INSERT I and U
  rows numbered max(sk) + row_number(). DuckDB has no sha512: the hash is sha256 over the post's
  coalesce-concatenation (Tidemark's default hash is SHA-256 over a length-prefixed encoding; the
  two detect the same changes on this data, which has no NULLs or empty strings).
Both phases include reading the files they load. After each phase the two dimensions are compared
(row counts, current rows, and the multiset of (customer_id, attributes, rec_eff_dt, rec_exp_dt));
any difference stops the benchmark before figures are written.

`python bench/model_bench.py --duckdb-phase initial|incremental …` is the DuckDB process itself.
"""

import argparse
import datetime
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time

from benchlib import machine, timed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MASTER_HEADER = ["customer_id", "first_name", "last_name", "employer_name", "row_audit_ts", "rec_source_status"]
ADDRESS_HEADER = ["customer_id", "email_id", "city", "country", "row_audit_ts", "rec_source_status"]
ATTRS = ["first_name", "last_name", "employer_name", "email_id", "city", "country"]
INITIAL_DATE, INCREMENT_DATE = "2024-01-01", "2024-02-01"

MODEL = """lake:
  location: {lake}
models:
  dim_customer:
    key: [customer_id]
    columns: {{ effective: rec_eff_dt, expiry: rec_exp_dt }}
    sources:
      - name: customer_master
        files: landing/customer_master
        types: {{ customer_id: bigint, row_audit_ts: timestamp }}
        order_by: row_audit_ts
        status_column: rec_source_status
        columns: [first_name, last_name, employer_name]
      - name: customer_address
        files: landing/customer_address
        types: {{ customer_id: bigint, row_audit_ts: timestamp }}
        order_by: row_audit_ts
        columns: [email_id, city, country]
"""

# ---------------------------------------------------------------------------------------------
# Data

FIRST = ("James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
         "Richard Susan Joseph Jessica Thomas Sarah Christopher Karen Charles Lisa Daniel Nancy "
         "Matthew Betty Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Andrew Emily "
         "Paul Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Dorothy George Melissa "
         "Timothy Deborah Ronald Stephanie Jason Rebecca Edward Sharon Jeffrey Laura Ryan Cynthia "
         "Jacob Amy Gary Kathleen Nicholas Angela Eric Shirley Jonathan Brenda Stephen Emma Larry "
         "Anna Justin Pamela Scott Nicole Brandon Samantha Benjamin Katherine Samuel Christine "
         "Amélie Zoë Søren Łukasz Renée François").split()
LAST = ("Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
        "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White "
        "Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres "
        "Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts "
        "Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales "
        "Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos "
        "Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes "
        "Price Alvarez Castillo Sanders Patel Myers Long Ross Foster O'Brien Müller Dubois "
        "Kowalski").split() + ["van der Berg", "de la Cruz"]
EMPLOYER_A = ("Acme Global Northwind Contoso Fabrikam Initech Umbrella Stark Wayne Tyrell Cyberdyne "
              "Soylent Hooli Vandelay Wonka Gringotts Oceanic Massive Dynamic Blue Sun Aperture "
              "Black Mesa Monarch Virtucon Gekko Prestige Worldwide Sterling Cooper Dunder "
              "Mifflin").split()
EMPLOYER_B = ["Industries", "Holdings", "Logistics", "Systems", "Consulting", "Partners", "Labs",
              "Manufacturing", "Financial Services", "Health", "Retail Group", "Energy", "Foods"]
EMPLOYER_C = ["Inc.", "LLC", "Ltd", "GmbH", "S.A.", "plc", "Co.", ", Inc.", " & Sons"]
DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "inbox.example.io", "post.example.de"]
CITIES = {
    "United States": ["New York", "Los Angeles", "Chicago", "Houston", "Phoenix", "Seattle", "Denver", "Boston"],
    "France": ["Paris", "Lyon", "Marseille", "Reims", "Toulouse", "Nantes"],
    "Germany": ["Berlin", "München", "Hamburg", "Köln", "Frankfurt am Main"],
    "United Kingdom": ["London", "Manchester", "Birmingham", "Edinburgh", "Bristol"],
    "India": ["Mumbai", "Bengaluru", "Chennai", "Hyderabad", "Pune"],
    "Brazil": ["São Paulo", "Rio de Janeiro", "Belo Horizonte", "Curitiba"],
    "Japan": ["Tokyo", "Osaka", "Yokohama", "Sapporo"],
    "Canada": ["Toronto", "Montréal", "Vancouver", "Calgary"],
}
COUNTRIES = list(CITIES)


def ts(rng, start, days):
    """A random second within `days` days from `start` (a datetime), as CSV text."""
    return (start + datetime.timedelta(seconds=rng.randrange(days * 86400))).strftime("%Y-%m-%d %H:%M:%S")


def employer(rng):
    c = rng.choice(EMPLOYER_C)
    name = f"{rng.choice(EMPLOYER_A)} {rng.choice(EMPLOYER_B)}"
    return name + c if c[0] in ", " else f"{name} {c}"


def email(rng, first, last, k):
    user = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
    return f"{user}{k % 1000}@{rng.choice(DOMAINS)}"


def place(rng):
    country = rng.choice(COUNTRIES)
    return rng.choice(CITIES[country]), country


def write_csv(path, header, rows):
    import csv
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def generate(keys, seed, out_dir):
    """Writes initial/{master,address}.csv and increment/{master,address}.csv; returns the
    expected change counts."""
    rng = random.Random(seed)
    base, later = datetime.datetime(2022, 1, 1), datetime.datetime(2024, 1, 2)
    master, address = [], []
    for k in range(1, keys + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        master.append((k, first, last, employer(rng), ts(rng, base, 729), "I"))
        city, country = place(rng)
        address.append((k, email(rng, first, last, k), city, country, ts(rng, base, 729), "I"))
    os.makedirs(os.path.join(out_dir, "initial"))
    os.makedirs(os.path.join(out_dir, "increment"))
    write_csv(os.path.join(out_dir, "initial", "master.csv"), MASTER_HEADER, master)
    write_csv(os.path.join(out_dir, "initial", "address.csv"), ADDRESS_HEADER, address)

    n_upd, n_new, n_del = keys * 5 // 100, keys // 100, keys * 5 // 1000
    picked = rng.sample(range(1, keys + 1), n_upd + n_del)
    updated, deleted = picked[:n_upd], picked[n_upd:]
    inc_master, inc_address = [], []
    for i, k in enumerate(updated):
        if i % 2 == 0:  # a master attribute: a new employer, or a new last name
            _, first, last, emp, _, _ = master[k - 1]
            if rng.random() < 0.5:
                new = emp
                while new == emp:
                    new = employer(rng)
                row = (k, first, last, new)
            else:
                new = last
                while new == last:
                    new = rng.choice(LAST)
                row = (k, first, new, emp)
            inc_master.append((*row, ts(rng, later, 30), "U"))
        else:  # an address attribute: a move, or a new email address
            _, mail, city, country, _, _ = address[k - 1]
            if rng.random() < 0.5:
                new = (city, country)
                while new == (city, country):
                    new = place(rng)
                row = (k, mail, *new)
            else:
                row = (k, "new." + mail, city, country)
            inc_address.append((*row, ts(rng, later, 30), "U"))
    for k in deleted:
        _, first, last, emp, _, _ = master[k - 1]
        inc_master.append((k, first, last, emp, ts(rng, later, 30), "D"))
    for k in range(keys + 1, keys + n_new + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        inc_master.append((k, first, last, employer(rng), ts(rng, later, 30), "I"))
        city, country = place(rng)
        inc_address.append((k, email(rng, first, last, k), city, country, ts(rng, later, 30), "I"))
    # Change extracts arrive in audit order, not key order.
    inc_master.sort(key=lambda r: r[4])
    inc_address.sort(key=lambda r: r[4])
    write_csv(os.path.join(out_dir, "increment", "master.csv"), MASTER_HEADER, inc_master)
    write_csv(os.path.join(out_dir, "increment", "address.csv"), ADDRESS_HEADER, inc_address)
    return {"updated": n_upd, "updated_master": (n_upd + 1) // 2, "updated_address": n_upd // 2,
            "new": n_new, "deleted": n_del,
            "increment_master_rows": len(inc_master), "increment_address_rows": len(inc_address)}


# ---------------------------------------------------------------------------------------------
# DuckDB: the post's algorithm (this file run with --duckdb-phase, as its own process)

HASH = "sha256(" + " || ".join(f"coalesce({c}, '')" for c in ATTRS) + ")"

DUCKDB_SETUP = """
CREATE TABLE stg_customer_master (customer_id BIGINT, first_name VARCHAR, last_name VARCHAR,
    employer_name VARCHAR, row_audit_ts TIMESTAMP, rec_source_status VARCHAR);
CREATE TABLE stg_customer_address (customer_id BIGINT, email_id VARCHAR, city VARCHAR,
    country VARCHAR, row_audit_ts TIMESTAMP, rec_source_status VARCHAR);
CREATE VIEW vw_cust_mstr_latest AS
    SELECT * EXCLUDE (rnk) FROM (SELECT *, row_number() OVER (PARTITION BY customer_id ORDER BY row_audit_ts DESC) AS rnk
                                 FROM stg_customer_master) WHERE rnk = 1;
CREATE VIEW vw_cust_addr_latest AS
    SELECT * EXCLUDE (rnk) FROM (SELECT *, row_number() OVER (PARTITION BY customer_id ORDER BY row_audit_ts DESC) AS rnk
                                 FROM stg_customer_address) WHERE rnk = 1;
CREATE VIEW vw_dim_customer_src AS
    SELECT m.customer_id, m.first_name, m.last_name, m.employer_name, a.email_id, a.city, a.country,
           m.rec_source_status
    FROM vw_cust_mstr_latest m LEFT JOIN vw_cust_addr_latest a ON m.customer_id = a.customer_id;
CREATE TABLE dim_customer (customer_sk BIGINT, customer_id BIGINT, first_name VARCHAR, last_name VARCHAR,
    employer_name VARCHAR, email_id VARCHAR, city VARCHAR, country VARCHAR, rec_eff_dt DATE,
    rec_exp_dt DATE, hash_value VARCHAR);
"""

DUCKDB_INITIAL = f"""
INSERT INTO dim_customer
SELECT row_number() OVER () AS customer_sk, customer_id, first_name, last_name, employer_name,
       email_id, city, country, DATE '{{run}}', DATE '9999-12-31', {HASH}
FROM vw_dim_customer_src WHERE rec_source_status <> 'D';
"""

DUCKDB_INCREMENTAL = f"""
BEGIN;
CREATE TEMP TABLE temp_dim_customer AS
SELECT s.customer_id AS src_customer_id, s.first_name, s.last_name, s.employer_name, s.email_id,
       s.city, s.country, s.hash_value, t.customer_sk AS tgt_customer_sk,
       CASE WHEN t.customer_id IS NULL THEN 'I'
            WHEN s.customer_id IS NULL THEN 'D'
            WHEN s.hash_value <> t.hash_value THEN 'U'
            ELSE 'N' END AS record_indicator
FROM (SELECT *, {HASH} AS hash_value FROM vw_dim_customer_src WHERE rec_source_status <> 'D') s
FULL OUTER JOIN (SELECT customer_sk, customer_id, hash_value FROM dim_customer
                 WHERE rec_exp_dt = DATE '9999-12-31') t
ON s.customer_id = t.customer_id;
UPDATE dim_customer SET rec_exp_dt = DATE '{{run}}' - 1
WHERE customer_sk IN (SELECT tgt_customer_sk FROM temp_dim_customer WHERE record_indicator IN ('U', 'D'));
INSERT INTO dim_customer
SELECT (SELECT max(customer_sk) FROM dim_customer) + row_number() OVER (), src_customer_id,
       first_name, last_name, employer_name, email_id, city, country, DATE '{{run}}',
       DATE '9999-12-31', hash_value
FROM temp_dim_customer WHERE record_indicator IN ('I', 'U');
COMMIT;
"""


def duckdb_phase(args):
    import duckdb
    timings = {}
    started = time.monotonic()
    con = duckdb.connect(args.db)
    if args.duckdb_phase == "initial":
        con.execute(DUCKDB_SETUP)
    copy_started = time.monotonic()
    con.execute(f"COPY stg_customer_master FROM '{args.master}' (HEADER)")
    con.execute(f"COPY stg_customer_address FROM '{args.address}' (HEADER)")
    timings["copy_seconds"] = time.monotonic() - copy_started
    load_started = time.monotonic()
    if args.duckdb_phase == "initial":
        con.execute(DUCKDB_INITIAL.format(run=args.run_date))
    else:
        con.execute(DUCKDB_INCREMENTAL.format(run=args.run_date))
        timings["indicators"] = dict(con.execute(
            "SELECT record_indicator, count(*) FROM temp_dim_customer GROUP BY ALL").fetchall())
    timings["load_seconds"] = time.monotonic() - load_started
    timings["threads"] = con.execute("SELECT current_setting('threads')").fetchone()[0]
    close_started = time.monotonic()
    con.close()  # the checkpoint that makes the phase durable
    timings["close_seconds"] = time.monotonic() - close_started
    timings["in_process_seconds"] = time.monotonic() - started
    timings["version"] = duckdb.__version__
    print(json.dumps(timings))


# ---------------------------------------------------------------------------------------------
# Comparison

def delta_connection(db):
    import duckdb
    import duckdb_extension_delta
    ext = os.path.join(os.path.dirname(duckdb_extension_delta.__file__), "extensions", f"v{duckdb.__version__}", "delta.duckdb_extension")
    con = duckdb.connect(db, read_only=True)
    con.execute("SET autoinstall_known_extensions=false")
    con.execute(f"LOAD '{ext}'")
    return con


def compare(db, lake, label):
    """The two dimensions, side by side; returns a dict of figures and a list of mismatches."""
    con = delta_connection(db)
    table = os.path.join(lake, "marts", "dim_customer")
    con.execute(f"CREATE TEMP VIEW tm AS SELECT * FROM delta_scan('{table}')")
    cols = ", ".join(["customer_id", *ATTRS, "rec_eff_dt", "rec_exp_dt"])
    q = lambda sql: con.execute(sql).fetchone()
    figures = {}
    figures["tidemark_rows"], figures["tidemark_current"], figures["tidemark_distinct_sk"], figures["tidemark_current_flag_wrong"] = q(
        "SELECT count(*), count(*) FILTER (WHERE rec_exp_dt = DATE '9999-12-31'), count(DISTINCT customer_sk), "
        "count(*) FILTER (WHERE is_current <> (rec_exp_dt = DATE '9999-12-31')) FROM tm")
    figures["duckdb_rows"], figures["duckdb_current"], figures["duckdb_distinct_sk"] = q(
        "SELECT count(*), count(*) FILTER (WHERE rec_exp_dt = DATE '9999-12-31'), count(DISTINCT customer_sk) FROM dim_customer")
    figures["only_in_tidemark"] = q(f"SELECT count(*) FROM (SELECT {cols} FROM tm EXCEPT ALL SELECT {cols} FROM dim_customer)")[0]
    figures["only_in_duckdb"] = q(f"SELECT count(*) FROM (SELECT {cols} FROM dim_customer EXCEPT ALL SELECT {cols} FROM tm)")[0]
    samples = []
    if figures["only_in_tidemark"] or figures["only_in_duckdb"]:
        samples = [list(map(str, r)) for r in con.execute(
            f"(SELECT 'tidemark' AS side, {cols} FROM (SELECT {cols} FROM tm EXCEPT ALL SELECT {cols} FROM dim_customer) LIMIT 5) "
            f"UNION ALL (SELECT 'duckdb', {cols} FROM (SELECT {cols} FROM dim_customer EXCEPT ALL SELECT {cols} FROM tm) LIMIT 5)").fetchall()]
    con.close()
    bad = []
    if figures["tidemark_rows"] != figures["duckdb_rows"]:
        bad.append(f"{label}: rows differ: Tidemark {figures['tidemark_rows']:,}, DuckDB {figures['duckdb_rows']:,}")
    if figures["tidemark_current"] != figures["duckdb_current"]:
        bad.append(f"{label}: current rows differ: Tidemark {figures['tidemark_current']:,}, DuckDB {figures['duckdb_current']:,}")
    for side in ("tidemark", "duckdb"):
        if figures[f"{side}_distinct_sk"] != figures[f"{side}_rows"]:
            bad.append(f"{label}: {side} surrogate keys are not unique")
    if figures["tidemark_current_flag_wrong"]:
        bad.append(f"{label}: {figures['tidemark_current_flag_wrong']} Tidemark rows have is_current disagreeing with rec_exp_dt")
    if figures["only_in_tidemark"] or figures["only_in_duckdb"]:
        bad.append(f"{label}: (customer_id, attributes, rec_eff_dt, rec_exp_dt) differ: {figures['only_in_tidemark']:,} rows "
                   f"only in Tidemark, {figures['only_in_duckdb']:,} only in DuckDB; e.g. {samples}")
    return figures, bad


# ---------------------------------------------------------------------------------------------
# Driver

def tidemark_counts(stdout):
    m = re.search(r"(\d+) new, (\d+) changed, (\d+) deleted, (\d+) unchanged", stdout)
    if not m:
        sys.exit(f"unexpected `tidemark model run` output:\n{stdout}")
    return dict(zip(["new", "changed", "deleted", "unchanged"], map(int, m.groups())))


def fail(work, results, problems):
    path = os.path.join(work, "mismatch.json")
    with open(path, "w") as f:
        json.dump({**results, "mismatches": problems}, f, indent=2, default=str)
    sys.exit("THE DIMENSIONS DIFFER; no figures written:\n  " + "\n  ".join(problems) + f"\n(details: {path})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tidemark"))
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-models"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "models.json"))
    ap.add_argument("--duckdb-phase", choices=["initial", "incremental"], help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--master", help=argparse.SUPPRESS)
    ap.add_argument("--address", help=argparse.SUPPRESS)
    ap.add_argument("--run-date", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.duckdb_phase:
        return duckdb_phase(args)

    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    data = os.path.join(args.work, "data")
    print(f"generating {args.keys:,} keys (seed {args.seed})…", flush=True)
    started = time.monotonic()
    expected = generate(args.keys, args.seed, data)
    sizes = {name: {"rows": sum(1 for _ in open(os.path.join(data, *name.split("/")), encoding="utf-8")) - 1,
                    "bytes": os.path.getsize(os.path.join(data, *name.split("/")))}
             for name in ("initial/master.csv", "initial/address.csv", "increment/master.csv", "increment/address.csv")}
    print(f"  written in {time.monotonic() - started:.1f}s: " + ", ".join(
        f"{n} {s['rows']:,} rows {s['bytes'] / 1e6:.1f} MB" for n, s in sizes.items()), flush=True)

    landing = {src: os.path.join(args.work, "landing", src) for src in ("customer_master", "customer_address")}
    for d in landing.values():
        os.makedirs(d)
    lake = os.path.join(args.work, "lake")
    config = os.path.join(args.work, "tidemark.yaml")
    with open(config, "w") as f:
        f.write(MODEL.format(lake=lake))
    db = os.path.join(args.work, "duckdb", "dim.duckdb")
    os.makedirs(os.path.dirname(db))
    env = dict(os.environ, RUST_LOG="warn")

    git = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "crates"], capture_output=True, text=True).stdout.strip())
    results = {"benchmark": "models", "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "machine": machine(), "tidemark_commit": git + ("+uncommitted" if dirty else ""),
               "keys": args.keys, "seed": args.seed, "files": sizes, "expected_changes": expected,
               "tidemark": {}, "duckdb": {}, "checks": {}}
    phases = [("initial", INITIAL_DATE, "0001.csv", "initial"), ("incremental", INCREMENT_DATE, "0002.csv", "increment")]
    for phase, run_date, landed_name, folder in phases:
        # The files land where Tidemark reads them; DuckDB COPYs the same files.
        master = os.path.join(landing["customer_master"], landed_name)
        address = os.path.join(landing["customer_address"], landed_name)
        os.rename(os.path.join(data, folder, "master.csv"), master)
        os.rename(os.path.join(data, folder, "address.csv"), address)

        secs, rss, out = timed([args.bin, "model", "run", "--config", config, "--run-date", run_date], env)
        counts = tidemark_counts(out)
        results["tidemark"][phase] = {"seconds": secs, "peak_rss_mb": rss, "counts": counts, "output": out.strip()}
        print(f"tidemark {phase}: {secs:.2f}s, peak RSS {rss:.0f} MB — {out.strip()}", flush=True)

        secs, rss, out = timed([sys.executable, os.path.abspath(__file__), "--duckdb-phase", phase, "--db", db,
                                "--master", master, "--address", address, "--run-date", run_date])
        inner = json.loads(out.strip().splitlines()[-1])
        results["duckdb"][phase] = {"seconds": secs, "peak_rss_mb": rss, **inner}
        print(f"duckdb   {phase}: {secs:.2f}s, peak RSS {rss:.0f} MB (COPY {inner['copy_seconds']:.2f}s, "
              f"SQL {inner['load_seconds']:.2f}s, close {inner['close_seconds']:.2f}s)", flush=True)

        figures, problems = compare(db, lake, phase)
        results["checks"][phase] = figures
        if phase == "initial":
            want = {"new": args.keys, "changed": 0, "deleted": 0, "unchanged": 0}
        else:
            want = {"new": expected["new"], "changed": expected["updated"], "deleted": expected["deleted"],
                    "unchanged": args.keys - expected["updated"] - expected["deleted"]}
            ind = inner["indicators"]
            got = {"new": ind.get("I", 0), "changed": ind.get("U", 0), "deleted": ind.get("D", 0), "unchanged": ind.get("N", 0)}
            if got != want:
                problems.append(f"{phase}: DuckDB's change classes {got}, expected {want}")
        if counts != want:
            problems.append(f"{phase}: Tidemark's counts {counts}, expected {want}")
        if problems:
            fail(args.work, results, problems)
        print(f"  check {phase}: both {figures['tidemark_rows']:,} rows, {figures['tidemark_current']:,} current, "
              f"identical (customer_id, attributes, rec_eff_dt, rec_exp_dt)", flush=True)

    results["duckdb_version"] = results["duckdb"]["initial"]["version"]
    results["duckdb_threads"] = results["duckdb"]["initial"]["threads"]
    for phase, *_ in phases:
        results[f"{phase}_vs_duckdb"] = results["tidemark"][phase]["seconds"] / results["duckdb"][phase]["seconds"]
    # The targets are the incremental load's; the initial build is reported beside them.
    results["targets"] = {"incremental_vs_duckdb_max": 1.0, "incremental_peak_rss_mb_max": 500}
    rss = results["tidemark"]["incremental"]["peak_rss_mb"]
    results["met"] = {"incremental_vs_duckdb": results["incremental_vs_duckdb"] <= 1.0, "incremental_peak_rss": rss < 500}
    print(f"ratio Tidemark/DuckDB: initial {results['initial_vs_duckdb']:.2f}×, incremental "
          f"{results['incremental_vs_duckdb']:.2f}× (target ≤ 1.0×: {'met' if results['met']['incremental_vs_duckdb'] else 'MISSED'}); "
          f"incremental peak RSS {rss:.0f} MB (target < 500 MB: {'met' if results['met']['incremental_peak_rss'] else 'MISSED'}); "
          f"initial build peak RSS {results['tidemark']['initial']['peak_rss_mb']:.0f} MB", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"→ {args.out}")


if __name__ == "__main__":
    main()
