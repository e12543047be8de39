#!/usr/bin/env bash
# Creates (once) the Python venv the interop tests use and prints its python path.
# Safe to call concurrently from several test processes: the work happens under a lock, and a
# stamp file records which requirements the venv was built from.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${TIDEMARK_VENV:-$repo/target/python-venv}"
req="$repo/${TIDEMARK_REQUIREMENTS:-tests/python/requirements.txt}"
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
