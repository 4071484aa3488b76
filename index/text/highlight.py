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


@lru_cache(maxsize=256)
def query_fragments(norm_query: str) -> frozenset[str]:
    """Every substring of 2..MAX_TERM characters of the normalized query."""
    n = len(norm_query)
    return frozenset(norm_query[i:j] for i in range(n) for j in range(i + 2, min(n, i + MAX_TERM) + 1))


def normalized_spans(fragments: frozenset[str], norm_text: str) -> list[tuple[int, int]]:
    """Greedy longest matches of query fragments in normalized text, merged when adjacent.

    Every fragment's prefixes (of 2+ characters) are fragments too, so the matches
    at a position are the lengths 2..L for the longest L found by extending one
    character at a time; most positions fail at the first bigram.
    """
    spans: list[tuple[int, int]] = []
    n = len(norm_text)
    i = 0
    while i < n - 1:
        if norm_text[i : i + 2] not in fragments:
            i += 1
            continue
        longest = 2
        limit = min(MAX_TERM, n - i)
        while longest < limit and norm_text[i : i + longest + 1] in fragments:
            longest += 1
        for length in range(longest, 1, -1):
            if _is_term(norm_text[i : i + length]):
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
