"""``search`` and ``ask``: ``/v1/search`` (the default collection) and ``/v1/collections/{collection}/search``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from index import MAX_K, MAX_QUERY_CHARS, Mode, ask

from .. import presenter, schemas
from ..deps import Reading

router = APIRouter(tags=["search"])


@router.post("/search", response_model=schemas.SearchResponse)
def search_post(body: schemas.SearchRequest, target: Reading) -> Response:
    """Ranked passages for a query in any Chinese script, among the documents the caller may read."""
    result = target.index.search(body.query, body.k, body.mode, target.filters(body.filters))
    return presenter.json_response(presenter.search_response(result))


@router.get("/search", response_model=schemas.SearchResponse)
def search_get(
    target: Reading,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="The query.")],
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    mode: Annotated[Mode, Query()] = "hybrid",
) -> Response:
    """The same, without filters."""
    return presenter.json_response(presenter.search_response(target.index.search(q, k, mode, target.filters())))


@router.post("/ask", response_model=schemas.AskResponse)
def ask_post(body: schemas.AskRequest, target: Reading) -> Response:
    """An extractive answer with its evidence passages; `answer` is null when nothing answers."""
    result = ask(target.index, body.question, body.k, body.mode, target.filters(body.filters))
    return presenter.json_response(presenter.ask_response(result))
