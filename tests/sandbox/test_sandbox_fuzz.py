"""Bounded fuzzing of a real sandbox server on 127.0.0.1: every v1 endpoint and the
control plane, from schemathesis's strategies (valid and invalid calls drawn from the
OpenAPI document) and from raw hypothesis requests (any method, odd paths, queries,
headers and bodies, CR/LF field names). A run fails on any 5xx, any request left
unanswered, any answer that is not a JSON object with an integer ``code``, and any
``Traceback`` in the server's log, which the test reads.

(Schemathesis's own pytest plugin does not support pytest 9, so cases are drawn from its
per-operation hypothesis strategies directly. One server serves the module; the budget
keeps the whole module well under a minute on two cores.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from sandbox_support import SMALL_MARKET, LiveServer, start_live_server
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from clore.sandbox.dispatch import ENDPOINTS
from clore.sandbox.openapi import openapi_document

pytestmark = pytest.mark.slow

SCHEMA = schemathesis.openapi.from_dict(openapi_document())
LABELS = [result.ok().label for result in SCHEMA.get_all_operations()]
PUBLIC = [label for label in LABELS if " /v1/" in label]
CONTROL = [label for label in LABELS if " /_sandbox/" in label]
TIMEOUT = 10.0  # an answer later than this is an unanswered request

# Examples per operation and generation mode; the raw fuzz's total.
V1_EXAMPLES = 15
CONTROL_EXAMPLES = 12
RAW_EXAMPLES = 1000

# No shrinking: against a real server it takes minutes, and each failure message already
# holds the whole request.
_SETTINGS = settings(
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    print_blob=True,
)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One keep-alive HTTP client for the raw fuzzing."""
    with httpx.Client(timeout=TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One sandbox server (small market, no rate limits) for the module's fuzzing."""
    home = tmp_path_factory.mktemp("fuzz")
    seed = home / "market.json"
    seed.write_text(json.dumps(SMALL_MARKET))
    env = {f"CLORE_{name}_DIR": str(home / name.lower()) for name in ("CONFIG", "CACHE", "DATA")}
    live = start_live_server(home / "sandbox", seed, "--no-rate-limit", env=env)
    yield live
    live.stop()
    assert "Traceback" not in live.log(), live.log()


SENT: list[str] = []  # one entry per request the fuzzing sent, for the final count


def _assert_answered(server: LiveServer, status: int, content: bytes, what: str) -> None:
    """A non-5xx JSON object with an integer code, and a log without a traceback."""
    SENT.append(what)
    assert status < 500, f"{what}: HTTP {status} {content[:300]!r}"
    if not what.startswith("HEAD "):  # a HEAD answer has no body
        try:
            body = json.loads(content)
        except ValueError:
            raise AssertionError(f"{what}: HTTP {status}, not JSON: {content[:300]!r}") from None
        openapi = isinstance(body, dict) and "openapi" in body and "/_sandbox/openapi.json" in what
        assert openapi or (isinstance(body, dict) and type(body.get("code")) is int), (
            f"{what}: {content[:300]!r}"
        )
    log = server.log()
    assert "Traceback" not in log, f"{what}: the server logged\n{log}"


def _clear_faults(server: LiveServer) -> None:
    # A fault a fuzzed call queued must not fire on the next one: a queued http_500,
    # timeout or drop is the sandbox doing what it was told, not a defect.
    answer = httpx.delete(server.root + "/_sandbox/faults", timeout=TIMEOUT)
    assert answer.json() == {"code": 0}


def _fuzz(server: LiveServer, label: str, headers: list[dict[str, str]], examples: int) -> None:
    operation = SCHEMA.find_operation_by_label(label)
    session = requests.Session()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        checks = [not_a_server_error]
        if mode is GenerationMode.POSITIVE:
            checks.append(response_schema_conformance)

        @settings(_SETTINGS, max_examples=examples)
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            for extra in headers:
                what = f"{case.method} {case.formatted_path}"
                try:
                    response = case.call(
                        base_url=server.root, session=session, headers=extra, timeout=TIMEOUT
                    )
                except requests.ConnectionError as exc:
                    raise AssertionError(f"{what}: no answer ({exc})") from None
                except requests.Timeout:
                    raise AssertionError(f"{what}: no answer within {TIMEOUT} s") from None
                if "faults" in label:
                    _clear_faults(server)
                _assert_answered(server, response.status_code, response.content, what)
                case.validate_response(response, checks=checks)  # noqa: B023 - run at once

        try:
            run()
        except Unsatisfiable:
            # No invalid input exists for an operation without parameters or body.
            assert mode is GenerationMode.NEGATIVE
    session.close()


@pytest.mark.parametrize("label", PUBLIC)
def test_every_v1_endpoint_answers_generated_calls(server: LiveServer, label: str) -> None:
    """Valid and invalid calls, as the demo user and anonymously, each get a JSON answer."""
    _fuzz(server, label, [{"auth": server.demo_key}, {}], V1_EXAMPLES)


@pytest.mark.parametrize("label", CONTROL)
def test_every_control_operation_answers_generated_calls(server: LiveServer, label: str) -> None:
    """Valid and invalid control-plane calls (reset and faults included) get JSON answers."""
    _fuzz(server, label, [{}], CONTROL_EXAMPLES)


# ---- raw requests: what no schema describes ----------------------------------------------

TRICKY_TEXT = st.sampled_from(
    ["\r", "\n", "\r\n", "a\r\nset-cookie: x=1", "\x00", "\x7f", "é", "😀", "\u2028", " ", ""]
)
TEXT = st.one_of(TRICKY_TEXT, st.text(max_size=40))
KEYS = st.one_of(
    TRICKY_TEXT,
    st.sampled_from(["name", "seconds", "endpoint", "fault", "count", "env", "ports", "price"]),
    st.sampled_from(["renting_server", "currency", "image", "type", "id", "spotprice"]),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=12,
)
BODIES = st.one_of(
    st.just(b""),
    st.dictionaries(KEYS, JSON_VALUES, max_size=6).map(lambda d: json.dumps(d).encode()),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
    st.builds(
        lambda key, size: json.dumps({"env": {key: "v" * size}, "renting_server": 1}).encode(),
        TRICKY_TEXT,
        st.sampled_from([0, 16384, 16385, 70000]),
    ),
)
KNOWN_PATHS = [f"/v1/{name}" for name in ENDPOINTS] + [
    "/_sandbox",
    "/_sandbox/info",
    "/_sandbox/users",
    "/_sandbox/advance",
    "/_sandbox/faults",
    "/_sandbox/reset",
    "/_sandbox/market/tick",
    "/_sandbox/servers/1",
    "/_sandbox/openapi.json",
    "/",
    "/v1",
]
PATHS = st.one_of(
    st.sampled_from(KNOWN_PATHS),
    st.builds(
        lambda base, tail: base + "/" + quote(tail, safe=""), st.sampled_from(KNOWN_PATHS), TEXT
    ),
    st.lists(TEXT, max_size=3).map(lambda parts: "/" + "/".join(quote(p, safe="") for p in parts)),
)
HEADER_VALUES = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "auth": st.one_of(HEADER_VALUES, st.just("DEMO")),
        "content-type": st.sampled_from(["application/json", "text/plain", "x/y;charset=nope"]),
        "x-sandbox-token": HEADER_VALUES,
    },
)


