"""Use a workflow from asyncio: ``async for event in aiterate(Watcher(...).run())``.

The workflows are synchronous generators over a synchronous client; ``aiterate`` runs each
step in a worker thread so the event loop stays free. Give the workflow a real clock
(``SystemClock``): its sleeps happen in that thread. Cancelling the consuming task stops
the iteration after the step in progress, and closes the generator (its cleanup runs).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import TypeVar, cast

__all__ = ["aiterate"]

T = TypeVar("T")

_END = object()


def _step(events: Iterator[T]) -> T | object:
    return next(events, _END)


async def aiterate(events: Iterator[T]) -> AsyncIterator[T]:
    """Yield the items of a synchronous iterator, computing each in a worker thread."""
    try:
        while True:
            item = await asyncio.to_thread(_step, events)
            if item is _END:
                return
            yield cast(T, item)
    finally:
        close = getattr(events, "close", None)
        if callable(close):
            await asyncio.to_thread(close)
