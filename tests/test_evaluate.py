"""Evaluation: metrics against values worked out by hand, input formats, reports."""

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from index import Document, HashingEmbedder, Searcher, build_index
from index.evaluation.evaluate import _ranx_metrics, evaluate, load_eval_set, read_qrels
from index.evaluation.report import write_report


def test_metrics_match_hand_computation() -> None:
    qrels = {"a": {"d1": 1}, "b": {"d2": 1, "d3": 1}}
    run = {"a": {"x": 3.0, "d1": 2.0, "y": 1.0}, "b": {"d2": 3.0, "z": 2.0, "d3": 1.0}}
    m = _ranx_metrics(qrels, run, ["a", "b"])
    assert m["hit@1"] == 0.5  # only b has a relevant result first
    assert m["hit@5"] == 1.0
    assert m["mrr@10"] == pytest.approx((1 / 2 + 1 / 1) / 2)
    assert m["recall@5"] == 1.0
    # nDCG@10: a = (1/log2(3)) / 1; b = (1 + 1/log2(4)) / (1 + 1/log2(3))
    ndcg_a = 1 / math.log2(3)
    ndcg_b = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert m["ndcg@10"] == pytest.approx((ndcg_a + ndcg_b) / 2, abs=1e-4)
    # AP: a = 1/2; b = (1/1 + 2/3) / 2
    assert m["map@20"] == pytest.approx((0.5 + (1 + 2 / 3) / 2) / 2, abs=1e-4)


def test_empty_run_counts_as_a_miss() -> None:
    m = _ranx_metrics({"a": {"d1": 1}, "b": {"d2": 1}}, {"a": {"d1": 1.0}}, ["a", "b"])
    assert m["hit@1"] == 0.5


def test_a_query_with_nothing_relevant_counts_as_a_miss() -> None:
    # c's answer is in no passage: it scores 0, it is not left out
    m = _ranx_metrics({"a": {"d1": 1}, "b": {"d2": 1}, "c": {}}, {"a": {"d1": 1.0}, "b": {"d2": 1.0}}, ["a", "b", "c"])
    assert m["hit@1"] == pytest.approx(2 / 3, abs=1e-4) and m["mrr@10"] == pytest.approx(2 / 3, abs=1e-4)


@pytest.mark.parametrize(
    "content",
    ["query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\nq2\td3\t2\n", "q1 0 d1 1\nq1 0 d2 0\nq2 0 d3 2\n"],
)
def test_read_qrels_beir_and_trec(tmp_path: Path, content: str) -> None:
    path = tmp_path / "qrels.tsv"
    path.write_text(content, encoding="utf-8")
    assert read_qrels(path) == {"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 2}}


def _beir(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "econ", "title": "經濟", "text": "上半年地區生產總值一千億元。財政收入增長。"},
        {"_id": "health", "title": "醫療", "text": "網際網路診療服務覆蓋社區衛生服務中心。"},
        {"_id": "school", "title": "教育", "text": "推進國小和國中的教育綜合改革。"},
    ]
    queries = [
        {"_id": "q1", "text": "地区生产总值", "script": "simplified"},
        {"_id": "q2", "text": "互联网诊疗", "script": "simplified"},
        {"_id": "q3", "text": "國小教育改革", "script": "traditional"},
    ]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in corpus), "utf-8")
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in queries), "utf-8")
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\tecon\t1\nq2\thealth\t1\nq3\tschool\t1\n"
    )
    return folder


def test_beir_folder_end_to_end(tmp_path: Path) -> None:
    from index import load_paths

    folder = _beir(tmp_path)
    eval_set = load_eval_set(folder)
    assert eval_set.default_level == "doc" and eval_set.corpus == folder / "corpus.jsonl"
    build_index(load_paths([eval_set.corpus]), tmp_path / "idx", HashingEmbedder())
    report = evaluate(Searcher.load(tmp_path / "idx", HashingEmbedder()), eval_set, split_by="script")
    assert set(report.modes) == {"dense", "lexical", "hybrid"}
    assert report.modes["lexical"].metrics["hit@1"] == 1.0
    assert report.modes["lexical"].ranks == {"q1": 1, "q2": 1, "q3": 1}
    assert set(report.groups) == {"simplified", "traditional"}

    written = write_report([report], tmp_path / "out", command="zhsearch eval tiny")
    text = written.read_text(encoding="utf-8")
    assert "| hybrid |" in text and "### By script" in text and "### Per query" in text
    assets = tmp_path / "out" / "quality"
    assert (assets / f"{report.name.replace('/', '-').strip('-')}.png").exists() or list(assets.glob("*.png"))
    trec = sorted(assets.glob("*.lexical.trec"))[0].read_text().splitlines()
    assert trec[0].split()[:4] == ["q1", "Q0", "econ", "1"]


def test_answer_strings_judge_passages_and_documents(tmp_path: Path) -> None:
    docs = [Document("a", "黃浦區上半年地區生產總值1209.37億元。"), Document("b", "舊區改造加速推進。")]
    build_index(docs, tmp_path / "idx", HashingEmbedder())
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"_id": "1", "text": "生产总值", "answers": ["1209.37亿元"]}, ensure_ascii=False))
    searcher = Searcher.load(tmp_path / "idx", HashingEmbedder())
    eval_set = load_eval_set(queries)
    by_passage = evaluate(searcher, eval_set, modes=["lexical"])
    by_doc = evaluate(searcher, eval_set, modes=["lexical"], level="doc")
    assert by_passage.level == "passage" and by_doc.level == "doc"
    assert by_passage.modes["lexical"].ranks["1"] == by_doc.modes["lexical"].ranks["1"] == 1
    assert list(by_doc.modes["lexical"].run["1"])[0] == "a"


