"""How a cluster index lies on disk: ``cluster.json`` beside ``shards/000 … shards/N-1``.

Each shard folder is an ordinary index folder (generations, ``current``), so any
shard can be opened alone by ``Searcher.load`` or ``zhsearch serve``. A document
lives in shard ``shard_of(doc_id, N)``, a stable hash (not Python's ``hash``,
which changes per process). Passage ids are those a single-node build of the same
documents would give; a shard numbers its live writes from a range of its own
(``id_floor``), so ids never collide across shards.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..models import Embedder
from ..storage.record.manifest import check_model, read_versioned, write_json

CLUSTER_FILE = "cluster.json"
SHARDS = "shards"
STATS = "stats.json"
FORMAT_VERSION = 1
#: Ids each shard may number live writes with: sentence ids are passage id x 1024, below 2**63.
ID_RANGE = 2**36


def shard_of(doc_id: str, shards: int) -> int:
    """The shard that holds ``doc_id``: the first 8 bytes of its BLAKE2b hash, modulo ``shards``."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def shard_dir(index_dir: Path, shard: int) -> Path:
    return index_dir / SHARDS / f"{shard:03d}"


def id_floor(max_built_id: int, shard: int) -> int:
    """The first id ``shard`` gives a live write: above every built passage, in a range of its own."""
    return max_built_id + 1 + shard * ID_RANGE


def is_cluster(index_dir: Path) -> bool:
    return (index_dir / CLUSTER_FILE).exists()


@dataclass
class ClusterManifest:
    """``cluster.json``: the shards, how they were built, and where the global BM25 statistics are."""

    shards: int
    model: str
    model_fingerprint: str
    dim: int
    normalization: str
    dictionary_hash: str
    lexical: str
    documents: int
    passages: int
    max_passage_id: int
    built_at: str
    build_seconds: float
    #: The global BM25 statistics every shard scores with (also in each shard's lexical folder).
    statistics: str = STATS
    shard_documents: list[int] = field(default_factory=list)
    shard_passages: list[int] = field(default_factory=list)
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def write(self, index_dir: Path) -> None:
        write_json(index_dir / CLUSTER_FILE, asdict(self))

    @classmethod
    def read(cls, index_dir: Path) -> ClusterManifest:
        missing = f"no cluster index in {index_dir}; build one with `zhsearch build --ray`"
        return cls(**read_versioned(index_dir / CLUSTER_FILE, FORMAT_VERSION, "cluster", missing))

    def check_model(self, embedder: Embedder) -> None:
        """Refuse a model other than the one the shards were built with (``IndexMismatchError``)."""
        check_model((self.model, self.model_fingerprint, self.dim), (embedder.name, embedder.fingerprint, embedder.dim))
