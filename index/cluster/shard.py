"""One replica of a shard: a ``LiveIndex`` opened beside the shard's other replicas.

Replicas share the shard's folder (SQLite is the record, as on a single node). A
write takes the shard's writer lock (``flock`` on ``.writer``, across processes),
writes through ``LiveIndex`` and then replaces ``.written`` with a new token. A
replica that finds a token it has not seen reopens the shard before it answers, so
every replica serves every acknowledged write. Reopening re-reads the passage ids
and catches the vectors up from SQLite: it costs a pass over the shard's ids, so
write-heavy shards want one replica (docs/scale-out.md).
"""

from __future__ import annotations

import fcntl
import os
import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NotFoundError
from ..models import Embedder
from ..retrieval.merge import ShardCandidates, merge
from ..retrieval.query import Mode
from ..retrieval.search import Hit
from ..retrieval.snapshot import DocumentInfo, Filters, Snapshot
from ..storage import store
from ..text.ingest import Document
from ..writing.live import LiveIndex, WriteResult

WRITER = ".writer"
WRITTEN = ".written"


class ShardReplica:
    """A shard's index for a router: candidates, rows, evidence and writes (``cluster.router``)."""

    def __init__(self, folder: Path, embedder: Embedder, shard: int, *, merge_vectors: int | None = None) -> None:
        self.folder = folder
        self.shard = shard
        self._embedder = embedder
        self._merge_vectors = merge_vectors
        self._lock = threading.Lock()  # one reopen at a time in this process
        with self._writer(fcntl.LOCK_EX):  # opening may write (a catch-up checkpoint): one replica at a time
            self._seen = self._token()
            self.index = LiveIndex.open(folder, embedder, merge_vectors=merge_vectors, shared=True)

    # -- keeping up with the other replicas --------------------------------------

    @contextmanager
    def _writer(self, mode: int) -> Iterator[None]:
        with open(self.folder / WRITER, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, mode)
            yield

    def _token(self) -> str:
        try:
            return (self.folder / WRITTEN).read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def _reopen(self) -> None:
        """Reopen the shard (under the writer lock, held by the caller)."""
        old = self.index
        old.close()
        self.index = LiveIndex.open(self.folder, self._embedder, merge_vectors=self._merge_vectors, shared=True)
        self.index.limits = old.limits
        self._seen = self._token()

    def fresh(self) -> LiveIndex:
        """The index with every write any replica acknowledged."""
        if self._token() != self._seen:
            with self._lock, self._writer(fcntl.LOCK_EX):
                if self._token() != self._seen:
                    self._reopen()
        return self.index

    def _written(self) -> None:
        token = secrets.token_hex(8)
        tmp = self.folder / f"{WRITTEN}.{token}"
        tmp.write_text(token, encoding="utf-8")
        os.replace(tmp, self.folder / WRITTEN)
        self._seen = token

    # -- reading -------------------------------------------------------------------

    def candidates(
        self, norm: str, vector: np.ndarray | None, k: int, mode: Mode, filters: Filters | None
    ) -> ShardCandidates:
        """This shard's candidates, with the rows of the ``k`` it would rank first alone (most of the
        router's final ranking, in the same round trip)."""
        index = self.fresh()
        snap = index.snapshot
        found = index.candidates(norm, vector, k, mode, filters, snap)
        likely = [pid for pid, _ in merge([found], k, mode)]
        return replace(found, rows=self._rows(snap, likely))

    def rows(self, ids: Sequence[int]) -> dict[int, tuple[store.StoredPassage, dict[str, Any] | None]]:
        """Passage rows by id, each with its document's metadata (for page numbers)."""
        return self._rows(self.fresh().snapshot, ids)

    @staticmethod
    def _rows(snap: Snapshot, ids: Sequence[int]) -> dict[int, tuple[store.StoredPassage, dict[str, Any] | None]]:
        found = snap.passages.rows(ids)
        return {
            pid: (row, info.metadata if (info := snap.documents.get(row.doc_id)) else None)
            for pid, row in found.items()
        }

    def evidence(self, hits: Sequence[Hit]) -> tuple[dict[str, str], dict[int, np.ndarray]]:
        """Documents' normalized text and passages' sentence vectors, for the hits this shard holds."""
        index = self.fresh()
        documents, stored = index.evidence(hits, index.snapshot)
        return documents, {hit.passage_id: stored(hit) for hit in hits}

    def document(self, doc_id: str) -> tuple[store.StoredDocument, list[store.StoredPassage]] | None:
        try:
            return self.fresh().document_with_passages(doc_id)
        except NotFoundError:
            return None

    def documents(self, limit: int) -> tuple[int, list[DocumentInfo]]:
        """How many documents, and the first ``limit`` by id."""
        return self.fresh().documents(0, limit)

    def holds(self, doc_ids: Sequence[str]) -> list[str]:
        docs = self.fresh().snapshot.documents
        return [doc_id for doc_id in doc_ids if doc_id in docs]

    def health(self) -> dict[str, Any]:
        # pid: which process answered (a replica's memory, in benchmarks)
        return {**self.fresh().health(), "shard": self.shard, "pid": os.getpid()}

    # -- writing -------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[LiveIndex]:
        """The index, caught up and held against every other replica's writes; the others see it after."""
        with self._lock, self._writer(fcntl.LOCK_EX):
            if self._token() != self._seen:
                self._reopen()
            yield self.index
            self._written()

    def put_many(self, docs: Sequence[Document], replace: bool) -> list[WriteResult]:
        with self._writing() as index:
            return index.put_many(docs, replace=replace)

    def delete(self, doc_id: str) -> None:
        with self._writing() as index:
            index.delete(doc_id)

    def close(self) -> None:
        self.index.close()
