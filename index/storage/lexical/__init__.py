"""The lexical half of retrieval: BM25 over normalized text (bm25s builds it; ``saved`` reads it).

Tokens are CJK character unigrams plus bigrams, and whole Latin words or numbers
(recorded in the manifest as ``TOKENIZER``); titles and section headings are a
second field with weight ``HEADING_WEIGHT``. A query leaves out question words
and function characters (``QUERY_STOP``). Live writes go to a small *delta*
scored with the same BM25 formula over base + delta statistics, removed base
passages are masked, and the base is rebuilt past ``DELTA_LIMIT`` new passages (or
``DELTA_FRACTION`` of the base, whichever is more), a tenth removed, or always
below ``REBUILD_BELOW`` passages. Only the base is saved: the delta and the
removals are what SQLite holds beyond the base's ids, so ``load`` derives them
and a write writes no lexical file. The measurements behind
each choice: docs/decisions.md, "Lexical tokens and fields".
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import IndexUnavailableError
from ...text.normalize import normalize
from ..ids import find_sorted
from ..record.store import StoredPassage
from .delta import Delta
from .saved import SavedBM25
from .stats import STATS_FILE, CorpusStats, FieldStats

TOKENIZER = "cjk-uni+bigram-v1;heading-field-0.3"
HEADING_WEIGHT = 0.3
DELTA_LIMIT = 2000
DELTA_FRACTION = 0.05
REBUILD_BELOW = 500
REMOVED_FRACTION = 0.1
DELTA_FILE = "delta.json"
_EMPTY = "\u0000"  # stands in for a text without tokens, which bm25s cannot index
#: Left out of a query's tokens (not the index's): question words, which a passage
#: that answers seldom repeats, and function characters. Kept when nothing else is.
QUERY_STOP = re.compile(
    "为什么|为何|什么|哪些|哪个|哪里|哪儿|哪|是否|如何|怎么|怎样|多少|几|吗|呢|请问|的|了|是|在|有|和|与|及"
)
_RUNS = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[a-z0-9]+(?:[.\-_][a-z0-9]+)*")


def tokenize(norm_text: str) -> list[str]:
    """BM25 tokens of already-normalized text."""
    tokens: list[str] = []
    for run in _RUNS.findall(norm_text):
        if "\u3400" <= run[0] <= "\ufaff":
            tokens.extend(run)
            tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            tokens.append(run)
    return tokens


def query_tokens(norm_query: str) -> list[str]:
    """BM25 tokens of a normalized query: ``tokenize`` without ``QUERY_STOP`` words, unless that leaves none."""
    return tokenize(QUERY_STOP.sub(" ", norm_query)) or tokenize(norm_query)


def _tokens(text: str) -> list[str]:
    return tokenize(text) or [_EMPTY]


def _bm25(texts: Sequence[str], stats: FieldStats | None = None) -> _Field:
    """The field of ``texts``: a bm25s index scored with their own statistics, or with ``stats``."""
    corpus = [_tokens(text) for text in texts]
    if not corpus:
        return _Field(SavedBM25.empty(), stats.mean_length if stats is not None else 0.0, stats)
    import bm25s  # building only: reading an index does without it (``saved``)

    if stats is not None:
        from .weighted import weighted_bm25

        return _Field(weighted_bm25(corpus, stats), stats.mean_length, stats)
    model = bm25s.BM25()
    model.index(corpus, show_progress=False)
    return _Field(model, sum(len(c) for c in corpus) / len(corpus))


def _heading(p: StoredPassage, cache: dict[tuple[str, tuple[str, ...]], str]) -> str:
    key = (p.title, p.section_path)
    if key not in cache:  # many passages share one heading: normalize it once
        cache[key] = normalize(" ".join((p.title, *p.section_path)))
    return cache[key]


class _Field:
    """One BM25 field: the base's bm25s index plus the statistics the delta needs from it.

    With ``stats`` (a shard of a cluster) those are the cluster's, which the base was scored with.
    """

    def __init__(self, model: Any, mean_length: float, stats: FieldStats | None = None) -> None:
        """``model``: a ``bm25s.BM25`` just built, or the ``SavedBM25`` of one read back."""
        self.model = model
        self.mean_length = mean_length
        self.stats = stats
        scores = getattr(model, "scores", None) or {}  # absent until a model is indexed
        self._indexed = int(scores.get("num_docs", 0))
        self.docs = stats.docs if stats is not None else self._indexed
        self._indptr = scores.get("indptr")
        self._vocab: dict[str, int] = getattr(model, "vocab_dict", None) or {}

    def frequency(self, token: str) -> int:
        """How many base documents contain ``token`` (of the cluster's, with ``stats``)."""
        if self.stats is not None and token in self.stats.frequencies:
            return self.stats.frequencies[token]
        found = self._vocab.get(token)
        return 0 if found is None or self._indptr is None else int(self._indptr[found + 1] - self._indptr[found])

    def scores(self, tokens: list[str]) -> np.ndarray:
        if not self._indexed:
            return np.zeros(0, np.float32)
        return np.asarray(self.model.get_scores(tokens), dtype=np.float32)


def _added(delta: Delta, passages: Sequence[StoredPassage]) -> Delta:
    """``delta`` with ``passages`` tokenized into a new segment."""
    cache: dict[tuple[str, tuple[str, ...]], str] = {}
    return delta.with_added(
        [p.id for p in passages],
        [Counter(_tokens(p.norm_text)) for p in passages],
        [Counter(_tokens(_heading(p, cache))) for p in passages],
    )


def _mean_lengths(passages: Sequence[StoredPassage]) -> list[float]:
    """Mean token counts of text and headings, for a base saved before they were recorded."""
    if not passages:
        return [0.0, 0.0]
    cache: dict[tuple[str, tuple[str, ...]], str] = {}
    text = sum(len(_tokens(p.norm_text)) for p in passages)
    headings = sum(len(_tokens(_heading(p, cache))) for p in passages)
    return [text / len(passages), headings / len(passages)]


def _top(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best (id, score) with a score above 0, best first."""
    if not len(scores):
        return ids[:0], scores[:0]
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    top = top[scores[top] > 0]
    return ids[top], scores[top]


class LexicalIndex:
    """A bm25s base, minus removed passages, plus a delta of passages written since (see the module doc).

    Immutable: ``updated`` returns a new index sharing the base and the delta's segments.
    """

    def __init__(
        self,
        text: _Field,
        headings: _Field,
        ids: np.ndarray,
        removed: np.ndarray | None = None,
        delta: Delta | None = None,
        removed_count: int | None = None,
        sorted_base: bool | None = None,
    ) -> None:
        self._text = text
        self._headings = headings
        self._base_ids = ids
        self._removed = removed if removed is not None else np.zeros(len(ids), bool)
        self._removed_count = int(self._removed.sum()) if removed_count is None else removed_count
        self._delta = delta or Delta()
        # Built on first use, not per write: each is a pass over the whole base.
        self._ids: np.ndarray | None = None if (self._delta.count or self._removed_count) else ids
        self._sorted_base = sorted_base  # whether the base ids ascend (builds write them so): found on first need

    @classmethod
    def build(cls, passages: Sequence[StoredPassage], stats: CorpusStats | None = None) -> LexicalIndex:
        """The index of ``passages``, scored with their own statistics or, for a shard, the cluster's ``stats``."""
        cache: dict[tuple[str, tuple[str, ...]], str] = {}
        headings = [_heading(p, cache) for p in passages]
        return cls(
            _bm25([p.norm_text for p in passages], stats.text if stats else None),
            _bm25(headings, stats.headings if stats else None),
            np.asarray([p.id for p in passages], np.int64),
        )

    @property
    def stats(self) -> CorpusStats | None:
        """The cluster statistics this index is scored with (None: its own, a single-node index)."""
        text, headings = self._text.stats, self._headings.stats
        return CorpusStats(text, headings) if text is not None and headings is not None else None

    @staticmethod
    def field_stats(passages: Iterable[StoredPassage]) -> CorpusStats:
        """The statistics of ``passages``, to add up over the shards of a cluster."""
        cache: dict[tuple[str, tuple[str, ...]], str] = {}
        listed = list(passages)
        return CorpusStats(
            FieldStats.of(_tokens(p.norm_text) for p in listed),
            FieldStats.of(_tokens(_heading(p, cache)) for p in listed),
        )

    def __len__(self) -> int:
        return len(self._base_ids) - self._removed_count + self._delta.count

    @property
    def ids(self) -> np.ndarray:
        if self._ids is None:
            self._ids = np.concatenate([self._base_ids[~self._removed], self._delta.ids])
        return self._ids

    def _base_positions(self, gone: np.ndarray) -> np.ndarray:
        """Positions in the base of those of ``gone`` it holds: a binary search when the base is sorted."""
        if self._sorted_base is None:
            base = self._base_ids
            self._sorted_base = bool(len(base) < 2 or (np.diff(base) > 0).all())
        if not self._sorted_base:
            return np.flatnonzero(np.isin(self._base_ids, gone))
        at, held = find_sorted(self._base_ids, gone)
        found: np.ndarray = at[held]
        return found

    @property
    def delta_size(self) -> int:
        return self._delta.count

    def updated(
        self,
        removed: Iterable[int],
        added: Sequence[StoredPassage],
        everything: Callable[[], Sequence[StoredPassage]],
    ) -> tuple[LexicalIndex, bool]:
        """This index after a write, and whether the base was rebuilt (from ``everything()``).

        ``removed`` are passage ids that left, ``added`` the passages that came in. The cost
        is that of the added passages (and a vectorized mask over the base), not of the index.
        """
        gone = np.unique(np.fromiter(removed, np.int64))
        delta = _added(self._delta.without(gone), added)
        mask, count = self._removed, self._removed_count
        if len(gone):
            positions = self._base_positions(gone)
            fresh = positions[~mask[positions]]
            if len(fresh):
                mask = mask.copy()  # a memcpy of one byte per base passage, not a search over them
                mask[fresh] = True
                count += len(fresh)
        base = len(self._base_ids)
        if (
            base + delta.count < REBUILD_BELOW
            or delta.count > max(DELTA_LIMIT, DELTA_FRACTION * base)
            or count > REMOVED_FRACTION * max(base, DELTA_LIMIT)
        ):
            return LexicalIndex.build(everything(), self.stats), True
        return LexicalIndex(self._text, self._headings, self._base_ids, mask, delta, count, self._sorted_base), False

    def save(self, folder: Path) -> None:
        """The base files (the delta is not saved: SQLite holds it, and ``load`` rebuilds it)."""
        folder.mkdir(parents=True, exist_ok=True)
        if len(self._base_ids):
            self._text.model.save(str(folder / "text"), show_progress=False)
            self._headings.model.save(str(folder / "headings"), show_progress=False)
        np.save(folder / "ids.npy", self._base_ids)
        meta = {"tokenizer": TOKENIZER, "mean_lengths": [self._text.mean_length, self._headings.mean_length]}
        (folder / "tokenizer.json").write_text(json.dumps(meta), encoding="utf-8")
        if self.stats is not None:
            self.stats.save(folder / STATS_FILE)
        (folder / DELTA_FILE).unlink(missing_ok=True)  # written by versions before the delta came from SQLite

    @classmethod
    def load(
        cls,
        folder: Path,
        ids: np.ndarray,
        fetch: Callable[[list[int]], Mapping[int, StoredPassage]],
        *,
        mmap: bool = False,
    ) -> LexicalIndex:
        """The saved base, caught up with the store, which holds the passages ``ids`` now.

        Base passages the store no longer holds are masked; passages it holds that the base
        does not form the delta (their rows come from ``fetch``). So the files never need
        rewriting for a write. ``mmap`` maps the postings instead of reading them (the base
        is never changed in place).
        """
        try:
            base_ids = np.load(folder / "ids.npy")
            meta = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
            lengths = meta.get("mean_lengths") or _mean_lengths(list(fetch(base_ids.tolist()).values()))
            stats = CorpusStats.load(folder / STATS_FILE)
            given = (stats.text, stats.headings) if stats else (None, None)
            if not len(base_ids):
                text, headings = _Field(SavedBM25.empty(), 0.0, given[0]), _Field(SavedBM25.empty(), 0.0, given[1])
            else:
                # mmap: the postings stay in the files; a query reads only its tokens' pages
                text = _Field(SavedBM25.load(folder / "text", mmap=mmap), float(lengths[0]), given[0])
                headings = _Field(SavedBM25.load(folder / "headings", mmap=mmap), float(lengths[1]), given[1])
        except (OSError, ValueError, KeyError) as exc:
            raise IndexUnavailableError(f"cannot read lexical index {folder}: {exc}") from exc
        known = np.asarray(ids, np.int64)
        removed = ~np.isin(base_ids, known)
        newer = np.setdiff1d(known, base_ids).tolist()
        rows = fetch(newer)
        delta = _added(Delta(), [rows[i] for i in newer if i in rows])
        return cls(text, headings, base_ids, removed, delta)

    def search(self, norm_query: str, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Passage ids and BM25 scores of the top ``k`` matches (score > 0), best first.

        ``allowed`` restricts the matches to those passage ids (a filter): found in the base
        by binary search and in the delta by a small membership test, never by a scan.
        Base and delta are ranked apart and merged, so a query copies no whole-index array.
        """
        tokens = query_tokens(norm_query)
        if not tokens or not len(self):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        scores = self._text.scores(tokens)
        if len(scores):
            scores += HEADING_WEIGHT * self._headings.scores(tokens)
            if self._removed_count:
                scores[self._removed] = 0
            if allowed is None:
                parts.append(_top(scores, self._base_ids, k))
            else:
                at = self._base_positions(np.asarray(allowed, np.int64))
                parts.append(_top(scores[at], self._base_ids[at], k))
        if self._delta.count:
            extra = self._delta.scores(self._text, "text", tokens)
            extra += HEADING_WEIGHT * self._delta.scores(self._headings, "headings", tokens)
            delta_ids = self._delta.ids
            if allowed is not None:
                keep = np.isin(delta_ids, allowed)
                extra, delta_ids = extra[keep], delta_ids[keep]
            parts.append(_top(extra, delta_ids, k))
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        ids = np.concatenate([p[0] for p in parts])
        merged = np.concatenate([p[1] for p in parts])
        order = np.argsort(-merged, kind="stable")[:k]
        return ids[order], merged[order]
