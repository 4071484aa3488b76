"""The MCP server through the SDK's own clients: `zhsearch mcp` over stdio, and `/mcp` of a real `zhsearch serve`.

Both run with the fake embedder (``ZHSEARCH_MODEL=hashing``) over the traditional-script seed document.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import TextContent, TextResourceContents

from index import HashingEmbedder, build_index, load_paths
from service.tools import DESCRIPTIONS, tool_definitions
from tests import server

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "000_faeb4e7ef88eceb9.txt"
DOC_ID = SEED.stem
FAKE_MODEL = {"ZHSEARCH_MODEL": "hashing"}
TIMEOUT = 30


def _run(test: Callable[[], Awaitable[None]], timeout: float = TIMEOUT) -> None:
    async def bounded() -> None:
        with anyio.fail_after(timeout):
            await test()

    anyio.run(bounded)


@pytest.fixture(scope="module")
def seed_text() -> str:
    return load_paths([SEED])[0].text


def _index(path: Path) -> Path:
    build_index(load_paths([SEED]), path, HashingEmbedder())
    return path


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _index(tmp_path_factory.mktemp("mcp-index"))


def _passage_with(results: list[dict[str, Any]], fragment: str) -> dict[str, Any]:
    found = [hit for hit in results if fragment in hit["text"]]
    assert found, [hit["text"][:40] for hit in results]
    return found[0]


async def _check_search(session: ClientSession, seed_text: str) -> None:
    result = await session.call_tool("search", {"query": "互联网诊疗", "k": 3})
    assert not result.is_error, result.content
    body = result.structured_content
    assert body is not None and body["query"] == "互联网诊疗" and body["mode"] == "hybrid"
    assert [hit["rank"] for hit in body["results"]] == list(range(1, len(body["results"]) + 1))
    hit = _passage_with(body["results"], "網際網路診療")
    assert hit["doc_id"] == DOC_ID and hit["title"] and isinstance(hit["passage_id"], int)
    assert seed_text[hit["start"] : hit["end"]] == hit["text"]
    assert "網際網路診療" in [hit["text"][a:b] for a, b in hit["highlights"]]
    # Clients without structured output get the same JSON as text.
    assert isinstance(result.content[0], TextContent)
    assert json.loads(result.content[0].text) == body


def test_stdio_tools_and_resources(index_dir: Path, seed_text: str, tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "service.cli", "mcp", "--index-dir", str(index_dir)],
        env=FAKE_MODEL,
        cwd=ROOT,
    )
    log = tmp_path / "mcp-stderr.log"

    async def scenario() -> None:
        with log.open("w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
                init = await session.initialize()
                assert init.server_info.name == "zhsearch"

                tools = {tool.name: tool for tool in (await session.list_tools()).tools}
                assert set(tools) == {"search", "ask"}
                for name, tool in tools.items():
                    assert tool.description == DESCRIPTIONS[name]
                search_schema = tools["search"].input_schema
                assert set(search_schema["properties"]) == {"query", "k", "mode", "filters", "collection"}
                assert search_schema["required"] == ["query"]
                assert search_schema["properties"]["mode"]["enum"] == ["dense", "lexical", "hybrid"]
                # The MCP tools take what /v1/tools advertises (they once took fewer for ask), and the
                # collection, which the API names in its path.
                for name, definition in ((d.function.name, d.function) for d in tool_definitions()):
                    advertised = {*definition.parameters["properties"], "collection"}
                    assert set(tools[name].input_schema["properties"]) == advertised
                assert tools["search"].output_schema is not None

                await _check_search(session, seed_text)

                filtered = await session.call_tool(
                    "search", {"query": "互联网诊疗", "mode": "lexical", "filters": {"doc_id": ["elsewhere"]}}
                )
                assert not filtered.is_error and filtered.structured_content is not None
                assert filtered.structured_content["mode"] == "lexical"
                assert filtered.structured_content["results"] == []

                asked = await session.call_tool("ask", {"question": "上半年地区生产总值是多少", "k": 3})
                assert not asked.is_error, asked.content
                answer = asked.structured_content
                assert answer is not None and set(answer) == {"question", "mode", "answer", "passages", "took_ms"}
                assert answer["passages"] and all(p["doc_id"] == DOC_ID for p in answer["passages"])
                if answer["answer"] is not None:
                    a = answer["answer"]
                    assert seed_text[a["start"] : a["end"]] == a["text"]

                # Invalid calls are tool errors with a message to act on; the server keeps serving.
                invalid: list[tuple[dict[str, Any], str]] = [
                    ({"query": ""}, "the query is empty"),
                    ({"query": "   "}, "the query is empty"),
                    ({"query": "诊疗", "k": 0}, "k must be between 1 and 100"),
                    ({"query": "诊疗", "k": 101}, "k must be between 1 and 100"),
                    ({"query": "诊疗", "mode": "fuzzy"}, "mode"),
                ]
                for arguments, message in invalid:
                    bad = await session.call_tool("search", arguments)
                    assert bad.is_error, arguments
                    assert isinstance(bad.content[0], TextContent) and message in bad.content[0].text
                bad_ask = await session.call_tool("ask", {"question": ""})
                assert bad_ask.is_error and isinstance(bad_ask.content[0], TextContent)
                assert "the query is empty" in bad_ask.content[0].text

                resources = (await session.list_resources()).resources
                assert [str(r.uri) for r in resources] == ["zhsearch://collections", "zhsearch://documents"]
                listed = (await session.read_resource("zhsearch://collections")).contents[0]
                assert isinstance(listed, TextResourceContents)
                assert [c["name"] for c in json.loads(listed.text)["collections"]] == ["default"]
                listing = (await session.read_resource("zhsearch://documents")).contents[0]
                assert isinstance(listing, TextResourceContents) and listing.mime_type == "application/json"
                documents = json.loads(listing.text)
                assert documents["total"] == 1
                (doc,) = documents["documents"]
                assert doc["id"] == DOC_ID and doc["title"].startswith("黃浦區") and doc["passages"] > 0
                assert "metadata" in doc

                templates = (await session.list_resource_templates()).resource_templates
                assert [t.uri_template for t in templates] == [
                    "zhsearch://documents/{doc_id}",
                    "zhsearch://collections/{collection}/documents",
                    "zhsearch://collections/{collection}/documents/{doc_id}",
                ]
                text = (await session.read_resource(f"zhsearch://documents/{DOC_ID}")).contents[0]
                assert isinstance(text, TextResourceContents) and text.text == seed_text
                with pytest.raises(MCPError, match="no document"):
                    await session.read_resource("zhsearch://documents/missing")

                await _check_search(session, seed_text)  # still serving after the errors

    _run(scenario)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def _recording_client(statuses: list[int], token: str | None = None) -> httpx2.AsyncClient:
    async def record(response: httpx2.Response) -> None:
        statuses.append(response.status_code)

    headers = {"Authorization": f"Bearer {token}"} if token else None
    return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(TIMEOUT), event_hooks={"response": [record]})


async def _http_session_check(url: str, seed_text: str, token: str | None = None) -> None:
    statuses: list[int] = []
    async with (
        _recording_client(statuses, token) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = (await session.list_tools()).tools
        assert {tool.name for tool in tools} == {"search", "ask"}
        await _check_search(session, seed_text)
    assert statuses and all(status < 300 for status in statuses), statuses  # no redirect, no error


def test_streamable_http(tmp_path: Path, seed_text: str) -> None:
    index_dir = _index(tmp_path / "index")
    with server.serving(index_dir, tmp_path / "server.log", **FAKE_MODEL) as base:
        _run(lambda: _http_session_check(f"{base}/mcp", seed_text))
        assert httpx.get(f"{base}/openapi.json").json()["paths"].keys().isdisjoint({"/mcp", "/mcp/"})
        assert 'route="/mcp"' in httpx.get(f"{base}/metrics").text
        # DNS-rebinding refusals come in the API's error shape, not the SDK's plain text
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        accept = {"Accept": "application/json, text/event-stream"}
        rebound = httpx.post(f"{base}/mcp", json=ping, headers={**accept, "Host": "evil.example"})
        assert rebound.status_code == 421 and rebound.json()["error"]["code"] == "misdirected_request"
        origin = httpx.post(f"{base}/mcp", json=ping, headers={**accept, "Origin": "http://evil.example"})
        assert origin.status_code == 403 and origin.json()["error"]["code"] == "forbidden"


def test_streamable_http_read_key(tmp_path: Path, seed_text: str) -> None:
    index_dir = _index(tmp_path / "index")
    keys = {"ZHSEARCH_READ_KEY": "reader-key", "ZHSEARCH_API_KEY": "writer-key"}
    with server.serving(index_dir, tmp_path / "server.log", **FAKE_MODEL, **keys) as base:
        url = f"{base}/mcp"
        refused = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        assert httpx.post(url, headers={"Authorization": "Bearer wrong"}, json={}).status_code == 401
        assert httpx.get(f"{base}/v1/search", params={"q": "诊疗"}).status_code == 401  # the same rule as the API

        async def without_key() -> None:
            statuses: list[int] = []
            async with (
                _recording_client(statuses) as http,
                streamable_http_client(url, http_client=http) as (read, write),
                ClientSession(read, write) as session,
            ):
                with pytest.raises(MCPError):
                    await session.initialize()
            assert statuses == [401]

        _run(without_key)
        _run(lambda: _http_session_check(url, seed_text, token="reader-key"))
        _run(lambda: _http_session_check(url, seed_text, token="writer-key"))
