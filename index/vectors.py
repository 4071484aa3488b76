"""The FAISS half of an index: passage vectors keyed by passage id.

Exact inner product over unit vectors (cosine), inside an ID map so passages
keep stable ids and can be removed or read back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from .errors import IndexError_


class VectorIndex:
    def __init__(self, index: faiss.Index) -> None:
        self._index = index

    @classmethod
    def empty(cls, dim: int) -> VectorIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        try:
            return cls(faiss.read_index(str(path)))
        except RuntimeError as exc:
            raise IndexError_(f"cannot read vector index {path}: {exc}") from exc

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)  # type: ignore[attr-defined]

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, np.int64))

    def remove(self, ids: Sequence[int]) -> int:
        if not len(ids):
            return 0
        return int(self._index.remove_ids(np.asarray(ids, dtype=np.int64)))  # type: ignore[arg-type]

    def remove_range(self, start: int, stop: int) -> int:
        """Remove every id in ``[start, stop)``."""
        return int(self._index.remove_ids(faiss.IDSelectorRange(start, stop)))

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        return np.stack([self._index.reconstruct(int(i)) for i in ids]) if len(ids) else np.zeros((0, self.dim))

    def search(
        self, queries: np.ndarray, k: int, params: faiss.SearchParameters | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids, best first; missing hits have id -1."""
        k = max(1, min(k, len(self))) if len(self) else 1
        x = np.ascontiguousarray(queries, dtype=np.float32)
        if params is None:
            return self._index.search(x, k)
        return self._index.search(x, k, params=params)

    def copy(self) -> VectorIndex:
        return VectorIndex(faiss.clone_index(self._index))

    def save(self, path: Path) -> None:
        """Write to a temporary file, fsync, then rename over ``path``."""
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self._index, str(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
