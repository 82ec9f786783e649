"""The API's facts are written once (clore._facts) and every part reads them there."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from clore import (
    APIError,
    ApplicationError,
    AuthenticationError,
    InvalidInputError,
    Pacing,
    ParameterError,
    RateLimitError,
    ServerOfflineError,
    _core,
    _errors,
    _facts,
    _servertime,
    _validate,
    _wire,
    preview_create_order,
)
from clore._wire import (
    CancelOrderRequest,
    CreateOrderRequest,
    SetServerSettingsPerCurrencyRequest,
)
from clore.market import pricing
from clore.sandbox import Sandbox, dispatch

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "clore-api.md"
ROOT = Path(__file__).resolve().parents[2]


def test_the_sdk_and_the_sandbox_share_one_endpoint_table() -> None:
    """The SDK's, the sandbox's and the facts' ENDPOINTS are one object."""
    assert _core.ENDPOINTS is _facts.ENDPOINTS
    assert dispatch.ENDPOINTS is _facts.ENDPOINTS


def test_every_endpoint_of_the_reference_is_in_the_table() -> None:
    """Each "GET|POST `/v1/<name>`" of ../shared/clore-api.md is an endpoint, same method."""
    if not REFERENCE.is_file():
        pytest.skip("the API reference is not beside this clone")
    documented = set(re.findall(r"\b(GET|POST) `/v1/(\w+)", REFERENCE.read_text()))
    assert {(ep.method, ep.name) for ep in _facts.ENDPOINTS.values()} == documented


def test_every_struct_an_endpoint_names_is_a_wire_struct() -> None:
    """The request, query and response names resolve to msgspec Structs in clore._wire."""
    names = {
        name
        for ep in _facts.ENDPOINTS.values()
        for name in (ep.response, *ep.request, ep.params)
        if name
    }
    kinds = {name: getattr(_wire, name, None) for name in names}
    structs = {n for n, k in kinds.items() if isinstance(k, type) and issubclass(k, msgspec.Struct)}
    assert structs == names


def test_reads_may_repeat_and_only_create_order_has_its_own_window() -> None:
    """Every GET is idempotent, no POST is; create_order alone counts in the 5 s window."""
    eps = _facts.ENDPOINTS.values()
    assert [ep.name for ep in eps if ep.idempotent != (ep.method == "GET")] == []
    assert [ep.name for ep in eps if ep.kind == "create"] == ["create_order"]
    assert [ep.name for ep in eps if not ep.auth] == ["marketplace", "spot_marketplace"]


def test_the_sdk_error_tables_are_the_facts() -> None:
    """Code meanings are the facts' table; each code-6 string of the facts has its class."""
    assert _errors.CODE_MEANINGS is _facts.CODE_MEANINGS
    assert set(_errors._BY_ERROR_STRING) == set(_facts.ERROR_STRINGS)
    assert sorted(_errors._BY_CODE) == sorted(set(_facts.CODE_MEANINGS) - {_facts.OK})


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"code": 2}, 200, InvalidInputError),
        ({"code": 6, "error": "server-offline"}, 200, ServerOfflineError),
        ({"code": 6, "error": "something-new"}, 200, ApplicationError),
        ({"code": 3, "error": "control_token_required"}, 401, AuthenticationError),
        ({}, 429, RateLimitError),
    ],
)
def test_api_error_from_response_names_the_class_of_the_answer(
    body: dict[str, Any], status: int, expected: type[APIError]
) -> None:
    """APIError.from_response builds the error an answer stands for (what the sandbox's
    control client raises)."""
    error = APIError.from_response(body, status_code=status, endpoint="x")
    assert (type(error), error.status_code) == (expected, status)


def test_the_sandbox_answers_with_the_facts_codes_and_headers(sandbox: Sandbox) -> None:
    """A refusal of the sandbox carries the facts' code and the facts' header names."""
    from clore.sandbox.dispatch import SandboxRequest

    answer = sandbox.handle(SandboxRequest("GET", "/v1/wallets"))
    names = {name for name, _ in answer.headers()}
    assert (answer.status, msgspec.json.decode(answer.body)) == (
        _facts.HTTP_STATUS[_facts.INVALID_TOKEN],
        {"code": _facts.INVALID_TOKEN},
    )
    assert {_facts.NOW_HEADER, _facts.SCALE_HEADER} <= names


