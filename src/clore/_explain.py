"""Explain mode: report every request a client makes, and send none that changes anything.

``Clore(explain=callback)`` (or ``client.explain = callback``) hands ``callback`` an
``ExplainedRequest`` for each request the client is about to send: reads (GETs) are
then sent as usual, a request that may change something (``Endpoint.mutates`` in
``clore._facts``: create_order, cancel_order, set_spot_price, set_server_settings) is
not sent, and the call raises ``Explained`` instead. ``Explained`` is not a
``CloreError``: a loop that retries API errors does not mistake it for one, and the
operation stops there with nothing changed.

What the callback gets is safe to print: the API key never appears (it travels in the
``auth`` header, shown as ``***``); in the body, ``ssh_password``, ``jupyter_token``,
``dockerhub_auth`` and the values of ``env`` variables whose names look secret
(``*PASS*``, ``*SECRET*``, ``*TOKEN*``, ``*KEY*``, ``*AUTH*``, ``*CREDENTIAL*``) are
``***``; ``ssh_key`` is shortened to its type, the ends of its data and its comment; any
string holding the API key has it replaced by ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from clore._core import Request
from clore._facts import AUTH_HEADER, ENDPOINTS

__all__ = [
    "REDACTED",
    "ExplainCallback",
    "Explained",
    "ExplainedRequest",
    "describe",
    "redact_body",
    "shorten_ssh_key",
]

#: What a secret is shown as.
REDACTED: Final = "***"

#: Body fields whose values are secrets, whatever the endpoint.
_SECRET_FIELDS: Final = frozenset({"ssh_password", "jupyter_token", "dockerhub_auth"})

#: ``env`` variables whose values are shown as ``***`` (matched against the name).
_SECRET_NAME: Final = re.compile(r"PASS|SECRET|TOKEN|KEY|AUTH|CREDENTIAL|PWD", re.IGNORECASE)


@dataclass(frozen=True)
class ExplainedRequest:
    """One request as explain mode reports it (secrets redacted; see the module).

    ``url`` is the full URL with its query (it never carries the key); ``body`` the JSON
    body decoded (``None``: no body); ``auth`` whether the key is sent (in the ``auth``
    header); ``mutates`` whether the endpoint may change something; ``sent`` whether
    the request is sent (reads) or held back (everything that mutates).
    """

    endpoint: str
    method: str
    url: str
    body: Any
    auth: bool
    mutates: bool
    sent: bool

    def to_dict(self) -> dict[str, Any]:
        """The request as a JSON-ready dict (``auth`` as ``"***"`` when a key is sent)."""
        return {
            "endpoint": self.endpoint,
            "method": self.method,
            "url": self.url,
            "headers": {"auth": REDACTED} if self.auth else {},
            "body": self.body,
            "mutates": self.mutates,
            "sent": self.sent,
        }

    def __str__(self) -> str:
        key = f"  auth: {REDACTED}" if self.auth else ""
        what = "a read: sent" if self.sent else "changes something: not sent"
        return f"{self.method} {self.url}{key}  ({what})"


class Explained(Exception):
    """A client in explain mode reached a request that may change something and did not
    send it: the operation ends here, nothing was changed. ``request`` is what would have
    been sent (redacted)."""

    def __init__(self, request: ExplainedRequest) -> None:
        super().__init__(
            f"explained; nothing was changed ({request.method} {request.endpoint} not sent)"
        )
        self.request = request


#: What ``Clore(explain=...)`` takes: called with each request before it is sent.
ExplainCallback = Callable[[ExplainedRequest], None]


def shorten_ssh_key(key: str) -> str:
    """``ssh-ed25519 AAAAC3Nz…q0Fh9xQw user@host``: a public key's type, the first and last
    eight characters of its data and its comment; other text cut to 16 characters."""
    parts = key.split()
    if len(parts) >= 2 and len(parts[1]) > 20:
        parts[1] = f"{parts[1][:8]}…{parts[1][-8:]}"
        return " ".join(parts)
    return key if len(key) <= 16 else f"{key[:16]}… ({len(key)} characters)"


def _scrub(value: Any, api_key: str | None) -> Any:
    if isinstance(value, str):
        return value.replace(api_key, REDACTED) if api_key and api_key in value else value
    if isinstance(value, dict):
        return {k: _scrub(v, api_key) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(item, api_key) for item in value]
    return value


def redact_body(body: Any, api_key: str | None = None) -> Any:
    """``body`` (a decoded JSON body) with its secrets replaced (see the module)."""
    if not isinstance(body, dict):
        return _scrub(body, api_key)
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name in _SECRET_FIELDS and value is not None:
            out[name] = REDACTED
        elif name == "ssh_key" and isinstance(value, str):
            out[name] = shorten_ssh_key(_scrub(value, api_key))
        elif name == "env" and isinstance(value, dict):
            out[name] = {
                var: REDACTED if _SECRET_NAME.search(str(var)) else _scrub(text, api_key)
                for var, text in value.items()
            }
        else:
            out[name] = _scrub(value, api_key)
    return out


def describe(request: Request) -> ExplainedRequest:
    """``request`` as explain mode reports it; ``sent`` is False for one that mutates
    (and for an endpoint the facts do not know: nothing unknown is sent)."""
    api_key = request.headers.get(AUTH_HEADER)
    endpoint = ENDPOINTS.get(request.endpoint)
    mutates = endpoint is None or endpoint.mutates
    body: Any = None
    if request.content:
        try:
            body = msgspec.json.decode(request.content)
        except msgspec.DecodeError:
            body = f"<{len(request.content)} bytes, not JSON>"
    return ExplainedRequest(
        endpoint=request.endpoint,
        method=request.method,
        url=_scrub(request.url, api_key),
        body=redact_body(body, api_key),
        auth=bool(api_key),
        mutates=mutates,
        sent=not mutates,
    )
