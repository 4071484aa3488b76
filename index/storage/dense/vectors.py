"""FAISS vectors keyed by stable ids, exact or approximate by size.

Up to ``FLAT_LIMIT`` vectors the index is an exact inner-product scan over unit
vectors (cosine); past it, an HNSW graph (``M = 48``, ``efConstruction = 240``)
searched with ``ef_search`` candidates (``ZHSEARCH_EF_SEARCH``). IVF was dropped
for its recall on e5's clustered vectors. Both kinds sit inside an
``IndexIDMap2``, so vectors keep their ids and can be added, removed and read back.
Measurements: docs/decisions.md, "Vector index by size".

Deleting from a graph: FAISS cannot remove ids from an HNSW index, so removal
writes a tombstone: the entry's id in the id map becomes ``-1``, and every
search carries a selector that admits only ids >= 0. The tombstones live in the
index file itself, so a save stays one atomic rename. When tombstones pass
``COMPACT_FRACTION`` of the graph it is rebuilt from the live vectors (inside
the writer's copy, so searches keep using the previous snapshot meanwhile).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from ...errors import IndexUnavailableError
from ..ids import find_sorted

FLAT_LIMIT = 20_000
DEFAULT_EF_SEARCH = 256
HNSW_M = 48
HNSW_EF_CONSTRUCTION = 240
COMPACT_FRACTION = 0.2
TOMBSTONE = -1
_LIVE = faiss.IDSelectorRange(0, 2**62)  # admits every id that is not a tombstone
#: Selectors of the filters used most recently, by their id array (a filter's admitted ids are one
#: array per snapshot, ``snapshot.Admitted``): building one over 50,000 ids took 1.4 ms a query.
_SELECTORS_KEPT = 16
_selectors: dict[int, tuple[np.ndarray, faiss.IDSelector]] = {}
_selecting = threading.Lock()


def _selector(ids: np.ndarray) -> faiss.IDSelector:
    """An ``IDSelectorBatch`` over ``ids``, shared by the searches of one filter (read-only in FAISS,
    so threads share it); the entry keeps its array alive, so an id is never reused while kept."""
    with _selecting:
        found = _selectors.get(id(ids))
        if found is not None and found[0] is ids:
            return found[1]
    made = faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64))
    with _selecting:
        _selectors[id(ids)] = (ids, made)
        while len(_selectors) > _SELECTORS_KEPT:
            _selectors.pop(next(iter(_selectors)))
    return made


def _hnsw(dim: int) -> faiss.IndexIDMap2:
    graph = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    return faiss.IndexIDMap2(graph)


class VectorIndex:
    def __init__(self, index: faiss.IndexIDMap2) -> None:
        inner = faiss.downcast_index(index.index)
        if not isinstance(inner, faiss.IndexFlatIP | faiss.IndexHNSWFlat):
            raise IndexUnavailableError(f"unsupported vector index {type(inner).__name__}; rebuild the index")
        self._index = index
        self._graph = inner if isinstance(inner, faiss.IndexHNSWFlat) else None
        self._dead = int(np.count_nonzero(self._id_map() == TOMBSTONE)) if self._graph is not None else 0
        self.ef_search = DEFAULT_EF_SEARCH
        self._sorted: np.ndarray | None = None  # sorted live ids, built on first need, dropped on any change
        #: The vectors are a mapping of the file (``load(mmap=True)``): never change this index in place.
        self.mapped = False

    @classmethod
    def empty(cls, dim: int) -> VectorIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def for_size(cls, dim: int, expected: int, *, flat_limit: int | None = None) -> VectorIndex:
        """Exact for up to ``flat_limit`` (default ``FLAT_LIMIT``) vectors, HNSW beyond."""
        limit = FLAT_LIMIT if flat_limit is None else flat_limit
        return cls.empty(dim) if expected <= limit else cls(_hnsw(dim))

    @property
    def kind(self) -> str:
        if self._graph is None:
            return "IndexIDMap2(IndexFlatIP)"
        return f"IndexIDMap2(IndexHNSWFlat,M={HNSW_M},efConstruction={self._graph.hnsw.efConstruction},IP)"

    @property
    def approximate(self) -> bool:
        return self._graph is not None

    def _id_map(self) -> np.ndarray:
        """The id of each stored vector, by position; a writable view for the HNSW kind."""
        ids = self._index.id_map
        return faiss.rev_swig_ptr(ids.data(), ids.size()) if ids.size() else np.zeros(0, np.int64)

    @classmethod
    def load(cls, path: Path, *, mmap: bool = False) -> VectorIndex:
        """The index in ``path``; with ``mmap`` its vectors stay in the file, mapped, not read into memory.

        A mapped index must not be changed in place (``copy`` it first): a served index is the
        checkpoint of a ``LayeredIndex``, which never changes it. Replacing the file (a new
        checkpoint) leaves a mapping of the old one valid until it is dropped.
        """
        try:
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mmap else 0)
        except RuntimeError as exc:
            raise IndexUnavailableError(f"cannot read vector index {path}: {exc}") from exc
        if not isinstance(index, faiss.IndexIDMap2):
            raise IndexUnavailableError(f"unsupported vector index in {path}; rebuild the index")
        loaded = cls(index)
        loaded.mapped = mmap
        return loaded

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal) - self._dead

    @property
    def tombstones(self) -> int:
        return self._dead

    def ids(self) -> np.ndarray:
        ids = self._id_map().astype(np.int64)
        return ids[ids != TOMBSTONE] if self._dead else ids

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        if not len(ids):
            return
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        self._index.add_with_ids(x, np.asarray(ids, np.int64))
        self._sorted = None

    def remove(self, ids: Sequence[int]) -> int:
        if not len(ids):
            return 0
        self._sorted = None
        array = np.asarray(ids, dtype=np.int64)
        if self._graph is None:
            return int(self._index.remove_ids(array))  # type: ignore[arg-type]
        id_map = self._id_map()
        return self._bury(np.isin(id_map, array))

    def remove_range(self, start: int, stop: int) -> int:
        """Remove every id in ``[start, stop)``."""
        self._sorted = None
        if self._graph is None:
            return int(self._index.remove_ids(faiss.IDSelectorRange(start, stop)))
        id_map = self._id_map()
        return self._bury((id_map >= start) & (id_map < stop))

    def remove_ranges(self, starts: np.ndarray, stops: np.ndarray) -> int:
        """Remove every id in any ``[starts[i], stops[i])`` (as ``LayeredIndex.remove_ranges``)."""
        return sum(self.remove_range(int(a), int(b)) for a, b in zip(starts, stops, strict=True))

    def _bury(self, doomed: np.ndarray) -> int:
        """Tombstone the entries marked in ``doomed``; compact when too many are dead."""
        count = int(np.count_nonzero(doomed))
        if count:
            self._id_map()[doomed] = TOMBSTONE  # rev_map keeps stale keys; only live ids are looked up
            self._dead += count
            if self._dead > COMPACT_FRACTION * self._index.ntotal:
                self.compact()
        return count

    def compact(self) -> None:
        """Rebuild the graph from the live vectors, dropping tombstones."""
        if self._graph is None or not self._dead:
            return
        ids = self.ids()
        vectors = self.vectors(ids.tolist())
        fresh = _hnsw(self.dim)
        if len(ids):
            fresh.add_with_ids(vectors, ids)
        self._index = fresh
        self._graph = faiss.downcast_index(fresh.index)  # type: ignore[assignment]
        self._dead = 0

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._index.reconstruct_batch(np.asarray(ids, dtype=np.int64))

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None, excluded: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids, best first; missing hits have id -1.

        ``allowed`` restricts the search to those ids, ``excluded`` leaves those out (the
        ids a layered index removed since this one was written). The graph is no good at
        a narrow filter (most of its neighbours are refused), so a filter of up to
        ``FLAT_LIMIT`` ids is searched exactly, by reading those vectors back.
        """
        k = max(1, min(k, len(self))) if len(self) else 1
        x = np.ascontiguousarray(queries, dtype=np.float32)
        if excluded is not None and not len(excluded):
            excluded = None
        if self._graph is not None and allowed is not None and len(allowed) <= FLAT_LIMIT:
            wanted_ids = np.asarray(allowed, dtype=np.int64)
            if excluded is not None:
                wanted_ids = np.setdiff1d(wanted_ids, excluded)
            return self._exact_among(x, k, wanted_ids)
        # Each selector is held by a local until the search returns: FAISS keeps raw pointers to them.
        parts: list[faiss.IDSelector] = []
        wanted = None if allowed is None else _selector(allowed)
        if wanted is not None:
            parts.append(wanted)
        refused = None if excluded is None else faiss.IDSelectorBatch(np.asarray(excluded, dtype=np.int64))
        refusing = None if refused is None else faiss.IDSelectorNot(refused)
        if refusing is not None:
            parts.append(refusing)
        if self._graph is not None and self._dead:
            parts.append(_LIVE)
        sel: faiss.IDSelector | None = None
        joined = []  # every IDSelectorAnd made, kept alive with what it points to
        for part in parts:
            sel = part if sel is None else faiss.IDSelectorAnd(sel, part)
            joined.append(sel)
        if self._graph is None:
            if sel is None:
                return self._index.search(x, k)
            return self._index.search(x, k, params=faiss.SearchParameters(sel=sel))  # type: ignore[call-arg]
        params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k), sel=sel)  # type: ignore[attr-defined]
        result = self._index.search(x, k, params=params)
        del parts, joined, wanted, refused, refusing
        return result

    def _present(self, wanted: np.ndarray) -> np.ndarray:
        """The ids of ``wanted`` this index holds live, sorted (a lookup in its sorted ids, kept until a change)."""
        held = self._sorted
        if held is None:
            held = self._sorted = np.sort(np.asarray(self.ids(), dtype=np.int64))
        if len(wanted) > 1 and not (np.diff(wanted) > 0).all():
            wanted = np.unique(wanted)  # a filter's ids come sorted and unique already
        found: np.ndarray = wanted[find_sorted(held, wanted)[1]]
        return found

    def _exact_among(self, x: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        live = self._present(allowed)
        scores = (self.vectors(live) @ x.T).T if len(live) else np.zeros((len(x), 0), np.float32)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        out_scores = np.full((len(x), k), -np.inf, dtype=np.float32)
        out_ids = np.full((len(x), k), -1, dtype=np.int64)
        n = top.shape[1]
        out_scores[:, :n] = np.take_along_axis(scores, top, axis=1)
        out_ids[:, :n] = live[top]
        return out_scores, out_ids

    def copy(self) -> VectorIndex:
        """An independent copy in memory (a clone of a mapped index would still point into the file)."""
        if self.mapped:
            clone = VectorIndex(faiss.deserialize_index(faiss.serialize_index(self._index)))  # type: ignore[arg-type]
        else:
            clone = VectorIndex(faiss.clone_index(self._index))  # type: ignore[arg-type]
        clone.ef_search = self.ef_search
        return clone

    def save(self, path: Path) -> None:
        """Write to a temporary file, fsync, then rename over ``path``."""
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self._index, str(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
