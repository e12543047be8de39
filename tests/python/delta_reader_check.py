"""Reads every history table of a Tidemark lake with DuckDB's delta extension and prints JSON.

Usage: delta_reader_check.py <lake folder> <output.json>

An independent reader for the interop test (crates/sync/tests/sync/interop_duckdb.rs): for each
table under <lake>/objects/ it writes the columns with DuckDB's types, every row ordered by
Id, _version_at, _origin (then the other metadata columns, so the order is total), the number
of versions and the number of live records (latest version per Id not deleted). Values are
rendered canonically so the Rust side can compare them exactly: timestamps as epoch
microseconds, decimals as text with their scale, dates as YYYY-MM-DD, nulls as null.

The extension is loaded from the pip package by path: nothing is downloaded.
"""

import json
import pathlib
import sys

import duckdb
import duckdb_extension_delta

ORDER = ["Id", "_version_at", "_origin", "_deleted", "_ingested_at", "_run_id"]


def connect():
    ext = pathlib.Path(duckdb_extension_delta.__file__).parent / "extensions" / f"v{duckdb.__version__}" / "delta.duckdb_extension"
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions=false")
    con.execute("SET autoload_known_extensions=false")
    con.execute(f"LOAD '{ext}'")
    return con


def quote(name):
    return '"' + name.replace('"', '""') + '"'


def canonical(name, duck_type):
    """A SQL expression rendering column `name` the way the Rust side renders Arrow values."""
    col = quote(name)
    if duck_type.startswith("TIMESTAMP"):
        return f"epoch_us({col})"
    if duck_type.startswith("DECIMAL") or duck_type == "DATE":
        return f"CAST({col} AS VARCHAR)"
    return col


def read_table(con, path):
    scan = f"delta_scan('{path}')"
    columns = [(row[0], row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()]
    select = ", ".join(canonical(name, ty) for name, ty in columns)
    order = ", ".join(quote(c) for c in ORDER)
    rows = con.execute(f"SELECT {select} FROM {scan} ORDER BY {order}").fetchall()
    versions = con.execute(f"SELECT count(*) FROM {scan}").fetchone()[0]
    live = con.execute(
        f"""SELECT count(*) FROM (
              SELECT "_deleted", row_number() OVER (PARTITION BY "Id" ORDER BY "_version_at" DESC, "_ingested_at" DESC, "_deleted" DESC) AS rank
              FROM {scan})
            WHERE rank = 1 AND NOT "_deleted" """
    ).fetchone()[0]
    return {"columns": columns, "rows": [list(r) for r in rows], "versions": versions, "live": live}


def main():
    lake, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    con = connect()
    tables = {p.name: read_table(con, p.resolve()) for p in sorted((lake / "objects").iterdir()) if p.is_dir()}
    out.write_text(json.dumps({"duckdb": duckdb.__version__, "tables": tables}))


if __name__ == "__main__":
    main()
