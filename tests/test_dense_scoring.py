"""Dense scoring (``index.storage.dense``), worked by hand with 4-dimensional unit vectors in real FAISS indexes.

A passage's dense score is ``combine(own cosine, best sentence cosine, PASSAGE_WEIGHT)``
= ``0.3 * own + 0.7 * best sentence`` (own alone when it has no sentence vectors).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from index.models import HashingEmbedder
from index.storage import dense
from index.storage.record.store import StoredPassage
from index.writing.embedding import embed

S = dense.SENTENCE_STRIDE
E0, E1, E2, E3 = (1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (0.0, 0.0, 0.0, 1.0)
# The query and the hand-worked cosines with it:
#   passages  1: e0 -> 0.6        2: e1 -> 0.8        3: e2 -> 0.0 (no sentences)
#   sentences 1.0: e3 -> 0.0      1.1: (0.6, 0, 0.8, 0) -> 0.36      2.0: (0.8, 0.6, 0, 0) -> 0.48 + 0.48 = 0.96
Q = np.asarray((0.6, 0.8, 0.0, 0.0), np.float32)
COUNTS = {1: 2, 2: 1, 3: 0}


def _vectors(passages: dict[int, Sequence[float]], sentences: dict[int, Sequence[Sequence[float]]]) -> dense.Vectors:
    sentence_ids = [pid * S + n for pid, rows in sentences.items() for n in range(len(rows))]
    rows = [row for rows in sentences.values() for row in rows]
    return dense.Vectors(
        list(passages),
        np.asarray(list(passages.values()), np.float32),
        sentence_ids,
        np.asarray(rows, np.float32).reshape(-1, 4),
    )


def _index() -> dense.DenseIndex:
    index = dense.DenseIndex.empty(4)
    index.add(_vectors({1: E0, 2: E1, 3: E2}, {1: [E3, (0.6, 0.0, 0.8, 0.0)], 2: [(0.8, 0.6, 0.0, 0.0)]}))
    return index


def _scores(pairs: Sequence[tuple[int, float]] | Sequence[tuple[int, float, bool]]) -> list[float]:
    return [pair[1] for pair in pairs]


def test_combine_by_hand() -> None:
    """0.3 * 0.5 + 0.7 * 0.9 = 0.78; None weight takes the larger; no sentence vectors: the passage's own."""
    assert dense.PASSAGE_WEIGHT == 0.3
    assert dense.combine(0.5, 0.9, dense.PASSAGE_WEIGHT) == pytest.approx(0.78)
    assert dense.combine(0.9, 0.5, dense.PASSAGE_WEIGHT) == pytest.approx(0.62)  # 0.27 + 0.35
    assert dense.combine(0.8, -0.5, 0.3) == pytest.approx(-0.11)  # 0.24 - 0.35
    assert dense.combine(0.9, 0.5, None) == 0.9 and dense.combine(0.5, 0.9, None) == 0.9
    assert dense.combine(0.2, None, 0.3) == 0.2 and dense.combine(0.2, None, None) == 0.2
    assert dense.combine(0.4, 0.7, 1.0) == 0.4 and dense.combine(0.4, 0.7, 0.0) == pytest.approx(0.7)


def test_candidates_worked_by_hand() -> None:
    """depth 10: passages by own cosine 2 (0.8), 1 (0.6), 3 (0.0); all three sentences (depth * 4 = 40).

    1: 0.3 * 0.6 + 0.7 * max(0.0, 0.36) = 0.18 + 0.252 = 0.432
    2: 0.3 * 0.8 + 0.7 * 0.96 = 0.24 + 0.672 = 0.912
    3: no sentence vectors -> its own 0.0
    """
    found = _index().candidates(Q, 10, COUNTS.__getitem__)
    assert [pid for pid, _ in found.passages] == [2, 1, 3]
    assert _scores(found.passages) == pytest.approx([0.8, 0.6, 0.0], abs=1e-6)
    assert [(pid, admits) for pid, _, admits in found.sentences] == [(2, True), (1, True), (1, True)]
    assert _scores(found.sentences) == pytest.approx([0.96, 0.36, 0.0], abs=1e-6)
    assert found.scores.keys() == {1, 2, 3}
    assert [found.scores[p] for p in (1, 2, 3)] == pytest.approx([0.432, 0.912, 0.0], abs=1e-6)


