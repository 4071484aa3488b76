"""Collections (issue 27): many indexes in one server, created empty and filled through the API, each
its own index folder, sharing one model and one query batcher."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from index import Document, HashingEmbedder, Settings, Tuning, build_index, open_index
from index.writing.live import LiveIndex
from service.app import create_app
from service.cli import app as cli

LOCAL = "http://127.0.0.1"


def _serve(tmp_path: Path, **settings: object) -> tuple[TestClient, LiveIndex]:
    build_index([Document("base", "黃浦區的基礎文件。講經濟發展。")], tmp_path / "idx", HashingEmbedder())
    configured = Settings(index_dir=tmp_path / "idx", model="hashing", **settings)
    live = LiveIndex.open(tmp_path / "idx", HashingEmbedder(), Tuning.of(configured))
    return TestClient(create_app(configured, index=live), base_url=LOCAL), live


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    test_client, live = _serve(tmp_path)
    with test_client:
        yield test_client
    live.close()


def test_a_collection_is_created_empty_filled_searched_and_deleted(client: TestClient, tmp_path: Path) -> None:
    made = client.post("/v1/collections", json={"name": "hr", "description": "人事手冊"})
    assert made.status_code == 201, made.text
    assert made.json() | {"created": ""} == {
        "name": "hr",
        "description": "人事手冊",
        "created": "",
        "right": "write",
        "documents": 0,
    }
    assert client.post("/v1/collections", json={"name": "hr"}).status_code == 409
    for bad in ("HR", "", "a/b", "-x", "x" * 65, "默認"):
        assert client.post("/v1/collections", json={"name": bad}).status_code == 422, bad
    assert client.get("/v1/collections/hr/search", params={"q": "年假"}).json()["results"] == []

    doc = {"id": "leave", "text": "員工每年享有十五天年假，須提前一週申請。"}
    assert client.post("/v1/collections/hr/documents", json=doc).status_code == 201
    hits = client.post("/v1/collections/hr/search", json={"query": "年假", "k": 5}).json()["results"]
    assert [hit["doc_id"] for hit in hits] == ["leave"]
    assert "leave" not in {h["doc_id"] for h in client.get("/v1/search", params={"q": "年假"}).json()["results"]}
    assert client.get("/v1/documents/leave").status_code == 404  # the default collection has no such document
    assert client.get("/v1/collections/hr/documents/leave").json()["text"] == doc["text"]
    passage = client.get("/v1/collections/hr/documents/leave").json()["passages"][0]["passage_id"]
    assert client.get(f"/v1/collections/hr/passages/{passage}").status_code == 200
    asked = client.post("/v1/collections/hr/ask", json={"question": "每年有幾天年假"}).json()
    assert asked["passages"][0]["doc_id"] == "leave"
    assert client.get("/v1/collections/hr/tools").json()["tools"]
    assert client.put("/v1/collections/hr/documents/leave", json={"text": "年假改為二十天。"}).status_code == 200
    listed = client.get("/v1/collections").json()["collections"]
    assert [(c["name"], c["documents"]) for c in listed] == [("default", 1), ("hr", 1)]
    assert client.get("/v1/collections/hr").json()["documents"] == 1

    folder = tmp_path / "collections" / "hr"
    assert json.loads((folder / "collection.json").read_text())["description"] == "人事手冊"
    metrics = client.get("/metrics").text
    assert 'collection="hr"' in metrics and 'zhsearch_passages{collection="hr"}' in metrics
    assert 'route="/v1/collections/{collection}/search"' in metrics

    assert client.delete("/v1/collections/default").status_code == 422
    assert client.delete("/v1/collections/hr").status_code == 204
    assert not folder.exists()
    assert client.get("/v1/collections/hr/search", params={"q": "年假"}).status_code == 404
    assert client.delete("/v1/collections/hr").status_code == 404
    assert [c["name"] for c in client.get("/v1/collections").json()["collections"]] == ["default"]


def test_collections_share_the_model_and_batcher_and_stay_after_a_restart(tmp_path: Path) -> None:
    test_client, live = _serve(tmp_path, encode_workers=1)
    with test_client as client:
        assert client.post("/v1/collections", json={"name": "a"}).status_code == 201
        client.post("/v1/collections/a/documents", json={"id": "x", "text": "外灘的夜景很美。"})
        collections = client.app.state.collections  # type: ignore[attr-defined]
        assert collections.get("a").embedder is live.embedder
        assert collections.get("a").batcher is live.batcher
        assert collections.get("a").answering is live.answering
    live.close()
    # the collection's folder is an ordinary index: it opens alone
    alone = open_index(tmp_path / "collections" / "a", HashingEmbedder())
    assert [h.doc_id for h in alone.search("外灘夜景").hits] == ["x"]
    alone.close()
    test_client, live = _serve(tmp_path)
    with test_client as client:
        assert [
            h["doc_id"] for h in client.get("/v1/collections/a/search", params={"q": "外灘"}).json()["results"]
        ] == ["x"]
    live.close()


def test_a_collection_built_by_the_cli_is_found_by_a_running_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    test_client, live = _serve(tmp_path)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "faq.txt").write_text("退貨須在七天內辦理。", encoding="utf-8")
    monkeypatch.setenv("ZHSEARCH_MODEL", "hashing")
    monkeypatch.setenv("ZHSEARCH_INDEX_DIR", str(tmp_path / "idx"))
    with test_client as client:
        built = CliRunner().invoke(cli, ["build", "--docs", str(docs), "--collection", "faq", "--json"])
        assert built.exit_code == 0, built.output
        found = client.get("/v1/collections/faq/search", params={"q": "退貨"}).json()["results"]
        assert found and found[0]["title"]
        searched = CliRunner().invoke(cli, ["search", "退貨", "--collection", "faq", "--json"])
        assert searched.exit_code == 0, searched.output
        listed = CliRunner().invoke(cli, ["documents", "--collection", "faq", "--json"])
        assert json.loads(listed.output)["total"] == 1
        beside = CliRunner().invoke(
            cli, ["search", "退貨", "--collection", "faq", "--index-dir", str(tmp_path / "idx")]
        )
        assert beside.exit_code == 0, beside.output  # the collections beside that index folder
        bad = CliRunner().invoke(cli, ["search", "退貨", "--collection", "Not/A/Name"])
        assert bad.exit_code == 1 and "collection name" in bad.output
    live.close()


def test_only_admin_keys_create_and_delete(tmp_path: Path) -> None:
    test_client, live = _serve(tmp_path, api_key="w", read_key="r")
    with test_client as client:
        assert client.post("/v1/collections", json={"name": "x"}).status_code == 401
        assert (
            client.post("/v1/collections", json={"name": "x"}, headers={"Authorization": "Bearer r"}).status_code == 403
        )
        assert (
            client.post("/v1/collections", json={"name": "x"}, headers={"Authorization": "Bearer w"}).status_code == 201
        )
        reader = {"Authorization": "Bearer r"}
        assert client.get("/v1/collections/x", headers=reader).json()["right"] == "read"
        assert client.post("/v1/collections/x/documents", json={"text": "文字。"}, headers=reader).status_code == 403
        assert client.delete("/v1/collections/x", headers=reader).status_code == 403
        assert client.delete("/v1/collections/x", headers={"Authorization": "Bearer w"}).status_code == 204
    live.close()


def test_keys_cli_adds_lists_and_removes(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    added = CliRunner().invoke(
        cli,
        [
            "keys",
            "add",
            "hr-bot",
            "--group",
            "hr",
            "--read",
            "faq",
            "--write",
            "hr",
            "--keys-file",
            str(keys),
            "--json",
        ],
    )
    assert added.exit_code == 0, added.output
    secret = json.loads(added.output)["secret"]
    assert secret not in keys.read_text()
    listed = json.loads(CliRunner().invoke(cli, ["keys", "list", "--keys-file", str(keys), "--json"]).output)
    assert listed["keys"] == [
        {"name": "hr-bot", "groups": ["hr"], "collections": {"faq": "read", "hr": "write"}, "admin": False}
    ]
    again = CliRunner().invoke(cli, ["keys", "add", "hr-bot", "--keys-file", str(keys)])
    assert again.exit_code == 1 and "exists" in again.output
    assert CliRunner().invoke(cli, ["keys", "remove", "hr-bot", "--keys-file", str(keys)]).exit_code == 0
    assert (
        json.loads(CliRunner().invoke(cli, ["keys", "list", "--keys-file", str(keys), "--json"]).output)["keys"] == []
    )


def test_a_keys_file_that_does_not_read_stops_the_server_from_starting(tmp_path: Path) -> None:
    from index import InvalidInputError

    bad = tmp_path / "keys.json"
    bad.write_text('{"keys": [{"name": "x", "hash": "plain-secret"}]}')
    with pytest.raises(InvalidInputError, match="hash"):
        create_app(Settings(index_dir=tmp_path / "idx", model="hashing", keys_file=bad))


def test_collections_come_and_go_under_load_without_a_500(tmp_path: Path) -> None:
    """Searches, writes and reads of a collection while it is created and deleted again and again:
    every answer is one a client can act on (200, 201, 204, 404, 409), never a 500."""
    import threading
    import time

    test_client, live = _serve(tmp_path)
    statuses: list[int] = []
    stop = threading.Event()

    def churn(client: TestClient) -> None:
        while not stop.is_set():
            statuses.append(client.post("/v1/collections", json={"name": "tmp"}).status_code)
            statuses.append(client.post("/v1/collections/tmp/documents", json={"text": "臨時文件。"}).status_code)
            statuses.append(client.delete("/v1/collections/tmp").status_code)

    def read(client: TestClient) -> None:
        while not stop.is_set():
            statuses.append(client.get("/v1/collections/tmp/search", params={"q": "臨時"}).status_code)
            statuses.append(client.post("/v1/collections/tmp/ask", json={"question": "臨時文件"}).status_code)
            statuses.append(client.get("/v1/collections").status_code)
            statuses.append(client.get("/v1/search", params={"q": "經濟"}).status_code)

    with test_client as client:
        workers = [threading.Thread(target=churn, args=(client,))] + [
            threading.Thread(target=read, args=(client,)) for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        time.sleep(6)
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    live.close()
    assert statuses and set(statuses) <= {200, 201, 204, 404, 409}, sorted(set(statuses))
    assert statuses.count(204) >= 3  # the collection did come and go


def test_a_collection_deleted_while_a_request_opens_it_is_not_found(tmp_path: Path) -> None:
    """The race the load test above met once: a request finds a collection's folder, a delete renames it
    aside, then the request opens it (no `.lock` there any more): a 404, not a 500."""
    from index import NotFoundError
    from index.collections import Collections

    build_index([Document("base", "預設集合的文件。")], tmp_path / "idx", HashingEmbedder())
    build_index([Document("doc", "臨時集合的文件。")], tmp_path / "collections" / "tmp", HashingEmbedder())
    default = LiveIndex.open(tmp_path / "idx", HashingEmbedder())

    def opener(path: Path) -> LiveIndex:
        if path.name == "tmp" and (tmp_path / "collections" / "tmp").exists():
            (tmp_path / "collections" / "tmp").rename(tmp_path / "collections" / ".trash-tmp")  # the delete
        return LiveIndex.open(path, HashingEmbedder())

    collections = Collections(tmp_path / "collections", default, opener, lambda path: None)  # type: ignore[arg-type]
    try:
        with pytest.raises(NotFoundError, match="no collection named 'tmp'"):
            with collections.using("tmp"):
                pass
    finally:
        collections.close()
        default.close()
