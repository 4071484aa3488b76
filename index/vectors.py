"""FAISS vectors keyed by stable ids, exact or approximate by size.

Up to ``FLAT_LIMIT`` vectors the index is exact inner product over unit
vectors (cosine). Beyond that an exact scan costs too much memory bandwidth
(1M x 384 float32 is 1.5 GB, >= 35 ms per query at ~45 GB/s), so the index is
an IVF with 8-bit scalar quantization: ``nlist = 4 * sqrt(n)`` lists, trained
on the vectors themselves, searching ``nprobe`` lists (the search-time knob,
``ZHSEARCH_NPROBE``). Both kinds sit inside an ID map, so passages keep their
ids and can be added, removed and read back after the build (an IVF keeps
external ids itself, with a hashtable from id to list position).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from .errors import IndexError_

FLAT_LIMIT = 200_000
DEFAULT_NPROBE = 16


def _ivf_of(index: faiss.Index) -> faiss.IndexIVF | None:
    return index if isinstance(index, faiss.IndexIVF) else None


def _ivf_ids(ivf: faiss.IndexIVF) -> np.ndarray:
    lists = ivf.invlists
    if lists is None:
        return np.zeros(0, np.int64)
    chunks = []
    for n in range(ivf.nlist):
        size = lists.list_size(n)
        if size:
            chunks.append(faiss.rev_swig_ptr(lists.get_ids(n), size).copy())
    return np.concatenate(chunks).astype(np.int64) if chunks else np.zeros(0, np.int64)


class VectorIndex:
    def __init__(self, index: faiss.Index) -> None:
        self._index = index
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.nprobe = DEFAULT_NPROBE

    @classmethod
    def empty(cls, dim: int) -> VectorIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def for_size(cls, dim: int, expected: int, *, flat_limit: int = FLAT_LIMIT) -> VectorIndex:
        """Exact for small collections, IVF + SQ8 (trained when ``flush`` runs) for large ones."""
        if expected <= flat_limit:
            return cls.empty(dim)
        nlist = max(64, int(4 * expected**0.5))
        ivf = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(dim), dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
        return cls(ivf)

    @property
    def kind(self) -> str:
        ivf = _ivf_of(self._index)
        if ivf is None:
            return "IndexIDMap2(IndexFlatIP)"
        return f"IVF{ivf.nlist},SQ8,IP"

    def flush(self) -> None:
        """Train an untrained index on the vectors added so far, then add them."""
        if not self._pending:
            return
        ids = np.concatenate([i for i, _ in self._pending])
        vectors = np.concatenate([v for _, v in self._pending])
        self._pending = []
        if not self._index.is_trained:
            ivf = _ivf_of(self._index)
            sample = vectors
            if ivf is not None and len(vectors) > 256 * ivf.nlist:
                rng = np.random.default_rng(0)
                sample = vectors[rng.choice(len(vectors), 256 * ivf.nlist, replace=False)]
            self._index.train(sample)
        self._index.add_with_ids(vectors, ids)

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
        return int(self._index.ntotal) + sum(len(i) for i, _ in self._pending)

    def ids(self) -> np.ndarray:
        self.flush()
        ivf = _ivf_of(self._index)
        if ivf is not None:
            return _ivf_ids(ivf)
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)  # type: ignore[attr-defined]

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        if not len(ids):
            return
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if self._index.is_trained and not self._pending:
            self._index.add_with_ids(x, np.asarray(ids, np.int64))
        else:  # an IVF learns its lists from the whole collection first
            self._pending.append((np.asarray(ids, np.int64), x))

    def remove(self, ids: Sequence[int]) -> int:
        if not len(ids):
            return 0
        self.flush()
        array = np.asarray(ids, dtype=np.int64)
        if _ivf_of(self._index) is not None:  # the id hashtable removes only explicit id lists
            return int(self._index.remove_ids(faiss.IDSelectorArray(len(array), faiss.swig_ptr(array))))
        return int(self._index.remove_ids(array))  # type: ignore[arg-type]

    def remove_range(self, start: int, stop: int) -> int:
        """Remove every id in ``[start, stop)``."""
        self.flush()
        if _ivf_of(self._index) is not None:
            ids = self.ids()
            return self.remove(ids[(ids >= start) & (ids < stop)].tolist())
        return int(self._index.remove_ids(faiss.IDSelectorRange(start, stop)))

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        self.flush()
        if not len(ids):
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._index.reconstruct_batch(np.asarray(ids, dtype=np.int64))

    def search(
        self, queries: np.ndarray, k: int, params: faiss.SearchParameters | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids, best first; missing hits have id -1."""
        self.flush()
        k = max(1, min(k, len(self))) if len(self) else 1
        x = np.ascontiguousarray(queries, dtype=np.float32)
        if _ivf_of(self._index) is not None:
            sel = params.sel if params is not None else None
            params = faiss.SearchParametersIVF(nprobe=self.nprobe, sel=sel)  # type: ignore[call-arg]
        if params is None:
            return self._index.search(x, k)
        return self._index.search(x, k, params=params)

    def copy(self) -> VectorIndex:
        self.flush()
        clone = VectorIndex(faiss.clone_index(self._index))
        clone.nprobe = self.nprobe
        return clone

    def save(self, path: Path) -> None:
        """Write to a temporary file, fsync, then rename over ``path``."""
        self.flush()
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self._index, str(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