def test_passage_weight_choices() -> None:
    """None: max(0.6, 0.36) = 0.6, max(0.8, 0.96) = 0.96; 1.0: own cosines; 0.0: best sentences (3 keeps its own)."""
    index = _index()
    larger = index.candidates(Q, 10, COUNTS.__getitem__, passage_weight=None).scores
    assert [larger[p] for p in (1, 2, 3)] == pytest.approx([0.6, 0.96, 0.0], abs=1e-6)
    own = index.candidates(Q, 10, COUNTS.__getitem__, passage_weight=1.0).scores
    assert [own[p] for p in (1, 2, 3)] == pytest.approx([0.6, 0.8, 0.0], abs=1e-6)
    best = index.candidates(Q, 10, COUNTS.__getitem__, passage_weight=0.0).scores
    assert [best[p] for p in (1, 2, 3)] == pytest.approx([0.36, 0.96, 0.0], abs=1e-6)


def test_search_returns_the_candidates_scores() -> None:
    """``search`` is ``candidates(...).scores``: {1: 0.432, 2: 0.912, 3: 0.0}."""
    index = _index()
    assert index.search(Q, 10, COUNTS.__getitem__) == index.candidates(Q, 10, COUNTS.__getitem__).scores


def test_depth_and_also() -> None:
    """depth 1: passage 2 only by its own vector, but 4 sentences are read, so passage 1 (a sentence hit) is scored
    too, its own cosine read back exactly: {1: 0.432, 2: 0.912}. ``also`` adds passage 3 (0.0, no sentences)."""
    index = _index()
    found = index.candidates(Q, 1, COUNTS.__getitem__)
    assert [pid for pid, _ in found.passages] == [2]
    assert len(found.sentences) == 3
    assert found.scores.keys() == {1, 2}
    assert [found.scores[p] for p in (1, 2)] == pytest.approx([0.432, 0.912], abs=1e-6)
    also = index.candidates(Q, 1, COUNTS.__getitem__, also=[3]).scores
    assert also.keys() == {1, 2, 3} and also[3] == pytest.approx(0.0, abs=1e-6)


def test_sentence_counts_decides_which_sentences_score_a_passage_without_sentence_hits() -> None:
    """Passage 2 has four sentences at 0.96, which fill the depth 1 * 4 sentence hits; passage 1 (``also``) gets its
    sentences read back by count: 2 rows -> 0.3 * 0.6 + 0.7 * 0.36 = 0.432; 1 row (e3 only) -> 0.18 + 0 = 0.18;
    0 rows -> its own 0.6. Passage 2: 0.3 * 0.8 + 0.7 * 0.96 = 0.912."""
    index = dense.DenseIndex.empty(4)
    index.add(_vectors({1: E0, 2: E1}, {1: [E3, (0.6, 0.0, 0.8, 0.0)], 2: [(0.8, 0.6, 0.0, 0.0)] * 4}))
    for count, expected in ((2, 0.432), (1, 0.18), (0, 0.6)):
        found = index.candidates(Q, 1, {1: count, 2: 4}.__getitem__, also=[1])
        assert {pid for pid, _, _ in found.sentences} == {2}
        assert found.scores[1] == pytest.approx(expected, abs=1e-6)
        assert found.scores[2] == pytest.approx(0.912, abs=1e-6)


def test_filter_admits_passages_and_their_sentences() -> None:
    """allowed {1, 3}: passage 2 is not searched and its 0.96 sentence is reported but not admitted.

    Scores {1: 0.432, 3: 0.0}; an empty filter finds nothing at all.
    """
    index = _index()
    found = index.candidates(Q, 10, COUNTS.__getitem__, {1, 3})
    assert [pid for pid, _ in found.passages] == [1, 3]
    assert [(pid, admits) for pid, _, admits in found.sentences] == [(2, False), (1, True), (1, True)]
    assert found.scores.keys() == {1, 3}
    assert [found.scores[p] for p in (1, 3)] == pytest.approx([0.432, 0.0], abs=1e-6)
    assert index.candidates(Q, 10, COUNTS.__getitem__, set()) == dense.DenseCandidates([], [], {})


def test_a_negative_best_sentence_still_counts() -> None:
    """Own cosine 1.0, only sentence -1.0 (query e0): 0.3 * 1 + 0.7 * -1 = -0.4; the larger of the two is 1.0."""
    index = dense.DenseIndex.empty(4)
    index.add(_vectors({5: E0}, {5: [(-1.0, 0.0, 0.0, 0.0)]}))
    e0 = np.asarray(E0, np.float32)
    assert index.candidates(e0, 3, {5: 1}.__getitem__).scores[5] == pytest.approx(-0.4, abs=1e-6)
    assert index.candidates(e0, 3, {5: 1}.__getitem__, passage_weight=None).scores[5] == pytest.approx(1.0, abs=1e-6)


