from pathlib import Path

import numpy as np

from index.storage.dense.vectors import VectorIndex


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_matches_numpy_brute_force() -> None:
    rng = np.random.default_rng(0)
    data, queries = _unit(rng, 500, 32), _unit(rng, 10, 32)
    ids = np.arange(1000, 1500)
    index = VectorIndex.empty(32)
    index.add(ids, data)
    scores, found = index.search(queries, 5)
    expected = np.argsort(-(queries @ data.T), axis=1)[:, :5] + 1000
    assert (found == expected).all()
    np.testing.assert_allclose(scores, np.sort(-(queries @ data.T), axis=1)[:, :5] * -1, rtol=1e-5)


def test_remove_reconstruct_and_roundtrip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    data = _unit(rng, 20, 8)
    index = VectorIndex.empty(8)
    index.add(list(range(20)), data)
    assert index.remove([3, 4]) == 2
    np.testing.assert_allclose(index.vectors([5]), data[5:6])
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss")
    assert len(loaded) == 18 and 3 not in set(loaded.ids())
    assert not (tmp_path / "v.faiss.tmp").exists()


def _clustered(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    centers = _unit(rng, 50, d)
    data = centers[rng.integers(0, 50, n)] + 0.05 * rng.standard_normal((n, d)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def _recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact, strict=True)]))


def test_approximate_index_for_large_collections() -> None:
    rng = np.random.default_rng(2)
    data = _clustered(rng, 5000, 32)
    index = VectorIndex.for_size(32, len(data), flat_limit=1000)
    assert index.kind.startswith("IndexIDMap2(IndexHNSWFlat") and index.approximate
    index.add(np.arange(5000), data)
    queries = data[:100] + 0.01
    _, found = index.search(queries, 10)
    exact = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    assert _recall(found, exact) >= 0.95
    assert index.remove([0, 1, 2]) == 3 and len(index) == 4997 and index.tombstones == 3
    assert index.remove([0]) == 0
    assert index.vectors([10]).shape == (1, 32)
    copied = index.copy()
    copied.add([9000], data[:1])
    assert len(copied) == 4998 and len(index) == 4997
    assert sorted(index.ids().tolist()) == list(range(3, 5000))
    assert index.remove_range(10, 20) == 10


def test_removed_vectors_never_come_back(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    data = _clustered(rng, 3000, 16)
    index = VectorIndex.for_size(16, len(data), flat_limit=0)
    index.add(np.arange(3000), data)
    gone = list(range(0, 3000, 10))  # 10%: below the compaction threshold, so these are tombstones
    assert index.remove(gone) == len(gone) and index.tombstones == len(gone)
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss")
    assert loaded.tombstones == len(gone) and len(loaded) == 3000 - len(gone)
    _, found = loaded.search(data[gone], 10)
    assert not set(found.ravel().tolist()) & set(gone)
    _, found = loaded.search(data[:1], 4, np.array([1, 2, 3, 10]))  # 10 is removed
    assert sorted(found[0].tolist()) == [-1, 1, 2, 3]
    loaded.add([0], data[:1])  # a removed id can be added again
    _, found = loaded.search(data[:1], 1)
    assert found[0, 0] == 0


def test_many_removals_compact_the_graph() -> None:
    rng = np.random.default_rng(4)
    data = _clustered(rng, 2000, 16)
    index = VectorIndex.for_size(16, len(data), flat_limit=0)
    index.add(np.arange(2000), data)
    assert index.remove(list(range(1000))) == 1000
    assert index.tombstones == 0 and len(index) == 1000  # rebuilt from the live half
    _, found = index.search(data[1000:1100], 10)
    exact = np.argsort(-(data[1000:1100] @ data[1000:].T), axis=1)[:, :10] + 1000
    assert _recall(found, exact) >= 0.95


def test_small_collections_stay_exact() -> None:
    assert VectorIndex.for_size(8, 10).kind == "IndexIDMap2(IndexFlatIP)"
