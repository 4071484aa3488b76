"""Property-based fuzz of every route in the OpenAPI schema: nothing a client sends gives a 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from index import Document, HashingEmbedder, Settings, build_index
from index.writing.live import LiveIndex
from service.app import create_app


def _open_index() -> LiveIndex:
    """Built and locked when the app starts, not when this module is imported."""
    index_dir = Path(tempfile.mkdtemp(prefix="zhsearch-fuzz-"))
    build_index([Document("base", "黃浦區的基礎文件。講經濟發展和上半年生產總值。")], index_dir, HashingEmbedder())
    return LiveIndex.open(index_dir, HashingEmbedder())


# The schema needs only the app object; the index opens in its lifespan. Schemathesis's ASGI client
# calls itself "testserver", a name a loopback server does not answer for (421) unless it is allowed.
_settings = Settings(model="hashing", allowed_hosts=["testserver"])
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_settings, index=_open_index))


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.path} -> {response.status_code}: {response.text[:300]}"
    content_type = response.headers.get("content-type") or [""]
    if response.status_code >= 400 and content_type[0].startswith("application/json"):
        assert set(response.json()) == {"error"}, response.text[:300]
