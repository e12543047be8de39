"""Postgres source benchmark: `tidemark sync --source` copying and streaming a 1,000,000-row,
40-column Postgres table into the lake, beside `COPY … TO` CSV followed by DuckDB's CSV → Delta
conversion of the same table, measured in one run.

    cargo build --release -p tidemark
    TIDEMARK_VENV=target/bench-venv TIDEMARK_REQUIREMENTS=bench/requirements.txt scripts/python-venv.sh
    target/bench-venv/bin/python bench/sources_bench.py --rows 1000000 --out bench/results/sources.json

Needs the PostgreSQL server binaries (`apt-get install postgresql`: initdb and pg_ctl under
/usr/lib/postgresql/*/bin) and psql. The script starts a throwaway server (as the `postgres` user
when run as root) on a free port with `wal_level = logical`, `fsync = off` and
`full_page_writes = off` (both sides read the same server; `synchronous_commit` stays on, so a
commit's WAL is written before the client is answered and a walsender can send it at once), and
stops it at the end, also on failure (a watchdog stops it if this process is killed).

The table (`accounts`, built with generate_series from hashes of the row number, so every run
has the same rows): a bigint key, integer/bigint/smallint ids, numeric(12,2), numeric(5,2) and
numeric(6,4), text of 0 to 600 characters, varchar, char(2), a uuid as text, double precision,
boolean, timestamptz with microseconds, date, and NULLs in a third of the nullable columns;
then VACUUM ANALYZE.

Measures, each its own process under /usr/bin/time -v (seconds and peak RSS):
1. Initial copy, `--repeat` times, alternating:
   - Tidemark: `tidemark sync --source bench` into a fresh lake (slot and publication dropped
     first): the slot's exported snapshot, COPY, Delta commit. Its version count must be --rows.
   - Reference: `psql -c "COPY (SELECT * FROM accounts) TO STDOUT (FORMAT csv, HEADER)" > file`,
     then DuckDB reading that CSV (explicit column types, the table's own) and writing a Delta
     table, two ways, each its own process: (a) DuckDB's delta extension `INSERT INTO` the
     attached table (the extension can insert into a Delta table but not create one: delta-rs
     creates the empty table first, inside the timed process); (b) DuckDB's result as an Arrow
     stream written by delta-rs `write_deltalake` (zstd, as Tidemark writes). The reference is
     COPY + the faster of the two. Row counts must match, and the Tidemark table's columns
     must equal the reference table's as a multiset (EXCEPT ALL both ways, after the last repeat).
2. Streaming: with the lake holding the table, `tidemark sync --source bench --follow` runs in the
   background; once its slot is active, one psql process applies --updates single-row UPDATEs
   (distinct random keys) committed in transactions of --txn-rows. A poller watches the table's
   `_delta_log` every 10 ms and stops when the new commits hold every update; then the follower
   gets SIGTERM. Reported: records/s = updates / (last commit visible in the lake − first
   update's commit time); per version, lag from commit (`_version_at`, the server's commit
   timestamp) to the lake: `_ingested_at − _version_at` (a lower bound: Tidemark stamps
   `_ingested_at` when it buffers the version, before the Delta commit), the Delta commit file's
   modification time − `_version_at`, and the time the poller first saw that commit −
   `_version_at` (sampled every 10 ms; the last committed row's value is reported on its own).
   Peak RSS of the follower.
3. Catch-up (beside the brief's figures): with no follower running, another --updates updates;
   then a one-off `tidemark sync --source bench` reads them from the slot: its records/s is the
   streaming rate when the writer is not the limit.

`python bench/sources_bench.py --duckdb-to-delta insert|deltars CSV TABLE` is a DuckDB process.
"""

import argparse
import datetime
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from benchlib import machine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = "accounts"
SOURCE = "bench"

# ---------------------------------------------------------------------------------------------
# The table

