"""PDF, DOCX and legacy-encoded files made in the test, read by build and upload alike (issue 14)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from index import HashingEmbedder, Searcher, build_index
from index.errors import DocumentError
from index.text.clean import parse
from index.text.formats import fold_radicals, pages_of, read_pdf
from index.text.ingest import documents_from_upload, load_paths, read_paths
from service.cli import app
from tests.documents import chromium_pdf, docx_with_headings, mojibake_pdf, scanned_pdf

#: TestClient's default Host, "testserver", is not a name a loopback server answers for.
LOCAL = "http://127.0.0.1"

RADICALS = [chr(c) for c in range(0x2E80, 0x2FE0)]


def test_radicals_fold_to_the_ideographs_they_stand_for() -> None:
    # what pypdf gives for a Chromium-printed page, character for character
    assert fold_radicals("第⼀⾴：⾼雄市…⽂化園區…每⽇平均運量…商圈營收成⻑") == (
        "第一頁：高雄市…文化園區…每日平均運量…商圈營收成長"
    )
    assert fold_radicals("⻘⻝⻄⻆⻢⻩⻰ ABC，。") == "青食西角马黄龙 ABC，。"  # punctuation and ASCII untouched


def test_chromium_pdf_reads_in_order_with_pages_and_real_ideographs(tmp_path: Path) -> None:
    raw = chromium_pdf(tmp_path).read_bytes()
    text, title, metadata = read_pdf(raw, "light-rail.pdf")
    assert title == "高雄市輕軌年報" and metadata["pages"] == 2
    for word in ("第一頁", "高雄市", "文化園區", "每日平均運量", "商圈營收成長", "長期目標"):
        assert word in text
    assert not any(char in text for char in RADICALS)
    # a wrapped CJK line is one paragraph again
    assert "每日平均運量在通車第一年即超過兩萬人次，沿線商圈營收成長明顯。" in text
    second = metadata["page_offsets"][1]
    assert text.index("第二頁") == second
    assert pages_of(metadata, 0, 10) == [1] and pages_of(metadata, second, second + 5) == [2]
    assert pages_of(metadata, second - 5, second + 5) == [1, 2] and pages_of({}, 0, 1) is None


def test_pdf_hits_cite_their_page(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    chromium_pdf(tmp_path / "docs")
    build_index(load_paths([tmp_path / "docs"]), tmp_path / "idx", HashingEmbedder())
    searcher = Searcher.load(tmp_path / "idx", HashingEmbedder())
    hit = searcher.search("第二階段工程什麼時候完工", 1, "lexical").hits[0]
    assert hit.doc_id == "light-rail" and hit.pages == [2] and hit.title == "高雄市輕軌年報"
    assert searcher.search("每日平均運量", 1, "lexical").hits[0].pages == [1]
    searcher.close()


def test_scans_and_broken_text_layers_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"scan\.pdf: the PDF has no text layer \(2 page\(s\)"):
        load_paths([scanned_pdf(tmp_path / "scan.pdf")])
    with pytest.raises(DocumentError, match=r"garbled\.pdf: the PDF's text layer does not read as text"):
        load_paths([mojibake_pdf(tmp_path / "garbled.pdf")])


def test_docx_headings_become_sections_and_the_title(tmp_path: Path) -> None:
    (doc,) = load_paths([docx_with_headings(tmp_path / "report.docx")])
    assert doc.format == "docx" and "指標 | 數值" in doc.text
    layout = parse(doc)
    assert layout.title == "黃浦區工作報告"
    sections = {doc.text[p.start : p.end][:4]: p.section_path for p in layout.paragraphs}
    assert sections["全區生產"] == ("一、經濟發展",)
    assert sections["金融業增"] == ("一、經濟發展", "（一）金融服務")


def test_uploads_read_pdf_and_docx_like_build(tmp_path: Path) -> None:
    (pdf,) = documents_from_upload("年報.pdf", chromium_pdf(tmp_path).read_bytes())
    assert pdf.id == "年報" and pdf.metadata["pages"] == 2 and "商圈營收成長" in pdf.text
    (word,) = documents_from_upload("report.docx", docx_with_headings(tmp_path / "r.docx").read_bytes())
    # headings are kept beside the text, not as Markdown in it (issue 28)
    assert word.text.startswith("黃浦區工作報告\n\n一、經濟發展") and "#" not in word.text
    assert word.metadata["headings"][:2] == [[0, 1], [len("黃浦區工作報告\n\n"), 2]]


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """Three good files in three encodings, a PDF and a DOCX, and four that cannot be indexed."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "utf8.txt").write_text("上海市黃浦區的年度報告。介紹經濟發展。", encoding="utf-8")
    (folder / "gbk.txt").write_bytes("黄浦区人民政府工作报告，全区生产总值增长。".encode("gbk"))
    (folder / "big5.txt").write_bytes("高雄市政府施政報告，輕軌運量創新高。".encode("big5"))
    (folder / "utf16.txt").write_bytes("臺北市文化局年度計畫，推動社區藝術。".encode("utf-16"))
    chromium_pdf(folder)
    docx_with_headings(folder / "report.docx")
    (folder / "empty.txt").write_text(" \n", encoding="utf-8")
    (folder / "blob.bin").write_bytes(b"\x00\x01\x02")
    scanned_pdf(folder / "scan.pdf")
    mojibake_pdf(folder / "garbled.pdf")
    return folder


