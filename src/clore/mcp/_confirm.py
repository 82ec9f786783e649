"""Asking the person before a tool spends: ``AgentContext.confirm`` over MCP elicitation.

The tool handlers are blocking and run in worker threads; the question goes to the
client on the server's event loop. Which way depends on the protocol era of the
connection:

- **Handshake era** (2024-11-05 .. 2025-11-25: today's desktop clients): the worker asks
  with ``anyio.from_thread.run``, which sends an ``elicitation/create`` request in the
  middle of the tool call and waits for the answer.
- **Per-request era** (2026-07-28): a server cannot send requests during a call. The
  call's worker keeps running (in the connection's task group) and waits; the tool call
  answers ``InputRequiredResult`` with the elicitation and a random ``requestState``;
  the client asks the person and calls the tool again with the answer and that state,
  which resumes the same waiting worker (``Parked``). The state is only a name of a
  waiting call of this process: it carries nothing the client could forge, and it must
  come back with the same tool and arguments.

Either way ``confirm`` answers True only for an explicit "yes"; a decline, a dismissal,
no answer within ``CONFIRM_TIMEOUT`` or a client error is False (CORE then voids the
quote). A client that did not declare the elicitation capability is not asked (None).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.abc
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

if TYPE_CHECKING:
    from mcp.server.session import ServerSession

__all__ = [
    "CONFIRM_KEY",
    "CONFIRM_SCHEMA",
    "CONFIRM_TIMEOUT",
    "Asker",
    "Parked",
    "ParkedCalls",
    "answer_of",
    "can_elicit",
    "confirm",
    "handshake_asker",
    "run_with",
]

#: Seconds the person has to answer; no answer is a "no".
CONFIRM_TIMEOUT: Final = 600.0
#: The key of the elicitation in ``InputRequiredResult.input_requests``.
CONFIRM_KEY: Final = "confirm"
#: The form the person answers: one boolean.
CONFIRM_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "confirm": {
            "type": "boolean",
            "title": "Rent it",
            "description": "Yes creates this order (it bills until cancelled or its maximum "
            "time); no voids the quote.",
        }
    },
    "required": ["confirm"],
}

#: ``ask(message, details) -> True | False | None`` (None: cannot ask).
Asker = Callable[[str, dict[str, Any]], "bool | None"]

_log = logging.getLogger("clore.mcp")
_local = threading.local()


def confirm(message: str, details: dict[str, Any]) -> bool | None:
    """``AgentContext.confirm``: ask through the asker of the tool call running in this
    thread (``run_with``); None outside one or when its client cannot be asked."""
    asker: Asker | None = getattr(_local, "asker", None)
    return None if asker is None else asker(message, details)


def run_with(asker: Asker | None, fn: Callable[[], Any]) -> Any:
    """``fn()`` with ``asker`` answering ``confirm`` in this thread (worker threads are
    reused: the asker is removed afterwards)."""
    _local.asker = asker
    try:
        return fn()
    finally:
        _local.asker = None


def can_elicit(session: ServerSession) -> bool:
    """True when the client declared form elicitation (an empty ``elicitation`` object
    means form, as before modes existed)."""
    caps = session.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    if elicitation is None:
        return False
    return elicitation.form is not None or elicitation.url is None


def answer_of(result: types.ElicitResult | None) -> bool:
    """True only for an accepted form whose ``confirm`` is true."""
    if result is None or result.action != "accept":
        return False
    return (result.content or {}).get("confirm") is True


def elicit_request(message: str) -> types.ElicitRequest:
    """The question, as an embedded (per-request era) elicitation."""
    return types.ElicitRequest(
        params=types.ElicitRequestFormParams(message=message, requested_schema=CONFIRM_SCHEMA)
    )


def handshake_asker(session: ServerSession, request_id: types.RequestId | None) -> Asker:
    """An asker for a worker thread of a handshake-era call: ``elicitation/create`` sent
    on the loop, related to the tool call's request."""

    def ask(message: str, details: dict[str, Any]) -> bool | None:
        async def elicit() -> bool:
            result: types.ElicitResult | None = None
            try:
                with anyio.move_on_after(CONFIRM_TIMEOUT):
                    result = await session.elicit_form(
                        message, CONFIRM_SCHEMA, related_request_id=request_id
                    )
            except Exception as exc:
                _log.warning("elicitation failed (%s): taken as a decline", type(exc).__name__)
                return False
            return answer_of(result)

        answer: bool = anyio.from_thread.run(elicit)
        return answer

    return ask


# --------------------------------------------------------------------- per-request era


@dataclass
class Parked:
    """One tool call whose worker runs on while the client asks the person."""

    name: str
    arguments: dict[str, Any]
    #: worker -> loop: ("confirm", message) or ("done", result)
    events_in: MemoryObjectSendStream[tuple[str, Any]]
    events: MemoryObjectReceiveStream[tuple[str, Any]]
    #: loop -> worker: the person's answer
    answers_in: MemoryObjectSendStream[bool]
    answers: MemoryObjectReceiveStream[bool]
    asked: bool = False

    @classmethod
    def new(cls, name: str, arguments: dict[str, Any]) -> Parked:
        events_in, events = anyio.create_memory_object_stream[tuple[str, Any]](8)
        answers_in, answers = anyio.create_memory_object_stream[bool](8)
        return cls(name, arguments, events_in, events, answers_in, answers)

    def asker(self) -> Asker:
        """The worker's asker: tell the loop, wait for the answer."""

        def ask(message: str, details: dict[str, Any]) -> bool | None:
            async def wait() -> bool:
                self.events_in.send_nowait(("confirm", message))
                return await self.answers.receive()

            answer: bool = anyio.from_thread.run(wait)
            return answer

        return ask

    def answer(self, value: bool) -> None:
        """Give the waiting worker its answer (once)."""
        if self.asked:
            self.asked = False
            self.answers_in.send_nowait(value)


@dataclass
class ParkedCalls:
    """The calls of one connection waiting for the person, by their ``requestState``."""

    group: anyio.abc.TaskGroup
    waiting: dict[str, Parked] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, call: Parked, work: Callable[[Asker], Any]) -> None:
        """Run ``work(asker)`` in a worker thread of the connection's task group."""

        async def run() -> None:
            outcome = await anyio.to_thread.run_sync(lambda: work(call.asker()))
            call.events_in.send_nowait(("done", outcome))

        self.group.start_soon(run)

    async def next_event(self, call: Parked) -> tuple[str, Any]:
        """What the worker does next: it finished (``done``, result), or it waits for the
        person (``confirm``, message; then ``call`` is parked under a fresh state)."""
        kind, value = await call.events.receive()
        if kind == "confirm":
            state = secrets.token_urlsafe(24)
            call.asked = True
            with self._lock:
                self.waiting[state] = call
            self.group.start_soon(self._expire, state)
            return kind, (state, value)
        return kind, value

    def take(self, state: str, name: str, arguments: Mapping[str, Any]) -> Parked | None:
        """The call parked under ``state`` for this tool and these arguments (removed)."""
        with self._lock:
            call = self.waiting.get(state)
            if call is None or call.name != name or call.arguments != dict(arguments):
                return None
            return self.waiting.pop(state)

    async def _expire(self, state: str) -> None:
        await anyio.sleep(CONFIRM_TIMEOUT)
        with self._lock:
            call = self.waiting.pop(state, None)
        if call is not None:
            call.answer(False)

    def close(self) -> None:
        """Every waiting call gets "no" (the connection ends)."""
        with self._lock:
            waiting, self.waiting = self.waiting, {}
        for call in waiting.values():
            call.answer(False)
