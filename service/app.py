"""The HTTP API: the app factory and its lifespan.

The routes (``service.routes``) are thin: parse, call one library function, shape
the response through ``service.presenter``. Library errors become one JSON error
shape (``service.errors``); request ids, access logs, metrics and the body-size cap
are middleware (``service.middleware``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from index import (
    LiveIndex,
    ServedIndex,
    Settings,
    ZhsearchError,
    __version__,
    get_settings,
    open_collections,
    open_configured,
    warm_up,
    watch_folder,
)

from . import errors, schemas
from .deps import CALLER_STATE, in_collection
from .guard import HostGuard
from .keys import EVERYONE, KeyRing
from .local_server import advertise, withdraw
from .mcp_http import http_endpoint
from .mcp_server import create_mcp
from .middleware import Metrics, RequestContext
from .routes import collections, documents, ops, search, tools

log = logging.getLogger("zhsearch.api")


WARM_UP_QUESTION = "黄浦区上半年的生产总值是多少"


async def _warm(app: FastAPI, settings: Settings, loaded: ServedIndex) -> None:
    """A document encode, then one ask through the app itself, in process, before ``/readyz`` says ready.

    Every lazily built thing on the request path is built here, so the first client's
    question is as fast as the second: the document model and bm25s that writes use, jieba's
    dictionary and tagger, and through the ask (its search included) the ONNX sessions'
    first runs, OpenCC, the lighter sentence model, and the route's middleware,
    validation, thread pool and response. The ask is logged and counted like any other.
    """
    warm_up()
    if isinstance(loaded, LiveIndex):  # a cluster's router embeds no documents: its shards do
        loaded.prepare_writes()
    body = json.dumps({"question": WARM_UP_QUESTION, "k": 3}).encode()
    headers = [(b"content-type", b"application/json"), (b"x-request-id", b"warm-up")]
    scope = {
        "state": {CALLER_STATE: EVERYONE},  # the server's own request: no key needed
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/ask",
        "raw_path": b"/v1/ask",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = {"code": 0}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            status["code"] = int(message["status"])  # type: ignore[call-overload]

    await app(scope, receive, send)  # type: ignore[arg-type]
    if status["code"] != 200:
        log.warning("warm-up ask through the app answered %d", status["code"])


def _watch(settings: Settings, index: ServedIndex) -> threading.Event:
    """A thread per watched folder (``ZHSEARCH_WATCH``, ``serve --watch``) keeping ``index`` in step with
    it; the returned event stops them."""
    stop = threading.Event()
    for folder in settings.watch:
        log.info("watching %s: its files are written to the default collection as they change", folder)
        threading.Thread(
            target=watch_folder,
            args=(index, folder, stop, settings.watch_interval_s),
            name=f"watch {folder}",
            daemon=True,
        ).start()
    return stop


def create_app(
    settings: Settings | None = None,
    *,
    index: ServedIndex | Callable[[], ServedIndex] | None = None,
    advertise_port: int | None = None,
) -> FastAPI:
    """The API app; the model and index load once, in ``lifespan``.

    ``index`` replaces that loading: an open index, served as it was opened (the caller keeps and
    closes it), or a function that opens one when the app starts (the app closes it when it stops).
    ``advertise_port``: once ready, say in the index folder that this server answers there
    (``local_server``), so the command line asks it instead of loading the index.
    """
    settings = settings or get_settings()
    owned = index is None or callable(index)
    keys = KeyRing(settings)  # a keys file that does not read stops the server here
    mcp_route, mcp_running = http_endpoint(create_mcp(lambda: app.state.collections, local=False), settings, keys)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        began = time.perf_counter()
        if index is not None and not callable(index):
            loaded = index
        else:
            loaded = index() if index is not None else open_configured(settings, writable=True, serving=True)
        if settings.write_policy:
            log.warning("%s: every write is refused (403)", settings.write_policy)
        elif settings.api_key is None:
            log.warning("no ZHSEARCH_API_KEY: any local process may write (the server listens on %s)", settings.host)
        app.state.index = loaded
        app.state.collections = await asyncio.to_thread(open_collections, settings, loaded)
        watching = _watch(settings, loaded)
        opened = time.perf_counter()
        await _warm(app, settings, loaded)
        app.state.metrics.build_seconds.set(loaded.build_seconds)
        try:
            passages = str((await asyncio.to_thread(loaded.health))["passages"])
        except ZhsearchError as exc:  # a cluster with a shard down starts, and says so (/readyz: 503)
            passages = f"? ({exc})"
        log.info(
            "index loaded from %s (%s passages, %d repaired); %d other collections from %s",
            loaded.path,
            passages,
            loaded.repaired,
            len(app.state.collections.names()) - 1,
            settings.collections_dir,
        )
        log.info(
            "ready in %.1f s: model and index %.1f s, warm-up (a document encode, an ask) %.1f s",
            time.perf_counter() - began,
            opened - began,
            time.perf_counter() - opened,
        )
        advertised = advertise(settings.index_dir, settings.host, advertise_port) if advertise_port else None
        try:
            async with mcp_running():  # a routed sub-app's lifespan does not run on its own
                yield
        finally:
            if advertised is not None:
                withdraw(settings.index_dir)
            watching.set()
            app.state.collections.close()
            if owned:
                loaded.close()

    # /docs (Swagger UI) and /redoc load their scripts from the package, not a CDN: they work offline.
    app = FastAPIOffline(
        title="zhsearch",
        version=__version__,
        description="Chinese semantic search and question answering over traditional and simplified documents.",
        lifespan=lifespan,
        responses={422: {"model": schemas.ErrorResponse}},
    )
    app.state.settings = settings
    app.state.keys = keys
    app.state.metrics = Metrics()
    if settings.cors_origins:  # off unless configured: no browser page elsewhere may call the API
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["authorization", "content-type", "x-request-id"],
        )
    app.add_middleware(HostGuard, settings=settings)
    app.add_middleware(
        RequestContext,
        metrics=app.state.metrics,
        max_body=settings.max_upload_bytes,
        known=lambda name: name in getattr(app.state, "collections", ()),
    )
    errors.install(app)
    app.router.routes.append(mcp_route)  # MCP (streamable HTTP) at /mcp: search, ask and the documents
    for module in (tools, ops, collections):
        app.include_router(module.router)
    # Each route of a collection twice: /v1/search on the default collection, and under
    # /v1/collections/{collection}/search on a named one.
    for router in (search.router, documents.router):
        app.include_router(router, prefix="/v1")
    for router in (search.router, documents.router, tools.in_collection):
        app.include_router(
            router,
            prefix="/v1/collections/{collection}",
            dependencies=[in_collection],
            tags=["collections"],
            generate_unique_id_function=lambda route: (
                f"{route.name}_in_collection_{'_'.join(sorted(route.methods or ()))}"
            ),
        )
    return app


__all__ = ["create_app"]
