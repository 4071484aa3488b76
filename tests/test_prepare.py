"""index.writing.prepare: the one path from a document to stored rows."""

from __future__ import annotations

from index import ChunkConfig, Document, HashingEmbedder
from index.text.normalize import normalize
from index.writing.prepare import prepare

TEXT = (
    "黃浦區工作報告\n一、上半年工作\n"
    + "經濟發展保持穩定,網際網路醫院建設加快。" * 12
    + "\n二、下半年工作安排\n推進舊區改造。"
)


def test_passages_point_into_the_original_text() -> None:
    item = prepare(Document("d", TEXT), ChunkConfig(), HashingEmbedder(), first_id=100)
    assert item.document.id == "d" and item.document.text == TEXT and item.document.title == "黃浦區工作報告"
    assert [p.id for p in item.passages] == list(range(100, 100 + len(item.passages)))
    assert [p.ordinal for p in item.passages] == list(range(len(item.passages)))
    for p in item.passages:
        assert TEXT[p.start : p.end] == p.text
        assert p.norm_text == normalize(p.text)
        assert p.title == "黃浦區工作報告"
    assert item.passages[-1].section.startswith("二、下半年工作安排")
    assert "互联网医院" in item.passages[0].norm_text  # Taiwan phrasing undone for matching only


def test_token_limit_splits_instead_of_truncating() -> None:
    class Tiny(HashingEmbedder):
        max_tokens = 40

    item = prepare(Document("d", TEXT), ChunkConfig(), Tiny(), first_id=1)
    assert all(Tiny().count_tokens(p.text) <= 40 or p.end - p.start < 2 for p in item.passages)
    covered = set()
    for p in item.passages:
        covered.update(range(p.start, p.end))
    body = TEXT.index("經濟")
    assert set(range(body, body + 100)) <= covered  # nothing dropped
