"""Order.http_url for the sandbox's loopback relay and for the real API's HTTPS proxy."""

from __future__ import annotations

import pytest

from clore import Order


@pytest.mark.parametrize(
    ("http_pub", "url"),
    [
        ("127.0.0.1:41234", "http://127.0.0.1:41234"),
        ("localhost:8080", "http://localhost:8080"),
        ("[::1]:8080", "http://[::1]:8080"),
        ("abc123.clorecloud.net", "https://abc123.clorecloud.net"),
        ("127.0.0.1.example.net", "https://127.0.0.1.example.net"),
        ("http://example.net:81", "http://example.net:81"),
        (None, None),
    ],
)
def test_http_url_is_plain_http_on_loopback_only(http_pub: str | None, url: str | None) -> None:
    """A loopback http_pub (the sandbox's relay) is plain HTTP; any other host keeps the
    real API's HTTPS; a URL given with its scheme is kept."""
    assert Order(id=1, http_pub=http_pub).http_url == url
