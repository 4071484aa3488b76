"""Embedding passages for the index: the model call of indexing, above storage.

``storage.dense`` says what a passage's vectors are (its text with its section, and
one vector per sentence of ``text.chunk.passage_sentences``); this module runs the
model over them. Build, live writes, a writer's catch-up and the cluster pipeline
all embed through ``embed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..models import DOCUMENT_BATCH, Embedder
from ..storage.dense import SENTENCE_STRIDE, Vectors, passage_text, sentence_texts
from ..storage.record.store import StoredPassage


def embed(
    passages: Sequence[StoredPassage],
    embedder: Embedder,
    batch_size: int = DOCUMENT_BATCH,
    progress: Callable[[float], None] | None = None,
) -> Vectors:
    """Passage and sentence vectors, in one call: sorted by length together, batches pad less.

    ``progress`` hears the share of the work done (by characters: the longest texts go
    first and take longest) after every few batches; the batches are the same either way.
    """
    sentence_ids: list[int] = []
    sentence_inputs: list[str] = []
    for p in passages:
        for n, sentence in enumerate(sentence_texts(p.text)):
            sentence_ids.append(p.id * SENTENCE_STRIDE + n)
            sentence_inputs.append(sentence)
    texts = [passage_text(p.section, p.text) for p in passages]
    inputs = [*texts, *sentence_inputs]
    if progress is None:
        vectors = embedder.encode_documents(inputs, batch_size=batch_size)
    else:
        order = sorted(range(len(inputs)), key=lambda i: -len(inputs[i]))
        vectors = np.empty((len(inputs), embedder.dim), dtype=np.float32)
        total = sum(len(t) for t in inputs) or 1
        done = 0
        step = max(batch_size, 1) * 8
        for start in range(0, len(order), step):
            part = order[start : start + step]
            vectors[part] = embedder.encode_documents([inputs[i] for i in part], batch_size=batch_size)
            done += sum(len(inputs[i]) for i in part)
            progress(done / total)
    return Vectors([p.id for p in passages], vectors[: len(texts)], sentence_ids, vectors[len(texts) :])
