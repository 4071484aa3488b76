"""The answer span (issue 26): windows, offsets, the calibrated choice, abstention, the SQuAD
unanswerable set, and the fitted scales. A fake reader makes the choices exact; the real one is
in tests/test_span_reader.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from index.models.span import SpanFound
from index.retrieval.answer import extract_answer
from index.retrieval.answering import Answering
from index.retrieval.calibration import Calibration, HitCalibration, fit_logistic
from index.retrieval.search import Hit
from index.retrieval.windows import window_around
from index.text.chunk import passage_sentences
from tests.test_answer_scoring import TableEmbedder

PASSAGE = "熊猫是中国的国宝。野生大熊猫的寿命约为十八到二十岁，圈养可达三十岁。它们以竹子为食。"
LIFESPAN_Q = "大熊猫能活多久"


class FakeReader:
    """Finds ``target`` in each window: margin ``margin`` where it is, a poor guess elsewhere."""

    def __init__(self, target: str, margin: float = 5.0) -> None:
        self.target, self.margin = target, margin
        self.windows: list[str] = []

    def read(self, pairs: Sequence[tuple[str, str]]) -> list[SpanFound]:
        found = []
        for _, window in pairs:
            self.windows.append(window)
            at = window.find(self.target)
            if at >= 0:
                found.append(SpanFound(at, at + len(self.target), self.margin, 0.6))
            else:
                found.append(SpanFound(0, 2, -self.margin, 0.01))
        return found


CALIBRATION = Calibration(("margin",), (1.0,), 0.0, 0.5, "test")


def _hit(text: str, *, start: int = 0, doc: str = "d", pid: int = 1, title: str = "熊猫") -> Hit:
    return Hit(
        rank=1, score=1.0, passage_id=pid, doc_id=doc, title=title, section="", text=text, start=start, end=start + 99
    )


def _answering(reader: FakeReader, **kw) -> Answering:
    return Answering(reader, CALIBRATION, **kw)  # type: ignore[arg-type]


def test_windows_grow_by_whole_sentences_within_the_limit() -> None:
    text = "甲。" * 3 + "乙" * 50 + "。" + "丙。" * 3
    spans = passage_sentences(text)
    middle = next(i for i, (a, b) in enumerate(spans) if text[a] == "乙")
    assert window_around(spans, middle, 60) == (spans[middle - 2][0], spans[middle + 2][1])
    assert window_around(spans, middle, 51) == spans[middle]  # nothing else fits
    long = "長" * 300
    assert window_around(passage_sentences(long), 0, 60) == (0, 250)  # a sentence alone, cut at SENTENCE_CHARS


def test_the_answer_is_the_span_with_its_sentence_and_document_offsets() -> None:
    reader = FakeReader("十八到二十岁，")  # the clause mark after the answer is cut off
    found = extract_answer(LIFESPAN_Q, [_hit(PASSAGE, start=40)], TableEmbedder(), answering=_answering(reader))
    assert found is not None
    assert found.text == "十八到二十岁"
    assert PASSAGE[found.start - 40 : found.end - 40] == found.text
    assert found.sentence == "野生大熊猫的寿命约为十八到二十岁，圈养可达三十岁。"
    assert PASSAGE[found.sentence_start - 40 : found.sentence_end - 40] == found.sentence
    assert found.score == pytest.approx(1 / (1 + np.exp(-5.0)), abs=1e-4)
    assert reader.windows and all(len(w) <= 200 for w in reader.windows)


def test_silence_under_the_calibrated_threshold() -> None:
    reader = FakeReader("不在这里")
    assert extract_answer(LIFESPAN_Q, [_hit(PASSAGE)], TableEmbedder(), answering=_answering(reader)) is None
    sure = FakeReader("三十岁", margin=1.0)  # probability 0.73
    assert extract_answer(LIFESPAN_Q, [_hit(PASSAGE)], TableEmbedder(), answering=_answering(sure)) is not None
    strict = _answering(sure, threshold=0.75)
    assert extract_answer(LIFESPAN_Q, [_hit(PASSAGE)], TableEmbedder(), answering=strict) is None


def test_the_most_probable_window_wins_across_passages() -> None:
    other = "大熊猫的寿命很长。研究人员记录到三十八岁的个体。"
    reader = FakeReader("三十八岁")
    hits = [_hit(PASSAGE, pid=1), _hit(other, pid=2, doc="e", start=500)]
    found = extract_answer(LIFESPAN_Q, hits, TableEmbedder(), answering=_answering(reader))
    assert found is not None and found.text == "三十八岁" and found.doc_id == "e" and found.start >= 500


def test_every_window_read_is_observed_with_its_features() -> None:
    seen: list[tuple[str, dict[str, float]]] = []
    answering = Answering(FakeReader("十八到二十岁"), CALIBRATION, None, lambda s, f: seen.append((s, f)))  # type: ignore[arg-type]
    extract_answer(LIFESPAN_Q, [_hit(PASSAGE)], TableEmbedder(), answering=answering)
    assert seen and {"margin", "logprob", "sentence", "coverage", "cosine", "first"} <= set(seen[0][1])
    assert "十八到二十岁" in [span for span, _ in seen]


def test_logistic_fit_recovers_a_known_model() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    p = 1 / (1 + np.exp(-(2.0 * x[:, 0] - 1.0 * x[:, 1] + 0.5)))
    y = (rng.random(4000) < p).astype(float)
    weights, bias = fit_logistic(x, y, l2=1e-6)
    assert weights == pytest.approx([2.0, -1.0], abs=0.2) and bias == pytest.approx(0.5, abs=0.15)


def test_hit_scores_keep_the_order_and_mean_the_same_across_modes() -> None:
    from index.retrieval.calibration import HITS

    calibration = HitCalibration(
        {
            "hybrid": Calibration(("mix", "best_cosine"), (1.0, 10.0), -8.0, 0.5),
            "dense": Calibration(("cosine",), (20.0,), -16.0, 0.5),
            "lexical": Calibration(("log_bm25",), (2.0,), -4.0, 0.5),
        }
    )
    mixes = [2.5, 1.0, 0.2, -0.3]
    scores = [calibration.score("hybrid", m, 0.85) for m in mixes]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    # A query whose best match is poor scores lower everywhere.
    assert calibration.score("hybrid", 2.5, 0.70) < calibration.score("hybrid", 2.5, 0.85)
    assert 0 < calibration.score("lexical", 8.49, 0) < 1  # not raw BM25
    for mode in ("hybrid", "dense", "lexical"):  # the shipped scales take the same inputs
        assert 0 <= HITS.score(mode, 0.5, 0.8) <= 1


def test_squad_questions_asked_without_their_paragraph(tmp_path: Path) -> None:
    from index.evaluation.squad import load_squad

    data = {
        "data": [
            {
                "id": "a1",
                "title": "熊猫",
                "paragraphs": [
                    {
                        "id": "p1",
                        "context": "熊猫以竹子为食。",
                        "qas": [
                            {"id": "q1", "question": "熊猫吃什么", "answers": [{"text": "竹子", "answer_start": 3}]}
                        ],
                    },
                    {
                        "id": "p2",
                        "context": "熊猫寿命约二十岁。",
                        "qas": [
                            {"id": "q2", "question": "熊猫活多久", "answers": [{"text": "二十岁", "answer_start": 5}]}
                        ],
                    },
                    {"id": "p3", "context": "竹子长得很快。", "qas": []},
                ],
            }
        ]
    }
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    found = load_squad([path]).eval_set
    # q1's answer (竹子) is stated by p3 too: it is not unanswerable without p1, so it is left out.
    assert [(q.id, q.fields["without"], q.answers) for q in found.unanswerable] == [("tiny:q2#without", "tiny:p2", ())]


def test_marked_sentence_for_chat_clients() -> None:
    from index.retrieval.answer import Answer
    from service.presenter import marked

    answer = Answer(
        text="二十岁", passage_id=1, doc_id="d", start=15, end=18, score=0.9,
        sentence="熊猫寿命约二十岁。", sentence_start=10, sentence_end=19,
    )  # fmt: skip
    assert marked(answer) == "熊猫寿命约**二十岁**。"


def test_table_rows_and_list_items_answer_too() -> None:
    from index.retrieval.question import is_heading

    text = "差旅標準\n| 項目 | 上限 |\n|---|---|\n| 住宿 | 每晚 550 元 |\n- 尘盒：滤网每两周清洗一次\n"
    for line in ("| 住宿 | 每晚 550 元 |", "- 尘盒：滤网每两周清洗一次"):
        at = text.index(line)
        assert not is_heading(text, at, at + len(line)), line
    assert is_heading(text, 0, 4)  # a short line of its own is still a heading
    reader = FakeReader("550 元")
    found = extract_answer(
        "出差住宿每晚能报多少钱", [_hit(text, title="差旅")], TableEmbedder(), answering=_answering(reader)
    )
    assert found is not None and found.text == "550 元" and found.sentence == "| 住宿 | 每晚 550 元 |"
