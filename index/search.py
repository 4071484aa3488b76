"""Answering queries against a built index."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from . import folder, store
from .embed import Embedder
from .errors import IndexMismatchError, InvalidInputError
from .fusion import fuse
from .lexical import TOKENIZER, LexicalIndex
from .manifest import Manifest
from .normalize import PROFILE, dictionary_hash, normalize
from .vectors import VectorIndex

MAX_QUERY_CHARS = 1000
MAX_K = 100
MODES = ("dense", "lexical", "hybrid")
Mode = Literal["dense", "lexical", "hybrid"]
# Each retriever proposes this many candidates (at least) for fusion.
CANDIDATES = 50


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
    mode: str = "hybrid"


def validate_query(
    query: str, k: int, *, mode: str = "hybrid", max_chars: int = MAX_QUERY_CHARS, max_k: int = MAX_K
) -> str:
    """The query, stripped; raises ``InvalidInputError`` with a message a person can act on."""
    stripped = query.strip()
    if not stripped:
        raise InvalidInputError("the query is empty")
    if len(query) > max_chars:
        raise InvalidInputError(f"the query has {len(query)} characters; the limit is {max_chars}")
    if not 1 <= k <= max_k:
        raise InvalidInputError(f"k must be between 1 and {max_k}, got {k}")
    if mode not in MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return stripped


class Searcher:
    """A loaded index generation plus the embedder that built it."""

    def __init__(
        self, path: Path, manifest: Manifest, vectors: VectorIndex, lexical: LexicalIndex, embedder: Embedder
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.vectors = vectors
        self.lexical = lexical
        self.embedder = embedder
        self._conn = store.connect(path / folder.STORE, readonly=True)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, index_dir: Path, embedder: Embedder) -> Searcher:
        path = folder.require_current(index_dir)
        manifest = Manifest.read(path / folder.MANIFEST)
        manifest.check_model(embedder.name, embedder.fingerprint, embedder.dim)
        built = (manifest.normalization, manifest.dictionary_hash, manifest.lexical)
        if built != (PROFILE, dictionary_hash(), TOKENIZER):
            raise IndexMismatchError(
                f"index was built with normalization {manifest.normalization} (dictionary"
                f" {manifest.dictionary_hash}, tokens {manifest.lexical}); this zhsearch uses {PROFILE}"
                f" ({dictionary_hash()}, tokens {TOKENIZER}); rebuild it with `zhsearch build`"
            )
        vectors = VectorIndex.load(path / folder.VECTORS)
        return cls(path, manifest, vectors, LexicalIndex.load(path / folder.LEXICAL), embedder)

    def close(self) -> None:
        self._conn.close()

    def _dense(self, vector: np.ndarray, k: int) -> dict[int, float]:
        scores, ids = self.vectors.search(vector, k)
        return {int(i): float(s) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0}

    def rank(self, query: str, k: int, mode: Mode = "hybrid") -> list[tuple[int, float]]:
        """Passage ids and scores, best first (no validation, no passage rows)."""
        norm = normalize(query)
        if mode == "lexical":
            ids, scores = self.lexical.search(norm, k)
            return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True)]
        vector = self.embedder.encode_queries([norm])
        if mode == "dense":
            return sorted(self._dense(vector, k).items(), key=lambda item: -item[1])
        depth = max(CANDIDATES, 5 * k)
        dense = self._dense(vector, depth)
        lex_ids, lex_scores = self.lexical.search(norm, depth)
        lexical = {int(i): float(s) for i, s in zip(lex_ids, lex_scores, strict=True)}
        missing = [i for i in lexical if i not in dense]
        if missing:  # exact dense scores for lexical-only candidates, so fusion compares like with like
            dense.update(zip(missing, (self.vectors.vectors(missing) @ vector[0]).tolist(), strict=True))
        return fuse(dense, lexical)[:k]

    def search(self, query: str, k: int = 10, mode: Mode = "hybrid") -> SearchResult:
        began = time.perf_counter()
        query = validate_query(query, k, mode=mode)
        pairs = [(score, pid) for pid, score in self.rank(query, k, mode)]
        with self._lock:
            rows = store.passages_by_id(self._conn, [i for _, i in pairs])
        hits: list[Hit] = []
        for score, pid in pairs:
            row = rows.get(pid)
            if row is None:
                continue
            hits.append(
                Hit(len(hits) + 1, round(score, 6), pid, row.doc_id, row.title, row.section, row.text,
                    row.start, row.end)
            )
        return SearchResult(query, hits, round((time.perf_counter() - began) * 1000, 2), mode)
