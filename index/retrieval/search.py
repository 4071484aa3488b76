"""Answering queries against a loaded index.

A ``Searcher`` reads from an immutable ``Snapshot`` (vectors, BM25, passage
rows, document metadata). A write builds a new snapshot and swaps the reference
in one step, so a search that started before sees the old state and one that
starts after sees the new one, never a mix.
"""

from __future__ import annotations

import sqlite3
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import faiss
import numpy as np

from ..errors import IndexUnavailableError
from ..models import Embedder
from ..models.batching import QueryBatcher
from ..storage import folder, store
from ..storage.dense import DenseIndex
from ..storage.ids import id_array
from ..storage.lexical import LexicalIndex
from ..storage.manifest import Manifest
from ..storage.overlay import Overlay
from ..storage.rows import PassageRows, StoreReader
from ..storage.store import StoredPassage
from ..text.chunk import sentences
from ..text.formats import pages_of
from ..text.normalize import normalize
from .merge import ShardCandidates, depth_for, merge
from .query import MAX_K, Mode, QueryLimits, validate_query


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


@dataclass(frozen=True, kw_only=True)
class SearchResult:
    query: str
    hits: list[Hit]
    took_ms: float
    mode: str = "hybrid"


@dataclass(frozen=True, kw_only=True)
class DocumentInfo:
    id: str
    title: str
    metadata: dict[str, Any]
    chars: int
    passage_ids: tuple[int, ...]


@dataclass(frozen=True)
class Filters:
    """Restrict a search to some documents, by id and/or by exact metadata values."""

    doc_ids: frozenset[str] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def admits(self, doc: DocumentInfo) -> bool:
        if self.doc_ids is not None and doc.id not in self.doc_ids:
            return False
        return all(str(doc.metadata.get(key)) == str(value) for key, value in self.metadata.items())

    @property
    def empty(self) -> bool:
        return self.doc_ids is None and not self.metadata


MetadataKey = tuple[str, str]
#: Filters whose admitted passages a snapshot keeps (the most recent ones).
ADMITTED_KEPT = 64


class Admitted(frozenset[int]):
    """The passage ids a filter admits, also as a sorted array (what FAISS and BM25 take)."""

    def __init__(self, ids: Iterable[int] = ()) -> None:
        super().__init__()
        self.array = np.sort(np.fromiter(self, np.int64, len(self)))


def metadata_keys(metadata: Mapping[str, Any]) -> list[MetadataKey]:
    """The (field, value as text) pairs a document is found under by a metadata filter."""
    return [(key, str(value)) for key, value in metadata.items()]


def _holders(documents: Mapping[str, DocumentInfo]) -> dict[MetadataKey, frozenset[str]]:
    found: dict[MetadataKey, set[str]] = {}
    for info in documents.values():
        for pair in metadata_keys(info.metadata):
            found.setdefault(pair, set()).add(info.id)
    return {pair: frozenset(ids) for pair, ids in found.items()}


