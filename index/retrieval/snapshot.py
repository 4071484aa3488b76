"""What a search reads: an immutable snapshot of an index, and the filters it applies.

A write builds a new ``Snapshot`` that shares the old one's contents
(``storage.record.overlay``, ``storage.record.rows``) and swaps it in whole (``writing.live``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..access import OPEN, access_keys, readable
from ..storage.dense import DenseIndex
from ..storage.lexical import LexicalIndex
from ..storage.record import store
from ..storage.record.overlay import Overlay
from ..storage.record.rows import PassageRows, StoreReader


@dataclass(frozen=True, kw_only=True)
class DocumentInfo:
    id: str
    title: str
    metadata: dict[str, Any]
    chars: int
    passage_ids: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class WriteResult:
    """A document as written, and whether the write created it (else it replaced one)."""

    document: DocumentInfo
    created: bool


@dataclass(frozen=True)
class Filters:
    """Restrict a search to some documents, by id and/or by exact metadata values, and to the documents
    a reader of ``groups`` may read (``index.access``; None: every document)."""

    doc_ids: frozenset[str] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    groups: frozenset[str] | None = None

    def admits(self, doc: DocumentInfo) -> bool:
        if self.doc_ids is not None and doc.id not in self.doc_ids:
            return False
        if not readable(doc.metadata, self.groups):
            return False
        return all(str(doc.metadata.get(key)) == str(value) for key, value in self.metadata.items())

    def within(self, groups: frozenset[str] | None) -> Filters:
        """These filters, for a reader of ``groups`` (None: every document)."""
        return Filters(self.doc_ids, self.metadata, groups)

    @property
    def empty(self) -> bool:
        return self.doc_ids is None and not self.metadata and self.groups is None


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


def _readers(documents: Mapping[str, DocumentInfo]) -> dict[str, frozenset[str]]:
    found: dict[str, set[str]] = {}
    for info in documents.values():
        for group in access_keys(info.metadata):
            found.setdefault(group, set()).add(info.id)
    return {group: frozenset(ids) for group, ids in found.items()}


def _regrouped(
    old: Overlay[Any, frozenset[str]],
    changed: Mapping[str, DocumentInfo | None],
    before: Mapping[str, DocumentInfo],
    keys: Any,
) -> Overlay[Any, frozenset[str]]:
    """``old`` (key → documents holding it) after ``changed``; ``keys`` gives a document's keys."""
    touched: dict[Any, set[str]] = {}
    for doc_id, info in changed.items():
        previous = before.get(doc_id)
        for key in keys(previous.metadata) if previous is not None else ():
            touched.setdefault(key, set(old.get(key, ()))).discard(doc_id)
        for key in keys(info.metadata) if info is not None else ():
            touched.setdefault(key, set(old.get(key, ()))).add(doc_id)
    return old.updated(
        [key for key, ids in touched.items() if not ids],
        {key: frozenset(ids) for key, ids in touched.items() if ids},
    )


@dataclass(frozen=True)
class Snapshot:
    vectors: DenseIndex
    lexical: LexicalIndex
    # A write makes new ones that share the old ones' contents (``storage.record.overlay``, ``storage.record.rows``).
    passages: PassageRows
    documents: Overlay[str, DocumentInfo]
    #: Which documents hold each (field, value): a metadata filter is a lookup, not a scan.
    holders: Overlay[MetadataKey, frozenset[str]] = field(default_factory=Overlay)
    #: Which documents each access group reads, and under ``access.OPEN`` those every reader reads.
    readers: Overlay[str, frozenset[str]] = field(default_factory=Overlay)
    #: The filters asked most recently and what they admit, least recent first (``admitted``).
    _admitted: OrderedDict[Any, Admitted] = field(default_factory=OrderedDict, compare=False, repr=False)
    _admitting: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

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
            vectors,
            lexical,
            PassageRows(Overlay(counts), reader),
            Overlay(documents),
            Overlay(_holders(documents)),
            Overlay(_readers(documents)),
        )

    def with_documents(
        self, changed: Mapping[str, DocumentInfo | None]
    ) -> tuple[Overlay[str, DocumentInfo], Overlay[MetadataKey, frozenset[str]], Overlay[str, frozenset[str]]]:
        """The documents, metadata holders and access readers after ``changed`` (None: removed), sharing
        this snapshot's."""
        holders = _regrouped(self.holders, changed, self.documents, metadata_keys)
        readers = _regrouped(self.readers, changed, self.documents, access_keys)
        documents = self.documents.updated(list(changed), {k: v for k, v in changed.items() if v is not None})
        return documents, holders, readers

    def admitted(self, filters: Filters) -> Admitted:
        """The passage ids a filter admits, kept per snapshot for the ``ADMITTED_KEPT`` filters used most
        recently (request threads share the snapshot: the cache is read and changed under a lock)."""
        key = (filters.doc_ids, tuple(sorted(metadata_keys(filters.metadata))), filters.groups)
        with self._admitting:
            found = self._admitted.get(key)
            if found is not None:
                self._admitted.move_to_end(key)
                return found
        found = Admitted(self._admit(filters))  # outside the lock: a scan holds up no other filter
        with self._admitting:
            self._admitted[key] = found
            self._admitted.move_to_end(key)
            while len(self._admitted) > ADMITTED_KEPT:
                self._admitted.popitem(last=False)
        return found

    def readable_ids(self, groups: frozenset[str] | None) -> set[str] | None:
        """The documents a reader of ``groups`` may read (None: every document)."""
        if groups is None:
            return None
        found: set[str] = set(self.readers.get(OPEN, ()))
        for group in groups:
            found.update(self.readers.get(group, ()))
        return found

    def _admit(self, filters: Filters) -> set[int]:
        """Documents by id, then by each (field, value), then by access, intersected; their passages."""
        if any(str(value) == "None" for value in filters.metadata.values()):
            # a missing field reads as "None": that filter needs every document, so scan them
            return {pid for doc in self.documents.values() if filters.admits(doc) for pid in doc.passage_ids}
        docs: set[str] | None = None if filters.doc_ids is None else set(filters.doc_ids)
        for pair in metadata_keys(filters.metadata):
            held = self.holders.get(pair, frozenset())
            docs = set(held) if docs is None else docs & held
        readable_docs = self.readable_ids(filters.groups)
        if readable_docs is not None:
            docs = readable_docs if docs is None else docs & readable_docs
        if docs is None:
            return {pid for doc in self.documents.values() for pid in doc.passage_ids}
        return {pid for doc_id in docs if (info := self.documents.get(doc_id)) for pid in info.passage_ids}
