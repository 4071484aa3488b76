"""What the index needs from a model, and what every model wrapper shares."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

#: Texts per model call when embedding documents: small batches stay in cache and pad
#: less on a CPU (docs/decisions.md, "Document batch size").
DOCUMENT_BATCH = 8


class Embedder(Protocol):
    name: str
    fingerprint: str
    dim: int
    max_tokens: int

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_documents(self, texts: Sequence[str], batch_size: int = DOCUMENT_BATCH) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


class TokenizerLock:
    """Calls into one Hugging Face tokenizer that cannot interleave across threads.

    A fast tokenizer keeps padding and truncation as mutable state on its shared Rust
    object and re-sets them at every call, so two threads calling one tokenizer can
    each run with the other's settings: a micro-batch of queries came back ragged
    (unpadded) while the write path counted tokens, and every query in it got a 500
    (issue 10).  Every use of a model's tokenizer, direct or inside the model's own
    ``encode``, goes through one of these.  Measured here: tokenizing a batch of 8
    queries takes 0.18 ms, so waiting for the lock costs little; a private copy per
    thread would cost about 200 MB and 1 s each.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return function(*args, **kwargs)

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def serialized(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return function(*args, **kwargs)

        return serialized


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: np.ndarray = (matrix / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit
