"""The lexical half of retrieval: BM25 over normalized text (bm25s).

Tokens are CJK character unigrams plus bigrams, and whole Latin words or
numbers. Measured on seeds/eval (66 questions, passage level, BM25 alone):

    tokens              hit@1   hit@5   mrr@10
    bigrams             0.773   0.939   0.836
    unigrams+bigrams    0.879   1.000   0.923
    jieba words         0.712   0.894   0.795
    jieba + bigrams     0.803   0.970   0.869

Unigrams keep one-character words (區, 樓, 億) that bigrams dilute; jieba's
dictionary splits government jargon badly. The choice is recorded in the
manifest as ``TOKENIZER``.

Document titles and section headings take part too, as a second BM25 field
whose score is added with weight ``HEADING_WEIGHT``: a question about 下半年
finds passages under 二、下半年工作安排 even when their text never says it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np

from .errors import IndexError_
from .normalize import normalize
from .store import StoredPassage

TOKENIZER = "cjk-uni+bigram-v1;heading-field-0.3"
HEADING_WEIGHT = 0.3
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


def _bm25(texts: Sequence[str]) -> bm25s.BM25:
    model = bm25s.BM25()
    corpus = [tokenize(text) or ["\u0000"] for text in texts]
    if corpus:
        model.index(corpus, show_progress=False)
    return model


class LexicalIndex:
    def __init__(self, model: bm25s.BM25, headings: bm25s.BM25, ids: np.ndarray) -> None:
        self._model = model
        self._headings = headings
        self._ids = ids

    @classmethod
    def build(cls, passages: Sequence[StoredPassage]) -> LexicalIndex:
        heading_cache: dict[tuple[str, tuple[str, ...]], str] = {}
        headings = []
        for p in passages:
            key = (p.title, p.section_path)
            if key not in heading_cache:  # many passages share one heading: normalize it once
                heading_cache[key] = normalize(" ".join((p.title, *p.section_path)))
            headings.append(heading_cache[key])
        return cls(
            _bm25([p.norm_text for p in passages]), _bm25(headings), np.asarray([p.id for p in passages], np.int64)
        )

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> np.ndarray:
        return self._ids

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if len(self._ids):
            self._model.save(str(folder / "text"), show_progress=False)
            self._headings.save(str(folder / "headings"), show_progress=False)
        np.save(folder / "ids.npy", self._ids)
        (folder / "tokenizer.json").write_text(json.dumps({"tokenizer": TOKENIZER}), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        try:
            ids = np.load(folder / "ids.npy")
            if not len(ids):
                return cls(bm25s.BM25(), bm25s.BM25(), ids)
            model = bm25s.BM25.load(str(folder / "text"), show_progress=False)
            headings = bm25s.BM25.load(str(folder / "headings"), show_progress=False)
        except (OSError, ValueError) as exc:
            raise IndexError_(f"cannot read lexical index {folder}: {exc}") from exc
        return cls(model, headings, ids)

    def search(self, norm_query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Passage ids and BM25 scores of the top ``k`` matches (score > 0), best first."""
        tokens = tokenize(norm_query)
        if not tokens or not len(self._ids):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores = np.asarray(self._model.get_scores(tokens), dtype=np.float32)
        scores += HEADING_WEIGHT * np.asarray(self._headings.get_scores(tokens), dtype=np.float32)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return self._ids[top], scores[top]
