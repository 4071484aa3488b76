"""The MCP server: `search` and `ask` as tools, the indexed documents as resources.

One ``MCPServer`` serves both transports. It gets its searcher through a callable,
so the stdio process (``zhsearch mcp``) can load a read-only ``Searcher`` on first
use, while the HTTP app hands over the ``LiveIndex`` its lifespan loaded
(``lambda: app.state.index``). The tools return the same JSON shapes as
``/v1/search`` and ``/v1/ask``, as structured content a client can cite.

Over HTTP the server is an ASGI app for ``/mcp`` (streamable HTTP) behind the
API's read-key rule: when a read key is set, a request needs
``Authorization: Bearer <read key or api key>``, else 401.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.mcpserver.resources import ResourceSecurity
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.types import ToolAnnotations
from pydantic import Field
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from index import Settings, ZhsearchError, __version__
from index.retrieval.answer import ask as ask_question
from index.retrieval.query import MAX_K, MAX_QUERY_CHARS
from index.retrieval.query import Mode as QueryMode
from index.retrieval.search import Searcher

from . import presenter, schemas
from .deps import bearer_allows, read_keys
from .errors import error_response, unauthorized
from .tools import DESCRIPTIONS

DOCUMENTS_URI = "zhsearch://documents"
DOCUMENT_URI = "zhsearch://documents/{doc_id}"
INSTRUCTIONS = (
    "Search Chinese documents (traditional or simplified script). `search` returns ranked passages in their "
    "original script with doc_id and [start, end) offsets into the document; `ask` adds an extractive answer "
    f"or null. Cite passages by doc_id and offsets; read a whole document at {DOCUMENT_URI}."
)
_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

# The hard limits are shown in the schema; the searcher's own (maybe lower) limits are checked by
# `validate_query`, whose messages say what to change.
_TEXT_LIMITS = {"minLength": 1, "maxLength": MAX_QUERY_CHARS}
_K_LIMITS = {"minimum": 1, "maximum": MAX_K}
Query = Annotated[str, Field(description="Question or keywords, any Chinese script.", json_schema_extra=_TEXT_LIMITS)]
Question = Annotated[str, Field(description="A question in any Chinese script.", json_schema_extra=_TEXT_LIMITS)]
K = Annotated[int, Field(description="How many passages to return.", json_schema_extra=_K_LIMITS)]
EvidenceK = Annotated[int, Field(description="How many evidence passages to return.", json_schema_extra=_K_LIMITS)]
Mode = Annotated[QueryMode, Field(description="Retrieval mode.")]
SearchFilters = Annotated[schemas.SearchFilters | None, Field(description="Restrict the search to some documents.")]


class _StrictServer(MCPServer):
    """Tool calls take exactly the declared arguments: an unknown one is a tool error, as the HTTP API's
    422 for an unknown field (the SDK would drop it silently)."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        tool = self._tool_manager.get_tool(name)
        if tool is not None:
            unknown = sorted(set(arguments) - set(tool.parameters.get("properties", {})))
            if unknown:
                allowed = ", ".join(tool.parameters.get("properties", {}))
                raise ToolError(f"{name}: unknown argument(s) {', '.join(unknown)}; it takes {allowed}")
        return await super().call_tool(name, arguments, context)


