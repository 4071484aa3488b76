"""Answering queries against a loaded index.

A ``Searcher`` reads from an immutable ``Snapshot`` (vectors, BM25, passage
rows, document metadata). A write builds a new snapshot and swaps the reference
in one step, so a search that started before sees the old state and one that
starts after sees the new one, never a mix.
"""

from __future__ import annotations

import functools
import heapq
import sqlite3
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

import faiss
import numpy as np

from ..choices import Mode
from ..errors import IndexUnavailableError, NotFoundError, ReadOnlyIndexError
from ..models import Embedder
from ..models.batching import QueryBatcher
from ..storage.dense import DenseIndex
from ..storage.ids import id_array
from ..storage.record import folder, store
from ..storage.record.manifest import Manifest
from ..storage.record.store import StoredPassage
from ..text.chunk import passage_sentences
from ..text.formats import pages_of
from ..text.ingest import Document
from ..text.normalize import normalize
from .answering import SENTENCES, Answering
from .merge import ShardCandidates, depth_for, merge
from .query import MAX_K, validate_query
from .reader import Follow, open_read_only
from .snapshot import Admitted, DocumentInfo, Filters, Snapshot, WriteResult
from .tuning import Tuning


@dataclass(frozen=True, kw_only=True)
class Hit:
    rank: int
    score: float
    passage_id: int
    doc_id: str
    title: str
    section: str
    text: str
    start: int
    end: int
    pages: list[int] | None = None
    #: Where each page of a paginated document starts (its ``metadata.page_offsets``), for the pages
    #: of a span inside the passage, such as an answer; not part of a response.
    page_offsets: Sequence[int] | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The hit as a response shows it."""
        return {k: v for k, v in self.__dict__.items() if k != "page_offsets"}

    def pages_of(self, start: int, end: int) -> list[int] | None:
        """The 1-based pages that ``[start, end)`` of the document lies on (None: not paginated)."""
        return pages_of({"page_offsets": self.page_offsets}, start, end) if self.page_offsets else None


@dataclass(frozen=True, kw_only=True)
class SearchResult:
    query: str
    hits: list[Hit]
    took_ms: float
    mode: str = "hybrid"
    #: In a cluster: how many shards answered, of how many (every one, or the request fails).
    shards: dict[str, int] | None = None
    #: The query as it was matched (``normalize``): what a response highlights in each hit's text.
    norm_query: str = ""


def assemble(
    ranked: Sequence[tuple[int, float]],
    rows: Mapping[int, StoredPassage],
    metadata: Callable[[str], Mapping[str, Any] | None],
    k: int,
) -> list[Hit]:
    """The ``k`` hits of a ranking: rows gone since are skipped, and so is a passage that overlaps
    one of its document's already shown (``metadata`` gives a document's, for page numbers)."""
    hits: list[Hit] = []
    shown: dict[str, list[tuple[int, int]]] = {}
    for pid, score in ranked:
        row = rows.get(pid)
        if len(hits) == k:
            break
        if row is None:
            continue
        spans = shown.setdefault(row.doc_id, [])
        if any(row.start < end and start < row.end for start, end in spans):
            continue  # an overlapping chunk of a passage already shown
        spans.append((row.start, row.end))
        meta = metadata(row.doc_id)
        hits.append(
            Hit(
                rank=len(hits) + 1,
                score=round(score, 6),
                passage_id=pid,
                doc_id=row.doc_id,
                title=row.title,
                section=row.section,
                text=row.text,
                start=row.start,
                end=row.end,
                pages=pages_of(meta, row.start, row.end) if meta is not None else None,
                page_offsets=meta.get("page_offsets") if meta is not None else None,
            )
        )
    return hits


def sentence_vectors(vectors: DenseIndex, passage_id: int, text: str) -> np.ndarray:
    """A passage's sentence vectors; a passage too short for them lends its own vector to its sentences."""
    found = vectors.sentence_vectors(passage_id, text)
    if len(found):
        return found
    return np.repeat(vectors.passage_vectors([passage_id]), len(passage_sentences(text)), axis=0)


