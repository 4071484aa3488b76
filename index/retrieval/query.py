"""What a query may be: the one place that decides modes and limits.

Settings, the HTTP schemas, the MCP tool schemas, the CLI and evaluation read these;
``validate_query`` checks them once per request, with messages a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..choices import MODES
from ..errors import InvalidInputError

#: Hard ceilings; a deployment may set lower ones (``ZHSEARCH_MAX_QUERY_CHARS``, ``ZHSEARCH_MAX_K``).
MAX_QUERY_CHARS = 1000
MAX_K = 100


@dataclass(frozen=True)
class QueryLimits:
    max_chars: int = MAX_QUERY_CHARS
    max_k: int = MAX_K


def validate_query(query: str, k: int, mode: str = "hybrid", limits: QueryLimits = QueryLimits()) -> str:
    """The query, stripped; raises ``InvalidInputError`` with a message a person can act on."""
    stripped = query.strip()
    if not stripped:
        raise InvalidInputError("the query is empty")
    if len(query) > limits.max_chars:
        raise InvalidInputError(f"the query has {len(query)} characters; the limit is {limits.max_chars}")
    if not 1 <= k <= limits.max_k:
        raise InvalidInputError(f"k must be between 1 and {limits.max_k}, got {k}")
    if mode not in MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return stripped
