"""service.middleware: request ids, the body-size cap, metrics, and the JSON 500."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from index import tracing
from service.middleware import Metrics, RequestContext


def _app(max_body: int = 10) -> tuple[FastAPI, Metrics]:
    app = FastAPI()
    metrics = Metrics()
    app.add_middleware(RequestContext, metrics=metrics, max_body=max_body)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, object]:
        return {"bytes": len(await request.body()), "request_id": tracing.request_id.get()}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    return app, metrics


def test_request_id_is_echoed_and_seen_by_the_library() -> None:
    client = TestClient(_app()[0])
    response = client.post("/echo", content=b"12345", headers={"X-Request-Id": "abc"})
    assert response.headers["x-request-id"] == "abc" and response.json() == {"bytes": 5, "request_id": "abc"}
    generated = client.post("/echo", content=b"")
    assert len(generated.headers["x-request-id"]) == 32
    assert generated.json()["request_id"] == generated.headers["x-request-id"]


def test_bodies_over_the_cap_are_413_declared_or_streamed() -> None:
    client = TestClient(_app(max_body=10)[0])
    declared = client.post("/echo", content=b"x" * 11)
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "too_large"

    def chunks() -> Iterator[bytes]:
        yield b"x" * 6
        yield b"x" * 6

    streamed = client.post("/echo", content=chunks())  # no Content-Length: counted as it arrives
    assert streamed.status_code == 413
    assert client.post("/echo", content=b"x" * 10).status_code == 200


def test_metrics_count_by_route_and_status() -> None:
    app, metrics = _app()
    client = TestClient(app, raise_server_exceptions=False)
    client.post("/echo", content=b"1")
    client.get("/boom")
    assert metrics.requests.labels("POST", "/echo", "200", "default")._value.get() == 1
    assert metrics.requests.labels("GET", "/boom", "500", "default")._value.get() == 1
    body = client.get("/boom", headers={"X-Request-Id": "r1"}).json()
    assert body["error"]["code"] == "internal" and "r1" in body["error"]["message"]
