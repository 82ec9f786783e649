"""``TooLowPriceError`` states the server's spot minimum once it is known (the API's
answer does not carry it)."""

from __future__ import annotations

import clore
from clore import APIError, TooLowPriceError

BODY = {"code": 6, "error": "too_low_price"}


def test_the_answer_alone_gives_no_minimum() -> None:
    """Decoded from the API's body: the class, the string, and no minimum."""
    exc = APIError.from_response(BODY, endpoint="create_order")
    assert isinstance(exc, TooLowPriceError)
    assert (exc.minimum, exc.currency) == (None, None)
    assert str(exc) == "create_order: code 6 (application error): too_low_price"


def test_with_minimum_states_the_servers_minimum_in_the_message() -> None:
    """``with_minimum`` gives the same refusal naming the minimum, per day, in its currency."""
    exc = APIError.from_response(BODY, endpoint="set_spot_price")
    assert isinstance(exc, TooLowPriceError)
    told = exc.with_minimum(0.00004, "bitcoin")
    assert isinstance(told, TooLowPriceError) and told.body == exc.body
    assert (told.minimum, told.currency, told.endpoint) == (0.00004, "bitcoin", "set_spot_price")
    assert str(told) == (
        "set_spot_price: code 6 (application error): too_low_price "
        "(the server's spot minimum is 0.00004 bitcoin/day)"
    )


def test_the_minimum_can_be_given_when_raising() -> None:
    """The keyword arguments are accepted by the constructor too, as for the other fields."""
    exc = clore.TooLowPriceError(6, "too_low_price", minimum=12.5, currency="CLORE-Blockchain")
    assert str(exc).endswith("(the server's spot minimum is 12.5 CLORE-Blockchain/day)")