COLUMNS = [  # (name, Postgres type, DuckDB type)
    ("id", "bigint PRIMARY KEY", "BIGINT"),
    ("account_id", "integer NOT NULL", "INTEGER"),
    ("owner_id", "integer NOT NULL", "INTEGER"),
    ("parent_id", "bigint", "BIGINT"),
    ("external_ref", "varchar(36) NOT NULL", "VARCHAR"),
    ("name", "text NOT NULL", "VARCHAR"),
    ("email", "text", "VARCHAR"),
    ("phone", "varchar(24)", "VARCHAR"),
    ("status", "text NOT NULL", "VARCHAR"),
    ("stage", "text", "VARCHAR"),
    ("region", "varchar(16)", "VARCHAR"),
    ("country", "char(2)", "VARCHAR"),
    ("city", "text", "VARCHAR"),
    ("postal_code", "varchar(10)", "VARCHAR"),
    ("street", "text", "VARCHAR"),
    ("description", "text", "VARCHAR"),
    ("notes", "text", "VARCHAR"),
    ("amount", "numeric(12,2)", "DECIMAL(12,2)"),
    ("discount", "numeric(5,2)", "DECIMAL(5,2)"),
    ("tax_rate", "numeric(6,4)", "DECIMAL(6,4)"),
    ("quantity", "integer", "INTEGER"),
    ("unit_price", "numeric(12,2)", "DECIMAL(12,2)"),
    ("score", "double precision", "DOUBLE"),
    ("probability", "double precision", "DOUBLE"),
    ("latitude", "double precision", "DOUBLE"),
    ("longitude", "double precision", "DOUBLE"),
    ("is_active", "boolean NOT NULL", "BOOLEAN"),
    ("is_priority", "boolean", "BOOLEAN"),
    ("opted_out", "boolean", "BOOLEAN"),
    ("created_at", "timestamptz NOT NULL", "TIMESTAMPTZ"),
    ("updated_at", "timestamptz NOT NULL", "TIMESTAMPTZ"),
    ("closed_at", "timestamptz", "TIMESTAMPTZ"),
    ("birth_date", "date", "DATE"),
    ("close_date", "date", "DATE"),
    ("renewal_date", "date", "DATE"),
    ("employees", "integer", "INTEGER"),
    ("annual_revenue", "bigint", "BIGINT"),
    ("rating", "smallint", "SMALLINT"),
    ("source_system", "varchar(20)", "VARCHAR"),
    ("row_version", "integer NOT NULL", "INTEGER"),
]
assert len(COLUMNS) == 40

LOREM = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut "
         "labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris "
         "nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit "
         "esse cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat cupidatat non proident, sunt "
         "in culpa qui officia deserunt mollit anim id est laborum. Renewal discussed with procurement; "
         "follow up after the quarterly review, pricing approved by finance — café, Müller, São Paulo. ")


def arr(*items):
    return "(ARRAY[" + ", ".join("'" + i.replace("'", "''") + "'" for i in items) + "])"


# h0…h9: ten independent non-negative 63-bit hashes of the row number.
FILL = f"""
INSERT INTO {TABLE}
SELECT i,
  1 + h0 % 200000,
  1 + h1 % 5000,
  CASE WHEN h2 % 4 = 0 THEN NULL ELSE 1 + h2 % 1000000 END,
  md5(i::text)::uuid::text,
  {arr('Acme', 'Northwind', 'Contoso', 'Fabrikam', 'Initech', 'Umbrella', 'Globex', 'Hooli', 'Vandelay', 'Wonka', 'Stark', 'Tyrell')}[1 + h3 % 12]
    || ' ' || {arr('Industries', 'Holdings', 'Logistics', 'Systems', 'Consulting', 'Partners', 'Labs', 'Financial Services', 'Health', 'Retail Group')}[1 + h4 % 10]
    || ' #' || i,
  CASE WHEN h5 % 10 = 0 THEN NULL ELSE 'contact.' || i || '@' || {arr('example.com', 'mail.example.org', 'corp.example.net', 'inbox.example.io')}[1 + h5 % 4] END,
  CASE WHEN h6 % 7 = 0 THEN NULL ELSE '+1-' || lpad((h6 % 1000)::text, 3, '0') || '-555-' || lpad((h7 % 10000)::text, 4, '0') END,
  {arr('Open', 'Working', 'Qualified', 'Closed Won', 'Closed Lost', 'Nurture')}[1 + h8 % 6],
  CASE WHEN h9 % 5 = 0 THEN NULL ELSE {arr('Prospecting', 'Discovery', 'Proposal', 'Negotiation', 'Contract', 'Renewal')}[1 + h9 % 6] END,
  {arr('AMER', 'EMEA', 'APAC', 'LATAM')}[1 + h0 % 4],
  {arr('US', 'FR', 'DE', 'GB', 'IN', 'BR', 'JP', 'CA')}[1 + h1 % 8],
  {arr('New York', 'Paris', 'München', 'London', 'Bengaluru', 'São Paulo', 'Tokyo', 'Montréal', 'Chicago', 'Lyon')}[1 + h2 % 10],
  CASE WHEN h3 % 9 = 0 THEN NULL ELSE lpad((h3 % 100000)::text, 5, '0') END,
  (1 + h4 % 9999) || ' ' || {arr('Main St', 'Rue de la Paix', 'Hauptstraße 5', 'High Street', 'MG Road', 'Avenida Paulista', 'Harbour Road')}[1 + h5 % 7],
  substr(lorem, 1 + (h6 % 300)::int, (h7 % 601)::int),
  CASE WHEN h8 % 3 = 0 THEN NULL ELSE substr(lorem, 1 + (h9 % 200)::int, 10 + (h0 % 90)::int) END,
  ((h1 % 1000000000) / 100.0)::numeric(12,2),
  CASE WHEN h2 % 3 = 0 THEN NULL ELSE ((h2 % 5000) / 100.0)::numeric(5,2) END,
  ((h3 % 250000) / 10000.0)::numeric(6,4),
  (h4 % 500)::int,
  ((h5 % 10000000) / 100.0)::numeric(12,2),
  (h6 % 1000000) / 1000.0,
  CASE WHEN h7 % 4 = 0 THEN NULL ELSE (h7 % 1001) / 1000.0 END,
  -90 + (h8 % 180000000) / 1000000.0,
  -180 + (h9 % 360000000) / 1000000.0,
  h0 % 5 <> 0,
  CASE WHEN h1 % 6 = 0 THEN NULL ELSE h1 % 2 = 0 END,
  h2 % 11 = 0,
  timestamptz '2018-01-01 00:00:00+00' + (h3 % 157680000000000) * interval '1 microsecond',
  timestamptz '2023-01-01 00:00:00+00' + (h4 % 63072000000000) * interval '1 microsecond',
  CASE WHEN h5 % 3 = 0 THEN NULL ELSE timestamptz '2020-01-01 00:00:00+00' + (h5 % 157680000000) * interval '1 millisecond' END,
  CASE WHEN h6 % 8 = 0 THEN NULL ELSE date '1940-01-01' + (h6 % 25000)::int END,
  date '2020-01-01' + (h7 % 2500)::int,
  CASE WHEN h8 % 2 = 0 THEN NULL ELSE date '2025-01-01' + (h8 % 1500)::int END,
  CASE WHEN h9 % 10 = 0 THEN NULL ELSE (1 + h9 % 250000)::int END,
  h0 % 10000000000,
  (h1 % 6)::smallint,
  {arr('salesforce', 'hubspot', 'import-2021', 'web', 'partner-api')}[1 + h2 % 5],
  1
FROM (SELECT i, {", ".join(f"hashint8extended(i, {k}) & 9223372036854775807 AS h{k}" for k in range(10))},
             '{(LOREM * 2).replace("'", "''")}'::text AS lorem
      FROM generate_series(1, __ROWS__) AS g(i)) s;
"""


