"""The delta of the lexical index: passages written since its base, in immutable segments.

Kept apart from ``lexical`` (which tokenizes and owns the base): a write adds one
segment of token postings for the passages it added, so it costs what it adds; a
newer segment that reaches half the size of the one before is merged into it, so a
query visits a logarithmic number of segments. Removed rows are masked, not dropped,
until the base is rebuilt.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class BaseField(Protocol):
    """What delta scoring needs of the base's field: its statistics and BM25 parameters."""

    docs: int
    mean_length: float

    @property
    def model(self) -> Any: ...  # a bm25s.BM25: its k1 and b

    def frequency(self, token: str) -> int: ...


@dataclass(frozen=True)
class _Postings:
    """One field of a delta segment: token -> (rows, term frequencies), and each row's length in tokens."""

    postings: dict[str, tuple[np.ndarray, np.ndarray]]
    lengths: np.ndarray

    @classmethod
    def of(cls, docs: Sequence[Counter[str]]) -> _Postings:
        gathered: dict[str, tuple[list[int], list[int]]] = {}
        for position, counts in enumerate(docs):
            for token, tf in counts.items():
                where, freq = gathered.setdefault(token, ([], []))
                where.append(position)
                freq.append(tf)
        postings = {t: (np.asarray(w, np.int64), np.asarray(f, np.float32)) for t, (w, f) in gathered.items()}
        return cls(postings, np.asarray([sum(c.values()) for c in docs], np.float32))

    def joined(self, newer: _Postings) -> _Postings:
        """This field's rows, then ``newer``'s."""
        offset = len(self.lengths)
        postings = dict(self.postings)
        for token, (where, tf) in newer.postings.items():
            mine = postings.get(token)
            postings[token] = (
                (where + offset, tf)
                if mine is None
                else (np.concatenate([mine[0], where + offset]), np.concatenate([mine[1], tf]))
            )
        return _Postings(postings, np.concatenate([self.lengths, newer.lengths]))


@dataclass(frozen=True)
class _Segment:
    """Passages written since the base, in one immutable block; removed rows are masked, not dropped."""

    ids: np.ndarray
    alive: np.ndarray
    text: _Postings
    headings: _Postings

    @classmethod
    def of(cls, ids: Sequence[int], text: Sequence[Counter[str]], headings: Sequence[Counter[str]]) -> _Segment:
        return cls(np.asarray(ids, np.int64), np.ones(len(ids), bool), _Postings.of(text), _Postings.of(headings))

    def joined(self, newer: _Segment) -> _Segment:
        return _Segment(
            np.concatenate([self.ids, newer.ids]),
            np.concatenate([self.alive, newer.alive]),
            self.text.joined(newer.text),
            self.headings.joined(newer.headings),
        )


class Delta:
    """The passages written since the base: immutable segments, merged pairwise as they grow.

    Adding builds a segment of the new passages only, so a write costs what it adds; a
    newer segment that reaches half the size of the one before is merged into it, so a
    query visits a logarithmic number of segments.
    """

    def __init__(self, segments: Sequence[_Segment] = ()) -> None:
        self.segments = tuple(segments)
        self.count = sum(int(s.alive.sum()) for s in self.segments)

    @property
    def ids(self) -> np.ndarray:
        if not self.segments:
            return np.zeros(0, np.int64)
        return np.concatenate([s.ids[s.alive] for s in self.segments])

    def with_added(self, ids: Sequence[int], text: Sequence[Counter[str]], headings: Sequence[Counter[str]]) -> Delta:
        """This delta and passages ``ids`` (their token counts in text and headings)."""
        if not len(ids):
            return self
        segments = [*self.segments, _Segment.of(ids, text, headings)]
        while len(segments) >= 2 and len(segments[-2].ids) <= 2 * len(segments[-1].ids):
            segments[-2:] = [segments[-2].joined(segments[-1])]
        return Delta(segments)

    def without(self, gone: np.ndarray) -> Delta:
        if not len(gone) or not self.segments:
            return self
        segments = []
        for s in self.segments:
            doomed = np.isin(s.ids, gone) & s.alive
            segments.append(_Segment(s.ids, s.alive & ~doomed, s.text, s.headings) if doomed.any() else s)
        return Delta([s for s in segments if s.alive.any()])

    def scores(self, base: BaseField, field: str, tokens: list[str]) -> np.ndarray:
        """BM25 of the live rows, in ``ids`` order, as bm25s computes it (Lucene idf, Robertson tf),
        over the statistics of base and delta together."""
        parts = [getattr(s, field) for s in self.segments]
        if not self.count:
            return np.zeros(0, np.float32)
        n = base.docs + self.count
        total = sum(float(p.lengths[s.alive].sum()) for p, s in zip(parts, self.segments, strict=True))
        mean = (base.mean_length * base.docs + total) / n
        k1, b = float(base.model.k1), float(base.model.b)
        outs = [np.zeros(len(s.ids), np.float32) for s in self.segments]
        norms = [k1 * (1 - b + b * p.lengths / max(mean, 1e-9)) for p in parts]
        for token in tokens:
            found = [p.postings.get(token) for p in parts]
            df = base.frequency(token) + sum(
                int(s.alive[f[0]].sum()) for s, f in zip(self.segments, found, strict=True) if f is not None
            )
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            for out, norm, f in zip(outs, norms, found, strict=True):
                if f is not None:
                    where, tf = f
                    out[where] += idf * tf / (norm[where] + tf)
        return np.concatenate([out[s.alive] for out, s in zip(outs, self.segments, strict=True)])
