"""Who holds a key's pacing slot, and whether that process is certainly gone.

A request on the wire holds its key (``clore._pacing``). When its process dies mid-request
(kill -9, ``os._exit``, a crash) nobody completes the hold; instead of waiting for the
dead request's timeout, the next process reads the holder recorded in the shared file
and releases the hold of a process that no longer runs. "Certainly" is the rule: releasing
a live holder's hold puts a second request on the wire, so every doubt keeps the hold,
which still expires by time as before.

A PID alone names nothing across machines, boots and containers, so a holder also records
its host (a home directory may be shared between machines), its boot (Linux's
``boot_id``; PIDs start over at each boot), its PID namespace (containers sharing a cache
volume) and its start time from ``/proc/<pid>/stat`` (a PID reused by a later process).
Where the system does not tell (no ``/proc``), the field is None and the check relies on
what is known.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, TypeGuard

__all__ = ["Holder", "is_gone", "this_process"]

#: PIDs are positive ``pid_t`` values; anything else in a file is not a PID (and 0 or -1
#: given to ``kill`` would signal a whole process group).
_MAX_PID: Final = 2**31 - 1
_KINDS: Final = ("request", "create")


@dataclass(frozen=True)
class Holder:
    """The process holding a key, and the kind of request it has on the wire."""

    pid: int
    host: str | None = None
    boot: str | None = None
    pidns: str | None = None
    started: int | None = None
    kind: str = "request"

    def same_process(self, other: Holder) -> bool:
        """True when both name one process (the kind of request aside)."""
        return replace(self, kind=other.kind) == other

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "pid": self.pid,
            "host": self.host,
            "boot": self.boot,
            "pidns": self.pidns,
            "started": self.started,
            "kind": self.kind,
        }

    @classmethod
    def from_json(cls, data: object) -> Holder | None:
        """Read ``to_json``'s dict; None when it names no usable PID."""
        if not isinstance(data, dict):
            return None
        pid = data.get("pid")
        if not _is_int(pid) or not 0 < pid <= _MAX_PID:
            return None
        started = data.get("started")
        kind = data.get("kind")
        return cls(
            pid=pid,
            host=_text(data.get("host")),
            boot=_text(data.get("boot")),
            pidns=_text(data.get("pidns")),
            started=started if _is_int(started) and started >= 0 else None,
            kind=kind if isinstance(kind, str) and kind in _KINDS else "request",
        )


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="ascii", errors="replace").strip() or None
    except OSError:
        return None


def _stat(pid: int | str) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of ``pid`` from /proc, if it tells."""
    raw = _read(f"/proc/{pid}/stat")
    if raw is None or ")" not in raw:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = raw[raw.rindex(")") + 1 :].split()
    if len(fields) < 20 or not fields[19].isdigit():
        return None
    return fields[0], int(fields[19])


def _pidns() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except (OSError, AttributeError):
        return None


_me: Holder | None = None


def this_process() -> Holder:
    """The identity of the running process (read once per PID: a fork is another process)."""
    global _me
    pid = os.getpid()
    if _me is None or _me.pid != pid:
        stat = _stat("self")
        _me = Holder(
            pid=pid,
            host=socket.gethostname() or None,
            boot=_read("/proc/sys/kernel/random/boot_id"),
            pidns=_pidns(),
            started=None if stat is None else stat[1],
        )
    return _me


def _runs(pid: int) -> tuple[bool, int | None] | None:
    """Whether ``pid`` runs and its start time (None when unknown); None if it cannot tell."""
    if sys.platform == "win32":
        return None  # os.kill there terminates the process whatever the signal
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False, None
    except PermissionError:
        pass  # it runs, as another user (a holder started with sudo, say)
    except (OSError, OverflowError):
        return None
    stat = _stat(pid)
    if stat is None:
        return True, None
    state, started = stat
    # A zombie (killed, not yet reaped by its parent) still answers kill(pid, 0).
    return state not in ("Z", "X", "x"), started


def is_gone(holder: Holder, me: Holder | None = None) -> bool:
    """True only when ``holder`` certainly no longer runs, as seen from ``me``."""
    me = me or this_process()
    if holder.host is None or holder.host != me.host:
        return False  # another machine's PIDs cannot be checked from here
    if holder.boot is not None and me.boot is not None and holder.boot != me.boot:
        return True  # written before this machine last booted
    if holder.pidns != me.pidns:
        return False  # another container's PIDs are not ours
    seen = _runs(holder.pid)
    if seen is None:
        return False
    runs, started = seen
    if not runs:
        return True
    # The PID runs, but a process started at another time took it over.
    return holder.started is not None and started is not None and started != holder.started
