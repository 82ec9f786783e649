#!/usr/bin/env bash
# Mutation testing of the money-critical code with mutmut (`make mutate`; not part of CI).
#
#   scripts/mutate.sh [MODULE ...]    MODULE: pacing flows filters spot billing agent jobs
#                                     (default: all)
#
# Each module's mutants run one module at a time against the focused tests listed in
# pyproject.toml's [tool.mutmut]; the script then prints, per module, how many mutants the
# tests killed out of how many, and the survivors (`.venv/bin/mutmut show NAME` shows one).
# "flows" is create_order (with its reconciliation helpers) and set_spot_price in
# clore/_flows.py. "agent" is the agent server's guards: clore/agent/caps.py (an order's
# cost, the caps) and clore/agent/quotes.py (single-use quote tokens, their expiry, the
# price tolerance). "jobs" is the job runner's limits, clore/jobs/_limits.py (an order's
# cost, the projected cost, max_spend/max_time reached, the idle tracker). mutmut works in
# ./mutants (git-ignored), started afresh on every run so that no result of an older tree
# is counted. MUTATE_CHILDREN (default 1) sets mutmut's --max-children: the suite is
# CPU-bound, keep it at most the number of idle cores.
set -euo pipefail
cd "$(dirname "$0")/.."

MUTMUT=${MUTMUT:-.venv/bin/mutmut}
PYTHON=${PYTHON:-.venv/bin/python}
CHILDREN=${MUTATE_CHILDREN:-1}

globs() {
    case "$1" in
        pacing) echo "clore._pacing.* clore._pacing_store.*" ;;
        flows)
            local f out=""
            for f in create_order _find_new_order _created _attempt_text _history set_spot_price; do
                out+="clore._flows.x_${f}* "
            done
            echo "$out"
            ;;
        filters) echo "clore.market.filters.*" ;;
        spot) echo "clore.sandbox.backend.spot.*" ;;
        billing) echo "clore.sandbox.backend.billing.*" ;;
        agent) echo "clore.agent.caps.* clore.agent.quotes.*" ;;
        jobs) echo "clore.jobs._limits.*" ;;
        *) return 1 ;;
    esac
}

modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(pacing flows filters spot billing agent jobs)
for module in "${modules[@]}"; do
    if ! globs "$module" >/dev/null; then
        echo "mutate.sh: unknown module '$module' (pacing flows filters spot billing agent jobs)" >&2
        exit 2
    fi
done
[ -x "$MUTMUT" ] || { echo "mutate.sh: $MUTMUT not found: .venv/bin/pip install -e '.[dev]'" >&2; exit 2; }

rm -rf mutants
mkdir -p mutants
for module in "${modules[@]}"; do
    echo "== $module"
    # shellcheck disable=SC2046 # the globs are mutmut's patterns, not the shell's
    set -f
    if ! "$MUTMUT" run --max-children "$CHILDREN" $(globs "$module") >"mutants/$module.log" 2>&1; then
        set +f
        tail -n 30 "mutants/$module.log" >&2
        echo "mutate.sh: mutmut failed on $module (log: mutants/$module.log)" >&2
        exit 1
    fi
    set +f
done

# One line per module: killed / total, then the survivors and mutants no test reaches.
for module in "${modules[@]}"; do
    set -f
    # shellcheck disable=SC2046
    "$PYTHON" - "$module" $(globs "$module") <<'PY'
import fnmatch
import json
import sys
from pathlib import Path

module, patterns = sys.argv[1], sys.argv[2:]
codes: dict[str, int | None] = {}
for meta in Path("mutants").rglob("*.py.meta"):
    for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
        if any(fnmatch.fnmatch(name, p) for p in patterns):
            codes[name] = code
# mutmut's exit codes: 1 and 3 a failing test, SIGXCPU/36/255 a timeout, 0 survived,
# 33 and 5 no test reaches it; a timeout counts as caught (the mutant made a test hang).
killed = [n for n, c in codes.items() if c in (1, 3, 24, -24, 36, 152, 255)]
survived = sorted(n for n, c in codes.items() if c == 0)
untested = sorted(n for n, c in codes.items() if c in (5, 33))
other = sorted(n for n, c in codes.items() if n not in killed + survived + untested)
total = len(codes)
rate = 100.0 * len(killed) / total if total else 0.0
print(f"{module}: {len(killed)} / {total} killed ({rate:.1f} %)", end="")
print(f", {len(survived)} survived, {len(untested)} without tests, {len(other)} other")
for label, names in (("survived", survived), ("no tests", untested), ("other", other)):
    for name in names:
        print(f"    {label}: {name}")
PY
    set +f
done
