"""Measuring retrieval quality with the formats and metrics the field uses.

Inputs:
- answer-string sets: ``queries.jsonl`` lines with ``_id``, ``text`` and ``answers``;
  a passage is relevant when its normalized text contains a normalized answer,
  so judgments written in one script hold for passages in another;
- BEIR folders: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``;
- TREC qrels files (``qid 0 docid rel``) for any queries file.

Relevance is judged per passage (``level="passage"``) or per document
(``level="doc"``: a document's score is its best passage's). Metrics come from
ranx: hit@k (ranx ``hit_rate``), recall@k, MRR@10, nDCG@10 and MAP@20.

Besides zhsearch's modes, ``naive`` is the naive dense baseline (``naive.py``); at
passage level its "passages" are its own windows, judged the same way.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..choices import MODES, Level, Mode
from ..errors import DocumentError
from ..retrieval.search import Searcher
from ..text.ingest import read_jsonl
from ..text.normalize import normalize
from .naive import NaiveDense

DEPTH = 20
# Our metric names, and ranx's names for them.
METRICS = {
    "hit@1": "hit_rate@1",
    "hit@5": "hit_rate@5",
    "recall@5": "recall@5",
    "recall@10": "recall@10",
    "mrr@10": "mrr@10",
    "ndcg@10": "ndcg@10",
    "map@20": "map@20",
}


@dataclass(frozen=True)
class EvalQuery:
    id: str
    text: str
    answers: tuple[str, ...] = ()
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalSet:
    """Queries plus how to judge them: answer strings, or qrels naming documents."""

    name: str
    queries: list[EvalQuery]
    qrels: dict[str, dict[str, int]] | None = None
    corpus: Path | None = None
    unanswerable: list[EvalQuery] = field(default_factory=list)

    @property
    def default_level(self) -> Level:
        return "passage" if self.qrels is None else "doc"


@dataclass
class ModeResult:
    mode: str
    metrics: dict[str, float]
    ranks: dict[str, int | None]
    top: dict[str, str]
    run: dict[str, dict[str, float]]
    latencies_ms: list[float]
    #: Queries with nothing relevant in what this mode ranks (no passage, or window, holds an
    #: answer): counted as misses.
    unjudged: list[str] = field(default_factory=list)


@dataclass
class EvalReport:
    name: str
    level: Level
    queries: list[EvalQuery]
    modes: dict[str, ModeResult]
    groups: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    split_by: str | None = None
    #: Queries of a qrels set that its qrels do not judge: not evaluated, and said so.
    not_in_qrels: list[str] = field(default_factory=list)

    @property
    def unjudged(self) -> dict[str, int]:
        """Per mode, how many queries had nothing relevant to rank (counted as misses)."""
        return {mode: len(result.unjudged) for mode, result in self.modes.items()}


def load_queries(path: Path) -> list[EvalQuery]:
    queries = []
    for lineno, record in read_jsonl(path):
        qid = record.pop("_id", None) or record.pop("id", None)
        text = record.pop("text", None)
        if qid is None or not isinstance(text, str):
            raise DocumentError(f"{path}:{lineno}: a query needs '_id' and 'text'")
        answers = tuple(record.pop("answers", ()) or ())
        queries.append(EvalQuery(str(qid), text, answers, record))
    return queries


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR ``query-id<TAB>corpus-id<TAB>score`` (with header) or TREC ``qid 0 docid rel``."""
    qrels: dict[str, dict[str, int]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts or (lineno == 1 and parts[0] == "query-id"):
            continue
        if len(parts) == 3:
            qid, doc, rel = parts
        elif len(parts) == 4:
            qid, _, doc, rel = parts
        else:
            raise DocumentError(f"{path}:{lineno}: expected 3 (BEIR) or 4 (TREC) columns")
        try:
            qrels.setdefault(qid, {})[doc] = int(float(rel))
        except ValueError as exc:
            raise DocumentError(f"{path}:{lineno}: relevance {rel!r} is not a number") from exc
    return qrels


def load_eval_set(path: Path, *, qrels: Path | None = None) -> EvalSet:
    """An answer-string folder or file, or a BEIR folder; ``qrels`` adds TREC/BEIR judgments."""
    if path.is_dir():
        queries_file = path / "queries.jsonl"
        beir_qrels = path / "qrels" / "test.tsv"
        judged = read_qrels(qrels) if qrels else read_qrels(beir_qrels) if beir_qrels.exists() else None
        corpus = path / "corpus.jsonl" if (path / "corpus.jsonl").exists() else None
        negatives = path / "unanswerable.jsonl"
        extra = load_queries(negatives) if negatives.exists() else []
        return EvalSet(path.as_posix().rstrip("/"), load_queries(queries_file), judged, corpus, extra)
    return EvalSet(path.as_posix(), load_queries(path), read_qrels(qrels) if qrels else None)


def is_relevant(norm_text: str, norm_answers: Sequence[str]) -> bool:
    return any(answer and answer in norm_text for answer in norm_answers)


def _judgments(searcher: Searcher, eval_set: EvalSet, level: Level) -> dict[str, dict[str, int]]:
    """Relevant ids (passage ids as strings, or doc ids) for every judged query."""
    snap = searcher.snapshot
    if eval_set.qrels is not None:
        if level == "doc":
            return {q: {d: r for d, r in docs.items() if r > 0} for q, docs in eval_set.qrels.items()}
        return {
            qid: {
                str(pid): rel
                for doc, rel in docs.items()
                if rel > 0 and doc in snap.documents
                for pid in snap.documents[doc].passage_ids
            }
            for qid, docs in eval_set.qrels.items()
        }
    judged: dict[str, dict[str, int]] = {}
    every = list(snap.passages.values())  # read from the store once, not per query
    for query in eval_set.queries:
        answers = [normalize(a) for a in query.answers]
        hits = {p for p in every if is_relevant(p.norm_text, answers)}
        judged[query.id] = {p.doc_id: 1 for p in hits} if level == "doc" else {str(p.id): 1 for p in hits}
    return judged


def _ranx_metrics(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], queries: Sequence[str]
) -> dict[str, float]:
    """Mean metrics over every one of ``queries``: a query with nothing relevant anywhere (no passage
    holds its answer) is a miss at every rank, scored 0, never left out."""
    from ranx import Qrels, Run
    from ranx import evaluate as ranx_evaluate

    judged = {q: rels for q in queries if (rels := qrels.get(q))}
    if not judged:
        return dict.fromkeys(METRICS, 0.0)
    # ranx wants every judged query in the run; an empty ranking is a run of one unjudged id.
    runs = {q: (run.get(q) or {"__nothing__": 0.0}) for q in judged}
    scores = ranx_evaluate(Qrels.from_dict(judged), Run.from_dict(runs), list(METRICS.values()), make_comparable=True)
    share = len(judged) / len(set(queries))  # the others score 0
    return {ours: round(float(scores[theirs]) * share, 4) for ours, theirs in METRICS.items()}


