"""How an order's commands are confined: bubblewrap when it works here, else nothing.

``detect()`` probes once (a real machine: an init, a command entered into it) and returns
an ``Isolation``. Under bubblewrap each machine is one set of namespaces, like a
container: ``init_argv`` starts its init (``bwrap ... sleep infinity``, which reports its
pid on an info fd), and ``enter_argv`` runs every later command inside those namespaces
with ``nsenter``, capabilities dropped by ``setpriv``. So all of an order's processes
share one PID namespace (``ps`` shows them all, background jobs outlive their SSH
session), and killing the init ends every one of them.

A machine's processes see: the host's ``/usr``, ``/bin``, ``/sbin``, ``/lib*`` and
``/etc`` read-only (``/etc/shadow``, ``/etc/gshadow`` and ``/etc/ssh`` masked), the
order's ``root/`` as ``/root`` (its HOME, and with ``/tmp``, the order's ``tmp/``, the only
writable places), its run directory read-only at ``/run/clore-sandbox`` (``load/``
writable), a fresh ``/dev`` and ``/proc`` (``/proc/meminfo`` replaced by the listing's),
their own PID, IPC and UTS namespaces (hostname ``clore-ORDER``), no capabilities; the
init dies with the sandbox. Nothing else of the host — the user's home included — exists
inside. The network is the host's (see docs/sandbox.md, Machines).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from clore.sandbox.machines.layout import RUN_INSIDE, Layout

__all__ = ["READY", "Isolation", "IsolationMode", "detect", "parse_info", "read_init_pid"]

IsolationMode = Literal["auto", "bubblewrap", "none"]

#: What a machine's init prints on stdout when it is ready to be entered.
READY = "clore-machine-ready"

_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
_MASKED_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-")
_MASKED_DIRS = ("/etc/ssh",)


@dataclass(frozen=True)
class Isolation:
    """The confinement in force: ``kind`` is ``"bubblewrap"`` or ``"none"``."""

    kind: Literal["bubblewrap", "none"]
    reason: str = ""
    bwrap: str = ""
    nsenter: str = ""
    setpriv: str = ""
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

    def init_argv(self, layout: Layout, info_fd: int) -> list[str]:
        """The machine's init: bwrap around ``sleep infinity``.

        bwrap writes the init's pid on ``info_fd``; the init prints ``READY`` on its stdout
        once the machine is set up.
        """
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
            "--info-fd",
            str(info_fd),
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
                args += ["--ro-bind", str(layout.empty), path]
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
            "--",
            "/bin/sh",
            "-c",
            # Printed once every mount is in place: the info fd's pid comes earlier.
            f"echo {READY}; exec sleep infinity",
        ]
        return args

    def enter_argv(self, init_pid: int) -> list[str]:
        """The prefix that runs a command inside the machine whose init is ``init_pid``."""
        proc = f"/proc/{init_pid}/root"
        args = [self.nsenter, "-t", str(init_pid), "-m", "-p", "-u", "-i"]
        if self.userns:
            args += ["-U", "--preserve-credentials"]
        # -r/-w take paths as the caller sees them, before entering: the init's root and
        # the /root inside it.
        args += [f"-r{proc}", f"-w{proc}/root", "--", self.setpriv]
        args += ["--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--"]
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


@functools.lru_cache(maxsize=8)
def detect(mode: IsolationMode = "auto", *, python: str | None = None) -> Isolation:
    """The isolation to use: ``"bubblewrap"`` when asked for or usable, else ``"none"``.

    ``mode="bubblewrap"`` raises RuntimeError when bwrap does not work here. The probe
    runs once per process (what the host allows does not change while it runs).
    """
    if mode not in ("auto", "bubblewrap", "none"):
        raise ValueError(f"isolation must be auto, bubblewrap or none, got {mode!r}")
    if mode == "none":
        return Isolation("none", reason="isolation turned off")
    tools = {name: shutil.which(name) for name in ("bwrap", "nsenter", "setpriv")}
    missing = [name for name, path in tools.items() if path is None]
    if missing:
        reason = f"{' and '.join(missing)} not installed"
        if mode == "bubblewrap":
            raise RuntimeError(f"bubblewrap isolation asked for, but {reason}")
        return Isolation("none", reason=reason)
    extra = _python_prefixes(python) if python else ()
    # As root, bwrap needs no user namespace (capabilities are dropped instead); any other
    # user needs one to appear as root inside.
    candidate = Isolation(
        "bubblewrap",
        bwrap=tools["bwrap"] or "",
        nsenter=tools["nsenter"] or "",
        setpriv=tools["setpriv"] or "",
        userns=os.getuid() != 0,
        extra_ro=extra,
    )
    error = _probe(candidate)
    if error is None:
        return candidate
    reason = f"bwrap is not usable here: {error}"
    if mode == "bubblewrap":
        raise RuntimeError(f"bubblewrap isolation asked for, but {reason}")
    return Isolation("none", reason=reason)


def _probe(candidate: Isolation) -> str | None:
    """None when a machine can be made and entered here, else why not."""
    with tempfile.TemporaryDirectory(prefix="clore-bwrap-probe-") as tmp:
        layout = Layout(0, Path(tmp), isolated=True)
        for path in (layout.home, layout.tmp, layout.load, layout.run / "bin", layout.bin):
            path.mkdir(parents=True, exist_ok=True)
        (layout.run / "meminfo").write_text("MemTotal: 1 kB\n", encoding="utf-8")
        layout.empty.write_bytes(b"")
        read, write = os.pipe()
        try:
            init = subprocess.Popen(
                candidate.init_argv(layout, write),
                pass_fds=(write,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(read)
            return str(exc)
        finally:
            os.close(write)
        try:
            pid = read_init_pid(read)
            assert init.stdout is not None
            if pid is None or init.stdout.readline().decode().strip() != READY:
                init.kill()
                error = (init.communicate()[1] or b"").decode("utf-8", "replace")
                lines = error.strip().splitlines()
                return lines[-1] if lines else f"exit status {init.returncode}"
            status, stderr = _run_bounded(
                [*candidate.enter_argv(pid), "/bin/sh", "-c", "touch /root/ok"], 10.0
            )
            if status != 0 or not (layout.home / "ok").exists():
                lines = stderr.decode("utf-8", "replace").strip().splitlines()
                return lines[-1] if lines else f"exit status {status}"
        except OSError as exc:
            return str(exc)
        finally:
            os.close(read)
            if init.poll() is None:
                init.kill()
            init.wait()  # killed: returns at once
    return None


def _run_bounded(argv: list[str], seconds: float) -> tuple[int, bytes]:
    """Run ``argv``; (exit status, stderr). Killed after ``seconds``. Waits without
    ``time.sleep`` polling (subprocess's timeouts poll with it), so tests that forbid
    real sleeps can probe too."""
    child = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    timer = threading.Timer(seconds, child.kill)
    timer.start()
    try:
        _, stderr = child.communicate()
    finally:
        timer.cancel()
    return child.returncode, stderr or b""


def read_init_pid(fd: int) -> int | None:
    """The ``child-pid`` bwrap writes on its info fd (None when it ends without one)."""
    data = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
        pid = parse_info(data)
        if pid is not None:
            return pid
    return parse_info(data)


def parse_info(data: bytes) -> int | None:
    """``child-pid`` of a complete bwrap info document, else None."""
    try:
        info = json.loads(data)
    except ValueError:
        return None
    pid = info.get("child-pid") if isinstance(info, dict) else None
    return pid if isinstance(pid, int) and pid > 0 else None
