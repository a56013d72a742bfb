#!/usr/bin/env bash
# The whole test suite on real servers: starts PostgreSQL, Redis and the S3 server with
# scripts/services.sh when they are not up yet, runs pytest with their NER_* variables,
# stops what it started, and exits with pytest's status. Extra arguments go to pytest.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"

started=0
if ! scripts/services.sh status >/dev/null 2>&1; then
  scripts/services.sh start >/dev/null || { echo "test.sh: could not start the services" >&2; exit 1; }
  started=1
fi
cleanup() {
  if [ "$started" = 1 ]; then scripts/services.sh stop; fi
}
trap cleanup EXIT INT TERM

# shellcheck disable=SC1090
eval "$(scripts/services.sh env)"
export TOKENIZERS_PARALLELISM=false
"$PY" -m pytest "$@"
status=$?
exit $status