def create_sql(rows):
    cols = ",\n  ".join(f"{n} {t}" for n, t, _ in COLUMNS)
    return f"CREATE TABLE {TABLE} (\n  {cols}\n);\n" + FILL.replace("__ROWS__", str(int(rows)))


def updates_script(keys, txn_rows, round_no):
    """One UPDATE per key, `txn_rows` to a transaction: amount, status, updated_at and row_version."""
    lines = ["\\set ON_ERROR_STOP 1"]
    statuses = ["Open", "Working", "Qualified", "Closed Won", "Closed Lost", "Nurture"]
    for start in range(0, len(keys), txn_rows):
        lines.append("BEGIN;")
        for k in keys[start:start + txn_rows]:
            lines.append(f"UPDATE {TABLE} SET amount = amount + 1.25, status = '{statuses[(k + round_no) % 6]}', "
                         f"updated_at = now(), row_version = {round_no + 1} WHERE id = {k};")
        lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The server

def is_root():
    return os.geteuid() == 0


def pg_bin():
    found = sorted(os.path.join("/usr/lib/postgresql", d, "bin") for d in os.listdir("/usr/lib/postgresql")
                   if os.path.exists(os.path.join("/usr/lib/postgresql", d, "bin", "initdb")))
    if not found:
        sys.exit("no initdb under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    return found[-1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVER_SETTINGS = {
    "wal_level": "logical", "max_replication_slots": "10", "max_wal_senders": "10",
    "fsync": "off", "full_page_writes": "off", "synchronous_commit": "on",
    "shared_buffers": "'256MB'", "max_wal_size": "'8GB'", "checkpoint_timeout": "'30min'",
    "track_commit_timestamp": "on",
}


class Postgres:
    def __init__(self):
        self.started = False
        self.bin = pg_bin()
        self.dir = tempfile.mkdtemp(prefix="tidemark-sources-bench-pg-", dir="/tmp")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "log")
        self.port = free_port()
        if is_root():
            subprocess.run(["chown", "-R", "postgres:postgres", self.dir], check=True)
        self.run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        conf = {**SERVER_SETTINGS, "port": str(self.port), "listen_addresses": "'127.0.0.1'",
                "unix_socket_directories": f"'{self.dir}'"}
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("".join(f"{k} = {v}\n" for k, v in conf.items()))
        self.run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "start")
        self.started = True
        # Stops the server if this process dies without reaching stop().
        as_pg = "runuser -u postgres -- " if is_root() else ""
        watchdog = (f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
                    f"{as_pg}{self.bin}/pg_ctl -D {self.data} -m immediate stop >/dev/null 2>&1")
        subprocess.Popen(["setsid", "sh", "-c", watchdog], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def run(self, program, *args):
        cmd = [os.path.join(self.bin, program), *args]
        if is_root():
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"{program} failed: {out.stderr}")

    def psql_cmd(self, db="bench"):
        return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db]

    def sql(self, statement, db="bench"):
        """Runs SQL; returns the rows as lists of text (unaligned, tab-separated)."""
        out = subprocess.run([*self.psql_cmd(db), "-A", "-t", "-F", "\t", "-c", statement], capture_output=True, text=True,
                             env=PSQL_ENV)
        if out.returncode != 0:
            sys.exit(f"psql failed on {statement[:200]!r}: {out.stderr}")
        return [line.split("\t") for line in out.stdout.splitlines() if line]

    def stop(self):
        if self.started:
            self.run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)


