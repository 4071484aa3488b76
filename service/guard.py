"""DNS-rebinding and cross-site protection for every route, as ``/mcp`` has had from the SDK.

On a loopback address a request must name this machine: its ``Host`` is localhost,
127.0.0.1 or ::1 (any port), or one of ``ZHSEARCH_ALLOWED_HOSTS``. A page elsewhere
whose name was rebound to 127.0.0.1 sends its own name and gets 421. A write
(``POST``/``PUT``/``PATCH``/``DELETE``) that carries an ``Origin`` must come from an
allowed host or one of ``ZHSEARCH_CORS_ORIGINS``, else 403: a cross-site HTML form
posts multipart bodies without a CORS preflight.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from index import Settings

from .errors import send_error

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _host_name(value: str) -> str:
    """The name in a Host header, without its port (``[::1]:8000`` → ``[::1]``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class HostGuard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hosts = settings.hosts
        self.origins = frozenset(o.rstrip("/").lower() for o in settings.cors_origins)

    def _origin_allowed(self, origin: str) -> bool:
        origin = origin.strip().rstrip("/").lower()
        if origin in self.origins:
            return True
        name = urlsplit(origin).hostname or ""
        return self.hosts is None or name in self.hosts or f"[{name}]" in self.hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = _host_name(headers.get(b"host", ""))
        if self.hosts is not None and host not in self.hosts:
            await send_error(send, 421, "misdirected_request", f"this server does not answer for host {host[:100]!r}")
            return
        origin = headers.get(b"origin")
        if origin is not None and scope.get("method", "") in WRITES and not self._origin_allowed(origin):
            await send_error(send, 403, "forbidden", f"writes from origin {origin[:100]!r} are not allowed")
            return
        await self.app(scope, receive, send)
