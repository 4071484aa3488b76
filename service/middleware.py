"""ASGI middleware: request ids, access logs, Prometheus metrics, body size limit.

The request id (``X-Request-Id``, or a fresh one) is set in ``index.tracing`` for
the library's log lines, echoed in the response header, and named in the body of a
500: a failure that escapes a handler is logged once with its traceback and that
id, and the client gets the one JSON error shape instead of Starlette's plain text.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from index import request_id as current_request_id

from .errors import send_error

log = logging.getLogger("zhsearch.api")


class Metrics:
    """One registry per app, so tests can build several apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "zhsearch_requests_total",
            "HTTP requests",
            ["method", "route", "status", "collection"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "zhsearch_request_seconds",
            "HTTP request latency",
            ["method", "route", "collection"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.passages = Gauge("zhsearch_passages", "Passages indexed", ["collection"], registry=self.registry)
        self.documents = Gauge("zhsearch_documents", "Documents indexed", ["collection"], registry=self.registry)
        self.build_seconds = Gauge(
            "zhsearch_index_build_seconds", "Time the loaded index took to build", registry=self.registry
        )


def _route_of(scope: Scope) -> str:
    """The matched route's path template, prefix included (``/v1/collections/{collection}/search``).

    FastAPI 0.165 routes an included router without copying its routes: ``scope["route"]`` is the
    route as its router declared it (``/search``), and the full template is on the route context
    FastAPI keeps in the scope.
    """
    context = scope.get("fastapi", {}).get("effective_route_context")
    found = getattr(context, "path_format", None) or getattr(scope.get("route"), "path", None)
    return found or "unmatched"


def _collection_of(scope: Scope, known: Callable[[str], bool]) -> str:
    """The collection a request named, as a metrics label: ``default`` when it named none, ``other``
    for a name the server does not hold (a probe must not make labels, or learn from them)."""
    name = scope.get("path_params", {}).get("collection")
    if name is None:
        return "default"
    return str(name) if known(str(name)) else "other"


class _TooLarge(Exception):
    pass


def _printable(text: str, limit: int = 2000) -> str:
    """``text`` safe for one log line: control characters escaped (no forged lines), long values cut."""
    escaped = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text[:limit])
    return escaped + ("…" if len(text) > limit else "")


class RequestContext:
    """Request id header, access log line, metrics, and a hard cap on body size (413)."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, max_body: int, known: Callable[[str], bool] = lambda name: False
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        self.known = known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = _printable(headers.get("x-request-id", "")[:100]) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = current_request_id.set(request_id)
        began = time.perf_counter()
        status = {"code": 500, "started": False}

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
                message["headers"] = list(message.get("headers", [])) + [
                    (b"x-request-id", request_id.encode("latin-1"))
                ]
            await send(message)

        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            await self._reject(send_wrapped)
        else:
            received = {"bytes": 0}

            async def receive_counted() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    received["bytes"] += len(message.get("body", b""))
                    if received["bytes"] > self.max_body:
                        # a framework that reads the body may turn this into its own 400: errors.py looks here
                        scope["state"]["too_large"] = self.max_body
                        raise _TooLarge
                return message

            try:
                await self.app(scope, receive_counted, send_wrapped)
            except _TooLarge:
                await self._reject(send_wrapped)
            except Exception:  # logged with its traceback, answered as JSON
                log.exception("unhandled error [request_id=%s]", request_id)
                status["code"] = 500
                if not status["started"]:
                    await send_error(
                        send_wrapped,
                        500,
                        "internal",
                        f"internal error; the server log has its traceback under request id {request_id}",
                    )
        current_request_id.reset(token)
        elapsed = time.perf_counter() - began
        route = _route_of(scope)
        method = scope.get("method", "")
        collection = _collection_of(scope, self.known)
        self.metrics.requests.labels(method, route, str(status["code"]), collection).inc()
        self.metrics.latency.labels(method, route, collection).observe(elapsed)
        log.info(
            "%s %s -> %d in %.1f ms [request_id=%s]",
            method,
            _printable(scope.get("path", "")),
            status["code"],
            elapsed * 1000,
            request_id,
        )

    async def _reject(self, send: Any) -> None:
        await send_error(send, 413, "too_large", f"the request body is larger than {self.max_body} bytes")
