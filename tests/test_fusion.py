"""index.retrieval.fusion: min-max scaling and the weighted mix, against values worked out by hand."""

from __future__ import annotations

import pytest

from index.retrieval.fusion import fuse


def test_weighted_minmax_fusion_by_hand() -> None:
    # candidates 1..4; a retriever's missing candidate scores its minimum (0 here)
    # dense scaled:   1: 0.9/0.9 = 1,  2: 0.5/0.9 = 0.5556,  3: 0.7/0.9 = 0.7778,  4: 0
    # lexical scaled: 1: 0,            2: 10/10 = 1,         3: 0,                 4: 4/10 = 0.4
    # fused (0.5/0.5): 1: 0.5,  2: 0.7778,  3: 0.3889,  4: 0.2
    fused = fuse({1: 0.9, 2: 0.5, 3: 0.7}, {2: 10.0, 4: 4.0})
    assert [pid for pid, _ in fused] == [2, 1, 3, 4]
    assert [score for _, score in fused] == pytest.approx([0.77778, 0.5, 0.38889, 0.2], abs=1e-5)


def test_weight_moves_the_order() -> None:
    dense, lexical = {1: 0.9, 2: 0.5}, {2: 10.0, 1: 2.0}
    # dense scaled 1: 1, 2: 0; lexical scaled 1: 0, 2: 1 -> the weight decides
    assert fuse(dense, lexical, dense_weight=0.7)[0] == (1, pytest.approx(0.7))
    assert fuse(dense, lexical, dense_weight=0.3)[0] == (2, pytest.approx(0.7))


def test_ties_fall_back_to_dense_score_then_id() -> None:
    # equal fused scores (0.5 each): the higher raw dense score wins, then the lower id
    assert [pid for pid, _ in fuse({1: 0.2, 2: 0.4}, {1: 3.0, 2: 1.0})] == [2, 1]
    assert [pid for pid, _ in fuse({5: 0.3, 4: 0.3}, {})] == [4, 5]


def test_empty_inputs() -> None:
    assert fuse({}, {}) == []
    assert fuse({7: 0.1}, {}) == [(7, pytest.approx(0.5))]  # one candidate: scaled to 1 when positive
