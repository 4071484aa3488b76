"""Combining dense and lexical scores into one ranking.

Each retriever's scores are standardized over the candidate set (the union of
both top lists; a candidate the lexical list lacks scores 0 there): z = (x - mean)
/ std, so a candidate counts by how far it stands above the rest of its list,
not by being its list's first (min-max, the rule before, gives every list's top
the same 1, however crowded). Then they are mixed, ``w * dense + (1 - w) *
lexical`` with w = 0.6. ``fuse`` scales the mix to [0, 1] per query (the rule before
issue 26); a response shows instead the calibrated probability of relevance computed from the
mix and the query's best cosine (``calibration``, ``merge.merge``): the order is the same.
Weighted score fusion beat reciprocal rank fusion, which gives the weaker
retriever an equal vote: docs/decisions.md, "Fusion" and "Descriptive questions".
"""

from __future__ import annotations

import math
from collections.abc import Mapping

DENSE_WEIGHT = 0.6
METHOD = f"z-weighted-{DENSE_WEIGHT}"


def _standardized(scores: Mapping[int, float], keys: list[int], missing: float) -> dict[int, float]:
    values = [scores.get(key, missing) for key in keys]
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) or 1.0
    return {key: (value - mean) / spread for key, value in zip(keys, values, strict=True)}


def mix(
    dense: Mapping[int, float], lexical: Mapping[int, float], dense_weight: float = DENSE_WEIGHT
) -> list[tuple[int, float]]:
    """Candidate ids with their unscaled mix of standardized scores, best first; ties broken by dense
    score then id. What a hit's calibrated score is computed from (``calibration``)."""
    keys = sorted(set(dense) | set(lexical))
    if not keys:
        return []
    low = min(dense.values(), default=0.0)
    d = _standardized(dense, keys, low)
    lex = _standardized(lexical, keys, 0.0) if lexical else dict.fromkeys(keys, 0.0)
    mixed = {key: dense_weight * d[key] + (1 - dense_weight) * lex[key] for key in keys}
    return sorted(mixed.items(), key=lambda item: (-item[1], -dense.get(item[0], 0.0), item[0]))


def fuse(
    dense: Mapping[int, float], lexical: Mapping[int, float], dense_weight: float = DENSE_WEIGHT
) -> list[tuple[int, float]]:
    """Candidate ids with fused scores in [0, 1] (the mix scaled per query), best first; ties broken
    by dense score then id."""
    mixed = mix(dense, lexical, dense_weight)
    if not mixed:
        return []
    top, bottom = mixed[0][1], mixed[-1][1]
    span = top - bottom
    return [(key, (value - bottom) / span if span > 0 else 1.0) for key, value in mixed]