def _judged_queries(eval_set: EvalSet) -> tuple[list[EvalQuery], list[str]]:
    """The queries to evaluate, and the ids of those a qrels set does not judge."""
    if eval_set.qrels is None:
        return list(eval_set.queries), []
    judged = [q for q in eval_set.queries if any(r > 0 for r in eval_set.qrels.get(q.id, {}).values())]
    kept = {q.id for q in judged}
    return judged, [q.id for q in eval_set.queries if q.id not in kept]


def unjudged(qrels: dict[str, dict[str, int]], queries: Sequence[EvalQuery]) -> list[str]:
    """Ids of the queries that nothing in the index is relevant to (no passage contains an answer)."""
    return [q.id for q in queries if not qrels.get(q.id)]


Ranking = list[tuple[str, float]]


def _naive_judgments(naive: NaiveDense, eval_set: EvalSet, level: Level) -> dict[str, dict[str, int]]:
    """Relevant windows of the naive baseline (passage level); doc level shares the real judgments."""
    if eval_set.qrels is not None:
        return {
            qid: {f"w{i}": 1 for i, doc in enumerate(naive.doc_ids) if docs.get(doc, 0) > 0}
            for qid, docs in eval_set.qrels.items()
        }
    norm_windows = [normalize(text) for text in naive.texts]
    return {
        query.id: {
            f"w{i}": 1
            for i, text in enumerate(norm_windows)
            if is_relevant(text, [normalize(a) for a in query.answers])
        }
        for query in eval_set.queries
    }


