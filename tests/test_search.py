"""index.retrieval.search: overlap dedupe, filters, modes and limits (fake embedder, real FAISS and BM25)."""

from __future__ import annotations

from pathlib import Path

import pytest

from index import Document, HashingEmbedder, InvalidInputError, Searcher, Tuning, build_index
from index.retrieval.query import QueryLimits, validate_query
from index.retrieval.snapshot import DocumentInfo, Filters

LONG = "".join(f"第{n}段講黃浦區舊區改造的進展,居民陸續搬進新居,社區環境明顯改善。" for n in range(30))


@pytest.fixture(scope="module")
def searcher(tmp_path_factory: pytest.TempPathFactory) -> Searcher:
    docs = [
        Document("long", LONG, metadata={"kind": "report"}),
        Document("short", "舊區改造的簡報。", metadata={"kind": "brief"}),
        Document("other", "外灘金融集聚帶的發展。", metadata={"kind": "report"}),
    ]
    index_dir: Path = tmp_path_factory.mktemp("search-index")
    build_index(docs, index_dir, HashingEmbedder())
    loaded = Searcher.load(index_dir, HashingEmbedder())
    yield loaded
    loaded.close()


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_overlapping_chunks_of_one_document_are_shown_once(searcher: Searcher, mode: str) -> None:
    hits = searcher.search("旧区改造", 10, mode).hits
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    spans: dict[str, list[tuple[int, int]]] = {}
    for hit in hits:
        for start, end in spans.get(hit.doc_id, []):
            assert hit.end <= start or end <= hit.start, f"{hit.doc_id} {hit.start}-{hit.end} overlaps {start}-{end}"
        spans.setdefault(hit.doc_id, []).append((hit.start, hit.end))
        assert LONG[hit.start : hit.end] == hit.text if hit.doc_id == "long" else True


def test_filters_by_id_and_metadata(searcher: Searcher) -> None:
    only_short = searcher.search("旧区改造", 5, "hybrid", Filters(doc_ids=frozenset({"short"}))).hits
    assert {h.doc_id for h in only_short} == {"short"}
    reports = searcher.search("发展", 5, "hybrid", Filters(metadata={"kind": "report"})).hits
    assert reports and {h.doc_id for h in reports} <= {"long", "other"}
    nothing = searcher.search("旧区改造", 5, "lexical", Filters(doc_ids=frozenset({"missing"}))).hits
    assert nothing == []


def test_filter_admits_by_hand() -> None:
    doc = DocumentInfo(id="a", title="", metadata={"year": 2020, "kind": "report"}, chars=1, passage_ids=(1,))
    assert Filters().empty and Filters().admits(doc)
    assert Filters(metadata={"year": "2020"}).admits(doc)  # compared as text: JSON and form values agree
    assert not Filters(metadata={"kind": "brief"}).admits(doc)
    assert not Filters(doc_ids=frozenset({"b"})).admits(doc)


def test_limits_are_the_searchers(hash_index: Path) -> None:
    searcher = Searcher.load(hash_index, HashingEmbedder(), Tuning(limits=QueryLimits(max_chars=5, max_k=3)))
    try:
        with pytest.raises(InvalidInputError, match="limit is 5"):
            searcher.search("旧区改造的进展如何", 3)
        with pytest.raises(InvalidInputError, match="between 1 and 3"):
            searcher.search("旧区", 4)
    finally:
        searcher.close()


@pytest.mark.parametrize(
    ("query", "k", "mode", "message"),
    [
        ("  ", 5, "hybrid", "empty"),
        ("x" * 1001, 5, "hybrid", "1001"),
        ("黃浦", 0, "hybrid", "k must"),
        ("黃浦", 5, "fuzzy", "mode must"),
    ],
)
def test_validate_query(query: str, k: int, mode: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        validate_query(query, k, mode)
    assert validate_query("  黃浦 ", 5) == "黃浦"
