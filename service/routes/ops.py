"""``/healthz``, ``/readyz`` and ``/metrics``: for whoever runs the service."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..deps import Served

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (the index loads before the server accepts requests)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(idx: Served) -> JSONResponse:
    """The index is loaded and its parts agree."""
    health = idx.health()
    ready = health.pop("consistent")
    body = {"status": "ready" if ready else "inconsistent", **health}
    return JSONResponse(status_code=200 if ready else 503, content=body)


@router.get("/metrics")
def prometheus(request: Request, idx: Served) -> Response:
    metrics = request.app.state.metrics
    health = idx.health()
    metrics.passages.set(health["passages"])
    metrics.documents.set(health["documents"])
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
