"""Real document files made in the test itself: PDFs, DOCX, legacy encodings.

The Chinese PDF is printed by Chromium from an ordinary UTF-8 page, exactly as a user's
browser would; its fonts make pypdf read 一頁高文日長 as Kangxi and supplement radicals.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PAGE = (
    '<!doctype html><html><head><meta charset="utf-8"><title>高雄市輕軌年報</title>'
    '<style>body{font-family:"Noto Sans CJK TC",sans-serif;font-size:14pt} .page{page-break-after:always}</style>'
    '</head><body><div class="page"><h1>第一頁：高雄市輕軌</h1><p>'
    "高雄市環狀輕軌串連駁二藝術特區與文化園區，每日平均運量在通車第一年即超過兩萬人次，沿線商圈營收成長明顯。"
    "市府表示，將持續優化班距並增設轉乘設施，讓市民通勤更加便利，同時帶動周邊觀光與在地產業的發展。"
    "</p></div><div><h1>第二頁：未來規劃</h1><p>"
    "第二階段工程預計於明年完工，屆時環狀路線全線貫通，長期目標是讓大眾運輸使用率提高到三成以上。"
    "</p></div></body></html>"
)


def chromium_pdf(folder: Path, name: str = "light-rail.pdf", html: str = PAGE) -> Path:
    """A two-page PDF printed by headless Chromium (the test is skipped where Chromium is missing)."""
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (make system-deps) to print a real PDF")
    page = folder / "page.html"
    page.write_text(html, encoding="utf-8")
    target = folder / name
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--print-to-pdf={target}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    page.unlink()
    return target


def scanned_pdf(path: Path, pages: int = 2) -> Path:
    """A PDF of pages with no text layer, as a scanner makes them."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    with path.open("wb") as out:
        writer.write(out)
    return path


def mojibake_pdf(path: Path) -> Path:
    """A PDF whose text layer is UTF-8 bytes shown through a Latin-1 font: it extracts as 黃浦區 read wrong."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    page = writer.add_blank_page(595, 842)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
    )
    garbled = "黃浦區人民政府工作報告，全區生產總值增長。".encode().decode("latin-1")
    lines = [garbled[i : i + 40] for i in range(0, len(garbled), 40)] * 3
    ops = "".join(
        f"BT /F1 12 Tf 72 {720 - n * 16} Td <{line.encode('latin-1').hex()}> Tj ET\n" for n, line in enumerate(lines)
    )
    stream = DecodedStreamObject()
    stream.set_data(ops.encode("ascii"))
    page.replace_contents(stream)
    with path.open("wb") as out:
        writer.write(out)
    return path


def docx_with_headings(path: Path) -> Path:
    """A DOCX with a Title, Heading 1 and Heading 2 styles, body paragraphs and a table."""
    import docx

    document = docx.Document()
    document.add_heading("黃浦區工作報告", 0)
    document.add_heading("一、經濟發展", 1)
    document.add_paragraph("全區生產總值比去年增長百分之五，服務業繼續領跑全區經濟。")
    document.add_heading("（一）金融服務", 2)
    document.add_paragraph("金融業增加值佔全區生產總值的比重超過三成，外資金融機構新增十二家。")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, (("指標", "數值"), ("新增企業", "一千二百家")), strict=True):
        row.cells[0].text, row.cells[1].text = cells
    buffer = io.BytesIO()
    document.save(buffer)
    path.write_bytes(buffer.getvalue())
    return path
