"""What route handlers depend on: the app's settings, the caller (``service.keys``) and the
collection a route works on, held open for the request.

A route under ``/v1/collections/{collection}/…`` works on that collection, the same
route under ``/v1/…`` on the default one. A caller who may not read a collection is
told there is no such collection (404, the message of one that does not exist), so a
key learns nothing of collections beyond its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request

from index import DEFAULT_COLLECTION, Collections, Filters, NotFoundError, ServedIndex, Settings, readable

from . import presenter, schemas
from .errors import ApiError
from .keys import Caller, KeyRing


def _settings(request: Request) -> Settings:
    found: Settings = request.app.state.settings
    return found


def collections_of(request: Request) -> Collections:
    found: Collections = request.app.state.collections
    return found


#: Where the server's own requests (the warm-up ask) and the MCP endpoint put a caller already known;
#: a client cannot set request state.
CALLER_STATE = "zhsearch_caller"


def caller_of(request: Request) -> Caller:
    """The request's caller (401 without a valid key where keys are configured)."""
    known = request.scope.get("state", {}).get(CALLER_STATE)
    if isinstance(known, Caller):
        return known
    ring: KeyRing = request.app.state.keys
    found = ring.caller(request.headers.get("authorization", ""))
    if found is None:
        raise ApiError(401, "unauthorized", "send `Authorization: Bearer <key>` with a valid key")
    return found


def hidden(name: str) -> Exception:
    """What a caller who may not read collection ``name`` is told."""
    if name == DEFAULT_COLLECTION:
        return ApiError(403, "forbidden", "this key may not read the default collection")
    return NotFoundError(f"no collection named {name[:80]!r}")


@dataclass(frozen=True)
class Target:
    """The collection a request works on, its index, and the caller."""

    name: str
    index: ServedIndex
    caller: Caller

    @property
    def groups(self) -> frozenset[str] | None:
        """The access groups whose documents the caller reads here (None: every document)."""
        return self.caller.groups_in(self.name)

    def filters(self, model: schemas.SearchFilters | None = None) -> Filters | None:
        """The request's filters, within what the caller may read."""
        within = (presenter.filters(model) or Filters()).within(self.groups)
        return None if within.empty else within

    def readable(self, metadata: Mapping[str, Any] | None) -> bool:
        return readable(metadata, self.groups)


def _collection(request: Request) -> str:
    return str(request.path_params.get("collection", DEFAULT_COLLECTION))


def check_read(caller: Caller, name: str) -> None:
    if not caller.may_read(name):
        raise hidden(name)


def check_write(caller: Caller, name: str, settings: Settings) -> None:
    refused = settings.write_policy
    if refused:  # fails closed: a read key alone, or a public address without any key
        raise ApiError(403, "forbidden", refused)
    if not caller.may_write(name):
        if caller.anonymous:
            raise ApiError(401, "unauthorized", "send `Authorization: Bearer <key>` with a key that may write")
        if not caller.may_read(name):
            raise hidden(name)
        raise ApiError(403, "forbidden", f"this key may read collection {name!r}, not write to it")


def _reading(request: Request) -> Iterator[Target]:
    caller, name = caller_of(request), _collection(request)
    check_read(caller, name)
    with collections_of(request).using(name) as index:
        yield Target(name, index, caller)


def _writing(request: Request) -> Iterator[Target]:
    caller, name = caller_of(request), _collection(request)
    check_write(caller, name, _settings(request))
    with collections_of(request).using(name) as index:
        yield Target(name, index, caller)


def _any_caller(request: Request) -> Caller:
    return caller_of(request)


def _named(
    collection: Annotated[str, Path(max_length=64, description="The collection (`GET /v1/collections`).")],
) -> None:
    """Declares ``{collection}`` for the routes under ``/v1/collections/{collection}`` (``_collection`` reads it)."""


# Module level: with postponed annotations FastAPI resolves these names in module globals.
AppSettings = Annotated[Settings, Depends(_settings)]
Reading = Annotated[Target, Depends(_reading)]
Writing = Annotated[Target, Depends(_writing)]
AnyCaller = Annotated[Caller, Depends(_any_caller)]
#: A route that any caller with a valid key may use (or anyone, where reads are open).
require_caller = Depends(_any_caller)
in_collection = Depends(_named)
