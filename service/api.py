"""The HTTP API: a thin FastAPI layer over ``index``.

Every handler parses, calls one library function and shapes the response.
Library errors become JSON errors of one shape, ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from index import Settings, ZhsearchError, get_settings, load_configured_embedder
from index.errors import (
    ConflictError,
    DocumentError,
    IndexError_,
    InvalidInputError,
    ModelError,
    NotFoundError,
    UnsupportedFormatError,
)
from index.models.batching import QueryBatcher
from index.retrieval.answer import ask, warm_up
from index.retrieval.search import (
    DocumentInfo,
    Filters,
    Hit,
    SearchResult,
    serve_queries_single_threaded,
    validate_query,
)
from index.text.highlight import highlights
from index.text.ingest import Document, documents_from_upload
from index.text.normalize import convert_script, normalize
from index.writing.live import LiveIndex, WriteResult, new_document_id

from . import schemas
from .mcp_server import create_mcp, http_endpoint
from .middleware import Metrics, RequestContext
from .tools import tool_definitions

log = logging.getLogger("zhsearch.api")
STATIC = Path(__file__).parent / "static"

_STATUS = (
    (InvalidInputError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (UnsupportedFormatError, 415),
    (DocumentError, 400),
    (IndexError_, 503),
    (ModelError, 503),
)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}}, headers=headers)


def _validation_message(errors: list[Any]) -> str:
    parts = []
    for err in errors:
        loc = list(err.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]  # where the field came from is noise to a reader
        where = ".".join(str(p) for p in loc)
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def _filters(model: schemas.SearchFilters | None) -> Filters | None:
    if model is None:
        return None
    return Filters(frozenset(model.doc_id) if model.doc_id is not None else None, dict(model.metadata))


def _hits(query: str, hits: list[Hit]) -> list[schemas.SearchHit]:
    norm = normalize(query)
    return [schemas.SearchHit(**hit.__dict__, highlights=highlights(norm, hit.text)) for hit in hits]


def _json(model: BaseModel) -> Response:
    """A model already validated on construction, serialized once.

    Returning the model itself makes FastAPI validate and encode it again through
    ``response_model``; for a search response that was about a tenth of the
    request's time beside the query encoding. The route keeps ``response_model``
    for its OpenAPI schema.
    """
    return Response(content=model.model_dump_json(), media_type="application/json")


def _search_response(result: SearchResult) -> Response:
    return _json(
        schemas.SearchResponse(
            query=result.query, mode=result.mode, results=_hits(result.query, result.hits), took_ms=result.took_ms
        )
    )


def _summary(info: DocumentInfo) -> schemas.DocumentSummary:
    return schemas.DocumentSummary(
        id=info.id, title=info.title, metadata=info.metadata, chars=info.chars, passages=len(info.passage_ids)
    )


def _written(result: WriteResult) -> schemas.DocumentWritten:
    return schemas.DocumentWritten(**_summary(result.document).model_dump(), created=result.created)


def _live(request: Request) -> LiveIndex:
    found: LiveIndex = request.app.state.index
    return found


# Module level: with postponed annotations FastAPI resolves these names in module globals.
Live = Annotated[LiveIndex, Depends(_live)]


def create_app(settings: Settings | None = None, *, index: LiveIndex | None = None) -> FastAPI:
    """The API app; the model and index load once, in ``lifespan``, unless an index is given."""
    settings = settings or get_settings()
    metrics = Metrics()
    mcp_route, mcp_running = http_endpoint(
        create_mcp(lambda: app.state.index, max_query_chars=settings.max_query_chars, max_k=settings.max_k),
        settings,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = index
        if loaded is None:
            import torch

            # One intra-op thread per encoding worker: the workers, not torch, spread load over the cores.
            torch.set_num_threads(settings.threads or 1)
            # ONNX Runtime gets the same one thread per encoding worker.
            embedder = load_configured_embedder(settings, threads=settings.threads or 1)
            serve_queries_single_threaded()
            loaded = LiveIndex.open(settings.index_dir, embedder)
            loaded.batcher = QueryBatcher(embedder, workers=settings.encode_workers)
            loaded.vectors.set_ef_search(settings.ef_search)
        warm_up()
        app.state.index = loaded
        metrics.build_seconds.set(loaded.manifest.build_seconds)
        log.info("index loaded from %s (%d passages, %d repaired)", loaded.path, len(loaded.vectors), loaded.repaired)
        async with mcp_running():  # a routed sub-app's lifespan does not run on its own
            yield
        if index is None:
            if loaded.batcher is not None:
                loaded.batcher.close()
            loaded.close()

    app = FastAPI(
        title="zhsearch",
        version=__import__("index").__version__,
        description="Chinese semantic search and question answering over traditional and simplified documents.",
        lifespan=lifespan,
        responses={422: {"model": schemas.ErrorResponse}},
    )
    app.add_middleware(RequestContext, metrics=metrics, max_body=settings.max_upload_bytes)

    @app.exception_handler(RequestValidationError)
    async def on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", _validation_message(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(ApiError)
    async def on_api(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.code, exc.message, headers)

    @app.exception_handler(ZhsearchError)
    async def on_library(_: Request, exc: ZhsearchError) -> JSONResponse:
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 400)
        return _error(status, exc.code, str(exc))

    def _key_checker(*keys: Callable[[], str | None]) -> Callable[[Request], None]:
        def check(request: Request) -> None:
            wanted = [k() for k in keys]
            if wanted[0] is None:
                return
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not any(
                w is not None and secrets.compare_digest(token.encode(), w.encode()) for w in wanted
            ):
                raise ApiError(401, "unauthorized", "send `Authorization: Bearer <key>` with a valid key")

        return check

    require_write = Depends(_key_checker(lambda: settings.api_key))
    require_read = Depends(_key_checker(lambda: settings.read_key, lambda: settings.api_key))

    app.router.routes.append(mcp_route)  # MCP (streamable HTTP) at /mcp: search, ask and the documents

    @app.get("/", include_in_schema=False)
    def web_page() -> FileResponse:
        """The question page: one self-contained HTML file, no external resources."""
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/v1/tools", response_model=schemas.ToolsResponse, tags=["tools"])
    def tools() -> schemas.ToolsResponse:
        """`search` and `ask` as JSON Schema function definitions for LLM tool calling."""
        return schemas.ToolsResponse(tools=tool_definitions())

    @app.post("/v1/convert", response_model=schemas.ConvertResponse, tags=["tools"], dependencies=[require_read])
    def convert(body: schemas.ConvertRequest) -> schemas.ConvertResponse:
        """Texts in simplified or traditional script (OpenCC t2s / s2t), for showing passages either way."""
        if any(len(text) > 20_000 for text in body.texts):
            raise ApiError(422, "invalid_request", "texts: each text may have at most 20000 characters")
        return schemas.ConvertResponse(texts=convert_script(body.texts, body.to))

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is up (the index loads before the server accepts requests)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz(idx: Live) -> JSONResponse:
        """The index is loaded and its parts agree."""
        snap = idx.snapshot
        counts = {"passages": len(snap.passages), "vectors": len(snap.vectors), "lexical": len(snap.lexical)}
        ready = len(set(counts.values())) == 1
        body = {"status": "ready" if ready else "inconsistent", "documents": len(snap.documents), **counts}
        return JSONResponse(status_code=200 if ready else 503, content=body)

    @app.get("/metrics", tags=["ops"])
    def prometheus(idx: Live) -> Response:
        metrics.passages.set(len(idx.snapshot.passages))
        metrics.documents.set(len(idx.snapshot.documents))
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/search", response_model=schemas.SearchResponse, tags=["search"], dependencies=[require_read])
    def search_post(body: schemas.SearchRequest, idx: Live) -> Response:
        """Ranked passages for a query in any Chinese script."""
        _limits(body.query, body.k)
        return _search_response(idx.search(body.query, body.k, body.mode, _filters(body.filters)))

    @app.get("/v1/search", response_model=schemas.SearchResponse, tags=["search"], dependencies=[require_read])
    def search_get(
        idx: Live,
        q: Annotated[str, Query(min_length=1, max_length=1000, description="The query.")],
        k: Annotated[int, Query(ge=1, le=100)] = 10,
        mode: Annotated[schemas.Mode, Query()] = "hybrid",
    ) -> Response:
        _limits(q, k)
        return _search_response(idx.search(q, k, mode))

    @app.post("/v1/ask", response_model=schemas.AskResponse, tags=["search"], dependencies=[require_read])
    def ask_post(body: schemas.AskRequest, idx: Live) -> Response:
        """An extractive answer with its evidence passages; `answer` is null when nothing answers."""
        _limits(body.question, body.k)
        result = ask(idx, body.question, body.k, body.mode, _filters(body.filters))
        answer = schemas.AnswerModel(**result.answer.__dict__) if result.answer else None
        return _json(
            schemas.AskResponse(
                question=result.question,
                mode=result.mode,
                answer=answer,
                passages=_hits(result.question, result.hits),
                took_ms=result.took_ms,
            )
        )

    async def _uploaded_documents(form: Any) -> list[Document]:
        uploads = [v for _, v in form.multi_items() if isinstance(v, StarletteUploadFile)]
        if not uploads:
            raise ApiError(422, "invalid_request", "file: attach at least one file")
        docs: list[Document] = []
        for upload in uploads:
            found = documents_from_upload(upload.filename or "upload.txt", await upload.read())
            for doc in found:
                _check_size(doc.text)
            docs.extend(found)
        return docs

    def _limits(query: str, k: int) -> None:
        # The schema caps are 1000 characters and k <= 100; settings may tighten them.
        validate_query(query, k, max_chars=settings.max_query_chars, max_k=settings.max_k)

    def _check_size(text: str) -> None:
        size = len(text.encode("utf-8"))
        if size > settings.max_document_bytes:
            raise ApiError(
                413, "too_large", f"the document has {size} bytes; the limit is {settings.max_document_bytes}"
            )

    upload_body = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": schemas.DocumentIn.model_json_schema(ref_template="#/components/schemas/{model}")
                },
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                        "required": ["file"],
                    }
                },
            },
        }
    }

    @app.post(
        "/v1/documents",
        status_code=201,
        response_model=schemas.UploadResponse,
        tags=["documents"],
        dependencies=[require_write],
        openapi_extra=upload_body,
    )
    async def add_documents(request: Request) -> schemas.UploadResponse:
        """Add documents: a JSON document, or a multipart upload of .txt, .md, .jsonl or .html files."""
        from starlette.concurrency import run_in_threadpool

        idx: LiveIndex = request.app.state.index
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/json":
            raw = await request.body()
            try:
                body = schemas.DocumentIn.model_validate_json(raw)
            except ValidationError as exc:
                raise ApiError(422, "invalid_request", _validation_message(exc.errors())) from exc
            _check_size(body.text)
            doc = Document(body.id or new_document_id(), body.text, body.title, dict(body.metadata), "api")
            results = [await run_in_threadpool(idx.put, doc, create_only=True)]
        elif ctype == "multipart/form-data":
            try:
                form = await request.form()
            except (ValueError, KeyError, AssertionError) as exc:
                raise ApiError(400, "bad_request", f"cannot read the multipart body: {exc}") from exc
            try:
                docs = await _uploaded_documents(form)
            finally:
                await form.close()
            results = [await run_in_threadpool(idx.put, doc) for doc in docs]
        else:
            raise ApiError(415, "unsupported_media_type", "send application/json or multipart/form-data")
        return schemas.UploadResponse(documents=[_written(r) for r in results])

    @app.get("/v1/documents", response_model=schemas.DocumentList, tags=["documents"], dependencies=[require_read])
    def list_documents(
        idx: Live,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    ) -> schemas.DocumentList:
        total, page = idx.documents(offset, limit)
        return schemas.DocumentList(total=total, offset=offset, limit=limit, documents=[_summary(d) for d in page])

    @app.get(
        "/v1/documents/{doc_id}", response_model=schemas.DocumentOut, tags=["documents"], dependencies=[require_read]
    )
    def get_document(doc_id: str, idx: Live) -> schemas.DocumentOut:
        doc = idx.document(doc_id)
        info = idx.snapshot.documents.get(doc_id)
        passages = [idx.passage(pid) for pid in info.passage_ids] if info else []
        return schemas.DocumentOut(
            id=doc.id,
            title=doc.title,
            text=doc.text,
            metadata=doc.metadata,
            passages=[_passage(p) for p in passages],
        )

    @app.put(
        "/v1/documents/{doc_id}",
        response_model=schemas.DocumentWritten,
        tags=["documents"],
        dependencies=[require_write],
    )
    def put_document(
        doc_id: str, body: schemas.DocumentUpdate, idx: Live, response: Response
    ) -> schemas.DocumentWritten:
        """Replace a document (or create it under this id)."""
        _check_size(body.text)
        result = idx.put(Document(doc_id, body.text, body.title, dict(body.metadata), "api"))
        response.status_code = 201 if result.created else 200
        return _written(result)

    @app.delete("/v1/documents/{doc_id}", status_code=204, tags=["documents"], dependencies=[require_write])
    def delete_document(doc_id: str, idx: Live) -> Response:
        idx.delete(doc_id)
        return Response(status_code=204)

    @app.get(
        "/v1/passages/{passage_id}", response_model=schemas.PassageOut, tags=["documents"], dependencies=[require_read]
    )
    def get_passage(passage_id: int, idx: Live) -> schemas.PassageOut:
        return _passage(idx.passage(passage_id))

    return app


def _passage(p: Any) -> schemas.PassageOut:
    return schemas.PassageOut(
        passage_id=p.id,
        doc_id=p.doc_id,
        title=p.title,
        section=p.section,
        section_path=list(p.section_path),
        text=p.text,
        start=p.start,
        end=p.end,
    )


__all__ = ["create_app"]
