from index.text.clean import heading_level, parse
from index.text.ingest import Document


def test_seed_layout(seed_docs) -> None:
    doc = seed_docs[0]
    layout = parse(doc)
    assert layout.title == "黃浦區人民政府2020年上半年工作情況的報告"
    assert layout.metadata == {"中文名": "黃浦區人民政府2020年上半年工作情況的報告", "發布單位": "黃浦區人民政府"}
    bodies = [doc.text[p.start : p.end] for p in layout.paragraphs]
    for leftover in ("基本介紹", "相關詞條", "熱門詞條", "聯絡我們"):
        assert not any(leftover in body for body in bodies)
    # the infobox's lines are metadata and stay searchable text
    assert "• 中文名:黃浦區人民政府2020年上半年工作情況的報告" in bodies
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


MANUAL = """# 扫地机器人 X1 使用手册

## 日常保养

- 尘盒：每次使用后倒空，滤网每两周清洗一次
- 边刷：每月检查一次，磨损时更换
* 主刷：缠绕的头发用附带的刀片割断
"""


def test_markdown_list_lines_are_content_not_metadata() -> None:
    doc = Document(id="manual", text=MANUAL, format="md")
    layout = parse(doc)
    bodies = [doc.text[p.start : p.end] for p in layout.paragraphs]
    assert layout.metadata == {}
    assert "- 尘盒：每次使用后倒空，滤网每两周清洗一次" in bodies
    assert "* 主刷：缠绕的头发用附带的刀片割断" in bodies
    # the same lines as plain text or DOCX paragraphs, bullets included
    for fmt in ("txt", "docx"):
        text = "保养说明\n\n• 尘盒：滤网每两周清洗一次\n• 边刷：每月检查一次\n"
        layout = parse(Document(id="m", text=text, format=fmt))
        assert layout.metadata == {}
        assert "• 尘盒：滤网每两周清洗一次" in [text[p.start : p.end] for p in layout.paragraphs]


def test_infobox_lines_are_metadata_only_under_an_infobox_heading() -> None:
    text = "某詞條\n\n基本信息\n\n• 中文名:某某\n• 外文名:Mou\n\n正文從這裡開始,說明一些事情。\n• 備註:不是資訊框\n"
    layout = parse(Document(id="w", text=text, format="txt"))
    assert layout.metadata == {"中文名": "某某", "外文名": "Mou"}
    bodies = [text[p.start : p.end] for p in layout.paragraphs]
    assert "• 中文名:某某" in bodies and "• 備註:不是資訊框" in bodies


def test_a_document_of_one_line_or_of_headings_is_still_text() -> None:
    one = "垃圾清運專線電話是 1999"
    layout = parse(Document(id="one", text=one, format="txt"))
    assert layout.title == one
    assert [one[p.start : p.end] for p in layout.paragraphs] == [one]
    headings = "# 手册\n\n## 安装\n"
    layout = parse(Document(id="h", text=headings, format="md"))
    assert [headings[p.start : p.end] for p in layout.paragraphs] == ["# 手册", "## 安装"]
    leftovers = "目錄\n"
    assert [leftovers[p.start : p.end] for p in parse(Document(id="x", text=leftovers)).paragraphs] == ["目錄"]


def test_numbered_list_lines_are_text_not_headings() -> None:
    """Short numbered lines once became section headings, each replacing the last: all but one vanished."""
    text = "安装。\n\n有几种方法。\n1. 使用 pip 安装\n2. 从源代码编译\n3. 使用发行版的软件包\n\n第二段正文在这里。\n"
    layout = parse(Document(id="faq", text=text, format="txt"))
    bodies = [text[p.start : p.end] for p in layout.paragraphs]
    for item in ("1. 使用 pip 安装", "2. 从源代码编译", "3. 使用发行版的软件包"):
        assert item in bodies
    assert all(p.section == "" for p in layout.paragraphs)
    # a heading with content under it stays a heading; one followed only by a sibling heading is text
    text = "一、总则\n\n二、范围\n\n本办法适用于全体员工。\n"
    layout = parse(Document(id="rules", text=text, format="txt"))
    assert [(text[p.start : p.end], p.section) for p in layout.paragraphs] == [
        ("一、总则", ""),
        ("二、范围", ""),
        ("本办法适用于全体员工。", ""),
    ]
