"""Runs the statements `tidemark catalog ddl --engine duckdb` writes in a real DuckDB and prints
every view they created as JSON.

Usage:
  duckdb_ddl_check.py extension                    print the delta extension's file (from the
                                                   duckdb-extension-delta wheel)
  duckdb_ddl_check.py run <ddl.sql> <output.json>  execute the statements, then dump the views

For the DDL interop test (crates/query/tests/query/ddl.rs). Nothing is downloaded: automatic
extension installs are off, so the statements must LOAD the extension by path. The output maps
each view ("schema.name") to its columns with DuckDB's types and its rows, values rendered as the
Rust side expects: timestamps as epoch microseconds, decimals and dates as text, nulls as null.
"""

import json
import pathlib
import sys

import duckdb
import duckdb_extension_delta

# The same canonical rendering the Delta reader check uses (this folder is on sys.path).
from delta_reader_check import canonical, quote


def extension_path():
    base = pathlib.Path(duckdb_extension_delta.__file__).parent
    return base / "extensions" / f"v{duckdb.__version__}" / "delta.duckdb_extension"


def dump(con, schema, view):
    relation = f"{quote(schema)}.{quote(view)}"
    columns = [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
    select = ", ".join(canonical(n, t) for n, t in columns)
    rows = con.execute(f"SELECT {select} FROM {relation}").fetchall()
    return {"columns": columns, "rows": [list(r) for r in rows]}


def run(ddl_path, out_path):
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions=false")
    con.execute("SET autoload_known_extensions=false")
    con.execute(pathlib.Path(ddl_path).read_text())
    views = con.execute(
        "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal ORDER BY ALL"
    ).fetchall()
    result = {f"{s}.{v}": dump(con, s, v) for s, v in views}
    pathlib.Path(out_path).write_text(json.dumps({"duckdb": duckdb.__version__, "views": result}))


def main():
    if sys.argv[1] == "extension":
        print(extension_path())
    elif sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")


if __name__ == "__main__":
    main()
