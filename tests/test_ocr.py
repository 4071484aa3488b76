"""OCR of scans and images, on pages typeset in the test from known text (``tests/scans.py``)."""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import pytest

from index import HashingEmbedder, Searcher, build_index
from index.errors import DocumentError, TooLargeError
from index.text.budgets import Budgets
from index.text.ingest import parse_bytes, read_paths
from index.text.ocr import _full_width, _Line, layout, read_image
from tests.documents import chromium_pdf
from tests.scans import accuracy, have_fonts, image_bytes, page_image, scanned_pdf_bytes

needs_fonts = pytest.mark.skipif(not have_fonts(), reason="needs Debian's fonts-noto-cjk (make system-deps)")

TAIWAN = [
    "高雄市環狀輕軌串連駁二藝術特區與文化園區，每日平均運量在通車第一年即超過兩萬人次。",
    "市府表示將持續優化班距並增設轉乘設施，讓市民通勤更加便利。",
]
MAINLAND = [
    "黄浦区推进外滩金融集聚带建设，全年引进高端服务业企业一百余家，区域经济保持稳定增长。",
    "区政府将继续优化营商环境，支持科创企业在本区落户发展。",
]


def _same(expected: list[str], read: str) -> float:
    return accuracy(unicodedata.normalize("NFKC", "".join(expected)), unicodedata.normalize("NFKC", read))


def test_lines_come_back_in_reading_order_as_paragraphs() -> None:
    """Boxes of one row joined left to right; a wide gap or an indented first line starts a paragraph; a
    row that ends short ends its paragraph."""
    height = 30.0

    def line(text: str, row: int, left: float = 100, right: float = 1100, gap: float = 0) -> _Line:
        top = 100 + row * 48 + gap
        return _Line(text, 0.99, left, right, top, top + height)

    lines = [
        line("第一段第二行，", 1),
        line("甲", 3, 100, 160),
        line("第一段開頭", 0, 160),
        line("乙", 3, 400, 460),
        line("完。", 2, 100, 400),
        line("第二段開頭。", 4, 160, 700, gap=40),
    ]
    assert layout(lines) == "第一段開頭第一段第二行，完。\n\n甲乙\n\n第二段開頭。"
    assert layout([]) == ""


def test_ascii_punctuation_between_chinese_is_set_full_width() -> None:
    assert _full_width("區域經濟,仍然穩健;增幅:第二?是!") == "區域經濟，仍然穩健；增幅：第二？是！"
    assert _full_width("總值1,209.37億元, Hello, world: ok") == "總值1,209.37億元， Hello, world: ok"


@needs_fonts
@pytest.mark.parametrize(
    ("paragraphs", "script", "options"),
    [
        (TAIWAN, "zh-tw", {}),
        (MAINLAND, "zh-cn", {"font": "serif", "size": 32}),
        (TAIWAN, "zh-tw", {"skew": 3.0}),
        (MAINLAND, "zh-cn", {"contrast": 0.3}),
    ],
    ids=["traditional", "simplified-serif", "skewed", "low-contrast"],
)
def test_pages_in_both_scripts_read_back(paragraphs: list[str], script: str, options: dict[str, float]) -> None:
    read = read_image(page_image(paragraphs, script=script, **options))  # type: ignore[arg-type]
    assert _same(paragraphs, read.text) >= 0.97, read.text
    assert read.readable and read.confidence >= 0.9
    assert read.text.count("\n\n") == 1  # two paragraphs, each of its lines joined


@needs_fonts
def test_a_scanned_pdf_is_read_page_by_page_with_its_confidence() -> None:
    from PIL import Image

    blank = Image.new("L", (1240, 1754), 255)
    pdf = scanned_pdf_bytes([page_image(TAIWAN), page_image(MAINLAND, script="zh-cn"), blank])
    (doc,) = parse_bytes("掃描.pdf", pdf)
    metadata = doc.metadata
    assert metadata["pages"] == 3 and [item["page"] for item in metadata["ocr"]] == [1, 2]
    assert all(item["confidence"] >= 0.9 and item["lines"] >= 2 for item in metadata["ocr"])
    assert metadata["pages_without_text"] == [3]
    first, second, third = metadata["page_offsets"]
    assert _same(TAIWAN, doc.text[first:second]) >= 0.97 and _same(MAINLAND, doc.text[second:third]) >= 0.97
    assert "，" in doc.text and "," not in doc.text  # punctuation as printed


