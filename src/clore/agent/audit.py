"""The agent's audit log: every mutating tool call, as JSON Lines, mode 0600.

``data_dir()/agent/audit.jsonl`` (``AuditLog.default_path``). Each mutating call writes
two lines sharing a ``call`` id: ``{"event": "call", ...}`` before anything is done (when
it cannot be written, the call is refused: nothing happens unaudited) and
``{"event": "result", ...}`` after. Fields::

    {"v": 1, "event": "call"|"result", "call": "<id>", "at": <unix s>, "tool": "rent_server",
     "arguments": {... secrets masked ...},                      # call
     "is_error": false, "text": "...", "order_id": 123 | null,   # result
     "quote": "<token fingerprint>" | null, "cost": {...} | null, "outcome": "..." | null}

Lines are appended under the file's own lock (``clore._files.locked``: the threads and
processes of the machine), one ``write`` each; the file is created 0600 in a 0700
directory and put back to 0600 if someone widened it. Secrets never reach it:
``mask_arguments`` hides passwords, tokens, secret-looking env values and key texts,
and the context scrubs every known secret from what is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from clore._files import locked
from clore._paths import data_dir

__all__ = ["AUDIT_FILE", "AuditLog", "fingerprint", "looks_secret", "mask_arguments"]

AUDIT_FILE: Final = "audit.jsonl"
_VERSION: Final = 1
_SECRET_ARGS: Final = frozenset({"ssh_password", "password", "jupyter_token", "passphrase"})
_SECRET_WORDS: Final = ("pass", "token", "secret", "key", "auth", "cred")


def fingerprint(token: str) -> str:
    """A short, one-way name of a quote token for the log (the token itself is a
    capability: whoever holds it may rent)."""
    return "q-" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


def looks_secret(name: str) -> bool:
    """True for an env name that looks like it holds a secret (pass, token, secret, key,
    auth, cred)."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def mask_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``arguments`` safe to log: passwords and Jupyter tokens hidden, the quote token as
    its fingerprint, a public key by its length, env values hidden when their name
    looks secret (pass, token, secret, key, auth, cred)."""
    shown: dict[str, Any] = {}
    for name, value in arguments.items():
        if name in _SECRET_ARGS:
            shown[name] = "<hidden>" if value else value
        elif name == "token" and isinstance(value, str):
            shown[name] = fingerprint(value)
        elif name == "ssh_key" and isinstance(value, str):
            shown[name] = f"<public key: {len(value)} characters>"
        elif name == "env" and isinstance(value, Mapping):
            shown[name] = {
                str(k): ("<hidden>" if looks_secret(str(k)) else v) for k, v in value.items()
            }
        else:
            shown[name] = value
    return shown


class AuditLog:
    """The append-only audit file at ``path`` (default ``data_dir()/agent/audit.jsonl``)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else self.default_path()

    @staticmethod
    def default_path() -> Path:
        """``data_dir()/agent/audit.jsonl``."""
        return data_dir() / "agent" / AUDIT_FILE

    @staticmethod
    def new_call_id() -> str:
        """A fresh id tying a call's two lines together."""
        return secrets.token_hex(6)

    def append(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` (with ``v``) as one JSON line; OSError when it cannot."""
        line = json.dumps({"v": _VERSION, **record}, sort_keys=True, default=str) + "\n"
        blob = line.encode("utf-8")
        with locked(self.path) as fd:
            if os.name != "nt" and os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, 0o600)
            os.lseek(fd, 0, os.SEEK_END)
            view = memoryview(blob)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)

    def records(self) -> list[dict[str, Any]]:
        """Every record in the file (lines that are not JSON objects skipped)."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        found: list[dict[str, Any]] = []
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                found.append(record)
        return found
