"""Combining dense and lexical scores into one ranking.

Each retriever's scores are min-max scaled over the candidate set (the union of
both top lists), then mixed: ``w * dense + (1 - w) * lexical`` with w = 0.5.
Weighted score fusion beat reciprocal rank fusion, which gives the weaker
retriever an equal vote: docs/decisions.md, "Fusion".
"""

from __future__ import annotations

from collections.abc import Mapping

DENSE_WEIGHT = 0.5
METHOD = f"minmax-weighted-{DENSE_WEIGHT}"


def _scaled(scores: Mapping[int, float], keys: list[int]) -> dict[int, float]:
    values = [scores.get(key, 0.0) for key in keys]
    low, high = min(values), max(values)
    span = high - low
    if span <= 0:
        return {key: (1.0 if scores.get(key, 0.0) > 0 else 0.0) for key in keys}
    return {key: (scores.get(key, low) - low) / span for key in keys}


def fuse(
    dense: Mapping[int, float], lexical: Mapping[int, float], dense_weight: float = DENSE_WEIGHT
) -> list[tuple[int, float]]:
    """Candidate ids with fused scores, best first; ties broken by dense score then id."""
    keys = sorted(set(dense) | set(lexical))
    if not keys:
        return []
    d = _scaled(dense, keys)
    lex = _scaled(lexical, keys) if lexical else dict.fromkeys(keys, 0.0)
    fused = {key: dense_weight * d[key] + (1 - dense_weight) * lex[key] for key in keys}
    return sorted(fused.items(), key=lambda item: (-item[1], -dense.get(item[0], 0.0), item[0]))
