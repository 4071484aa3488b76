"""index.evaluation.answer_metrics: EM and character F1, worked out by hand."""

from __future__ import annotations

import pytest

from index.evaluation.answer_metrics import exact_match, f1, longest_common_substring, segments


def test_segments() -> None:
    assert segments("光荣和ω-Force，2010年") == ["光", "荣", "和", "ω", "force", "2010", "年"]


def test_longest_common_substring_is_contiguous() -> None:
    assert longest_common_substring(list("abcde"), list("xbcdy")) == 3
    assert longest_common_substring(list("ab"), list("ba")) == 1
    assert longest_common_substring([], list("a")) == 0


@pytest.mark.parametrize(
    ("answer", "golds", "em", "score"),
    [
        ("歐洲", ["歐洲"], 1.0, 1.0),
        ("歐洲。", ["歐洲"], 1.0, 1.0),  # punctuation does not count
        # answer 現存洞窟七百三十五個 (10 segments), gold 七百三十五個 (6): common 6
        # precision 6/10, recall 6/6 -> F1 = 2 * 0.6 * 1 / 1.6 = 0.75
        ("現存洞窟七百三十五個", ["七百三十五個"], 0.0, pytest.approx(0.75)),
        ("不相干", ["歐洲"], 0.0, 0.0),
        ("歐洲", ["亞洲", "歐洲大陸"], 0.0, pytest.approx(2 * 1.0 * 0.5 / 1.5)),  # best gold: 歐洲 in 歐洲大陸
    ],
)
def test_em_and_f1_by_hand(answer: str, golds: list[str], em: float, score: float) -> None:
    assert exact_match(answer, golds) == em
    assert f1(answer, golds) == score
