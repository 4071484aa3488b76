"""A served index that accepts document writes without a rebuild.

SQLite is the record of what was acknowledged. A write is serialized by one
lock and goes: chunk and embed the new text → one SQLite transaction (old
passages out, new ones in, and the new vectors as BLOBs; committed with
``synchronous=FULL``) → the in-memory snapshot swapped. Nothing else is written:
the FAISS and BM25 files are *checkpoints*. The served vectors are the last
checkpoint plus segments of what was written since, minus what was removed
(``storage.dense.layered``); BM25 is its checkpoint plus a delta (``storage.lexical``).
So a write costs what it adds, not what the index holds. Past a threshold of
new or removed entries, the writer folds them into a new checkpoint (written to
temporary files, fsynced, renamed over the old ones), then forgets the vector
BLOBs the checkpoint now holds.

Opening the index catches up from SQLite: passages missing from the checkpoint
take their vectors from the BLOBs (or are embedded again, for an index written
before they were kept), passages the checkpoint holds but SQLite does not are
removed, and BM25 takes the missing passages into its delta. So every write
that was acknowledged is searchable after a restart, and nothing else is,
wherever the process died.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import numpy as np

from ..errors import ConflictError, IndexUnavailableError, InvalidInputError, NotFoundError
from ..models import Embedder
from ..retrieval.search import Searcher
from ..retrieval.snapshot import DocumentInfo, Snapshot, WriteResult
from ..retrieval.tuning import Tuning
from ..storage import dense
from ..storage.dense.catch_up import catch_up
from ..storage.lexical import LexicalIndex
from ..storage.lexical.stats import STATS_FILE, CorpusStats
from ..storage.record import folder, store
from ..storage.record.manifest import Manifest
from ..storage.record.overlay import Overlay
from ..storage.record.rows import PassageRows, StoreReader
from ..text.budgets import DEFAULT, Budgets
from ..text.chunk import ChunkConfig
from ..text.ingest import Document, check_document
from .embedding import embed
from .prepare import Prepared, prepare

log = logging.getLogger("zhsearch.index")


def check_batch(docs: Sequence[Document], budgets: Budgets = DEFAULT) -> None:
    """Refuse a write of no documents, of a bad document, or of one id twice (before anything is written)."""
    if not docs:
        raise InvalidInputError("no documents to write")
    for doc in docs:
        check_document(doc, budgets)
    seen: set[str] = set()
    for doc in docs:
        if doc.id in seen:
            raise InvalidInputError(f"document id {doc.id!r} appears more than once in one write")
        seen.add(doc.id)


def _refuse_taken(snap: Snapshot, docs: Sequence[Document]) -> None:
    taken = [doc.id for doc in docs if doc.id in snap.documents]
    if taken:
        raise ConflictError(f"a document with id {taken[0]!r} exists; use PUT (or replace=true) to replace it")


def new_document_id() -> str:
    return uuid.uuid4().hex


class LiveIndex(Searcher):
    """A ``Searcher`` that also adds, replaces and deletes documents, durably."""

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        snapshot: Snapshot,
        embedder: Embedder,
        held: IO[str],
        tuning: Tuning | None = None,
    ) -> None:
        super().__init__(path, manifest, snapshot, embedder, tuning=tuning)
        # A write may rebuild the lexical base, which bm25s does: imported now (0.4 s), not on the first
        # write. Reading an index does without it (``storage.lexical.saved``).
        import bm25s  # noqa: F401

        self._held = held
        self._write_lock = threading.Lock()
        self._conn = store.connect(path / folder.STORE)
        self._reader = StoreReader(path / folder.STORE)
        self._config = ChunkConfig(**{k: v for k, v in manifest.chunking.items() if k != "version"})
        # A shard of a cluster numbers its writes from a range of its own (``cluster.layout.id_floor``).
        floor = int(manifest.extra.get("cluster", {}).get("id_floor", 1))
        self._next_id = max(store.max_passage_id(self._conn) + 1, floor)
        #: Passages a restart took from the vector BLOBs or dropped from the checkpoint (the normal catch-up);
        #: ``repaired``: passages whose vectors it had to compute again (an index written before BLOBs were kept).
        self.caught_up = 0
        #: Vector checkpoints written since the index was opened.
        self.checkpoints = 0

    @classmethod
    def open(
        cls, index_dir: Path, embedder: Embedder, tuning: Tuning | None = None, *, shared: bool = False
    ) -> LiveIndex:
        """The current generation, caught up with SQLite, served with ``tuning`` (its ``merge_vectors``
        new vectors per part make a vector checkpoint).

        ``shared``: beside other processes that open it shared (replicas of a cluster's shard, which
        serialize their writes themselves: ``cluster.shard``); otherwise the only process serving it.
        """
        held = folder.lock(index_dir, "zhsearch serve", shared=shared)
        live: LiveIndex | None = None
        try:
            path = folder.require_current(index_dir)
            manifest = Manifest.read(path / folder.MANIFEST)
            manifest.check_usable(embedder)
            vectors = dense.DenseIndex.load(path, mmap=True)
            empty = Snapshot(vectors, LexicalIndex.build([]), PassageRows(Overlay(), None), Overlay())
            live = cls(path, manifest, empty, embedder, held, tuning)
            live._recover()
        except BaseException:
            if live is not None:
                live._conn.close()
            held.close()
            raise
        return live

    def close(self) -> None:
        super().close()
        self._conn.close()
        self._held.close()

    # -- opening ---------------------------------------------------------------

    def _recover(self) -> None:
        """Catch the checkpoint files up with SQLite, the record of acknowledged writes."""
        owners = store.passage_owners(self._conn)
        known = np.asarray(owners[0], np.int64)
        found = catch_up(
            self._conn, self.snapshot.vectors, known, lambda lost: embed(lost, self.embedder), self.tuning.merge_vectors
        )
        vectors = found.vectors
        if found.embedded is not None:  # kept, so the next restart need not embed them again
            with self._conn:
                store.insert_vectors(self._conn, dense.blob_rows(found.embedded))
        lexical = self._load_lexical(known)
        if lexical is None:
            log.warning("rebuilding the lexical index of %s from its store", self.path)
            lexical = LexicalIndex.build(list(self._reader.every()), CorpusStats.load(self.path / STATS_FILE))
            self._save_lexical(lexical)
            lexical = LexicalIndex.load(self.path / folder.LEXICAL, known, self._reader.passages, mmap=True)
        self.caught_up = found.from_blobs + found.dropped
        self.repaired = len(found.embedded.passage_ids) if found.embedded is not None else 0
        if vectors.needs_merge():
            vectors = self._checkpoint(vectors)
        self.snapshot = self._tuned(Snapshot.from_store(self._conn, vectors, lexical, self._reader, owners))

    def _checkpoint(self, vectors: dense.DenseIndex) -> dense.DenseIndex:
        """Fold the writes into new vector files; then the BLOBs they hold are no longer needed."""
        vectors.save(self.path)  # folds the writes in
        with self._conn:
            store.drop_vectors_below(self._conn, self._next_id)
        self.checkpoints += 1
        # served from the files just written, mapped: the merged copy in memory is dropped
        return dense.DenseIndex.load(self.path, mmap=True).layered(self.tuning.merge_vectors)

    def _load_lexical(self, known: np.ndarray) -> LexicalIndex | None:
        """The lexical checkpoint with its delta, or None (said in the log, with why) when it must be rebuilt."""
        shutil.rmtree(self.path / (folder.LEXICAL + ".new"), ignore_errors=True)
        try:
            lexical = LexicalIndex.load(self.path / folder.LEXICAL, known, self._reader.passages, mmap=True)
        except (OSError, ValueError, IndexUnavailableError) as exc:
            log.warning("the lexical index of %s cannot be read (%s: %s)", self.path, type(exc).__name__, exc)
            return None
        if len(lexical) != len(known):
            log.warning("the lexical index of %s holds %d passages, the store %d", self.path, len(lexical), len(known))
            return None
        return lexical

    def _save_lexical(self, lexical: LexicalIndex) -> None:
        fresh = self.path / (folder.LEXICAL + ".new")
        old = self.path / (folder.LEXICAL + ".old")
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
        lexical.save(fresh)
        live = self.path / folder.LEXICAL
        if live.exists():
            live.rename(old)
        fresh.rename(live)
        shutil.rmtree(old, ignore_errors=True)

    # -- writing ---------------------------------------------------------------

    def prepare_writes(self) -> None:
        """Load now what the first write would wait for: the document model (one encode; bm25s, which
        rebuilding a base needs, is imported on opening)."""
        self.embedder.encode_documents(["预热"])

    def put(self, doc: Document, *, create_only: bool = False) -> WriteResult:
        """Add or replace a document; returns once the change is durable."""
        return self.put_many([doc], replace=not create_only)[0]

    def put_many(self, docs: Sequence[Document], *, replace: bool = True) -> list[WriteResult]:
        """Add (or, with ``replace``, replace) documents as one change: durable and visible together, or not at all.

        Everything is checked before anything is written: a bad document, an id given
        twice, or (without ``replace``) an id that exists refuses the whole batch. The
        batch is one SQLite transaction and one snapshot swap.
        """
        docs = [Document(d.id, d.text, d.title, d.metadata, d.source or "api", d.format, origin="api") for d in docs]
        return self._write(docs, replace, {})

    def restore(self, stored: Sequence[store.StoredDocument]) -> list[WriteResult]:
        """Put documents back as they were stored (title, metadata, hash, source and origin as recorded;
        passages chunked and embedded again from their text): a cluster undoing its part of a failed batch."""
        docs = [Document(s.id, s.text, s.title, s.metadata, s.source, s.format, origin=s.origin) for s in stored]
        return self._write(docs, True, {s.id: s for s in stored})

    def _write(
        self, docs: list[Document], replace: bool, recorded: Mapping[str, store.StoredDocument]
    ) -> list[WriteResult]:
        check_batch(docs, self.tuning.budgets)
        if not replace:
            _refuse_taken(self.snapshot, docs)  # before the embedding work, and again under the lock
        # Chunked and embedded outside the write lock, numbered from 0: a big document holds up no
        # other write, and the lock covers only the numbering, the transaction and the swap.
        prepared: list[Prepared] = []
        local = 0
        for doc in docs:
            item = prepare(doc, self._config, self.embedder, local)
            if doc.id in recorded:
                item = Prepared(recorded[doc.id], item.passages)
            prepared.append(item)
            local += len(item.passages)
        embedded = embed([p for item in prepared for p in item.passages], self.embedder)
        with self._write_lock:
            snap = self.snapshot
            if not replace:
                _refuse_taken(snap, docs)
            base = self._next_id
            prepared = [item.numbered_from(base) for item in prepared]
            embedded = embedded.shifted(base)
            first = base + local
            new_passages = [p for item in prepared for p in item.passages]
            removed: list[int] = []
            with self._conn:
                for item in prepared:
                    removed += store.delete_document(self._conn, item.document.id)
                    store.insert_document(self._conn, item.document)
                    store.insert_passages(self._conn, item.passages)
                store.insert_vectors(self._conn, dense.blob_rows(embedded))
            self._next_id = first
            infos = {
                item.document.id: DocumentInfo(
                    id=item.document.id,
                    title=item.document.title,
                    metadata=item.document.metadata,
                    chars=len(item.document.text),
                    passage_ids=tuple(p.id for p in item.passages),
                )
                for item in prepared
            }
            self._publish(snap, removed, new_passages, embedded, infos)
            return [WriteResult(document=infos[doc.id], created=doc.id not in snap.documents) for doc in docs]

    def delete(self, doc_id: str) -> None:
        with self._write_lock:
            snap = self.snapshot
            if doc_id not in snap.documents:
                raise NotFoundError(f"no document with id {doc_id!r}")
            with self._conn:
                removed = store.delete_document(self._conn, doc_id)
            self._publish(snap, removed, [], None, {doc_id: None})

    def _publish(
        self,
        snap: Snapshot,
        removed: list[int],
        passages: list[store.StoredPassage],
        embedded: dense.Vectors | None,
        changed: Mapping[str, DocumentInfo | None],
    ) -> None:
        """Swap in the snapshot after a committed change; write checkpoints only past their thresholds."""
        vectors = snap.vectors.copy()  # shares the checkpoint: costs what the write adds
        vectors.remove(removed)
        if embedded is not None:
            vectors.add(embedded)
        rows = snap.passages.updated(removed, embedded.sentence_counts() if embedded is not None else {})
        documents, holders, readers = snap.with_documents(changed)
        lexical, rebuilt = snap.lexical.updated(removed, passages, lambda: list(rows.values()))
        if rebuilt:
            self._save_lexical(lexical)
            # mapped, like at startup
            lexical = LexicalIndex.load(
                self.path / folder.LEXICAL, np.fromiter(rows, np.int64), self._reader.passages, mmap=True
            )
        if vectors.needs_merge():
            vectors = self._checkpoint(vectors)
        self.snapshot = self._tuned(Snapshot(vectors, lexical, rows, documents, holders, readers))
