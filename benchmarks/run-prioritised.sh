#!/usr/bin/env bash
# Run a benchmark command in its own scheduling group with a raised priority, so
# that on a shared development machine other work (test suites, installs) takes
# as little as possible of its two cores. Linux autogroups make plain `nice`
# relative to the session only; a new session whose autogroup is given -15 wins
# about 90% of the CPU against three busy nice-0 sessions.
#   benchmarks/run-prioritised.sh python benchmarks/accuracy.py conll
set -euo pipefail
exec setsid bash -c 'echo -15 > /proc/$$/autogroup 2>/dev/null || true; exec nice -n -15 "$@"' _ "$@"
