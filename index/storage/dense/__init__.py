"""The dense half of retrieval: passage vectors plus sentence vectors.

A passage's dense score mixes its own cosine with the query (0.3) and the best
cosine of any of its sentences (0.7): a factoid question matches one sentence more
sharply than a 200-character average, while a descriptive one needs the whole
passage too (the larger of the two, the rule before, let one sentence outweigh
it). Passages shorter than ``SENTENCE_VECTORS_FROM`` characters get no sentence
vectors and score by their own. Measurements: docs/decisions.md, "Dense scoring"
and "Descriptive questions".

Sentence ids are ``passage_id * SENTENCE_STRIDE + n``, so a sentence hit names
its passage without a lookup table, and a passage's sentences are one id range.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ...text.chunk import passage_sentences
from ...text.normalize import normalize
from ..ids import id_array
from ..record.store import StoredPassage
from .layered import LayeredIndex
from .vectors import VectorIndex

SENTENCE_STRIDE = 1024
SENTENCE_VECTORS_FROM = 120
#: A passage's dense score: ``PASSAGE_WEIGHT * own cosine + (1 - PASSAGE_WEIGHT) * best sentence's``
#: (was the larger of the two; docs/decisions.md, "Descriptive questions").
PASSAGE_WEIGHT = 0.3
PASSAGES_FILE = "vectors.faiss"
SENTENCES_FILE = "sentences.faiss"
EMBEDDED_TEXT = f"passage:section+text;sentence:text-v2-from{SENTENCE_VECTORS_FROM}"


def passage_text(section: str, text: str) -> str:
    """What the model embeds for a passage: its section heading, then its text, normalized."""
    return normalize(f"{section}\n{text}" if section else text)


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    if len(text) < SENTENCE_VECTORS_FROM:
        return []
    return passage_sentences(text)[:SENTENCE_STRIDE]


@lru_cache(maxsize=65536)  # asked for every lexical-only candidate of every query
def sentence_count(text: str) -> int:
    """How many sentence vectors a passage has (none for short passages)."""
    return len(_sentence_spans(text))


def sentence_texts(text: str) -> list[str]:
    """Normalized sentences of a passage, in order (at most SENTENCE_STRIDE; none for short passages)."""
    return [normalize(text[a:b]) for a, b in _sentence_spans(text)]


@dataclass
class Vectors:
    passage_ids: list[int]
    passages: np.ndarray
    sentence_ids: list[int]
    sentences: np.ndarray

    def shifted(self, offset: int) -> Vectors:
        """The same vectors for passage ids ``offset`` higher (sentence ids follow their passages)."""
        return Vectors(
            [pid + offset for pid in self.passage_ids],
            self.passages,
            [sid + offset * SENTENCE_STRIDE for sid in self.sentence_ids],
            self.sentences,
        )

    def sentence_counts(self) -> dict[int, int]:
        """Each passage's number of sentence vectors (0 for a short passage)."""
        return {pid: 0 for pid in self.passage_ids} | _owners(np.asarray(self.sentence_ids, np.int64))


