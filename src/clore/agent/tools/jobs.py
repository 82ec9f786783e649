"""The job tools' place: running a job on a rented machine and following it.

Empty until ``clore.jobs`` (the job runner) lands; then this module's ``TOOLS`` lists
``start_job``, ``job_status``, ``job_logs`` and ``stop_job`` as ``ToolSpec``s built the
same way as the others (a ``msgspec.Struct`` of arguments, ``schema_of``, ``typed``):

- a job that rents needs a quote: issue it with ``ctx.quotes.issue("job", arguments,
  price)`` after ``clore.agent.renting.assess`` (every cap checked), redeem it with
  ``ctx.quotes.redeem(token, "job", arguments)``, and rent through
  ``clore.agent.renting.rent(ctx, arguments, quote, kind="job")`` under
  ``ctx.mutation_lock`` (the order is then the agent's: ledger, maximum time, login);
- ``mutating=True`` for start and stop (hidden in read-only mode, audited);
- everything read from the machine (logs, output, exit reasons) goes back through
  ``clore.agent.untrusted.untrusted(text, source="job <id> stdout")``.

``clore.agent.tools.tools`` lists the groups in ``GROUPS``; this one is last.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clore.agent.spec import ToolSpec

__all__ = ["TOOLS"]

TOOLS: list[ToolSpec] = []
