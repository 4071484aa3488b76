"""One ranking from the candidates of one index or of many shards.

Every retriever's candidates are exact per passage: a BM25 score (shards score with
the cluster's statistics, ``storage.lexical.stats``), a passage's own cosine, its
best sentence's cosine. So a shard's best ``depth`` of each list holds every
passage of the whole corpus's best ``depth`` that lives in that shard, and the
router takes the best ``depth`` of the shards' lists together: the same candidate
sets, with the same scores, as one index of every passage would have. A single
index is the one-shard case (``Searcher``), so both run this code.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..choices import Mode
from ..storage.dense import DenseCandidates
from ..storage.record.store import StoredPassage
from .calibration import HITS, HitCalibration
from .fusion import mix


@dataclass(frozen=True)
class ShardCandidates:
    """One shard's answer to a query: its best lexical matches and, unless lexical-only, its dense candidates.

    ``rows``: a shard of a cluster sends the rows (and document metadata) of the passages it would
    rank first alone, so that the router seldom needs to ask for rows again.
    """

    lexical: list[tuple[int, float]]
    dense: DenseCandidates | None
    rows: dict[int, tuple[StoredPassage, dict[str, Any] | None]] = field(default_factory=dict)


def _best(lists: Sequence[Sequence[tuple[int, float]]], depth: int) -> list[tuple[int, float]]:
    """The ``depth`` best (id, score) of all ``lists``, best first; equal scores by id."""
    return heapq.nsmallest(depth, (item for items in lists for item in items), key=lambda item: (-item[1], item[0]))


# Each retriever proposes this many candidates (at least) for fusion.
CANDIDATES = 50


def depth_for(k: int) -> int:
    """How many candidates each retriever proposes for fusion when ``k`` are wanted."""
    return max(CANDIDATES, 5 * k)


def merge(
    parts: Sequence[ShardCandidates], k: int, mode: Mode, calibration: HitCalibration = HITS
) -> list[tuple[int, float]]:
    """Passage ids and scores, best first: what one index of every shard's passages would rank.

    Each part was searched with ``depth_for(k)`` candidates in hybrid mode and ``k``
    otherwise (``Searcher.candidates``). A score is the calibrated probability of relevance
    (``calibration.HitCalibration``), the same scale in every mode and from query to query.
    """
    items, best = ranked(parts, k, mode)
    return [(pid, calibration.score(mode, raw, best)) for pid, raw in items]


def ranked(parts: Sequence[ShardCandidates], k: int, mode: Mode) -> tuple[list[tuple[int, float]], float]:
    """``merge``'s order with the raw scores (the fused mix, the cosine, or BM25), and the query's
    best cosine among the dense candidates (0 in lexical mode)."""
    if mode == "lexical":
        return _best([p.lexical for p in parts], k), 0.0
    depth = depth_for(k) if mode == "hybrid" else k
    found = [p.dense for p in parts if p.dense is not None]
    passages = _best([d.passages for d in found], depth)
    sentences = heapq.nsmallest(
        4 * depth, (hit for d in found for hit in d.sentences), key=lambda hit: (-hit[1], hit[0])
    )
    lexical = dict(_best([p.lexical for p in parts], depth)) if mode == "hybrid" else {}
    wanted = {pid for pid, _ in passages} | {pid for pid, _, admitted in sentences if admitted} | set(lexical)
    scores: dict[int, float] = {}
    for d in found:
        scores.update(d.scores)
    dense = {pid: scores[pid] for pid in wanted if pid in scores}
    best = max(dense.values(), default=0.0)
    if mode == "dense":
        return sorted(dense.items(), key=lambda item: (-item[1], item[0]))[:k], best
    return mix(dense, lexical)[:k], best
