"""Erasure benchmark: `tidemark erase` beside delta-rs's DELETE + VACUUM, measured in one run.

    cargo build --release -p tidemark
    TIDEMARK_VENV=target/bench-venv TIDEMARK_REQUIREMENTS=bench/requirements.txt scripts/python-venv.sh
    target/bench-venv/bin/python bench/erase_bench.py --accounts 1000000 --out bench/results/erase.json

The lake: the query benchmark's (`query_bench.build_lake`): 1,000,000 Accounts synced from the
simulator, then every Account updated twice a month apart and synced again (3 versions each).
100 Account Ids are drawn with a seeded `random.Random` (then, a second run, one Id). Two copies
of the lake are erased, each process under /usr/bin/time -v (seconds, peak RSS):

- `tidemark erase Account --ids subjects.txt`: audit, suppression, the files holding the Ids
  rewritten in one commit, the replaced files deleted, their log statistics stripped, older
  checkpoints replaced;
- the reference, the usual way with delta-rs (`deltalake` package): lift `delta.appendOnly`,
  `DeltaTable.delete('"Id" IN (…)')`, `vacuum(retention_hours=0)`. It leaves the predicate (the
  Ids) in the commit and the old files' statistics in the log; reported, not fixed.

Both must leave the same rows (checked: no subject's version left, every other version kept);
reported are the bytes of the files each rewrote against the table's size.

`python bench/erase_bench.py --delta-rs-erase LAKE IDS` is the reference process itself.
"""

import argparse
import json
import os
import random
import re
import shutil
import sys

from benchlib import Sim, machine, timed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def delta_rs_erase(table_path, ids_file):
    """The reference: delete the Ids' versions with delta-rs, then vacuum at zero retention."""
    from deltalake import DeltaTable
    ids = [line.strip() for line in open(ids_file) if line.strip()]
    dt = DeltaTable(table_path)
    dt.alter.set_table_properties({"delta.appendOnly": "false"})
    listed = ", ".join(f"'{i}'" for i in ids)
    metrics = dt.delete(f'"Id" IN ({listed})')
    dt.alter.set_table_properties({"delta.appendOnly": "true"})
    removed = dt.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False)
    print(json.dumps({"delete": metrics, "vacuumed": len(removed)}))


def table_bytes(path):
    """Bytes of the Parquet files the table's current version reads."""
    import pyarrow as pa
    from deltalake import DeltaTable
    return sum(pa.table(DeltaTable(path).get_add_actions(flatten=True))["size_bytes"].to_pylist())


