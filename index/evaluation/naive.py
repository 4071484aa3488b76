"""The naive dense baseline that every quality report carries beside zhsearch's own modes.

What a first attempt with the same model gets: OpenCC ``t2s`` on both sides, fixed
250-character windows with stride 200 over each document's text, the model's
document and query prompts, and a document scored by its best window. No sentence
vectors, no section prefix, no phrase table, no lexical part. A choice of ours that
falls below it on questions we did not write is a loss (issue 12).

Window vectors are cached by model fingerprint and corpus content, so a report
embeds a corpus's windows once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path

import faiss
import numpy as np

from ..models import Embedder

WINDOW = 250
STRIDE = 200
GROUP = 256  # windows embedded per progress step


def windows(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` of each window; the last one reaches the end of the text."""
    starts = range(0, max(len(text) - (WINDOW - STRIDE), 1), STRIDE)
    return [(start, min(start + WINDOW, len(text))) for start in starts]


class NaiveDense:
    """Windows of every document in one exact FAISS index; documents ranked by their best window."""

    def __init__(
        self,
        texts: Mapping[str, str],
        embedder: Embedder,
        *,
        cache_dir: Path | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        import opencc

        self._t2s = opencc.OpenCC("t2s")
        self._embedder = embedder
        self.doc_ids: list[str] = []
        self.texts: list[str] = []
        for doc_id in sorted(texts):
            simplified = str(self._t2s.convert(texts[doc_id]))
            for start, end in windows(simplified):
                self.doc_ids.append(doc_id)
                self.texts.append(simplified[start:end])
        vectors = self._vectors(cache_dir, progress)
        self._index = faiss.IndexFlatIP(embedder.dim)
        if len(vectors):
            self._index.add(vectors)

    def _vectors(self, cache_dir: Path | None, progress: Callable[[int, int], None] | None) -> np.ndarray:
        digest = hashlib.sha256(self._embedder.fingerprint.encode())
        for doc_id, text in zip(self.doc_ids, self.texts, strict=True):
            digest.update(f"{doc_id}\0{text}\n".encode())
        cached = cache_dir / f"naive-{WINDOW}-{STRIDE}-{digest.hexdigest()[:20]}.npy" if cache_dir else None
        if cached is not None and cached.exists():
            loaded: np.ndarray = np.load(cached)
            return loaded
        parts = []
        if progress:
            progress(0, len(self.texts))  # the bar is on screen before the first group is embedded
        for start in range(0, len(self.texts), GROUP):
            parts.append(self._embedder.encode_documents(self.texts[start : start + GROUP]))
            if progress:
                progress(min(start + GROUP, len(self.texts)), len(self.texts))
        vectors = np.vstack(parts).astype(np.float32) if parts else np.zeros((0, self._embedder.dim), np.float32)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(cached.name + ".tmp.npy")
            np.save(tmp, vectors)
            tmp.replace(cached)
        return vectors

    def window_scores(self, query: str, depth: int) -> list[tuple[int, float]]:
        """Window numbers and cosines, best first."""
        if not self.texts:
            return []
        vector = self._embedder.encode_queries([str(self._t2s.convert(query))])
        scores, ids = self._index.search(np.asarray(vector, np.float32), min(depth, len(self.texts)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def rank_documents(self, query: str, depth: int) -> list[tuple[str, float]]:
        """Documents by their best window, best first."""
        best: dict[str, float] = {}
        for window, score in self.window_scores(query, depth * 8):
            best.setdefault(self.doc_ids[window], score)
        return list(best.items())[:depth]