PSQL_ENV = dict(os.environ, PGTZ="UTC", PGDATESTYLE="ISO", PGOPTIONS="-c statement_timeout=0")

# ---------------------------------------------------------------------------------------------
# Processes


def timed(cmd, env=None, stdout_path=None, stdin_path=None):
    """Runs cmd under /usr/bin/time -v; returns (seconds, peak RSS MB, stdout text or None).
    With stdout_path the output goes to that file."""
    out_f = open(stdout_path, "wb") if stdout_path else subprocess.PIPE
    in_f = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        started = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-v", *cmd], stdout=out_f, stderr=subprocess.PIPE, stdin=in_f, env=env)
        seconds = time.monotonic() - started
    finally:
        if stdout_path:
            out_f.close()
        if stdin_path:
            in_f.close()
    err = p.stderr.decode(errors="replace")
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}):\n{err[-3000:]}")
    return seconds, peak_rss(err), (None if stdout_path else p.stdout.decode())


def peak_rss(time_stderr):
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_stderr).group(1)) / 1024


def versions_written(stdout):
    m = re.search(r"complete: (\d+) new versions", stdout)
    return int(m.group(1)) if m else None


def write_config(path, pg, lake):
    with open(path, "w") as f:
        f.write(f"""lake:
  location: {lake}
sources:
  {SOURCE}:
    kind: postgres
    host: 127.0.0.1
    port: {pg.port}
    user: postgres
    database: bench
    tables: ["public.{TABLE}"]
    sslmode: disable
""")


# ---------------------------------------------------------------------------------------------
# DuckDB (this file run with --duckdb-to-delta, as its own process)

def duckdb_con():
    import duckdb
    import duckdb_extension_delta
    ext = os.path.join(os.path.dirname(duckdb_extension_delta.__file__), "extensions", f"v{duckdb.__version__}",
                       "delta.duckdb_extension")
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions=false")
    con.execute(f"LOAD '{ext}'")
    con.execute("SET TimeZone='UTC'")
    return con


def read_csv_sql(csv_path):
    types = ", ".join(f"'{n}': '{d}'" for n, _, d in COLUMNS)
    # Postgres writes NULL as an empty field and '' as "": quoted empties stay empty strings.
    return f"SELECT * FROM read_csv('{csv_path}', header=true, columns={{{types}}}, allow_quoted_nulls=false)"


def duckdb_to_delta(route, csv_path, table_path):
    started = time.monotonic()
    con = duckdb_con()
    if route == "insert":
        # The delta extension inserts into a Delta table but cannot create one: delta-rs writes the
        # empty table (the schema DuckDB gives the CSV's columns), then DuckDB inserts.
        from deltalake import write_deltalake
        empty = con.sql(read_csv_sql(csv_path) + " LIMIT 0").arrow()
        if not hasattr(empty, "schema"):
            empty = empty.read_all()
        write_deltalake(table_path, empty)
        con.execute(f"ATTACH '{table_path}' AS ref (TYPE delta)")
        rows = con.execute(f"INSERT INTO ref {read_csv_sql(csv_path)}").fetchone()[0]
    else:
        from deltalake import WriterProperties, write_deltalake
        reader = con.sql(read_csv_sql(csv_path)).to_arrow_reader(batch_size=122_880)
        write_deltalake(table_path, reader, writer_properties=WriterProperties(compression="ZSTD"))
        rows = None
    import duckdb
    print(json.dumps({"rows": rows, "in_process_seconds": time.monotonic() - started, "duckdb": duckdb.__version__,
                      "threads": con.execute("SELECT current_setting('threads')").fetchone()[0]}))


def delta_rows(con, path):
    return con.execute(f"SELECT count(*) FROM delta_scan('{path}')").fetchone()[0]


def compare_tables(tidemark_table, reference_table):
    """Rows only in one of the two tables, as multisets over the 40 columns."""
    con = duckdb_con()
    cols = ", ".join(n for n, _, _ in COLUMNS)
    only = []
    for a, b in ((tidemark_table, reference_table), (reference_table, tidemark_table)):
        only.append(con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM delta_scan('{a}') EXCEPT ALL "
                                f"SELECT {cols} FROM delta_scan('{b}'))").fetchone()[0])
    sample = []
    if any(only):
        sample = [list(map(str, r)) for r in con.execute(
            f"SELECT {cols} FROM delta_scan('{tidemark_table}') EXCEPT ALL SELECT {cols} FROM delta_scan('{reference_table}') LIMIT 3").fetchall()]
    return {"only_in_tidemark": only[0], "only_in_reference": only[1], "sample": sample}


# ---------------------------------------------------------------------------------------------
# The lake's log, watched while streaming

LOG_FILE = re.compile(r"^(\d{20})\.json$")


def log_versions(table):
    log = os.path.join(table, "_delta_log")
    return sorted(int(m.group(1)) for m in map(LOG_FILE.match, os.listdir(log)) if m)


