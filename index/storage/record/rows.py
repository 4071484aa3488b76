"""A snapshot's passages: ids and sentence counts in memory, the rows themselves in SQLite.

A served index keeps, per passage, only what ranking needs for every candidate (is it
there, how many sentence vectors it has); the text, offsets, section and title of the
few passages a response shows are read from the store when asked for, through one
read-only connection per thread. A write makes a new ``PassageRows`` that shares the
old one's ids (an ``Overlay``), so a snapshot stays what it was.

Passage ids are never reused, so a row read later is the row the snapshot meant; a
passage that a newer write removed is simply not found, and the caller skips it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from . import store
from .overlay import Overlay
from .store import StoredPassage


class StoreReader:
    """Read-only connections to one store file, one per thread (sqlite3 connections are not shared)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = store.connect(self.path, readonly=True)
        return conn

    def passages(self, ids: Iterable[int]) -> dict[int, StoredPassage]:
        return store.passages_by_id(self._conn(), ids)

    def every(self) -> Iterator[StoredPassage]:
        """Every passage in the store, streamed on a connection of its own."""
        conn = store.connect(self.path, readonly=True)
        try:
            yield from store.iter_passages(conn)
        finally:
            conn.close()


class PassageRows:
    """Passage id -> sentence-vector count for a snapshot, with rows read on demand."""

    def __init__(self, counts: Overlay[int, int], reader: StoreReader | None) -> None:
        self._counts = counts
        self._reader = reader

    def __contains__(self, pid: object) -> bool:
        return pid in self._counts

    def __iter__(self) -> Iterator[int]:
        return iter(self._counts)

    def __len__(self) -> int:
        return len(self._counts)

    def sentence_count(self, pid: int) -> int:
        return self._counts.get(pid, 0)

    def rows(self, ids: Iterable[int]) -> dict[int, StoredPassage]:
        """The rows of those of ``ids`` this snapshot holds (and the store still has)."""
        wanted = [pid for pid in ids if pid in self._counts]
        if not wanted or self._reader is None:
            return {}
        return self._reader.passages(wanted)

    def get(self, pid: int) -> StoredPassage | None:
        return self.rows([pid]).get(pid)

    def __getitem__(self, pid: int) -> StoredPassage:
        found = self.get(pid)
        if found is None:
            raise KeyError(pid)
        return found

    def values(self) -> Iterator[StoredPassage]:
        """Every passage of this snapshot, streamed from the store (for rebuilds and evaluation)."""
        if self._reader is None:
            return iter(())
        return (p for p in self._reader.every() if p.id in self._counts)

    def updated(self, removed: Iterable[int], added: Mapping[int, int]) -> PassageRows:
        """These passages without ``removed``, with ``added`` (id -> sentence count); this one is unchanged."""
        return PassageRows(self._counts.updated(removed, added), self._reader)