@needs_fonts
def test_a_scanned_page_inside_a_text_pdf_is_read_and_marked(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    printed = chromium_pdf(tmp_path)  # two pages with a text layer (skips without Chromium)
    writer = PdfWriter()
    for source in (PdfReader(printed), PdfReader(io.BytesIO(scanned_pdf_bytes([page_image(MAINLAND, "zh-cn")])))):
        for page in source.pages:
            writer.add_page(page)
    mixed = tmp_path / "mixed.pdf"
    with mixed.open("wb") as out:
        writer.write(out)
    (doc,) = read_paths([mixed]).documents
    assert doc.metadata["pages"] == 3 and [item["page"] for item in doc.metadata["ocr"]] == [3]
    assert "高雄市環狀輕軌" in doc.text  # the text layer, as before
    assert _same(MAINLAND, doc.text[doc.metadata["page_offsets"][2] :]) >= 0.97


@needs_fonts
def test_image_files_are_documents(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "通知.png").write_bytes(image_bytes(page_image(TAIWAN)))
    (folder / "公告.jpg").write_bytes(image_bytes(page_image(MAINLAND, "zh-cn").convert("RGB"), "JPEG"))
    frames = [page_image(TAIWAN[:1]), page_image(MAINLAND[:1], "zh-cn")]
    tiff = io.BytesIO()
    frames[0].save(tiff, "TIFF", save_all=True, append_images=frames[1:])
    (folder / "傳真.tif").write_bytes(tiff.getvalue())
    loaded = read_paths([folder])
    assert not loaded.skipped
    docs = {doc.id: doc for doc in loaded.documents}
    assert set(docs) == {"通知", "公告", "傳真"} and {doc.format for doc in docs.values()} == {"image"}
    assert _same(TAIWAN, docs["通知"].text) >= 0.97 and _same(MAINLAND, docs["公告"].text) >= 0.97
    fax = docs["傳真"]
    assert fax.metadata["pages"] == 2 and [item["page"] for item in fax.metadata["ocr"]] == [1, 2]
    build_index(loaded.documents, tmp_path / "idx", HashingEmbedder())
    searcher = Searcher.load(tmp_path / "idx", HashingEmbedder())
    hit = searcher.search("增設轉乘設施", 1, "lexical").hits[0]
    assert hit.doc_id == "通知" and hit.pages == [1]
    hits = searcher.search("区域经济保持稳定增长", 5, "lexical").hits
    assert [2 in (hit.pages or []) for hit in hits if hit.doc_id == "傳真"] == [True]  # the fax's second page
    searcher.close()


def test_an_image_with_no_text_is_reported_not_indexed() -> None:
    import numpy as np
    from PIL import Image

    noise = Image.fromarray((np.random.default_rng(0).random((900, 700)) * 255).astype("uint8"))
    for name, image in (("空白.png", Image.new("L", (700, 900), 255)), ("雜訊.png", noise)):
        with pytest.raises(DocumentError, match=rf"{name}: an image of 1 page\(s\) and OCR read no usable text on it"):
            parse_bytes(name, image_bytes(image))
    with pytest.raises(DocumentError, match=r"bad\.png: not a readable image"):
        parse_bytes("bad.png", b"\x89PNG not really")


@needs_fonts
def test_ocr_can_be_turned_off_and_stays_within_budgets() -> None:
    from PIL import Image

    off = Budgets(ocr=False)
    page = page_image(TAIWAN)
    with pytest.raises(DocumentError, match=r"scan\.pdf: the PDF has no text layer .* OCR is turned off"):
        parse_bytes("scan.pdf", scanned_pdf_bytes([page]), budgets=off)
    with pytest.raises(DocumentError, match=r"a\.png: an image is read by OCR, which is turned off"):
        parse_bytes("a.png", image_bytes(page), budgets=off)
    with pytest.raises(TooLargeError, match=r"3 pages to read by OCR; the limit is 2 \(ZHSEARCH_MAX_OCR_PAGES\)"):
        parse_bytes("scan.pdf", scanned_pdf_bytes([page] * 3), budgets=Budgets(ocr_pages=2))
    huge = io.BytesIO()
    Image.new("1", (12000, 12000), 1).save(huge, "PNG")  # small file, a 144-megapixel page
    assert len(huge.getvalue()) < 1_000_000
    with pytest.raises(TooLargeError, match=r"huge\.png: page 1 is 12000×12000 pixels"):
        parse_bytes("huge.png", huge.getvalue())


@needs_fonts
def test_uploads_are_read_by_ocr_in_the_parsing_process(tmp_path: Path) -> None:
    """Through the API (the parse runs in the sandboxed child within its budgets): a scanned PDF and a photo
    are accepted, marked and found; OCR turned off refuses them with the reason (400) and changes nothing."""
    from fastapi.testclient import TestClient

    from index import Document, Settings
    from index.writing.live import LiveIndex
    from service.app import create_app

    build_index([Document("base", "黃浦區的基礎文件。")], tmp_path / "idx", HashingEmbedder())
    scan = scanned_pdf_bytes([page_image(TAIWAN), page_image(MAINLAND, "zh-cn")])
    photo = image_bytes(page_image(MAINLAND, "zh-cn"))
    for ocr in (True, False):
        live = LiveIndex.open(tmp_path / "idx", HashingEmbedder())
        settings = Settings(index_dir=tmp_path / "idx", model="hashing", ocr=ocr)
        try:
            with TestClient(create_app(settings, index=live), base_url="http://127.0.0.1") as client:
                files = [("file", ("掃描.pdf", scan, "application/pdf")), ("file", ("照片.png", photo, "image/png"))]
                posted = client.post("/v1/documents", files=files)
                if not ocr:
                    assert posted.status_code == 400, posted.text
                    assert "OCR is turned off" in posted.text
                    assert client.get("/v1/documents/照片").status_code == 404
                    continue
                assert posted.status_code == 201, posted.text
                hit = client.post("/v1/search", json={"query": "增設轉乘設施", "mode": "lexical", "k": 1}).json()
                assert hit["results"][0]["doc_id"] == "掃描" and 1 in hit["results"][0]["pages"]
                document = client.get("/v1/documents/掃描").json()
                assert [item["page"] for item in document["metadata"]["ocr"]] == [1, 2]
                assert client.delete("/v1/documents/掃描").status_code == 204
                assert client.delete("/v1/documents/照片").status_code == 204
        finally:
            live.close()


@needs_fonts
def test_a_sync_does_not_read_an_unchanged_scan_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from index import build_empty, sync_folder
    from index.text import ocr
    from index.writing.live import LiveIndex

    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "通知.png").write_bytes(image_bytes(page_image(TAIWAN)))
    build_empty(tmp_path / "idx", HashingEmbedder())
    index = LiveIndex.open(tmp_path / "idx", HashingEmbedder())
    read = ocr.read_image
    calls: list[int] = []

    def counted(image: object) -> ocr.PageText:
        calls.append(1)
        return read(image)

    monkeypatch.setattr(ocr, "read_image", counted)
    try:
        assert sync_folder(index, folder).added == ["通知"] and len(calls) == 1
        again = sync_folder(index, folder)
        assert not again.touched and again.unchanged == 1 and len(calls) == 1  # same bytes: not read again
        (folder / "通知.png").write_bytes(image_bytes(page_image(MAINLAND, "zh-cn")))
        assert sync_folder(index, folder).changed == ["通知"] and len(calls) == 2
        assert "外滩金融" in index.document("通知").text
    finally:
        index.close()


