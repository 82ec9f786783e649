"""The sandbox's domain error: an API ``code``, the code-6 ``error`` string and extra fields.

The backend raises ``ApiError``; the dispatcher turns it into the response body
``{"code": ..., "error": ..., **extra}``. ``detail`` is for humans reading the sandbox's
log or the ``x-sandbox-detail`` header; it never enters the body, because the real API
answers code 2 without an explanation and a client must not come to depend on one.
The codes and code-6 strings are ``clore._facts``'s.
"""

from __future__ import annotations

from clore._facts import APPLICATION_ERROR, DB_ERROR, INVALID_INPUT

__all__ = [
    "ApiError",
    "Conflict",
    "application_error",
    "database_error",
    "invalid_input",
]


class ApiError(Exception):
    """A failed API call: ``code``, the code-6 ``error`` string, and extra body fields."""

    def __init__(
        self,
        code: int,
        error: str | None = None,
        *,
        detail: str | None = None,
        **extra: float | int | str,
    ) -> None:
        self.code = code
        self.error = error
        self.detail = detail
        self.extra = extra
        super().__init__(detail or error or f"code {code}")

    def body(self) -> dict[str, object]:
        """The response body: ``code``, then ``error`` and the extra fields when present."""
        out: dict[str, object] = {"code": self.code}
        if self.error is not None:
            out["error"] = self.error
        out.update(self.extra)
        return out


class Conflict(Exception):
    """The store refused a write that would break a uniqueness rule (a race was lost)."""


def database_error(detail: str) -> ApiError:
    """Code 1 (database error, retry later): the store is busy or failing."""
    return ApiError(DB_ERROR, detail=detail)


def invalid_input(detail: str) -> ApiError:
    """Code 2 (invalid input data); ``detail`` says which field and why (log/header only)."""
    return ApiError(INVALID_INPUT, detail=detail)


def application_error(error: str, **extra: float | int | str) -> ApiError:
    """Code 6 with the given ``error`` string and extra fields."""
    return ApiError(APPLICATION_ERROR, error, detail=error, **extra)
