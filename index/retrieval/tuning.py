"""``Tuning``: the settings an opened index applies itself (``index.served``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..text.budgets import DEFAULT, Budgets
from .query import QueryLimits


@dataclass(frozen=True, kw_only=True)
class Tuning:
    """What an opened index applies itself, from the settings (``Tuning.of(settings)``).

    ``limits``: what a query may be; ``budgets``: what a written document's metadata may hold;
    ``ef_search`` (None: the vector index's default): applied to every vector index the index
    loads, at opening and after each checkpoint or reload; ``merge_vectors``: new vectors (per
    part) that make a vector checkpoint (None: ``storage.dense.layered.MERGE_VECTORS``).
    """

    limits: QueryLimits = field(default_factory=QueryLimits)
    budgets: Budgets = DEFAULT
    ef_search: int | None = None
    merge_vectors: int | None = None

    @classmethod
    def of(cls, settings: Any) -> Tuning:
        """The tuning that ``settings`` (an ``index.Settings``) asks for."""
        return cls(
            limits=settings.query_limits,
            budgets=settings.budgets,
            ef_search=settings.ef_search,
            merge_vectors=settings.merge_vectors,
        )
