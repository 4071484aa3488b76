"""Micro-batching of query encoding for a server under concurrent load.

Requests put their query on a queue; worker threads take one, then drain
whatever else is already waiting (up to ``max_batch``) and encode them in one
model call. Nothing waits for a batch to fill, so a lone query pays no extra
latency, while queries that arrive together share one forward pass instead of
queueing behind one another. With one intra-op thread per worker and one
worker per core, two batches run in parallel on a 2-core machine.

A failed batch does not fail its neighbours: each query in it is encoded again
alone, and only a query that fails alone gets the error. Failures are logged
with the request ids of the queries involved (``index.tracing``).
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future

import numpy as np

from .. import tracing
from ..errors import ZhsearchError
from .base import Embedder

log = logging.getLogger("zhsearch.batching")


class _Job:
    __slots__ = ("text", "future", "request_id")

    def __init__(self, text: str, request_id: str) -> None:
        self.text = text
        self.request_id = request_id
        self.future: Future[np.ndarray] = Future()


class QueryBatcher:
    def __init__(self, embedder: Embedder, *, workers: int = 2, max_batch: int = 32) -> None:
        self._embedder = embedder
        self._queue: queue.Queue[_Job | None] = queue.Queue()  # None stops one worker
        self._max_batch = max_batch
        self._threads = [
            threading.Thread(target=self._work, name=f"zhsearch-encode-{i}", daemon=True) for i in range(workers)
        ]
        #: Batches that failed together and were encoded one query at a time (counted under a lock:
        #: several workers may retry at once).
        self.retried_batches = 0
        self._counting = threading.Lock()
        for thread in self._threads:
            thread.start()

    def encode(self, text: str) -> np.ndarray:
        """The query vector of ``text`` (shape ``(1, dim)``), encoded in whatever batch it lands in."""
        return self.submit(text).result()

    def submit(self, text: str) -> Future[np.ndarray]:
        """Queue ``text`` for encoding; the caller can do other work before asking for the result."""
        job = _Job(text, tracing.request_id.get())
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=10)

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop_after = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop_after = True
                    break
                batch.append(item)
            self._encode(batch)
            if stop_after:
                return

    def _encode(self, batch: list[_Job]) -> None:
        try:
            vectors = self._embedder.encode_queries([job.text for job in batch])
        except Exception as exc:  # retried alone below, then handed to the caller
            if len(batch) == 1:
                self._fail(batch[0], exc)
                return
            with self._counting:
                self.retried_batches += 1
            log.warning(
                "encoding a batch of %d queries failed (%s: %s); encoding each alone [request_ids=%s]",
                len(batch),
                type(exc).__name__,
                exc,
                ",".join(job.request_id for job in batch),
            )
            for job in batch:
                self._encode([job])
            return
        for i, job in enumerate(batch):
            job.future.set_result(vectors[i : i + 1])

    @staticmethod
    def _fail(job: _Job, exc: Exception) -> None:
        if not isinstance(exc, ZhsearchError):  # not a refusal the library meant: a bug
            log.error("encoding a query failed [request_id=%s]", job.request_id, exc_info=exc)
        job.future.set_exception(exc)
