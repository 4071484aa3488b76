"""Extractive answers: the span of the best passages that answers the question, in its sentence.

Two steps. First the sentences of the top passages are ranked (below). Then, with the span reader
(``models.span``, the default), the windows around the best ``READ_WINDOWS`` sentences are read
and the reader's best span of each is scored by ``calibration``: the probability that it is right,
from the reader's margin and the sentence's ranking features. The most probable span is the answer,
returned with the sentence it stands in; below the calibrated threshold, ``ask`` says nothing.
Without a reader (``ZHSEARCH_ANSWERS=sentence``, or a model the reader was not trained with) the
best sentence itself is the answer, as before issue 26.

Sentence candidates are the sentences of the top passages, scored by content-bigram
coverage (plain and rarity-weighted) and dense similarity; the question's
bigrams found in a document's title count for each of its sentences (a sentence
about 莫高窟 that says 现存洞窟 without naming it). A sentence that carries what
the question asks for (a quantity for 多少/几, a cause for 为什么, a time for
何时/哪一年, a person for 谁, a place for 哪里: ``question.py``) gains
``KIND_WEIGHTS``, one that does not loses it. Headings never win. Weights and
their measurements: docs/decisions.md, "Answer scoring". A candidate is dropped
when the question names a year its passage and title never mention, or a place
or organisation (jieba ns/nt) its document never mentions: that is how
"北京市海淀区2020年上半年GDP" is told apart from the Huangpu report. The answer is
``None`` unless the best score reaches ``THRESHOLD`` and its coverage reaches
``MIN_COVERAGE``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..choices import Mode
from ..models import Embedder
from ..text.chunk import Span, passage_sentences
from ..text.highlight import STOP_CHARS
from ..text.normalize import normalize
from .answering import SENTENCES, Answering
from .question import carries, is_heading, kind_of, tagged
from .search import Hit, SearchResult
from .snapshot import Filters
from .windows import window_around

THRESHOLD = 0.42
MIN_COVERAGE = 0.1
TOP_PASSAGES = 3
#: Windows the span reader reads at most per question: around the best sentences, best first
#: (benchmarks/tune_reader.py; docs/decisions.md, "Answer spans").
READ_WINDOWS = 2
#: Cut from the ends of a span: the reader sometimes takes the clause mark after an answer.
_EDGES = " \t\n\u3000，。、；：！？,.;:!?"
#: Added to a sentence that carries what the question asks for (``question.kind_of``),
#: subtracted from one that does not (docs/decisions.md, "Answer scoring").
KIND_WEIGHTS: dict[str, float] = {"quantity": 0.05, "cause": 0.05, "time": 0.05, "person": 0.05, "place": 0.05}
_YEAR = re.compile(r"(?:19|20)\d{2}(?=年)")
_CONTENT = re.compile(r"[\u3400-\u9fff]|[a-z0-9]")


@dataclass(frozen=True, kw_only=True)
class AskResult:
    question: str
    answer: Answer | None
    hits: list[Hit]
    took_ms: float
    mode: str
    shards: dict[str, int] | None = None
    #: The question as it was matched (``normalize``): what a response highlights in each hit's text.
    norm_query: str = ""


@dataclass(frozen=True, kw_only=True)
class Answer:
    """``text`` is the answer (a span; the whole sentence without a reader), ``start``/``end`` its
    offsets in the document; ``sentence`` is the sentence it stands in, at
    ``sentence_start``/``sentence_end``. ``score``: the calibrated probability that it is right
    (``calibration``); the sentence rule's own scale without a reader."""

    text: str
    passage_id: int
    doc_id: str
    start: int
    end: int
    score: float
    pages: list[int] | None = None
    sentence: str = ""
    sentence_start: int = 0
    sentence_end: int = 0


def content_bigrams(norm_text: str) -> set[str]:
    """Bigrams of content characters, skipping those made only of function words."""
    chars = [c for c in norm_text if _CONTENT.match(c)]
    grams = {a + b for a, b in zip(chars, chars[1:], strict=False)}
    return {g for g in grams if not (g[0] in STOP_CHARS and g[1] in STOP_CHARS)}


def sentence_encoder(embedder: Embedder) -> Callable[[Sequence[str]], np.ndarray]:
    """How the answer step encodes sentences the index holds no vectors for.

    An embedder that keeps a lighter model for requests (the default backend's int8
    ONNX) offers ``encode_documents_light``, so asking never loads the document model.
    """
    light = getattr(embedder, "encode_documents_light", None)
    return light if callable(light) else embedder.encode_documents


def warm_up() -> None:
    """Load jieba's dictionary now rather than on the first question."""
    tagged("黄浦区")


