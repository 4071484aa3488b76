"""A bm25s index scored with corpus statistics given from outside (a shard's; see ``stats``).

Apart from ``stats`` so that reading an index never imports bm25s (``saved``): only a build does.
"""

from __future__ import annotations

from typing import Any

import bm25s
import numpy as np
from bm25s import scoring

from .stats import FieldStats


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
