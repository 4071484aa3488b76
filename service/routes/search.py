"""``/v1/search`` and ``/v1/ask``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from index import MAX_K, MAX_QUERY_CHARS, Mode, ask

from .. import presenter, schemas
from ..deps import Served, require_read

router = APIRouter(tags=["search"], dependencies=[require_read])


@router.post("/v1/search", response_model=schemas.SearchResponse)
def search_post(body: schemas.SearchRequest, idx: Served) -> Response:
    """Ranked passages for a query in any Chinese script."""
    result = idx.search(body.query, body.k, body.mode, presenter.filters(body.filters))
    return presenter.json_response(presenter.search_response(result))


@router.get("/v1/search", response_model=schemas.SearchResponse)
def search_get(
    idx: Served,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="The query.")],
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    mode: Annotated[Mode, Query()] = "hybrid",
) -> Response:
    """The same, without filters."""
    return presenter.json_response(presenter.search_response(idx.search(q, k, mode)))


@router.post("/v1/ask", response_model=schemas.AskResponse)
def ask_post(body: schemas.AskRequest, idx: Served) -> Response:
    """An extractive answer with its evidence passages; `answer` is null when nothing answers."""
    result = ask(idx, body.question, body.k, body.mode, presenter.filters(body.filters))
    return presenter.json_response(presenter.ask_response(result))
