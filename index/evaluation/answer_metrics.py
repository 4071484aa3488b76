"""Exact match and character F1 of an extractive answer, as CMRC 2018's evaluation defines them.

Following ``cmrc2018_evaluate.py``: text is lower-cased and stripped; EM compares
answer and gold after removing punctuation; F1 segments both into CJK characters
and whole non-CJK words (punctuation dropped) and scores the longest common
*substring* of the two segment lists (precision over the answer, recall over the
gold). Each question takes its best gold answer. Scores are in [0, 1].
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

# The list in cmrc2018_evaluate.py, plus ASCII punctuation.
PUNCTUATION = frozenset(
    [
        "-",
        ":",
        "_",
        "*",
        "^",
        "/",
        "\\",
        "~",
        "`",
        "+",
        "=",
        "，",
        "。",
        "：",
        "？",
        "！",
        "“",
        "”",
        "；",
        "’",
        "《",
        "》",
        "…",
        "·",
        "、",
        "「",
        "」",
        "（",
        "）",
        "－",
        "～",
        "『",
        "』",
    ]
) | frozenset(string.punctuation)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def remove_punctuation(text: str) -> str:
    return "".join(c for c in text.lower().strip() if c not in PUNCTUATION)


def segments(text: str) -> list[str]:
    """CJK characters one by one, other runs split into words; punctuation dropped."""
    out: list[str] = []
    word: list[str] = []
    for char in text.lower().strip():
        if _CJK.match(char) or char in PUNCTUATION or char.isspace():
            if word:
                out.append("".join(word))
                word = []
            if _CJK.match(char):
                out.append(char)
        else:
            word.append(char)
    if word:
        out.append("".join(word))
    return out


def longest_common_substring(a: Sequence[str], b: Sequence[str]) -> int:
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def f1(answer: str, golds: Sequence[str]) -> float:
    predicted = segments(answer)
    best = 0.0
    for gold in golds:
        expected = segments(gold)
        common = longest_common_substring(expected, predicted)
        if common == 0:
            continue
        precision, recall = common / len(predicted), common / len(expected)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def exact_match(answer: str, golds: Sequence[str]) -> float:
    mine = remove_punctuation(answer)
    return 1.0 if any(mine == remove_punctuation(gold) for gold in golds) else 0.0
