import pytest

from index.text.chunk import Chunk, ChunkConfig, chunk, fit_token_limit, sentences
from index.text.clean import parse
from index.text.ingest import Document


def test_seed_passages_are_bounded_and_exact(seed_docs) -> None:
    doc = seed_docs[0]
    chunks = chunk(doc.text, parse(doc))
    assert 40 <= len(chunks) <= 100
    for c in chunks:
        assert c.end - c.start <= 250
        text = doc.text[c.start : c.end]
        assert text == text.strip()
    assert any("1209.37億元" in doc.text[c.start : c.end] for c in chunks)


def test_neighbouring_passages_overlap(seed_docs) -> None:
    doc = seed_docs[0]
    chunks = chunk(doc.text, parse(doc))
    overlaps = [b for a, b in zip(chunks, chunks[1:], strict=False) if b.start < a.end]
    assert overlaps, "long paragraphs should produce overlapping passages"
    for a, b in zip(chunks, chunks[1:], strict=False):
        if b.start < a.end:
            assert a.end - b.start <= ChunkConfig().overlap_chars


def test_sentences_end_at_chinese_marks() -> None:
    text = "第一句。第二句！第三句？“第四句。”第五;"
    spans = sentences(text, 0, len(text), 250)
    assert [text[a:b] for a, b in spans] == ["第一句。", "第二句！", "第三句？", "“第四句。”", "第五;"]


def test_unpunctuated_text_is_cut_not_lost() -> None:
    text = "字" * 1000
    doc = Document(id="x", text=text)
    chunks = chunk(text, parse(doc), ChunkConfig(max_chars=250, min_chars=10, overlap_chars=0))
    assert all(c.end - c.start <= 250 for c in chunks)
    assert sum(c.end - c.start for c in chunks) == 1000


def test_short_paragraphs_join_the_next() -> None:
    text = "短段落。\n這是一個足夠長的段落，" + "內容" * 50 + "。"
    doc = Document(id="x", text=text)
    chunks = chunk(text, parse(doc), ChunkConfig(max_chars=250, min_chars=20, overlap_chars=0))
    assert text[chunks[0].start : chunks[0].start + 4] == "短段落。"
    assert chunks[0].end > text.index("\n")


@pytest.mark.parametrize("limit", [8, 20, 64])
def test_fit_token_limit_never_exceeds(limit: int) -> None:
    text = "。".join("句子" * 5 for _ in range(30)) + "。"
    whole = [Chunk(0, len(text), "", ())]
    parts = fit_token_limit(text, whole, len, limit)
    assert all(len(text[p.start : p.end]) <= limit for p in parts)
    assert parts[0].start == 0 and parts[-1].end == len(text)
    assert all(a.end == b.start for a, b in zip(parts, parts[1:], strict=False))
