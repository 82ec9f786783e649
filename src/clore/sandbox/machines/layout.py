"""Where machines live on disk: the shared shim directory and each order's directory.

```
ROOT/
  bin/                    nvidia-smi, gpu_burn, gpu-burn, nproc (shared, read-only inside)
  logs/ORDER.log          the order's command output (kept after the order ends)
  ssh_host_ed25519_key    the host key every order's SSH server presents (0600)
  empty                   an empty file, bound over /etc/shadow and the like inside
  orders/ORDER/           the order's machine, removed when it stops (unless kept)
    root/                 its HOME and working directory (/root inside bubblewrap)
    tmp/                  its /tmp
    run/                  hardware.json, meminfo, load/ (/run/clore-sandbox inside)
```

``Layout`` names these paths for one order, outside (host) and inside (what the order's
processes see), and writes the hardware files; ``install_shims`` fills ``bin/``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clore.sandbox.machines.hardware import meminfo

__all__ = ["RUN_INSIDE", "Layout", "install_shims", "shim_python"]

#: Where the order's run directory appears inside a bubblewrap machine.
RUN_INSIDE = "/run/clore-sandbox"
HOME_INSIDE = "/root"
_SHIMS = Path(__file__).resolve().parent / "shims"

_NPROC = """#!/bin/sh
# nproc as the listing reports it: CLORE_SANDBOX_CPUS threads (the clore sandbox's shim).
n="${CLORE_SANDBOX_CPUS:-}"
case "$n" in ''|*[!0-9]*) exec /usr/bin/nproc "$@" ;; esac
ignore=0
for arg in "$@"; do
  case "$arg" in
    --all) ;;
    --ignore=*) ignore="${arg#--ignore=}" ;;
    *) exec /usr/bin/nproc "$@" ;;
  esac
done
case "$ignore" in ''|*[!0-9]*) exec /usr/bin/nproc "$@" ;; esac
n=$((n - ignore))
[ "$n" -ge 1 ] || n=1
echo "$n"
"""


def shim_python() -> str:
    """The interpreter the shims run with: the system's python3, else this one."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    return os.path.realpath(sys.executable)


def install_shims(bin_dir: Path, python: str) -> None:
    """Write the simulated tools into ``bin_dir`` (read-only and executable)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    # -E: the order's PYTHON* variables cannot break the shims; -s -S: start fast.
    shebang = f"#!{python} -ESs\n"
    tools = {
        "nvidia-smi": shebang + (_SHIMS / "nvidia_smi.py").read_text(encoding="utf-8"),
        "gpu_burn": shebang + (_SHIMS / "gpu_burn.py").read_text(encoding="utf-8"),
        "nproc": _NPROC,
    }
    for name, text in tools.items():
        path = bin_dir / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o755)
        os.replace(tmp, path)
    empty = bin_dir.parent / "empty"
    if not empty.exists():
        empty.write_bytes(b"")
        empty.chmod(0o444)
    link = bin_dir / "gpu-burn"
    if not link.is_symlink():
        link.unlink(missing_ok=True)
        link.symlink_to("gpu_burn")


@dataclass(frozen=True)
class Layout:
    """One order's paths on the host and as its processes see them."""

    order_id: int
    root: Path
    isolated: bool

    @property
    def base(self) -> Path:
        """The order's directory (removed when the machine stops)."""
        return self.root / "orders" / str(self.order_id)

    @property
    def home(self) -> Path:
        return self.base / "root"

    @property
    def tmp(self) -> Path:
        return self.base / "tmp"

    @property
    def run(self) -> Path:
        return self.base / "run"

    @property
    def load(self) -> Path:
        return self.run / "load"

    @property
    def bin(self) -> Path:
        """The shared shim directory."""
        return self.root / "bin"

    @property
    def empty(self) -> Path:
        """An empty read-only file, bound over host files a machine must not read."""
        return self.root / "empty"

    @property
    def log(self) -> Path:
        return self.root / "logs" / f"{self.order_id}.log"

    @property
    def home_inside(self) -> str:
        return HOME_INSIDE if self.isolated else str(self.home)

    @property
    def run_inside(self) -> str:
        return RUN_INSIDE if self.isolated else str(self.run)

    @property
    def bin_inside(self) -> str:
        return f"{RUN_INSIDE}/bin" if self.isolated else str(self.bin)

    def create(self, hardware: dict[str, Any]) -> None:
        """Make the directories (an existing home is kept) and write the hardware files."""
        for path in (self.home, self.tmp, self.load, self.run / "bin", self.log.parent):
            path.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        self.tmp.chmod(0o1777)
        self.load.chmod(0o777)
        self.write_hardware(hardware)

    def write_hardware(self, hardware: dict[str, Any]) -> None:
        """Replace hardware.json and meminfo atomically (a running nvidia-smi sees either)."""
        files = {
            "hardware.json": json.dumps(hardware, indent=1) + "\n",
            "meminfo": meminfo(float(hardware["ram_gb"])),
        }
        for name, text in files.items():
            tmp = self.run / f".{name}.tmp"
            tmp.write_text(text, encoding="utf-8")
            tmp.chmod(0o644)
            os.replace(tmp, self.run / name)

    def discard(self) -> Path | None:
        """Move the order's directory out of the way; the caller deletes what it returns.

        A rename is instant where deleting a tree takes a while on some disks, so a stop
        does not wait for it and a new machine of the same order starts clean.
        """
        trash = self.root / "orders" / f".removed-{self.order_id}-{os.urandom(4).hex()}"
        try:
            os.rename(self.base, trash)
        except FileNotFoundError:
            return None
        return trash
