"""The MCP server: `search` and `ask` as tools, the indexed documents as resources.

One ``MCPServer`` serves both transports. It gets its index (an ``index.ServedIndex``)
through a callable, so the stdio process (``zhsearch mcp``) can open it read-only on
first use, while the HTTP app hands over the one its lifespan opened
(``lambda: app.state.index``). The tools' parameters are the API's request models'
fields (``service.tools``). The tools return the same JSON shapes as
``/v1/search`` and ``/v1/ask``, as structured content a client can cite.

Over HTTP the server is an ASGI app for ``/mcp`` (streamable HTTP) behind the
API's read-key rule: when a read key is set, a request needs
``Authorization: Bearer <read key or api key>``, else 401.
"""

from __future__ import annotations

import inspect
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
from pydantic import BaseModel, WithJsonSchema
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from index import NotFoundError, ServedIndex, Settings, ZhsearchError, __version__
from index import ask as ask_question

from . import presenter, schemas
from .deps import bearer_allows, read_keys
from .errors import error_response, send_error, unauthorized
from .tools import DESCRIPTIONS, MODELS, parameters_schema

DOCUMENTS_URI = "zhsearch://documents"
DOCUMENT_URI = "zhsearch://documents/{doc_id}"
INSTRUCTIONS = (
    "Search Chinese documents (traditional or simplified script). `search` returns ranked passages in their "
    "original script with doc_id and [start, end) offsets into the document; `ask` adds the extractive answer "
    "(a short span, with its sentence and a calibrated probability) or null when the documents do not say. "
    f"Cite passages by doc_id and offsets; read a whole document at {DOCUMENT_URI}."
)
_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def _signature(request: type[BaseModel], response: type[BaseModel]) -> inspect.Signature:
    """A tool's parameters: the request model's fields, each with the JSON Schema ``/v1/tools`` shows.

    The schema's limits (lengths, k's range) are shown to the client, not enforced by the SDK: the
    index checks them with its own (maybe lower) limits (``validate_query``), whose messages say
    what to change.
    """
    shown = parameters_schema(request)["properties"]
    parameters = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if field.is_required() else field.default,
            annotation=Annotated[field.annotation, WithJsonSchema(shown[name])],
        )
        for name, field in request.model_fields.items()
    ]
    return inspect.Signature(parameters, return_annotation=response)


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


def create_mcp(get_searcher: Callable[[], ServedIndex]) -> MCPServer:
    """The MCP server over whatever searcher ``get_searcher`` returns at call time.

    The tools take exactly the arguments that ``/v1/tools`` advertises (the API's
    request models), and check them with the searcher's limits.
    """
    server = _new_server()

    def searcher() -> ServedIndex:
        try:
            return get_searcher()
        except ZhsearchError as exc:
            raise ToolError(str(exc)) from exc

    def search(**arguments: Any) -> schemas.SearchResponse:
        query, k, mode, filters = (arguments[name] for name in ("query", "k", "mode", "filters"))
        try:
            result = searcher().search(query, k, mode, presenter.filters(filters))
        except ZhsearchError as exc:
            raise ToolError(str(exc)) from exc
        return presenter.search_response(result)

    def ask(**arguments: Any) -> schemas.AskResponse:
        question, k, mode, filters = (arguments[name] for name in ("question", "k", "mode", "filters"))
        try:
            result = ask_question(searcher(), question, k, mode, presenter.filters(filters))
        except ZhsearchError as exc:
            raise ToolError(str(exc)) from exc
        return presenter.ask_response(result)

    tools: list[tuple[Callable[..., BaseModel], type[BaseModel]]] = [
        (search, schemas.SearchResponse),
        (ask, schemas.AskResponse),
    ]
    for tool, response in tools:
        setattr(tool, "__signature__", _signature(MODELS[tool.__name__], response))  # noqa: B010
        server.tool(name=tool.__name__, description=DESCRIPTIONS[tool.__name__], annotations=_READ_ONLY)(tool)

    def resource_searcher() -> ServedIndex:
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
        try:
            return resource_searcher().document(doc_id).text
        except NotFoundError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        except ZhsearchError as exc:
            raise ResourceError(str(exc)) from exc

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
            await send_error(send, start["status"], _PLAIN_CODES[start["status"]], text)
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
