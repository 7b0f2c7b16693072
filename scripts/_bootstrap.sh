# Sourced by the scripts/ entry points: make the tool chain ready on a fresh clone.
# Needs only python3 (3.11+) and, for buf and the polyglot test, node with npm.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

_python="${PYTHON:-python3}"
if ! "$_python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "superapp: Python 3.11 or newer is required (found: $("$_python" --version 2>&1))" >&2
  exit 1
fi

# The virtual environment holds uv itself (pinned in the lock), so a fresh machine
# needs nothing beyond Python to reproduce the locked environment.
if [ ! -x .venv/bin/uv ]; then
  "$_python" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
fi
# Re-sync only when the lock or project metadata changed since the last sync.
_stamp=.venv/.superapp-synced
if [ ! -f "$_stamp" ] || [ uv.lock -nt "$_stamp" ] || [ pyproject.toml -nt "$_stamp" ]; then
  VIRTUAL_ENV="$ROOT/.venv" .venv/bin/uv sync --frozen --quiet
  touch "$_stamp"
fi

superapp_node_tools() {
  # buf (contracts) and @grpc/grpc-js (polyglot test) come pinned from npm.
  if ! command -v npm >/dev/null 2>&1; then
    echo "superapp: node and npm are needed for buf and the polyglot test" >&2
    exit 1
  fi
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
  fi
}