@needs_fonts
def test_transparent_and_16_bit_images_read_like_grey_ones() -> None:
    """`convert("RGB")` would make a transparent PNG black and a 16-bit TIFF white: both read as pages."""
    import numpy as np
    from PIL import Image

    page = page_image(TAIWAN)
    transparent = Image.new("RGBA", page.size, (0, 0, 0, 0))
    transparent.putalpha(page.point(lambda value: 255 - value))  # black text on nothing
    deep = Image.fromarray((np.asarray(page).astype(np.uint16) * 257).astype(np.uint16))
    assert deep.mode.startswith("I;16")
    for image in (transparent, deep):
        assert _same(TAIWAN, read_image(image).text) >= 0.97


@needs_fonts
def test_a_text_pdf_past_the_ocr_budget_keeps_its_text_and_lists_what_was_not_read(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    printed = chromium_pdf(tmp_path)  # two text pages (skips without Chromium)
    writer = PdfWriter()
    scans = PdfReader(io.BytesIO(scanned_pdf_bytes([page_image(MAINLAND, "zh-cn")] * 2)))
    for page in [*PdfReader(printed).pages, *scans.pages]:
        writer.add_page(page)
    mixed = io.BytesIO()
    writer.write(mixed)
    (doc,) = parse_bytes("mixed.pdf", mixed.getvalue(), budgets=Budgets(ocr_pages=1))
    assert [item["page"] for item in doc.metadata["ocr"]] == [3] and doc.metadata["pages_not_read"] == [4]
    assert "高雄市環狀輕軌" in doc.text and "file_sha256" in doc.metadata
