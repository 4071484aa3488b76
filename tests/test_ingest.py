import json
from pathlib import Path

import pytest

from index.errors import DocumentError
from index.text.ingest import documents_from_upload, load_paths


def test_seed_folder_skips_eval(seed_docs) -> None:
    assert [d.id for d in seed_docs] == ["000_faeb4e7ef88eceb9"]


def test_txt_md_and_beir_jsonl(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("標題\n\n內容。", encoding="utf-8")
    (tmp_path / "b.md").write_text("# 標題\n內容。", encoding="utf-8")
    rows = [{"_id": "c1", "title": "T", "text": "正文。", "url": "u"}, {"id": 7, "text": "另一篇。"}]
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    docs = {d.id: d for d in load_paths([tmp_path])}
    assert set(docs) == {"a", "b", "c1", "7"}
    assert docs["c1"].metadata == {"url": "u"} and docs["c1"].title == "T"
    assert docs["b"].format == "md"


def test_duplicate_ids_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "a.txt").write_text("一", encoding="utf-8")
    (tmp_path / "x" / "a.txt").write_text("二", encoding="utf-8")
    with pytest.raises(DocumentError, match="duplicate document id 'a'"):
        load_paths([tmp_path])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", b"{not json", "invalid JSON"),
        ("noid.jsonl", b'{"text": "x"}', "needs '_id'"),
        ("bom.txt", b"\xff\xfe\xfa", "utf-16 byte order mark but is not utf-16"),
        ("doc.pdf", b"%PDF", "not a readable PDF"),
        ("doc.docx", b"PK", "not a readable DOCX"),
        ("data.bin", b"x", "unsupported file type"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DocumentError, match=message):
        load_paths([path])


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="no such file"):
        load_paths([tmp_path / "nope"])


def test_json_collection_like_chinese_poetry(tmp_path: Path) -> None:
    from index.text.ingest import JsonFields

    poems = [
        {"author": "李白", "paragraphs": ["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"], "title": "靜夜思"},
        {"author": "蘇軾", "paragraphs": ["明月幾時有？把酒問青天。"], "rhythmic": "水調歌頭"},
        {"author": "無名", "paragraphs": []},
    ]
    (tmp_path / "poet.tang.0.json").write_text(json.dumps(poems, ensure_ascii=False), encoding="utf-8")
    docs = load_paths([tmp_path])
    assert [(d.id, d.title, d.metadata) for d in docs] == [
        ("poet.tang.0-0", "靜夜思", {"author": "李白"}),
        ("poet.tang.0-1", "水調歌頭", {"author": "蘇軾"}),
    ]
    assert docs[0].text == "床前明月光，疑是地上霜。\n舉頭望明月，低頭思故鄉。"
    custom = load_paths([tmp_path], JsonFields(title=("author",)))
    assert custom[0].title == "李白" and custom[0].metadata == {"title": "靜夜思"}


def test_json_collection_must_be_an_array(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(DocumentError, match="array"):
        load_paths([tmp_path / "x.json"])


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "big5", "utf-16", "utf-16-le", "utf-16-be", "utf-8-sig"])
@pytest.mark.parametrize(
    "text",
    [
        "黃浦區政府工作報告",  # nine characters: too short for generic detectors
        "日月潭",
        "黃浦區人民政府2020年上半年工作情況的報告。營商環境持續最佳化，越要聚焦企業難點。",
        "黄浦区人民政府2020年上半年工作情况的报告。营商环境持续优化，越要聚焦企业难点。",
        "Debian 怎样把软件包设为保留状态？apt-mark hold",
    ],
)
def test_chinese_files_in_any_common_encoding(tmp_path: Path, encoding: str, text: str) -> None:
    try:
        raw = text.encode(encoding)
    except UnicodeEncodeError:
        pytest.skip(f"{encoding} cannot hold this text")
    path = tmp_path / "doc.txt"
    path.write_bytes(raw)
    (doc,) = load_paths([path])
    assert doc.text == text
    recorded = doc.metadata.get("encoding", "utf-8")
    assert recorded.replace("_", "-") in {encoding.removesuffix("-sig"), "utf-16", "gb18030", "big5hkscs"}
    (uploaded,) = documents_from_upload("doc.md", raw)
    assert uploaded.text == text and uploaded.metadata == doc.metadata


def test_utf8_files_record_no_encoding(tmp_path: Path) -> None:
    path = tmp_path / "doc.txt"
    path.write_text("黃浦區政府工作報告", encoding="utf-8")
    assert load_paths([path])[0].metadata == {}


def test_undecodable_bytes_are_refused_naming_the_file_and_encodings(tmp_path: Path) -> None:
    path = tmp_path / "blob.txt"
    path.write_bytes(bytes(range(128, 256)))
    with pytest.raises(DocumentError, match=r"blob\.txt is not text in any encoding tried \(utf-8, gb18030, big5"):
        load_paths([path])


def test_paths_and_uploads_accept_the_same_file_types(tmp_path: Path) -> None:
    page = "<html><head><title>社區公告</title></head><body><nav>首頁 | 關於我們</nav><article><p>"
    page += "本社區自下月起實施垃圾分類，請各位住戶配合。回收車每週二、四、六晚上七點抵達社區大門。" * 3
    page += "</p></article></body></html>"
    (tmp_path / "notice.html").write_bytes(page.encode("big5"))
    (tmp_path / "poems.json").write_text('[{"title": "靜夜思", "paragraphs": ["床前明月光"]}]', encoding="utf-8")
    docs = {d.id: d for d in load_paths([tmp_path])}
    assert "垃圾分類" in docs["notice"].text and docs["notice"].metadata == {"encoding": "big5hkscs"}
    assert docs["poems-0"].title == "靜夜思"
    (uploaded,) = documents_from_upload("poems.json", (tmp_path / "poems.json").read_bytes())
    assert uploaded.text == "床前明月光"
