"""A cluster's shards opened in this process: what tests and a Ray-less machine use.

``LocalShards`` calls each shard's replica on a thread of its own, so a request
asks every shard at once, as the Ray router does with its deployments.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from ..models import Embedder
from ..retrieval.tuning import Tuning
from .layout import ClusterManifest, shard_dir
from .router import ClusterIndex
from .shard import ShardReplica


class LocalShards:
    """Replicas in this process, one per shard (``router.Shards``)."""

    def __init__(self, replicas: Sequence[ShardReplica]) -> None:
        self.replicas = list(replicas)
        self.count = len(self.replicas)
        self._pool = ThreadPoolExecutor(max_workers=max(2, self.count), thread_name_prefix="shard")

    def call(self, calls: Mapping[int, tuple[str, tuple[Any, ...]]]) -> dict[int, Any]:
        futures = {
            shard: self._pool.submit(getattr(self.replicas[shard], m), *args) for shard, (m, args) in calls.items()
        }
        wait(futures.values())  # every call ends before one's error is raised (a batch undoes its writes after)
        return {shard: future.result() for shard, future in sorted(futures.items())}

    def close(self) -> None:
        """Close every replica (once; later calls do nothing)."""
        replicas, self.replicas = self.replicas, []
        self._pool.shutdown()
        for replica in replicas:
            replica.close()


def open_in_process(
    index_dir: Path, embedder: Embedder, tuning: Tuning | None = None, *, writable: bool = True
) -> tuple[ClusterIndex, LocalShards]:
    """The cluster in ``index_dir`` with every shard opened here (close the shards when done)."""
    manifest = ClusterManifest.read(index_dir)
    manifest.check_model(embedder)
    replicas = []
    try:
        for s in range(manifest.shards):
            replicas.append(ShardReplica(shard_dir(index_dir, s), embedder, s, tuning))
    except BaseException:
        for replica in replicas:
            replica.close()
        raise
    shards = LocalShards(replicas)
    cluster = ClusterIndex(index_dir, manifest, shards, embedder, tuning, writable=writable)
    weakref.finalize(cluster, shards.close)  # a caller that never closes it (a CLI command) leaks no files
    return cluster, shards
