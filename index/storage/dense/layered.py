"""A vector index that takes writes without copying or rewriting its checkpoint.

A served index is its last *checkpoint* (a ``VectorIndex`` as read from disk, never
changed in place) plus what was written since: new vectors in small exact
*segments* (numpy arrays, searched by one matrix product each), and the ids
removed from the checkpoint. A search asks the checkpoint, leaving the removed ids
out with a FAISS selector, and each segment, and merges the scores. A write makes
a new ``LayeredIndex`` that shares the checkpoint, the segments and the removed
ids of the one before (arrays are replaced, never modified), so a snapshot taken
before the write is untouched and a write costs what it adds, not what the index
holds. Segments are merged pairwise when a newer one grows to half the size of
the one before it, so a search visits a logarithmic number of them.

Past ``MERGE_VECTORS`` new vectors, or a removed fraction of
``MERGE_REMOVED_FRACTION`` of the checkpoint, ``needs_merge`` says so and the
owner folds everything into a new checkpoint (``merged``) and writes it.
The durable record of the vectors written since the checkpoint is SQLite (see
``writing.live``), not this object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..ids import find_sorted
from .vectors import VectorIndex

#: New vectors (passages and sentences counted apart) a layered index holds before it asks for a merge.
MERGE_VECTORS = 50_000
#: Removed checkpoint vectors, as a share of the checkpoint, that ask for a merge.
MERGE_REMOVED_FRACTION = 0.1
_EMPTY_IDS = np.zeros(0, np.int64)


@dataclass(frozen=True)
class _Segment:
    ids: np.ndarray  # int64, in insertion order
    vectors: np.ndarray  # float32 (n, dim)
    alive: np.ndarray  # bool: False once removed
    order: np.ndarray  # positions that sort ``ids``

    @classmethod
    def of(cls, ids: np.ndarray, vectors: np.ndarray) -> _Segment:
        return cls(ids, vectors, np.ones(len(ids), bool), np.argsort(ids, kind="stable"))

    def live(self) -> tuple[np.ndarray, np.ndarray]:
        return self.ids[self.alive], self.vectors[self.alive]

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """For each of ``ids``, its live row here, or -1."""
        if not len(self.ids) or not len(ids):
            return np.full(len(ids), -1, np.int64)
        at, held = find_sorted(self.ids[self.order], ids)
        rows = self.order[at]
        return np.where(held & self.alive[rows], rows, -1)

    def without(self, doomed: np.ndarray) -> _Segment | None:
        """This segment with the rows in ``doomed`` (a boolean mask) dead; None when nothing changed."""
        doomed = doomed & self.alive
        if not doomed.any():
            return None
        return _Segment(self.ids, self.vectors, self.alive & ~doomed, self.order)


def _merge(older: _Segment, newer: _Segment) -> _Segment:
    ids_a, vectors_a = older.live()
    ids_b, vectors_b = newer.live()
    return _Segment.of(np.concatenate([ids_a, ids_b]), np.concatenate([vectors_a, vectors_b]))


class LayeredIndex:
    """A checkpoint ``VectorIndex`` plus segments of new vectors, minus removed checkpoint ids."""

    def __init__(
        self,
        base: VectorIndex,
        *,
        base_ids: np.ndarray | None = None,
        removed: np.ndarray = _EMPTY_IDS,
        segments: Sequence[_Segment] = (),
        merge_at: int | None = None,
    ) -> None:
        self.base = base
        #: New vectors before ``needs_merge`` (default ``MERGE_VECTORS``).
        self.merge_at = merge_at if merge_at is not None else MERGE_VECTORS
        # the checkpoint's ids, sorted: shared by every layered index over this checkpoint
        self._base_ids = base_ids if base_ids is not None else np.sort(base.ids())
        self._removed = removed  # sorted, unique, all in _base_ids
        self._segments = tuple(segments)

    # -- what the owner asks -----------------------------------------------------

    @property
    def ef_search(self) -> int:
        return self.base.ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self.base.ef_search = value

    @property
    def kind(self) -> str:
        return self.base.kind

    @property
    def approximate(self) -> bool:
        return self.base.approximate

    @property
    def dim(self) -> int:
        return self.base.dim

    @property
    def delta_vectors(self) -> int:
        """Vectors held outside the checkpoint, dead ones included (what a merge would fold in)."""
        return sum(len(s.ids) for s in self._segments)

    def __len__(self) -> int:
        return len(self._base_ids) - len(self._removed) + sum(int(s.alive.sum()) for s in self._segments)

    def ids(self) -> np.ndarray:
        kept = np.setdiff1d(self._base_ids, self._removed, assume_unique=True) if len(self._removed) else self._base_ids
        return np.concatenate([kept, *(s.live()[0] for s in self._segments)]).astype(np.int64)

    def needs_merge(self) -> bool:
        removed_limit = MERGE_REMOVED_FRACTION * max(len(self._base_ids), self.merge_at)
        return self.delta_vectors > self.merge_at or len(self._removed) > removed_limit

    # -- writes (on a copy: see ``copy``) ------------------------------------------

    def copy(self) -> LayeredIndex:
        """A new index sharing everything with this one; writes to either never show in the other."""
        return LayeredIndex(
            self.base, base_ids=self._base_ids, removed=self._removed, segments=self._segments, merge_at=self.merge_at
        )

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        if not len(ids):
            return
        segment = _Segment.of(np.asarray(ids, np.int64), np.ascontiguousarray(vectors, dtype=np.float32))
        segments = [*self._segments, segment]
        while len(segments) >= 2 and int(segments[-2].alive.sum()) <= 2 * int(segments[-1].alive.sum()):
            segments[-2:] = [_merge(segments[-2], segments[-1])]
        self._segments = tuple(segments)

    def _forget(self, in_segment: list[np.ndarray], from_base: np.ndarray) -> int:
        count = 0
        segments = list(self._segments)
        for n, doomed in enumerate(in_segment):
            changed = segments[n].without(doomed)
            if changed is not None:
                count += int((segments[n].alive & doomed).sum())
                segments[n] = changed
        self._segments = tuple(s for s in segments if s.alive.any())
        fresh = np.setdiff1d(from_base, self._removed, assume_unique=False)
        if len(fresh):
            self._removed = np.union1d(self._removed, fresh)
            count += len(fresh)
        return count

    def remove(self, ids: Sequence[int]) -> int:
        array = np.unique(np.asarray(ids, dtype=np.int64))
        if not len(array):
            return 0
        in_base = array[find_sorted(self._base_ids, array)[1]]
        return self._forget([np.isin(s.ids, array) for s in self._segments], in_base)

    def remove_ranges(self, starts: np.ndarray, stops: np.ndarray) -> int:
        """Remove every id in any ``[starts[i], stops[i])``."""
        if not len(starts):
            return 0
        lo = np.searchsorted(self._base_ids, starts)
        hi = np.searchsorted(self._base_ids, stops)
        in_base = np.concatenate([self._base_ids[a:b] for a, b in zip(lo, hi, strict=True)] or [_EMPTY_IDS])
        doomed = []
        for s in self._segments:
            where = np.searchsorted(starts, s.ids, side="right") - 1
            ok = where >= 0
            doomed.append(ok & (s.ids < np.where(ok, stops[np.maximum(where, 0)], 0)))
        return self._forget(doomed, in_base)

    # -- reads ---------------------------------------------------------------------

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        array = np.asarray(ids, dtype=np.int64)
        out = np.zeros((len(array), self.dim), dtype=np.float32)
        if not len(array):
            return out
        found = np.zeros(len(array), bool)
        for s in self._segments:
            rows = s.positions(array)
            hit = (rows >= 0) & ~found
            if hit.any():
                out[hit] = s.vectors[rows[hit]]
                found |= hit
        rest = ~found
        if rest.any():
            out[rest] = self.base.vectors(array[rest].tolist())
        return out

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids, best first, over checkpoint and segments alike; missing hits have id -1."""
        x = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, k)
        scores, ids = self.base.search(x, k, allowed, self._removed if len(self._removed) else None)
        if not self._segments:
            return scores, ids
        all_scores, all_ids = [scores], [ids]
        for s in self._segments:
            live = s.alive if allowed is None else s.alive & np.isin(s.ids, allowed)
            if not live.any():
                continue
            part = x @ s.vectors[live].T
            part_ids = s.ids[live]
            top = min(k, part.shape[1])
            best = np.argpartition(-part, top - 1, axis=1)[:, :top]
            all_scores.append(np.take_along_axis(part, best, axis=1))
            all_ids.append(part_ids[best])
        merged_scores = np.concatenate(all_scores, axis=1)
        merged_ids = np.concatenate(all_ids, axis=1)
        merged_scores = np.where(merged_ids >= 0, merged_scores, -np.inf)
        order = np.argsort(-merged_scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(merged_scores, order, axis=1), np.take_along_axis(merged_ids, order, axis=1)

    # -- checkpoints ---------------------------------------------------------------

    def merged(self) -> VectorIndex:
        """Checkpoint, removals and segments folded into one new ``VectorIndex`` (the checkpoint is untouched)."""
        fresh = self.base.copy()
        if len(self._removed):
            fresh.remove(self._removed.tolist())
        for s in self._segments:
            ids, vectors = s.live()
            fresh.add(ids.tolist(), vectors)
        return fresh