def commit_adds(table, version):
    """(data files added, commitInfo) of one Delta commit."""
    adds, info = [], {}
    with open(os.path.join(table, "_delta_log", f"{version:020d}.json")) as f:
        for line in f:
            action = json.loads(line)
            if "add" in action and action["add"].get("dataChange", True):
                adds.append(urllib.parse.unquote(action["add"]["path"]))
            elif "commitInfo" in action:
                info = action["commitInfo"]
    return adds, info


class LogWatcher(threading.Thread):
    """Notes when each new commit of the table first appears, and the rows its files add."""

    def __init__(self, table, after_version, want_rows, interval=0.01):
        super().__init__(daemon=True)
        self.table, self.after, self.want, self.interval = table, after_version, want_rows, interval
        self.seen = {}  # version -> wall time (ns) first listed
        self.rows = {}  # version -> rows added
        self.total = 0
        self.done = threading.Event()
        self.stop_flag = threading.Event()

    def run(self):
        import pyarrow.parquet as pq
        while not self.stop_flag.is_set():
            now = time.time_ns()
            for v in log_versions(self.table):
                if v > self.after and v not in self.seen:
                    self.seen[v] = now
                    adds, _ = commit_adds(self.table, v)
                    n = sum(pq.ParquetFile(os.path.join(self.table, p)).metadata.num_rows for p in adds)
                    self.rows[v] = n
                    self.total += n
            if self.total >= self.want:
                self.done.set()
                return
            time.sleep(self.interval)


def new_versions(table, versions):
    """The versions written by the given commits: key, _version_at, _ingested_at (µs), the
    commit's file mtime (ns) and row_version."""
    import pyarrow.parquet as pq
    out = []
    for v in versions:
        adds, info = commit_adds(table, v)
        mtime = os.stat(os.path.join(table, "_delta_log", f"{v:020d}.json")).st_mtime_ns
        for p in adds:
            t = pq.read_table(os.path.join(table, p), columns=["_key", "_version_at", "_ingested_at", "_origin", "row_version"])
            keys = t.column("_key").to_pylist()
            at = t.column("_version_at").cast("int64").to_pylist()
            ing = t.column("_ingested_at").cast("int64").to_pylist()
            origin = t.column("_origin").to_pylist()
            rv = t.column("row_version").to_pylist()
            for i in range(t.num_rows):
                out.append({"key": keys[i], "version_at": at[i], "ingested_at": ing[i], "origin": origin[i],
                            "row_version": rv[i], "log_version": v, "log_mtime_ns": mtime,
                            "commit_ts_ms": info.get("timestamp")})
    return out


def dist(values_ms):
    xs = sorted(values_ms)
    q = lambda p: xs[min(len(xs) - 1, max(0, int(round(p * (len(xs) - 1)))))]
    return {"min": xs[0], "p50": q(0.50), "p95": q(0.95), "p99": q(0.99), "max": xs[-1], "mean": statistics.fmean(xs)}


def child_pid(pid):
    """The first child of `pid` (the program /usr/bin/time runs)."""
    for _ in range(200):
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
        except FileNotFoundError:
            return None
        time.sleep(0.05)
    return None


# ---------------------------------------------------------------------------------------------
# Driver

