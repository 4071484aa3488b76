"""Corpus statistics for BM25, and a bm25s index scored with statistics given from outside.

A shard of a cluster holds part of the passages, but its BM25 scores must be those
the whole corpus would give, or scores from different shards could not be merged
into one ranking. BM25 needs three corpus numbers per field: how many passages
there are, their mean length, and in how many each token occurs. ``FieldStats``
holds them; they add up over shards (``merged``), so a cluster build counts them
per shard and writes the sum into every shard's lexical folder (``stats.json``).

``weighted.weighted_bm25`` builds a bm25s index of a shard's own passages whose precomputed
scores use those global numbers. It runs bm25s's own scoring functions with only
the statistics replaced, so a passage's score in its shard is bit-for-bit the score
it has in one index of the whole corpus (``tests/test_cluster.py``, the BM25 test).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

STATS_FILE = "stats.json"


@dataclass(frozen=True)
class FieldStats:
    """One field's BM25 statistics: passages, their total length in tokens, and document frequencies."""

    docs: int = 0
    length: int = 0
    frequencies: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, corpus: Iterable[Sequence[str]]) -> FieldStats:
        docs, length, df = 0, 0, Counter[str]()
        for tokens in corpus:
            docs += 1
            length += len(tokens)
            df.update(set(tokens))
        return cls(docs, length, dict(df))

    @property
    def mean_length(self) -> float:
        # what bm25s computes, np.mean of the lengths: an exact integer sum, divided once
        return float(np.float64(self.length) / self.docs) if self.docs else 0.0

    def merged(self, other: FieldStats) -> FieldStats:
        df = Counter(self.frequencies)
        df.update(other.frequencies)
        return FieldStats(self.docs + other.docs, self.length + other.length, dict(df))

    def frequency(self, token: str) -> int:
        return self.frequencies.get(token, 0)


@dataclass(frozen=True)
class CorpusStats:
    """The statistics of both lexical fields: passage text and headings."""

    text: FieldStats = field(default_factory=FieldStats)
    headings: FieldStats = field(default_factory=FieldStats)

    def merged(self, other: CorpusStats) -> CorpusStats:
        return CorpusStats(self.text.merged(other.text), self.headings.merged(other.headings))

    @classmethod
    def total(cls, parts: Iterable[CorpusStats]) -> CorpusStats:
        found = cls()
        for part in parts:
            found = found.merged(part)
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            name: {"docs": f.docs, "length": f.length, "frequencies": f.frequencies}
            for name, f in (("text", self.text), ("headings", self.headings))
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CorpusStats:
        fields = (data["text"], data["headings"])
        return cls(*(FieldStats(int(d["docs"]), int(d["length"]), dict(d["frequencies"])) for d in fields))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> CorpusStats | None:
        """The statistics saved at ``path``, or None when there are none (an ordinary, single-node index)."""
        if not path.exists():
            return None
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
