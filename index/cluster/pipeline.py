"""The steps of a sharded build, as plain functions over batches of rows.

``cluster.ray_build`` runs them as a Ray Data pipeline (map tasks, an actor pool
for the model, one task per shard); ``build_in_process`` runs the same steps in
this process, for tests and for a machine without Ray. Either way the passages
are numbered exactly as a single-node ``build_index`` of the same documents
numbers them (documents in input order, passages in order), and each shard's
BM25 is scored with the statistics of every shard together.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..models import DOCUMENT_BATCH, Embedder
from ..storage import dense
from ..storage.lexical import TOKENIZER, LexicalIndex
from ..storage.lexical.stats import CorpusStats
from ..storage.record import folder
from ..text.chunk import ChunkConfig
from ..text.clean import parse
from ..text.ingest import Document
from ..text.normalize import PROFILE, dictionary_hash
from ..writing.build import live_documents
from ..writing.embedding import embed as embed_passages
from ..writing.prepare import passages, stored_document
from .layout import SHARDS, STATS, ClusterManifest, is_cluster, shard_dir, shard_of
from .write import ModelInfo, ShardReport, write_shard

#: A prepared row: one document, its shard and its passages (numbered from 0 until ``number``).
Row = dict[str, Any]


def document_rows(documents: Sequence[Document], shards: int) -> list[Row]:
    """The build's input rows: each document with its position in the input and its shard."""
    seen: set[str] = set()
    for doc in documents:
        if doc.id in seen:
            raise InvalidInputError(f"document id {doc.id!r} appears more than once")
        seen.add(doc.id)
    return [{"index": i, "shard": shard_of(doc.id, shards), "doc": doc} for i, doc in enumerate(documents)]


def prepare(rows: Iterable[Row], config: ChunkConfig, embedder: Embedder) -> list[Row]:
    """Clean, chunk and normalize each document (``embedder`` counts tokens; it embeds nothing here)."""
    out = []
    for row in rows:
        doc: Document = row["doc"]
        layout = parse(doc)
        found = passages(doc, layout, config, embedder, 0)
        out.append(
            {
                "index": row["index"],
                "shard": row["shard"],
                "document": stored_document(doc, layout),
                "passages": found,
                "count": len(found),
                "chars": len(doc.text),
            }
        )
    return out


def first_ids(counts: Iterable[tuple[int, int]]) -> np.ndarray:
    """Each document's first passage id, by input position, from (position, passage count) pairs."""
    pairs = sorted(counts)
    sizes = np.asarray([count for _, count in pairs], np.int64)
    return np.concatenate([[1], 1 + np.cumsum(sizes)[:-1]]) if len(sizes) else np.zeros(0, np.int64)


def number(rows: Iterable[Row], firsts: np.ndarray) -> list[Row]:
    """The rows with their passages numbered as a single-node build numbers them."""
    out = []
    for row in rows:
        first = int(firsts[row["index"]])
        numbered = [replace(p, id=first + p.ordinal) for p in row["passages"]]
        out.append({**row, "passages": numbered})
    return out


def embed(rows: Sequence[Row], embedder: Embedder, batch_size: int = DOCUMENT_BATCH) -> list[Row]:
    """The rows with their passages' vectors (``dense.blob_rows``), documents longest first so batches pad less."""
    ordered = sorted(rows, key=lambda row: -row["chars"])
    every = [p for row in ordered for p in row["passages"]]
    blobs = {pid: (a, b) for pid, a, b in dense.blob_rows(embed_passages(every, embedder, batch_size))}
    return [{**row, "vectors": [blobs[p.id] for p in row["passages"]]} for row in ordered]


def statistics(rows: Iterable[Row]) -> CorpusStats:
    """The BM25 statistics of the rows' passages (they add up over batches: ``CorpusStats.total``)."""
    return LexicalIndex.field_stats(p for row in rows for p in row["passages"])