def versions_of(path, ids):
    """(versions of the subjects, versions of the others) in the table."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable
    table = DeltaTable(path).to_pyarrow_table(columns=["Id"])
    hit = pc.is_in(table["Id"], value_set=pa.array(sorted(ids)))
    theirs = pc.sum(hit).as_py() or 0
    return theirs, table.num_rows - theirs


def log_mentions(path, ids):
    """Whether any Delta log file under the table names a subject Id."""
    folder = os.path.join(path, "_delta_log")
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        if any(i.encode() in data for i in ids):
            return True
    return False


def erase_both(args, env, built, config, subjects):
    """Erases `subjects` from two copies of the lake, with Tidemark and with delta-rs."""
    account = os.path.join(built, "objects", "account")
    ids_file = os.path.join(args.work, "subjects.txt")
    with open(ids_file, "w") as f:
        f.write("\n".join(subjects) + "\n")
    before_theirs, before_others = versions_of(account, subjects)
    print(f"  {len(subjects)} subjects with {before_theirs} versions", flush=True)
    lakes = {name: os.path.join(args.work, f"lake-{name}") for name in ("tidemark", "delta-rs")}
    for lake in lakes.values():
        shutil.rmtree(lake, ignore_errors=True)
        shutil.copytree(built, lake)
    cmd = [args.bin, "erase", "Account", "--ids", ids_file, "--reason", "benchmark", "--config", config,
           "--lake", lakes["tidemark"]]
    secs, rss, out = timed(cmd, env)
    rewritten = [float(x) for x in re.search(r"\(([\d.]+) of ([\d.]+) MB\)", out).groups()]
    files_rewritten = int(re.search(r"(\d+) files rewritten", out).group(1))
    tidemark = {"seconds": round(secs, 2), "peak_rss_mb": round(rss), "files_rewritten": files_rewritten,
                "mb_rewritten": rewritten[0], "table_mb": rewritten[1], "output": out.strip()}
    print(f"    tidemark erase: {secs:.2f}s, peak RSS {rss:.0f} MB, {files_rewritten} files, "
          f"{rewritten[0]:.1f} of {rewritten[1]:.1f} MB rewritten", flush=True)

    ref_table = os.path.join(lakes["delta-rs"], "objects", "account")
    secs_r, rss_r, out_r = timed([sys.executable, os.path.abspath(__file__), "--delta-rs-erase", ref_table, ids_file], env)
    ref = json.loads(out_r.strip().splitlines()[-1])
    delete = ref["delete"]
    print(f"    delta-rs delete + vacuum: {secs_r:.2f}s, peak RSS {rss_r:.0f} MB, "
          f"{delete.get('num_removed_files')} files rewritten", flush=True)

    results = {}
    for name, path in (("tidemark", os.path.join(lakes["tidemark"], "objects", "account")), ("delta-rs", ref_table)):
        theirs, others = versions_of(path, subjects)
        results[name] = {"subject_versions_left": theirs, "other_versions": others,
                         "log_names_a_subject": log_mentions(path, subjects)}
        if theirs != 0 or others != before_others:
            sys.exit(f"{name}: {theirs} subject versions left, {others} others (want 0, {before_others})")
    tidemark.update(results["tidemark"])
    reference = {"seconds": round(secs_r, 2), "peak_rss_mb": round(rss_r), "files_rewritten": delete.get("num_removed_files"),
                 "files_added": delete.get("num_added_files"), "vacuumed_files": ref["vacuumed"], **results["delta-rs"]}
    return {"subjects": len(subjects), "subject_versions": before_theirs, "versions": before_theirs + before_others,
            "tidemark": tidemark, "delta_rs_delete_vacuum": reference}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--subjects", type=int, default=100)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tidemark"))
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-erase"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "erase.json"))
    ap.add_argument("--reuse-lake", action="store_true", help="erase from the lake an earlier run built in --work")
    ap.add_argument("--delta-rs-erase", nargs=2, metavar=("TABLE", "IDS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.delta_rs_erase:
        delta_rs_erase(*args.delta_rs_erase)
        return
    from query_bench import build_lake
    env = dict(os.environ, RUST_LOG="warn")
    built = os.path.join(args.work, "lake")
    if not args.reuse_lake:
        shutil.rmtree(args.work, ignore_errors=True)
        os.makedirs(args.work)
        print(f"building the lake from a {args.accounts:,}-Account org…", flush=True)
        sim = Sim(args.bin, args.accounts, args.seed)
        try:
            build_lake(args, sim, env)
        finally:
            sim.stop()
    config = os.path.join(args.work, "erase.yaml")
    with open(config, "w") as f:
        f.write("sync:\n  parallelism: 1\n")
    account = os.path.join(built, "objects", "account")
    from deltalake import DeltaTable
    ids = sorted({r for r in DeltaTable(account).to_pyarrow_table(columns=["Id"])["Id"].to_pylist()})
    size = table_bytes(account)
    files = len(DeltaTable(account).file_uris())
    runs = [erase_both(args, env, built, config, sorted(random.Random(args.seed).sample(ids, count)))
            for count in (args.subjects, 1)]
    report = {
        "benchmark": "erase",
        "machine": machine(),
        "accounts": args.accounts,
        "versions": runs[0]["versions"],
        "files": files,
        "table_mb": round(size / 1e6, 1),
        "runs": runs,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps({k: v for k, v in report.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
