from __future__ import annotations

from pathlib import Path

import pytest

from index import HashingEmbedder, build_index, load_paths

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_FILE = SEEDS / "000_faeb4e7ef88eceb9.txt"


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test reads settings afresh, so env overrides in one test never leak."""
    from index.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """CLI commands on the model-free embedder with an index folder of the test's own (returned)."""
    monkeypatch.setenv("ZHSEARCH_MODEL", "hashing")
    monkeypatch.setenv("ZHSEARCH_INDEX_DIR", str(tmp_path / "idx"))
    return tmp_path / "idx"


@pytest.fixture(scope="session")
def seed_docs():
    return load_paths([SEEDS])


@pytest.fixture(scope="session")
def hash_index(tmp_path_factory: pytest.TempPathFactory, seed_docs) -> Path:
    """The seed corpus indexed with the deterministic fake embedder."""
    index_dir = tmp_path_factory.mktemp("hash-index")
    build_index(seed_docs, index_dir, HashingEmbedder())
    return index_dir


@pytest.fixture(scope="session")
def real_embedder():
    from index import get_settings, load_embedder

    return load_embedder("multilingual-e5-small", get_settings().cache_dir)


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory, seed_docs, real_embedder) -> Path:
    index_dir = tmp_path_factory.mktemp("real-index")
    build_index(seed_docs, index_dir, real_embedder)
    return index_dir
