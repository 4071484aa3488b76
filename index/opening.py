"""Opening the served index: one place that decides single node or cluster, read-only or writable,
and hands the index its ``Tuning`` (``index.served``).

``open_configured`` is what the server, the CLI, ``zhsearch mcp``, eval and the Ray router call:
the model and every setting from ``Settings``, applied once here, and again by the index itself
whenever it loads vectors anew.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

from .cluster.layout import is_cluster
from .cluster.local import open_in_process
from .cluster.router import ClusterIndex, Shards
from .collections import Collections, empty_index
from .errors import IndexNotFoundError, ModelError
from .models import Embedder, load_configured_embedder
from .models.batching import QueryBatcher
from .models.cache import DEFAULT_MODEL_NAME
from .models.span import SpanReader
from .retrieval.answering import SENTENCES, Answering
from .retrieval.calibration import shipped
from .retrieval.search import Searcher, serve_queries_single_threaded
from .retrieval.tagger import configure as configure_tagger
from .retrieval.tuning import Tuning
from .served import ServedIndex
from .settings import Settings
from .storage.record import folder
from .writing.live import LiveIndex


def open_index(
    index_dir: Path,
    embedder: Embedder,
    tuning: Tuning | None = None,
    *,
    writable: bool = False,
    follow: bool = True,
    shards: Shards | None = None,
    encode_workers: int | None = None,
) -> ServedIndex:
    """The index in ``index_dir``: a cluster's router when ``cluster.json`` is there, else one node.

    One node opens writable (``LiveIndex``: the only process serving it, which takes its lock)
    or read-only (``Searcher``: beside a server, pinned; ``follow``: loads again when another
    process wrote). A cluster's shards are reached through ``shards`` (Ray Serve handles), or
    opened in this process. ``encode_workers``: encode queries on that many micro-batching
    threads (servers) rather than in the caller's.
    """
    tuning = tuning or Tuning()
    index: ServedIndex
    if is_cluster(index_dir):
        if shards is None:
            index = open_in_process(index_dir, embedder, tuning, writable=writable)[0]
        else:
            index = ClusterIndex.open(index_dir, shards, embedder, tuning, writable=writable)
    elif shards is not None:
        raise IndexNotFoundError(f"no cluster index in {index_dir}; build one with `zhsearch build --shards N`")
    elif writable:
        index = LiveIndex.open(index_dir, embedder, tuning)
    else:
        index = Searcher.load(index_dir, embedder, tuning, follow=follow)
    if encode_workers is not None:
        index.batcher = QueryBatcher(embedder, workers=encode_workers)
    return index


def load_model(settings: Settings, *, model: str | None = None, serving: bool = False) -> Embedder:
    """The configured model; ``serving``: for a server (one intra-op thread per encoding worker, and
    FAISS without an OpenMP team: ``serve_queries_single_threaded``)."""
    if not serving:
        return load_configured_embedder(settings, model=model)
    embedder = load_configured_embedder(settings, model=model, threads=settings.threads or 1)
    if "torch" in sys.modules:  # the torch backend, or a model that needs it; the ONNX backends do not
        import torch

        # The workers, not the model, spread load over the cores.
        torch.set_num_threads(settings.threads or 1)
    serve_queries_single_threaded()
    return embedder


log = logging.getLogger("zhsearch")
_readers: dict[tuple[Path, int], SpanReader] = {}
_reading = threading.Lock()


def load_answering(settings: Settings, *, model: str = DEFAULT_MODEL_NAME, threads: int = 0) -> Answering:
    """The span reader and its calibration, as ``settings`` ask (``ZHSEARCH_ANSWERS``,
    ``ZHSEARCH_ANSWER_THRESHOLD``); one reader per process and cache folder. The calibration weighs
    the default model's cosines, so an index of another ``model`` answers with sentences, as it does
    without the converted default model (the log says why)."""
    configure_tagger(settings.cache_dir)  # every answer tags its question (required names), span reader or not
    sentences = Answering(None, SENTENCES.calibration, settings.answer_threshold)
    if settings.answers == "sentence":
        return sentences
    if model != DEFAULT_MODEL_NAME:
        log.info("answers are whole sentences: the span reader is calibrated for %s, not %s", DEFAULT_MODEL_NAME, model)
        return sentences
    key = (Path(settings.cache_dir), threads)
    with _reading:
        reader = _readers.get(key)
        if reader is None:
            try:
                reader = _readers[key] = SpanReader.load(key[0], threads=threads)
            except (ModelError, OSError) as exc:
                log.warning("answers are whole sentences: %s", exc)
                return sentences
    return Answering(reader, shipped(), settings.answer_threshold)


def open_configured(
    settings: Settings,
    *,
    index_dir: Path | None = None,
    model: str | None = None,
    embedder: Embedder | None = None,
    writable: bool = False,
    serving: bool = False,
    shards: Shards | None = None,
    answers: bool = True,
) -> ServedIndex:
    """``open_index`` with everything from ``settings``: the model (unless ``embedder`` is given), the
    index folder (unless ``index_dir`` is), the tuning, and for a server (``serving``) its threads and
    micro-batcher. ``answers=False``: no span reader (a command that only searches; asks answer with
    whole sentences)."""
    embedder = embedder or load_model(settings, model=model, serving=serving)
    index = open_index(
        index_dir or settings.index_dir,
        embedder,
        Tuning.of(settings),
        writable=writable,
        shards=shards,
        encode_workers=settings.encode_workers if serving else None,
    )
    if answers:
        index.answering = load_answering(settings, model=embedder.name)
    return index


def open_collections(settings: Settings, default: ServedIndex) -> Collections:
    """The server's collections: ``default`` (its ``index_dir``) and each under ``collections_dir``, opened
    writable with the default's model, micro-batcher, span reader and tuning (``index.collections``).

    Unless ``collections_dir`` is set, the collections live beside the default's index folder (an
    index opened elsewhere than ``settings.index_dir`` keeps its collections beside it).
    """
    tuning = Tuning.of(settings)
    root = settings.collections_dir
    if "collections_dir" not in settings.model_fields_set:
        home = default.path.parent.parent if default.path.parent.name == "generations" else default.path
        root = home.parent / "collections"

    def opener(path: Path) -> ServedIndex:
        index = open_index(path, default.embedder, tuning, writable=True)
        index.batcher = default.batcher
        index.answering = default.answering
        return index

    def release(index: ServedIndex) -> None:
        index.batcher = None  # the default's, shared: it stops with the default
        index.close()

    return Collections(root, default, opener, empty_index(default.embedder), release)


def has_index(index_dir: Path) -> bool:
    """Whether ``index_dir`` holds an index (one node's published generation, or a cluster)."""
    return is_cluster(index_dir) or folder.current(index_dir) is not None
