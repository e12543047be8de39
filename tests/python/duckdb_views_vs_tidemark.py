"""Checks that DuckDB, running the statements of `tidemark catalog ddl --engine duckdb`, returns
exactly the rows `tidemark sql` returns, relation by relation.

Usage: duckdb_views_vs_tidemark.py <ddl.sql> <folder>

<folder> holds one `<relation>.parquet` per relation (`account`, `account_history`,
`account_scd2`, ...), written by `tidemark sql --format parquet --out`. The DDL must create a view
for each of them and no other. For each relation the view and the file must have the same column
names in the same order and the same multiset of rows: nothing in one that is not in the other
(EXCEPT ALL, both ways) and equal counts. Where DuckDB reads a file column with another type
than the view's, the file's column is cast to the view's type (the cast is printed).

Prints one line per relation, then exits 1 naming every mismatch, with its first differing
rows. For the CLI's end-to-end test (crates/cli/tests/cli/sql.rs). Nothing is downloaded: the
statements must LOAD the delta extension by path.
"""

import pathlib
import sys

import duckdb

# This folder is on sys.path when the script runs.
from delta_reader_check import quote

# Differing rows shown per direction.
SHOWN = 5


def string(text):
    return "'" + text.replace("'", "''") + "'"


def columns(con, relation):
    return [(row[0], row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]


def count(con, query):
    return con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0]


def compare(con, name, parquet):
    """Problems found comparing view `name` with the file (empty when they agree), and notes."""
    view = quote(name)
    scan = f"read_parquet({string(str(parquet))})"
    in_view, in_file = columns(con, view), columns(con, scan)
    if [c for c, _ in in_view] != [c for c, _ in in_file]:
        return [f"columns differ:\n    duckdb:   {in_view}\n    tidemark: {in_file}"], []
    select, notes = [], []
    for (column, view_type), (_, file_type) in zip(in_view, in_file):
        if view_type == file_type:
            select.append(quote(column))
        else:
            select.append(f"CAST({quote(column)} AS {view_type}) AS {quote(column)}")
            notes.append(f"{column}: {file_type} read as {view_type}")
    tidemark = f"SELECT {', '.join(select)} FROM {scan}"
    duck = f"SELECT * FROM {view}"
    problems = []
    counts = (count(con, duck), count(con, tidemark))
    if counts[0] != counts[1]:
        problems.append(f"{counts[0]} rows in duckdb, {counts[1]} from tidemark")
    for label, left, right in (("only in duckdb", duck, tidemark), ("only from tidemark", tidemark, duck)):
        difference = f"{left} EXCEPT ALL {right}"
        n = count(con, difference)
        if n:
            # As text: Python's datetime for TIMESTAMPTZ would need pytz.
            text = ", ".join(f"CAST({quote(c)} AS VARCHAR)" for c, _ in in_view)
            rows = con.execute(f"SELECT {text} FROM ({difference}) LIMIT {SHOWN}").fetchall()
            shown = "".join(f"\n      {row}" for row in rows)
            problems.append(f"{n} rows {label}, first {len(rows)}:{shown}")
    return problems, notes


def main():
    ddl, folder = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions=false")
    con.execute("SET autoload_known_extensions=false")
    con.execute(ddl.read_text())
    views = {row[0] for row in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    files = {p.stem: p for p in folder.glob("*.parquet")}
    failures = []
    if views != set(files):
        failures.append(f"views without a tidemark file: {sorted(views - set(files))}; "
                        f"files without a view: {sorted(set(files) - views)}")
    for name in sorted(views & set(files)):
        problems, notes = compare(con, name, files[name].resolve())
        rows = con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]
        status = "ok" if not problems else "MISMATCH"
        print(f"{name}: {rows} rows, {status}" + "".join(f"; {n}" for n in notes))
        failures.extend(f"{name}: {p}" for p in problems)
    if failures:
        print("\nDuckDB's views and tidemark sql disagree:", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        sys.exit(1)
    print(f"{len(files)} relations: duckdb {duckdb.__version__} returns exactly tidemark's rows")


if __name__ == "__main__":
    main()
