"""Writing one shard of a cluster index: an ordinary index generation, scored with the cluster's BM25 statistics.

A shard gets its documents, their passages (numbered as a single-node build of all
documents numbers them) and their vectors, already computed elsewhere (the Ray
build's embedding actors); it writes the SQLite store, the exact or HNSW vector
files and a BM25 index whose scores are those of the whole corpus
(``storage.lexical.stats``), then publishes the generation like ``zhsearch build``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..storage import dense
from ..storage.lexical import TOKENIZER, LexicalIndex
from ..storage.lexical.stats import STATS_FILE, CorpusStats
from ..storage.record import folder, store
from ..storage.record.manifest import Manifest
from ..text.normalize import PROFILE, dictionary_hash
from ..version import __version__
from ..writing.build import corpus_hash
from .layout import id_floor, shard_dir


@dataclass(frozen=True)
class ModelInfo:
    """What the shards' manifests record of the model (the writer needs no model loaded)."""

    name: str
    fingerprint: str
    dim: int


@dataclass(frozen=True)
class ShardReport:
    shard: int
    path: Path
    documents: int
    passages: int
    seconds: float


def write_shard(
    index_dir: Path,
    shard: int,
    shards: int,
    documents: Sequence[store.StoredDocument],
    passages: Sequence[store.StoredPassage],
    vectors: dense.Vectors,
    stats: CorpusStats,
    model: ModelInfo,
    chunking: dict[str, int],
    max_built_id: int,
) -> ShardReport:
    """Write and publish shard ``shard`` of ``shards`` under ``index_dir``."""
    began = time.perf_counter()
    target = shard_dir(index_dir, shard)
    held = folder.lock(target, "zhsearch build --ray")
    try:
        building = folder.new_generation(target)
        try:
            ordered = sorted(passages, key=lambda p: p.id)
            conn = store.connect(building / folder.STORE)
            try:
                with conn:
                    for doc in documents:
                        store.insert_document(conn, doc)
                    store.insert_passages(conn, ordered)
                conn.execute("PRAGMA journal_mode=DELETE")  # one plain file, like a single-node build
            finally:
                conn.close()
            vectors_index = dense.DenseIndex.for_size(model.dim, len(ordered), len(vectors.sentence_ids))
            vectors_index.add(vectors)
            vectors_index.save(building)
            LexicalIndex.build(ordered, stats).save(building / folder.LEXICAL)
            stats.save(building / STATS_FILE)
            Manifest(
                model=model.name,
                model_fingerprint=model.fingerprint,
                dim=model.dim,
                normalization=PROFILE,
                dictionary_hash=dictionary_hash(),
                chunking=chunking,
                passage_text=dense.EMBEDDED_TEXT,
                zhsearch_version=__version__,
                corpus_hash=corpus_hash(documents),
                built_at=datetime.now(UTC).isoformat(timespec="seconds"),
                documents=len(documents),
                passages=len(ordered),
                build_seconds=round(time.perf_counter() - began, 3),
                vector_index=vectors_index.kind,
                lexical=TOKENIZER,
                extra={"cluster": {"shard": shard, "shards": shards, "id_floor": id_floor(max_built_id, shard)}},
            ).write(building / folder.MANIFEST)
            path = folder.publish(target, building)
        except BaseException:
            folder.discard(building)
            raise
    finally:
        held.close()
    return ShardReport(shard, path, len(documents), len(ordered), round(time.perf_counter() - began, 3))
