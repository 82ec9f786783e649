"""clore.jobs: a job on a rented GPU, from task file to outputs, paid only while it runs.

```python
from clore import Clore
from clore.jobs import load_task, resolve, run_job

spec = resolve("task.yaml", max_spend="2usd")      # the task file + options, checked
with Clore() as client:
    result = run_job(client, spec, on_event=lambda e: print(e.message))
print(result.summary); raise SystemExit(result.exit_code)
```

- ``task``: the task file (``load_task``, ``parse_task``, ``TaskFile``) and the resolved
  ``JobSpec`` (``resolve``); ``workdir``: what is uploaded (``select_files``).
- ``remote``: the machine side over SSH (``Session``, ``JobPaths``, the watchdog).
- ``runner``: ``run_job``/``arun_job``, ``resume_job``, ``stop_job``, ``job_logs``,
  ``list_jobs``; ``JobResult``, ``RunOptions``, ``summary_line``, the endings;
  ``Proposal``: what ``run_job(..., confirm=)`` is asked before it rents.
- ``events``: ``JobEvent`` and its JSON Lines schema (``SCHEMA_VERSION``, ``FIELDS``).
- ``records``: the local record of each job (``JobStore``, ``JobRecord``).

docs/jobs.md is the reference. Importing this package imports none of its modules (and
so neither asyncssh, httpx nor yaml): each name is loaded when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clore.jobs._proposal import Proposal
    from clore.jobs._result import (
        ENDING_STATES,
        ENDINGS,
        EXIT_CODES,
        JobResult,
        RunOptions,
        summary_line,
    )
    from clore.jobs.events import EVENT_NAMES, FIELDS, SCHEMA_VERSION, JobEvent
    from clore.jobs.records import (
        FINAL_STATES,
        JOB_STATES,
        JobError,
        JobNotFoundError,
        JobRecord,
        JobRecordError,
        JobRunningError,
        JobStore,
    )
    from clore.jobs.remote import JobPaths, RemoteError, RemoteStatus, Session
    from clore.jobs.runner import (
        ajob_logs,
        aresume_job,
        arun_job,
        astop_job,
        get_job,
        job_logs,
        list_jobs,
        resume_job,
        run_job,
        runner_alive,
        stop_job,
    )
    from clore.jobs.task import (
        JobSpec,
        Resources,
        TaskError,
        TaskFile,
        load_task,
        parse_task,
        resolve,
    )
    from clore.jobs.workdir import SIZE_WARNING_BYTES, Selection, select_files

__all__ = [
    "ENDINGS",
    "ENDING_STATES",
    "EVENT_NAMES",
    "EXIT_CODES",
    "FIELDS",
    "FINAL_STATES",
    "JOB_STATES",
    "SCHEMA_VERSION",
    "SIZE_WARNING_BYTES",
    "JobError",
    "JobEvent",
    "JobNotFoundError",
    "JobPaths",
    "JobRecord",
    "JobRecordError",
    "JobResult",
    "JobRunningError",
    "JobSpec",
    "JobStore",
    "Proposal",
    "RemoteError",
    "RemoteStatus",
    "Resources",
    "RunOptions",
    "Selection",
    "Session",
    "TaskError",
    "TaskFile",
    "ajob_logs",
    "aresume_job",
    "arun_job",
    "astop_job",
    "get_job",
    "job_logs",
    "list_jobs",
    "load_task",
    "parse_task",
    "resolve",
    "resume_job",
    "run_job",
    "runner_alive",
    "select_files",
    "stop_job",
    "summary_line",
]

# Where each lazily imported name lives (importing this package loads none of them).
_EXPORTS: dict[str, str] = {
    "ENDINGS": "clore.jobs._result",
    "ENDING_STATES": "clore.jobs._result",
    "EXIT_CODES": "clore.jobs._result",
    "JobResult": "clore.jobs._result",
    "RunOptions": "clore.jobs._result",
    "summary_line": "clore.jobs._result",
    "Proposal": "clore.jobs._proposal",
    "EVENT_NAMES": "clore.jobs.events",
    "FIELDS": "clore.jobs.events",
    "SCHEMA_VERSION": "clore.jobs.events",
    "JobEvent": "clore.jobs.events",
    "FINAL_STATES": "clore.jobs.records",
    "JOB_STATES": "clore.jobs.records",
    "JobError": "clore.jobs.records",
    "JobNotFoundError": "clore.jobs.records",
    "JobRecord": "clore.jobs.records",
    "JobRecordError": "clore.jobs.records",
    "JobRunningError": "clore.jobs.records",
    "JobStore": "clore.jobs.records",
    "JobPaths": "clore.jobs.remote",
    "RemoteError": "clore.jobs.remote",
    "RemoteStatus": "clore.jobs.remote",
    "Session": "clore.jobs.remote",
    "ajob_logs": "clore.jobs.runner",
    "aresume_job": "clore.jobs.runner",
    "arun_job": "clore.jobs.runner",
    "astop_job": "clore.jobs.runner",
    "get_job": "clore.jobs.runner",
    "job_logs": "clore.jobs.runner",
    "list_jobs": "clore.jobs.runner",
    "resume_job": "clore.jobs.runner",
    "run_job": "clore.jobs.runner",
    "runner_alive": "clore.jobs.runner",
    "stop_job": "clore.jobs.runner",
    "JobSpec": "clore.jobs.task",
    "Resources": "clore.jobs.task",
    "TaskError": "clore.jobs.task",
    "TaskFile": "clore.jobs.task",
    "load_task": "clore.jobs.task",
    "parse_task": "clore.jobs.task",
    "resolve": "clore.jobs.task",
    "SIZE_WARNING_BYTES": "clore.jobs.workdir",
    "Selection": "clore.jobs.workdir",
    "select_files": "clore.jobs.workdir",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'clore.jobs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
