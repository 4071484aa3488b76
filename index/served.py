"""The served index: what every way of running zhsearch searches, answers from and writes to.

One protocol, ``ServedIndex``, with one set of signatures, implemented by a single
node (``retrieval.search.Searcher``, read-only; ``writing.live.LiveIndex``, writable)
and by a cluster's router (``cluster.router.ClusterIndex``). The server, the CLI,
MCP, eval and Ray open an index through ``opening.open_index``, which picks the
implementation and hands it its ``Tuning``: the settings an index applies itself,
and applies again whenever it loads vectors anew (a checkpoint, a reload after
another process wrote, a shard's reopen).

Following a search from the route down: ``routes.search`` → ``ServedIndex.search``
→ ``Searcher.searched`` (validate, normalize, encode while BM25 runs) →
``Searcher.candidates`` (``storage.lexical`` BM25, ``storage.dense`` FAISS) →
``retrieval.merge`` (fusion) → ``retrieval.search.assemble`` (rows, dedupe, pages)
→ back to the route, which shapes the response (``service.presenter``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .choices import Mode
from .models import Embedder
from .models.batching import QueryBatcher
from .retrieval.answering import Answering
from .retrieval.search import Hit, SearchResult
from .retrieval.snapshot import DocumentInfo, Filters, WriteResult
from .retrieval.tuning import Tuning
from .storage.record.store import StoredDocument, StoredPassage
from .text.ingest import Document


class ServedIndex(Protocol):
    """An index to search, answer from and write to: one node or a cluster (see the module doc).

    A read-only opening (``open_index(writable=False)``) refuses writes with ``ReadOnlyIndexError``.
    Every method may raise ``IndexUnavailableError`` (a store it cannot read, a shard down: 503).
    """

    path: Path
    embedder: Embedder
    tuning: Tuning
    #: Queries encoded by a micro-batcher (servers), or in the caller's thread (None).
    batcher: QueryBatcher | None
    #: How ``ask`` answers (the span reader and its calibration; set by ``opening.open_configured``).
    answering: Answering
    #: Passages whose vectors the opening had to compute again (an index older than stored vectors).
    repaired: int

    @property
    def build_seconds(self) -> float:
        """How long the index's build took (``/metrics``)."""
        ...

    # -- searching -------------------------------------------------------------------

    def search(self, query: str, k: int = 10, mode: Mode = "hybrid", filters: Filters | None = None) -> SearchResult:
        """Ranked passages (``InvalidInputError`` for a query outside ``tuning.limits``)."""
        ...

    def searched(
        self, query: str, k: int = 10, mode: Mode = "hybrid", filters: Filters | None = None
    ) -> tuple[SearchResult, Any, np.ndarray | None]:
        """``search``, plus the state it read (handed back to ``evidence``) and the query vector (None: lexical)."""
        ...

    def evidence(self, hits: Sequence[Hit], snap: Any = None) -> tuple[dict[str, str], Callable[[Hit], np.ndarray]]:
        """What an answer is drawn from: the hits' documents' normalized text, and a hit's sentence vectors."""
        ...

    def encode_query(self, query: str) -> np.ndarray:
        """The query's vector (1 x dim)."""
        ...

    # -- reading documents -----------------------------------------------------------

    def documents(
        self, offset: int = 0, limit: int = 20, filters: Filters | None = None
    ) -> tuple[int, list[DocumentInfo]]:
        """How many documents ``filters`` admit (a reader's groups among them), and ``limit`` of them
        from ``offset``, by id."""
        ...

    def document(self, doc_id: str) -> StoredDocument:
        """A document (``NotFoundError`` if there is none)."""
        ...

    def document_with_passages(self, doc_id: str) -> tuple[StoredDocument, list[StoredPassage]]:
        """A document and its passages (``NotFoundError`` if there is none)."""
        ...

    def passage_with_metadata(self, passage_id: int) -> tuple[StoredPassage, dict[str, Any] | None]:
        """A passage and its document's metadata, for page numbers (``NotFoundError`` if there is none)."""
        ...

    # -- writing ---------------------------------------------------------------------

    def put(self, doc: Document, *, create_only: bool = False) -> WriteResult:
        """Add or replace one document; returns once the change is durable."""
        ...

    def put_many(self, docs: Sequence[Document], *, replace: bool = True) -> list[WriteResult]:
        """Add (or replace) documents as one change: all of them, or none (``ConflictError``, ``InvalidInputError``)."""
        ...

    def delete(self, doc_id: str) -> None:
        """Remove a document (``NotFoundError`` if there is none)."""
        ...

    # -- running ---------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Counts of documents, passages, vectors and lexical entries, and whether they agree."""
        ...

    def close(self) -> None:
        """Release the index (its folder lock or pin, its batcher, a cluster's shards opened here)."""
        ...


__all__ = ["ServedIndex", "Tuning"]
