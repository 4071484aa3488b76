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

import contextlib
import fcntl
import os
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..choices import Mode
from ..errors import NotFoundError
from ..models import Embedder
from ..retrieval.merge import ShardCandidates, merge
from ..retrieval.search import Hit
from ..retrieval.snapshot import DocumentInfo, Filters, Snapshot, WriteResult
from ..retrieval.tuning import Tuning
from ..storage.record import store
from ..text.ingest import Document
from ..writing.live import LiveIndex

WRITER = ".writer"
WRITTEN = ".written"


class ShardReplica:
    """A shard's index for a router: candidates, rows, evidence and writes (``cluster.router``)."""

    def __init__(self, folder: Path, embedder: Embedder, shard: int, tuning: Tuning | None = None) -> None:
        self.folder = folder
        self.shard = shard
        self._embedder = embedder
        self.tuning = tuning or Tuning()
        self._lock = threading.Lock()  # one reopen at a time in this process
        with self._writer(fcntl.LOCK_EX):  # opening may write (a catch-up checkpoint): one replica at a time
            self._seen = self._token()
            self.index = LiveIndex.open(folder, embedder, self.tuning, shared=True)

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
        """Reopen the shard (under the writer lock, held by the caller). The new index is opened before
        the old one closes: if opening fails, the old one still serves and the folder stays locked."""
        fresh = LiveIndex.open(self.folder, self._embedder, self.tuning, shared=True)
        old, self.index = self.index, fresh
        self._seen = self._token()
        old.close()

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

    def document_with_passages(self, doc_id: str) -> tuple[store.StoredDocument, list[store.StoredPassage]]:
        """A document and its passages (``NotFoundError`` if there is none)."""
        return self.fresh().document_with_passages(doc_id)

    def document_ids(self, end: int, filters: Filters | None = None) -> tuple[int, list[str]]:
        """How many documents ``filters`` admit, and the first ``end`` ids in order (ids only: the router
        pages with them)."""
        return self.fresh().document_ids(end, filters)

    def document_infos(self, doc_ids: Sequence[str]) -> list[DocumentInfo]:
        """The listing entries of these documents (those it holds), in the order asked."""
        docs = self.fresh().snapshot.documents
        return [docs[doc_id] for doc_id in doc_ids if doc_id in docs]

    def stored(self, doc_ids: Sequence[str]) -> dict[str, store.StoredDocument]:
        """The documents of these ids it holds, as stored (what ``restore`` puts back)."""
        index = self.fresh()
        found = {}
        for doc_id in doc_ids:
            if doc_id in index.snapshot.documents:
                with contextlib.suppress(NotFoundError):  # deleted meanwhile
                    found[doc_id] = index.document(doc_id)
        return found

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

    def restore(self, written: Mapping[str, str], before: Mapping[str, store.StoredDocument]) -> None:
        """Undo this shard's part of a cluster batch that failed elsewhere: each document of ``written``
        (id → the content hash the batch wrote) that still holds what the batch wrote goes back to
        ``before`` (absent there: removed). A part that was not written, was undone already, or was
        written over since by another writer is left alone, so every shard of the batch may be asked.
        """
        with self._writing() as index:
            back = []
            for doc_id, ours in written.items():
                if doc_id not in index.snapshot.documents or index.document(doc_id).content_hash != ours:
                    continue
                old = before.get(doc_id)
                if old is None:
                    index.delete(doc_id)
                elif old.content_hash != ours:
                    back.append(old)
            if back:
                index.restore(back)

    def close(self) -> None:
        self.index.close()
