"""Opening an index read-only: the current generation, pinned, caught up with SQLite, and followed.

Live writes keep their vectors in SQLite until a checkpoint folds them into the FAISS files
(``writing.live``), so a reader lays them over the checkpoint as the server does
(``storage.dense.catch_up``). ``Follow`` tells a long-lived reader when to load again: another
process committed to the store, or a build published a new generation.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import IO

import numpy as np

from ..errors import IndexUnavailableError
from ..models import Embedder
from ..storage.dense import DenseIndex
from ..storage.dense.catch_up import catch_up
from ..storage.lexical import LexicalIndex
from ..storage.record import folder, store
from ..storage.record.manifest import Manifest
from ..storage.record.rows import StoreReader
from .snapshot import Snapshot


def pin_current(index_dir: Path) -> tuple[Path, IO[str]]:
    for _ in range(5):  # a build may publish, and remove the generation, between looking and pinning
        path = folder.require_current(index_dir)
        try:
            pinned = folder.pin(path)
        except FileNotFoundError:
            continue
        if (path / folder.MANIFEST).exists():
            return path, pinned
        pinned.close()
    raise IndexUnavailableError(f"{index_dir} keeps changing under a build; try again")


def open_read_only(index_dir: Path, embedder: Embedder) -> tuple[Path, Manifest, Snapshot, IO[str]]:
    """The current generation, pinned, caught up with SQLite (see ``Searcher.load``)."""
    path, pinned = pin_current(index_dir)
    try:
        manifest = Manifest.read(path / folder.MANIFEST)
        manifest.check_usable(embedder)
        checkpoint = DenseIndex.load(path, mmap=True)
        conn = store.connect(path / folder.STORE, readonly=True)
        reader = StoreReader(path / folder.STORE)
        try:
            conn.execute("BEGIN")  # passage ids, vector BLOBs and documents from one state of the store
            owners = store.passage_owners(conn)
            ids = np.asarray(owners[0], np.int64)
            vectors = catch_up(conn, checkpoint, ids, None).vectors
            lexical = LexicalIndex.load(path / folder.LEXICAL, ids, reader.passages, mmap=True)
            snapshot = Snapshot.from_store(conn, vectors, lexical, reader, owners)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        pinned.close()
        raise IndexUnavailableError(f"cannot read {index_dir}: {exc}") from exc
    except BaseException:
        pinned.close()
        raise
    return path, manifest, snapshot, pinned


class Follow:
    """Whether an index folder changed since a reader loaded it: another generation published, or a
    commit to its store by another process (SQLite's ``data_version`` moves on every such commit)."""

    def __init__(self, index_dir: Path, generation: Path) -> None:
        self.index_dir = index_dir
        self.reloading = threading.Lock()
        self._lock = threading.Lock()  # one connection, asked from any thread
        self._generation = generation
        self._conn: sqlite3.Connection | None = None
        self._version: int | None = None
        self.seen(generation)

    def seen(self, generation: Path) -> None:
        """Remember ``generation`` and the store's state as loaded (called right after loading)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._generation = generation
            self._conn = store.connect(generation / folder.STORE, readonly=True)
            self._version = self._data_version()

    def _data_version(self) -> int | None:
        try:
            assert self._conn is not None
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            return None

    def changed(self) -> bool:
        now = folder.current(self.index_dir)
        if now != self._generation:
            return now is not None
        with self._lock:
            return self._data_version() != self._version

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
