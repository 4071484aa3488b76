import threading

import numpy as np

from index import HashingEmbedder
from index.models.batching import QueryBatcher


class SlowEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.gate = threading.Event()

    def encode_queries(self, texts):
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
    for thread in threads:
        thread.start()
    while batcher._queue.qsize() < 8:  # one job is held by the worker at the gate, eight wait
        threading.Event().wait(0.01)
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
        while not batcher._queue.empty():  # the first job is held by the worker at the gate
            threading.Event().wait(0.01)
        for thread in threads[1:]:
            thread.start()
        while batcher._queue.qsize() < 3:
            threading.Event().wait(0.01)
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
