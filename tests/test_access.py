"""Access control (issue 27): keys of one group try to cross the line into another's documents, through
every route, every MCP tool and resource, by id, by query text, by filter and by paging, on a real
server with a real keys file; and a property test compares every search with a brute-force check.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import TextResourceContents

from index import Document, Filters, HashingEmbedder, build_index, readable
from index.writing.live import LiveIndex
from service.keys import add_key, digest, read_keys_file, remove_key
from tests import server

SECRET_WORD = "預算報告"
#: Each document: id, access (None: everyone), text. Every text holds SECRET_WORD, so one query finds all.
DOCS: list[tuple[str, list[str] | None, str]] = [
    ("pub", None, f"公開的{SECRET_WORD}：全年經濟穩定增長。"),
    ("hr1", ["hr"], f"人事部的{SECRET_WORD}：薪資調整方案為百分之三。"),
    ("eng1", ["eng"], f"工程部的{SECRET_WORD}：伺服器採購計畫。"),
    ("both", ["hr", "eng"], f"共用的{SECRET_WORD}：辦公室搬遷。"),
    ("nobody", [], f"董事會的{SECRET_WORD}：併購案保密。"),
]


def _visible(groups: set[str]) -> set[str]:
    return {doc_id for doc_id, access, _ in DOCS if access is None or groups & set(access)}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real server (the model-free embedder) with a keys file, the documents above in the default
    collection and in collection ``team``."""
    root = tmp_path_factory.mktemp("access")
    docs = [Document(i, text, metadata={} if a is None else {"access": a}) for i, a, text in DOCS]
    build_index(docs, root / "idx", HashingEmbedder())
    keys_file = root / "keys.json"
    secrets = {
        "admin": add_key(keys_file, "admin", groups=["*"], collections={"*": "write"}, admin=True),
        "hr": add_key(keys_file, "hr", groups=["hr"], collections={"default": "read", "team": "read"}),
        "eng": add_key(keys_file, "eng", groups=["eng"], collections={"default": "read", "team": "read"}),
        "writer": add_key(keys_file, "writer", groups=[], collections={"team": "write"}),
        "outsider": add_key(keys_file, "outsider", groups=["hr"], collections={"default": "read"}),
    }
    env = {"ZHSEARCH_MODEL": "hashing", "ZHSEARCH_KEYS_FILE": str(keys_file)}
    with server.serving(root / "idx", root / "server.log", **env) as base:
        admin = {"Authorization": f"Bearer {secrets['admin']}"}
        assert httpx.post(f"{base}/v1/collections", json={"name": "team"}, headers=admin).status_code == 201
        writer = {"Authorization": f"Bearer {secrets['writer']}"}
        for doc_id, access, text in DOCS:
            body: dict[str, Any] = {"id": doc_id, "text": text}
            if access is not None:
                body["access"] = access
            assert httpx.post(f"{base}/v1/collections/team/documents", json=body, headers=writer).status_code == 201
        yield {"base": base, "secrets": secrets, "keys_file": keys_file, "log": root / "server.log"}
    assert "Traceback" not in (root / "server.log").read_text()


