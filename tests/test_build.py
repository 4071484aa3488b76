import json
from pathlib import Path

import numpy as np
import pytest

from index import Document, HashingEmbedder, IndexMismatchError, Searcher, build_index
from index.storage.record.folder import current


class CountingEmbedder(HashingEmbedder):
    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__()
        self.embedded = 0
        self.fail_after = fail_after

    def encode_documents(self, texts, batch_size=32):
        if self.fail_after is not None and self.embedded + len(texts) > self.fail_after:
            raise KeyboardInterrupt("killed mid-build")
        self.embedded += len(texts)
        return super().encode_documents(texts, batch_size)


def _docs(*pairs: tuple[str, str]) -> list[Document]:
    return [Document(id=i, text=t) for i, t in pairs]


def test_manifest_records_how_it_was_built(hash_index: Path) -> None:
    manifest = json.loads((current(hash_index) / "manifest.json").read_text(encoding="utf-8"))
    for key in (
        "model",
        "dim",
        "normalization",
        "dictionary_hash",
        "chunking",
        "zhsearch_version",
        "corpus_hash",
        "built_at",
    ):
        assert manifest[key], key
    assert manifest["model"] == "hashing-bigram-256"
    assert manifest["vector_index"] == "passages=IndexIDMap2(IndexFlatIP); sentences=IndexIDMap2(IndexFlatIP)"


def test_rebuild_embeds_only_changed_documents(tmp_path: Path) -> None:
    long_text = "第一篇文章" + "經濟發展" * 30 + "。講經濟。"  # long enough for sentence vectors
    docs = _docs(("a", long_text), ("b", "第二篇文章。講教育。"))
    first = CountingEmbedder()
    report = build_index(docs, tmp_path, first)
    assert report.embedded_passages == 2
    assert first.embedded == 2 + 2  # each passage, and the two sentences of the long one

    again = CountingEmbedder()
    report = build_index(docs, tmp_path, again)
    assert report.unchanged and again.embedded == 0

    changed = CountingEmbedder()
    report = build_index(_docs(("a", long_text), ("b", "第二篇改過了。講醫療。")), tmp_path, changed)
    assert changed.embedded == 1 and report.reused_documents == 1 and report.embedded_passages == 1
    hits = Searcher.load(tmp_path, HashingEmbedder()).search("醫療", 2).hits
    assert hits[0].doc_id == "b"


def test_reused_passages_keep_ids_and_vectors(tmp_path: Path) -> None:
    docs = _docs(("a", "甲。" * 10), ("b", "乙。" * 10))
    build_index(docs, tmp_path, HashingEmbedder())
    before = Searcher.load(tmp_path, HashingEmbedder())
    hit = before.search("甲", 1).hits[0]
    build_index(docs + _docs(("c", "丙。")), tmp_path, HashingEmbedder())
    after = Searcher.load(tmp_path, HashingEmbedder())
    again = after.search("甲", 1).hits[0]
    assert (again.passage_id, again.doc_id) == (hit.passage_id, hit.doc_id)
    np.testing.assert_allclose(
        after.vectors.passage_vectors([hit.passage_id]), before.vectors.passage_vectors([hit.passage_id])
    )


def test_killed_build_leaves_previous_index(tmp_path: Path) -> None:
    build_index(_docs(("a", "原來的內容。")), tmp_path, HashingEmbedder())
    live = current(tmp_path)
    many = _docs(*[(f"d{i}", f"新文件{i}。") for i in range(50)])
    with pytest.raises(KeyboardInterrupt):
        build_index(many, tmp_path, CountingEmbedder(fail_after=10), batch_size=1)
    assert current(tmp_path) == live
    assert [p.name for p in (tmp_path / "generations").iterdir()] == [live.name]
    assert Searcher.load(tmp_path, HashingEmbedder()).search("原來", 1).hits[0].doc_id == "a"


def test_loading_with_another_model_is_refused(hash_index: Path) -> None:
    class Other(HashingEmbedder):
        name = "another-model"

    with pytest.raises(IndexMismatchError, match="another-model"):
        Searcher.load(hash_index, Other())


def test_empty_corpus_is_an_error(tmp_path: Path) -> None:
    from index import InvalidInputError

    with pytest.raises(InvalidInputError):
        build_index([], tmp_path, HashingEmbedder())


def test_up_to_date_counts_include_documents_added_live(tmp_path: Path) -> None:
    from index.writing.live import LiveIndex

    docs = [Document("a", "黃浦區的報告。講經濟發展。")]
    build_index(docs, tmp_path, HashingEmbedder())
    live = LiveIndex.open(tmp_path, HashingEmbedder())
    live.put(Document("b", "網際網路診療服務。覆蓋到社區。"))
    live.close()
    again = build_index(docs, tmp_path, HashingEmbedder())
    assert again.unchanged and (again.documents, again.passages) == (2, 2)


def test_progress_opens_the_embedding_bar_before_embedding(tmp_path: Path) -> None:
    heard: list[tuple[str, int, int]] = []
    docs = [Document(f"d{n}", "這是一個句子。" * 120) for n in range(3)]  # over 500 characters: several passages
    build_index(docs, tmp_path, HashingEmbedder(), progress=lambda *report: heard.append(report))
    embeds = [(done, total) for stage, done, total in heard if stage == "embed"]
    total = embeds[0][1]
    assert embeds[0] == (0, total) and embeds[-1] == (total, total) and total > 3
    assert len(embeds) > 2 and [done for done, _ in embeds] == sorted(done for done, _ in embeds)
