"""Every reader of an index folder sees every acknowledged write: the server's own, and those of
read-only openers beside it (the CLI, `zhsearch mcp`, eval), before and after the server stops.

Live writes keep their vectors in SQLite until a checkpoint folds them into the FAISS files; a
read-only opener once loaded only the checkpoint, and dense search failed with FAISS's
``key 43 not found`` after a single write through the API (issue 22).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from index import Document, HashingEmbedder, Searcher, Tuning, build_index
from index.writing.live import LiveIndex
from tests import server

ROOT = Path(__file__).resolve().parent.parent
MODES = ("hybrid", "dense", "lexical")
DOCS = [
    Document("rules", "垃圾分類規定\n\n乾垃圾與濕垃圾分開投放,違者罰款兩百元。", title="垃圾分類規定"),
    Document("hours", "開放時間\n\n圖書館週一至週五上午九點開放,週末休館。", title="開放時間"),
]
NEW = {"id": "hotline", "title": "清潔隊", "text": "清潔隊專線電話是 1999,晚間六點至九點收運垃圾。"}


def _ids(searcher: Searcher, query: str, mode: str) -> list[str]:
    return [hit.doc_id for hit in searcher.search(query, 5, mode).hits]  # type: ignore[arg-type]


def test_a_reader_opened_after_live_writes_sees_them_in_every_mode(tmp_path: Path) -> None:
    embedder = HashingEmbedder()
    build_index(DOCS, tmp_path, embedder)
    live = LiveIndex.open(tmp_path, embedder)
    live.put(Document(NEW["id"], NEW["text"], NEW["title"]))
    reader = Searcher.load(tmp_path, embedder)  # beside the server, as the CLI and `zhsearch mcp` do
    for mode in MODES:
        assert _ids(reader, "清潔隊專線", mode)[0] == "hotline", mode
    live.close()
    after = Searcher.load(tmp_path, embedder)  # the server stopped: the vectors are still only in SQLite
    for mode in MODES:
        assert _ids(after, "清潔隊專線", mode)[0] == "hotline", mode
    health = after.health()
    assert health["documents"] == 3 and health["consistent"], health
    reader.close()
    after.close()


def test_a_long_lived_reader_follows_writes_deletes_and_checkpoints(tmp_path: Path) -> None:
    embedder = HashingEmbedder()
    build_index(DOCS, tmp_path, embedder)
    reader = Searcher.load(tmp_path, embedder)
    assert "hotline" not in _ids(reader, "清潔隊專線", "dense")
    live = LiveIndex.open(tmp_path, embedder, Tuning(merge_vectors=0))  # every write makes a checkpoint
    live.put(Document(NEW["id"], NEW["text"], NEW["title"]))
    assert live.checkpoints >= 1
    for mode in MODES:
        assert _ids(reader, "清潔隊專線", mode)[0] == "hotline", mode
    assert reader.documents()[0] == 3 and reader.document("hotline").text == NEW["text"]
    live.delete("hotline")
    for mode in MODES:
        assert "hotline" not in _ids(reader, "清潔隊專線", mode), mode
    assert reader.documents()[0] == 2
    live.close()
    reader.close()


def _cli_search(index_dir: Path, query: str, mode: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "search", query, "--mode", mode, "--json", "--index-dir", str(index_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results: list[dict[str, object]] = json.loads(done.stdout)["results"]
    return results


def test_serve_then_cli_and_mcp_read_every_write(tmp_path: Path, real_embedder) -> None:
    """The issue's steps with the real model: serve, write through the API, search from the CLI and
    from `zhsearch mcp` (one session started before the write) in every mode, before and after the
    server stops."""
    index_dir = tmp_path / "index"
    build_index(DOCS, index_dir, real_embedder)
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "service.cli", "mcp", "--index-dir", str(index_dir)], cwd=ROOT
    )

    async def mcp_ids(session: ClientSession, mode: str) -> list[str]:
        result = await session.call_tool("search", {"query": "清潔隊專線", "k": 5, "mode": mode})
        assert not result.is_error, result.content
        assert result.structured_content is not None
        return [hit["doc_id"] for hit in result.structured_content["results"]]

    def cli_ids(mode: str) -> list[object]:
        return [hit["doc_id"] for hit in _cli_search(index_dir, "清潔隊專線", mode)]

    async def scenario() -> None:
        with (tmp_path / "mcp.log").open("w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                assert "hotline" not in await mcp_ids(session, "hybrid")  # loaded before the write
                with server.serving(index_dir, tmp_path / "serve.log", ZHSEARCH_API_KEY="k") as base:
                    created = httpx.post(
                        f"{base}/v1/documents", json=NEW, headers={"Authorization": "Bearer k"}, timeout=60
                    )
                    assert created.status_code == 201, created.text
                    for mode in MODES:
                        assert (await mcp_ids(session, mode))[0] == "hotline", mode
                        assert (await anyio.to_thread.run_sync(cli_ids, mode))[0] == "hotline", mode
                for mode in MODES:  # the server has stopped
                    assert (await mcp_ids(session, mode))[0] == "hotline", mode
                    assert (await anyio.to_thread.run_sync(cli_ids, mode))[0] == "hotline", mode

    anyio.run(scenario)


def test_a_one_line_document_is_searchable(tmp_path: Path) -> None:
    """It was accepted with 0 passages (its line became its title) and could never be found."""
    embedder = HashingEmbedder()
    build_index(DOCS, tmp_path, embedder)
    live = LiveIndex.open(tmp_path, embedder)
    written = live.put(Document("one", "資源回收車每週二、四、六停靠社區北門"))
    assert len(written.document.passage_ids) == 1
    for mode in MODES:
        assert _ids(live, "资源回收车停靠", mode)[0] == "one", mode
    live.close()


def test_an_answer_names_the_page_of_its_sentence_not_the_passages(tmp_path: Path) -> None:
    from index.retrieval.answer import ask

    page1 = "第一頁的內容講區域經濟發展。"
    page2 = "黃浦區上半年地區生產總值為一千二百億元。"
    text = page1 + page2  # one paragraph, one passage, over two pages
    doc = Document("report", text, "報告", {"page_offsets": [0, len(page1)], "pages": 2}, format="pdf")
    build_index([doc], tmp_path, HashingEmbedder())
    reader = Searcher.load(tmp_path, HashingEmbedder())
    result = ask(reader, "上半年地区生产总值是多少", 3)
    assert result.hits[0].pages == [1, 2]
    assert result.answer is not None and result.answer.text == page2
    assert result.answer.pages == [2]
    reader.close()
