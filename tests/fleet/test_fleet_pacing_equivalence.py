"""The Lua port decides exactly as the pure pacing functions: same delays, same state.

Hypothesis draws a configuration and a sequence of pacer operations (reserves, answers,
429s, spot bids and their checks) at times that mostly move forward and sometimes step
back; the same sequence runs on a ``Pacer`` over a ``MemoryStore`` (the Python rules),
on a ``RedisPacer`` (the Lua script, against a real redis-server) and on a ``Pacer`` over
a ``RedisStore`` (Python rules, Redis compare-and-set). Every answer and the final state
must be equal, bit for bit.
"""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clore._pacing import Pacer, Pacing, PacingState
from clore._pacing_redis import RedisPacer, RedisStore
from clore._pacing_store import MemoryStore

T0 = 1_700_000_000.0

configs = st.builds(
    Pacing,
    min_interval=st.floats(0, 3),
    create_interval=st.floats(0, 10),
    spot_lower_interval=st.floats(0, 900),
    margin=st.floats(0, 0.1),
    shared=st.just(False),
)
steps = st.one_of(st.floats(0, 8), st.floats(-2, 0), st.just(0.0))
orders = st.integers(1, 6)
prices = st.floats(0.5, 3.0)
operation = st.one_of(
    st.tuples(st.just("reserve"), st.sampled_from(["request", "create"]), st.floats(0, 700), steps),
    st.tuples(st.just("complete"), st.sampled_from(["request", "create"]), st.booleans(), steps),
    st.tuples(st.just("penalize"), steps),
    st.tuples(st.just("spot_wait"), orders, prices, steps),
    st.tuples(
        st.just("note_bid"), orders, st.none() | prices, st.none() | st.floats(-50, 50), steps
    ),
    st.tuples(st.just("observe"), st.dictionaries(orders, prices, max_size=3), steps),
)


def _run(pacer: Pacer, ops: list[tuple[Any, ...]]) -> list[float | None]:
    now, server = T0, T0 + 500.0
    answers: list[float | None] = []
    for op in ops:
        step = op[-1]
        now += step
        server += step
        name = op[0]
        if name == "reserve":
            answers.append(pacer.reserve(op[1], now, hold=op[2]))
        elif name == "complete":
            pacer.complete(op[1], now, rate_limited=op[2])
            answers.append(None)
        elif name == "penalize":
            pacer.penalize(now)
            answers.append(None)
        elif name == "spot_wait":
            answers.append(pacer.spot_wait(op[1], op[2], server))
        elif name == "note_bid":
            lowered = None if op[3] is None else server + op[3]
            pacer.note_bid(op[1], op[2], server, lowered_at=lowered)
            answers.append(None)
        else:
            pacer.observe_bids(op[1], server)
            answers.append(None)
    return answers


def _state(pacer: Pacer) -> dict[str, Any]:
    state: PacingState = pacer.store.transact(lambda s: s)
    return state.to_json()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(config=configs, ops=st.lists(operation, min_size=1, max_size=25))
def test_lua_and_python_give_the_same_delays_and_state(
    redis_url: str, config: Pacing, ops: list[tuple[Any, ...]]
) -> None:
    """For any sequence of operations, the Lua store answers and ends as the MemoryStore."""
    key = uuid.uuid4().hex  # a fresh key (so a fresh state) per example
    memory = Pacer(config, MemoryStore())
    lua = RedisPacer(config, redis_url, key, server_clock=False)
    cas = Pacer(config, RedisStore(redis_url, key + "-cas"))
    expected = _run(memory, ops)
    assert expected == _run(lua, ops)
    assert expected == _run(cas, ops)
    assert _state(memory) == _state(lua)
    assert _state(memory) == _state(cas)


def test_the_spot_entries_are_evicted_oldest_first_with_ties_in_insertion_order(
    redis_url: str,
) -> None:
    """Past 256 orders the oldest entries go, ties broken as Python's stable sort does."""
    config = Pacing(shared=False)
    memory = Pacer(config, MemoryStore())
    lua = RedisPacer(config, redis_url, "evict-key", server_clock=False)
    for pacer in (memory, lua):
        for order in range(300):
            pacer.note_bid(order, 1.0, T0 + order // 7)  # seven orders share each time
        pacer.observe_bids({1000 + i: 2.0 for i in range(5)}, T0)
    assert list(_state(memory)["spot"]) == list(_state(lua)["spot"])
    assert _state(memory) == _state(lua)