def test_a_bad_file_in_a_folder_is_reported_and_skipped(mixed_folder: Path) -> None:
    loaded = read_paths([mixed_folder])
    docs = {d.id: d for d in loaded.documents}
    assert set(docs) == {"utf8", "gbk", "big5", "utf16", "light-rail", "report"}
    assert docs["gbk"].metadata == {"encoding": "gb18030"} and docs["big5"].metadata == {"encoding": "big5hkscs"}
    assert docs["utf16"].metadata == {"encoding": "utf-16"} and "臺北市文化局" in docs["utf16"].text
    reasons = {Path(s.path).name: s.reason for s in loaded.skipped}
    assert set(reasons) == {"empty.txt", "blob.bin", "scan.pdf", "garbled.pdf"}
    assert "empty document" in reasons["empty.txt"] and "unsupported file type" in reasons["blob.bin"]
    assert "no text layer" in reasons["scan.pdf"] and "does not read as text" in reasons["garbled.pdf"]


runner = CliRunner()


def test_build_goes_on_past_bad_files_and_sums_up(env: Path, mixed_folder: Path) -> None:
    built = runner.invoke(app, ["build", "--docs", str(mixed_folder), "--json"])
    assert built.exit_code == 0, built.output
    report = json.loads(built.output)
    assert report["documents"] == 6
    skipped = sorted(Path(s["path"]).name for s in report["skipped"])
    assert skipped == ["blob.bin", "empty.txt", "garbled.pdf", "scan.pdf"]
    said = runner.invoke(app, ["build", "--docs", str(mixed_folder)])
    assert said.exit_code == 0
    assert "skipped: " in said.stderr and "up to date: 6 documents" in said.stdout
    assert "4 file(s) skipped" in said.stdout


def test_strict_builds_nothing_and_nothing_readable_fails(env: Path, mixed_folder: Path, tmp_path: Path) -> None:
    strict = runner.invoke(app, ["build", "--docs", str(mixed_folder), "--strict"])
    assert strict.exit_code == 1 and "nothing built (--strict)" in strict.stderr
    assert not env.exists() or not any(env.iterdir())
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    scanned_pdf(only_bad / "scan.pdf")
    (only_bad / "blob.bin").write_bytes(b"\x00")
    failed = runner.invoke(app, ["build", "--docs", str(only_bad)])
    assert failed.exit_code == 1
    assert "no text layer" in failed.stderr and "unsupported file type" in failed.stderr
    assert "no documents to index (2 skipped" in failed.stderr


