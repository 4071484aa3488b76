"""The router of a cluster: one index to the service, made of shards it asks in parallel.

``ClusterIndex`` offers what the HTTP API, MCP and ``ask`` use of a ``LiveIndex``
(search, evidence for answers, documents, passages, writes, health), so the
service's routes run unchanged on a cluster. A query is normalized and encoded
once here; every shard proposes its candidates (``Searcher.candidates``), the
router merges them (``retrieval.merge``, the code a single index ranks with),
reads the rows of the passages it will show from their shards, dedupes and
highlights exactly as a single index does. A write goes to the shard that owns
the document (``layout.shard_of``).

Every request needs every shard: if one does not answer, the request fails with
``ShardsUnavailableError`` (503) saying how many answered, never a ranking of
the others. How shards are reached is the ``Shards`` given: replicas in this
process (tests), or Ray Serve deployments (``service.ray_app``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..choices import Mode
from ..errors import ConflictError, NotFoundError, ReadOnlyIndexError
from ..models import Embedder
from ..models.batching import QueryBatcher
from ..retrieval.answering import SENTENCES, Answering
from ..retrieval.merge import ShardCandidates, merge
from ..retrieval.query import MAX_K, validate_query
from ..retrieval.search import Hit, SearchResult, assemble
from ..retrieval.snapshot import DocumentInfo, Filters, WriteResult
from ..retrieval.tuning import Tuning
from ..storage.record import store
from ..text.ingest import Document
from ..text.normalize import normalize
from ..writing.live import check_batch
from .layout import ClusterManifest, shard_of

log = logging.getLogger("zhsearch.cluster")


class Shards(Protocol):
    """How the router reaches its shards."""

    count: int

    def call(self, calls: Mapping[int, tuple[str, tuple[Any, ...]]]) -> dict[int, Any]:
        """Run ``method(*args)`` on each shard named, in parallel; every result. Returns (or raises) only
        once every call has ended: a call that raised raises here (the first, by shard), and a shard that
        did not answer is a ``ShardsUnavailableError``."""
        ...


class ClusterIndex:
    """A cluster's shards as one index (see the module doc)."""

    def __init__(
        self,
        path: Path,
        manifest: ClusterManifest,
        shards: Shards,
        embedder: Embedder,
        tuning: Tuning | None = None,
        *,
        writable: bool = True,
    ) -> None:
        self.path = path
        self.writable = writable
        self.cluster = manifest
        self.shards = shards
        self.embedder = embedder
        #: The router applies the query limits and budgets; each shard applies the rest to its own vectors.
        self.tuning = tuning or Tuning()
        self.batcher: QueryBatcher | None = None
        self.answering: Answering = SENTENCES
        self.repaired = 0

    @classmethod
    def open(
        cls, index_dir: Path, shards: Shards, embedder: Embedder, tuning: Tuning | None = None, *, writable: bool = True
    ) -> ClusterIndex:
        """The cluster in ``index_dir`` over ``shards``, once its manifest names the configured model."""
        manifest = ClusterManifest.read(index_dir)
        manifest.check_model(embedder)
        return cls(index_dir, manifest, shards, embedder, tuning, writable=writable)

    @property
    def build_seconds(self) -> float:
        return self.cluster.build_seconds

    def _check_writable(self) -> None:
        if not self.writable:
            raise ReadOnlyIndexError(f"{self.path} is open read-only here; write through `zhsearch serve`")

    def _all(self, method: str, *args: Any) -> dict[int, Any]:
        return self.shards.call({shard: (method, args) for shard in range(self.shards.count)})

    def _answered(self) -> dict[str, int]:
        return {"answered": self.shards.count, "total": self.shards.count}

    # -- searching -----------------------------------------------------------------

    def _encoding(self, norm: str) -> Callable[[], np.ndarray]:
        if self.batcher is not None:
            return self.batcher.submit(norm).result
        return lambda: self.embedder.encode_queries([norm])

    def encode_query(self, query: str) -> np.ndarray:
        return self._encoding(normalize(query))()

    def _rank(
        self, norm: str, k: int, mode: Mode, filters: Filters | None
    ) -> tuple[tuple[list[tuple[int, float]], dict[int, int], dict[int, Any]], np.ndarray | None]:
        """The merged ranking of the normalized query ``norm``, each passage's shard, the rows the shards
        sent, and the query vector."""
        vector = None if mode == "lexical" else self._encoding(norm)()
        found: dict[int, ShardCandidates] = self._all("candidates", norm, vector, k, mode, filters)
        owner = {}
        sent: dict[int, Any] = {}
        for shard, part in found.items():
            sent.update(part.rows)
            for pid, _ in part.lexical:
                owner[pid] = shard
            if part.dense is not None:
                owner.update(dict.fromkeys(part.dense.scores, shard))
        return (merge(list(found.values()), k, mode), owner, sent), vector

    def search(self, query: str, k: int = 10, mode: Mode = "hybrid", filters: Filters | None = None) -> SearchResult:
        return self.searched(query, k, mode, filters)[0]

    def searched(
        self, query: str, k: int = 10, mode: Mode = "hybrid", filters: Filters | None = None
    ) -> tuple[SearchResult, None, np.ndarray | None]:
        began = time.perf_counter()
        query = validate_query(query, k, mode, self.tuning.limits)
        norm = normalize(query)
        (ranked, owner, sent), vector = self._rank(norm, min(MAX_K, 2 * k + 5), mode, filters)
        wanted: dict[int, list[int]] = {}
        for pid, _ in ranked:
            if pid not in sent:  # a passage its shard did not rank high alone: its row is asked for now
                wanted.setdefault(owner[pid], []).append(pid)
        if wanted:
            for part in self.shards.call({shard: ("rows", (ids,)) for shard, ids in wanted.items()}).values():
                sent.update(part)
        rows: dict[int, store.StoredPassage] = {}
        metadata: dict[str, Any] = {}
        for pid, (row, meta) in sent.items():
            rows[pid] = row
            metadata[row.doc_id] = meta
        hits = assemble(ranked, rows, metadata.get, k)
        took = round((time.perf_counter() - began) * 1000, 2)
        result = SearchResult(query=query, hits=hits, took_ms=took, mode=mode, shards=self._answered(), norm_query=norm)
        return result, None, vector

    def evidence(self, hits: Sequence[Hit], snap: None = None) -> tuple[dict[str, str], Callable[[Hit], np.ndarray]]:
        by_shard: dict[int, list[Hit]] = {}
        for hit in hits:
            by_shard.setdefault(shard_of(hit.doc_id, self.shards.count), []).append(hit)
        found = self.shards.call({shard: ("evidence", (part,)) for shard, part in by_shard.items()}) if hits else {}
        documents: dict[str, str] = {}
        vectors: dict[int, np.ndarray] = {}
        for texts, stored in found.values():
            documents.update(texts)
            vectors.update(stored)
        return documents, lambda hit: vectors[hit.passage_id]

    # -- documents -----------------------------------------------------------------

    def _owner(self, doc_id: str) -> int:
        return shard_of(doc_id, self.shards.count)

    def document(self, doc_id: str) -> store.StoredDocument:
        return self.document_with_passages(doc_id)[0]

    def document_with_passages(self, doc_id: str) -> tuple[store.StoredDocument, list[store.StoredPassage]]:
        shard = self._owner(doc_id)
        return self.shards.call({shard: ("document_with_passages", (doc_id,))})[shard]  # type: ignore[no-any-return]

    def passage_with_metadata(self, passage_id: int) -> tuple[store.StoredPassage, dict[str, Any] | None]:
        for found in self._all("rows", [passage_id]).values():
            if passage_id in found:
                return found[passage_id]  # type: ignore[no-any-return]
        raise NotFoundError(f"no passage with id {passage_id}")

    def documents(
        self, offset: int = 0, limit: int = 20, filters: Filters | None = None
    ) -> tuple[int, list[DocumentInfo]]:
        """The page of the shards' documents (those ``filters`` admit) merged by id: the shards send ids
        only (at most ``offset + limit`` each), and the entries of the page's ``limit`` come from their owners."""
        found: dict[int, tuple[int, list[str]]] = self._all("document_ids", offset + limit, filters)
        total = sum(count for count, _ in found.values())
        page = list(itertools.islice(heapq.merge(*(ids for _, ids in found.values())), offset, offset + limit))
        wanted: dict[int, list[str]] = {}
        for doc_id in page:
            wanted.setdefault(self._owner(doc_id), []).append(doc_id)
        infos = self.shards.call({s: ("document_infos", (ids,)) for s, ids in wanted.items()}) if wanted else {}
        by_id = {info.id: info for part in infos.values() for info in part}
        return total, [by_id[doc_id] for doc_id in page if doc_id in by_id]

    def health(self) -> dict[str, Any]:
        found = self._all("health")
        counts = {
            key: sum(part[key] for part in found.values()) for key in ("documents", "passages", "vectors", "lexical")
        }
        consistent = all(part["consistent"] for part in found.values())
        return {**counts, "consistent": consistent, "shards": self._answered()}

    # -- writing -------------------------------------------------------------------

    def put(self, doc: Document, *, create_only: bool = False) -> WriteResult:
        return self.put_many([doc], replace=not create_only)[0]

    def put_many(self, docs: Sequence[Document], *, replace: bool = True) -> list[WriteResult]:
        """Write each document to its shard, as one change: everything is checked first, on every shard
        involved (a bad document or a taken id refuses the whole batch), then the shards write at once.
        If one refuses or fails (an id taken meanwhile, a shard down), the shards that wrote are put back
        as they were (``ShardReplica.restore``) before the error is raised: the batch is all or nothing,
        though a search on another thread may see it in part for that moment."""
        self._check_writable()
        check_batch(docs, self.tuning.budgets)
        by_shard: dict[int, list[Document]] = {}
        for doc in docs:
            by_shard.setdefault(self._owner(doc.id), []).append(doc)
        ids = {s: [d.id for d in part] for s, part in by_shard.items()}
        if not replace:
            held = self.shards.call({s: ("holds", (part,)) for s, part in ids.items()})
            taken = [doc_id for part in held.values() for doc_id in part]
            if taken:
                raise ConflictError(f"a document with id {taken[0]!r} exists; use PUT (or replace=true) to replace it")
        if len(by_shard) == 1:  # one shard's write is one transaction already
            written = self.shards.call({s: ("put_many", (part, replace)) for s, part in by_shard.items()})
        else:
            written = self._all_or_nothing(by_shard, ids, replace)
        results = {r.document.id: r for part in written.values() for r in part}
        return [results[doc.id] for doc in docs]

    def _all_or_nothing(
        self, by_shard: dict[int, list[Document]], ids: dict[int, list[str]], replace: bool
    ) -> dict[int, Any]:
        """Write a batch over several shards; if one refuses or fails, put the others back, then raise."""
        before = self.shards.call({s: ("stored", (part,)) for s, part in ids.items()}) if replace else {}
        try:
            return self.shards.call({s: ("put_many", (part, replace)) for s, part in by_shard.items()})
        except BaseException:
            ours = {s: {d.id: d.content_hash for d in part} for s, part in by_shard.items()}
            try:
                self.shards.call({s: ("restore", (ours[s], before.get(s, {}))) for s in ids})
            except Exception as undo:  # the batch's own error is what the client hears
                log.error(
                    "a failed batch could not be undone (%s: %s); documents it may have left written: %s",
                    type(undo).__name__,
                    undo,
                    ", ".join(doc_id for part in ids.values() for doc_id in part),
                )
            raise

    def delete(self, doc_id: str) -> None:
        self._check_writable()
        shard = self._owner(doc_id)
        self.shards.call({shard: ("delete", (doc_id,))})

    def close(self) -> None:
        """Stop the batcher, and close the shards when this process opened them (``local.LocalShards``);
        Ray's are the cluster's."""
        if self.batcher is not None:
            self.batcher.close()
        closing = getattr(self.shards, "close", None)
        if callable(closing):
            closing()
