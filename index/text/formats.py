"""Text out of PDF and DOCX files, in reading order, with what citations need.

PDF (pypdf): each page's text layer, lines of one paragraph joined again (a CJK
line wrap is not a break), pages separated by a blank line; the document's
metadata records ``pages`` and ``page_offsets`` (where each page starts in the
text), from which a passage's pages follow (``pages_of``). Fonts in real PDFs map
some glyphs to the Kangxi radicals (U+2F00-U+2FDF) or the CJK radicals supplement
(U+2E80-U+2EFF) instead of the ideographs they look like: Chromium printing
一頁高文日長 gives ⼀⾴⾼⽂⽇⻑ through pypdf, which neither BM25 nor the model
matches. ``fold_radicals`` maps them back (NFKC for the Kangxi block, a table from
Unicode's EquivalentUnifiedIdeograph.txt for the supplement). A page range with no
text layer (a scan) or text that does not read as language (a broken font map)
is refused with that reason, not indexed as noise.

DOCX (python-docx): paragraphs and tables in body order; the Title style and
Heading 1-6 styles become Markdown headings, so sections come from the styles.
"""

from __future__ import annotations

import io
import math
import re
from bisect import bisect_right
from collections.abc import Mapping
from typing import Any

from ..errors import DocumentError
from .budgets import DEFAULT, Budgets, check_chars, check_pages
from .outline import outlined
from .paging import fold_radicals, paginated

_SENTENCE_END = "。！？；：」』”）)!?;:"
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
#: A page with fewer readable characters than this has no text layer worth the name.
MIN_PAGE_CHARS = 8
#: Below this plausibility (see ``encoding.plausibility``) extracted text is a broken font map.
MIN_PLAUSIBILITY = 0.5


def _reflow(page: str, headings: frozenset[str] = frozenset()) -> str:
    """Lines of one paragraph joined: a line that fills the width and does not end a sentence goes on;
    a heading line (``headings``) stands alone."""
    lines = [line.strip() for line in page.splitlines()]
    widths = sorted(len(line) for line in lines if line)
    if not widths:
        return ""
    full = widths[int(len(widths) * 0.9)] if len(widths) >= 3 else widths[-1]
    out: list[str] = []
    joining = False
    for line in lines:
        if not line:
            joining = False
            if out and out[-1] != "":
                out.append("")
            continue
        heading = line in headings
        if joining and out and not heading:
            prev = out[-1]
            glue = "" if _CJK.match(line[0]) or _CJK.match(prev[-1]) else " "
            out[-1] = prev + glue + line
        else:
            out.append(line)
        joining = not heading and len(line) >= full * 0.85 and line[-1] not in _SENTENCE_END
    return "\n".join(out).strip()


#: A line set at least this much larger than the body text is a heading (PDF).
HEADING_SIZE = 1.15
MAX_HEADING_CHARS = 40


#: A font whose name says one of these is a bold face (PDF base font names such as ``ABCDEF+NotoSansCJKtc-Bold``).
_BOLD = re.compile(r"bold|heavy|black|semibold|demibold|w[6-9]\b", re.IGNORECASE)


def _is_bold(font: Any) -> bool:
    """Whether a PDF font is a bold face: by its descriptor's weight (600 and above) or its names."""
    if not isinstance(font, Mapping):
        return False
    try:
        descriptor = font.get("/FontDescriptor")
        descriptor = descriptor.get_object() if descriptor is not None else {}
        weight = descriptor.get("/FontWeight") if isinstance(descriptor, Mapping) else None
        if isinstance(weight, int | float):
            return weight >= 600
        names = [font.get("/BaseFont"), descriptor.get("/FontName") if isinstance(descriptor, Mapping) else None]
    except (AttributeError, KeyError, TypeError, ValueError):
        return False
    return any(_BOLD.search(str(name)) for name in names if name is not None)


class _Sizes:
    """Each printed line of a PDF page with its font size and whether all of it is set bold
    (``extract_text``'s visitor: runs on one baseline make a line), for telling headings."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, float, bool]] = []
        self._y: float | None = None

    def __call__(self, text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if not text.strip() or "\n" in text:
            self._y = None
            return
        effective = abs(size * math.hypot(tm[2], tm[3]) * math.hypot(cm[2], cm[3]))
        bold = _is_bold(font)
        y = round(tm[5] * cm[3] + cm[5], 1)
        if self._y == y and self.lines:
            line, largest, all_bold = self.lines[-1]
            self.lines[-1] = (line + text, max(largest, effective), all_bold and bold)
        else:
            self.lines.append((text, effective, bold))
        self._y = y


def _heading_levels(pages: list[list[tuple[str, float, bool]]]) -> dict[str, int]:
    """Lines set larger than the body text (the size most characters have), by level: the largest size
    is level 1; then lines set wholly in bold at the body size, a level below those. Only short lines
    that end no sentence, and bold ones only where bold is not the body's own face."""
    weight: dict[float, int] = {}
    bold_chars = chars = 0
    for lines in pages:
        for line, size, bold in lines:
            weight[round(size, 1)] = weight.get(round(size, 1), 0) + len(line.strip())
            chars += len(line.strip())
            bold_chars += len(line.strip()) if bold else 0
    if not weight:
        return {}
    body = max(weight, key=lambda size: weight[size])
    found: dict[str, float] = {}
    emphasis: list[str] = []
    for lines in pages:
        for line, size, bold in lines:
            text = fold_radicals(line).strip()
            if not (1 < len(text) <= MAX_HEADING_CHARS and text[-1] not in _SENTENCE_END and "。" not in text):
                continue
            if size >= body * HEADING_SIZE:
                found.setdefault(text, round(size))
            elif bold and abs(size - body) < 0.5 and bold_chars < 0.3 * chars:
                emphasis.append(text)
    levels = {size: n for n, size in enumerate(sorted(set(found.values()), reverse=True), start=1)}
    headings = {text: min(6, levels[size]) for text, size in found.items()}
    for text in emphasis:
        headings.setdefault(text, min(6, len(levels) + 1))
    return headings


