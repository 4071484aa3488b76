"""index.retrieval.fusion: standardized scores and the weighted mix, against values worked out by hand."""

from __future__ import annotations

import pytest

from index.retrieval.fusion import fuse


def test_weighted_standardized_fusion_by_hand() -> None:
    # candidates 1..4; a candidate the lexical list lacks scores 0 there, one the dense list lacks its minimum
    # dense   0.9 0.5 0.7 (0.5): mean 0.65, std 0.16583 -> z  1.5076 -0.9045  0.3015 -0.9045
    # lexical 0   10  0   4    : mean 3.5,  std 4.0927  -> z -0.8552  1.5882 -0.8552  0.1222
    # 0.6 * dense + 0.4 * lexical: 0.5625 0.0926 -0.1612 -0.4938; scaled to [0, 1] over the candidates
    fused = fuse({1: 0.9, 2: 0.5, 3: 0.7}, {2: 10.0, 4: 4.0})
    assert [pid for pid, _ in fused] == [1, 2, 3, 4]
    assert [score for _, score in fused] == pytest.approx([1.0, 0.55515, 0.31495, 0.0], abs=1e-4)


def test_weight_moves_the_order() -> None:
    dense, lexical = {1: 0.9, 2: 0.5}, {2: 10.0, 1: 2.0}
    # two candidates: each side's z-scores are +1 and -1, so the weight decides
    assert fuse(dense, lexical, dense_weight=0.7)[0] == (1, pytest.approx(1.0))
    assert fuse(dense, lexical, dense_weight=0.3)[0] == (2, pytest.approx(1.0))


def test_ties_fall_back_to_dense_score_then_id() -> None:
    # equal fused scores: the higher raw dense score wins, then the lower id
    assert [pid for pid, _ in fuse({1: 0.2, 2: 0.4}, {1: 3.0, 2: 1.0}, dense_weight=0.5)] == [2, 1]
    assert [pid for pid, _ in fuse({5: 0.3, 4: 0.3}, {})] == [4, 5]


def test_empty_inputs() -> None:
    assert fuse({}, {}) == []
    assert fuse({7: 0.1}, {}) == [(7, pytest.approx(1.0))]  # one candidate is the best one
