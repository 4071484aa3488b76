"""``/healthz``, ``/readyz`` and ``/metrics``: for whoever runs the service."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..deps import Live

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (the index loads before the server accepts requests)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(idx: Live) -> JSONResponse:
    """The index is loaded and its parts agree."""
    snap = idx.snapshot
    counts = {"passages": len(snap.passages), "vectors": len(snap.vectors), "lexical": len(snap.lexical)}
    ready = len(set(counts.values())) == 1
    body = {"status": "ready" if ready else "inconsistent", "documents": len(snap.documents), **counts}
    return JSONResponse(status_code=200 if ready else 503, content=body)


@router.get("/metrics")
def prometheus(request: Request, idx: Live) -> Response:
    metrics = request.app.state.metrics
    metrics.passages.set(len(idx.snapshot.passages))
    metrics.documents.set(len(idx.snapshot.documents))
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
