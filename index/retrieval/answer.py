"""Extractive answers: the sentence of the best passages that answers the question.

Candidates are the sentences of the top passages, scored by content-bigram
coverage (plain and rarity-weighted), dense similarity and a small bonus when a
quantity question meets a number (weights and their measurements:
docs/decisions.md, "Answer scoring"). A candidate is dropped when the question
names a year its passage and title never mention, or a place or organisation
(jieba ns/nt) its document never mentions: that is how "北京市海淀区2020年上半年GDP"
is told apart from the Huangpu report. The answer is ``None`` unless the best
score reaches ``THRESHOLD`` and its coverage reaches ``MIN_COVERAGE``.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..models import Embedder
from ..text.chunk import sentences
from ..text.highlight import STOP_CHARS
from ..text.normalize import normalize
from .query import Mode
from .search import Filters, Hit, Searcher

THRESHOLD = 0.42
MIN_COVERAGE = 0.1
TOP_PASSAGES = 3
_QUANTITY = re.compile(r"多少|几|多大|多高|多长|多久|比例|比重|占比|率|百分|数量|规模|金额|总额|总量|增长|增幅|下降")
_NUMBER = re.compile(r"\d")
_YEAR = re.compile(r"(?:19|20)\d{2}(?=年)")
_CONTENT = re.compile(r"[\u3400-\u9fff]|[a-z0-9]")
_jieba_lock = threading.Lock()


@dataclass(frozen=True, kw_only=True)
class AskResult:
    question: str
    answer: Answer | None
    hits: list[Hit]
    took_ms: float
    mode: str


@dataclass(frozen=True, kw_only=True)
class Answer:
    text: str
    passage_id: int
    doc_id: str
    start: int
    end: int
    score: float


def content_bigrams(norm_text: str) -> set[str]:
    """Bigrams of content characters, skipping those made only of function words."""
    chars = [c for c in norm_text if _CONTENT.match(c)]
    grams = {a + b for a, b in zip(chars, chars[1:], strict=False)}
    return {g for g in grams if not (g[0] in STOP_CHARS and g[1] in STOP_CHARS)}


@lru_cache(maxsize=1)
def _posseg() -> Callable[[str], list[tuple[str, str]]]:
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)

    def cut(text: str) -> list[tuple[str, str]]:
        with _jieba_lock:  # jieba's lazy dictionary load is not thread-safe
            return [(w.word, w.flag) for w in jieba.posseg.cut(text)]

    return cut


def warm_up() -> None:
    """Load jieba's dictionary now rather than on the first question."""
    _posseg()("黄浦区")


def required_terms(norm_question: str) -> tuple[list[str], list[str]]:
    """Years, and named places or organisations, that the answer must be about."""
    years = [f"{year}年" for year in _YEAR.findall(norm_question)]
    names = [word for word, flag in _posseg()(norm_question) if flag in ("ns", "nt") and len(word) >= 2]
    return years, names


def _mentions(term: str, *texts: str) -> bool:
    # 黄浦区 in the question is satisfied by 黄浦 in the text.
    stem = term[:-1] if len(term) >= 3 and term[-1] in "市区县省镇" else term
    return any(stem in text for text in texts)


def extract_answer(
    question: str,
    hits: Sequence[Hit],
    embedder: Embedder,
    *,
    documents: Mapping[str, str] | None = None,
    threshold: float = THRESHOLD,
    min_coverage: float = MIN_COVERAGE,
) -> Answer | None:
    """The best answering sentence of ``hits`` (in original script, with document offsets), or None.

    ``documents`` maps doc ids to their normalized full text, for the named-entity check;
    without it the passage and title stand in for the document.
    """
    norm_q = normalize(question)
    wanted = content_bigrams(norm_q)
    if not wanted or not hits:
        return None
    years, names = required_terms(norm_q)
    asks_quantity = bool(_QUANTITY.search(norm_q))
    candidates: list[tuple[Hit, int, int, str]] = []
    for hit in hits[:TOP_PASSAGES]:
        norm_passage, norm_title = normalize(hit.text), normalize(hit.title)
        norm_doc = (documents or {}).get(hit.doc_id, norm_passage)
        if any(not _mentions(y, norm_passage, norm_title) for y in years):
            continue
        if any(not _mentions(n, norm_doc, norm_title) for n in names):
            continue
        for a, b in sentences(hit.text, 0, len(hit.text), 250):
            if len(hit.text[a:b].strip()) >= 4:
                candidates.append((hit, a, b, hit.text[a:b]))
    if not candidates:
        return None
    grams = [content_bigrams(normalize(c[3])) for c in candidates]
    rarity = {g: math.log(1 + len(grams) / (1 + sum(1 for s in grams if g in s))) for g in wanted}
    total_rarity = sum(rarity.values()) or 1.0
    vectors = embedder.encode_documents([normalize(c[3]) for c in candidates])
    dense = np.asarray(vectors) @ embedder.encode_queries([norm_q])[0]
    scored = []
    for i, (_, _, _, sentence) in enumerate(candidates):
        found = wanted & grams[i]
        coverage = len(found) / len(wanted)
        weighted = sum(rarity[g] for g in found) / total_rarity
        score = 0.60 * coverage + 0.40 * weighted + 0.35 * float(dense[i])
        if asks_quantity:
            score += 0.05 if _NUMBER.search(sentence) else -0.05
        scored.append((score, coverage, i))
    score, coverage, index = max(scored)
    if score < threshold or coverage < min_coverage:
        return None
    hit, a, b, sentence = candidates[index]
    return Answer(
        text=sentence,
        passage_id=hit.passage_id,
        doc_id=hit.doc_id,
        start=hit.start + a,
        end=hit.start + b,
        score=round(score, 4),
    )


def ask(
    searcher: Searcher, question: str, k: int = 5, mode: Mode = "hybrid", filters: Filters | None = None
) -> AskResult:
    """Search, then pick the answering sentence from the best passages."""
    import time

    began = time.perf_counter()
    result = searcher.search(question, k, mode, filters)
    documents = {}
    for hit in result.hits[:TOP_PASSAGES]:
        text = searcher.document_text(hit.doc_id)
        if text is not None:
            documents[hit.doc_id] = normalize(text)
    answer = extract_answer(question, result.hits, searcher.embedder, documents=documents)
    took = round((time.perf_counter() - began) * 1000, 2)
    return AskResult(question=result.query, answer=answer, hits=result.hits, took_ms=took, mode=result.mode)
