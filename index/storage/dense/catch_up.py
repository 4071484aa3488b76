"""Catching a vector checkpoint up with SQLite, the record of acknowledged writes.

The FAISS files of a generation are checkpoints: live writes keep their vectors as
BLOBs in SQLite until the next checkpoint folds them in (``writing.live``). So any
process that opens an index, the server or a read-only reader beside it (the CLI,
``zhsearch mcp``, ``eval``), has to lay what SQLite holds over the checkpoint:
passages missing from it take their vectors from the BLOBs, passages it holds that
SQLite no longer does are removed. One function does that for every opener.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...errors import IndexUnavailableError
from ..record import store
from ..record.store import StoredPassage
from . import DenseIndex, Vectors, from_blobs

#: How a writer computes the vectors of passages that have none stored (``writing.embedding.embed``).
Embed = Callable[[list[StoredPassage]], Vectors]


@dataclass(frozen=True)
class CaughtUp:
    #: The checkpoint as a layered index, with the writes since laid over it.
    vectors: DenseIndex
    #: Passages whose vectors came from SQLite's BLOBs, and checkpoint passages SQLite no longer holds.
    from_blobs: int
    dropped: int
    #: Passages with vectors neither in the checkpoint nor in SQLite (an index written before BLOBs
    #: were kept), embedded again here: the writer stores them.
    embedded: Vectors | None


def catch_up(
    conn: sqlite3.Connection,
    checkpoint: DenseIndex,
    known: np.ndarray,
    embed: Embed | None,
    merge_at: int | None = None,
) -> CaughtUp:
    """``checkpoint`` made to hold the vectors of exactly the passages ``known`` (SQLite's, by id).

    ``conn`` may be read-only; read it in one transaction with ``known`` so the two agree.
    ``embed``: how a writer computes vectors that neither holds; a reader (None) never embeds,
    and refuses such an index until a writer (``zhsearch serve``) has opened it once.
    """
    in_faiss = checkpoint.ids()
    missing = np.setdiff1d(known, in_faiss).tolist()
    extra = np.setdiff1d(in_faiss, known).tolist()
    vectors = checkpoint.layered(merge_at)
    # Sentence vectors of a passage the checkpoint half holds may exist: clear them before adding.
    vectors.remove(extra + missing)
    blobs = store.vectors_of(conn, missing)
    if blobs:
        vectors.add(from_blobs(blobs, vectors.dim))
    lost = list(store.passages_by_id(conn, [i for i in missing if i not in blobs]).values())
    if lost and embed is None:
        raise IndexUnavailableError(
            f"{len(lost)} passages have no stored vectors (an index written by an older zhsearch); open it once"
            " with `zhsearch serve`, which computes and keeps them"
        )
    embedded = embed(lost) if lost and embed is not None else None
    if embedded is not None:
        vectors.add(embedded)
    return CaughtUp(vectors, len(blobs), len(extra), embedded)
