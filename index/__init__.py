"""zhsearch: Chinese semantic search over mixed-script documents, on a CPU.

The library: ingest, normalize, chunk, embed, index, search. It imports neither
the web framework nor the CLI framework; ``service`` wraps it.
"""

from .build import BuildReport, build_index, is_up_to_date
from .chunk import ChunkConfig
from .embed import Embedder, HashingEmbedder, load_embedder
from .errors import (
    DocumentError,
    IndexMismatchError,
    IndexNotFoundError,
    InvalidInputError,
    ModelError,
    ZhsearchError,
)
from .ingest import Document, load_paths
from .normalize import normalize
from .search import Hit, Searcher, SearchResult
from .settings import Settings, get_settings
from .version import __version__

__all__ = [
    "BuildReport",
    "ChunkConfig",
    "Document",
    "DocumentError",
    "Embedder",
    "HashingEmbedder",
    "Hit",
    "IndexMismatchError",
    "IndexNotFoundError",
    "InvalidInputError",
    "ModelError",
    "SearchResult",
    "Searcher",
    "Settings",
    "ZhsearchError",
    "__version__",
    "build_index",
    "get_settings",
    "is_up_to_date",
    "load_embedder",
    "load_paths",
    "normalize",
]
