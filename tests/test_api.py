from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from index import HashingEmbedder, Settings, build_index
from index.writing.live import LiveIndex
from service.app import create_app

#: TestClient's default Host, "testserver", is not a name a loopback server answers for.
LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, seed_docs):
    index_dir = tmp_path_factory.mktemp("api-index")
    build_index(seed_docs, index_dir, HashingEmbedder())
    live = LiveIndex.open(index_dir, HashingEmbedder())
    with TestClient(create_app(index=live), base_url=LOCAL) as test_client:
        yield test_client
    live.close()


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["passages"] == ready["vectors"] == ready["lexical"] > 0


def test_post_and_get_agree(client: TestClient) -> None:
    posted = client.post("/v1/search", json={"query": "上半年地区生产总值是多少", "k": 3})
    got = client.get("/v1/search", params={"q": "上半年地区生产总值是多少", "k": 3})
    assert posted.status_code == got.status_code == 200
    assert [r["passage_id"] for r in posted.json()["results"]] == [r["passage_id"] for r in got.json()["results"]]
    first = posted.json()["results"][0]
    assert set(first) == {
        "rank",
        "score",
        "passage_id",
        "doc_id",
        "title",
        "section",
        "text",
        "start",
        "end",
        "pages",
        "highlights",
    }
    assert first["rank"] == 1 and "took_ms" in posted.json()


def test_results_are_original_script_with_offsets(client: TestClient, seed_docs) -> None:
    results = client.get("/v1/search", params={"q": "生产总值", "k": 5}).json()["results"]
    text = seed_docs[0].text
    for r in results:
        assert text[r["start"] : r["end"]] == r["text"]


@pytest.mark.parametrize(
    ("method", "kwargs", "fragment"),
    [
        ("post", {"json": {"query": "", "k": 5}}, "query"),
        ("post", {"json": {"query": "   ", "k": 5}}, "empty"),
        ("post", {"json": {"query": "字" * 1001}}, "1000"),
        ("post", {"json": {"query": "問題", "k": 0}}, "k"),
        ("post", {"json": {"query": "問題", "k": 101}}, "k"),
        ("post", {"json": {"k": 5}}, "query"),
        ("get", {"params": {"q": ""}}, "q"),
        ("get", {"params": {"q": "問題", "k": "many"}}, "k"),
        ("get", {}, "q"),
        ("get", {"params": {"q": "問題", "mode": "fuzzy"}}, "mode"),
        ("post", {"json": {"query": "問題", "mode": 3}}, "mode"),
    ],
)
def test_bad_requests_are_readable_422(client: TestClient, method: str, kwargs: dict, fragment: str) -> None:
    response = getattr(client, method)("/v1/search", **kwargs)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] and fragment.lower() in error["message"].lower()


def test_unknown_route_is_json_404(client: TestClient) -> None:
    response = client.get("/v1/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "http_error"


def test_an_unexpected_failure_is_a_json_500_naming_the_request(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    live = client.app.state.index

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(live, "search", broken)
    with caplog.at_level("ERROR", logger="zhsearch.api"):
        response = client.post("/v1/search", json={"query": "黃浦"}, headers={"X-Request-Id": "trace-me"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "trace-me"
    assert response.json()["error"]["code"] == "internal"
    assert "trace-me" in response.json()["error"]["message"]
    logged = [r for r in caplog.records if "trace-me" in r.getMessage()]
    assert logged and logged[0].exc_info and "a bug" in str(logged[0].exc_info[1])


def test_ready_means_ready(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Before /readyz answers, the lifespan has encoded a query, a document and a sentence and asked once."""
    import logging

    from index import load_paths
    from tests.conftest import SEEDS

    calls: list[str] = []

    class Recording(HashingEmbedder):
        def encode_queries(self, texts):  # type: ignore[no-untyped-def]
            calls.append("queries")
            return super().encode_queries(texts)

        def encode_documents(self, texts, batch_size=8):  # type: ignore[no-untyped-def]
            calls.append("documents")
            return super().encode_documents(texts, batch_size)

    build_index(load_paths([SEEDS]), tmp_path, HashingEmbedder())
    live = LiveIndex.open(tmp_path, Recording())
    app = create_app(Settings(index_dir=tmp_path, model="hashing"), index=live)
    with caplog.at_level(logging.INFO, logger="zhsearch.api"), TestClient(app, base_url=LOCAL) as client:
        assert {"queries", "documents"} <= set(calls)
        assert client.get("/readyz").status_code == 200
    live.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("ready in ") and "warm-up" in m for m in messages)
    assert any("POST /v1/ask -> 200" in m and "request_id=warm-up" in m for m in messages)  # through the app