@settings(_SETTINGS, max_examples=RAW_EXAMPLES)
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"]),
    path=PATHS,
    query=st.dictionaries(TEXT, TEXT, max_size=3),
    headers=HEADERS,
    body=BODIES,
)
def test_raw_requests_always_get_a_json_answer(
    server: LiveServer,
    http: httpx.Client,
    method: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    body: bytes,
) -> None:
    """Any method, path, query, header and body (CR/LF field names, huge env values,
    binary) gets a non-5xx JSON answer, and the server logs no traceback."""
    if headers.get("auth") == "DEMO":
        headers = {**headers, "auth": server.demo_key}
    what = f"{method} {path!r} query={query!r} headers={headers!r} body={body[:80]!r}"
    try:
        response = http.request(
            method,
            server.root + path,
            params=query,
            headers=headers,
            content=body,
            timeout=TIMEOUT,
        )
    except httpx.TransportError as exc:
        raise AssertionError(f"{what}: no answer ({type(exc).__name__}: {exc})") from None
    if "/_sandbox/faults" in path:
        _clear_faults(server)
    _assert_answered(server, response.status_code, response.content, what)


def test_the_fuzzed_server_is_still_whole(server: LiveServer) -> None:
    """After the fuzzing (over a thousand requests when the module runs whole) the server
    still answers, and its log holds no traceback."""
    assert httpx.get(server.base + "/marketplace", timeout=TIMEOUT).json()["code"] == 0
    assert "Traceback" not in server.log()
    assert os.path.getsize(server.log_path) < 1_000_000
    whole = len(SENT) >= RAW_EXAMPLES  # not when -k picked a few tests
    print(f"fuzz: {len(SENT)} requests answered")
    assert not whole or len(SENT) > 1000, len(SENT)