def serve_queries_single_threaded() -> None:
    """Process-wide: FAISS searches without an OpenMP team, for a process that serves queries.

    One query at a time needs no team, and an idle one spinning beside the encoder's
    threads made each FAISS search 20x slower (6 ms instead of 0.3 ms). Servers call
    this once; loading an index does not, so a build in the same process keeps its threads.
    """
    faiss.omp_set_num_threads(1)


class Searcher:
    """A loaded index generation plus the embedder that built it: the read-only ``ServedIndex``
    (``index.served``; writes raise ``ReadOnlyIndexError``). ``writing.live.LiveIndex`` writes."""

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        snapshot: Snapshot,
        embedder: Embedder,
        pinned: IO[str] | None = None,
        tuning: Tuning | None = None,
    ) -> None:
        self.path = path
        # Unpinned by close(), or when the searcher is collected.
        self._unpin = weakref.finalize(self, pinned.close) if pinned is not None else None
        self.manifest = manifest
        self.embedder = embedder
        self.tuning = tuning or Tuning()
        self.batcher: QueryBatcher | None = None
        self.answering: Answering = SENTENCES
        self.repaired = 0
        self._follow: Follow | None = None
        self.snapshot = self._tuned(snapshot)

    def _tuned(self, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` with the tuning applied to its vectors: every snapshot with newly loaded vectors
        (opening, a checkpoint, a reload) passes here before it is served."""
        if self.tuning.ef_search is not None:
            snapshot.vectors.set_ef_search(self.tuning.ef_search)
        return snapshot

    def _encoding(self, norm_query: str) -> Callable[[], np.ndarray]:
        """Start encoding the query; the returned function gives the vector.

        With a micro-batcher (servers) the model runs on an encoding thread, so the
        caller can run BM25 meanwhile on the other core; without one it runs when asked.
        """
        if self.batcher is not None:
            return self.batcher.submit(norm_query).result
        return lambda: self.embedder.encode_queries([norm_query])

    @classmethod
    def load(
        cls, index_dir: Path, embedder: Embedder, tuning: Tuning | None = None, *, follow: bool = True
    ) -> Searcher:
        """The current generation with every acknowledged write, read-only, pinned so that a build
        meanwhile does not delete it (``close`` unpins).

        Live writes keep their vectors in SQLite until a checkpoint folds them into the FAISS files,
        so the checkpoint is caught up from SQLite here, as the server does when it starts
        (``storage.dense.catch_up``). ``follow``: before each read, look whether another process (the
        server) wrote since, or a build published a new generation, and load again if so: a
        long-lived reader (``zhsearch mcp``) sees every acknowledged write.
        """
        path, manifest, snapshot, pinned = open_read_only(index_dir, embedder)
        searcher = cls(path, manifest, snapshot, embedder, pinned, tuning)
        searcher._follow = Follow(index_dir, searcher.path) if follow else None
        return searcher

    @property
    def build_seconds(self) -> float:
        return self.manifest.build_seconds

    def refresh(self) -> bool:
        """Load the index again when another process changed it since (``load(follow=True)``); whether it did."""
        follow = self._follow
        if follow is None or not follow.changed():
            return False
        with follow.reloading:
            if not follow.changed():
                return False
            path, manifest, snapshot, pinned = open_read_only(follow.index_dir, self.embedder)
            old_unpin = self._unpin
            self.path, self.manifest = path, manifest
            self._unpin = weakref.finalize(self, pinned.close)
            self.snapshot = self._tuned(snapshot)
            follow.seen(path)
            if old_unpin is not None:
                old_unpin()
        return True

    def close(self) -> None:
        """Stop the batcher and unpin the generation: a later build may remove it."""
        if self.batcher is not None:
            self.batcher.close()
        if self._follow is not None:
            self._follow.close()
        if self._unpin is not None:
            self._unpin()

    # -- reading documents -----------------------------------------------------------

    def documents(
        self, offset: int = 0, limit: int = 20, filters: Filters | None = None
    ) -> tuple[int, list[DocumentInfo]]:
        """How many documents ``filters`` admit, and ``limit`` of them from ``offset``, by id."""
        total, ids = self.document_ids(offset + limit, filters)
        docs = self.snapshot.documents
        return total, [docs[i] for i in ids[offset : offset + limit] if i in docs]

    def document_ids(self, end: int, filters: Filters | None = None) -> tuple[int, list[str]]:
        """How many documents ``filters`` admit, and the first ``end`` ids in order (a cluster's router
        pages with these)."""
        self.refresh()
        snap = self.snapshot
        docs: AbstractSet[str] | Mapping[str, DocumentInfo] = snap.documents
        if filters is not None and not filters.empty:
            readable = snap.readable_ids(filters.groups)
            if readable is not None:
                docs = readable
            if filters.doc_ids is not None or filters.metadata:
                docs = {i for i in docs if (info := snap.documents.get(i)) is not None and filters.admits(info)}
        return len(docs), heapq.nsmallest(end, docs) if end < len(docs) else sorted(docs)

    def document(self, doc_id: str) -> store.StoredDocument:
        """A document as stored (``NotFoundError`` if there is none)."""
        self.refresh()
        # A connection of its own: reads never wait for a write's embedding (WAL lets them run).
        try:
            conn = store.connect(self.path / folder.STORE, readonly=True)
            try:
                found = store.get_document(conn, doc_id)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise IndexUnavailableError(f"cannot read {self.path / folder.STORE}: {exc}; restart to reload") from exc
        if found is None:
            raise NotFoundError(f"no document with id {doc_id!r}")
        return found

    def document_with_passages(self, doc_id: str) -> tuple[store.StoredDocument, list[store.StoredPassage]]:
        """A document and its passages (``NotFoundError`` if there is none)."""
        found = self.document(doc_id)
        snap = self.snapshot
        info = snap.documents.get(doc_id)
        rows = snap.passages.rows(info.passage_ids) if info else {}
        return found, [rows[pid] for pid in (info.passage_ids if info else ()) if pid in rows]

    def passage_with_metadata(self, passage_id: int) -> tuple[store.StoredPassage, dict[str, Any] | None]:
        """A passage and its document's metadata (for page numbers)."""
        self.refresh()
        snap = self.snapshot
        found = snap.passages.get(passage_id)
        if found is None:
            raise NotFoundError(f"no passage with id {passage_id}")
        info = snap.documents.get(found.doc_id)
        return found, info.metadata if info else None

    def document_texts(self) -> dict[str, str]:
        """Every document's original text, by id (for evaluation baselines)."""
        conn = store.connect(self.path / folder.STORE, readonly=True)
        try:
            return store.document_texts(conn)
        finally:
            conn.close()

    def health(self) -> dict[str, Any]:
        """Counts of each part, and whether they agree (``/readyz``)."""
        snap = self.snapshot
        counts = {"passages": len(snap.passages), "vectors": len(snap.vectors), "lexical": len(snap.lexical)}
        return {"documents": len(snap.documents), **counts, "consistent": len(set(counts.values())) == 1}

    # -- writing: refused ------------------------------------------------------------

    def _read_only(self) -> NoReturn:
        index_dir = self.path.parent.parent  # the generation's folder is INDEX_DIR/generations/NAME
        raise ReadOnlyIndexError(f"{index_dir} is open read-only here; write through `zhsearch serve`")

    def put(self, doc: Document, *, create_only: bool = False) -> WriteResult:
        self._read_only()

    def put_many(self, docs: Sequence[Document], *, replace: bool = True) -> list[WriteResult]:
        self._read_only()

    def delete(self, doc_id: str) -> None:
        self._read_only()

    # -- searching -------------------------------------------------------------------

    @property
    def vectors(self) -> DenseIndex:
        return self.snapshot.vectors

    def _allowed(self, snap: Snapshot, filters: Filters | None) -> Admitted | None:
        if filters is None or filters.empty:
            return None
        return snap.admitted(filters)

    @staticmethod
    def _lexical(snap: Snapshot, norm: str, k: int, allowed: AbstractSet[int] | None) -> list[tuple[int, float]]:
        ids, scores = snap.lexical.search(norm, k, None if allowed is None else id_array(allowed))
        return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True)]

    def candidates(
        self,
        norm: str,
        vector: np.ndarray | Callable[[], np.ndarray] | None,
        k: int,
        mode: Mode,
        filters: Filters | None,
        snap: Snapshot,
    ) -> ShardCandidates:
        """This index's candidates for ``merge`` (``norm``: the normalized query; ``vector``: its
        encoding, or what gives it once BM25 has run, unless lexical-only). A shard of a cluster
        answers its router with these."""
        allowed = self._allowed(snap, filters)
        depth = depth_for(k) if mode == "hybrid" else k
        lexical = self._lexical(snap, norm, depth, allowed) if mode != "dense" else []
        if mode == "lexical" or vector is None:
            return ShardCandidates(lexical, None)
        encoded = vector() if callable(vector) else vector
        # Lexical-only candidates get exact dense scores too, so fusion compares like with like.
        also = [pid for pid, _ in lexical]
        dense = snap.vectors.candidates(encoded[0], depth, snap.passages.sentence_count, allowed, also=also)
        return ShardCandidates(lexical, dense)

    def _rank(
        self, norm: str, k: int, mode: Mode, filters: Filters | None, snap: Snapshot
    ) -> tuple[list[tuple[int, float]], np.ndarray | None]:
        """The ranking of the normalized query ``norm``, and its vector when the mode computed one."""
        if mode == "lexical":
            return merge([self.candidates(norm, None, k, mode, filters, snap)], k, mode), None
        # the query is being encoded (by the micro-batcher) while BM25 runs; its result is waited for once
        encoding = functools.cache(self._encoding(norm))
        found = self.candidates(norm, encoding, k, mode, filters, snap)
        return merge([found], k, mode), encoding()

    def evidence(
        self, hits: Sequence[Hit], snap: Snapshot | None = None
    ) -> tuple[dict[str, str], Callable[[Hit], np.ndarray]]:
        """What an answer is drawn from, for ``hits``: their documents' normalized text, by id, and a
        hit's sentence vectors (one row per sentence of ``chunk.passage_sentences``)."""
        snap = snap or self.snapshot
        documents: dict[str, str] = {}
        for hit in hits:
            info = snap.documents.get(hit.doc_id)
            if info is not None and hit.doc_id not in documents:
                rows = snap.passages.rows(info.passage_ids)
                documents[hit.doc_id] = "\n".join(rows[pid].norm_text for pid in info.passage_ids if pid in rows)

        def stored(hit: Hit) -> np.ndarray:
            return sentence_vectors(snap.vectors, hit.passage_id, hit.text)

        return documents, stored

    def encode_query(self, query: str) -> np.ndarray:
        """The query's vector (1 x dim), through the micro-batcher when there is one."""
        return self._encoding(normalize(query))()

    def search(self, query: str, k: int = 10, mode: Mode = "hybrid", filters: Filters | None = None) -> SearchResult:
        return self.searched(query, k, mode, filters)[0]

    def searched(
        self, query: str, k: int = 10, mode: Mode = "hybrid", filters: Filters | None = None
    ) -> tuple[SearchResult, Snapshot, np.ndarray | None]:
        """``search``, plus the snapshot it read and the query vector it computed (None in lexical mode)."""
        began = time.perf_counter()
        query = validate_query(query, k, mode, self.tuning.limits)
        self.refresh()
        snap = self.snapshot  # one snapshot for the whole request
        norm = normalize(query)
        ranked, vector = self._rank(norm, min(MAX_K, 2 * k + 5), mode, filters, snap)
        rows = snap.passages.rows(pid for pid, _ in ranked)  # one read for every row this response may show
        metadata = lambda doc_id: info.metadata if (info := snap.documents.get(doc_id)) else None  # noqa: E731
        hits = assemble(ranked, rows, metadata, k)
        took = round((time.perf_counter() - began) * 1000, 2)
        return SearchResult(query=query, hits=hits, took_ms=took, mode=mode, norm_query=norm), snap, vector