def _new_server() -> MCPServer:
    """An ``MCPServer``, without its constructor's ``logging.basicConfig`` on the root logger.

    The SDK configures root logging when none is set up; logging is the host's
    business (uvicorn's config for ``serve``, ``zhsearch mcp`` for stdio).
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return _StrictServer(
            name="zhsearch",
            title="zhsearch: Chinese semantic search",
            instructions=INSTRUCTIONS,
            version=__version__,
        )
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def create_mcp(get_searcher: Callable[[], Searcher]) -> MCPServer:
    """The MCP server over whatever searcher ``get_searcher`` returns at call time.

    The tools take exactly the arguments that ``/v1/tools`` advertises (the API's
    request models), and check them with the searcher's limits.
    """
    server = _new_server()

    def searcher() -> Searcher:
        try:
            return get_searcher()
        except ZhsearchError as exc:
            raise ToolError(str(exc)) from exc

    @server.tool(name="search", description=DESCRIPTIONS["search"], annotations=_READ_ONLY)
    def search(query: Query, k: K = 10, mode: Mode = "hybrid", filters: SearchFilters = None) -> schemas.SearchResponse:
        try:
            result = searcher().search(query, k, mode, presenter.filters(filters))
        except ZhsearchError as exc:
            raise ToolError(str(exc)) from exc
        return presenter.search_response(result)

    @server.tool(name="ask", description=DESCRIPTIONS["ask"], annotations=_READ_ONLY)
    def ask(
        question: Question, k: EvidenceK = 5, mode: Mode = "hybrid", filters: SearchFilters = None
    ) -> schemas.AskResponse:
        try:
            result = ask_question(searcher(), question, k, mode, presenter.filters(filters))
        except ZhsearchError as exc:
            raise ToolError(str(exc)) from exc
        return presenter.ask_response(result)

    def resource_searcher() -> Searcher:
        try:
            return get_searcher()
        except ZhsearchError as exc:
            raise ResourceError(str(exc)) from exc

    @server.resource(
        DOCUMENTS_URI,
        name="documents",
        title="Indexed documents",
        description="Every indexed document: id, title, metadata, length in characters, number of passages.",
        mime_type="application/json",
    )
    def documents() -> str:
        _, docs = resource_searcher().documents(0, sys.maxsize)
        listed = [presenter.summary(info).model_dump() for info in docs]
        return json.dumps({"total": len(listed), "documents": listed}, ensure_ascii=False)

    # Ids are looked up in SQLite, never used as paths: only NUL bytes are refused.
    @server.resource(
        DOCUMENT_URI,
        name="document",
        title="Document text",
        description="The original full text of one document; passage offsets index into it.",
        mime_type="text/plain",
        security=ResourceSecurity(reject_path_traversal=False, reject_absolute_paths=False),
    )
    def document(doc_id: str) -> str:
        text = resource_searcher().document_text(doc_id)
        if text is None:
            raise ResourceNotFoundError(f"no document with id {doc_id!r}")
        return text

    return server


def run_stdio(server: MCPServer) -> None:
    """Serve MCP over stdin/stdout until the client closes stdin.

    While it runs the SDK points fd 1 at stderr, so stray prints never corrupt the protocol.
    """
    server.run("stdio")


_PLAIN_CODES = {403: "forbidden", 421: "misdirected_request"}


def _plain_errors_as_json(send: Send) -> Send:
    """The SDK's plain-text refusals (a non-local Host or Origin) in the API's one error shape."""
    held: dict[str, Any] = {}

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers", []))
            if message["status"] in _PLAIN_CODES and not headers.get(b"content-type", b"").startswith(
                b"application/json"
            ):
                held["start"] = message
                return
        elif message["type"] == "http.response.body" and "start" in held:
            held["body"] = held.get("body", b"") + message.get("body", b"")
            if message.get("more_body"):
                return
            start = held.pop("start")
            text = held.pop("body").decode("utf-8", "replace").strip() or "request refused"
            status = start["status"]
            payload = json.dumps({"error": {"code": _PLAIN_CODES[status], "message": text}}).encode()
            shape = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
            await send({"type": "http.response.start", "status": status, "headers": shape})
            await send({"type": "http.response.body", "body": payload})
            return
        await send(message)

    return wrapped


class _McpEndpoint:
    """The streamable-HTTP endpoint: the API's read-key rule, then the running session manager."""

    def __init__(self, server: MCPServer, settings: Settings, path: str) -> None:
        self.server = server
        self.settings = settings
        self.path = path
        self.manager: StreamableHTTPSessionManager | None = None
        # A Route, not a Mount: a Mount would answer /mcp with a redirect to /mcp/.
        self.route = Route(path, endpoint=self, include_in_schema=False)

    def _authorized(self, scope: Scope) -> bool:
        header = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"authorization"), "")
        return bearer_allows(header, read_keys(self.settings))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # FastAPI's router records only its own routes; the access log and metrics label by this one.
        scope["route"] = self.route
        if not self._authorized(scope):
            await unauthorized()(scope, receive, send)
            return
        if self.manager is None:
            unavailable = error_response(503, "unavailable", "the MCP endpoint is not running")
            await unavailable(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, _plain_errors_as_json(send))

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        # A session manager runs once: each lifespan gets a fresh one (tests enter an app's lifespan again).
        self.server.streamable_http_app(streamable_http_path=self.path, host=self.settings.host)
        manager = self.server.session_manager
        async with manager.run():
            self.manager = manager
            try:
                yield
            finally:
                self.manager = None


def http_endpoint(
    server: MCPServer, settings: Settings, path: str = "/mcp"
) -> tuple[Route, Callable[[], AbstractAsyncContextManager[None]]]:
    """The route serving MCP at ``path``, and the context manager to enter in the host app's lifespan.

    The route answers 401 (the API's error shape) without a valid key when ``settings.read_key``
    is set, accepting the read key or the API key, and 503 while the lifespan is not running.
    With a local ``settings.host`` (the default) the SDK also refuses requests whose Host or
    Origin header is not local (DNS-rebinding protection).
    """
    endpoint = _McpEndpoint(server, settings, path)
    return endpoint.route, endpoint.lifespan


__all__ = ["DOCUMENTS_URI", "DOCUMENT_URI", "create_mcp", "http_endpoint", "run_stdio"]