def test_cli_eval_json_on_a_beir_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.cli import app  # eval is registered on import, not in main()

    monkeypatch.setenv("ZHSEARCH_MODEL", "hashing")
    monkeypatch.setenv("ZHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    folder = _beir(tmp_path)
    result = CliRunner().invoke(
        app, ["eval", str(folder), "--json", "--modes", "lexical,hybrid", "--report", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["level"] == "doc" and set(payload["metrics"]) == {"lexical", "hybrid"}
    assert (tmp_path / "r" / "quality.md").exists()
    bad = CliRunner().invoke(app, ["eval", str(folder), "--modes", "fuzzy"])
    assert bad.exit_code == 1


def _misses_set(tmp_path: Path) -> tuple[Path, Path]:
    """An answer-string set where one answer is in no passage, and one query is unanswerable by design."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("經濟\n\n黃浦區上半年地區生產總值1209.37億元,同比增長。", "utf-8")
    (corpus / "b.txt").write_text("舊改\n\n舊區改造加速推進,完成徵收三千戶。", "utf-8")
    queries = tmp_path / "q.jsonl"
    rows = [
        {"_id": "1", "text": "生产总值多少", "answers": ["1209.37亿元"]},
        {"_id": "2", "text": "旧区改造征收多少户", "answers": ["三千戶"]},
        {"_id": "3", "text": "区长是谁", "answers": ["某某某"]},  # in no passage
    ]
    queries.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), "utf-8")
    return corpus, queries


def test_every_mode_is_scored_over_the_same_queries_misses_included(tmp_path: Path) -> None:
    from index import load_paths

    corpus, queries = _misses_set(tmp_path)
    build_index(load_paths([corpus]), tmp_path / "idx", HashingEmbedder())
    searcher = Searcher.load(tmp_path / "idx", HashingEmbedder())
    report = evaluate(searcher, load_eval_set(queries), modes=["lexical", "hybrid"])
    assert len(report.queries) == 3
    for result in report.modes.values():
        assert result.unjudged == ["3"] and result.ranks["3"] is None
        assert result.metrics["hit@5"] <= 2 / 3 + 1e-4  # query 3 is a miss, never dropped


def test_cli_eval_reports_misses_and_answers_per_question(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.cli import app

    monkeypatch.setenv("ZHSEARCH_MODEL", "hashing")
    monkeypatch.setenv("ZHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    corpus, queries = _misses_set(tmp_path)
    args = ["eval", str(queries), "--corpus", str(corpus), "--modes", "lexical,naive", "--answers"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output[result.output.index("{") :])
    assert payload["queries"] == 3 and payload["unjudged"]["lexical"] == ["3"]
    rows = {row["id"]: row for row in payload["answer_rows"]}
    assert set(rows) == {"1", "2", "3"}
    assert rows["3"]["gold"] == ["某某某"] and rows["3"]["verdict"] in ("wrong", "no answer")
    assert {"question", "answer", "verdict", "exact_match", "f1"} <= set(rows["1"])
    text = CliRunner().invoke(app, [*args, "--report", str(tmp_path / "r")])
    assert text.exit_code == 0, text.output
    assert "have no passage holding their answer" in text.output
    report = (tmp_path / "r" / "quality.md").read_text(encoding="utf-8")
    assert "Answers per question" in report and "某某某" in report


def test_cli_eval_squad_builds_into_a_new_index_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.cli import app

    monkeypatch.setenv("ZHSEARCH_MODEL", "hashing")
    monkeypatch.setenv("ZHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    squad = tmp_path / "tiny.json"
    context = "黃浦區上半年地區生產總值1209.37億元,同比增長。"
    qa = {"id": "s1", "question": "生產總值多少", "answers": [{"text": "1209.37億元", "answer_start": 12}]}
    data = {"data": [{"title": "黃浦", "paragraphs": [{"context": context, "qas": [qa]}]}]}
    squad.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    target = tmp_path / "new-index"
    result = CliRunner().invoke(
        app, ["eval", "--squad", str(squad), "--index-dir", str(target), "--modes", "lexical", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert (target / "current").exists()


def test_split_halves_any_set_by_query_id_and_names_scripts(tmp_path: Path) -> None:
    from index.evaluation.splits import half_of, split_set

    folder = _beir(tmp_path)
    whole = load_eval_set(folder)
    dev, test = split_set(whole, "dev"), split_set(whole, "test")
    assert sorted(q.id for q in dev.queries + test.queries) == ["q1", "q2", "q3"]
    assert all(half_of(q.id) == "dev" for q in dev.queries) and dev.name.endswith("[dev]")
    assert dev.qrels is not None and set(dev.qrels) == {q.id for q in dev.queries}
    plain = tmp_path / "q.jsonl"
    plain.write_text('{"_id": "a", "text": "網際網路診療"}\n{"_id": "b", "text": "互联网诊疗"}\n', "utf-8")
    scripts = {q.id: q.fields["script"] for q in split_set(load_eval_set(plain), "all").queries}
    assert scripts == {"a": "traditional", "b": "simplified"}
