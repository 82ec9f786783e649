"""The job runner's events and their JSON Lines form, schema version 1.

Every step of a job is one ``JobEvent``: what happened (``event``), when (``t``, unix
seconds on the runner's clock), to which job, a human ``message`` and the event's own
fields (``FIELDS`` lists them per event; they are part of the schema). The command's own
output is not an event: it goes to the ``on_stdout``/``on_stderr`` callbacks as bytes.

JSON object (``JobEvent.to_json()``), one per line for ``clore run --json``; keys always
present::

    {"v": 1, "job": "a1b2c3d4", "t": 1700000000.0, "event": "rented",
     "message": "rented server 7 as order 12 ...", "order_id": 12, "server_id": 7, ...}

``order_id`` and ``server_id`` are in every event (null when not known yet); every other
key of ``FIELDS[event]`` is present (null when it does not apply). A consumer should
ignore keys and events it does not know: new ones may be added within version 1, never
removed or changed in meaning. docs/jobs.md is the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

__all__ = ["EVENT_NAMES", "FIELDS", "SCHEMA_VERSION", "JobEvent", "make_job_event"]

SCHEMA_VERSION: Final = 1

#: Each event's fields beyond ``v``, ``job``, ``t``, ``event``, ``message``, ``order_id``
#: and ``server_id`` (JSON scalars unless noted).
FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    # the job was accepted: what it runs and where (resumed: a resume_job took it over)
    "job_started": ("name", "command", "resumed", "keep", "recover", "verify"),
    # a server was picked: its price per day, how many candidates matched, what was left out
    "server_chosen": ("price", "currency", "spot", "candidates", "left_out"),
    # create_order is about to be sent (attempt: 1 for the first order of the job)
    "renting": ("price", "currency", "spot", "bid", "attempt"),
    "rented": ("price", "currency", "spot", "adopted"),
    # a candidate refused the order (rented meanwhile, price moved, offline): next one
    "rent_skipped": ("reason",),
    # SSH answers on the order (host, port), after waiting seconds
    "ready": ("host", "port", "seconds"),
    "verified": ("verdict", "seconds"),
    # failed checks (list of names); cancelled inside the free window or not; next server
    "verify_failed": ("verdict", "failed", "cancelled", "in_window", "next_server_id"),
    # files (count) and bytes to send; large: above SIZE_WARNING_BYTES; restored: files of
    # the outputs carried over from a lost machine (recovery)
    "uploading": ("files", "bytes", "large", "restored"),
    "uploaded": ("bytes", "seconds"),
    "setup_started": ("setup",),
    # the command runs (attempt counts restarts after recovery; remote: the job's directory)
    "running": ("attempt", "remote"),
    # the SSH connection dropped; reconnecting for at most budget seconds
    "reconnecting": ("error", "budget"),
    # back after seconds; streaming resumes at these byte offsets
    "reconnected": ("seconds", "stdout_offset", "stderr_offset"),
    # GPU utilization (percent, the highest GPU) stayed below threshold for seconds
    "idle": ("seconds", "threshold", "utilization"),
    # limit: max_spend | max_time; value and max in the order's currency or seconds
    "limit_reached": ("limit", "value", "max", "currency"),
    # a spot bid not winning any more (the machine stops)
    "outbid": ("bid", "winning_bid"),
    # the order ended or its machine went away: state is Order.state_at's word
    "order_lost": ("state", "reason"),
    # re-renting after a lost order: the job restarts from scratch (carried: output files
    # uploaded first, so a job that checkpoints into its outputs continues from there)
    "recovering": ("attempt", "reason", "carried"),
    # outputs copied back during the run so a recovery can carry them over
    "checkpointed": ("files", "bytes"),
    "stop_requested": ("by", "reason"),
    "downloading": ("outputs",),
    # files: local paths written; missing: outputs the machine did not have
    "downloaded": ("files", "bytes", "missing"),
    "cancelling": ("reason",),
    # spend and fees (renter fee + creation fee) of this order, in currency
    "cancelled": ("spend", "fees", "currency"),
    # the order was left running (keep): how to reach it, how to stop it
    "kept": ("ssh", "cancel"),
    # something went wrong without ending the job (a cancel refused, a copy failed)
    "warning": ("warning",),
    # the end: reason (ENDINGS), exit code, wall seconds, cost = spend + fees of every
    # order of the job, the one-line summary
    "finished": (
        "reason",
        "exit_code",
        "command_exit_code",
        "seconds",
        "cost",
        "fees",
        "currency",
        "cancelled",
        "summary",
    ),
}

#: Every event name, in the order a job meets them.
EVENT_NAMES: Final[tuple[str, ...]] = tuple(FIELDS)


class JobEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One step of job ``job``: ``event`` at ``t``, in words (``message``) and as
    ``fields`` (``FIELDS[event]``, plus ``order_id``/``server_id``)."""

    job: str
    event: str
    t: float
    message: str
    order_id: int | None = None
    server_id: int | None = None
    fields: dict[str, Any] = {}

    def get(self, name: str, default: Any = None) -> Any:
        """One field (``order_id`` and ``server_id`` included), or ``default``."""
        if name in ("order_id", "server_id"):
            value = getattr(self, name)
            return default if value is None else value
        return self.fields.get(name, default)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the module docstring (every field of the event present)."""
        document: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "job": self.job,
            "t": round(self.t, 3),
            "event": self.event,
            "message": self.message,
            "order_id": self.order_id,
            "server_id": self.server_id,
        }
        for name in FIELDS.get(self.event, ()):
            document[name] = msgspec.to_builtins(self.fields.get(name))
        for name, value in self.fields.items():
            document.setdefault(name, msgspec.to_builtins(value))
        return document

    def to_json_line(self) -> str:
        """``to_json()`` as one compact line (no newline), for JSON Lines."""
        return msgspec.json.encode(self.to_json()).decode()


def make_job_event(
    job: str,
    event: str,
    t: float,
    message: str,
    *,
    order_id: int | None = None,
    server_id: int | None = None,
    **fields: Any,
) -> JobEvent:
    """A ``JobEvent``; ``ValueError`` for an event name or a field the schema lacks."""
    known = FIELDS.get(event)
    if known is None:
        raise ValueError(f"unknown job event {event!r}")
    extra = set(fields) - set(known)
    if extra:
        raise ValueError(f"event {event!r} has no field(s) {', '.join(sorted(extra))}")
    return JobEvent(
        job=job,
        event=event,
        t=t,
        message=message,
        order_id=order_id,
        server_id=server_id,
        fields=fields,
    )