def required_terms(norm_question: str) -> tuple[list[str], list[str]]:
    """Years, and named places or organisations, that the answer must be about."""
    years = [f"{year}年" for year in _YEAR.findall(norm_question)]
    names = [word for word, flag in tagged(norm_question) if flag in ("ns", "nt") and len(word) >= 2]
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
    query_vector: np.ndarray | None = None,
    stored_sentences: Callable[[Hit], np.ndarray] | None = None,
    threshold: float = THRESHOLD,
    min_coverage: float = MIN_COVERAGE,
    answering: Answering = SENTENCES,
) -> Answer | None:
    """The answer read from ``hits`` (in original script, with document offsets), or None.

    Without a reader in ``answering`` it is the best sentence, if its raw score reaches
    ``threshold`` and its coverage ``min_coverage``; with one, the most probable span of the windows
    around the best sentences, if its probability reaches ``answering.cut``.

    ``documents`` maps doc ids to their normalized full text, for the named-entity check;
    without it the passage and title stand in for the document. ``query_vector`` (the
    search's) and ``stored_sentences`` (a hit's sentence vectors from the index, one row
    per sentence of ``chunk.sentences``, or none) save encoding them again; sentences
    without a stored vector are encoded by ``sentence_encoder(embedder)``.
    """
    norm_q = normalize(question)
    wanted = content_bigrams(norm_q)
    if not wanted or not hits:
        return None
    years, names = required_terms(norm_q)
    kind = kind_of(norm_q)
    candidates: list[tuple[Hit, int, int, str]] = []
    stored: list[np.ndarray | None] = []
    for hit in hits[:TOP_PASSAGES]:
        norm_passage, norm_title = normalize(hit.text), normalize(hit.title)
        norm_doc = (documents or {}).get(hit.doc_id, norm_passage)
        if any(not _mentions(y, norm_passage, norm_title) for y in years):
            continue
        if any(not _mentions(n, norm_doc, norm_title) for n in names):
            continue
        known = stored_sentences(hit) if stored_sentences is not None else np.zeros((0, 0), np.float32)
        for n, (a, b) in enumerate(passage_sentences(hit.text)):
            if len(hit.text[a:b].strip()) >= 4:
                candidates.append((hit, a, b, hit.text[a:b]))
                stored.append(known[n] if n < len(known) else None)
    if not candidates:
        return None
    grams = credit_titles(candidates, [content_bigrams(normalize(c[3])) for c in candidates], wanted)
    rarity = {g: math.log(1 + len(grams) / (1 + sum(1 for s in grams if g in s))) for g in wanted}
    total_rarity = sum(rarity.values()) or 1.0
    missing = [i for i, vector in enumerate(stored) if vector is None]
    vectors = np.zeros((len(candidates), embedder.dim), np.float32)
    if missing:
        vectors[missing] = sentence_encoder(embedder)([normalize(candidates[i][3]) for i in missing])
    for i, vector in enumerate(stored):
        if vector is not None:
            vectors[i] = vector
    if query_vector is None:
        query_vector = embedder.encode_queries([norm_q])[0]
    dense = vectors @ np.asarray(query_vector).reshape(-1)
    scored = []
    for i, (hit, a, b, _) in enumerate(candidates):
        if is_heading(hit.text, a, b, hit.title):  # a heading may not win; it still counts for rarity
            continue
        found = wanted & grams[i]
        coverage = len(found) / len(wanted)
        weighted = sum(rarity[g] for g in found) / total_rarity
        scored.append((0.60 * coverage + 0.40 * weighted + 0.35 * float(dense[i]), coverage, i))
    weight = KIND_WEIGHTS.get(kind, 0.0) if kind is not None else 0.0
    if kind is not None and weight and scored:
        # +-weight can only lift a candidate within 2 * weight of the best one above it,
        # so only those are tagged (jieba's tagger is the slow part of an answer).
        floor = max(scored)[0] - 2 * weight
        scored = [
            (score + (weight if carries(kind, normalize(candidates[i][3]), norm_q) else -weight), coverage, i)
            if score >= floor
            else (score - weight, coverage, i)
            for score, coverage, i in scored
        ]
    if not scored:
        return None
    if answering.reader is not None:
        ranked = sorted(scored, reverse=True)  # the order max() takes: equal scores, the later first
        return read_span(question, candidates, ranked, dense, hits[0].passage_id, answering)
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
        score=round(min(1.0, score / max_score()), 4),
        pages=hit.pages_of(hit.start + a, hit.start + b) if hit.pages else hit.pages,
        sentence=sentence,
        sentence_start=hit.start + a,
        sentence_end=hit.start + b,
    )


