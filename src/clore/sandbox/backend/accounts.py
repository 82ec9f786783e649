"""Accounts: API keys, users, wallets (``wallets``, ``poh_balance``)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping

from clore.sandbox.backend.billing import lazy_balance
from clore.sandbox.backend.records import User, WalletRec
from clore.sandbox.backend.repository import Repository
from clore.sandbox.backend.rules import CURRENCIES, MARKET_USER_ID, WITHDRAWAL_FEES
from clore.sandbox.backend.validate import check_currency, require

__all__ = [
    "authenticate",
    "caller",
    "create_user",
    "deposit_address",
    "new_api_key",
    "put_wallets",
    "wallets",
]


def new_api_key() -> str:
    """A fresh random API key (32 hex characters)."""
    return secrets.token_hex(16)


def deposit_address(user_id: int, currency: str) -> str:
    """A stable, plausible-looking deposit address for a user's wallet."""
    digest = hashlib.sha256(f"clore-sandbox:{user_id}:{currency}".encode()).hexdigest()
    if currency == "bitcoin":
        return "bc1q" + digest[:38]
    if currency == "CLORE-Blockchain":
        return "A" + digest[:33]
    return "0x" + digest[:40]


def authenticate(repo: Repository, api_key: str) -> int | None:
    """The id of the user owning ``api_key``, or None."""
    if not api_key or len(api_key) > 256:
        return None
    user = repo.user_by_key(api_key)
    if user is None or user.id == MARKET_USER_ID:
        return None
    return user.id


def caller(repo: Repository, api_key: str) -> tuple[int | None, bool]:
    """(the user id behind ``api_key`` or None, whether injected faults are queued)."""
    user_id, faults = repo.caller(api_key if api_key and len(api_key) <= 256 else "")
    return (None if user_id == MARKET_USER_ID else user_id), faults


def put_wallets(repo: Repository, user_id: int, balances: Mapping[str, float]) -> None:
    """Give a user one wallet per currency with the given balances (0 when absent)."""
    for currency in CURRENCIES:
        repo.put_wallet(
            WalletRec(
                user_id=user_id,
                currency=currency,
                balance=float(balances.get(currency, 0.0)),
                deposit=deposit_address(user_id, currency),
                withdrawal_fee=WITHDRAWAL_FEES[currency],
            )
        )


def create_user(
    repo: Repository,
    now: float,
    name: str,
    balances: Mapping[str, float],
    *,
    api_key: str | None = None,
    kind: str = "user",
    user_id: int | None = None,
) -> User:
    """Add a renter with funded wallets; its id follows every user and host id in use."""
    require(0 < len(name) <= 256, "name: must be 1 to 256 characters")
    for currency, amount in balances.items():
        check_currency(currency, "balances")
        require(0 <= float(amount) < 1e15, f"balances.{currency}: out of range")
    uid = repo.max_user_id() + 1 if user_id is None else user_id
    user = User(id=uid, name=name, api_key=api_key or new_api_key(), kind=kind, created=now)
    repo.insert_user(user)
    put_wallets(repo, uid, balances)
    return user


def wallets(repo: Repository, now: float, user_id: int) -> list[WalletRec]:
    """The caller's wallets with balances as of ``now``."""
    live = [o for o in repo.orders_of(user_id, include_ended=False) if o.billing]
    out = []
    for wallet in repo.wallets_of(user_id):
        wallet.balance = lazy_balance(wallet, live, now)
        out.append(wallet)
    return out
