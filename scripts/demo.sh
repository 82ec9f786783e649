#!/usr/bin/env bash
# The guide's headline workflow on the embedded sandbox, as a user would type it:
# find the cheapest available RTX 4090, rent it with SSH and Jupyter, wait until it is
# ready, look at the order and its spend after simulated time, cancel it, see the final
# spend. Runs in throwaway config/cache/data directories, so it works on a fresh machine
# and gives the same result every time. `make demo` runs it with the venv's clore.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$here/.venv/bin"
if [[ ! -x "$bin/clore" ]]; then
    echo "demo: $bin/clore not found; run 'make demo' (it creates .venv) first" >&2
    exit 1
fi
export PATH="$bin:$PATH"

workdir="$(mktemp -d "${TMPDIR:-/tmp}/clore-demo.XXXXXX")"
trap 'rm -rf "$workdir"' EXIT
export CLORE_CONFIG_DIR="$workdir/config"
export CLORE_CACHE_DIR="$workdir/cache"
export CLORE_DATA_DIR="$workdir/data"
export HOME="$workdir/home"   # no real ~/.ssh keys or config are read or written
mkdir -p "$HOME/.ssh"
unset CLORE_API_KEY CLORE_BASE_URL CLORE_PROFILE

bold=""; plain=""
if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then bold=$'\e[1m'; plain=$'\e[0m'; fi

step() {  # step "what this does" command args...
    local what="$1"; shift
    printf '\n%s# %s%s\n' "$bold" "$what" "$plain"
    printf '%s$ %s%s\n' "$bold" "$*" "$plain"
    "$@"
}

started=$SECONDS
ssh-keygen -q -t ed25519 -N "" -C "demo@clore" -f "$HOME/.ssh/id_ed25519" >/dev/null 2>&1 \
    || echo "demo: ssh-keygen not available; renting without an SSH key" >&2

step "Available RTX 4090 servers, cheapest first (prices per day and per hour)" \
    clore --sandbox market gpu=4090 --sort price --limit 5

step "Rent the cheapest single RTX 4090 with SSH and Jupyter, and wait until it is ready" \
    clore --sandbox rent --cheapest gpu=4090 gpus=1 --ports 22:tcp,8888:http --wait --yes

printf '\n%s# Scripts read the same data as JSON%s\n' "$bold" "$plain"
printf '%s$ ORDER=$(clore --sandbox orders --json | python -c '\''...["orders"][0]["id"]'\'')%s\n' \
    "$bold" "$plain"
ORDER=$(clore --sandbox orders --json \
    | "$bin/python" -c 'import json, sys; print(json.load(sys.stdin)["orders"][0]["id"])')
echo "$ORDER"

step "Let an hour pass in the sandbox" \
    clore --sandbox sandbox advance 3600

step "The order after an hour: state, SSH command, HTTP URL, price, spend, time left" \
    clore --sandbox order "$ORDER"

step "Spend so far, burn rate and wallet runway" \
    clore --sandbox spend

step "Cancel the order" \
    clore --sandbox cancel "$ORDER"

step "The final spend" \
    clore --sandbox spend

printf '\n%sdemo finished in %d s%s\n' "$bold" "$((SECONDS - started))" "$plain"
