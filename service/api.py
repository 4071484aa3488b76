"""The HTTP API: a thin FastAPI layer over ``index``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from index import Searcher, SearchResult, Settings, ZhsearchError, get_settings, load_embedder
from index.errors import IndexError_, InvalidInputError, ModelError

log = logging.getLogger("zhsearch.api")


class SearchRequest(BaseModel):
    query: str = Field(..., min_length=1, max_length=1000, description="Question or keywords, any Chinese script.")
    k: int = Field(10, ge=1, le=100, description="How many passages to return.")
    mode: Literal["dense", "lexical", "hybrid"] = Field("hybrid", description="Retrieval mode.")


class SearchHit(BaseModel):
    rank: int
    score: float
    passage_id: int
    doc_id: str
    title: str
    section: str
    text: str = Field(description="The passage in its original script.")
    start: int = Field(description="Offset of the passage in the original document text.")
    end: int


class SearchResponse(BaseModel):
    query: str
    mode: str = Field(description="The retrieval mode that ran.")
    results: list[SearchHit]
    took_ms: float


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]  # where the field came from is noise to a reader
        where = ".".join(str(p) for p in loc)
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def _response(result: SearchResult) -> SearchResponse:
    return SearchResponse(
        query=result.query,
        mode=result.mode,
        results=[SearchHit(**hit.__dict__) for hit in result.hits],
        took_ms=result.took_ms,
    )


def create_app(settings: Settings | None = None, *, searcher: Searcher | None = None) -> FastAPI:
    """The API app; the index and model load once, in ``lifespan``, unless a searcher is given."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = searcher
        if loaded is None:
            if settings.threads:
                import torch

                torch.set_num_threads(settings.threads)
            embedder = load_embedder(settings.model, settings.cache_dir, device=settings.device)
            loaded = Searcher.load(settings.index_dir, embedder)
        app.state.searcher = loaded
        log.info("index loaded from %s (%d passages)", loaded.path, len(loaded.vectors))
        yield
        if searcher is None:
            loaded.close()

    app = FastAPI(
        title="zhsearch",
        version=__import__("index").__version__,
        description="Chinese semantic search over traditional and simplified documents.",
        lifespan=lifespan,
        responses={422: {"model": ErrorResponse}},
    )

    @app.exception_handler(RequestValidationError)
    async def on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(ZhsearchError)
    async def on_library(_: Request, exc: ZhsearchError) -> JSONResponse:
        if isinstance(exc, InvalidInputError):
            return _error(422, exc.code, str(exc))
        if isinstance(exc, IndexError_ | ModelError):
            return _error(503, exc.code, str(exc))
        return _error(400, exc.code, str(exc))

    def _searcher(request: Request) -> Searcher:
        found: Searcher = request.app.state.searcher
        return found

    @app.get("/healthz")
    def healthz(request: Request) -> dict[str, Any]:
        found = _searcher(request)
        return {"status": "ok", "passages": len(found.vectors), "documents": found.manifest.documents}

    @app.post("/v1/search", response_model=SearchResponse)
    def search_post(body: SearchRequest, request: Request) -> SearchResponse:
        return _response(_searcher(request).search(body.query, body.k, body.mode))

    @app.get("/v1/search", response_model=SearchResponse)
    def search_get(
        request: Request,
        q: Annotated[str, Query(min_length=1, max_length=1000, description="The query.")],
        k: Annotated[int, Query(ge=1, le=100)] = 10,
        mode: Annotated[Literal["dense", "lexical", "hybrid"], Query()] = "hybrid",
    ) -> SearchResponse:
        return _response(_searcher(request).search(q, k, mode))

    return app
