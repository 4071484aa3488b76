from pathlib import Path

import numpy as np

from index.vectors import VectorIndex


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


def test_approximate_index_for_large_collections() -> None:
    rng = np.random.default_rng(2)
    centers = _unit(rng, 50, 32)
    data = centers[rng.integers(0, 50, 5000)] + 0.05 * rng.standard_normal((5000, 32)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    index = VectorIndex.for_size(32, len(data), flat_limit=1000)
    assert index.kind.startswith("IVF")
    index.add(np.arange(5000), data)
    index.nprobe = 16
    queries = data[:100] + 0.01
    _, found = index.search(queries, 10)
    exact = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)])
    assert recall >= 0.95
    assert index.remove([0, 1, 2]) == 3 and len(index) == 4997
    assert index.vectors([10]).shape == (1, 32)
    copied = index.copy()
    copied.add([9000], data[:1])
    assert len(copied) == 4998 and len(index) == 4997
    assert sorted(index.ids().tolist()) == list(range(3, 5000))
    assert index.remove_range(10, 20) == 10


def test_small_collections_stay_exact() -> None:
    assert VectorIndex.for_size(8, 10).kind == "IndexIDMap2(IndexFlatIP)"
