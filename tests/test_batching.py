import threading
import time

import numpy as np

from index import HashingEmbedder
from index.models.batching import QueryBatcher


def wait_until(condition, timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail the test instead of hanging."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the batcher")
        time.sleep(0.01)


class SlowEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.gate = threading.Event()
        self.entered = threading.Event()

    def encode_queries(self, texts):
        self.entered.set()
        self.gate.wait(5)
        self.calls.append(len(texts))
        return super().encode_queries(texts)


def test_results_match_direct_encoding() -> None:
    embedder = HashingEmbedder()
    batcher = QueryBatcher(embedder, workers=2)
    try:
        for text in ("黃浦", "互联网诊疗", "舊區改造"):
            np.testing.assert_allclose(batcher.encode(text), embedder.encode_queries([text]))
    finally:
        batcher.close()


def test_queries_arriving_together_share_a_call() -> None:
    embedder = SlowEmbedder()
    batcher = QueryBatcher(embedder, workers=1)
    results: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        results[i] = batcher.encode(f"問題{i}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(9)]
    threads[0].start()
    wait_until(embedder.entered.is_set)  # the first job is held by the worker at the gate
    for thread in threads[1:]:
        thread.start()
    wait_until(lambda: batcher._queue.qsize() >= 8)  # eight wait behind it
    embedder.gate.set()
    for thread in threads:
        thread.join(10)
    batcher.close()
    assert len(results) == 9
    assert embedder.calls[0] == 1 and sum(embedder.calls) == 9 and max(embedder.calls) == 8
    for i, vector in results.items():
        np.testing.assert_allclose(vector, HashingEmbedder().encode_queries([f"問題{i}"]))


def test_errors_reach_every_caller() -> None:
    class Broken(HashingEmbedder):
        def encode_queries(self, texts):
            raise RuntimeError("model failed")

    batcher = QueryBatcher(Broken(), workers=1)
    try:
        try:
            batcher.encode("x")
        except RuntimeError as exc:
            assert "model failed" in str(exc)
        else:
            raise AssertionError("expected the model's error")
    finally:
        batcher.close()


def test_a_failed_batch_is_retried_query_by_query(caplog) -> None:
    """One bad query (or a transient failure of the whole batch) fails only itself."""

    class FailsOnPoison(SlowEmbedder):
        def encode_queries(self, texts):
            if "毒" in "".join(texts):
                self.calls.append(len(texts))
                raise RuntimeError("cannot encode 毒")
            return super().encode_queries(texts)

    embedder = FailsOnPoison()
    batcher = QueryBatcher(embedder, workers=1)
    outcomes: dict[str, object] = {}

    def run(text: str, request_id: str) -> None:
        from index import tracing

        tracing.request_id.set(request_id)
        try:
            outcomes[text] = batcher.encode(text)
        except RuntimeError as exc:
            outcomes[text] = exc

    texts = ["起", "黃浦", "毒藥", "互联网"]
    threads = [threading.Thread(target=run, args=(t, f"req-{i}")) for i, t in enumerate(texts)]
    with caplog.at_level("WARNING", logger="zhsearch.batching"):
        threads[0].start()
        wait_until(embedder.entered.is_set)  # the first job is held by the worker at the gate
        for thread in threads[1:]:
            thread.start()
        wait_until(lambda: batcher._queue.qsize() >= 3)
        embedder.gate.set()
        for thread in threads:
            thread.join(10)
    batcher.close()
    assert isinstance(outcomes["毒藥"], RuntimeError)
    for text in ("起", "黃浦", "互联网"):
        np.testing.assert_allclose(outcomes[text], HashingEmbedder().encode_queries([text]))
    assert batcher.retried_batches == 1
    retry = next(r for r in caplog.records if "encoding each alone" in r.getMessage())
    assert "req-1" in retry.getMessage() and "req-2" in retry.getMessage() and "req-3" in retry.getMessage()
    failed = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(failed) == 1 and "req-2" in failed[0].getMessage() and failed[0].exc_info