def _naive_ranked(naive: NaiveDense, query: EvalQuery, level: Level) -> tuple[Ranking, str, float]:
    began = time.perf_counter()
    if level == "doc":
        ranked = naive.rank_documents(query.text, DEPTH)
        top = ranked[0][0] if ranked else ""
    else:
        scored = naive.window_scores(query.text, DEPTH)
        ranked = [(f"w{i}", score) for i, score in scored]
        top = naive.texts[scored[0][0]] if scored else ""
    return ranked, top, round((time.perf_counter() - began) * 1000, 2)


def _ranked(searcher: Searcher, query: EvalQuery, mode: Mode, level: Level) -> tuple[Ranking, str, float]:
    result = searcher.search(query.text, DEPTH, mode)
    top = result.hits[0].text if result.hits else ""
    # Judged by the order shown, whatever the scores (equal rounded probabilities must not reorder).
    if level == "passage":
        return [(str(h.passage_id), float(DEPTH - n)) for n, h in enumerate(result.hits)], top, result.took_ms
    seen: dict[str, float] = {}
    for hit in result.hits:
        seen.setdefault(hit.doc_id, float(DEPTH - len(seen)))
    return list(seen.items()), top, result.took_ms


def evaluate(
    searcher: Searcher,
    eval_set: EvalSet,
    *,
    modes: Sequence[str] = MODES,
    level: Level | None = None,
    split_by: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    naive: NaiveDense | None = None,
) -> EvalReport:
    """Every mode's metrics on ``eval_set``, over the same queries; ``naive`` is needed when ``modes`` names it.

    An answer-string set is judged on every query: one whose answer no passage holds is a miss in
    every mode (``ModeResult.unjudged`` names them). A set with qrels is judged on the queries the
    qrels judge, as BEIR does (a ``queries.jsonl`` often holds other splits' queries too); the
    others are named in ``EvalReport.not_in_qrels``.
    """
    level = level or eval_set.default_level
    qrels = _judgments(searcher, eval_set, level)
    naive_qrels = _naive_judgments(naive, eval_set, level) if naive is not None and level == "passage" else qrels
    queries, not_in_qrels = _judged_queries(eval_set)
    total = len(modes) * len(queries)
    done = 0
    results: dict[str, ModeResult] = {}
    for mode in modes:
        run: dict[str, dict[str, float]] = {}
        ranks: dict[str, int | None] = {}
        tops: dict[str, str] = {}
        latencies = []
        judged = naive_qrels if mode == "naive" else qrels
        for query in queries:
            if mode == "naive":
                if naive is None:
                    raise DocumentError("the naive baseline was asked for but not built")
                ranked, top, took = _naive_ranked(naive, query, level)
            else:
                ranked, top, took = _ranked(searcher, query, mode, level)  # type: ignore[arg-type]
            # ranx ranks by score; positions keep our order even when fused scores tie.
            run[query.id] = {item: float(len(ranked) - i) for i, (item, _) in enumerate(ranked)}
            relevant = judged.get(query.id, {})
            ranks[query.id] = next((i + 1 for i, (item, _) in enumerate(ranked) if item in relevant), None)
            tops[query.id] = top
            latencies.append(took)
            done += 1
            if progress:
                progress(done, total)
        metrics = _ranx_metrics(judged, run, [q.id for q in queries])
        ordered = sorted(latencies)
        metrics["p50_ms"] = round(statistics.median(ordered), 2) if ordered else 0.0
        metrics["p95_ms"] = round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2) if ordered else 0.0
        results[mode] = ModeResult(mode, metrics, ranks, tops, run, latencies, unjudged(judged, queries))
    report = EvalReport(eval_set.name, level, queries, results, split_by=split_by, not_in_qrels=not_in_qrels)
    if split_by:
        values = sorted({str(q.fields.get(split_by, "")) for q in queries})
        for value in values:
            members = [q.id for q in queries if str(q.fields.get(split_by, "")) == value]
            report.groups[value] = {
                mode: _ranx_metrics(naive_qrels if mode == "naive" else qrels, res.run, members)
                for mode, res in results.items()
            }
    return report


def sample(queries: Sequence[EvalQuery], n: int) -> list[EvalQuery]:
    """At most ``n`` of ``queries`` (all for 0), the same ones every run: the lowest hashes of their ids."""
    if not n or n >= len(queries):
        return list(queries)
    chosen = {q.id for q in sorted(queries, key=lambda q: hashlib.sha256(q.id.encode()).hexdigest())[:n]}
    return [q for q in queries if q.id in chosen]
