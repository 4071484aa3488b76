"""MCP over streamable HTTP at ``/mcp`` of the API (``service.mcp_server`` is the server itself).

The endpoint applies the API's key rules (``service.keys``): where keys are configured a
request needs ``Authorization: Bearer <key>``, else 401 in the API's error shape; the
caller it resolves is put in the request's state, where each tool call and resource
read of that request finds it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from index import Settings, ZhsearchError

from .deps import CALLER_STATE
from .errors import error_response, send_error, unauthorized
from .keys import Caller, KeyRing

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
    """The streamable-HTTP endpoint: the API's key rules, then the running session manager."""

    def __init__(self, server: MCPServer, settings: Settings, keys: KeyRing, path: str) -> None:
        self.server = server
        self.settings = settings
        self.keys = keys
        self.path = path
        self.manager: StreamableHTTPSessionManager | None = None
        # A Route, not a Mount: a Mount would answer /mcp with a redirect to /mcp/.
        self.route = Route(path, endpoint=self, include_in_schema=False)

    def _caller(self, scope: Scope) -> Caller | None:
        header = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"authorization"), "")
        return self.keys.caller(header)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # FastAPI's router records only its own routes; the access log and metrics label by this one.
        scope["route"] = self.route
        try:
            caller = self._caller(scope)
        except ZhsearchError as exc:  # a keys file that does not read: nobody is let in, as on the API
            await error_response(503, "unavailable", str(exc))(scope, receive, send)
            return
        if caller is None:
            await unauthorized()(scope, receive, send)
            return
        scope.setdefault("state", {})[CALLER_STATE] = caller  # read by each tool call and resource read
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
    server: MCPServer, settings: Settings, keys: KeyRing | None = None, path: str = "/mcp"
) -> tuple[Route, Callable[[], AbstractAsyncContextManager[None]]]:
    """The route serving MCP at ``path``, and the context manager to enter in the host app's lifespan.

    The route answers 401 (the API's error shape) without a valid key where keys are configured
    (``keys``: the app's), and 503 while the lifespan is not running.
    With a local ``settings.host`` (the default) the SDK also refuses requests whose Host or
    Origin header is not local (DNS-rebinding protection).
    """
    endpoint = _McpEndpoint(server, settings, keys or KeyRing(settings), path)
    return endpoint.route, endpoint.lifespan


__all__ = ["http_endpoint"]
