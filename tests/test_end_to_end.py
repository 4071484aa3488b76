"""The real model on the seed report: quality floor, API and a real server process."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from index import Searcher
from index.evaluation.evaluate import evaluate, load_eval_set, load_queries
from tests import server
from tests.conftest import SEEDS

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def searcher(real_index: Path, real_embedder) -> Searcher:
    return Searcher.load(real_index, real_embedder)


def test_seed_questions_quality_floor(searcher: Searcher) -> None:
    metrics = evaluate(searcher, load_eval_set(SEEDS / "eval"), modes=["hybrid"]).modes["hybrid"].metrics
    assert metrics["hit@5"] >= 0.95, metrics
    assert metrics["hit@1"] >= 0.85, metrics


@pytest.mark.parametrize("query", ["上半年地区生产总值是多少", "上半年地區生產總值是多少"])
def test_gdp_question_in_either_script(searcher: Searcher, query: str) -> None:
    assert "1209.37億元" in searcher.search(query, 3).hits[0].text


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_every_mode_answers(searcher: Searcher, mode: str) -> None:
    result = searcher.search("互联网诊疗服务", 5, mode=mode)
    assert result.mode == mode and any("網際網路診療" in h.text for h in result.hits)


def test_served_api_done_when(real_index: Path, tmp_path: Path) -> None:
    """The issue's 'done when', over HTTP against a real server process with the real model."""
    import shutil

    index_dir = tmp_path / "index"
    shutil.copytree(real_index, index_dir, symlinks=True)
    log = tmp_path / "server.log"
    with server.serving(index_dir, log) as base, httpx.Client(base_url=base, timeout=60) as client:
        body = client.get("/v1/search", params={"q": "上半年地区生产总值是多少"}).json()
        assert "1209.37億元" in body["results"][0]["text"]
        assert client.get("/v1/search", params={"q": ""}).status_code == 422
        answer = client.post("/v1/ask", json={"question": "上半年地区生产总值是多少"}).json()["answer"]
        assert "1209.37億元" in answer["text"] and answer["end"] > answer["start"]
        text = "區內推動網際網路醫院建設,遠距診療服務覆蓋所有社區衛生服務中心。"
        doc = {"id": "tw-doc", "title": "醫療", "text": text}
        began = time.monotonic()
        assert client.post("/v1/documents", json=doc).status_code == 201
        hits = client.get("/v1/search", params={"q": "互联网医院建设", "k": 3}).json()["results"]
        assert time.monotonic() - began < 5 and hits[0]["doc_id"] == "tw-doc"
        assert client.delete("/v1/documents/tw-doc").status_code == 204
        hits = client.get("/v1/search", params={"q": "互联网医院建设", "k": 3}).json()["results"]
        assert all(h["doc_id"] != "tw-doc" for h in hits)
    with server.serving(index_dir, log) as base, httpx.Client(base_url=base, timeout=60) as client:
        ids = [d["id"] for d in client.get("/v1/documents").json()["documents"]]
        assert ids == ["000_faeb4e7ef88eceb9"]
        assert client.get("/readyz").status_code == 200


def test_ask_answers_with_offsets_into_the_original(searcher: Searcher, seed_docs) -> None:
    from index.retrieval.answer import ask

    result = ask(searcher, "上半年地区生产总值是多少")
    assert result.answer is not None and "1209.37億元" in result.answer.text
    assert seed_docs[0].text[result.answer.start : result.answer.end] == result.answer.text


@pytest.mark.parametrize(
    "question", ["北京市海淀区2020年上半年的GDP是多少", "2023年黄浦区旧改签约了多少户", "台北市的捷運票價是多少"]
)
def test_ask_abstains_when_the_corpus_cannot_answer(searcher: Searcher, question: str) -> None:
    from index.retrieval.answer import ask

    assert ask(searcher, question).answer is None


def test_answer_quality_floor(searcher: Searcher) -> None:
    from index.evaluation.evaluate import evaluate_answers

    report = evaluate_answers(
        searcher, load_queries(SEEDS / "eval" / "queries.jsonl"), load_queries(SEEDS / "eval" / "unanswerable.jsonl")
    )
    assert report.metrics["answer_contains"] >= 0.7, report.metrics
    assert report.metrics["abstain_unanswerable"] >= 0.9, report.metrics


def test_highlights_cross_scripts(searcher: Searcher) -> None:
    from index.text.highlight import highlights
    from index.text.normalize import normalize

    hit = next(h for h in searcher.search("互联网诊疗", 5).hits if "網際網路診療" in h.text)
    assert "網際網路診療" in [hit.text[a:b] for a, b in highlights(normalize("互联网诊疗"), hit.text)]