@dataclass(frozen=True)
class Snapshot:
    vectors: DenseIndex
    lexical: LexicalIndex
    # A write makes new ones that share the old ones' contents (``storage.overlay``, ``storage.rows``).
    passages: PassageRows
    documents: Overlay[str, DocumentInfo]
    #: Which documents hold each (field, value): a metadata filter is a lookup, not a scan.
    holders: Overlay[MetadataKey, frozenset[str]] = field(default_factory=Overlay)
    _admitted: dict[Any, Admitted] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_store(
        cls,
        conn: Any,
        vectors: DenseIndex,
        lexical: LexicalIndex,
        reader: StoreReader | None,
        owners: tuple[list[int], list[str]] | None = None,
    ) -> Snapshot:
        """A snapshot of everything ``conn``'s store holds; ``owners`` (``store.passage_owners``) if read already.

        Only ids, sentence counts and document facts stay in memory; passage rows are read
        through ``reader`` when a response needs them.
        """
        ids, doc_ids = owners if owners is not None else store.passage_owners(conn)
        by_doc: dict[str, list[int]] = {}
        for pid, doc_id in zip(ids, doc_ids, strict=True):
            by_doc.setdefault(doc_id, []).append(pid)
        documents = {
            doc_id: DocumentInfo(
                id=doc_id,
                title=title,
                metadata=metadata,
                chars=chars,
                passage_ids=tuple(by_doc.get(doc_id, ())),
            )
            for doc_id, title, metadata, chars in store.document_rows(conn)
        }
        with_sentences = vectors.sentence_counts()
        counts = {pid: with_sentences.get(pid, 0) for pid in ids}
        return cls(
            vectors, lexical, PassageRows(Overlay(counts), reader), Overlay(documents), Overlay(_holders(documents))
        )

    def with_documents(
        self, changed: Mapping[str, DocumentInfo | None]
    ) -> tuple[Overlay[str, DocumentInfo], Overlay[MetadataKey, frozenset[str]]]:
        """The documents and metadata holders after ``changed`` (None: removed), sharing this snapshot's."""
        touched: dict[MetadataKey, set[str]] = {}
        for doc_id, info in changed.items():
            old = self.documents.get(doc_id)
            for pair in metadata_keys(old.metadata) if old is not None else ():
                touched.setdefault(pair, set(self.holders.get(pair, ()))).discard(doc_id)
            for pair in metadata_keys(info.metadata) if info is not None else ():
                touched.setdefault(pair, set(self.holders.get(pair, ()))).add(doc_id)
        documents = self.documents.updated(list(changed), {k: v for k, v in changed.items() if v is not None})
        holders = self.holders.updated(
            [pair for pair, ids in touched.items() if not ids],
            {pair: frozenset(ids) for pair, ids in touched.items() if ids},
        )
        return documents, holders

    def admitted(self, filters: Filters) -> Admitted:
        """The passage ids a filter admits (kept per snapshot for the filters asked most recently)."""
        key = (filters.doc_ids, tuple(sorted(metadata_keys(filters.metadata))))
        found = self._admitted.get(key)
        if found is None:
            found = Admitted(self._admit(filters))
            if len(self._admitted) >= ADMITTED_KEPT:
                self._admitted.pop(next(iter(self._admitted)), None)
            self._admitted[key] = found
        return found

    def _admit(self, filters: Filters) -> set[int]:
        """Documents by id, then by each (field, value), intersected; their passages."""
        if any(str(value) == "None" for value in filters.metadata.values()):
            # a missing field reads as "None": that filter needs every document, so scan them
            return {pid for doc in self.documents.values() if filters.admits(doc) for pid in doc.passage_ids}
        docs: set[str] | None = None if filters.doc_ids is None else set(filters.doc_ids)
        for pair in metadata_keys(filters.metadata):
            held = self.holders.get(pair, frozenset())
            docs = set(held) if docs is None else docs & held
        if docs is None:
            return {pid for doc in self.documents.values() for pid in doc.passage_ids}
        return {pid for doc_id in docs if (info := self.documents.get(doc_id)) for pid in info.passage_ids}


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
            )
        )
    return hits


def sentence_vectors(vectors: DenseIndex, passage_id: int, text: str) -> np.ndarray:
    """A passage's sentence vectors; a passage too short for them lends its own vector to its sentences."""
    found = vectors.sentence_vectors(passage_id, text)
    if len(found):
        return found
    return np.repeat(vectors.passage_vectors([passage_id]), len(sentences(text, 0, len(text), 250)), axis=0)


def serve_queries_single_threaded() -> None:
    """Process-wide: FAISS searches without an OpenMP team, for a process that serves queries.

    One query at a time needs no team, and an idle one spinning beside the encoder's
    threads made each FAISS search 20x slower (6 ms instead of 0.3 ms). Servers call
    this once; loading an index does not, so a build in the same process keeps its threads.
    """
    faiss.omp_set_num_threads(1)


def _pin_current(index_dir: Path) -> tuple[Path, IO[str]]:
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


