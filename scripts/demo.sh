#!/usr/bin/env bash
# The guide's headline workflow on the embedded sandbox, as a user would type it:
# find the cheapest available RTX 4090, rent it with SSH and Jupyter, wait until it is
# reachable, log in over real SSH with a key made here (nvidia-smi, a short command),
# copy a file back, look at the order and its spend after simulated time, cancel it, see
# the final spend; then a whole job with `clore run` (examples/train.yaml). The order is a real machine on 127.0.0.1: `--sandbox` runs it in a
# background host process that outlives each command (it exits with the throwaway data
# directory). Runs in throwaway config/cache/data/HOME directories, so it works on a
# fresh machine. `make demo` runs it with the venv's clore.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$here/.venv/bin"
if [[ ! -x "$bin/clore" ]]; then
    echo "demo: $bin/clore not found; run 'make demo' (it creates .venv) first" >&2
    exit 1
fi
export PATH="$bin:$PATH"

workdir="$(mktemp -d "${TMPDIR:-/tmp}/clore-demo.XXXXXX")"
stop_host() {  # the background host of the machines exits once its database is gone
    local lock="$workdir/data/sandbox.machines/host.lock" pid=""
    [[ -f "$lock" ]] && pid="$(head -n1 "$lock" 2>/dev/null || true)"
    rm -rf "$workdir"
    if [[ "$pid" =~ ^[0-9]+$ ]]; then
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
}
trap stop_host EXIT
export CLORE_CONFIG_DIR="$workdir/config"
export CLORE_CACHE_DIR="$workdir/cache"
export CLORE_DATA_DIR="$workdir/data"
export HOME="$workdir/home"   # the key made below lives here; clore ssh/copy use it
mkdir -p "$HOME/.ssh"
unset CLORE_API_KEY CLORE_BASE_URL CLORE_PROFILE

bold=""; plain=""
if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then bold=$'\e[1m'; plain=$'\e[0m'; fi

shown() {  # the command line as typed: arguments with spaces or quotes in single quotes
    local out="" arg
    for arg in "$@"; do
        if [[ -z "$arg" || "$arg" =~ [[:space:]\"\$\|\;\&\(\)] ]]; then
            arg="'${arg//\'/\'\\\'\'}'"
        fi
        out+="${out:+ }$arg"
    done
    printf '%s' "$out"
}

step() {  # step "what this does" command args...
    local what="$1"; shift
    printf '\n%s# %s%s\n' "$bold" "$what" "$plain"
    printf '%s$ %s%s\n' "$bold" "$(shown "$@")" "$plain"
    "$@"
}

started=$SECONDS
for tool in ssh ssh-keygen; do
    if ! command -v "$tool" >/dev/null; then
        echo "demo: $tool not found; install OpenSSH's client (apt-get install openssh-client)" >&2
        exit 1
    fi
done

step "Make an SSH key for the demo (rent sends ~/.ssh/id_ed25519.pub by default)" \
    ssh-keygen -q -t ed25519 -N "" -C "demo@clore" -f "$HOME/.ssh/id_ed25519"

step "Available RTX 4090 servers, cheapest first (prices per day and per hour)" \
    clore --sandbox market gpu=4090 --sort price --limit 5

step "Rent the cheapest single RTX 4090 with SSH and Jupyter; wait until its SSH answers" \
    clore --sandbox rent --cheapest gpu=4090 gpus=1 --ports 22:tcp,8888:http --wait --yes

printf '\n%s# Scripts read the same data as JSON%s\n' "$bold" "$plain"
printf '%s$ ORDER=$(clore --sandbox orders --json | python -c '\''...["orders"][0]["id"]'\'')%s\n' \
    "$bold" "$plain"
ORDER=$(clore --sandbox orders --json \
    | "$bin/python" -c 'import json, sys; print(json.load(sys.stdin)["orders"][0]["id"])')
echo "$ORDER"

step "Log in over SSH and ask the GPU (a simulated host that reports the listing's hardware)" \
    clore --sandbox ssh "$ORDER" -- nvidia-smi

step "Run a short command there: the order's machine, its CPUs, a file of results" \
    clore --sandbox ssh "$ORDER" -- \
    'echo "$(hostname): $(nproc) CPUs, $(nvidia-smi -L | wc -l) GPU" | tee /root/result.txt'

step "Copy the file back" \
    clore --sandbox copy "$ORDER:/root/result.txt" "$workdir"

step "The copy, here" \
    cat "$workdir/result.txt"

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

cd "$here"   # examples/ is beside this script
step "A whole job in one command: rent the best match, verify it, upload, run, bring the outputs back, cancel" \
    clore --sandbox run examples/train.yaml --yes --output-dir "$workdir/train"

step "What the job brought back" \
    cat "$workdir/train/out/result.txt"

step "The jobs run from here" \
    clore --sandbox jobs

printf '\n%sdemo finished in %d s%s\n' "$bold" "$((SECONDS - started))" "$plain"
