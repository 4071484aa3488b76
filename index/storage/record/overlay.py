"""A read-only mapping that a write can change without copying it.

An ``Overlay`` is a base dict that is never modified, plus the entries added or
replaced since and the base keys removed since. ``updated`` returns a new overlay
and costs what changed, not what the mapping holds; an overlay made before is
untouched, so a snapshot reader never sees a half-made change. A write copies the
changes (not the base) and a flatten, which folds them into a new base dict, copies
the base; flattening once the changes pass the square root of the base's size (at
least ``FLATTEN_MIN``) bounds both: at a million entries, a write copies at most a
thousand changes and a flatten comes once per thousand writes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

FLATTEN_MIN = 1000


class Overlay(Mapping[K, V]):
    def __init__(
        self,
        base: dict[K, V] | None = None,
        added: dict[K, V] | None = None,
        removed: frozenset[K] = frozenset(),
    ) -> None:
        # Invariants: ``removed`` holds base keys only; a replaced base key is in ``removed`` and ``added``.
        self._base = base if base is not None else {}
        self._added = added if added is not None else {}
        self._removed = removed
        self._length = len(self._base) - len(self._removed) + len(self._added)

    def __getitem__(self, key: K) -> V:
        found = self._added.get(key, _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        if key in self._removed:
            raise KeyError(key)
        return self._base[key]

    def __contains__(self, key: object) -> bool:
        return key in self._added or (key in self._base and key not in self._removed)

    def __iter__(self) -> Iterator[K]:
        if self._removed:
            yield from (key for key in self._base if key not in self._removed)
        else:
            yield from self._base
        yield from self._added

    def __len__(self) -> int:
        return self._length

    def updated(self, removed: Iterable[K], added: Mapping[K, V]) -> Overlay[K, V]:
        """This mapping without the ``removed`` keys, then with ``added``; this one is unchanged."""
        new_added = dict(self._added)
        new_removed = set(self._removed)
        for key in removed:
            new_added.pop(key, None)
            if key in self._base:
                new_removed.add(key)
        for key, value in added.items():
            new_added[key] = value
            if key in self._base:
                new_removed.add(key)
        if len(new_added) + len(new_removed) > max(FLATTEN_MIN, math.isqrt(len(self._base))):
            flat = {key: value for key, value in self._base.items() if key not in new_removed}
            flat.update(new_added)
            return Overlay(flat)
        return Overlay(self._base, new_added, frozenset(new_removed))


_MISSING = object()
