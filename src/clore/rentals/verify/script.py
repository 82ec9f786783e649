"""The probe script: one POSIX ``sh`` program that measures a rental in one SSH exec.

``probe_script(options)`` returns the program; ``probe_command(options)`` the exec command
running it (``sh -c '...'``, so no probe can read the program from its standard input). It prints
sections framed by ``@@clore-verify begin NAME@@`` and ``@@clore-verify end NAME RC@@``
(``probes.parse`` reads them back), in this order:

``smi``      ``nvidia-smi`` (the table: CUDA version, driver, ``ERR!``) and its exit code
``nproc``    ``nproc`` (``getconf _NPROCESSORS_ONLN`` without it)
``meminfo``  ``$CLORE_SANDBOX_MEMINFO`` (a sandbox machine's listing) or ``/proc/meminfo``
``loader``   which load runs: ``python`` (PyTorch or CuPy importable), ``gpu_burn``, ``none``
             (neither), ``off`` (``load=False``)
``gpu``      ``nvidia-smi --query-gpu=QUERY_FIELDS --format=csv,noheader,nounits``, read
             once every GPU is at least 50 % busy (links drop to gen 1 when idle), or when
             the load ends or ``load_wait`` seconds pass; ``loaded 1`` when it was busy
``disk``     ``dd`` of ``disk_mb`` MiB from ``/dev/zero`` with ``conv=fsync`` in ``$HOME``
             (else ``/tmp``), run while the load warms up; ``path DIR``, dd's lines,
             ``rc CODE`` (or ``skipped``)
``load``     the load's output: ``matmul INDEX GFLOPS`` lines (Python) or gpu_burn's own

Every external command runs under ``timeout`` where the rental has it (the load, which
ends by itself after ``load_seconds``, is killed ``load_seconds + 20`` s after it started). The
script writes only inside one ``mktemp -d`` directory and the disk test's file, and
removes both. ``LC_ALL=C`` keeps ``dd``'s figures in one format.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Final

__all__ = ["MATMUL_PY", "QUERY_FIELDS", "ProbeOptions", "probe_command", "probe_script"]

#: The ``--query-gpu`` fields, in the order ``probes.parse`` reads them.
QUERY_FIELDS: Final = (
    "index",
    "name",
    "memory.total",
    "power.limit",
    "pcie.link.gen.max",
    "pcie.link.gen.current",
    "pcie.link.width.max",
    "pcie.link.width.current",
    "driver_version",
    "utilization.gpu",
)

#: Matrix size of the Python matmul (N x N float32: 2 N^3 flop each).
MATMUL_N: Final = 4096

#: The Python load: an FP32 matmul on every GPU at once, PyTorch first, else CuPy.
#: Prints ``matmul INDEX GFLOPS`` (or ``matmul INDEX error TEXT``) per GPU, ``lib NAME``.
MATMUL_PY: Final = f"""\
import sys, threading, time
secs = float(sys.argv[1])
N = {MATMUL_N}
try:
    import torch
    if not torch.cuda.is_available():
        raise ImportError("no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False
    lib, count = "torch", torch.cuda.device_count()
except Exception:
    torch = None
    import cupy
    lib, count = "cupy", cupy.cuda.runtime.getDeviceCount()
print("lib", lib, flush=True)
out = {{}}
def work(i):
    try:
        if torch is not None:
            dev = torch.device("cuda", i)
            a = torch.randn(N, N, device=dev)
            b = torch.randn(N, N, device=dev)
            sync = lambda: torch.cuda.synchronize(dev)
            mm = lambda: a @ b
        else:
            dev = cupy.cuda.Device(i)
            dev.use()
            a = cupy.random.rand(N, N, dtype=cupy.float32)
            b = cupy.random.rand(N, N, dtype=cupy.float32)
            sync = dev.synchronize
            mm = lambda: a @ b
        mm(); sync()
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < secs:
            for _ in range(4):
                mm()
            sync()
            done += 4
        out[i] = "%.0f" % (2.0 * N ** 3 * done / (time.perf_counter() - start) / 1e9)
    except Exception as exc:
        out[i] = "error " + " ".join(str(exc).split())[:200]
threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(count)]
for t in threads:
    t.start()
for t in threads:
    t.join(secs + 60)
for i in range(count):
    print("matmul", i, out.get(i, "error did not finish"), flush=True)
"""

_TEMPLATE: Final = r"""
export LC_ALL=C
LOAD_SECONDS=@LOAD_SECONDS@
LOAD_WAIT=@LOAD_WAIT@
DISK_MB=@DISK_MB@
USE_LOAD=@USE_LOAD@
Q=@QUERY@
T() { s=$1; shift; if command -v timeout >/dev/null 2>&1; then timeout "$s" "$@"; else "$@"; fi; }
begin() { printf '@@clore-verify begin %s@@\n' "$1"; }
end() { printf '\n@@clore-verify end %s %s@@\n' "$1" "$2"; }
W=$(mktemp -d 2>/dev/null) || { W=/tmp/clore-verify.$$; mkdir -p "$W"; }
trap 'rm -rf "$W"' EXIT