def reset_source(pg, lake):
    """A fresh lake and no slot or publication: the next sync is an initial copy."""
    shutil.rmtree(lake, ignore_errors=True)
    pg.sql(f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'tidemark_{SOURCE}'")
    pg.sql(f"DROP PUBLICATION IF EXISTS tidemark_{SOURCE}")


def wait_until(what, check, timeout):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--updates", type=int, default=100_000)
    ap.add_argument("--txn-rows", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3, help="initial copies of each side (alternating)")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tidemark"))
    ap.add_argument("--commit", help="the commit the binary was built from (default: this tree's HEAD)")
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-sources"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "sources.json"))
    ap.add_argument("--duckdb-to-delta", nargs=3, metavar=("ROUTE", "CSV", "TABLE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.duckdb_to_delta:
        return duckdb_to_delta(*args.duckdb_to_delta)

    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    lake = os.path.join(args.work, "lake")
    config = os.path.join(args.work, "tidemark.yaml")
    csv_path = os.path.join(args.work, f"{TABLE}.csv")
    env = dict(os.environ, RUST_LOG="warn")
    commit = args.commit or subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                           capture_output=True, text=True).stdout.strip()
    import deltalake
    import duckdb
    import pyarrow
    results = {
        "benchmark": "sources",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "tidemark_commit": commit,
        "tools": {"duckdb": duckdb.__version__, "deltalake": deltalake.__version__, "pyarrow": pyarrow.__version__,
                  "psql": subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()},
        "params": {"rows": args.rows, "columns": len(COLUMNS), "updates": args.updates, "txn_rows": args.txn_rows,
                   "repeat": args.repeat, "seed": args.seed},
    }

    pg = Postgres()
    follower = None
    try:
        results["postgres"] = {"version": pg.sql("SHOW server_version", "postgres")[0][0],
                               "settings": {k: v.strip("'") for k, v in SERVER_SETTINGS.items()}}
        pg.sql("CREATE DATABASE bench", "postgres")
        print(f"building {TABLE}: {args.rows:,} rows × {len(COLUMNS)} columns…", flush=True)
        started = time.monotonic()
        with open(os.path.join(args.work, "create.sql"), "w") as f:
            f.write(create_sql(args.rows))
        subprocess.run([*pg.psql_cmd(), "-f", os.path.join(args.work, "create.sql")], check=True, env=PSQL_ENV)
        pg.sql(f"VACUUM ANALYZE {TABLE}")
        pg.sql("CHECKPOINT")
        heap = int(pg.sql(f"SELECT pg_table_size('{TABLE}')")[0][0])
        results["table"] = {"name": TABLE, "rows": int(pg.sql(f"SELECT count(*) FROM {TABLE}")[0][0]),
                            "heap_bytes": heap, "build_seconds": time.monotonic() - started,
                            "columns": {n: t for n, t, _ in COLUMNS}}
        print(f"  built in {results['table']['build_seconds']:.1f}s, {heap / 1e6:.0f} MB on disk", flush=True)
        write_config(config, pg, lake)

        # 1. Initial copy, both sides, alternating.
        tidemark_table = os.path.join(lake, "sources", SOURCE, TABLE)
        runs = []
        for r in range(args.repeat):
            run = {}
            reset_source(pg, lake)
            secs, rss, out = timed([args.bin, "sync", "--quiet", "--config", config, "--source", SOURCE], env)
            n = versions_written(out)
            if n != args.rows:
                sys.exit(f"tidemark wrote {n} versions, not {args.rows}:\n{out}")
            run["tidemark"] = {"seconds": secs, "peak_rss_mb": rss, "versions": n}
            if r == 0:
                results["tidemark_output_initial"] = out.strip()
            print(f"[{r + 1}/{args.repeat}] tidemark initial copy: {n:,} versions in {secs:.2f}s, peak RSS {rss:.0f} MB", flush=True)

            secs, rss, _ = timed([*pg.psql_cmd(), "-c", f"COPY (SELECT * FROM {TABLE}) TO STDOUT (FORMAT csv, HEADER)"],
                                 PSQL_ENV, stdout_path=csv_path)
            lines = int(subprocess.run(["wc", "-l", csv_path], capture_output=True, text=True).stdout.split()[0])
            run["psql_copy"] = {"seconds": secs, "peak_rss_mb": rss, "csv_bytes": os.path.getsize(csv_path), "csv_lines": lines}
            print(f"[{r + 1}/{args.repeat}] psql COPY TO STDOUT (csv): {secs:.2f}s, peak RSS {rss:.0f} MB, "
                  f"{os.path.getsize(csv_path) / 1e6:.0f} MB", flush=True)
            for route in ("insert", "deltars"):
                ref_table = os.path.join(args.work, f"reference-{route}")
                shutil.rmtree(ref_table, ignore_errors=True)
                secs, rss, out = timed([sys.executable, os.path.abspath(__file__), "--duckdb-to-delta", route, csv_path, ref_table])
                inner = json.loads(out.strip().splitlines()[-1])
                run[f"duckdb_{route}"] = {"seconds": secs, "peak_rss_mb": rss, **inner}
                print(f"[{r + 1}/{args.repeat}] duckdb CSV → Delta ({route}): {secs:.2f}s, peak RSS {rss:.0f} MB", flush=True)
            runs.append(run)

        # Row counts and content, on the last repeat's tables.
        con = duckdb_con()
        counts = {"tidemark": delta_rows(con, tidemark_table), "csv_rows": runs[-1]["psql_copy"]["csv_lines"] - 1,
                  "duckdb_insert": delta_rows(con, os.path.join(args.work, "reference-insert")),
                  "duckdb_deltars": delta_rows(con, os.path.join(args.work, "reference-deltars"))}
        con.close()
        content = compare_tables(tidemark_table, os.path.join(args.work, "reference-insert"))
        results["initial_copy_checks"] = {"rows": counts, "content_vs_duckdb_insert": content}
        if set(counts.values()) != {args.rows} or content["only_in_tidemark"] or content["only_in_reference"]:
            sys.exit(f"THE TABLES DIFFER: {json.dumps(results['initial_copy_checks'])}")
        print(f"  check: {args.rows:,} rows in each table, the 40 columns identical (EXCEPT ALL both ways)", flush=True)

        med = lambda side, key: statistics.median(run[side][key] for run in runs)
        ref_sums = [run["psql_copy"]["seconds"] + min(run["duckdb_insert"]["seconds"], run["duckdb_deltars"]["seconds"]) for run in runs]
        summary = {
            "tidemark_seconds": med("tidemark", "seconds"), "tidemark_peak_rss_mb": med("tidemark", "peak_rss_mb"),
            "tidemark_rows_per_s": args.rows / med("tidemark", "seconds"),
            "psql_copy_seconds": med("psql_copy", "seconds"), "psql_copy_peak_rss_mb": med("psql_copy", "peak_rss_mb"),
            "duckdb_insert_seconds": med("duckdb_insert", "seconds"), "duckdb_insert_peak_rss_mb": med("duckdb_insert", "peak_rss_mb"),
            "duckdb_deltars_seconds": med("duckdb_deltars", "seconds"), "duckdb_deltars_peak_rss_mb": med("duckdb_deltars", "peak_rss_mb"),
            "reference_seconds": statistics.median(ref_sums),
            "csv_bytes": runs[-1]["psql_copy"]["csv_bytes"],
        }
        summary["ratio"] = summary["tidemark_seconds"] / summary["reference_seconds"]
        summary["ratio_per_run"] = [run["tidemark"]["seconds"] / s for run, s in zip(runs, ref_sums)]
        summary["ratio_vs_copy_plus_duckdb_insert"] = summary["tidemark_seconds"] / (summary["psql_copy_seconds"] + summary["duckdb_insert_seconds"])
        summary["ratio_vs_copy_plus_duckdb_deltars"] = summary["tidemark_seconds"] / (summary["psql_copy_seconds"] + summary["duckdb_deltars_seconds"])
        results["initial_copy"] = {"summary": summary, "runs": runs}
        print(f"initial copy: tidemark {summary['tidemark_seconds']:.2f}s vs COPY + DuckDB {summary['reference_seconds']:.2f}s "
              f"= {summary['ratio']:.2f}× (target ≤ 1.0×), tidemark peak RSS {summary['tidemark_peak_rss_mb']:.0f} MB", flush=True)
        os.remove(csv_path)

        # 2. Streaming: a follower, and updates committed while it runs.
        rng = random.Random(args.seed)
        keys = rng.sample(range(1, args.rows + 1), args.updates)
        script = os.path.join(args.work, "updates-1.sql")
        with open(script, "w") as f:
            f.write(updates_script(keys, args.txn_rows, 1))
        base_version = log_versions(tidemark_table)[-1]
        follow_err = os.path.join(args.work, "follow.stderr")
        follow_out = os.path.join(args.work, "follow.stdout")
        with open(follow_out, "wb") as fo, open(follow_err, "wb") as fe:
            follower = subprocess.Popen(["/usr/bin/time", "-v", args.bin, "sync", "--quiet", "--config", config,
                                         "--source", SOURCE, "--follow"], stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=env)
        follower_started = time.monotonic()

        def slot_active():
            if follower.poll() is not None:
                sys.exit(f"the follower exited:\n{open(follow_err).read()[-3000:]}")
            return pg.sql(f"SELECT active FROM pg_replication_slots WHERE slot_name = 'tidemark_{SOURCE}'") == [["t"]]
        wait_until("the follower's slot to be active", slot_active, 120)
        ready = time.monotonic() - follower_started
        time.sleep(1.0)  # anything the follower does on start (its catch-up marker) is done
        idle_versions = log_versions(tidemark_table)[-1] - base_version
        base_version = log_versions(tidemark_table)[-1]
        watcher = LogWatcher(tidemark_table, base_version, args.updates)
        watcher.start()
        print(f"follower streaming after {ready:.2f}s; applying {args.updates:,} updates in transactions of {args.txn_rows}…", flush=True)
        client_started = time.time_ns()
        p = subprocess.run([*pg.psql_cmd(), "-f", script], env=PSQL_ENV, capture_output=True, text=True)
        client_ended = time.time_ns()
        if p.returncode != 0:
            sys.exit(f"the updates failed: {p.stderr[-2000:]}")
        deadline = time.monotonic() + 900
        while not watcher.done.wait(0.1):
            if follower.poll() is not None:
                sys.exit(f"the follower exited early:\n{open(follow_err).read()[-3000:]}")
            if time.monotonic() > deadline:
                sys.exit(f"the lake holds {watcher.total:,} of {args.updates:,} updates after 900 s")
        all_landed = time.time_ns()
        child = child_pid(follower.pid)
        stop_sent = time.monotonic()
        os.kill(child, signal.SIGTERM)
        rc = follower.wait(timeout=120)
        stop_seconds = time.monotonic() - stop_sent
        follower_stderr = open(follow_err).read()
        follower_stdout = open(follow_out).read()
        follower = None
        follow_rss = peak_rss(follower_stderr)

        versions = sorted(watcher.seen)
        rows = new_versions(tidemark_table, versions)
        changed = [r for r in rows if r["origin"] != "copy"]
        if len(changed) != args.updates or len({r["key"] for r in changed}) != args.updates or \
                {r["row_version"] for r in changed} != {2}:
            sys.exit(f"the lake's new versions are not the {args.updates:,} updates: {len(changed):,} versions, "
                     f"{len({r['key'] for r in changed}):,} keys, row_version {sorted({r['row_version'] for r in changed})}")
        first_commit_us = min(r["version_at"] for r in changed)
        last_commit_us = max(r["version_at"] for r in changed)
        last_visible_ns = max(r["log_mtime_ns"] for r in changed)
        last_seen_ns = max(watcher.seen[r["log_version"]] for r in changed)
        last_row = max(changed, key=lambda r: r["version_at"])
        lag_lower = dist([(r["ingested_at"] - r["version_at"]) / 1000 for r in changed])
        lag_commit = dist([(r["log_mtime_ns"] / 1000 - r["version_at"]) / 1000 for r in changed])
        lag_seen = dist([(watcher.seen[r["log_version"]] / 1000 - r["version_at"]) / 1000 for r in changed])
        span_s = (last_visible_ns / 1000 - first_commit_us) / 1e6
        streaming = {
            "updates": args.updates, "transactions": -(-args.updates // args.txn_rows), "txn_rows": args.txn_rows,
            "follower_ready_seconds": ready, "commits_while_idle_at_start": idle_versions,
            "client_seconds": (client_ended - client_started) / 1e9,
            "client_updates_per_s": args.updates / ((client_ended - client_started) / 1e9),
            "commit_span_seconds": (last_commit_us - first_commit_us) / 1e6,
            "first_commit_to_last_visible_seconds": span_s,
            "records_per_s": args.updates / span_s,
            "lake_commits": len(versions),
            "rows_per_lake_commit": {"min": min(watcher.rows.values()), "median": statistics.median(watcher.rows.values()),
                                     "max": max(watcher.rows.values())},
            "lag_ms_ingested_minus_commit_lower_bound": lag_lower,
            "lag_ms_delta_commit_mtime_minus_commit": lag_commit,
            "lag_ms_poller_seen_minus_commit": lag_seen,
            "last_row": {"key": last_row["key"], "lag_ms_poller_seen": (watcher.seen[last_row["log_version"]] / 1000 - last_row["version_at"]) / 1000,
                         "lag_ms_delta_commit_mtime": (last_row["log_mtime_ns"] / 1000 - last_row["version_at"]) / 1000,
                         "lag_ms_ingested": (last_row["ingested_at"] - last_row["version_at"]) / 1000},
            "last_client_ack_to_all_visible_seconds": (last_visible_ns - client_ended) / 1e9,
            "last_poller_seen_minus_last_visible_ms": (last_seen_ns - last_visible_ns) / 1e6,
            "follower_peak_rss_mb": follow_rss, "follower_exit_code": rc, "follower_stop_seconds": stop_seconds,
            "follower_stdout": follower_stdout.strip()[-2000:],
            "follower_stderr_head": "\n".join(l for l in follower_stderr.splitlines() if not l.startswith("\t"))[-2000:],
        }
        results["streaming"] = streaming
        print(f"streaming: client {streaming['client_seconds']:.1f}s ({streaming['client_updates_per_s']:,.0f} updates/s); "
              f"{streaming['records_per_s']:,.0f} records/s into the lake over {len(versions)} commits; lag p50 "
              f"{lag_commit['p50']:.0f} ms, p95 {lag_commit['p95']:.0f} ms, max {lag_commit['max']:.0f} ms (Delta commit − source commit); "
              f"last row seen {streaming['last_row']['lag_ms_poller_seen']:.0f} ms after its commit; follower peak RSS {follow_rss:.0f} MB, "
              f"exit {rc}", flush=True)

        # 3. Catch-up: changes waiting in the slot, read by a one-off run.
        keys2 = random.Random(args.seed + 1).sample(range(1, args.rows + 1), args.updates)
        script2 = os.path.join(args.work, "updates-2.sql")
        with open(script2, "w") as f:
            f.write(updates_script(keys2, args.txn_rows, 2))
        started = time.monotonic()
        subprocess.run([*pg.psql_cmd(), "-f", script2], env=PSQL_ENV, check=True, capture_output=True)
        client_alone = time.monotonic() - started
        secs, rss, out = timed([args.bin, "sync", "--quiet", "--config", config, "--source", SOURCE], env)
        n = versions_written(out)
        if n != args.updates:
            sys.exit(f"the catch-up run wrote {n} versions, not {args.updates}:\n{out}")
        results["catch_up"] = {"updates": n, "seconds": secs, "records_per_s": n / secs, "peak_rss_mb": rss,
                               "client_alone_seconds": client_alone, "client_alone_updates_per_s": args.updates / client_alone}
        print(f"catch-up: {n:,} waiting changes in {secs:.2f}s ({n / secs:,.0f}/s), peak RSS {rss:.0f} MB; "
              f"the client alone applied them at {args.updates / client_alone:,.0f}/s", flush=True)
    finally:
        if follower is not None and follower.poll() is None:
            child = child_pid(follower.pid)
            if child:
                os.kill(child, signal.SIGTERM)
            try:
                follower.wait(timeout=60)
            except subprocess.TimeoutExpired:
                follower.kill()
        pg.stop()

    s = results["initial_copy"]["summary"]
    results["targets"] = {"initial_copy_vs_copy_plus_duckdb_max": 1.0, "peak_rss_mb_max": 500}
    results["met"] = {
        "initial_copy_ratio": s["ratio"] <= 1.0,
        "initial_copy_peak_rss": max(run["tidemark"]["peak_rss_mb"] for run in results["initial_copy"]["runs"]) < 500,
        "streaming_peak_rss": results["streaming"]["follower_peak_rss_mb"] < 500,
    }
    print("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in results["met"].items()), flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"→ {args.out}")


if __name__ == "__main__":
    main()
