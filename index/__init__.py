"""zhsearch: Chinese semantic search over mixed-script documents, on a CPU.

The library's public face: what ``service`` (and any other caller) imports, and
nothing else of ``index`` is. It imports neither the web framework nor the CLI
framework. Names load on first use (``__getattr__``): ``import index`` costs only
the modules behind the names a caller uses.

Start at ``open_configured`` (or ``open_index``): it returns a ``ServedIndex``
(``index.served``), one node or a cluster, read-only or writable.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .version import __version__

#: Each public name, and the module that defines it.
_EXPORTS = {
    "ConflictError": ".errors",
    "DocumentError": ".errors",
    "IndexBusyError": ".errors",
    "IndexMismatchError": ".errors",
    "IndexNotFoundError": ".errors",
    "IndexUnavailableError": ".errors",
    "InvalidInputError": ".errors",
    "ModelError": ".errors",
    "NotFoundError": ".errors",
    "ReadOnlyIndexError": ".errors",
    "ShardsUnavailableError": ".errors",
    "TooLargeError": ".errors",
    "UnsupportedFormatError": ".errors",
    "ZhsearchError": ".errors",
    "Settings": ".settings",
    "get_settings": ".settings",
    "request_id": ".tracing",
    "Backend": ".choices",
    "Embedder": ".models",
    "HashingEmbedder": ".models",
    "FastTokenizer": ".models.onnx",
    "load_configured_embedder": ".models",
    "load_embedder": ".models",
    "ensure_model": ".models.convert",
    "ensure_onnx": ".models.onnx_export",
    "ChunkConfig": ".text.chunk",
    "Document": ".text.ingest",
    "JsonFields": ".text.ingest",
    "load_paths": ".text.ingest",
    "read_paths": ".text.ingest",
    "convert_script": ".text.normalize",
    "normalize": ".text.normalize",
    "highlights": ".text.highlight",
    "pages_of": ".text.formats",
    "parse_isolated": ".text.sandbox",
    "StoredDocument": ".storage.record.store",
    "StoredPassage": ".storage.record.store",
    "MAX_K": ".retrieval.query",
    "MAX_QUERY_CHARS": ".retrieval.query",
    "Mode": ".choices",
    "QueryLimits": ".retrieval.query",
    "Hit": ".retrieval.search",
    "SearchResult": ".retrieval.search",
    "Searcher": ".retrieval.search",
    "DocumentInfo": ".retrieval.snapshot",
    "Filters": ".retrieval.snapshot",
    "Tuning": ".retrieval.tuning",
    "Answer": ".retrieval.answer",
    "AskResult": ".retrieval.answer",
    "ask": ".retrieval.answer",
    "warm_up": ".retrieval.answer",
    "ensure_tagger": ".retrieval.tagger",
    "BuildReport": ".writing.build",
    "build_index": ".writing.build",
    "LiveIndex": ".writing.live",
    "SyncReport": ".writing.sync",
    "sync_folder": ".writing.sync",
    "watch_folder": ".writing.sync",
    "build_empty": ".writing.build",
    "WriteResult": ".retrieval.snapshot",
    "new_document_id": ".writing.live",
    "ServedIndex": ".served",
    "has_index": ".opening",
    "open_collections": ".opening",
    "Collections": ".collections",
    "CollectionInfo": ".collections",
    "DEFAULT_COLLECTION": ".collections",
    "collection_dir": ".collections",
    "collection_folders": ".collections",
    "check_access": ".access",
    "readable": ".access",
    "load_model": ".opening",
    "open_configured": ".opening",
    "open_index": ".opening",
    "is_cluster": ".cluster.layout",
    "loopback": ".cluster.ray_build",
    "serve_queries_single_threaded": ".retrieval.search",
    "build_in_process": ".cluster.pipeline",
    "LOOPBACK_ENV": ".cluster.ray_build",
    "LazyEmbedder": ".cluster.ray_build",
    "ModelSpec": ".cluster.ray_build",
    "build_on_ray": ".cluster.ray_build",
    "connect_ray": ".cluster.ray_build",
    "ClusterManifest": ".cluster.layout",
    "shard_dir": ".cluster.layout",
    "ClusterIndex": ".cluster.router",
    "ShardReplica": ".cluster.shard",
    "EVAL_MODES": ".choices",
    "AnswerReport": ".evaluation.answers",
    "EvalReport": ".evaluation.evaluate",
    "EvalSet": ".evaluation.evaluate",
    "Level": ".choices",
    "evaluate": ".evaluation.evaluate",
    "evaluate_answers": ".evaluation.answers",
    "load_eval_set": ".evaluation.evaluate",
    "sample": ".evaluation.evaluate",
    "NaiveDense": ".evaluation.naive",
    "coverage_notes": ".evaluation.report",
    "metrics_table": ".evaluation.report",
    "write_report": ".evaluation.report",
    "split_set": ".evaluation.splits",
    "QUERY_SCRIPTS": ".choices",
    "Split": ".choices",
    "load_squad": ".evaluation.squad",
}

if _TYPE_CHECKING:
    from .access import check_access, readable
    from .choices import EVAL_MODES, QUERY_SCRIPTS, Backend, Level, Mode, Split
    from .cluster.layout import ClusterManifest, is_cluster, shard_dir
    from .cluster.pipeline import build_in_process
    from .cluster.ray_build import LOOPBACK_ENV, LazyEmbedder, ModelSpec, build_on_ray, connect_ray, loopback
    from .cluster.router import ClusterIndex
    from .cluster.shard import ShardReplica
    from .collections import DEFAULT_COLLECTION, CollectionInfo, Collections, collection_dir, collection_folders
    from .errors import (
        ConflictError,
        DocumentError,
        IndexBusyError,
        IndexMismatchError,
        IndexNotFoundError,
        IndexUnavailableError,
        InvalidInputError,
        ModelError,
        NotFoundError,
        ReadOnlyIndexError,
        ShardsUnavailableError,
        TooLargeError,
        UnsupportedFormatError,
        ZhsearchError,
    )
    from .evaluation.answers import AnswerReport, evaluate_answers
    from .evaluation.evaluate import (
        EvalReport,
        EvalSet,
        evaluate,
        load_eval_set,
        sample,
    )
    from .evaluation.naive import NaiveDense
    from .evaluation.report import coverage_notes, metrics_table, write_report
    from .evaluation.splits import split_set
    from .evaluation.squad import load_squad
    from .models import Embedder, HashingEmbedder, load_configured_embedder, load_embedder
    from .models.convert import ensure_model
    from .models.onnx import FastTokenizer
    from .models.onnx_export import ensure_onnx
    from .opening import has_index, load_model, open_collections, open_configured, open_index
    from .retrieval.answer import Answer, AskResult, ask, warm_up
    from .retrieval.query import MAX_K, MAX_QUERY_CHARS, QueryLimits
    from .retrieval.search import Hit, Searcher, SearchResult, serve_queries_single_threaded
    from .retrieval.snapshot import DocumentInfo, Filters, WriteResult
    from .retrieval.tagger import ensure_tagger
    from .retrieval.tuning import Tuning
    from .served import ServedIndex
    from .settings import Settings, get_settings
    from .storage.record.store import StoredDocument, StoredPassage
    from .text.chunk import ChunkConfig
    from .text.formats import pages_of
    from .text.highlight import highlights
    from .text.ingest import Document, JsonFields, load_paths, read_paths
    from .text.normalize import convert_script, normalize
    from .text.sandbox import parse_isolated
    from .tracing import request_id
    from .writing.build import BuildReport, build_empty, build_index
    from .writing.live import LiveIndex, new_document_id
    from .writing.sync import SyncReport, sync_folder, watch_folder

__all__ = [
    "__version__",
    "Answer",
    "AnswerReport",
    "AskResult",
    "Backend",
    "BuildReport",
    "ChunkConfig",
    "CollectionInfo",
    "Collections",
    "DEFAULT_COLLECTION",
    "ClusterIndex",
    "ClusterManifest",
    "ConflictError",
    "Document",
    "DocumentError",
    "DocumentInfo",
    "EVAL_MODES",
    "Embedder",
    "EvalReport",
    "EvalSet",
    "Filters",
    "FastTokenizer",
    "HashingEmbedder",
    "Hit",
    "IndexBusyError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexUnavailableError",
    "InvalidInputError",
    "JsonFields",
    "LOOPBACK_ENV",
    "LazyEmbedder",
    "Level",
    "LiveIndex",
    "MAX_K",
    "MAX_QUERY_CHARS",
    "Mode",
    "ModelError",
    "ModelSpec",
    "NaiveDense",
    "NotFoundError",
    "QUERY_SCRIPTS",
    "QueryLimits",
    "ReadOnlyIndexError",
    "SearchResult",
    "Searcher",
    "ServedIndex",
    "Settings",
    "ShardReplica",
    "ShardsUnavailableError",
    "Split",
    "StoredDocument",
    "StoredPassage",
    "SyncReport",
    "TooLargeError",
    "Tuning",
    "UnsupportedFormatError",
    "WriteResult",
    "ZhsearchError",
    "ask",
    "build_empty",
    "build_in_process",
    "build_index",
    "build_on_ray",
    "check_access",
    "collection_dir",
    "collection_folders",
    "connect_ray",
    "convert_script",
    "coverage_notes",
    "ensure_model",
    "ensure_onnx",
    "ensure_tagger",
    "evaluate",
    "evaluate_answers",
    "get_settings",
    "has_index",
    "highlights",
    "is_cluster",
    "load_configured_embedder",
    "load_embedder",
    "load_eval_set",
    "load_model",
    "load_paths",
    "load_squad",
    "loopback",
    "metrics_table",
    "new_document_id",
    "normalize",
    "open_collections",
    "open_configured",
    "open_index",
    "pages_of",
    "parse_isolated",
    "read_paths",
    "readable",
    "request_id",
    "sample",
    "serve_queries_single_threaded",
    "shard_dir",
    "split_set",
    "sync_folder",
    "warm_up",
    "watch_folder",
    "write_report",
]


def __getattr__(name: str) -> _Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'index' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