def read_span(
    question: str,
    candidates: Sequence[tuple[Hit, int, int, str]],
    ranked: Sequence[tuple[float, float, int]],
    dense: np.ndarray,
    first_passage: int,
    answering: Answering,
) -> Answer | None:
    """The span reader over the windows around the best ``READ_WINDOWS`` sentences of ``ranked``
    (score, coverage, candidate), each span scored by ``answering.calibration``; the most probable
    one, or None under ``answering.cut``. A span at least ``answering.sure`` ends the reading."""
    assert answering.reader is not None
    cuts: dict[int, list[Span]] = {}
    chosen: list[tuple[Hit, Span, dict[str, float]]] = []
    seen: set[tuple[int, Span]] = set()
    for score, coverage, i in ranked:
        hit, a, b, _ = candidates[i]
        spans = cuts.setdefault(hit.passage_id, passage_sentences(hit.text))
        window = window_around(spans, spans.index((a, b)))
        if (hit.passage_id, window) in seen:
            continue
        seen.add((hit.passage_id, window))
        features = {
            "sentence": score,
            "coverage": coverage,
            "cosine": float(dense[i]),
            "first": float(hit.passage_id == first_passage),
        }
        chosen.append((hit, window, features))
        if len(chosen) == READ_WINDOWS:
            break
    best: tuple[float, Hit, Span, Span] | None = None
    for hit, (wa, wb), features in chosen:
        # One window at a time (a batch saves little on a CPU): a sure answer ends the reading.
        span = answering.reader.read([(question, hit.text[wa:wb])])[0]
        a, b = _trimmed(hit.text, wa + span.start, wa + span.end)
        if a >= b:
            continue
        features |= {
            "margin": max(-20.0, min(20.0, span.margin)),
            "logprob": max(-20.0, math.log(span.probability)) if span.probability > 0 else -20.0,
        }
        probability = answering.calibration.probability(features)
        if answering.observe is not None:
            answering.observe(hit.text[a:b], features)
        if best is None or probability > best[0]:
            best = (probability, hit, (a, b), (wa, wb))
        if probability >= answering.sure:
            break
    if best is None or best[0] < answering.cut:
        return None
    probability, hit, (a, b), _ = best
    spans = cuts[hit.passage_id]
    around = [(x, y) for x, y in spans if x < b and y > a] or [(a, b)]
    sa, sb = around[0][0], around[-1][1]
    return Answer(
        text=hit.text[a:b],
        passage_id=hit.passage_id,
        doc_id=hit.doc_id,
        start=hit.start + a,
        end=hit.start + b,
        score=round(probability, 4),
        pages=hit.pages_of(hit.start + a, hit.start + b) if hit.pages else hit.pages,
        sentence=hit.text[sa:sb],
        sentence_start=hit.start + sa,
        sentence_end=hit.start + sb,
    )


def _trimmed(text: str, a: int, b: int) -> Span:
    while a < b and text[a] in _EDGES:
        a += 1
    while b > a and text[b - 1] in _EDGES:
        b -= 1
    return a, b


def credit_titles(
    candidates: Sequence[tuple[Hit, int, int, str]], grams: list[set[str]], wanted: set[str]
) -> list[set[str]]:
    """Each candidate sentence's bigrams, with the question's bigrams its document's title holds.

    A sentence is about its document's subject even when it says 其 or 他 instead.
    """
    titles: dict[str, set[str]] = {}
    for hit, *_ in candidates:
        if hit.doc_id not in titles:
            titles[hit.doc_id] = wanted & content_bigrams(normalize(hit.title))
    return [found | titles[hit.doc_id] for (hit, *_), found in zip(candidates, grams, strict=True)]


def max_score() -> float:
    """The highest raw score a sentence can reach: full coverage, full rarity, cosine 1, the kind bonus.

    An answer's reported score is its raw score over this, so it lies in [0, 1] like a passage's
    (the threshold is applied to the raw score, before scaling).
    """
    return 0.60 + 0.40 + 0.35 + max(KIND_WEIGHTS.values(), default=0.0)


class Answerable(Protocol):
    """What ``ask`` needs of an index: a ``Searcher``, or a cluster's router."""

    embedder: Embedder
    answering: Answering

    def searched(
        self, query: str, k: int, mode: Mode, filters: Filters | None
    ) -> tuple[SearchResult, Any, np.ndarray | None]: ...

    def evidence(self, hits: Sequence[Hit], snap: Any) -> tuple[dict[str, str], Callable[[Hit], np.ndarray]]: ...

    def encode_query(self, query: str) -> np.ndarray: ...


def ask(
    searcher: Answerable, question: str, k: int = 5, mode: Mode = "hybrid", filters: Filters | None = None
) -> AskResult:
    """Search, then pick the answering sentence from the best passages.

    Reuses what the search computed: the query vector, the snapshot's passages (for the
    documents' text) and the sentence vectors the index stores.
    """
    began = time.perf_counter()
    result, snap, vector = searcher.searched(question, k, mode, filters)
    documents, stored = searcher.evidence(result.hits[:TOP_PASSAGES], snap)
    if vector is None and result.hits:
        vector = searcher.encode_query(question)

    answer = extract_answer(
        question,
        result.hits,
        searcher.embedder,
        documents=documents,
        query_vector=None if vector is None else vector[0],
        stored_sentences=stored,
        answering=searcher.answering,
    )
    took = round((time.perf_counter() - began) * 1000, 2)
    return AskResult(
        question=result.query,
        answer=answer,
        hits=result.hits,
        took_ms=took,
        mode=result.mode,
        shards=result.shards,
        norm_query=result.norm_query,
    )