def _owners(sentence_ids: np.ndarray) -> dict[int, int]:
    """How many of ``sentence_ids`` each passage owns, for the passages that own any."""
    if not len(sentence_ids):
        return {}
    owners, counts = np.unique(sentence_ids // SENTENCE_STRIDE, return_counts=True)
    return dict(zip(owners.tolist(), counts.tolist(), strict=True))


def combine(passage: float, sentence: float | None, passage_weight: float | None) -> float:
    """A passage's dense score from its own cosine and its best sentence's (None: it has no sentence
    vectors): the larger of the two (``passage_weight`` None), or ``w * passage + (1 - w) * sentence``."""
    if sentence is None:
        return passage
    if passage_weight is None:
        return max(passage, sentence)
    return passage_weight * passage + (1 - passage_weight) * sentence


@dataclass(frozen=True)
class DenseCandidates:
    """What a dense search found: the best passages by their own vector, the best sentences (owner,
    score, whether the filter admits it), and the dense score of every candidate (passage or sentence)."""

    passages: list[tuple[int, float]]
    sentences: list[tuple[int, float, bool]]
    scores: dict[int, float]


def blob_rows(vectors: Vectors) -> list[tuple[int, bytes, bytes]]:
    """(passage id, passage vector, its sentence vectors in order) as float32 bytes, one row per passage."""
    rows_of: dict[int, list[int]] = {}
    for row, sentence_id in enumerate(vectors.sentence_ids):
        rows_of.setdefault(sentence_id // SENTENCE_STRIDE, []).append(row)
    sentences = np.asarray(vectors.sentences, dtype=np.float32)
    passages = np.asarray(vectors.passages, dtype=np.float32)
    return [
        (pid, passages[i].tobytes(), sentences[rows_of.get(pid, [])].tobytes())
        for i, pid in enumerate(vectors.passage_ids)
    ]


def from_blobs(blobs: Mapping[int, tuple[bytes, bytes]], dim: int) -> Vectors:
    """The ``Vectors`` that ``blob_rows`` stored."""
    pids = sorted(blobs)
    sentence_ids: list[int] = []
    sentence_parts: list[np.ndarray] = []
    for pid in pids:
        part = np.frombuffer(blobs[pid][1], dtype=np.float32).reshape(-1, dim)
        sentence_ids.extend(pid * SENTENCE_STRIDE + n for n in range(len(part)))
        sentence_parts.append(part)
    passages = (
        np.stack([np.frombuffer(blobs[pid][0], dtype=np.float32) for pid in pids])
        if pids
        else np.zeros((0, dim), np.float32)
    )
    sentences = np.concatenate(sentence_parts) if sentence_ids else np.zeros((0, dim), np.float32)
    return Vectors(pids, passages, sentence_ids, sentences)


def _layer(part: VectorIndex | LayeredIndex, merge_at: int | None) -> LayeredIndex:
    return part if isinstance(part, LayeredIndex) else LayeredIndex(part, merge_at=merge_at)


def _fold(part: VectorIndex | LayeredIndex) -> VectorIndex:
    return part.merged() if isinstance(part, LayeredIndex) else part


class DenseIndex:
    """Passage and sentence vectors: plain ``VectorIndex`` parts (a build, a checkpoint), or
    ``LayeredIndex`` parts over a checkpoint (a served index taking writes; see ``layered``)."""

    def __init__(self, passages: VectorIndex | LayeredIndex, sentences: VectorIndex | LayeredIndex) -> None:
        self._passages = passages
        self._sentences = sentences

    def layered(self, merge_at: int | None = None) -> DenseIndex:
        """This index as the checkpoint of a layered one, which takes writes without copying it.

        ``merge_at``: new vectors per part before ``needs_merge`` (default ``layered.MERGE_VECTORS``).
        """
        return DenseIndex(_layer(self._passages, merge_at), _layer(self._sentences, merge_at))

    def needs_merge(self) -> bool:
        return any(isinstance(p, LayeredIndex) and p.needs_merge() for p in (self._passages, self._sentences))

    @property
    def delta_vectors(self) -> int:
        """Vectors written since the checkpoint (0 for a plain index)."""
        return sum(p.delta_vectors for p in (self._passages, self._sentences) if isinstance(p, LayeredIndex))

    def merged(self) -> DenseIndex:
        """A plain index with every write folded in: the next checkpoint."""
        return DenseIndex(_fold(self._passages), _fold(self._sentences))

    @classmethod
    def empty(cls, dim: int) -> DenseIndex:
        return cls(VectorIndex.empty(dim), VectorIndex.empty(dim))

    @classmethod
    def for_size(cls, dim: int, passages: int, sentences: int) -> DenseIndex:
        """Exact or HNSW per part, by how many vectors each will hold (see ``vectors``)."""
        return cls(VectorIndex.for_size(dim, passages), VectorIndex.for_size(dim, sentences))

    @property
    def kind(self) -> str:
        return f"passages={self._passages.kind}; sentences={self._sentences.kind}"

    @property
    def ef_search(self) -> int:
        """HNSW candidates per query (``set_ef_search``)."""
        return self._passages.ef_search

    def set_ef_search(self, ef_search: int) -> None:
        """HNSW candidates kept per query (ignored by exact indexes): higher is slower and closer to exact."""
        self._passages.ef_search = self._sentences.ef_search = ef_search

    @classmethod
    def load(cls, folder: Path, *, mmap: bool = False) -> DenseIndex:
        """The checkpoint in ``folder``; ``mmap`` maps the vectors instead of reading them (``VectorIndex.load``)."""
        return cls(
            VectorIndex.load(folder / PASSAGES_FILE, mmap=mmap), VectorIndex.load(folder / SENTENCES_FILE, mmap=mmap)
        )

    def save(self, folder: Path) -> None:
        """Write a checkpoint: sentences first, so a passage in the passages file has its sentences on disk."""
        sentences, passages = _fold(self._sentences), _fold(self._passages)
        sentences.save(folder / SENTENCES_FILE)
        passages.save(folder / PASSAGES_FILE)

    def copy(self) -> DenseIndex:
        return DenseIndex(self._passages.copy(), self._sentences.copy())

    def __len__(self) -> int:
        return len(self._passages)

    @property
    def dim(self) -> int:
        return self._passages.dim

    def ids(self) -> np.ndarray:
        return self._passages.ids()

    def sentence_counts(self) -> dict[int, int]:
        """How many sentence vectors each passage has, for the passages that have any."""
        return _owners(self._sentences.ids())

    def add(self, vectors: Vectors) -> None:
        self._passages.add(vectors.passage_ids, vectors.passages)
        self._sentences.add(vectors.sentence_ids, vectors.sentences)

    def take(self, passages: Sequence[StoredPassage]) -> Vectors:
        """The stored vectors of these passages, to carry them into another index."""
        ids = [p.id for p in passages]
        sentence_ids = [p.id * SENTENCE_STRIDE + n for p in passages for n in range(sentence_count(p.text))]
        return Vectors(ids, self._passages.vectors(ids), sentence_ids, self._sentences.vectors(sentence_ids))

    def remove(self, passage_ids: Sequence[int]) -> None:
        self._passages.remove(passage_ids)
        pids = np.unique(np.asarray(passage_ids, np.int64))
        self._sentences.remove_ranges(pids * SENTENCE_STRIDE, (pids + 1) * SENTENCE_STRIDE)

    def passage_vectors(self, ids: Sequence[int]) -> np.ndarray:
        return self._passages.vectors(ids)

    def sentence_vectors(self, passage_id: int, text: str) -> np.ndarray:
        """The stored vectors of a passage's sentences, in order (no rows for a short passage)."""
        count = sentence_count(text)
        return self._sentences.vectors([passage_id * SENTENCE_STRIDE + n for n in range(count)])

    def search(
        self,
        vector: np.ndarray,
        depth: int,
        sentence_counts: Callable[[int], int],
        allowed: AbstractSet[int] | None = None,
        *,
        also: Sequence[int] = (),
    ) -> dict[int, float]:
        """Dense scores of the best ``depth`` passages (and of the passages in ``also``), by passage id.

        ``sentence_counts`` gives a passage's number of sentences, to score candidates
        that only the other retriever proposed.
        """
        return self.candidates(vector, depth, sentence_counts, allowed, also=also).scores

    def candidates(
        self,
        vector: np.ndarray,
        depth: int,
        sentence_counts: Callable[[int], int],
        allowed: AbstractSet[int] | None = None,
        *,
        also: Sequence[int] = (),
        passage_weight: float | None = PASSAGE_WEIGHT,
    ) -> DenseCandidates:
        """``search``, with the two rankings it was made from (what a cluster's router merges across shards).

        ``passage_weight``: how a passage's score combines its own cosine and its best sentence's
        (``combine``; None takes the larger)."""
        q = vector.reshape(1, -1)
        scores: dict[int, float] = {}
        if allowed is not None and not allowed:
            return DenseCandidates([], [], scores)
        admitted = None if allowed is None else id_array(allowed)
        found, ids = self._passages.search(q, depth, admitted)
        passages = [(int(i), float(s)) for s, i in zip(found[0], ids[0], strict=True) if i >= 0]
        scores.update(passages)
        found, ids = self._sentences.search(q, depth * 4)
        sentence_hits: list[tuple[int, float, bool]] = []
        best: dict[int, float] = {}
        for s, i in zip(found[0], ids[0], strict=True):
            if i < 0:
                continue
            pid = int(i) // SENTENCE_STRIDE
            admits = allowed is None or pid in allowed
            sentence_hits.append((pid, float(s), admits))
            if admits and s > best.get(pid, -2.0):
                best[pid] = float(s)
        wanted = set(scores) | set(best) | set(also)
        missing_passage = [pid for pid in wanted if pid not in scores]
        if missing_passage:
            exact = self._passages.vectors(missing_passage) @ q[0]
            scores.update(zip(missing_passage, exact.tolist(), strict=True))
        missing_sentences = [pid for pid in wanted if pid not in best]
        if missing_sentences:
            owners, ids_ = [], []
            for pid in missing_sentences:
                for n in range(sentence_counts(pid)):
                    owners.append(pid)
                    ids_.append(pid * SENTENCE_STRIDE + n)
            if ids_:
                for pid, s in zip(owners, (self._sentences.vectors(ids_) @ q[0]).tolist(), strict=True):
                    best[pid] = max(best.get(pid, -2.0), s)
        combined = {pid: combine(scores[pid], best.get(pid), passage_weight) for pid in wanted}
        return DenseCandidates(passages, sentence_hits, combined)
