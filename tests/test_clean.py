from index.text.clean import heading_level, parse
from index.text.ingest import Document


def test_seed_layout(seed_docs) -> None:
    doc = seed_docs[0]
    layout = parse(doc)
    assert layout.title == "黃浦區人民政府2020年上半年工作情況的報告"
    assert layout.metadata == {"中文名": "黃浦區人民政府2020年上半年工作情況的報告", "發布單位": "黃浦區人民政府"}
    bodies = [doc.text[p.start : p.end] for p in layout.paragraphs]
    for leftover in ("基本介紹", "相關詞條", "熱門詞條", "聯絡我們", "中文名:"):
        assert not any(leftover in body for body in bodies)
    sections = {p.section for p in layout.paragraphs}
    assert "(二)厚積成勢,區域經濟展現韌勁和活力" in sections
    assert not any(body.startswith("(二)厚積成勢") or body.startswith("二、") for body in bodies)
    under_plan = [p for p in layout.paragraphs if p.section_path and p.section_path[0] == "二、 下半年工作安排"]
    assert under_plan, "the second-half plan heading must become a section"
    assert under_plan[-1].section == "(三)補齊短板、拉長長板,著力提升市域社會治理能力現代化水平"


def test_paragraph_offsets_point_into_original_text(seed_docs) -> None:
    doc = seed_docs[0]
    for para in parse(doc).paragraphs:
        body = doc.text[para.start : para.end]
        assert body == body.strip() and body


def test_headings() -> None:
    assert heading_level("(二)厚積成勢,區域經濟展現韌勁和活力") == 2
    assert heading_level("二、 下半年工作安排") == 1
    assert heading_level("第三章 總則") == 1
    assert heading_level("疫情防控取得良好成效。 堅持生命至上") is None
    assert heading_level("2020年是全面建成小康社會") is None


def test_markdown_title_and_headings() -> None:
    text = "# 使用手冊\n\n## 安裝\n\n執行安裝程式即可。\n\n## 設定\n\n編輯設定檔。\n"
    layout = parse(Document(id="m", text=text, format="md"))
    assert layout.title == "使用手冊"
    assert [(p.section, text[p.start : p.end]) for p in layout.paragraphs] == [
        ("安裝", "執行安裝程式即可。"),
        ("設定", "編輯設定檔。"),
    ]


def test_title_falls_back_to_file_name_then_heading_then_first_line() -> None:
    prose = "這是一段很普通的文字，沒有標題，而且第一行很長，長到不能整行當作標題來顯示在頁面的最上方。第二句。"
    from_file = parse(Document(id="會議紀錄", text=prose, source="docs/會議紀錄.txt"))
    assert from_file.title == "會議紀錄"
    assert len(from_file.paragraphs) == 1
    posted = "這是一段很普通的文字。\n一、總體情況\n今年的工作順利完成。"
    assert parse(Document(id="3f9c0a", text=posted, source="api")).title == "一、總體情況"
    first_line = parse(Document(id="3f9c0a", text=prose, source="api")).title
    assert first_line == prose[:39] + "…"
    # a record of a collection keeps its id: the collection's name and first line are not its title
    assert parse(Document(id="c7", text=prose, source="corpus.jsonl", format="jsonl")).title == "c7"