def test_removing_a_passage_removes_its_sentence_range() -> None:
    """Without passage 2 (and its sentence id 2048), depth 10 gives {1: 0.432, 3: 0.0} and two sentence hits."""
    index = _index()
    index.remove([2])
    found = index.candidates(Q, 10, COUNTS.__getitem__)
    assert [pid for pid, _, _ in found.sentences] == [1, 1]
    assert [found.scores[p] for p in (1, 3)] == pytest.approx([0.432, 0.0], abs=1e-6)
    assert found.scores.keys() == {1, 3}
    assert index.sentence_counts() == {1: 2}


def test_sentence_count_thresholds_and_splits() -> None:
    """12 ten-character sentences = 120 characters -> 12 vectors; one character less -> none (under 120).

    A 262-character sentence is cut at its comma into two; at most SENTENCE_STRIDE (1024) sentences are kept.
    """
    assert dense.SENTENCE_VECTORS_FROM == 120 and S == 1024
    text = "一二三四五六七八九。" * 12
    assert dense.sentence_count(text) == 12
    assert dense.sentence_count(text[:-1]) == 0
    assert dense.sentence_count("甲" * 130 + "，" + "乙" * 130 + "。") == 2
    assert dense.sentence_count("一。" * 1030) == 1024
    assert dense.sentence_texts("長城很長很長。" * 20)[:2] == ["长城很长很长。"] * 2  # normalized
    assert dense.sentence_texts(text[:-1]) == []


def test_passage_text_and_vector_bookkeeping() -> None:
    """A passage embeds ``section\\ntext`` normalized (newline -> space); shift 3 moves sentence ids by 3 * 1024."""
    assert dense.passage_text("第一節", "長城 很長") == "第一节 长城 很长"
    assert dense.passage_text("", "長城") == "长城"
    vectors = _vectors({1: E0, 2: E1}, {1: [E2, E3]})
    assert vectors.sentence_counts() == {1: 2, 2: 0}
    shifted = vectors.shifted(3)
    assert shifted.passage_ids == [4, 5] and shifted.sentence_ids == [4 * S, 4 * S + 1]
    assert shifted.sentence_counts() == {4: 2, 5: 0}


def _passage(pid: int, text: str, section: str = "") -> StoredPassage:
    return StoredPassage(
        id=pid,
        doc_id=f"d{pid}",
        ordinal=0,
        section=section,
        section_path=(section,) if section else (),
        start=0,
        end=len(text),
        text=text,
        norm_text=text,
    )


def test_embed_then_score_a_sentence_query_with_the_hashing_embedder() -> None:
    """A query equal to sentence 3's vector has cosine 1 with it (the best sentence): the passage scores
    0.3 * own cosine + 0.7 * 1; the short passage has no sentences and scores its own cosine."""
    embedder = HashingEmbedder(dim=64)
    long_text = "".join(f"第{n}句话讲的是熊猫吃竹子。" for n in range(10))  # 10 x 13 = 130 characters
    passages = [
        _passage(1, long_text, section="熊猫"),
        _passage(2, "熊猫竹子"),
    ]
    vectors = embed(passages, embedder)
    assert vectors.passage_ids == [1, 2] and vectors.sentence_ids == [S + n for n in range(10)]
    index = dense.DenseIndex.empty(64)
    index.add(vectors)
    assert index.sentence_counts() == {1: 10}
    stored = index.sentence_vectors(1, long_text)
    np.testing.assert_allclose(stored, embedder.encode_documents(dense.sentence_texts(long_text)), atol=1e-6)
    query = stored[3]
    own = index.passage_vectors([1, 2]) @ query
    scores = index.candidates(query, 5, lambda pid: dense.sentence_count(passages[pid - 1].text)).scores
    assert scores[1] == pytest.approx(0.3 * float(own[0]) + 0.7 * 1.0, abs=1e-5)
    assert scores[2] == pytest.approx(float(own[1]), abs=1e-6)
    taken = index.take(passages)
    assert taken.sentence_ids == vectors.sentence_ids
    np.testing.assert_allclose(taken.sentences, vectors.sentences)
