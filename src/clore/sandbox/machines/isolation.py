"""How an order's commands are confined: bubblewrap when it works here, else nothing.

``detect()`` probes ``bwrap`` once (a real sandboxed ``true``) and returns an
``Isolation``; ``Isolation.wrap(layout, argv)`` prefixes a command with what confines it.

Under bubblewrap a command sees: the host's ``/usr``, ``/bin``, ``/sbin``, ``/lib*`` and
``/etc`` read-only (``/etc/shadow``, ``/etc/gshadow`` and ``/etc/ssh`` masked), the
order's ``root/`` as ``/root`` (its HOME and the only writable place with ``/tmp``, the
order's ``tmp/``), its run directory read-only at ``/run/clore-sandbox`` (``load/``
writable), a fresh ``/dev`` and ``/proc`` (with ``/proc/meminfo`` replaced by the
listing's), its own PID, IPC and UTS namespaces (hostname ``clore-ORDER``), no
capabilities, and it dies with the sandbox. Nothing else of the host — the user's home
included — exists inside. The network is the host's (see docs/sandbox.md, Machines).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from clore.sandbox.machines.layout import RUN_INSIDE, Layout

__all__ = ["Isolation", "IsolationMode", "detect"]

IsolationMode = Literal["auto", "bubblewrap", "none"]

_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
_MASKED_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-")
_MASKED_DIRS = ("/etc/ssh",)


@dataclass(frozen=True)
class Isolation:
    """The confinement in force: ``kind`` is ``"bubblewrap"`` or ``"none"``."""

    kind: Literal["bubblewrap", "none"]
    reason: str = ""
    bwrap: str = ""
    userns: bool = False
    extra_ro: tuple[str, ...] = ()

    @property
    def isolated(self) -> bool:
        return self.kind == "bubblewrap"

    @property
    def description(self) -> str:
        """One line for ``serve``'s banner and the docs."""
        if self.isolated:
            return (
                "bubblewrap: read-only system, only the order's directory writable "
                "(as /root and /tmp), the user's home hidden, own PID/IPC/UTS namespaces, "
                "no capabilities, host network"
            )
        user = _user()
        return f"none: order commands run as {user} in the order's directory, unconfined" + (
            f" ({self.reason})" if self.reason else ""
        )

    def wrap(self, layout: Layout, argv: list[str]) -> list[str]:
        """``argv`` confined to ``layout``'s machine (unchanged without isolation)."""
        if not self.isolated:
            return argv
        return [*self.prefix(layout), "--", *argv]

    def prefix(self, layout: Layout) -> list[str]:
        """The bwrap arguments for ``layout`` (computed once per machine)."""
        args = [self.bwrap]
        if self.userns:
            args += ["--unshare-user", "--uid", "0", "--gid", "0"]
        else:
            args += ["--cap-drop", "ALL"]
        args += [
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--hostname",
            f"clore-{layout.order_id}",
            "--die-with-parent",
        ]
        for path in _SYSTEM:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        for path in self.extra_ro:
            args += ["--ro-bind", path, path]
        for path in _MASKED_FILES:
            if os.path.isfile(path):
                args += ["--ro-bind", "/dev/null", path]
        for path in _MASKED_DIRS:
            if os.path.isdir(path):
                args += ["--tmpfs", path]
        args += [
            "--proc",
            "/proc",
            "--ro-bind",
            str(layout.run / "meminfo"),
            "/proc/meminfo",
            "--dev",
            "/dev",
            "--bind",
            str(layout.home),
            "/root",
            "--bind",
            str(layout.tmp),
            "/tmp",
            "--ro-bind",
            str(layout.run),
            RUN_INSIDE,
            "--ro-bind",
            str(layout.bin),
            f"{RUN_INSIDE}/bin",
            "--bind",
            str(layout.load),
            f"{RUN_INSIDE}/load",
            "--chdir",
            "/root",
        ]
        return args


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())


def _python_prefixes(python: str) -> tuple[str, ...]:
    # A shim interpreter outside the system directories (a pyenv under a home) is bound
    # read-only on its own, so nvidia-smi runs without exposing the rest of that home.
    real = os.path.realpath(python)
    if any(real == d or real.startswith(d + "/") for d in _SYSTEM):
        return ()
    prefix = os.path.realpath(sys.base_prefix)
    return (prefix,) if real.startswith(prefix + "/") else (os.path.dirname(real),)


def detect(mode: IsolationMode = "auto", *, python: str | None = None) -> Isolation:
    """The isolation to use: ``"bubblewrap"`` when asked for or usable, else ``"none"``.

    ``mode="bubblewrap"`` raises RuntimeError when bwrap does not work here.
    """
    if mode not in ("auto", "bubblewrap", "none"):
        raise ValueError(f"isolation must be auto, bubblewrap or none, got {mode!r}")
    if mode == "none":
        return Isolation("none", reason="isolation turned off")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        if mode == "bubblewrap":
            raise RuntimeError("bubblewrap isolation asked for, but bwrap is not installed")
        return Isolation("none", reason="bwrap is not installed")
    extra = _python_prefixes(python) if python else ()
    failures = []
    # As root, bwrap needs no user namespace (capabilities are dropped instead); any other
    # user needs one to appear as root inside.
    for userns in (False,) if os.getuid() == 0 else (True,):
        candidate = Isolation("bubblewrap", bwrap=bwrap, userns=userns, extra_ro=extra)
        error = _probe(candidate)
        if error is None:
            return candidate
        failures.append(error)
    reason = f"bwrap is not usable here: {failures[-1]}"
    if mode == "bubblewrap":
        raise RuntimeError(f"bubblewrap isolation asked for, but {reason}")
    return Isolation("none", reason=reason)


def _probe(candidate: Isolation) -> str | None:
    with tempfile.TemporaryDirectory(prefix="clore-bwrap-probe-") as tmp:
        layout = Layout(0, Path(tmp), isolated=True)
        for path in (layout.home, layout.tmp, layout.load, layout.run / "bin", layout.bin):
            path.mkdir(parents=True, exist_ok=True)
        (layout.run / "meminfo").write_text("MemTotal: 1 kB\n", encoding="utf-8")
        try:
            result = subprocess.run(
                candidate.wrap(layout, ["/bin/sh", "-c", "touch /root/ok"]),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        if result.returncode != 0 or not (layout.home / "ok").exists():
            text = result.stderr.decode("utf-8", "replace").strip().splitlines()
            return text[-1] if text else f"exit status {result.returncode}"
    return None
