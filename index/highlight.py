"""Marking a query's terms in original-script text.

Matching happens on normalized text (so 互联网诊疗 finds 網際網路診療), and the
spans are mapped back through ``normalize_with_map``'s offsets, because
normalization can change length (網際網路 → 互联网).

A highlight is a maximal run of at least two normalized characters that also
occurs in the query, unless it consists only of function words (的, 是, 多少 ...).
"""

from __future__ import annotations

import re
from functools import lru_cache

from .normalize import normalize_with_map, original_span

MAX_TERM = 16
# Characters that carry no topic on their own: particles, question words, copulas.
STOP_CHARS = frozenset(
    "的了是在和与及或吗呢吧么什哪几多少怎如何为要把被对将也都就而之其这那个些有得地着过从到于以及请问"
)
_WORDY = re.compile(r"[\w\u3400-\u9fff]")


def _is_term(fragment: str) -> bool:
    if not (_WORDY.match(fragment[0]) and _WORDY.match(fragment[-1])):
        return False
    return not all(ch in STOP_CHARS or not _WORDY.match(ch) for ch in fragment)


def query_fragments(norm_query: str) -> set[str]:
    """Every substring of 2..MAX_TERM characters of the normalized query."""
    n = len(norm_query)
    return {norm_query[i:j] for i in range(n) for j in range(i + 2, min(n, i + MAX_TERM) + 1)}


def normalized_spans(fragments: set[str], norm_text: str) -> list[tuple[int, int]]:
    """Greedy longest matches of query fragments in normalized text, merged when adjacent."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(norm_text):
        for length in range(min(MAX_TERM, len(norm_text) - i), 1, -1):
            piece = norm_text[i : i + length]
            if piece in fragments and _is_term(piece):
                if spans and spans[-1][1] == i:
                    spans[-1] = (spans[-1][0], i + length)
                else:
                    spans.append((i, i + length))
                i += length
                break
        else:
            i += 1
    return spans


@lru_cache(maxsize=8192)  # the same passages come back query after query
def _mapped(text: str) -> tuple[str, list[int]]:
    return normalize_with_map(text)


def highlights(norm_query: str, text: str) -> list[tuple[int, int]]:
    """``[start, end)`` spans of ``text`` (original script) that match the query."""
    norm_text, offsets = _mapped(text)
    fragments = query_fragments(norm_query)
    return [original_span(offsets, a, b) for a, b in normalized_spans(fragments, norm_text)]
