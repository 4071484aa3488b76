"""Corpus statistics for BM25, and a bm25s index scored with statistics given from outside.

A shard of a cluster holds part of the passages, but its BM25 scores must be those
the whole corpus would give, or scores from different shards could not be merged
into one ranking. BM25 needs three corpus numbers per field: how many passages
there are, their mean length, and in how many each token occurs. ``FieldStats``
holds them; they add up over shards (``merged``), so a cluster build counts them
per shard and writes the sum into every shard's lexical folder (``stats.json``).

``weighted_bm25`` builds a bm25s index of a shard's own passages whose precomputed
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

import bm25s
import numpy as np
from bm25s import scoring

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


class _Weighted(bm25s.BM25):  # type: ignore[misc]
    """bm25s, with the idf and mean length of ``stats`` instead of those of the corpus it indexes.

    A token ``stats`` does not know (written after the statistics were taken) counts with
    its frequency in this corpus.
    """

    def __init__(self, stats: FieldStats) -> None:
        super().__init__()
        self._given = stats

    def build_index_from_tokens(
        self, corpus_tokens: list[list[str]], show_progress: bool = False, leave_progress: bool = False
    ) -> tuple[dict[str, Any], dict[str, int]]:
        vocab: dict[str, int] = {}
        for tokens in corpus_tokens:
            for token in tokens:
                vocab.setdefault(token, len(vocab))
        ids = [[vocab[t] for t in tokens] for tokens in corpus_tokens]
        local = scoring._calculate_doc_freqs(ids, list(vocab.values()), show_progress=False)
        given = {vocab[t]: self._given.frequencies.get(t, local[vocab[t]]) for t in vocab}
        idf = scoring._build_idf_array(
            doc_frequencies=given,
            n_docs=self._given.docs,
            compute_idf_fn=scoring._select_idf_scorer(self.idf_method),
            dtype=self.dtype,
        )
        mean = np.float64(self._given.length) / self._given.docs
        flat, rows, cols = scoring._build_scores_and_indices_for_matrix(
            corpus_token_ids=ids,
            idf_array=idf,
            avg_doc_len=mean,
            doc_frequencies=local,  # sizes the arrays: the entries of this corpus
            k1=self.k1,
            b=self.b,
            delta=self.delta,
            nonoccurrence_array=None,
            method=self.method,
            dtype=self.dtype,
            int_dtype=self.int_dtype,
            show_progress=False,
        )
        data, indices, indptr = self._np_csc(data=flat, rows=rows, cols=cols, shape=(len(ids), len(vocab)))
        self.nonoccurrence_array = None  # what bm25s sets for the Lucene variant
        scores = {"data": data.astype(self.dtype), "indices": indices, "indptr": indptr, "num_docs": len(ids)}
        return scores, vocab


def weighted_bm25(corpus: list[list[str]], stats: FieldStats) -> bm25s.BM25:
    """A bm25s index of ``corpus`` (tokens per passage) scored with the statistics ``stats``."""
    if stats.docs <= 0:
        raise ValueError("global statistics need at least one passage")
    model = _Weighted(stats)
    model.index(corpus, show_progress=False)
    return model
