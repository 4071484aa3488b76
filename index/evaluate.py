"""Measuring retrieval quality on answer-string judgments.

A query line (``queries.jsonl``) carries ``_id``, ``text`` and ``answers``; a
retrieved passage is relevant when its normalized text contains a normalized
answer, so judgments written in one script hold for passages in another.

Metrics, for the rank r of the first relevant passage in the top k:
    hit@k  = 1 if r <= k else 0
    mrr@k  = 1 / r if r <= k else 0
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DocumentError
from .normalize import normalize
from .search import Searcher


@dataclass(frozen=True)
class EvalQuery:
    id: str
    text: str
    answers: tuple[str, ...]
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryOutcome:
    query: EvalQuery
    first_relevant: int | None
    top_text: str
    took_ms: float


@dataclass
class EvalReport:
    outcomes: list[QueryOutcome]
    metrics: dict[str, float]


def load_queries(path: Path) -> list[EvalQuery]:
    queries = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DocumentError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc
        qid = record.pop("_id", None) or record.pop("id", None)
        text = record.pop("text", None)
        if qid is None or not isinstance(text, str):
            raise DocumentError(f"{path}:{lineno}: a query needs '_id' and 'text'")
        answers = tuple(record.pop("answers", ()) or ())
        queries.append(EvalQuery(str(qid), text, answers, record))
    return queries


def is_relevant(norm_text: str, norm_answers: Sequence[str]) -> bool:
    return any(answer and answer in norm_text for answer in norm_answers)


def metrics_from_ranks(ranks: Sequence[int | None], cutoffs: Sequence[int] = (1, 3, 5, 10)) -> dict[str, float]:
    n = len(ranks) or 1
    out = {f"hit@{k}": sum(1 for r in ranks if r is not None and r <= k) / n for k in cutoffs}
    out["mrr@10"] = sum(1 / r for r in ranks if r is not None and r <= 10) / n
    return {name: round(value, 4) for name, value in out.items()}


def evaluate(
    searcher: Searcher,
    queries: Sequence[EvalQuery],
    *,
    k: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    outcomes = []
    for done, query in enumerate(queries, start=1):
        result = searcher.search(query.text, k)
        answers = [normalize(a) for a in query.answers]
        first = next((h.rank for h in result.hits if is_relevant(normalize(h.text), answers)), None)
        outcomes.append(QueryOutcome(query, first, result.hits[0].text if result.hits else "", result.took_ms))
        if progress:
            progress(done, len(queries))
    metrics = metrics_from_ranks([o.first_relevant for o in outcomes])
    latencies = sorted(o.took_ms for o in outcomes)
    if latencies:
        metrics["p50_ms"] = round(statistics.median(latencies), 2)
        metrics["p95_ms"] = round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 2)
    return EvalReport(outcomes, metrics)


@dataclass
class AnswerReport:
    metrics: dict[str, float]
    misses: list[tuple[EvalQuery, str | None]]


def evaluate_answers(
    searcher: Searcher,
    answerable: Sequence[EvalQuery],
    unanswerable: Sequence[EvalQuery] = (),
    *,
    k: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> AnswerReport:
    """Share of questions whose extractive answer contains an expected answer, and abstention rates.

    answer_contains     answerable questions whose answer text contains a normalized answer
    abstain_answerable  answerable questions left unanswered (lower is better)
    abstain_unanswerable  questions the corpus cannot answer that got ``null`` (higher is better)
    """
    from .answer import ask

    misses: list[tuple[EvalQuery, str | None]] = []
    correct = abstained = refused = 0
    total = len(answerable) + len(unanswerable)
    for done, query in enumerate([*answerable, *unanswerable], start=1):
        answer = ask(searcher, query.text, k).answer
        if query.answers:
            expected = [normalize(a) for a in query.answers]
            if answer is None:
                abstained += 1
                misses.append((query, None))
            elif is_relevant(normalize(answer.text), expected):
                correct += 1
            else:
                misses.append((query, answer.text))
        elif answer is None:
            refused += 1
        else:
            misses.append((query, answer.text))
        if progress:
            progress(done, total)
    metrics = {
        "answer_contains": round(correct / max(1, len(answerable)), 4),
        "abstain_answerable": round(abstained / max(1, len(answerable)), 4),
        "abstain_unanswerable": round(refused / max(1, len(unanswerable)), 4) if unanswerable else 0.0,
    }
    return AnswerReport(metrics, misses)