def read_pdf(raw: bytes, name: str, budgets: Budgets = DEFAULT) -> tuple[str, str, dict[str, Any]]:
    """(text, title, metadata) of a PDF; ``DocumentError`` for a scan, a broken text layer or a bad file,
    ``TooLargeError`` past the page or character budget."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    from .encoding import plausibility

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(f"{name}: the PDF is encrypted")
        check_pages(len(reader.pages), name, budgets)
        pages: list[str] = []
        sized: list[list[tuple[str, float, bool]]] = []
        chars = 0
        for pdf_page in reader.pages:
            sizes = _Sizes()
            pages.append(fold_radicals(pdf_page.extract_text(visitor_text=sizes) or ""))
            sized.append(sizes.lines)
            chars += len(pages[-1])
            check_chars(chars, name, budgets)
        info = reader.metadata
        title = str((info.get("/Title") if info is not None else None) or "").strip()
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise DocumentError(f"{name}: not a readable PDF ({exc})") from exc
    except RecursionError as exc:
        raise DocumentError(f"{name}: not a readable PDF (objects nested too deeply)") from exc
    if not pages:
        raise DocumentError(f"{name}: the PDF has no pages")
    levels = _heading_levels(sized)
    texts = [_reflow(page, frozenset(levels)) for page in pages]
    visible = [sum(1 for char in t if not char.isspace()) for t in texts]
    scanned = [n + 1 for n, count in enumerate(visible) if count < MIN_PAGE_CHARS]
    whole = f"the PDF has no text layer ({len(texts)} page(s) of images, a scan?)"
    if len(scanned) < len(texts):
        score = plausibility("\n".join(texts))
        if score < MIN_PLAUSIBILITY:  # a font without a Unicode map: its text layer is noise, its pages are not
            whole = (
                f"the PDF's text layer does not read as text (plausibility {score:.2f} of 1; a font without a"
                " Unicode map?)"
            )
            if not budgets.ocr:
                raise DocumentError(f"{name}: {whole} and OCR is turned off (ZHSEARCH_OCR)")
            scanned, levels = list(range(1, len(texts) + 1)), {}
    if not scanned:
        text, metadata = paginated(texts, levels)
        return text, title, metadata
    if not budgets.ocr:
        if len(scanned) == len(texts):
            raise DocumentError(f"{name}: {whole} and OCR is turned off (ZHSEARCH_OCR)")
        text, metadata = paginated(texts, levels, {"pages_without_text": scanned})  # said, not hidden
        return text, title, metadata
    from .ocr import read_pdf_pages, reported

    whole_scan = len(scanned) == len(texts)
    # A text PDF with more image pages than the OCR budget (figures, blank pages) is indexed with the
    # first of them read and the rest listed; a scan past the budget is refused (``read_pdf_pages``).
    unread = [] if whole_scan else scanned[budgets.ocr_pages :]
    read = read_pdf_pages(raw, scanned if whole_scan else scanned[: budgets.ocr_pages], name, budgets)
    for number, page in read.items():
        if page.readable:  # else the little the text layer had stays (a short page such as 附录)
            texts[number - 1] = page.text
    report = reported(read, name, whole=whole if whole_scan else None)
    if unread:
        report["pages_not_read"] = unread  # past ZHSEARCH_MAX_OCR_PAGES: said, not hidden
    text, metadata = paginated(texts, levels, report)
    check_chars(len(text), name, budgets)
    return text, title, metadata


def pages_of(metadata: Mapping[str, Any], start: int, end: int) -> list[int] | None:
    """The 1-based pages a ``[start, end)`` span of a paginated document lies on; None when not paginated."""
    offsets = metadata.get("page_offsets")
    if not isinstance(offsets, list) or not offsets:
        return None
    first = max(1, bisect_right(offsets, start))
    last = max(first, bisect_right(offsets, max(start, end - 1)))
    return list(range(first, last + 1))


_HEADING_STYLE = re.compile(r"^heading\s*([1-6])$", re.IGNORECASE)


def read_docx(raw: bytes, name: str) -> tuple[str, str, list[list[int]]]:
    """(text, title, headings) of a DOCX: body paragraphs and tables (a row a line, cells joined by
    `` | ``) in order; the Title style and Heading 1-6 are headings of levels 1 and 2-7 (at most 6),
    kept as ``metadata.headings`` (``text.outline``), not as markup in the text."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(raw))
    except (PackageNotFoundError, ValueError, KeyError) as exc:
        raise DocumentError(f"{name}: not a readable DOCX ({exc})") from exc
    except (MemoryError, RecursionError):
        raise  # the reader's budget, not the file's format: the caller says which
    except Exception as exc:  # a zip or XML error deep in the package reader
        raise DocumentError(f"{name}: not a readable DOCX ({type(exc).__name__})") from exc
    blocks: list[tuple[str, int | None]] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in block.rows]
            blocks.append(("\n".join(row for row in rows if row.replace("|", "").strip()), None))
            continue
        assert isinstance(block, Paragraph)
        text = block.text.strip()
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        heading = _HEADING_STYLE.match(style.strip())
        if style.strip().lower() == "title":
            blocks.append((text, 1))
        elif heading:
            blocks.append((text, min(6, int(heading.group(1)) + 1)))
        else:
            blocks.append((text, None))
    title = (document.core_properties.title or "").strip()
    text, headings = outlined(blocks)
    return text, title, headings
