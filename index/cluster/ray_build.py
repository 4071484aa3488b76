"""``zhsearch build --ray``: the sharded build as a Ray Data pipeline.

Stages (the functions of ``cluster.pipeline``):

1. map tasks clean, chunk and normalize the documents (the model's tokenizer counts tokens);
2. the driver numbers the passages from the per-document counts (a small array, broadcast);
3. an actor pool embeds them, one model per actor, documents sorted by length within a batch;
4. map tasks count the BM25 statistics of each block; the driver adds them up;
5. one task per shard writes it (``write_shard``), then the driver writes ``cluster.json``.

The index folder must be a path every node reads and writes the same (on one machine
a local folder; across machines a shared filesystem: docs/scale-out.md). Ray is
imported here only: the single-node path never loads it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..errors import InvalidInputError
from ..models import DOCUMENT_BATCH, Embedder, load_embedder
from ..settings import Settings
from ..storage.lexical.stats import CorpusStats
from ..text.chunk import ChunkConfig
from ..text.ingest import Document
from . import pipeline
from .pipeline import ClusterReport
from .write import ModelInfo

#: Every process that starts or joins a local Ray needs it: Ray then binds and advertises 127.0.0.1 only.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@dataclass(frozen=True)
class ModelSpec:
    """How a Ray worker loads the model (settings do not travel; these few strings do)."""

    model: str
    cache_dir: str
    backend: str | None = None
    threads: int = 1

    @classmethod
    def of(cls, settings: Settings, *, model: str | None = None) -> ModelSpec:
        """The model ``settings`` configure, as ``load_configured_embedder`` loads it (backend included,
        so a Ray build records the fingerprint a build in process records)."""
        backend = settings.backend if "backend" in settings.model_fields_set else None
        return cls(model or settings.model, str(settings.cache_dir), backend=backend, threads=1)

    def load(self) -> Embedder:
        return _load(self)

    def info(self) -> ModelInfo:
        """The model's name, fingerprint and dimension (from this process's copy)."""
        embedder = self.load()
        return ModelInfo(embedder.name, embedder.fingerprint, embedder.dim)


class LazyEmbedder:
    """The model a shard replica needs only for writes: the configured model's identity now (``info``,
    from the process that deploys: what the shard's manifest is checked against), its weights on the
    first write (a replica that only searches never holds them: the router encodes queries)."""

    def __init__(self, spec: ModelSpec, info: ModelInfo) -> None:
        self.spec = spec
        self.name = info.name
        self.fingerprint = info.fingerprint
        self.dim = info.dim

    @property
    def _model(self) -> Embedder:
        return self.spec.load()

    @property
    def max_tokens(self) -> int:
        return self._model.max_tokens

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._model.encode_queries(texts)

    def encode_documents(self, texts: Sequence[str], batch_size: int = DOCUMENT_BATCH) -> np.ndarray:
        return self._model.encode_documents(texts, batch_size)

    def count_tokens(self, text: str) -> int:
        return self._model.count_tokens(text)


_loaded: dict[ModelSpec, Embedder] = {}
_loading = threading.Lock()


def _load(spec: ModelSpec) -> Embedder:
    """One model per spec and process: threads asking at once wait for the first to load it."""
    with _loading:
        found = _loaded.get(spec)
        if found is None:
            found = _loaded[spec] = load_embedder(
                spec.model, Path(spec.cache_dir), backend=spec.backend, threads=spec.threads
            )
        return found


def loopback() -> None:
    """Before Ray is imported: a local Ray binds and advertises 127.0.0.1 only (unless the environment says)."""
    for key, value in LOOPBACK_ENV.items():
        os.environ.setdefault(key, value)


def connect_ray(address: str | None) -> None:
    """Join the cluster at ``address`` (or start a local Ray on this machine, on 127.0.0.1 only)."""
    loopback()
    import ray

    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")


def _rows(batch: dict[str, Any]) -> list[dict[str, Any]]:
    keys = list(batch)
    return [dict(zip(keys, values, strict=True)) for values in zip(*(batch[k] for k in keys), strict=True)]


def _columns(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        values = [row[key] for row in rows]
        if values and isinstance(values[0], int | np.integer):
            out[key] = np.asarray(values, np.int64)
        else:
            column = np.empty(len(values), dtype=object)
            column[:] = values
            out[key] = column
    return out


#: Documents per embedding call at most: longer calls sort more texts by length together.
MAX_DOCUMENTS_PER_BATCH = 64
#: Calls per actor at least, when the corpus allows: 584 passages in 3 calls of 64 documents kept
#: one of 2 actors busy alone for a third of the embedding stage.
CALLS_PER_ACTOR = 4


def per_batch(documents: int, actors: int) -> int:
    """Documents per embedding call: ``CALLS_PER_ACTOR`` calls for every actor, at most ``MAX_DOCUMENTS_PER_BATCH``."""
    return max(1, min(MAX_DOCUMENTS_PER_BATCH, -(-documents // (actors * CALLS_PER_ACTOR))))


_PREPARED = ["index", "shard", "document", "passages", "count", "chars"]
_EMBEDDED = [*_PREPARED, "vectors"]


def _prepare(batch: dict[str, Any], spec: ModelSpec, config: dict[str, int]) -> dict[str, Any]:
    chunking = ChunkConfig(**{k: v for k, v in config.items() if k != "version"})
    return _columns(pipeline.prepare(_rows(batch), chunking, spec.load()), _PREPARED)


class _Embed:
    """One model per actor; numbers the passages, then embeds a batch of documents."""

    def __init__(self, spec: ModelSpec, firsts: np.ndarray, batch_size: int) -> None:
        self.embedder = spec.load()
        self.firsts = firsts
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        numbered = pipeline.number(_rows(batch), self.firsts)
        return _columns(pipeline.embed(numbered, self.embedder, self.batch_size), _EMBEDDED)


def _statistics(batch: dict[str, Any]) -> dict[str, Any]:
    return _columns([{"stats": pipeline.statistics(_rows(batch)).as_dict()}], ["stats"])


def _write(batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    rows = _rows(batch)
    shard = int(rows[0]["shard"])
    report = pipeline.write(rows=rows, shard=shard, **kwargs)
    return _columns([{"shard": shard, "report": report}], ["shard", "report"])


def build_on_ray(
    documents: Sequence[Document],
    index_dir: Path,
    spec: ModelSpec,
    shards: int,
    *,
    address: str | None = None,
    config: ChunkConfig | None = None,
    batch_size: int = DOCUMENT_BATCH,
    documents_per_batch: int | None = None,
    concurrency: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ClusterReport:
    """Build a cluster index of ``shards`` shards in ``index_dir`` on the Ray cluster at ``address``.

    ``concurrency``: embedding actors (default: one per CPU of the cluster); ``documents_per_batch``:
    documents an actor embeds per call (default: enough calls for every actor to get several, so no
    actor is left with the last big batch alone; at most ``MAX_DOCUMENTS_PER_BATCH``);
    ``batch_size``: texts per model call.
    """
    loopback()
    import ray
    import ray.data

    if shards < 1:
        raise InvalidInputError("--shards must be at least 1")
    if not documents:
        raise InvalidInputError("no documents to index")
    pipeline.check_target(index_dir)
    documents = pipeline.with_live_documents(documents, index_dir)
    began = time.perf_counter()
    config = config or ChunkConfig()
    connect_ray(address)
    context = ray.data.DataContext.get_current()
    # with a caller that shows progress, Ray Data's own bars show each stage's rows as they go
    context.enable_progress_bars = progress is not None
    if progress is None:
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    rows = pipeline.document_rows(documents, shards)
    actors = concurrency or max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
    if documents_per_batch is None:
        documents_per_batch = per_batch(len(rows), actors)
    say = progress or (lambda stage, done, total: None)
    say("prepare", 0, len(rows))
    prepared = (
        ray.data.from_items(rows)
        .map_batches(
            cast(Any, _prepare), fn_kwargs={"spec": spec, "config": config.as_dict()}, batch_size=documents_per_batch
        )
        .materialize()
    )
    counts = prepared.select_columns(["index", "count"]).take_all()
    firsts = pipeline.first_ids((int(r["index"]), int(r["count"])) for r in counts)
    max_id = int(sum(int(r["count"]) for r in counts))
    say("prepare", len(rows), len(rows))
    say("embed", 0, max_id)
    embedded = prepared.map_batches(
        _Embed,
        fn_constructor_kwargs={"spec": spec, "firsts": firsts, "batch_size": batch_size},
        batch_size=documents_per_batch,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=1,
    ).materialize()
    say("embed", max_id, max_id)
    parts = embedded.map_batches(_statistics, batch_size=1024).take_all()
    stats = CorpusStats.total(CorpusStats.from_dict(row["stats"]) for row in parts)
    embedder_info = spec.info()
    kwargs = {
        "index_dir": index_dir,
        "shards": shards,
        "stats": stats,
        "model": embedder_info,
        "chunking": config.as_dict(),
        "max_built_id": max_id,
    }
    say("shards", 0, shards)
    written = embedded.groupby("shard", num_partitions=shards).map_groups(_write, fn_kwargs=kwargs).take_all()
    reports = [row["report"] for row in written]
    for shard in sorted(set(range(shards)) - {r.shard for r in reports}):  # a shard no document hashed to
        reports.append(pipeline.write(rows=[], shard=shard, **kwargs))  # type: ignore[arg-type]
    say("shards", shards, shards)
    return pipeline.publish(index_dir, shards, embedder_info, stats, reports, max_id, began)
