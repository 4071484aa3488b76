"""Answering queries against a built index."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import folder, store
from .embed import Embedder
from .errors import InvalidInputError
from .manifest import Manifest
from .normalize import PROFILE, dictionary_hash, normalize
from .vectors import VectorIndex

MAX_QUERY_CHARS = 1000
MAX_K = 100


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: list[Hit]
    took_ms: float


def validate_query(query: str, k: int, *, max_chars: int = MAX_QUERY_CHARS, max_k: int = MAX_K) -> str:
    """The query, stripped; raises ``InvalidInputError`` with a message a person can act on."""
    stripped = query.strip()
    if not stripped:
        raise InvalidInputError("the query is empty")
    if len(query) > max_chars:
        raise InvalidInputError(f"the query has {len(query)} characters; the limit is {max_chars}")
    if not 1 <= k <= max_k:
        raise InvalidInputError(f"k must be between 1 and {max_k}, got {k}")
    return stripped


class Searcher:
    """A loaded index generation plus the embedder that built it."""

    def __init__(self, path: Path, manifest: Manifest, vectors: VectorIndex, embedder: Embedder) -> None:
        self.path = path
        self.manifest = manifest
        self.vectors = vectors
        self.embedder = embedder
        self._conn = store.connect(path / folder.STORE, readonly=True)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, index_dir: Path, embedder: Embedder) -> Searcher:
        path = folder.require_current(index_dir)
        manifest = Manifest.read(path / folder.MANIFEST)
        manifest.check_model(embedder.name, embedder.fingerprint, embedder.dim)
        if (manifest.normalization, manifest.dictionary_hash) != (PROFILE, dictionary_hash()):
            from .errors import IndexMismatchError

            raise IndexMismatchError(
                f"index was built with normalization {manifest.normalization} (dictionary"
                f" {manifest.dictionary_hash}); this zhsearch uses {PROFILE} ({dictionary_hash()}); rebuild it"
            )
        return cls(path, manifest, VectorIndex.load(path / folder.VECTORS), embedder)

    def close(self) -> None:
        self._conn.close()

    def search(self, query: str, k: int = 10) -> SearchResult:
        began = time.perf_counter()
        query = validate_query(query, k)
        vector = self.embedder.encode_queries([normalize(query)])
        scores, ids = self.vectors.search(vector, k)
        pairs = [(float(s), int(i)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]
        with self._lock:
            rows = store.passages_by_id(self._conn, [i for _, i in pairs])
        hits = []
        for score, pid in pairs:
            row = rows.get(pid)
            if row is None:
                continue
            hits.append(
                Hit(len(hits) + 1, round(score, 6), pid, row.doc_id, row.title, row.section, row.text,
                    row.start, row.end)
            )
        return SearchResult(query, hits, round((time.perf_counter() - began) * 1000, 2))
