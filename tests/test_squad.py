"""index.evaluation.squad and the naive baseline, on a small SQuAD-form file written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from index import HashingEmbedder, InvalidInputError
from index.evaluation.naive import NaiveDense, windows
from index.evaluation.squad import load_squad, split_of

ARTICLES = [
    (
        "a1",
        "日月潭",
        ["日月潭位於南投縣魚池鄉,是台灣最大的天然湖泊。", "潭的東半部形如日輪,西半部形如月鉤,因而得名。"],
        [("日月潭在哪裡?", "南投縣魚池鄉"), ("日月潭為什麼叫日月潭?", "東半部形如日輪,西半部形如月鉤")],
    ),
    (
        "a2",
        "莫高窟",
        ["莫高窟位於敦煌市東南二十五公里處。", "現存洞窟七百三十五個,壁畫四萬五千平方米。"],
        [("莫高窟有多少個洞窟?", "七百三十五個")],
    ),
]


def _squad(tmp_path: Path) -> Path:
    data = {"version": "test", "data": []}
    for article_id, title, paragraphs, questions in ARTICLES:
        entries = []
        for p, context in enumerate(paragraphs):
            qas = [
                {
                    "id": f"{article_id}-{p}-{q}",
                    "question": question,
                    "answers": [{"text": answer, "answer_start": context.index(answer)}],
                }
                for q, (question, answer) in enumerate(questions)
                if answer in context
            ]
            entries.append({"id": f"{article_id}-{p}", "context": context, "qas": qas})
        data["data"].append({"id": article_id, "title": title, "paragraphs": entries})
    path = tmp_path / "mini_squad.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_every_paragraph_is_a_document_and_its_questions_point_to_it(tmp_path: Path) -> None:
    loaded = load_squad([_squad(tmp_path)])
    assert [d.id for d in loaded.documents] == [
        "mini_squad:a1-0",
        "mini_squad:a1-1",
        "mini_squad:a2-0",
        "mini_squad:a2-1",
    ]
    assert loaded.documents[0].title == "日月潭"
    queries = {q.id: q for q in loaded.eval_set.queries}
    assert loaded.eval_set.qrels == {
        "mini_squad:a1-0-0": {"mini_squad:a1-0": 1},
        "mini_squad:a1-1-1": {"mini_squad:a1-1": 1},
        "mini_squad:a2-1-0": {"mini_squad:a2-1": 1},
    }
    assert queries["mini_squad:a2-1-0"].answers == ("七百三十五個",)


def test_questions_in_another_script(tmp_path: Path) -> None:
    simplified = load_squad([_squad(tmp_path)], query_script="t2s")
    assert {q.text for q in simplified.eval_set.queries} >= {"莫高窟有多少个洞窟?"}
    assert simplified.eval_set.name == "mini_squad (t2s)"
    with pytest.raises(InvalidInputError):
        load_squad([_squad(tmp_path)], query_script="klingon")


def test_splits_are_stable_halves_of_the_articles(tmp_path: Path) -> None:
    halves = [split_of("cmrc2018_dev", f"DEV_{i}") for i in range(400)]
    assert halves == [split_of("cmrc2018_dev", f"DEV_{i}") for i in range(400)]
    assert 150 < halves.count("dev") < 250
    path = _squad(tmp_path)
    dev, test = load_squad([path], split="dev"), load_squad([path], split="test")
    assert len(dev.documents) == len(test.documents) == 4  # the corpus is whole; only questions split
    assert len(dev.eval_set.queries) + len(test.eval_set.queries) == 3


def test_naive_windows_cover_the_text() -> None:
    assert windows("x" * 100) == [(0, 100)]
    assert windows("x" * 450) == [(0, 250), (200, 450)]
    assert windows("x" * 451) == [(0, 250), (200, 450), (400, 451)]


def test_naive_ranks_documents_by_their_best_window(tmp_path: Path) -> None:
    naive = NaiveDense({"a": "日月潭位於南投縣。", "b": "莫高窟位於敦煌市。"}, HashingEmbedder(), cache_dir=tmp_path)
    assert naive.rank_documents("莫高窟", 2)[0][0] == "b"
    assert list(tmp_path.glob("naive-*.npy"))  # cached
    again = NaiveDense({"a": "日月潭位於南投縣。", "b": "莫高窟位於敦煌市。"}, HashingEmbedder(), cache_dir=tmp_path)
    assert again.rank_documents("日月潭", 1)[0][0] == "a"


def test_cli_eval_on_squad_files_with_the_naive_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.cli import app

    monkeypatch.setenv("ZHSEARCH_MODEL", "hashing")
    monkeypatch.setenv("ZHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(
        app, ["eval", "--squad", str(_squad(tmp_path)), "--query-script", "t2s", "--answers", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert set(payload["metrics"]) == {"dense", "lexical", "hybrid", "naive"} and payload["level"] == "doc"
    assert payload["metrics"]["lexical"]["hit@5"] == 1.0
    assert {"answer_contains", "exact_match", "f1"} <= set(payload["answers"])


def test_cli_eval_asks_in_several_scripts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.cli import app

    monkeypatch.setenv("ZHSEARCH_MODEL", "hashing")
    monkeypatch.setenv("ZHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    squad = str(_squad(tmp_path))
    args = [
        "eval",
        "--squad",
        squad,
        "--query-script",
        "as-is",
        "--query-script",
        "t2s",
        "--modes",
        "lexical",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert [entry["set"] for entry in json.loads(result.output)] == ["mini_squad", "mini_squad (t2s)"]
    bad = CliRunner().invoke(app, ["eval", "--squad", squad, "--query-script", "klingon"])
    assert bad.exit_code == 1 and "query script" in bad.output
