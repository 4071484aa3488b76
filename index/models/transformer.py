"""Any sentence-transformers model, run by torch, safe to share between threads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ModelError
from .base import DOCUMENT_BATCH, TokenizerLock


class SentenceTransformerEmbedder:
    """A sentence-transformers model used through its query/document prompts."""

    def __init__(self, name: str, path_or_id: str, *, device: str = "cpu", fingerprint: str = "") -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        # A weight-loading bar on every CLI call is noise.
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
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
        # ``encode`` tokenizes through ``preprocess``; serializing that step (and
        # ``count_tokens``) makes the model safe to share between threads while the
        # forward passes themselves still run in parallel.
        self._tokenizing = TokenizerLock()
        self._model.preprocess = self._tokenizing.wrap(self._model.preprocess)  # type: ignore[method-assign]
        prompts = self._model.prompts or {}
        # Token budget left for the text once the document prompt is added.
        self._prompt_tokens = len(self._tokenizing.call(self._tokenizer, prompts.get("document", ""))["input_ids"]) - 2

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode_query(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)

    def encode_documents(self, texts: Sequence[str], batch_size: int = DOCUMENT_BATCH) -> np.ndarray:
        vectors = self._model.encode_document(
            list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizing.call(self._tokenizer, text)["input_ids"]) + max(self._prompt_tokens, 0)
