"""The lexical half of retrieval: BM25 over normalized text (bm25s).

Tokens are CJK character unigrams plus bigrams, and whole Latin words or numbers
(recorded in the manifest as ``TOKENIZER``); titles and section headings are a
second field with weight ``HEADING_WEIGHT``. A query leaves out question words
and function characters (``QUERY_STOP``). Live writes go to a small *delta*
scored with the same BM25 formula over base + delta statistics, removed base
passages are masked, and the base is rebuilt past ``DELTA_LIMIT`` new passages, a
tenth removed, or always below ``REBUILD_BELOW`` passages. The measurements behind
each choice: docs/decisions.md, "Lexical tokens and fields".
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np

from ..errors import IndexUnavailableError
from ..text.normalize import normalize
from .store import StoredPassage

TOKENIZER = "cjk-uni+bigram-v1;heading-field-0.3"
HEADING_WEIGHT = 0.3
DELTA_LIMIT = 2000
REBUILD_BELOW = 5000
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


def _bm25(texts: Sequence[str]) -> tuple[bm25s.BM25, float]:
    """The bm25s index of ``texts`` and their mean length in tokens."""
    model = bm25s.BM25()
    corpus = [_tokens(text) for text in texts]
    if corpus:
        model.index(corpus, show_progress=False)
    return model, (sum(len(c) for c in corpus) / len(corpus) if corpus else 0.0)


def _heading(p: StoredPassage, cache: dict[tuple[str, tuple[str, ...]], str]) -> str:
    key = (p.title, p.section_path)
    if key not in cache:  # many passages share one heading: normalize it once
        cache[key] = normalize(" ".join((p.title, *p.section_path)))
    return cache[key]


class _Field:
    """One BM25 field: the base's bm25s index plus the statistics the delta needs from it."""

    def __init__(self, model: bm25s.BM25, mean_length: float) -> None:
        self.model = model
        self.mean_length = mean_length
        scores = getattr(model, "scores", None) or {}  # absent until a model is indexed
        self.docs = int(scores.get("num_docs", 0))
        self._indptr = scores.get("indptr")
        self._vocab: dict[str, int] = getattr(model, "vocab_dict", None) or {}

    def frequency(self, token: str) -> int:
        """How many base documents contain ``token``."""
        found = self._vocab.get(token)
        return 0 if found is None or self._indptr is None else int(self._indptr[found + 1] - self._indptr[found])

    def scores(self, tokens: list[str]) -> np.ndarray:
        if not self.docs:
            return np.zeros(0, np.float32)
        return np.asarray(self.model.get_scores(tokens), dtype=np.float32)


@dataclass(frozen=True)
class _Postings:
    """The delta's inverted index for one field: token -> (delta positions, term frequencies)."""

    postings: dict[str, tuple[np.ndarray, np.ndarray]]
    lengths: np.ndarray

    @classmethod
    def of(cls, docs: Sequence[Counter[str]]) -> _Postings:
        gathered: dict[str, tuple[list[int], list[int]]] = {}
        for position, counts in enumerate(docs):
            for token, tf in counts.items():
                where, freq = gathered.setdefault(token, ([], []))
                where.append(position)
                freq.append(tf)
        postings = {t: (np.asarray(w, np.int64), np.asarray(f, np.float32)) for t, (w, f) in gathered.items()}
        return cls(postings, np.asarray([sum(c.values()) for c in docs], np.float32))

    def scores(self, base: _Field, tokens: list[str]) -> np.ndarray:
        """BM25 as bm25s computes it (Lucene idf, Robertson tf), over base + delta statistics."""
        out = np.zeros(len(self.lengths), np.float32)
        if not len(self.lengths):
            return out
        n = base.docs + len(self.lengths)
        mean = (base.mean_length * base.docs + float(self.lengths.sum())) / n
        k1, b = float(base.model.k1), float(base.model.b)
        norm = k1 * (1 - b + b * self.lengths / max(mean, 1e-9))
        for token in tokens:
            found = self.postings.get(token)
            if found is None:
                continue
            where, tf = found
            df = base.frequency(token) + len(where)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            out[where] += idf * tf / (norm[where] + tf)
        return out


@dataclass(frozen=True)
class _Delta:
    ids: np.ndarray
    text: _Postings
    headings: _Postings

    @classmethod
    def of(cls, passages: Sequence[StoredPassage]) -> _Delta:
        cache: dict[tuple[str, tuple[str, ...]], str] = {}
        return cls(
            np.asarray([p.id for p in passages], np.int64),
            _Postings.of([Counter(_tokens(p.norm_text)) for p in passages]),
            _Postings.of([Counter(_tokens(_heading(p, cache))) for p in passages]),
        )


def _mean_lengths(passages: Sequence[StoredPassage]) -> list[float]:
    """Mean token counts of text and headings, for a base saved before they were recorded."""
    if not passages:
        return [0.0, 0.0]
    cache: dict[tuple[str, tuple[str, ...]], str] = {}
    text = sum(len(_tokens(p.norm_text)) for p in passages)
    headings = sum(len(_tokens(_heading(p, cache))) for p in passages)
    return [text / len(passages), headings / len(passages)]


