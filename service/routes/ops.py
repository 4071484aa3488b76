"""``/healthz``, ``/readyz`` and ``/metrics``: for whoever runs the service.

With a keys file (per-document access), ``/readyz`` says only ready or not to a caller
without an admin key, and ``/metrics`` needs an admin key: counts would say how many
documents exist that a caller may not read.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from index import ZhsearchError

from ..deps import caller_of, collections_of
from ..errors import ApiError
from ..keys import KeyRing

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (the index loads before the server accepts requests)."""
    return {"status": "ok"}


def _healths(request: Request) -> dict[str, dict[str, Any]]:
    collections = collections_of(request)
    found: dict[str, dict[str, Any]] = {}
    for name in collections.names():
        try:
            with collections.using(name) as index:
                found[name] = index.health()
        except ZhsearchError as exc:
            if name == "default":
                raise
            found[name] = {"consistent": False, "error": str(exc)}
    return found


def _shows_counts(request: Request) -> bool:
    ring: KeyRing = request.app.state.keys
    if not ring.groups_enforced:
        return True
    caller = ring.caller(request.headers.get("authorization", ""))
    return caller is not None and caller.admin


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Every collection is loaded and its parts agree; the default collection's counts (and, under
    ``collections``, every other's)."""
    healths = _healths(request)
    ready = all(h.get("consistent") for h in healths.values())
    body: dict[str, Any] = {"status": "ready" if ready else "inconsistent"}
    if _shows_counts(request):
        default = dict(healths.pop("default"))
        default.pop("consistent")
        body.update(default)
        if healths:
            body["collections"] = healths
    return JSONResponse(status_code=200 if ready else 503, content=body)


@router.get("/metrics")
def prometheus(request: Request) -> Response:
    """Prometheus metrics, labelled by collection (an admin key where a keys file is set)."""
    ring: KeyRing = request.app.state.keys
    if ring.groups_enforced and not caller_of(request).admin:
        raise ApiError(403, "forbidden", "metrics need an admin key")
    metrics = request.app.state.metrics
    for name, health in _healths(request).items():
        if "passages" in health:
            metrics.passages.labels(name).set(health["passages"])
            metrics.documents.labels(name).set(health["documents"])
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
