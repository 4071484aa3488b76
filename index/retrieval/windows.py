"""The stretches of text the span reader reads: a sentence with as much of its neighbourhood as fits.

An answer is read from a window of ``WINDOW_CHARS`` characters around a candidate sentence (the
sentences before and after it added in turn while they fit), so a sentence that says 其 or 该 is
read with the sentence that names what it means. Training (``benchmarks/train_reader.py``) cuts
its windows with the same function, so the reader sees at run time what it learned on.
"""

from __future__ import annotations

from ..text.chunk import Span

WINDOW_CHARS = 200


def window_around(spans: list[Span], i: int, chars: int = WINDOW_CHARS) -> Span:
    """Sentence ``i`` of ``spans`` (``text.chunk.passage_sentences``) grown by whole neighbouring
    sentences, at most ``chars`` long (a longer sentence alone is its own window)."""
    lo = hi = i
    grown = True
    while grown:
        grown = False
        if hi + 1 < len(spans) and spans[hi + 1][1] - spans[lo][0] <= chars:
            hi += 1
            grown = True
        if lo > 0 and spans[hi][1] - spans[lo - 1][0] <= chars:
            lo -= 1
            grown = True
    return spans[lo][0], spans[hi][1]
