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
# Bytecode is compiled at install time: where PYTHONDONTWRITEBYTECODE is set (it is on
# these machines) nothing else writes it, and every process of the stack and of the
# suite compiled its imports from source again: a service's imports cost 4.8 CPU-s
# that way and 2.0 from bytecode, and a test run starts hundreds of such processes.
_stamp=.venv/.superapp-synced-compiled
if [ ! -f "$_stamp" ] || [ uv.lock -nt "$_stamp" ] || [ pyproject.toml -nt "$_stamp" ]; then
  VIRTUAL_ENV="$ROOT/.venv" .venv/bin/uv sync --frozen --quiet --compile-bytecode
  touch "$_stamp"
fi
# Our own code, for the same reason; compileall rewrites only what changed since.
.venv/bin/python -m compileall -q -j 0 services bff generated scripts >/dev/null

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

superapp_prometheus() {
  # promtool (scripts/check, the rule tests) and prometheus (scripts/stack --observability,
  # the e2e test) come from Debian's package; nothing else on the path is assumed.
  if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    return 0
  fi
  local run=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      run=(sudo -n)
    else
      echo "superapp: promtool and prometheus are missing: install Debian's 'prometheus' package (apt-get install --no-install-recommends prometheus)" >&2
      exit 1
    fi
  fi
  # The package starts a Prometheus service on install where it can (systemd or its
  # init script), which would hold port 9090 and scrape nothing of ours: a policy-rc.d
  # that refuses every start keeps it down, and is removed again if it was ours.
  local policy=/usr/sbin/policy-rc.d ours=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${run[@]}" tee "$policy" >/dev/null
    "${run[@]}" chmod 755 "$policy"
    ours=1
  fi
  local status=0
  {
    "${run[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null ||
      { "${run[@]}" apt-get update -q >/dev/null &&
        "${run[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null; }
  } || status=$?
  [ -z "$ours" ] || "${run[@]}" rm -f "$policy"
  if [ "$status" -ne 0 ]; then
    echo "superapp: apt-get install prometheus failed; install Debian's 'prometheus' package" >&2
    exit 1
  fi
  # Where systemd runs and started it anyway (a policy-rc.d of someone else's allowing it).
  if [ -d /run/systemd/system ] && systemctl is-active --quiet prometheus 2>/dev/null; then
    "${run[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
}
