#!/usr/bin/env bash
# Print the path of a working Python 3.10 (the oldest version clore supports), or nothing.
# Looks on PATH first, then in pyenv's versions directory (pyenv's shim for a version that
# is installed but not selected fails when run, so each candidate is tried, not just found).
set -uo pipefail
candidates=(python3.10)
root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"
for dir in "$root"/versions/3.10*/bin; do
    [[ -x "$dir/python3.10" ]] && candidates+=("$dir/python3.10")
done
for py in "${candidates[@]}"; do
    if "$py" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then
        command -v "$py" 2>/dev/null || echo "$py"
        exit 0
    fi
done
