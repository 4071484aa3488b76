"""The layered vector index against a plain one given the same writes (issue 15)."""

import numpy as np
import pytest

from index.storage.dense.layered import LayeredIndex
from index.storage.dense.vectors import VectorIndex

DIM = 16


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _plain(ids: list[int], vectors: np.ndarray, hnsw: bool) -> VectorIndex:
    index = VectorIndex.for_size(DIM, 10**9 if hnsw else 0)
    index.add(ids, vectors)
    return index


@pytest.mark.parametrize("hnsw", [False, True])
def test_layered_writes_match_a_plain_index(hnsw: bool) -> None:
    rng = np.random.default_rng(7)
    ids = list(range(0, 600, 2))
    vectors = _unit(rng, len(ids))
    live = dict(zip(ids, vectors, strict=True))
    layered = LayeredIndex(_plain(ids, vectors, hnsw))
    snapshots = []
    next_id = 1001
    for step in range(40):
        layered = layered.copy()
        new = list(range(next_id, next_id + int(rng.integers(1, 30))))
        next_id += len(new)
        fresh = _unit(rng, len(new))
        layered.add(new, fresh)
        live.update(zip(new, fresh, strict=True))
        doomed = [int(i) for i in rng.choice(sorted(live), size=5, replace=False)]
        assert layered.remove(doomed) == 5
        for i in doomed:
            del live[i]
        if step % 10 == 0:
            snapshots.append((layered.copy(), dict(live)))
    for index, expected in [*snapshots, (layered, live)]:  # earlier copies never see later writes
        assert sorted(index.ids().tolist()) == sorted(expected) and len(index) == len(expected)
        some = sorted(expected)[::7]
        assert np.allclose(index.vectors(some), np.stack([expected[i] for i in some]))
        reference = _plain(list(expected), np.stack(list(expected.values())), False)
        queries = _unit(rng, 5)
        allowed = np.asarray(sorted(expected)[::3], np.int64)
        for allow in (None, allowed):
            want_scores, want_ids = reference.search(queries, 10, allow)
            got_scores, got_ids = index.search(queries, 10, allow)
            assert np.allclose(got_scores, want_scores, atol=1e-5)
            if not hnsw:
                assert (got_ids == want_ids).all()
    merged = layered.merged()
    assert sorted(merged.ids().tolist()) == sorted(live)
    assert np.allclose(merged.vectors(sorted(live)), np.stack([live[i] for i in sorted(live)]))


def test_range_removal_and_merge_threshold() -> None:
    rng = np.random.default_rng(3)
    base = _plain([1024, 1025, 2048, 3072, 3073], _unit(rng, 5), False)
    layered = LayeredIndex(base, merge_at=100)
    layered.add([4096, 4097, 5120], _unit(rng, 3))
    removed = layered.remove_ranges(np.asarray([1024, 4096]), np.asarray([2048, 5120]))
    assert removed == 4 and sorted(layered.ids().tolist()) == [2048, 3072, 3073, 5120]
    assert not layered.needs_merge()
    layered.add(list(range(6144, 6244)), _unit(rng, 100))
    assert layered.needs_merge()
