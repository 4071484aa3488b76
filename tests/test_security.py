"""Uploads and writes that cannot stall, exhaust or open the server (issue 23): each probe of the
security review, reproduced, with the answer it gets now.

The bombs are made in the tests, small enough for CI; the slow PDF is the review's own shape
(pages that share one large content stream).
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from index import Document, HashingEmbedder, Settings, Tuning, build_index
from index.errors import InvalidInputError
from index.writing.live import LiveIndex
from service.app import create_app
from tests import server

LOCAL = "http://127.0.0.1"
KEY = {"Authorization": "Bearer k"}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveIndex]:
    build_index([Document("base", "黃浦區的基礎文件。講經濟發展。")], tmp_path / "idx", HashingEmbedder())
    opened = LiveIndex.open(tmp_path / "idx", HashingEmbedder())
    yield opened
    opened.close()


def _client(live: LiveIndex, **settings: Any) -> TestClient:
    values = {"index_dir": live.path, "model": "hashing", "api_key": "k"} | settings
    configured = Settings(**values)
    live.tuning = Tuning.of(configured)  # an index given to the app is served as it was opened
    return TestClient(create_app(configured, index=live), base_url=LOCAL)


def slow_pdf(pages: int = 10, stream_bytes: int = 2_000_000) -> bytes:
    """The review's PDF: every page draws one shared content stream of ``stream_bytes`` bytes."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    stream = DecodedStreamObject()
    op = b"(abcdefgh) Tj "
    stream.set_data(b"BT /F1 12 Tf " + op * (stream_bytes // len(op)) + b"ET")
    content = writer._add_object(stream)
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    for _ in range(pages):
        page = writer.add_blank_page(200, 200)
        page[NameObject("/Contents")] = content
        fonts = DictionaryObject({NameObject("/F1"): font})
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _png() -> bytes:
    """A valid 1x1 PNG."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0\0")) + chunk(b"IEND", b"")


def docx_bomb(member_bytes: int) -> bytes:
    """A real DOCX whose one picture (referenced, so a reader loads it) is ``member_bytes`` zeros,
    deflated to a few hundred KB: the review's bomb, at a size CI can make."""
    import docx

    first = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("一份看來普通的文件。")
    document.add_picture(io.BytesIO(_png()))
    document.save(first)
    out = io.BytesIO()
    with zipfile.ZipFile(first) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in source.infolist():
            if not item.filename.startswith("word/media/"):
                archive.writestr(item, source.read(item.filename))
                continue
            with archive.open(item.filename, "w", force_zip64=True) as member:
                zeros = bytes(1024 * 1024)
                for _ in range(member_bytes // len(zeros)):
                    member.write(zeros)
    return out.getvalue()


def test_a_slow_pdf_stalls_nothing_and_stops_at_the_time_budget(tmp_path: Path) -> None:
    """An 8 KB-class PDF once froze every request for 28 s (parsed on the event loop)."""
    pdf = slow_pdf()
    build_index([Document("base", "基礎文件。")], tmp_path / "idx", HashingEmbedder())
    env = {"ZHSEARCH_MODEL": "hashing", "ZHSEARCH_API_KEY": "k", "ZHSEARCH_PARSE_SECONDS": "2"}
    with server.serving(tmp_path / "idx", tmp_path / "serve.log", **env) as base:
        answer: dict[str, httpx.Response] = {}

        def upload() -> None:
            files = {"file": ("slow.pdf", pdf, "application/pdf")}
            answer["r"] = httpx.post(f"{base}/v1/documents", files=files, headers=KEY, timeout=120)

        began = time.monotonic()
        worker = threading.Thread(target=upload)
        worker.start()
        worst = 0.0
        while worker.is_alive():
            t0 = time.monotonic()
            assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.05)
        worker.join()
        took = time.monotonic() - began
        response = answer["r"]
        assert response.status_code == 413, response.text
        assert "ZHSEARCH_PARSE_SECONDS" in response.json()["error"]["message"]
        assert took < 20, took  # the budget (2 s) plus the fork, not the parse's own 28 s
        assert worst < 1.0, worst  # /healthz was never held up behind the parse
        assert httpx.get(f"{base}/v1/documents/slow", timeout=10).status_code == 404  # nothing written


def test_a_docx_bomb_is_refused_from_the_zip_directory(live: LiveIndex) -> None:
    """1.5 MB holding 1.5 GB of zeros was accepted and took the server from 2.2 to 5.3 GB."""
    import resource

    bomb = docx_bomb(150 * 1024 * 1024)
    assert len(bomb) < 1_000_000
    with _client(live) as client:
        small = {"file": ("small.docx", docx_bomb(0), "application/octet-stream")}
        assert client.post("/v1/documents", files=small, headers=KEY).status_code == 201  # warm: imports, fork server
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        files = {"file": ("bomb.docx", bomb, "application/octet-stream")}
        response = client.post("/v1/documents", files=files, headers=KEY)
        assert response.status_code == 413, response.text
        message = response.json()["error"]["message"]
        assert "ZHSEARCH_MAX_MEMBER_BYTES" in message and "word/media/" in message
        assert client.get("/v1/documents/bomb").status_code == 404
    grew_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grew_kb < 100 * 1024, grew_kb  # never inflated in this process (the zeros would be 150 MB)


def test_the_memory_budget_kills_a_parse_that_grows_past_it() -> None:
    from index.errors import TooLargeError
    from index.text.budgets import Budgets
    from index.text.sandbox import parse_isolated

    # the directory check is off (limits far above the bomb): only the address-space limit stops it
    budgets = Budgets(unpacked_bytes=10**12, member_bytes=10**12, parse_memory_bytes=900 * 1024 * 1024)
    with pytest.raises(TooLargeError, match="ZHSEARCH_PARSE_MEMORY_MB"):
        parse_isolated("bomb.docx", docx_bomb(1200 * 1024 * 1024), None, budgets)


def test_writes_fail_closed(live: LiveIndex, caplog: pytest.LogCaptureFixture) -> None:
    doc = {"id": "x", "text": "寫入測試。"}
    with caplog.at_level(logging.WARNING, logger="zhsearch.api"), _client(live, api_key=None, read_key="r") as client:
        # only a read key: every write is refused, whatever it carries
        refused = client.post("/v1/documents", json=doc, headers={"Authorization": "Bearer r"})
        assert refused.status_code == 403 and "ZHSEARCH_API_KEY" in refused.json()["error"]["message"]
        assert client.delete("/v1/documents/base", headers={"Authorization": "Bearer r"}).status_code == 403
        assert client.get("/v1/documents/base", headers={"Authorization": "Bearer r"}).status_code == 200
    assert any("every write is refused" in r.message for r in caplog.records)
    with _client(live, api_key=None, host="0.0.0.0") as client:  # a public address without an API key
        assert client.post("/v1/documents", json=doc).status_code == 403
    for empty in ("", "  "):
        with pytest.raises(ValueError, match="set but empty"):
            Settings(api_key=empty)
        with pytest.raises(ValueError, match="set but empty"):
            Settings(read_key=empty)


def test_host_and_origin_are_checked_on_every_route(live: LiveIndex) -> None:
    with _client(live) as client:
        evil = client.get("/v1/documents", headers={"Host": "evil.example"})
        assert evil.status_code == 421 and evil.json()["error"]["code"] == "misdirected_request"
        assert client.get("/v1/documents", headers={"Host": "localhost:8000"}).status_code == 200
        assert client.get("/v1/documents", headers={"Host": "[::1]:8000"}).status_code == 200
        form = {"file": ("a.txt", "跨站表單。".encode(), "text/plain")}
        cross = client.post("/v1/documents", files=form, headers={**KEY, "Origin": "http://evil.example"})
        assert cross.status_code == 403 and cross.json()["error"]["code"] == "forbidden"
        same = client.post("/v1/documents", files=form, headers={**KEY, "Origin": "http://127.0.0.1:8000"})
        assert same.status_code == 201, same.text
        # no CORS unless configured
        assert (
            "access-control-allow-origin" not in client.get("/v1/documents", headers={"Origin": "http://a.b"}).headers
        )
    with _client(live, allowed_hosts=["search.example"], cors_origins=["https://app.example"]) as client:
        assert client.get("/v1/documents", headers={"Host": "search.example"}).status_code == 200
        assert client.get("/v1/documents", headers={"Host": "127.0.0.1"}).status_code == 421
        preflight = client.options(
            "/v1/search",
            headers={
                "Host": "search.example",
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
            },
        )
        assert preflight.headers.get("access-control-allow-origin") == "https://app.example"


class _GatedEmbedder(HashingEmbedder):
    """Documents containing 大 wait for ``release`` while being embedded."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.waiting = threading.Event()

    def encode_documents(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if any("大" in t for t in texts):
            self.waiting.set()
            assert self.release.wait(30)
        return super().encode_documents(texts, batch_size)


def test_a_big_document_embedding_holds_up_no_other_write(tmp_path: Path) -> None:
    embedder = _GatedEmbedder()
    build_index([Document("base", "基礎文件。")], tmp_path, embedder)
    live = LiveIndex.open(tmp_path, embedder)
    big = threading.Thread(target=live.put, args=(Document("big", "大文件。" * 50),))
    big.start()
    assert embedder.waiting.wait(30)  # the big document is being embedded
    began = time.monotonic()
    live.put(Document("small", "小文件。"))  # not behind the big one
    assert time.monotonic() - began < 5
    embedder.release.set()
    big.join(30)
    assert {"big", "small", "base"} <= set(live.snapshot.documents)
    assert live.health()["consistent"]
    live.close()


def _nested_pdf() -> bytes:
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, NameObject

    writer = PdfWriter()
    stream = DecodedStreamObject()
    stream.set_data(b"BT " + b"[" * 50_000 + b"]" * 50_000 + b" TJ ET")
    page = writer.add_blank_page(200, 200)
    page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("deep.json", ("[" * 100_000 + "]" * 100_000).encode()),
        ("deep.jsonl", ('{"_id": "a", "text": "x", "m": ' + "[" * 100_000 + "]" * 100_000 + "}").encode()),
        ("deep.pdf", _nested_pdf()),
    ],
)
def test_deep_nesting_is_a_bad_document_not_a_500(live: LiveIndex, name: str, content: bytes) -> None:
    with _client(live) as client:
        response = client.post(
            "/v1/documents", files={"file": (name, content, "application/octet-stream")}, headers=KEY
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "bad_document"


def test_metadata_has_budgets(live: LiveIndex) -> None:
    with _client(live) as client:
        big = client.post("/v1/documents", json={"text": "文。", "metadata": {"v": "x" * 10_000_000}}, headers=KEY)
        assert big.status_code == 413 and "ZHSEARCH_MAX_METADATA_BYTES" in big.json()["error"]["message"]
        many = client.post(
            "/v1/documents", json={"text": "文。", "metadata": {str(i): i for i in range(100_000)}}, headers=KEY
        )
        assert many.status_code == 413 and "ZHSEARCH_MAX_METADATA_FIELDS" in many.json()["error"]["message"]
        deep: Any = "x"
        for _ in range(20):
            deep = {"k": deep}
        nested = client.put("/v1/documents/d", json={"text": "文。", "metadata": deep}, headers=KEY)
        assert nested.status_code == 422 and "ZHSEARCH_MAX_METADATA_DEPTH" in nested.json()["error"]["message"]
        assert client.get("/v1/documents").json()["total"] == 1  # nothing was written


def test_error_shapes(live: LiveIndex) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(30):
            yield b" " * 1024

    with _client(live, max_upload_bytes=10_000) as client:
        for method, path in (("PUT", "/v1/documents/a"), ("POST", "/v1/search")):
            headers = {**KEY, "Content-Type": "application/json"}
            response = client.request(method, path, content=chunks(), headers=headers)
            assert response.status_code == 413, (path, response.text)
            assert response.json()["error"]["code"] == "too_large"
    with _client(live) as client:
        body = '{"text": "x", "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}"
        nested = client.put("/v1/documents/a", content=body, headers={**KEY, "Content-Type": "application/json"})
        assert nested.status_code == 400 and nested.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("bad", [".", "..", "abc\u202etxt", "trailing ", " leading", "zero\u200bwidth"])
def test_ids_a_url_cannot_carry_are_refused(live: LiveIndex, bad: str) -> None:
    with pytest.raises(InvalidInputError, match="not usable"):
        live.put(Document(bad, "內容。"))
    with _client(live) as client:
        response = client.post("/v1/documents", json={"id": bad, "text": "內容。"}, headers=KEY)
        assert response.status_code == 422, response.text


def test_a_path_cannot_forge_a_log_line(live: LiveIndex, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="zhsearch.api"), _client(live) as client:
        client.get("/v1/passages/1%0a2026-12-04 00:00:00,000 INFO forged [request_id=forged]")
    lines = [r.getMessage() for r in caplog.records if r.name == "zhsearch.api" and "/v1/passages" in r.getMessage()]
    assert lines and all("\n" not in line for line in lines)
    assert "\\n2026-12-04" in lines[0]


def test_mcp_tools_refuse_undeclared_arguments(live: LiveIndex) -> None:
    import anyio
    from mcp.server.mcpserver.exceptions import ToolError

    from service.mcp_server import Single, create_mcp

    server = create_mcp(lambda: Single(live))

    async def call() -> None:
        with pytest.raises(ToolError, match="unknown argument"):
            await server.call_tool("search", {"query": "經濟", "top_k": 3})

    anyio.run(call)


def test_index_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = build_index([Document("a", "私人文件。")], tmp_path / "idx", HashingEmbedder()).path
    assert os.stat(tmp_path / "idx").st_mode & 0o077 == 0
    assert os.stat(path).st_mode & 0o077 == 0


def test_uploads_still_read_every_format(live: LiveIndex) -> None:
    """The sandboxed parse returns what the in-process one did: text, title, metadata."""
    records = "\n".join(
        json.dumps({"_id": f"r{i}", "text": f"第{i}條。", "tag": "t"}, ensure_ascii=False) for i in range(3)
    )
    with _client(live) as client:
        files = [
            ("file", ("notes.md", "# 筆記\n\n內容一。".encode(), "text/markdown")),
            ("file", ("c.jsonl", records.encode(), "x")),
        ]
        response = client.post("/v1/documents", files=files, headers=KEY)
        assert response.status_code == 201, response.text
        assert {d["id"] for d in response.json()["documents"]} == {"notes", "r0", "r1", "r2"}
        assert client.get("/v1/documents/r1").json()["metadata"] == {"tag": "t"}