def test_the_intervals_are_the_facts() -> None:
    """Pacing's defaults and the sandbox's rate limiter use the facts' 1 s, 5 s, 600 s."""
    pacing = Pacing()
    with Sandbox(seed=None) as sandbox:
        limiter = sandbox.limiter
    assert (pacing.min_interval, pacing.create_interval, pacing.spot_lower_interval) == (
        _facts.MIN_INTERVAL,
        _facts.CREATE_INTERVAL,
        _facts.SPOT_LOWER_INTERVAL,
    )
    assert (limiter.interval, limiter.create_interval) == (1.0, 5.0)
    assert (_facts.MIN_INTERVAL, _facts.CREATE_INTERVAL) == (1.0, 5.0)
    assert (_servertime.NOW_HEADER, _servertime.SCALE_HEADER) == (
        "x-sandbox-now",
        "x-sandbox-time-scale",
    )


def test_one_currency_alias_table() -> None:
    """The wire schema and the price parser read the facts' alias table."""
    assert _wire.CURRENCY_ALIASES is _facts.CURRENCY_ALIASES
    assert [pricing.parse_currency(n) for n in _facts.CURRENCY_ALIASES] == list(
        _facts.CURRENCY_ALIASES.values()
    )
    assert _facts.CURRENCIES == ("bitcoin", "CLORE-Blockchain", "USD-Blockchain")


def test_the_per_currency_settings_form_covers_every_currency() -> None:
    """SetServerSettingsPerCurrencyRequest sends <currency>_on_demand, <currency>_spot and
    enabled-<currency> for each of the facts' currencies."""
    sent = {f.encode_name for f in msgspec.structs.fields(SetServerSettingsPerCurrencyRequest)}
    expected = {"name", "availability", "mrl"} | {
        key for c in _facts.CURRENCIES for key in (f"{c}_on_demand", f"{c}_spot", f"enabled-{c}")
    }
    assert sent == expected


def _decodes(kind: type[Any], body: dict[str, Any]) -> bool:
    try:
        msgspec.convert(body, kind)
    except msgspec.ValidationError:
        return False
    return True


def _sdk_accepts(**kwargs: Any) -> bool:
    try:
        preview_create_order(1, "img", **kwargs)
    except ParameterError:
        return False
    return True


@pytest.mark.parametrize(
    ("field", "limit"),
    [("ssh_password", _facts.MAX_SSH_PASSWORD), ("jupyter_token", _facts.MAX_JUPYTER_TOKEN)],
)
def test_the_sdk_and_the_schema_agree_on_each_length_limit(field: str, limit: int) -> None:
    """At the limit both the SDK's check and the Struct's constraint accept; one more
    character both refuse."""
    body = {"currency": "bitcoin", "image": "img", "renting_server": 1}
    verdicts = [
        (_sdk_accepts(**{field: "a" * n}), _decodes(CreateOrderRequest, {**body, field: "a" * n}))
        for n in (limit, limit + 1)
    ]
    assert verdicts == [(True, True), (False, False)]


def test_the_issue_limit_is_shared_by_cancel_order() -> None:
    """cancel_order's issue: the SDK and the Struct both stop at 2048 characters."""
    body = {"id": 1}
    sdk = []
    for n in (_facts.MAX_ISSUE, _facts.MAX_ISSUE + 1):
        try:
            _validate.validate_cancel_order(1, "x" * n)
            sdk.append(True)
        except ParameterError:
            sdk.append(False)
    schema = [_decodes(CancelOrderRequest, {**body, "issue": "x" * n}) for n in (2048, 2049)]
    assert (sdk, schema) == ([True, False], [True, False])


def test_one_max_id_for_the_sdk_and_the_sandbox(sandbox: Sandbox) -> None:
    """The largest id the SDK sends is the largest the sandbox reads (no longer 2^53 there):
    an unknown server that large is "no such server", not "out of range"."""
    client = sandbox.client()
    from clore import ServerNotFoundError

    with pytest.raises(ServerNotFoundError):
        client.spot_marketplace(2**60)
    with pytest.raises(ParameterError):
        client.spot_marketplace(_facts.MAX_ID + 1)


def test_the_facts_and_the_price_parser_load_without_msgspec() -> None:
    """clore._facts and clore.market.pricing import no msgspec (clore --help stays fast)."""
    code = (
        "import sys, clore._facts, clore.market.pricing\n"
        "print(sorted(m for m in ('msgspec', 'httpx') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_sandbox_imports_nothing_from_the_client_side() -> None:
    """scripts/check_imports.py reports no sandbox violation (rule 2)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_imports.py")],
        capture_output=True,
        text=True,
    )
    sandbox = [line for line in done.stdout.splitlines() if line.startswith("src/clore/sandbox/")]
    assert sandbox == []
