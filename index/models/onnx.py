"""The default model's transformer run by ONNX Runtime (fp32 or int8); see docs/decisions.md, "Backends"."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .base import DOCUMENT_BATCH, TokenizerLock, unit_rows
from .tables import WORD_TABLE_INPUT, word_table
from .unigram import UnigramTokenizer


def max_sequence_length(folder: Path) -> int:
    """The folder's ``max_seq_length`` (sentence-transformers), 512 when it names none."""
    config = json.loads((Path(folder) / "sentence_bert_config.json").read_text(encoding="utf-8"))
    return int(config.get("max_seq_length") or 512)


def cpu_session(onnx_file: Path, threads: int = 0) -> Any:
    """An ONNX Runtime session on the CPU with ``threads`` intra-op threads (0: one per core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle ORT threads spin by default, stealing the cores FAISS and BM25 need right after encoding.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])


def built_tokenizer_file(folder: Path) -> Path:
    """Where the pipeline ``transformers`` builds for ``folder`` is kept: named by transformers' version
    and the tokenizer files it was built from, so a change to either builds it again (``tokenizer.json``
    itself when transformers is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    folder = Path(folder)
    stamp = "-".join(
        f"{(folder / name).stat().st_size}.{(folder / name).stat().st_mtime_ns}"
        for name in ("tokenizer.json", "tokenizer_config.json")
        if (folder / name).exists()
    )
    try:
        return folder / f"tokenizer.transformers-{version('transformers')}-{stamp}.json"
    except PackageNotFoundError:
        return folder / "tokenizer.json"


class FastTokenizer:
    """The tokenizer ``transformers`` builds for the folder, run without ``transformers``.

    ``AutoTokenizer`` does not run ``tokenizer.json`` as written: transformers 5 rebuilds the
    pipeline (for XLM-R its normalizer and a whitespace split before Metaspace, so a trailing space
    is no token). The first load asks ``AutoTokenizer`` and keeps the pipeline it built in the folder
    (``tokenizer.transformers-<version>-<stamp>.json``); later loads read that file without importing
    ``transformers`` (about 1.5 s and 250 MB of a command's start). A Unigram pipeline (the default
    model's) runs with its pieces in a dict (``unigram.UnigramTokenizer``: 0.2 s and ~40 MB to load,
    against 1.2 s and ~280 MB for ``tokenizers``' trie); another runs in ``tokenizers``. Same ids,
    special tokens, truncation and right padding (tested against ``AutoTokenizer`` and ``tokenizers``).

    Safe to share between threads (calls are serialized: with ``tokenizers``, counting changes the
    truncation setting for its call), and shared: ``shared`` gives one per model folder, so the int8
    query model, the fp32 document model and the span reader of a process hold one tokenizer.
    """

    _instances: dict[tuple[Path, int], FastTokenizer] = {}
    _making = threading.Lock()

    @classmethod
    def shared(cls, folder: Path, max_tokens: int) -> FastTokenizer:
        """The process's tokenizer of ``folder``."""
        key = (Path(folder).resolve(), max_tokens)
        with cls._making:
            found = cls._instances.get(key)
            if found is None:
                found = cls._instances[key] = cls(folder, max_tokens)
            return found

    def __init__(self, folder: Path, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self._auto: Any = None
        self._unigram: UnigramTokenizer | None = None
        self._lock = TokenizerLock()
        built = built_tokenizer_file(folder)
        if not built.exists():
            from transformers import AutoTokenizer

            self._auto = AutoTokenizer.from_pretrained(str(folder))
            backend = getattr(self._auto, "backend_tokenizer", None)
            if backend is not None:
                scratch = built.with_name(f".{built.name}.{os.getpid()}")
                try:
                    scratch.write_text(backend.to_str(), encoding="utf-8")
                    os.replace(scratch, built)
                except OSError:
                    pass  # a read-only model folder: transformers each time
            return
        pad: Any = None
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            if pad is None and (folder / name).exists():
                pad = json.loads((folder / name).read_text(encoding="utf-8")).get("pad_token")
        pad_token = str((pad.get("content") if isinstance(pad, dict) else pad) or "<pad>")
        # A Unigram pipeline (the default model's) runs with its pieces in a dict: 0.2 s and ~40 MB to
        # load instead of 1.2 s and ~280 MB (``index/models/unigram.py``; same ids and offsets).
        self._unigram = UnigramTokenizer.load(built)
        if self._unigram is not None:
            pad_id = self._unigram.piece_id(pad_token)
            if pad_id is None:
                raise ValueError(f"the pad token {pad_token!r} is not in {built}")
            self._pad_id = pad_id
            return
        from tokenizers import Tokenizer

        # One instance (0.7 s and ~290 MB to load): counting turns truncation off for its call. The
        # caller serializes calls (``TokenizerLock``), so the settings never change under another call.
        self._tokenizer = Tokenizer.from_file(str(built))
        self._tokenizer.enable_truncation(max_length=max_tokens, strategy="longest_first")
        pad_id = self._tokenizer.token_to_id(pad_token)
        if pad_id is None:
            raise ValueError(f"the pad token {pad_token!r} is not in {built}")
        self._tokenizer.enable_padding(direction="right", pad_id=pad_id, pad_token=pad_token)

    def pairs(self, pairs: Sequence[tuple[str, str]], max_length: int) -> list[Any]:
        """``tokenizers`` encodings of text pairs (``a </s></s> b``), unpadded, cut to ``max_length`` tokens
        longest-first: the span reader's input, from this same instance (~290 MB not loaded twice)."""
        found: list[Any] = self._lock.call(self._pairs, list(pairs), max_length)
        return found

    def _pairs(self, pairs: list[tuple[str, str]], max_length: int) -> list[Any]:
        if self._unigram is not None:
            return [self._unigram.encode_pair(a, b, max_length) for a, b in pairs]
        tokenizer = self._auto.backend_tokenizer if self._auto is not None else self._tokenizer
        padding = tokenizer.padding
        truncation = tokenizer.truncation
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_length, strategy="longest_first")
        try:
            return list(tokenizer.encode_batch(pairs))
        finally:
            if padding is not None:
                tokenizer.enable_padding(**padding)
            if truncation is None:
                tokenizer.no_truncation()
            else:
                tokenizer.enable_truncation(**truncation)

    def count(self, text: str) -> int:
        """Tokens of ``text`` with the special tokens, untruncated."""
        return int(self._lock.call(self._count, text))

    def _count(self, text: str) -> int:
        if self._auto is not None:
            return len(self._auto(text)["input_ids"])
        if self._unigram is not None:
            return len(self._unigram.ids(text))
        self._tokenizer.no_truncation()
        try:
            return len(self._tokenizer.encode(text).ids)
        finally:
            self._tokenizer.enable_truncation(max_length=self.max_tokens, strategy="longest_first")

    def batch(self, texts: list[str]) -> dict[str, np.ndarray]:
        """``input_ids`` and ``attention_mask`` of ``texts``, truncated and padded to the longest."""
        found: dict[str, np.ndarray] = self._lock.call(self._batch, texts)
        return found

    def _batch(self, texts: list[str]) -> dict[str, np.ndarray]:
        if self._auto is not None:
            found = self._auto(
                texts, padding=True, truncation="longest_first", max_length=self.max_tokens, return_tensors="np"
            )
            return {key: np.asarray(value) for key, value in found.items()}
        if self._unigram is not None:
            return self._unigram.batch(texts, self.max_tokens, self._pad_id)
        encodings = self._tokenizer.encode_batch(texts)
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        }


