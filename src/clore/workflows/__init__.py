"""Automation over the SDK: watch and auto-rent, monitor with events, keep spot rentals, guards.

Every workflow is a generator of ``Event`` over an injected client (anything with the
``clore.Clore`` methods it calls) and a ``clore._clock.Clock``. It sleeps only through the
clock, between polls; the SDK client does the request pacing. Iterate it, and stop it by
closing the generator or with Ctrl-C: state files are written before every step that
matters, so a restarted loop continues where the last one stopped.

    from clore import Clore
    from clore._clock import SystemClock
    from clore.workflows import RentSpec, Watcher

    with Clore() as client:
        rent = RentSpec(image="cloreai/ubuntu22.04-jupyter")
        cheap_4090 = lambda s: "4090" in s.gpu_model
        for event in Watcher(client, SystemClock(), match=cheap_4090, max_price=0.0002,
                             rent=rent).run():
            print(event.message)
"""

from __future__ import annotations

from clore.workflows.aio import aiterate
from clore.workflows.events import DETAILS, SCHEMA_VERSION, Event, EventKind, make_event
from clore.workflows.guard import (
    Breach,
    CancelClient,
    Guard,
    RunwayWatch,
    breach,
    enforce,
    forget_limits,
    guard,
    register_limits,
    registered_limits,
)
from clore.workflows.hook_queue import HookQueue
from clore.workflows.hooks import CommandHook, Hooks, WebhookHook
from clore.workflows.monitor import OrderMonitor, monitor, tcp_probe
from clore.workflows.plan import (
    LimitError,
    Limits,
    RentSpec,
    burn_per_day,
    planned_cost,
    planned_seconds,
)
from clore.workflows.spot_bids import BidDecision, decide_bid
from clore.workflows.spot_keeper import KeeperState, SpotKeeper, keep_spot
from clore.workflows.state import StateFile, state_key, workflows_dir
from clore.workflows.watch import Watcher, WatchState, watch

__all__ = [
    "DETAILS",
    "SCHEMA_VERSION",
    "BidDecision",
    "Breach",
    "CancelClient",
    "CommandHook",
    "Event",
    "EventKind",
    "Guard",
    "HookQueue",
    "Hooks",
    "KeeperState",
    "LimitError",
    "Limits",
    "OrderMonitor",
    "RentSpec",
    "RunwayWatch",
    "SpotKeeper",
    "StateFile",
    "WatchState",
    "Watcher",
    "WebhookHook",
    "aiterate",
    "breach",
    "burn_per_day",
    "decide_bid",
    "enforce",
    "forget_limits",
    "guard",
    "keep_spot",
    "make_event",
    "monitor",
    "planned_cost",
    "planned_seconds",
    "register_limits",
    "registered_limits",
    "state_key",
    "tcp_probe",
    "watch",
    "workflows_dir",
]
