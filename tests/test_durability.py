"""A real server process: SIGKILL in the middle of uploads, and searches during a stream of updates."""

from __future__ import annotations

import json
import random
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from index import Document, HashingEmbedder, Tuning, build_index
from tests import server

FAKE_MODEL = {"ZHSEARCH_MODEL": "hashing"}


def _base_index(path: Path) -> Path:
    build_index([Document("base", "黃浦區的基礎文件。講經濟發展。")], path, HashingEmbedder())
    return path


def _document(i: int) -> dict[str, str]:
    body = "".join(f"第{n}段講述編號{i}號的事情,內容充實完整。" for n in range(40))
    return {"id": f"doc{i}", "title": f"文件{i}", "text": f"唯一標記甲{i}乙。{body}"}


def _kill_during_writes(
    index_dir: Path,
    log: Path,
    env: dict[str, str],
    write: Callable[[httpx.Client, int], httpx.Response],
    *,
    writes: int,
    at_least: int,
    wait_s: float,
    jitter_s: float,
) -> list[int]:
    """Serve, send writes 0, 1, 2, ... until ``at_least`` are acknowledged, SIGKILL the server a random
    moment later; returns the numbers of the writes it acknowledged (201)."""
    port = server.free_port()
    base = f"http://127.0.0.1:{port}"
    process = server.start(index_dir, log, port, **env)
    acknowledged: list[int] = []
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            for n in range(writes):
                if stop.is_set():
                    return
                try:
                    response = write(client, n)
                except httpx.TransportError:
                    return  # the server died mid-request: this one was never acknowledged
                if response.status_code == 201:
                    acknowledged.append(n)

    try:
        server.wait_healthy(base, log)
        writer = threading.Thread(target=send)
        writer.start()
        deadline = time.monotonic() + wait_s
        while len(acknowledged) < at_least and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(random.uniform(0.0, jitter_s))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        stop.set()
        writer.join(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    return acknowledged


def test_sigkill_mid_upload_loses_nothing_acknowledged(tmp_path: Path) -> None:
    index_dir = _base_index(tmp_path / "index")
    log = tmp_path / "server.log"
    numbers = _kill_during_writes(
        index_dir,
        log,
        FAKE_MODEL,
        lambda client, i: client.post("/v1/documents", json=_document(i)),
        writes=500,
        at_least=5,
        wait_s=30,
        jitter_s=0.3,
    )
    acknowledged = [f"doc{i}" for i in numbers]
    assert 5 <= len(acknowledged) < 500, log.read_text()

    with server.serving(index_dir, log, **FAKE_MODEL) as restarted, httpx.Client(base_url=restarted) as client:
        assert client.get("/readyz").status_code == 200
        listed = {d["id"] for d in client.get("/v1/documents", params={"limit": 1000}).json()["documents"]}
        assert set(acknowledged) <= listed
        for doc_id in acknowledged:
            i = int(doc_id.removeprefix("doc"))
            assert client.get(f"/v1/documents/{doc_id}").status_code == 200
            hits = client.get("/v1/search", params={"q": f"唯一标记甲{i}乙", "k": 1, "mode": "lexical"}).json()
            assert hits["results"][0]["doc_id"] == doc_id


def test_searches_during_updates_see_whole_versions(tmp_path: Path) -> None:
    index_dir = _base_index(tmp_path / "index")
    errors: list[str] = []
    done = threading.Event()
    searches = {"count": 0}

    def version_text(v: int) -> str:
        return "".join(f"並發測試第{n}段,屬於版本{v}號,內容保持一致。" for n in range(12))

    with server.serving(index_dir, tmp_path / "server.log", **FAKE_MODEL) as base:

        def reader() -> None:
            with httpx.Client(base_url=base, timeout=30) as client:
                for _ in range(2000):
                    if done.is_set():
                        return
                    response = client.get("/v1/search", params={"q": "并发测试", "k": 50, "mode": "lexical"})
                    if response.status_code != 200:
                        errors.append(f"search {response.status_code}: {response.text[:200]}")
                        return
                    versions = {
                        m.group(1)
                        for hit in response.json()["results"]
                        if hit["doc_id"] == "cc"
                        for m in [re.search(r"版本(\d+)號", hit["text"])]
                        if m
                    }
                    if len(versions) > 1:
                        errors.append(f"mixed versions in one result: {sorted(versions)}")
                    searches["count"] += 1

        readers = [threading.Thread(target=reader) for _ in range(3)]
        for thread in readers:
            thread.start()
        with httpx.Client(base_url=base, timeout=30) as client:
            for v in range(15):
                response = client.put("/v1/documents/cc", json={"text": version_text(v)})
                if response.status_code not in (200, 201):
                    errors.append(f"put {response.status_code}: {response.text[:200]}")
        done.set()
        for thread in readers:
            thread.join(timeout=60)
    assert not errors, errors[:5]
    assert searches["count"] > 10


def _batch(b: int, size: int = 5) -> bytes:
    lines = [json.dumps({"_id": f"b{b}-{n}", **_document(b * 100 + n)}, ensure_ascii=False) for n in range(size)]
    return "\n".join(lines).encode()


def _present(client: httpx.Client) -> set[str]:
    return {d["id"] for d in client.get("/v1/documents", params={"limit": 1000}).json()["documents"]}


def test_sigkill_during_batches_and_checkpoints(tmp_path: Path) -> None:
    """Batches of 5 documents while vector checkpoints come every few writes (ZHSEARCH_MERGE_VECTORS=40),
    killed at a random moment: every acknowledged batch is whole after the restart, every batch is all or
    nothing, and the index is consistent (/readyz)."""
    index_dir = _base_index(tmp_path / "index")
    log = tmp_path / "server.log"
    env = {**FAKE_MODEL, "ZHSEARCH_MERGE_VECTORS": "40"}

    def batch(client: httpx.Client, b: int) -> httpx.Response:
        return client.post("/v1/documents", files=[("file", (f"batch{b}.jsonl", _batch(b), "application/jsonl"))])

    acknowledged = _kill_during_writes(index_dir, log, env, batch, writes=200, at_least=4, wait_s=60, jitter_s=0.5)
    assert len(acknowledged) >= 4, log.read_text()[-3000:]

    with server.serving(index_dir, log, **env) as restarted, httpx.Client(base_url=restarted) as client:
        assert client.get("/readyz").status_code == 200, client.get("/readyz").text
        present = _present(client)
        for b in range(max(acknowledged) + 2):
            batch = {f"b{b}-{n}" for n in range(5)}
            assert batch <= present or not batch & present, f"batch {b} is partial: {sorted(batch & present)}"
        for b in acknowledged:
            assert {f"b{b}-{n}" for n in range(5)} <= present
            i = b * 100 + 3
            hits = client.get("/v1/search", params={"q": f"唯一标记甲{i}乙", "k": 1, "mode": "lexical"}).json()
            assert hits["results"][0]["doc_id"] == f"b{b}-3"


def test_sigkill_during_a_restarts_catch_up(tmp_path: Path) -> None:
    """Writes held only in SQLite (no checkpoint yet); the restart that folds them into a checkpoint is
    killed, twice, at random moments; the third start has everything."""
    from index.writing.live import LiveIndex

    index_dir = _base_index(tmp_path / "index")
    live = LiveIndex.open(index_dir, HashingEmbedder(), Tuning(merge_vectors=10**9))
    for i in range(30):
        doc = _document(i)
        live.put(Document(doc["id"], doc["text"], doc["title"]))
    live.close()
    log = tmp_path / "server.log"
    env = {**FAKE_MODEL, "ZHSEARCH_MERGE_VECTORS": "40"}
    for _ in range(2):
        port = server.free_port()
        process = server.start(index_dir, log, port, **env)
        time.sleep(random.uniform(0.5, 3.0))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    with server.serving(index_dir, log, **env) as restarted, httpx.Client(base_url=restarted) as client:
        assert client.get("/readyz").status_code == 200, client.get("/readyz").text
        assert {f"doc{i}" for i in range(30)} <= _present(client)
        for i in (0, 17, 29):
            hits = client.get("/v1/search", params={"q": f"唯一标记甲{i}乙", "k": 1, "mode": "lexical"}).json()
            assert hits["results"][0]["doc_id"] == f"doc{i}"
            hybrid = client.get("/v1/search", params={"q": f"唯一標記甲{i}乙", "k": 1}).json()
            assert hybrid["results"][0]["doc_id"] == f"doc{i}"
