"""Looking passage ids up in sorted id arrays: the one helper every index part uses."""

from __future__ import annotations

from collections.abc import Set as AbstractSet

import numpy as np


def find_sorted(sorted_ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``wanted``: a position in ``sorted_ids`` and whether the id is there (binary search)."""
    if not len(sorted_ids):
        return np.zeros(len(wanted), np.int64), np.zeros(len(wanted), bool)
    at = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1)
    return at, sorted_ids[at] == wanted


def id_array(ids: AbstractSet[int]) -> np.ndarray:
    """``ids`` as an int64 array; a filter's admitted ids carry theirs already (``snapshot.Admitted.array``)."""
    given = getattr(ids, "array", None)
    return given if isinstance(given, np.ndarray) else np.fromiter(ids, np.int64, len(ids))
