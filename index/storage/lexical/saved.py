"""A saved bm25s index, read and scored without importing bm25s.

Importing bm25s brings scipy and numba: 0.4 s and ~90 MB of every process that only reads an
index (a cold ``zhsearch search``, the server's start). What a query needs of a saved field is
small: the parameters, the vocabulary and the three arrays of precomputed scores (one column of
passages per token), summed over the query's tokens. ``SavedBM25`` reads the files ``BM25.save``
writes and scores exactly as bm25s's numpy backend does (the same ``np.add.at`` over the same
float32 arrays, token by token, in the query's order: equal bit for bit, ``tests/test_lexical.py``).
Building and rebuilding a base still run bm25s itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

#: bm25s's defaults (``bm25s.BM25()``), which every field of an index is built with.
K1 = 1.5
B = 0.75
#: Variants whose scores are the precomputed arrays alone (BM25L and BM25+ add a per-token constant).
METHODS = ("lucene", "robertson", "atire")


class SavedBM25:
    """What a query reads of a bm25s index saved in ``folder`` (``load``), or of an empty field (``empty``)."""

    def __init__(self, k1: float, b: float, vocab: dict[str, int], scores: dict[str, Any], dtype: str) -> None:
        self.k1 = k1
        self.b = b
        self.vocab_dict = vocab
        self.scores = scores
        self.dtype = dtype

    @classmethod
    def empty(cls) -> SavedBM25:
        """A field of no passages (bm25s's defaults, no scores)."""
        return cls(K1, B, {}, {}, "float32")

    @classmethod
    def load(cls, folder: Path, *, mmap: bool = False) -> SavedBM25:
        """The index ``BM25.save`` wrote to ``folder``; ``mmap`` maps the arrays instead of reading them."""
        params = json.loads((folder / "params.index.json").read_text(encoding="utf-8"))
        if params.get("method", "lucene") not in METHODS:
            raise ValueError(f"{folder} is a {params.get('method')} index, which needs bm25s to score")
        vocab = json.loads((folder / "vocab.index.json").read_text(encoding="utf-8"))
        scores: dict[str, Any] = {
            name: np.load(folder / f"{name}.csc.index.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
            for name in ("data", "indices", "indptr")
        }
        scores["num_docs"] = params.get("num_docs")
        k1, b = float(params.get("k1", K1)), float(params.get("b", B))
        return cls(k1, b, vocab, scores, params.get("dtype", "float32"))

    def get_scores(self, tokens: list[str]) -> np.ndarray:
        """Every passage's score for ``tokens`` (those outside the vocabulary count for nothing)."""
        ids = np.asarray([self.vocab_dict[t] for t in tokens if t in self.vocab_dict], dtype=np.int64)
        data, indices, indptr = self.scores["data"], self.scores["indices"], self.scores["indptr"]
        scores = np.zeros(int(self.scores["num_docs"]), dtype=np.dtype(self.dtype))
        for token in ids:
            start, end = indptr[token], indptr[token + 1]
            np.add.at(scores, indices[start:end], data[start:end])
        return scores