def _as(site: dict[str, Any], key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {site['secrets'][key]}"}


PREFIXES = ["/v1", "/v1/collections/default", "/v1/collections/team"]


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("key", ["hr", "eng"])
def test_search_and_ask_never_show_another_group(site: dict[str, Any], prefix: str, key: str) -> None:
    base, headers = site["base"], _as(site, key)
    visible = _visible({key})
    for mode in ("hybrid", "dense", "lexical"):
        found = httpx.post(
            f"{base}{prefix}/search", json={"query": SECRET_WORD, "k": 50, "mode": mode}, headers=headers
        )
        assert found.status_code == 200, found.text
        # k hits whenever k readable passages match: every readable document is found, nothing else
        assert {hit["doc_id"] for hit in found.json()["results"]} == visible, mode
    got = httpx.get(f"{base}{prefix}/search", params={"q": SECRET_WORD, "k": 50}, headers=headers).json()
    assert {hit["doc_id"] for hit in got["results"]} == visible
    for doc_id, _, text in DOCS:
        if doc_id in visible:
            continue
        # by its own text, by id filter, by metadata filter, and paged with k=1
        for body in (
            {"query": text, "k": 50},
            {"query": SECRET_WORD, "filters": {"doc_id": [doc_id]}},
            {"query": SECRET_WORD, "filters": {"doc_id": [doc_id], "metadata": {"access": "['hr']"}}},
            {"query": text[:6], "k": 1, "mode": "lexical"},
        ):
            hits = httpx.post(f"{base}{prefix}/search", json=body, headers=headers).json()["results"]
            assert doc_id not in {hit["doc_id"] for hit in hits}, body
        asked = httpx.post(f"{base}{prefix}/ask", json={"question": text, "k": 20}, headers=headers).json()
        assert doc_id not in {p["doc_id"] for p in asked["passages"]}
        assert asked["answer"] is None or asked["answer"]["doc_id"] in visible
        assert doc_id not in json.dumps(asked, ensure_ascii=False).replace(SECRET_WORD, "")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_documents_and_passages_hide_another_group(site: dict[str, Any], prefix: str) -> None:
    base, eng = site["base"], _as(site, "eng")
    admin = _as(site, "admin")
    visible = _visible({"eng"})
    listed = httpx.get(f"{base}{prefix}/documents", params={"limit": 1000}, headers=eng).json()
    assert listed["total"] == len(visible) and {d["id"] for d in listed["documents"]} == visible
    paged = [
        httpx.get(f"{base}{prefix}/documents", params={"offset": i, "limit": 1}, headers=eng).json()["documents"]
        for i in range(len(DOCS))
    ]
    assert {d["id"] for page in paged for d in page} == visible
    missing = httpx.get(f"{base}{prefix}/documents/no-such-doc", headers=eng)
    for doc_id in {d for d, _, _ in DOCS} - visible:
        hidden = httpx.get(f"{base}{prefix}/documents/{doc_id}", headers=eng)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["error"]["message"] == missing.json()["error"]["message"].replace("no-such-doc", doc_id)
        # its passages, by id: answered as a passage that does not exist
        passages = httpx.get(f"{base}{prefix}/documents/{doc_id}", headers=admin).json()["passages"]
        for passage in passages:
            got = httpx.get(f"{base}{prefix}/passages/{passage['passage_id']}", headers=eng)
            gone = httpx.get(f"{base}{prefix}/passages/999999", headers=eng)
            assert got.status_code == gone.status_code == 404
            assert got.json()["error"]["message"] == gone.json()["error"]["message"].replace(
                "999999", str(passage["passage_id"])
            )
        # a reader may not write: the same answer whether the document exists or not
        assert httpx.delete(f"{base}{prefix}/documents/{doc_id}", headers=eng).status_code == 403
        assert httpx.delete(f"{base}{prefix}/documents/no-such-doc", headers=eng).status_code == 403
    for doc_id in visible:
        assert httpx.get(f"{base}{prefix}/documents/{doc_id}", headers=eng).status_code == 200


def test_collections_a_key_may_not_read_do_not_exist_for_it(site: dict[str, Any]) -> None:
    base, outsider = site["base"], _as(site, "outsider")
    names = [c["name"] for c in httpx.get(f"{base}/v1/collections", headers=outsider).json()["collections"]]
    assert names == ["default"]
    assert [c["name"] for c in httpx.get(f"{base}/v1/collections", headers=_as(site, "eng")).json()["collections"]] == [
        "default",
        "team",
    ]
    for path in ("", "/search?q=x", "/documents", "/documents/pub", "/passages/1", "/tools"):
        team = httpx.get(f"{base}/v1/collections/team{path}", headers=outsider)
        nowhere = httpx.get(f"{base}/v1/collections/nowhere{path}", headers=outsider)
        assert team.status_code == nowhere.status_code == 404, path
        assert team.json()["error"]["message"] == nowhere.json()["error"]["message"].replace("nowhere", "team")
    posted = httpx.post(f"{base}/v1/collections/team/search", json={"query": SECRET_WORD}, headers=outsider)
    assert posted.status_code == 404
    # counts of the collections a key reads are of the documents it may read
    shown = {c["name"]: c for c in httpx.get(f"{base}/v1/collections", headers=_as(site, "hr")).json()["collections"]}
    assert shown["team"]["documents"] == len(_visible({"hr"})) and shown["team"]["right"] == "read"
    assert httpx.delete(f"{base}/v1/collections/team", headers=_as(site, "hr")).status_code == 403
    assert httpx.delete(f"{base}/v1/collections/team", headers=outsider).status_code == 404


def test_ops_endpoints_reveal_no_counts_without_admin(site: dict[str, Any]) -> None:
    base = site["base"]
    ready = httpx.get(f"{base}/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    assert httpx.get(f"{base}/readyz", headers=_as(site, "eng")).json() == {"status": "ready"}
    assert httpx.get(f"{base}/readyz", headers=_as(site, "admin")).json()["documents"] == len(DOCS)
    assert httpx.get(f"{base}/metrics").status_code == 401
    assert httpx.get(f"{base}/metrics", headers=_as(site, "eng")).status_code == 403
    metrics = httpx.get(f"{base}/metrics", headers=_as(site, "admin")).text
    assert 'zhsearch_documents{collection="team"}' in metrics
    assert "hr1" not in metrics and "nobody" not in metrics
    # a probe of a collection name makes no label
    httpx.get(f"{base}/v1/collections/probed-name/search", params={"q": "x"}, headers=_as(site, "admin"))
    assert "probed-name" not in httpx.get(f"{base}/metrics", headers=_as(site, "admin")).text


def test_requests_without_a_valid_key_are_refused(site: dict[str, Any]) -> None:
    base = site["base"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        assert httpx.get(f"{base}/v1/search", params={"q": SECRET_WORD}, headers=headers).status_code == 401
        assert httpx.get(f"{base}/v1/collections", headers=headers).status_code == 401
        assert httpx.post(f"{base}/mcp", json={}, headers=headers).status_code == 401


def test_a_change_of_access_takes_effect_at_once(site: dict[str, Any]) -> None:
    base, writer, eng = site["base"], _as(site, "writer"), _as(site, "eng")
    url = f"{base}/v1/collections/team"
    body = {"text": "臨時的預算報告：只給人事部。", "access": ["hr"]}
    assert httpx.put(f"{url}/documents/moving", json=body, headers=writer).status_code == 201
    try:
        assert httpx.get(f"{url}/documents/moving", headers=eng).status_code == 404
        assert httpx.put(f"{url}/documents/moving", json={**body, "access": ["eng"]}, headers=writer).status_code == 200
        assert httpx.get(f"{url}/documents/moving", headers=eng).status_code == 200
        hits = httpx.post(f"{url}/search", json={"query": "臨時的預算報告", "k": 50}, headers=eng).json()["results"]
        assert "moving" in {hit["doc_id"] for hit in hits}
        assert httpx.get(f"{url}/documents/moving", headers=_as(site, "hr")).status_code == 404
    finally:
        assert httpx.delete(f"{url}/documents/moving", headers=writer).status_code == 204


def test_bad_access_is_refused_and_changes_nothing(site: dict[str, Any]) -> None:
    base, writer = site["base"], _as(site, "writer")
    url = f"{base}/v1/collections/team/documents"
    for access in ("hr", [""], ["a b"], [1], ["x" * 65]):
        refused = httpx.post(url, json={"id": "bad", "text": "文字。", "access": access}, headers=writer)
        assert refused.status_code == 422, access
    both = httpx.post(
        url, json={"id": "bad", "text": "文字。", "access": ["hr"], "metadata": {"access": ["hr"]}}, headers=writer
    )
    assert both.status_code == 422
    assert httpx.get(f"{url}/bad", headers=writer).status_code == 404


def test_keys_file_holds_hashes_and_is_read_again(site: dict[str, Any]) -> None:
    base, keys_file = site["base"], site["keys_file"]
    text = keys_file.read_text()
    assert all(secret not in text for secret in site["secrets"].values())
    assert digest(site["secrets"]["eng"]) in text
    assert keys_file.stat().st_mode & 0o077 == 0
    late = add_key(keys_file, "late", groups=["eng"], collections={"default": "read"})
    try:
        deadline = time.monotonic() + 10
        while httpx.get(f"{base}/v1/documents", headers={"Authorization": f"Bearer {late}"}).status_code != 200:
            assert time.monotonic() < deadline, "a key added to the file was not taken"
            time.sleep(0.1)
    finally:
        remove_key(keys_file, "late")
    deadline = time.monotonic() + 10
    while httpx.get(f"{base}/v1/documents", headers={"Authorization": f"Bearer {late}"}).status_code != 401:
        assert time.monotonic() < deadline, "a key removed from the file still works"
        time.sleep(0.1)
    assert len(read_keys_file(keys_file)) == len(site["secrets"])


def _mcp(site: dict[str, Any], key: str, scenario: Callable[[ClientSession], Awaitable[None]]) -> None:
    async def run() -> None:
        with anyio.fail_after(60):
            async with (
                httpx2.AsyncClient(headers=_as(site, key), timeout=httpx2.Timeout(30)) as http,
                streamable_http_client(f"{site['base']}/mcp", http_client=http) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                await scenario(session)

    anyio.run(run)


@pytest.mark.parametrize("collection", [None, "default", "team"])
def test_mcp_tools_and_resources_never_show_another_group(site: dict[str, Any], collection: str | None) -> None:
    visible = _visible({"eng"})
    hidden = {d for d, _, _ in DOCS} - visible
    where = {} if collection is None else {"collection": collection}

    async def scenario(session: ClientSession) -> None:
        for mode in ("hybrid", "lexical", "dense"):
            found = await session.call_tool("search", {"query": SECRET_WORD, "k": 50, "mode": mode, **where})
            assert not found.is_error, found.content
            assert {hit["doc_id"] for hit in found.structured_content["results"]} == visible  # type: ignore[index]
        for doc_id in hidden:
            by_filter = await session.call_tool(
                "search", {"query": SECRET_WORD, "filters": {"doc_id": [doc_id]}, **where}
            )
            assert by_filter.structured_content["results"] == []  # type: ignore[index]
            text = next(t for d, _, t in DOCS if d == doc_id)
            asked = await session.call_tool("ask", {"question": text, "k": 20, **where})
            assert doc_id not in {p["doc_id"] for p in asked.structured_content["passages"]}  # type: ignore[index]
        name = collection or "default"
        listing = (await session.read_resource(f"zhsearch://collections/{name}/documents")).contents[0]
        assert isinstance(listing, TextResourceContents)
        assert {d["id"] for d in json.loads(listing.text)["documents"]} == visible
        if name == "default":
            plain = (await session.read_resource("zhsearch://documents")).contents[0]
            assert isinstance(plain, TextResourceContents)
            assert {d["id"] for d in json.loads(plain.text)["documents"]} == visible
        for doc_id in hidden:
            for uri in (f"zhsearch://collections/{name}/documents/{doc_id}", f"zhsearch://documents/{doc_id}"):
                with pytest.raises(MCPError, match="no document"):
                    await session.read_resource(uri)
        listed = (await session.read_resource("zhsearch://collections")).contents[0]
        assert isinstance(listed, TextResourceContents)
        assert [c["name"] for c in json.loads(listed.text)["collections"]] == ["default", "team"]

    _mcp(site, "eng", scenario)


def test_mcp_collections_a_key_may_not_read_do_not_exist_for_it(site: dict[str, Any]) -> None:
    async def scenario(session: ClientSession) -> None:
        team = await session.call_tool("search", {"query": SECRET_WORD, "collection": "team"})
        nowhere = await session.call_tool("search", {"query": SECRET_WORD, "collection": "nowhere"})
        assert team.is_error and nowhere.is_error
        assert team.content[0].text == nowhere.content[0].text.replace("nowhere", "team")  # type: ignore[union-attr]
        with pytest.raises(MCPError, match="no collection"):
            await session.read_resource("zhsearch://collections/team/documents")
        listed = (await session.read_resource("zhsearch://collections")).contents[0]
        assert isinstance(listed, TextResourceContents)
        assert [c["name"] for c in json.loads(listed.text)["collections"]] == ["default"]

    _mcp(site, "outsider", scenario)


# -- the property: every search agrees with a brute-force permission check ----------------------

GROUPS = ["a", "b", "c", "财务"]
ACCESS = st.one_of(st.none(), st.lists(st.sampled_from(GROUPS), max_size=3, unique=True))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveIndex]:
    folder = tmp_path_factory.mktemp("property") / "idx"
    build_index([Document("seed", "種子文件。")], folder, HashingEmbedder())
    live = LiveIndex.open(folder, HashingEmbedder())
    yield live
    live.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    accesses=st.lists(ACCESS, min_size=1, max_size=12),
    keys=st.lists(st.one_of(st.none(), st.frozensets(st.sampled_from(GROUPS), max_size=3)), min_size=1, max_size=4),
    k=st.integers(1, 15),
    ids=st.data(),
)
def test_every_search_agrees_with_a_brute_force_check(
    corpus: LiveIndex, accesses: list[list[str] | None], keys: list[frozenset[str] | None], k: int, ids: st.DataObject
) -> None:
    docs = [
        Document(f"d{i}", f"第{i}號文件談共同主題預算。", metadata={} if a is None else {"access": a})
        for i, a in enumerate(accesses)
    ]
    for old in [d.id for d in corpus.documents(0, 1000)[1] if d.id != "seed"]:
        corpus.delete(old)
    corpus.put_many(docs)
    metadata = {d.id: d.metadata for d in docs} | {"seed": {}}
    for groups in keys:
        allowed = {doc_id for doc_id, meta in metadata.items() if readable(meta, groups)}
        restricted = ids.draw(st.one_of(st.none(), st.frozensets(st.sampled_from(sorted(metadata)), max_size=4)))
        filters = Filters(doc_ids=restricted, groups=groups)
        admitted = allowed if restricted is None else allowed & restricted
        for mode in ("lexical", "dense", "hybrid"):
            hits = corpus.search("共同主題預算", k, mode, filters).hits  # type: ignore[arg-type]
            found = {hit.doc_id for hit in hits}
            assert found <= admitted, (mode, groups, found - admitted)
            matching = admitted - {"seed"} if mode == "lexical" else admitted
            assert len(hits) >= min(k, len(matching)), (mode, groups, len(hits), matching)
        total, listed = corpus.documents(0, 1000, Filters(groups=groups))
        assert total == len(allowed) and {d.id for d in listed} == allowed


# -- what the review found (issue 27) -------------------------------------------------------------


def _local(tmp_path: Path, keys_file: Path | None = None) -> tuple[Any, LiveIndex]:
    from fastapi.testclient import TestClient

    from index import Settings, Tuning
    from service.app import create_app

    build_index([Document("base", "基礎文件。")], tmp_path / "idx", HashingEmbedder())
    settings = Settings(index_dir=tmp_path / "idx", model="hashing", keys_file=keys_file)
    live = LiveIndex.open(tmp_path / "idx", HashingEmbedder(), Tuning.of(settings))
    return TestClient(create_app(settings, index=live), base_url="http://127.0.0.1"), live


def test_a_replacement_that_says_nothing_of_access_keeps_it(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    writer = {"Authorization": f"Bearer {add_key(keys, 'w', groups=[], collections={'default': 'write'})}"}
    eng = {"Authorization": f"Bearer {add_key(keys, 'e', groups=['eng'], collections={'default': 'read'})}"}
    test_client, live = _local(tmp_path, keys)
    with test_client as client:
        assert (
            client.put("/v1/documents/pay", json={"text": "薪資。", "access": ["hr"]}, headers=writer).status_code
            == 201
        )
        assert client.put("/v1/documents/pay", json={"text": "薪資更新。"}, headers=writer).status_code == 200
        assert client.get("/v1/documents/pay", headers=eng).status_code == 404
        again = {"id": "pay", "text": "薪資再更新。"}
        assert client.post("/v1/documents?replace=true", json=again, headers=writer).status_code == 201
        assert client.get("/v1/documents/pay", headers=eng).status_code == 404
        jsonl = json.dumps({"id": "pay", "text": "薪資第四版。"}, ensure_ascii=False).encode()
        files = {"file": ("pay.jsonl", jsonl, "application/jsonl")}
        assert client.post("/v1/documents?replace=true", files=files, headers=writer).status_code == 201
        assert client.get("/v1/documents/pay", headers=eng).status_code == 404
        # said outright: null opens it to every reader of the collection
        opened = {"text": "薪資公開。", "access": None}
        assert client.put("/v1/documents/pay", json=opened, headers=writer).status_code == 200
        assert client.get("/v1/documents/pay", headers=eng).status_code == 200
    live.close()


def test_access_in_an_exported_jsonl_record_is_its_access(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    writer = {"Authorization": f"Bearer {add_key(keys, 'w', groups=[], collections={'default': 'write'})}"}
    eng = {"Authorization": f"Bearer {add_key(keys, 'e', groups=['eng'], collections={'default': 'read'})}"}
    test_client, live = _local(tmp_path, keys)
    records = [
        {"id": "j1", "text": "年假規定。", "metadata": {"access": ["hr"]}},  # as GET /v1/documents/{id} shows it
        {"id": "j2", "text": "年假規定二。", "access": ["hr"]},
    ]
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()
    with test_client as client:
        files = {"file": ("export.jsonl", body, "application/jsonl")}
        assert client.post("/v1/documents", files=files, headers=writer).status_code == 201
        for doc_id in ("j1", "j2"):
            assert client.get(f"/v1/documents/{doc_id}", headers=eng).status_code == 404
            assert client.get(f"/v1/documents/{doc_id}", headers=writer).json()["metadata"] == {"access": ["hr"]}
    live.close()


def test_a_broken_keys_file_tells_a_caller_nothing_of_it(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    add_key(keys, "secret-team-name", groups=["hr"], collections={"default": "read"})
    test_client, live = _local(tmp_path, keys)
    with test_client as client:
        keys.write_text(keys.read_text().replace('"hr"', '"bad group!"'))
        for path in ("/v1/documents", "/readyz"):
            refused = client.get(path, headers={"Authorization": "Bearer guess"})
            if path == "/readyz":
                assert "secret-team-name" not in refused.text and str(keys) not in refused.text
                continue
            assert refused.status_code == 503
            assert "secret-team-name" not in refused.text and str(keys) not in refused.text
            assert "bad group" not in refused.text
        mcp = client.post("/mcp", json={}, headers={"Authorization": "Bearer guess"})
        assert mcp.status_code == 503 and "secret-team-name" not in mcp.text
    live.close()


def test_a_collection_deleted_under_a_long_request_closes_when_it_ends(tmp_path: Path) -> None:
    test_client, live = _local(tmp_path)
    with test_client as client:
        assert client.post("/v1/collections", json={"name": "slow"}).status_code == 201
        collections = client.app.state.collections  # type: ignore[attr-defined]
        with collections.using("slow") as index:
            collections.delete("slow", wait_s=0.1)  # gives up waiting: the request still running finishes
            index.put(Document("late", "刪除時仍在寫入的文件。"))
            assert [h.doc_id for h in index.search("刪除時仍在寫入").hits] == ["late"]
            assert (tmp_path / "collections" / "slow").exists()
        assert not (tmp_path / "collections" / "slow").exists()  # the last request out closed it
        assert client.get("/v1/collections/slow").status_code == 404
        assert client.post("/v1/collections", json={"name": "slow"}).status_code == 201
    live.close()


def test_mcp_over_http_never_falls_back_to_the_local_user(tmp_path: Path) -> None:
    from mcp.server.mcpserver.exceptions import ToolError

    from service.mcp_server import Single, create_mcp

    live = LiveIndex.open(
        build_index([Document("a", "文件。")], tmp_path / "idx", HashingEmbedder()).path.parent.parent,
        HashingEmbedder(),
    )
    server = create_mcp(lambda: Single(live), local=False)

    async def call() -> None:
        with pytest.raises(ToolError, match="no caller"):
            await server.call_tool("search", {"query": "文件"})

    anyio.run(call)
    live.close()
