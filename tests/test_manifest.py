"""index.storage.record.manifest: what an index records about how it was built, and what loading checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index import Document, HashingEmbedder, IndexMismatchError, Searcher, build_index
from index.storage.record import folder
from index.storage.record.manifest import Manifest
from index.writing.live import LiveIndex


@pytest.fixture
def built(tmp_path: Path) -> Path:
    build_index([Document("d", "黃浦區的文件。講經濟發展。")], tmp_path, HashingEmbedder())
    return tmp_path


def _edit(index_dir: Path, **changes: object) -> None:
    path = folder.require_current(index_dir) / folder.MANIFEST
    data = json.loads(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if key == "chunker_version":
            data["chunking"]["version"] = value
        else:
            data[key] = value
    path.write_text(json.dumps(data), encoding="utf-8")


def test_round_trip(built: Path) -> None:
    manifest = Manifest.read(folder.require_current(built) / folder.MANIFEST)
    manifest.check_usable(HashingEmbedder())
    assert manifest.documents == 1 and manifest.passages == 1 and manifest.chunking["version"] >= 1


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"chunker_version": 0}, "chunker version"),
        ({"passage_text": "passage:text-only"}, "passage text"),
        ({"dictionary_hash": "0" * 12}, "normalization"),
        ({"lexical": "whitespace"}, "lexical tokens"),
    ],
)
def test_an_index_made_under_other_rules_is_refused(built: Path, change: dict, named: str) -> None:
    """Loading once ignored the chunker version and the passage text, so live writes could mix rules."""
    _edit(built, **change)
    with pytest.raises(IndexMismatchError, match=named):
        Searcher.load(built, HashingEmbedder())
    with pytest.raises(IndexMismatchError, match=named):
        LiveIndex.open(built, HashingEmbedder())


def test_another_format_version_is_refused(built: Path) -> None:
    _edit(built, format_version=1)
    with pytest.raises(IndexMismatchError, match="format"):
        Searcher.load(built, HashingEmbedder())
