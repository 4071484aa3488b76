"""The real model on the seed report: quality floor, API and a real server process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from index import Searcher
from index.evaluate import evaluate, load_queries
from tests.conftest import SEEDS

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def searcher(real_index: Path, real_embedder) -> Searcher:
    return Searcher.load(real_index, real_embedder)


def test_seed_questions_quality_floor(searcher: Searcher) -> None:
    report = evaluate(searcher, load_queries(SEEDS / "eval" / "queries.jsonl"))
    assert report.metrics["hit@5"] >= 0.95, report.metrics
    assert report.metrics["hit@1"] >= 0.85, report.metrics


@pytest.mark.parametrize("query", ["上半年地区生产总值是多少", "上半年地區生產總值是多少"])
def test_gdp_question_in_either_script(searcher: Searcher, query: str) -> None:
    assert "1209.37億元" in searcher.search(query, 3).hits[0].text


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_every_mode_answers(searcher: Searcher, mode: str) -> None:
    result = searcher.search("互联网诊疗服务", 5, mode=mode)
    assert result.mode == mode and any("網際網路診療" in h.text for h in result.hits)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_served_api_over_http(real_index: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = os.environ | {"ZHSEARCH_INDEX_DIR": str(real_index)}
    with (tmp_path / "server.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            pytest.fail("server did not become healthy: " + (tmp_path / "server.log").read_text())
        body = httpx.get(f"{base}/v1/search", params={"q": "上半年地区生产总值是多少"}, timeout=30).json()
        assert "1209.37億元" in body["results"][0]["text"]
        assert httpx.get(f"{base}/v1/search", params={"q": ""}, timeout=30).status_code == 422
    finally:
        server.terminate()
        server.wait(timeout=30)
