"""What route handlers depend on: the app's settings, its index, and the bearer-key rules."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from index import ServedIndex, Settings

from .errors import ApiError


def bearer_allows(authorization: str, keys: list[str | None]) -> bool:
    """Whether an ``Authorization`` header carries one of ``keys`` (no keys configured: everyone may)."""
    if keys[0] is None:
        return True
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and any(
        key is not None and secrets.compare_digest(token.encode(), key.encode()) for key in keys
    )


def read_keys(settings: Settings) -> list[str | None]:
    """Reads need the read key or the API key, once a read key is set."""
    return [settings.read_key, settings.api_key]


def write_keys(settings: Settings) -> list[str | None]:
    return [settings.api_key]


def _settings(request: Request) -> Settings:
    found: Settings = request.app.state.settings
    return found


def _index(request: Request) -> ServedIndex:
    found: ServedIndex = request.app.state.index
    return found


def _checker(keys: Callable[[Settings], list[str | None]], *, writes: bool = False) -> Callable[[Request], None]:
    def check(request: Request) -> None:
        refused = _settings(request).write_policy if writes else None
        if refused:  # fails closed: a read key alone, or a public address without an API key
            raise ApiError(403, "forbidden", refused)
        if not bearer_allows(request.headers.get("authorization", ""), keys(_settings(request))):
            raise ApiError(401, "unauthorized", "send `Authorization: Bearer <key>` with a valid key")

    return check


# Module level: with postponed annotations FastAPI resolves these names in module globals.
AppSettings = Annotated[Settings, Depends(_settings)]
Served = Annotated[ServedIndex, Depends(_index)]
require_read = Depends(_checker(read_keys))
require_write = Depends(_checker(write_keys, writes=True))