class OnnxEmbedder:
    """A sentence-transformers folder's model run by ONNX Runtime on the CPU.

    Only the transformer runs in ONNX Runtime; tokenization, the query/document
    prompts, mean pooling and normalization follow the folder's
    sentence-transformers configuration exactly as ``SentenceTransformer`` applies
    it, so the fp32 export embeds like ``SentenceTransformerEmbedder`` (cosine
    > 0.9999, checked when the file is exported).  Needs onnxruntime, not torch.

    Safe to share between threads: tokenizer calls are serialized (``FastTokenizer``, one per folder),
    and ``InferenceSession.run`` is documented thread-safe, so forward passes overlap;
    the session options are used once, at construction.
    """

    def __init__(self, name: str, folder: Path, onnx_file: Path, *, fingerprint: str, threads: int = 0) -> None:
        try:
            import onnxruntime  # noqa: F401  (a clear error here, before any file is read)
        except ImportError as exc:
            raise ModelError(f"the ONNX backends need onnxruntime ({exc}); pip install onnxruntime") from exc
        folder = Path(folder)
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            st_config = json.loads((folder / "config_sentence_transformers.json").read_text(encoding="utf-8"))
            bert_config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
            pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
            modules = [m["type"] for m in json.loads((folder / "modules.json").read_text(encoding="utf-8"))]
            self._tokenizer = FastTokenizer.shared(folder, max_sequence_length(folder))
            self._session = cpu_session(onnx_file, threads)
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
        # Graphs since export version 3 read the word-embedding table from the weights file, mapped once.
        self._table = word_table(folder) if WORD_TABLE_INPUT in self._inputs else None
        self._prompt_tokens = self._count(self._document_prompt) - 2

    def _count(self, text: str) -> int:
        return self._tokenizer.count(text)

    def _run(self, texts: list[str]) -> np.ndarray:
        batch = self._tokenizer.batch(texts)
        feeds = {k: np.asarray(v, dtype=np.int64) for k, v in batch.items() if k in self._inputs}
        if "token_type_ids" in self._inputs and "token_type_ids" not in feeds:
            feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
        if self._table is not None:
            feeds[WORD_TABLE_INPUT] = self._table
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        mask = np.asarray(batch["attention_mask"], dtype=np.float32)[..., None]
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        return unit_rows(pooled)

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
