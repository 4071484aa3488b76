"""A deterministic, model-free embedder for fast unit tests and for benchmarks of the index mechanics.

``ZHSEARCH_MODEL=hashing`` gives 256 dimensions; ``hashing-384`` (any ``hashing-N``) gives N,
e.g. the 384 of multilingual-e5-small, so a benchmark's vectors weigh what the model's would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from .base import DOCUMENT_BATCH, unit_rows

HASHING_MODEL_NAME = "hashing-bigram-256"


class HashingEmbedder:
    """Character unigrams and bigrams hashed into a fixed-size unit vector."""

    name = HASHING_MODEL_NAME
    fingerprint = "hashing-v1"
    max_tokens = 512

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        if dim != 256:
            self.name = f"hashing-bigram-{dim}"  # the default keeps the name indexes were built under

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        grams = list(text) + [text[i : i + 2] for i in range(len(text) - 1)]
        for gram in grams:
            digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest()
            vec[int.from_bytes(digest[:4], "little") % self.dim] += 1.0 if digest[4] & 1 else -1.0
        return vec

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return unit_rows(np.stack([self._vector(t) for t in texts]))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_documents(self, texts: Sequence[str], batch_size: int = DOCUMENT_BATCH) -> np.ndarray:
        return self._encode(texts)

    def count_tokens(self, text: str) -> int:
        return len(text) + 2
