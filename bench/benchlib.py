"""Pieces the benchmarks share: timing a command, the simulator process, a config file."""

import json
import os
import platform
import re
import subprocess
import sys
import time

import requests


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time -v; returns (seconds, peak RSS MB, stdout)."""
    started = time.monotonic()
    out = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env)
    seconds = time.monotonic() - started
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1)) / 1024
    return seconds, rss, out.stdout


def machine():
    """The machine a benchmark ran on: CPU model, cores, memory, kernel, load when it started."""
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
    load = open("/proc/loadavg").read().split()[:3]
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release(), "load_average_at_start": load}


def versions_written(stdout):
    m = re.search(r"complete: (\d+) new versions", stdout)
    return int(m.group(1)) if m else 0


class Sim:
    def __init__(self, binary, accounts, seed, tls_dir=None):
        """tls_dir: serve HTTPS, its CA written there (clients that insist on https need it)."""
        tls = ["--tls", "--cert-dir", tls_dir] if tls_dir else []
        self.proc = subprocess.Popen(
            [binary, "sim", "serve", "--accounts", str(accounts), "--seed", str(seed), *tls],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.creds = json.loads(self.proc.stdout.readline())
        self.base = self.creds["base_url"]
        self.ca_file = self.creds.get("certificate_path")
        self.session = requests.Session()
        self.session.trust_env = False
        if self.ca_file:
            self.session.verify = self.ca_file

    def admin(self, path, body):
        r = self.session.post(f"{self.base}/__admin/{path}", json=body)
        r.raise_for_status()
        return r.json()

    def token(self):
        r = self.session.post(f"{self.base}/services/oauth2/token", data={
            "grant_type": "client_credentials", "client_id": self.creds["client_id"],
            "client_secret": self.creds["client_secret"]})
        r.raise_for_status()
        return r.json()["access_token"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def write_config(path, sim, objects):
    """A config syncing from the simulator; objects maps an API name to its api (bulk|rest|auto)."""
    with open(path, "w") as f:
        f.write(f"""salesforce:
  auth:
    flow: client_credentials
    login_url: {sim.base}
    client_id: {sim.creds['client_id']}
    client_secret: {sim.creds['client_secret']}
sync:
  parallelism: 1
  objects:
""")
        for name, api in objects.items():
            f.write(f"    {name}:\n      api: {api}\n")
