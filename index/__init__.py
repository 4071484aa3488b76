"""zhsearch: Chinese semantic search over mixed-script documents, on a CPU.

The library: ingest, normalize, chunk, embed, index, search. It imports neither
the web framework nor the CLI framework; ``service`` wraps it.
"""

from .errors import (
    DocumentError,
    IndexMismatchError,
    IndexNotFoundError,
    InvalidInputError,
    ModelError,
    ZhsearchError,
)
from .models import Embedder, HashingEmbedder, load_configured_embedder, load_embedder
from .retrieval.search import Hit, Searcher, SearchResult
from .settings import Settings, get_settings
from .text.chunk import ChunkConfig
from .text.ingest import Document, load_paths
from .text.normalize import normalize
from .version import __version__
from .writing.build import BuildReport, build_index

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
    "load_configured_embedder",
    "load_embedder",
    "load_paths",
    "normalize",
]