def test_uploaded_pdf_pages_in_every_response(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from index import Document, Settings
    from index.writing.live import LiveIndex
    from service.app import create_app

    pdf = chromium_pdf(tmp_path).read_bytes()  # skips without Chromium: before anything is opened
    build_index([Document("base", "黃浦區的基礎文件。講經濟發展。")], tmp_path / "idx", HashingEmbedder())
    live = LiveIndex.open(tmp_path / "idx", HashingEmbedder())
    with TestClient(
        create_app(Settings(index_dir=tmp_path / "idx", model="hashing"), index=live), base_url=LOCAL
    ) as client:
        posted = client.post("/v1/documents", files=[("file", ("年報.pdf", pdf, "application/pdf"))])
        assert posted.status_code == 201, posted.text
        query = {"query": "第二階段工程預計於明年完工", "mode": "lexical", "k": 1}
        hit = client.post("/v1/search", json=query).json()["results"][0]
        assert hit["doc_id"] == "年報" and hit["pages"] == [2]
        assert client.get(f"/v1/passages/{hit['passage_id']}").json()["pages"] == [2]
        document = client.get("/v1/documents/年報").json()
        assert document["metadata"]["pages"] == 2 and {tuple(p["pages"]) for p in document["passages"]} == {(1,), (2,)}
        assert client.post("/v1/search", json={"query": "經濟發展"}).json()["results"][0]["pages"] is None
    live.close()


def test_html_headings_become_sections_and_markup_is_not_text() -> None:
    """Issue 28: <h2> headings without numbering gave no section; emphasis, links and table rules are
    layout, not words."""
    from index.text.chunk import chunk
    from index.text.ingest import parse_bytes

    long = "這是一段說明文字，讓頁面像一篇真正的文章。" * 3
    html = f"""<html><head><title>資安規範</title></head><body>
    <nav><a href="/">首頁</a> | <a href="/c">聯絡我們</a></nav><article><h1>資訊安全規範</h1>
    <h2>密碼管理</h2><p>密碼長度<b>至少十二個字元</b>，每九十天更換一次。詳見<a href="/x">附件</a>。{long}</p>
    <h2>設備管理</h2><p>筆記型電腦須啟用<em>全碟加密</em>。{long}</p>
    <table><tr><th>項目</th><th>期限</th></tr><tr><td>密碼更換</td><td>九十天</td></tr></table>
    </article></body></html>"""
    (doc,) = parse_bytes("policy.html", html.encode())
    assert "密碼長度至少十二個字元，每九十天更換一次。詳見附件。" in doc.text
    assert not any(mark in doc.text for mark in ("#", "**", "](", "---", "首頁"))
    passages = {doc.text[c.start : c.end][:4]: c.section_path for c in chunk(doc.text, parse(doc))}
    assert passages["密碼長度"] == ("資訊安全規範", "密碼管理")
    assert passages["筆記型電"] == ("資訊安全規範", "設備管理")
    assert "| 密碼更換 | 九十天 |" in doc.text


def test_docx_headings_in_a_row_stay_headings_and_never_show_as_markup(tmp_path: Path) -> None:
    """Issue 28: a Heading 1 right before a Heading 2 read as a list line, and its `##` was passage text."""
    import docx

    from index.text.chunk import chunk

    document = docx.Document()
    document.add_heading("一、密碼管理", 1)
    document.add_heading("（一）長度", 2)
    document.add_paragraph("密碼長度至少十二個字元。")
    document.add_heading("（二）期限", 2)
    document.add_paragraph("每九十天更換一次。")
    path = tmp_path / "rules.docx"
    document.save(str(path))
    (doc,) = load_paths([path])
    assert "#" not in doc.text
    chunks = chunk(doc.text, parse(doc))
    assert all("#" not in doc.text[c.start : c.end] and "密碼管理" not in doc.text[c.start : c.end] for c in chunks)
    paths = {doc.text[c.start : c.end][:4]: c.section_path for c in chunks}
    assert paths["密碼長度"] == ("一、密碼管理", "（一）長度")


def test_a_metadata_headings_field_of_another_shape_is_ignored() -> None:
    from index import Document

    doc = Document("x", "第一行。\n第二行。", metadata={"headings": ["總則", [1, 2], [5, 9], "x"]})
    assert [doc.text[p.start : p.end] for p in parse(doc).paragraphs] == ["第一行。", "第二行。"]


def test_pdf_headings_by_font_size_become_sections(tmp_path: Path) -> None:
    """Issue 28: a PDF's headings (set larger than its body) gave no section, and a wrapped heading could be
    joined to the paragraph under it."""
    from index.text.chunk import chunk

    body = "密碼長度至少十二個字元，每九十天更換一次，不得與前三次相同，並須包含大小寫字母與數字。" * 3
    other = "筆記型電腦須啟用全碟加密，遺失時須在二十四小時內通報資訊部門處理。" * 3
    html = (
        '<!doctype html><html><head><meta charset="utf-8"><title>資安規範</title><style>'
        'body{font-family:"Noto Sans CJK TC",sans-serif;font-size:12pt} h1{font-size:22pt} h2{font-size:16pt}'
        f"</style></head><body><h1>資訊安全規範</h1><h2>密碼管理</h2><p>{body}</p><h2>設備管理</h2><p>{other}</p>"
        "</body></html>"
    )
    (doc,) = load_paths([chromium_pdf(tmp_path, "policy.pdf", html)])
    lines = doc.text.split("\n")
    assert {"資訊安全規範", "密碼管理", "設備管理"} <= set(lines)  # each heading a line of its own
    levels = {doc.text[start:].split("\n", 1)[0]: level for start, level in doc.metadata["headings"]}
    assert levels == {"資訊安全規範": 1, "密碼管理": 2, "設備管理": 2}
    paths = {doc.text[c.start : c.end][:4]: c.section_path for c in chunk(doc.text, parse(doc))}
    assert paths["密碼長度"] == ("資訊安全規範", "密碼管理")
    assert paths["筆記型電"] == ("資訊安全規範", "設備管理")


def test_pdf_headings_set_bold_at_the_body_size_become_sections(tmp_path: Path) -> None:
    """Headings that are only bold (no larger than the body) are sections a level below the sized ones; bold
    inside a sentence, or a bold line that ends a sentence, is not."""
    body = "員工每年享有特別休假，依年資計算天數，未休完的天數可以折算工資或遞延到次年使用。" * 2
    other = "出差住宿每晚上限新臺幣兩千元，交通費以大眾運輸為原則，須於返回後七日內報支。" * 2
    html = (
        '<!doctype html><html><head><meta charset="utf-8"><title>員工手冊</title><style>'
        'body{font-family:"Noto Sans CJK TC",sans-serif;font-size:12pt} h1{font-size:20pt}'
        f"</style></head><body><h1>員工手冊</h1><p><b>休假規定</b></p><p>{body}</p>"
        f"<p><b>差旅規定</b></p><p>{other}<b>請留意。</b></p><p><b>以上規定自公布日起施行。</b></p></body></html>"
    )
    (doc,) = load_paths([chromium_pdf(tmp_path, "handbook.pdf", html)])
    levels = {doc.text[start:].split("\n", 1)[0]: level for start, level in doc.metadata["headings"]}
    assert levels == {"員工手冊": 1, "休假規定": 2, "差旅規定": 2}
    from index.text.chunk import chunk

    paths = {doc.text[c.start : c.end][:4]: c.section_path for c in chunk(doc.text, parse(doc))}
    assert paths["員工每年"] == ("員工手冊", "休假規定") and paths["出差住宿"] == ("員工手冊", "差旅規定")


def test_tables_from_markdown_docx_and_html_are_rows_under_their_header(tmp_path: Path) -> None:
    """Issue 28: a table's rows are units with its header as their section, its span kept for display; a
    line with a pipe alone is no table."""
    from index.text.chunk import ChunkConfig, chunk
    from index.text.ingest import Document, html_to_document

    page = (
        "<html><head><title>差旅</title></head><body><article><h2>費用</h2>"
        "<p>出差的住宿與交通費用依下表辦理，超過上限須事先簽准，未經核准者不予報支。</p>"
        "<table><tr><th>項目</th><th>上限</th></tr><tr><td>住宿</td><td>每晚兩千元</td></tr>"
        "<tr><td>交通</td><td>高鐵標準車廂</td></tr></table>"
        "<p>其他費用另行規定，請洽人事室。這是一段足夠長的文字，讓頁面有主要內容可以擷取。</p></article></body></html>"
    )
    docx_doc = load_paths([docx_with_headings(tmp_path / "report.docx")])[0]
    markdown = Document(
        "md", "| 指標 | 數值 |\n|:---|---:|\n| 新增企業 | 一千二百家 |\n\n首頁 | 關於我們\n", format="md"
    )
    for doc, header, row in (
        (html_to_document("page", page), "項目 | 上限", "交通"),
        (docx_doc, "指標 | 數值", "新增企業"),
        (markdown, "指標 | 數值", "新增企業"),
    ):
        layout = parse(doc)
        (span,) = layout.metadata["table_spans"]
        table = doc.text[span[0] : span[1]]
        assert table.replace("|", "").split()[:2] == header.replace("|", "").split(), table
        rows = [p for p in layout.paragraphs if p.table_header]
        assert rows and all(p.table_header == header for p in rows)
        assert any(doc.text[p.start : p.end].replace("|", "").split()[0] == row for p in rows)
        for passage in chunk(doc.text, layout, ChunkConfig(whole_chars=0)):
            text = doc.text[passage.start : passage.end]
            assert not (row in text and ("其他費用" in text or "首頁" in text))  # nothing after joins the rows
            if text.lstrip("| ").startswith(row):  # a passage starting at a row: the header is its context
                assert passage.section == header and passage.section_path[-1] == header
    assert not [p for p in parse(Document("x", "首頁 | 關於我們\n\n內文。")).paragraphs if p.table_header]


def test_a_ragged_markdown_table_stays_one_table_and_piped_prose_is_no_table() -> None:
    from index.text.ingest import Document

    ragged = "| a | b | c |\n|---|---|---|\n| 1 | 2 | 3 |\n| 4 | 5 |\n| 6 | 7 | 8 |\n| 9 | 10 | 11 |\n"
    layout = parse(Document("t", ragged, format="md"))
    rows = [ragged[p.start : p.end] for p in layout.paragraphs if p.table_header]
    assert rows == ["| a | b | c |", "| 1 | 2 | 3 |", "| 4 | 5 |", "| 6 | 7 | 8 |", "| 9 | 10 | 11 |"]
    assert {p.table_header for p in layout.paragraphs} == {"a | b | c"} and len(layout.metadata["table_spans"]) == 1
    prose = "這份說明介紹兩個常用的命令，請照著輸入。\n用法：grep foo | sort\ncat a | wc -l\n"
    for fmt in ("txt", "md"):
        layout = parse(Document("p", prose, format=fmt))
        assert "table_spans" not in layout.metadata
        shown = [prose[p.start : p.end] for p in layout.paragraphs]
        assert shown[-2:] == ["用法：grep foo | sort", "cat a | wc -l"] and not any(
            p.table_header for p in layout.paragraphs
        )
