"""Which request a library call serves, so a failure deep in a worker thread can name it.

The service sets ``request_id`` at the edge (the HTTP middleware); Starlette copies
the context into the thread that runs a handler, and the library reads it where the
work leaves that thread (the query micro-batcher) and writes it into its log lines.
"""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str] = ContextVar("zhsearch_request_id", default="-")