begin smi; T 20 nvidia-smi 2>&1; end smi $?
begin nproc
if command -v nproc >/dev/null 2>&1; then nproc 2>&1; else getconf _NPROCESSORS_ONLN 2>&1; fi
end nproc $?
begin meminfo; cat "${CLORE_SANDBOX_MEMINFO:-/proc/meminfo}" 2>&1; end meminfo $?

LOADER=off
[ "$USE_LOAD" = 1 ] && LOADER=none
LP=
if [ "$USE_LOAD" = 1 ] && command -v nvidia-smi >/dev/null 2>&1; then
  FIND='import importlib.util as u, sys
sys.exit(0 if u.find_spec("torch") or u.find_spec("cupy") else 1)'
  if command -v python3 >/dev/null 2>&1 && T 20 python3 -c "$FIND" >/dev/null 2>&1; then
    LOADER=python
    cat > "$W/matmul.py" <<'CLORE_VERIFY_PY'
@MATMUL@
CLORE_VERIFY_PY
    T $((LOAD_SECONDS + 20)) python3 "$W/matmul.py" "$LOAD_SECONDS" >"$W/load.out" 2>&1 </dev/null &
    LP=$!
  else
    for B in gpu_burn gpu-burn; do
      if command -v "$B" >/dev/null 2>&1; then
        LOADER=gpu_burn
        T $((LOAD_SECONDS + 20)) "$B" "$LOAD_SECONDS" > "$W/load.out" 2>&1 </dev/null &
        LP=$!
        break
      fi
    done
  fi
fi
begin loader; echo "$LOADER"; end loader 0

DP=
if [ "$DISK_MB" -gt 0 ] && command -v dd >/dev/null 2>&1; then
  D="$HOME"; [ -d "$D" ] && [ -w "$D" ] || D=/tmp
  F="$D/.clore-verify-disk.$$"
  ( echo "path $D"; T 30 dd if=/dev/zero of="$F" bs=1M count="$DISK_MB" conv=fsync 2>&1
    echo "rc $?"; rm -f "$F" ) > "$W/disk.out" 2>&1 </dev/null &
  DP=$!
fi

# Busy: every GPU whose utilization reads as a number is at 50 % or more.
BUSY='$10 ~ /^[0-9]+$/ && $10 + 0 < 50 { low = 1 } END { exit low }'
START=$(date +%s)
LOADED=0
while :; do
  OUT=$(T 20 nvidia-smi --query-gpu="$Q" --format=csv,noheader,nounits 2>&1); rc=$?
  [ -z "$LP" ] && break
  if [ "$rc" = 0 ] && printf '%s\n' "$OUT" | awk -F', *' "$BUSY"; then LOADED=1; break; fi
  kill -0 "$LP" 2>/dev/null || break
  [ $(( $(date +%s) - START )) -ge "$LOAD_WAIT" ] && break
  sleep 0.3 2>/dev/null || sleep 1
done
begin gpu; printf '%s\n' "$OUT"; echo "loaded $LOADED"; end gpu $rc

begin disk
if [ -n "$DP" ]; then wait "$DP"; cat "$W/disk.out"; else echo skipped; fi
end disk 0

if [ -n "$LP" ]; then
  wait "$LP"; rc=$?
  begin load; cat "$W/load.out" 2>/dev/null; end load $rc
fi
"""


@dataclass(frozen=True)
class ProbeOptions:
    """How long the load runs, how long to wait for it to show, how much the disk test
    writes (0: no disk test), and whether to load the GPUs at all."""

    load_seconds: int = 3
    load_wait: int = 20
    disk_mb: int = 128
    load: bool = True

    def __post_init__(self) -> None:
        for name in ("load_seconds", "load_wait", "disk_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 600:
                raise ValueError(f"{name} must be a whole number from 0 to 600, got {value!r}")
        if self.load_seconds < 1:
            raise ValueError("load_seconds must be at least 1")


def probe_command(options: ProbeOptions | None = None) -> str:
    """The SSH exec command running the probe script: ``sh -c 'SCRIPT'``."""
    return "sh -c " + shlex.quote(probe_script(options))


def probe_script(options: ProbeOptions | None = None) -> str:
    """The probe script for ``options`` (defaults: 3 s of load, 128 MiB disk test)."""
    opts = options or ProbeOptions()
    values = {
        "@LOAD_SECONDS@": str(opts.load_seconds),
        "@LOAD_WAIT@": str(opts.load_wait),
        "@DISK_MB@": str(opts.disk_mb),
        "@USE_LOAD@": "1" if opts.load else "0",
        "@QUERY@": ",".join(QUERY_FIELDS),
        "@MATMUL@": MATMUL_PY.rstrip("\n"),
    }
    text = _TEMPLATE
    for key, value in values.items():
        text = text.replace(key, value)
    return text.lstrip("\n")
