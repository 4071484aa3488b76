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