def write(
    index_dir: Path,
    shard: int,
    shards: int,
    rows: Sequence[Row],
    stats: CorpusStats,
    model: ModelInfo,
    chunking: dict[str, int],
    max_built_id: int,
) -> ShardReport:
    """Write shard ``shard`` from its embedded rows."""
    ordered = sorted(rows, key=lambda row: row["index"])
    blobs = {p.id: vec for row in ordered for p, vec in zip(row["passages"], row["vectors"], strict=True)}
    return write_shard(
        index_dir,
        shard,
        shards,
        [row["document"] for row in ordered],
        [p for row in ordered for p in row["passages"]],
        dense.from_blobs(blobs, model.dim),
        stats,
        model,
        chunking,
        max_built_id,
    )


@dataclass(frozen=True, kw_only=True)
class ClusterReport:
    path: Path
    shards: int
    documents: int
    passages: int
    seconds: float
    shard_reports: list[ShardReport]


def publish(
    index_dir: Path,
    shards: int,
    model: ModelInfo,
    stats: CorpusStats,
    reports: Sequence[ShardReport],
    max_built_id: int,
    began: float,
) -> ClusterReport:
    """Write ``cluster.json`` (and the global statistics beside it) once every shard is published."""
    reports = sorted(reports, key=lambda r: r.shard)
    stats.save(index_dir / STATS)
    for old in sorted((index_dir / SHARDS).glob("[0-9][0-9][0-9]")):  # shards of an earlier build with more
        if int(old.name) >= shards:
            shutil.rmtree(old, ignore_errors=True)
    seconds = round(time.perf_counter() - began, 3)
    ClusterManifest(
        shards=shards,
        model=model.name,
        model_fingerprint=model.fingerprint,
        dim=model.dim,
        normalization=PROFILE,
        dictionary_hash=dictionary_hash(),
        lexical=TOKENIZER,
        documents=sum(r.documents for r in reports),
        passages=sum(r.passages for r in reports),
        max_passage_id=max_built_id,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_seconds=seconds,
        shard_documents=[r.documents for r in reports],
        shard_passages=[r.passages for r in reports],
    ).write(index_dir)
    return ClusterReport(
        path=index_dir,
        shards=shards,
        documents=sum(r.documents for r in reports),
        passages=sum(r.passages for r in reports),
        seconds=seconds,
        shard_reports=list(reports),
    )


def check_target(index_dir: Path) -> None:
    """Refuse to write a cluster over a single-node index (or the other way round)."""
    if folder.current(index_dir) is not None:
        raise InvalidInputError(f"{index_dir} holds a single-node index; build the cluster into another folder")


def with_live_documents(documents: Sequence[Document], index_dir: Path) -> list[Document]:
    """``documents`` and those added through the API to the cluster in ``index_dir`` (a rebuild keeps them),
    as ``zhsearch build`` keeps a single index's."""
    found = list(documents)
    if not is_cluster(index_dir):
        return found
    taken = {doc.id for doc in found}
    for shard in range(ClusterManifest.read(index_dir).shards):
        kept = live_documents(shard_dir(index_dir, shard), taken)
        taken.update(doc.id for doc in kept)
        found.extend(kept)
    return found


def build_in_process(
    documents: Sequence[Document],
    index_dir: Path,
    embedder: Embedder,
    shards: int,
    *,
    config: ChunkConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ClusterReport:
    """Every step of the sharded build in this process (what ``ray_build`` distributes)."""
    if shards < 1:
        raise InvalidInputError("--shards must be at least 1")
    if not documents:
        raise InvalidInputError("no documents to index")
    check_target(index_dir)
    began = time.perf_counter()
    config = config or ChunkConfig()
    documents = with_live_documents(documents, index_dir)
    prepared = prepare(document_rows(documents, shards), config, embedder)
    firsts = first_ids((row["index"], row["count"]) for row in prepared)
    numbered = number(prepared, firsts)
    max_id = sum(row["count"] for row in numbered)
    embedded = embed(numbered, embedder)
    stats = statistics(embedded)
    model = ModelInfo(embedder.name, embedder.fingerprint, embedder.dim)
    reports = []
    for shard in range(shards):
        reports.append(
            write(
                index_dir,
                shard,
                shards,
                [r for r in embedded if r["shard"] == shard],
                stats,
                model,
                config.as_dict(),
                max_id,
            )
        )
        if progress:
            progress("shards", shard + 1, shards)
    return publish(index_dir, shards, model, stats, reports, max_id, began)