class Searcher:
    """A loaded index generation plus the embedder that built it."""

    def __init__(
        self, path: Path, manifest: Manifest, snapshot: Snapshot, embedder: Embedder, pinned: IO[str] | None = None
    ) -> None:
        self.path = path
        # Unpinned by close(), or when the searcher is collected.
        self._unpin = weakref.finalize(self, pinned.close) if pinned is not None else None
        self.manifest = manifest
        self.embedder = embedder
        self.snapshot = snapshot
        self.batcher: QueryBatcher | None = None
        #: What a query may be here; a service lowers them from its settings.
        self.limits = QueryLimits()

    def _encoding(self, norm_query: str) -> Callable[[], np.ndarray]:
        """Start encoding the query; the returned function gives the vector.

        With a micro-batcher (servers) the model runs on an encoding thread, so the
        caller can run BM25 meanwhile on the other core; without one it runs when asked.
        """
        if self.batcher is not None:
            return self.batcher.submit(norm_query).result
        return lambda: self.embedder.encode_queries([norm_query])

    @classmethod
    def load(cls, index_dir: Path, embedder: Embedder) -> Searcher:
        """The current generation, pinned so that a build meanwhile does not delete it (``close`` unpins)."""
        path, pinned = _pin_current(index_dir)
        try:
            manifest = Manifest.read(path / folder.MANIFEST)
            manifest.check_usable(embedder)
            conn = store.connect(path / folder.STORE, readonly=True)
            reader = StoreReader(path / folder.STORE)
            try:
                owners = store.passage_owners(conn)
                ids = np.asarray(owners[0], np.int64)
                lexical = LexicalIndex.load(path / folder.LEXICAL, ids, reader.passages, mmap=True)
                vectors = DenseIndex.load(path, mmap=True)
                snapshot = Snapshot.from_store(conn, vectors, lexical, reader, owners)
            finally:
                conn.close()
        except BaseException:
            pinned.close()
            raise
        return cls(path, manifest, snapshot, embedder, pinned)

    def close(self) -> None:
        """Unpin the generation: a later build may remove it."""
        if self._unpin is not None:
            self._unpin()

    def document_text(self, doc_id: str) -> str | None:
        """The original full text of a document, or None."""
        try:
            conn = store.connect(self.path / folder.STORE, readonly=True)
            try:
                found = store.get_document(conn, doc_id)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise IndexUnavailableError(f"cannot read {self.path / folder.STORE}: {exc}; restart to reload") from exc
        return found.text if found else None

    def document_texts(self) -> dict[str, str]:
        """Every document's original text, by id (for evaluation baselines)."""
        conn = store.connect(self.path / folder.STORE, readonly=True)
        try:
            return store.document_texts(conn)
        finally:
            conn.close()

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
        self, norm: str, vector: np.ndarray | None, k: int, mode: Mode, filters: Filters | None, snap: Snapshot
    ) -> ShardCandidates:
        """This index's candidates for ``merge`` (``norm``: the normalized query; ``vector``: its
        encoding, unless lexical-only). A shard of a cluster answers its router with these."""
        allowed = self._allowed(snap, filters)
        depth = depth_for(k) if mode == "hybrid" else k
        lexical = self._lexical(snap, norm, depth, allowed) if mode != "dense" else []
        if mode == "lexical" or vector is None:
            return ShardCandidates(lexical, None)
        # Lexical-only candidates get exact dense scores too, so fusion compares like with like.
        also = [pid for pid, _ in lexical]
        dense = snap.vectors.candidates(vector[0], depth, snap.passages.sentence_count, allowed, also=also)
        return ShardCandidates(lexical, dense)

    def rank(
        self, query: str, k: int, mode: Mode = "hybrid", filters: Filters | None = None, snap: Snapshot | None = None
    ) -> list[tuple[int, float]]:
        """Passage ids and scores, best first (no validation, no passage rows)."""
        return self._rank(query, k, mode, filters, snap or self.snapshot)[0]

    def _rank(
        self, query: str, k: int, mode: Mode, filters: Filters | None, snap: Snapshot
    ) -> tuple[list[tuple[int, float]], np.ndarray | None]:
        """The ranking, and the query vector when the mode computed one."""
        norm = normalize(query)
        if mode == "lexical":
            return merge([self.candidates(norm, None, k, mode, filters, snap)], k, mode), None
        encoding = self._encoding(norm)
        if mode == "hybrid":  # BM25 runs while the query is being encoded
            lexical = self.candidates(norm, None, k, mode, filters, snap).lexical
            vector = encoding()
            allowed = self._allowed(snap, filters)
            also = [pid for pid, _ in lexical]
            dense = snap.vectors.candidates(vector[0], depth_for(k), snap.passages.sentence_count, allowed, also=also)
            return merge([ShardCandidates(lexical, dense)], k, mode), vector
        vector = encoding()
        return merge([self.candidates(norm, vector, k, mode, filters, snap)], k, mode), vector

    def evidence(
        self, hits: Sequence[Hit], snap: Snapshot | None = None
    ) -> tuple[dict[str, str], Callable[[Hit], np.ndarray]]:
        """What an answer is drawn from, for ``hits``: their documents' normalized text, by id, and a
        hit's sentence vectors (one row per sentence of ``chunk.sentences``)."""
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
        query = validate_query(query, k, mode, self.limits)
        snap = self.snapshot  # one snapshot for the whole request
        ranked, vector = self._rank(query, min(MAX_K, 2 * k + 5), mode, filters, snap)
        rows = snap.passages.rows(pid for pid, _ in ranked)  # one read for every row this response may show
        hits = assemble(ranked, rows, lambda doc_id: info.metadata if (info := snap.documents.get(doc_id)) else None, k)
        took = round((time.perf_counter() - began) * 1000, 2)
        return SearchResult(query=query, hits=hits, took_ms=took, mode=mode), snap, vector