class LexicalIndex:
    """A bm25s base, minus removed passages, plus a delta of passages written since (see the module doc)."""

    def __init__(
        self,
        text: _Field,
        headings: _Field,
        ids: np.ndarray,
        removed: np.ndarray | None = None,
        delta: Sequence[StoredPassage] = (),
    ) -> None:
        self._text = text
        self._headings = headings
        self._base_ids = ids
        self._removed = removed if removed is not None else np.zeros(len(ids), bool)
        self._delta_rows = tuple(delta)
        self._delta = _Delta.of(self._delta_rows)
        changed = len(self._delta_rows) or self._removed.any()
        self._ids = np.concatenate([ids[~self._removed], self._delta.ids]) if changed else ids

    @classmethod
    def build(cls, passages: Sequence[StoredPassage]) -> LexicalIndex:
        cache: dict[tuple[str, tuple[str, ...]], str] = {}
        headings = [_heading(p, cache) for p in passages]
        return cls(
            _Field(*_bm25([p.norm_text for p in passages])),
            _Field(*_bm25(headings)),
            np.asarray([p.id for p in passages], np.int64),
        )

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> np.ndarray:
        return self._ids

    @property
    def delta_size(self) -> int:
        return len(self._delta_rows)

    def updated(
        self,
        removed: Iterable[int],
        added: Sequence[StoredPassage],
        everything: Callable[[], Sequence[StoredPassage]],
    ) -> tuple[LexicalIndex, bool]:
        """This index after a write, and whether the base was rebuilt (from ``everything()``).

        ``removed`` are passage ids that left, ``added`` the passages that came in.
        """
        gone = set(removed)
        delta = [p for p in self._delta_rows if p.id not in gone] + list(added)
        mask = self._removed | np.isin(self._base_ids, np.fromiter(gone, np.int64, len(gone)))
        base = len(self._base_ids)
        if (
            base + len(delta) < REBUILD_BELOW
            or len(delta) > DELTA_LIMIT
            or int(mask.sum()) > REMOVED_FRACTION * max(base, 1)
        ):
            return LexicalIndex.build(everything()), True
        return LexicalIndex(self._text, self._headings, self._base_ids, mask, delta), False

    def save(self, folder: Path) -> None:
        """The base files and the delta; a fresh folder gets everything."""
        folder.mkdir(parents=True, exist_ok=True)
        if len(self._base_ids):
            self._text.model.save(str(folder / "text"), show_progress=False)
            self._headings.model.save(str(folder / "headings"), show_progress=False)
        np.save(folder / "ids.npy", self._base_ids)
        meta = {"tokenizer": TOKENIZER, "mean_lengths": [self._text.mean_length, self._headings.mean_length]}
        (folder / "tokenizer.json").write_text(json.dumps(meta), encoding="utf-8")
        self.save_delta(folder)

    def save_delta(self, folder: Path) -> None:
        """Only what changed since the base was written: removed base ids and delta passage ids (atomic)."""
        path = folder / DELTA_FILE
        if not len(self._delta_rows) and not self._removed.any():
            path.unlink(missing_ok=True)
            return
        body = {"removed": self._base_ids[self._removed].tolist(), "added": self._delta.ids.tolist()}
        tmp = path.with_name(DELTA_FILE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(body, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, folder: Path, passages: Mapping[int, StoredPassage]) -> LexicalIndex:
        """The saved index; ``passages`` supplies the texts of the delta."""
        try:
            ids = np.load(folder / "ids.npy")
            meta = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
            lengths = meta.get("mean_lengths") or _mean_lengths([passages[int(i)] for i in ids])
            if not len(ids):
                text, headings = _Field(bm25s.BM25(), 0.0), _Field(bm25s.BM25(), 0.0)
            else:
                text = _Field(bm25s.BM25.load(str(folder / "text"), show_progress=False), float(lengths[0]))
                headings = _Field(bm25s.BM25.load(str(folder / "headings"), show_progress=False), float(lengths[1]))
            changes: dict[str, list[int]] = {"removed": [], "added": []}
            if (folder / DELTA_FILE).exists():
                changes = json.loads((folder / DELTA_FILE).read_text(encoding="utf-8"))
            delta = [passages[i] for i in changes["added"]]
        except (OSError, ValueError, KeyError) as exc:
            raise IndexUnavailableError(f"cannot read lexical index {folder}: {exc}") from exc
        removed = np.isin(ids, np.asarray(changes["removed"], np.int64))
        return cls(text, headings, ids, removed, delta)

    def search(self, norm_query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Passage ids and BM25 scores of the top ``k`` matches (score > 0), best first."""
        tokens = query_tokens(norm_query)
        if not tokens or not len(self._ids):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores = self._text.scores(tokens)
        if len(scores):
            scores += HEADING_WEIGHT * self._headings.scores(tokens)
            scores[self._removed] = 0
        ids = self._base_ids
        if len(self._delta_rows):
            extra = self._delta.text.scores(self._text, tokens)
            extra += HEADING_WEIGHT * self._delta.headings.scores(self._headings, tokens)
            scores = np.concatenate([scores, extra])
            ids = np.concatenate([ids, self._delta.ids])
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return ids[top], scores[top]
