"""Text from page images (scanned PDF pages, photographed or scanned image files), read by OCR on the CPU.

The engine is RapidOCR (``rapidocr``, Apache-2.0) with the PP-OCRv6 small detection and
recognition models that ship inside its wheel, so nothing is downloaded. It was chosen
by measurement (``benchmarks/ocr.py``, docs/benchmarks.md "OCR"): on pages rendered from
known text in both scripts, several fonts and sizes, a skewed and a low-contrast page, it
read 99-100% of the characters of simplified and traditional text alike at 2-2.5 s a page
on two cores, where Tesseract 5 needs the language chosen per page (chi_sim reads
traditional text at 64%, chi_tra simplified at 60-65%, both models together 83-92% at
7.7 s) and takes 4.1 s.

A page is read once; when its lines lean (the median slope of the detected lines is more
than ``DESKEW_DEGREES``), the page is turned level and read again, which keeps a 2°
scan's lines from being misread. Lines are put back in reading order: boxes on one row
are joined, rows become paragraphs unless a wider gap or an indented first line starts a
new one. ASCII punctuation between Chinese characters (what the recognizer outputs for
，；：？！) is set full-width as printed, and radical and compatibility forms are folded as
for text PDFs.

Each page has a confidence (the recognizer's line scores weighted by characters). A page
with too few characters or a confidence under ``MIN_CONFIDENCE`` is unreadable: reported,
not indexed as noise. One engine per process, its calls serialized (``_lock``).
"""

from __future__ import annotations

import io
import math
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import DocumentError, TooLargeError
from .budgets import DEFAULT, Budgets, check_chars, check_pages
from .paging import fold_radicals, paginated

#: Below this confidence (0-1) a page's text is noise, not text.
MIN_CONFIDENCE = 0.75
#: A page with fewer characters than this read nothing worth indexing.
MIN_CHARS = 4
#: A line read with a lower score is recognized again from a looser crop (``_again``).
RETRY_SCORE = 0.9
#: Lines read with a lower score than this are noise (a speck, a stamp) and left out.
MIN_LINE_SCORE = 0.6
#: Lines leaning more than this (degrees) are turned level and read again.
DESKEW_DEGREES = 0.3
#: A page whose darkest and lightest pixels differ by less than this is blank: not read.
BLANK_CONTRAST = 24
#: The longest side a page is read at (pixels): ~170 dpi for A4, what the detector is made for.
MAX_SIDE = 2000
#: Pixels of one page image decoded at most (a small file can declare a huge bitmap).
MAX_PIXELS = 60_000_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")

_lock = threading.Lock()
_engine: Any = None
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")
_FULL_WIDTH = {",": "，", ";": "；", ":": "：", "?": "？", "!": "！"}
_PUNCTUATION = re.compile(
    r"(?<=[\u3400-\u9fff\uf900-\ufaff」』）])\s*([,;:?!])|([,;:?!])\s*(?=[\u3400-\u9fff\uf900-\ufaff「『（])"
)


@dataclass(frozen=True)
class PageText:
    """What OCR read on one page: its text (paragraphs separated by blank lines) and how sure it is."""

    text: str
    confidence: float
    lines: int

    @property
    def readable(self) -> bool:
        visible = sum(1 for char in self.text if not char.isspace())
        return visible >= MIN_CHARS and self.confidence >= MIN_CONFIDENCE


def _reader() -> Any:
    global _engine
    if _engine is None:
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:
            raise DocumentError(
                "OCR needs the rapidocr package (pip install rapidocr, part of zhsearch's dependencies)"
            ) from exc
        _engine = RapidOCR(
            params={"Global.log_level": "error", "Global.max_side_len": MAX_SIDE, "Global.text_score": 0.3}
        )
    return _engine


@dataclass(frozen=True)
class _Line:
    text: str
    score: float
    left: float
    right: float
    top: float
    bottom: float

    @property
    def height(self) -> float:
        return self.bottom - self.top


def _lines(result: Any) -> list[_Line]:
    if result is None or result.boxes is None or result.txts is None:
        return []
    lines = []
    for box, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
        xs = [float(point[0]) for point in box]
        ys = [float(point[1]) for point in box]
        if text.strip():
            lines.append(_Line(text.strip(), float(score), min(xs), max(xs), min(ys), max(ys)))
    return lines


def _slope(result: Any) -> float:
    """The median lean of the detected lines' top edges, in degrees (image coordinates, y down)."""
    if result is None or result.boxes is None:
        return 0.0
    angles = sorted(
        math.degrees(math.atan2(float(box[1][1]) - float(box[0][1]), float(box[1][0]) - float(box[0][0])))
        for box in result.boxes
        if float(box[1][0]) - float(box[0][0]) > 4 * max(1.0, float(box[3][1]) - float(box[0][1]))
    )
    return angles[len(angles) // 2] if len(angles) >= 2 else 0.0


def _glue(left: str, right: str) -> str:
    return "" if _CJK.match(left[-1]) or _CJK.match(right[0]) else " "


def layout(lines: Sequence[_Line]) -> str:
    """Detected lines in reading order as paragraphs: boxes sharing a row joined left to right; a row
    starts a new paragraph after a gap wider than a line, or when it is indented (a Chinese paragraph's
    first line) while the row before it was full."""
    rows: list[list[_Line]] = []
    for line in sorted(lines, key=lambda item: (item.top + item.bottom) / 2):
        middle = (line.top + line.bottom) / 2
        if rows and abs(middle - sum((item.top + item.bottom) / 2 for item in rows[-1]) / len(rows[-1])) < (
            0.5 * min(line.height, rows[-1][0].height)
        ):
            rows[-1].append(line)
        else:
            rows.append([line])
    if not rows:
        return ""
    heights = sorted(line.height for line in lines)
    height = heights[len(heights) // 2]
    margin = min(line.left for line in lines)
    edge = max(line.right for line in lines)
    paragraphs: list[str] = []
    previous: list[_Line] | None = None
    for row in rows:
        row.sort(key=lambda item: item.left)
        text = row[0].text
        for item in row[1:]:
            text += _glue(text, item.text) + item.text
        if previous is None:
            paragraphs.append(text)
        else:
            gap = row[0].top - max(item.bottom for item in previous)
            indented = row[0].left - margin > 1.2 * height
            full = edge - max(item.right for item in previous) < 1.5 * height
            if gap > 1.0 * height or indented or not full:
                paragraphs.append(text)
            else:
                paragraphs[-1] += _glue(paragraphs[-1], text) + text
        previous = row
    return "\n\n".join(paragraphs)


def _full_width(text: str) -> str:
    """ASCII , ; : ? ! touching Chinese text set full-width, as the page printed them."""
    return _PUNCTUATION.sub(lambda match: _FULL_WIDTH[match.group(1) or match.group(2)], text)


def read_image(image: Any) -> PageText:
    """OCR of one page image (a PIL image)."""
    import numpy as np
    from PIL import Image

    page = _upright_rgb(image)
    low, high = page.convert("L").getextrema()
    if high - low < BLANK_CONTRAST:  # an empty page (or a flat figure): nothing to read, no model run
        return PageText(text="", confidence=0.0, lines=0)
    scale = MAX_SIDE / max(page.size)
    if scale < 1:
        page = page.resize(
            (max(1, round(page.width * scale)), max(1, round(page.height * scale))), Image.Resampling.LANCZOS
        )
    with _lock:
        engine = _reader()
        result = engine(np.asarray(page), use_det=True, use_cls=True, use_rec=True)
        lean = _slope(result)
        if abs(lean) > DESKEW_DEGREES:  # read again level: rows of a leaning page overlap
            page = page.rotate(lean, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255))
            result = engine(np.asarray(page), use_det=True, use_cls=True, use_rec=True)
        pixels = np.asarray(page)
        lines = [_again(engine, pixels, line) if line.score < RETRY_SCORE else line for line in _lines(result)]
    lines = [line for line in lines if line.score >= MIN_LINE_SCORE]
    text = fold_radicals(_full_width(layout(lines)))
    return PageText(text=text, confidence=round(_confidence(lines), 3), lines=len(lines))


def _again(engine: Any, pixels: Any, line: _Line) -> _Line:
    """A line the recognizer was unsure of, recognized again from a looser, upright crop of the page (the
    engine's own crop follows the detected outline closely, and a blurred or bold line then loses its
    edges); the surer reading is kept."""
    pad_y = 0.15 * line.height
    pad_x = 0.5 * line.height
    top, bottom = max(0, int(line.top - pad_y)), min(pixels.shape[0], int(line.bottom + pad_y) + 1)
    left, right = max(0, int(line.left - pad_x)), min(pixels.shape[1], int(line.right + pad_x) + 1)
    if bottom - top < 4 or right - left < 4:
        return line
    again = engine(pixels[top:bottom, left:right], use_det=False, use_cls=False, use_rec=True)
    if not again.txts or not again.txts[0].strip() or float(again.scores[0]) <= line.score:
        return line
    return replace(line, text=again.txts[0].strip(), score=float(again.scores[0]))


def _upright_rgb(image: Any) -> Any:
    """The image as 8-bit RGB on white: 16-bit and float greys scaled to their range (``convert`` would
    clip them white), transparency laid on a white page (it would turn black)."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        low, high = image.getextrema()
        span = float(high - low) or 1.0
        image = image.point(lambda value: (value - low) * 255.0 / span).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        page = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        page.alpha_composite(rgba)
        return page.convert("RGB")
    return image.convert("RGB")


def _confidence(lines: Sequence[_Line]) -> float:
    chars = sum(len(line.text) for line in lines)
    return sum(line.score * len(line.text) for line in lines) / chars if chars else 0.0


def _frames(raw: bytes, name: str, budgets: Budgets) -> Iterator[Any]:
    """Each page (frame) of an image file, checked against the pixel and page budgets before decoding."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # the pixel budget below is ours: Pillow's warning is not needed
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
    except Image.DecompressionBombError as exc:
        raise TooLargeError(f"{name}: the image is larger than {MAX_PIXELS} pixels ({exc})") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DocumentError(f"{name}: not a readable image ({exc})") from exc
    frames = getattr(image, "n_frames", 1)
    check_pages(frames, name, budgets)
    for index in range(frames):
        image.seek(index)
        if image.width * image.height > MAX_PIXELS:
            raise TooLargeError(
                f"{name}: page {index + 1} is {image.width}×{image.height} pixels; the limit is {MAX_PIXELS} pixels"
            )
        try:
            image.load()
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise DocumentError(f"{name}: page {index + 1} is not a readable image ({exc})") from exc
        yield image


def read_image_file(raw: bytes, name: str, budgets: Budgets = DEFAULT) -> tuple[str, dict[str, Any]]:
    """(text, metadata) of an image file read by OCR, a page per frame (a multi-page TIFF), with ``pages``,
    ``page_offsets`` and the OCR report (``reported``) as for a scanned PDF; ``DocumentError`` when OCR is
    off or reads nothing usable."""
    if not budgets.ocr:
        raise DocumentError(f"{name}: an image is read by OCR, which is turned off (ZHSEARCH_OCR)")
    read: dict[int, PageText] = {}
    try:
        for number, frame in enumerate(_frames(raw, name, budgets), start=1):
            if number > budgets.ocr_pages:
                raise TooLargeError(
                    f"{name}: more than {budgets.ocr_pages} pages to read by OCR (ZHSEARCH_MAX_OCR_PAGES)"
                )
            read[number] = read_image(frame)
    except (DocumentError, TooLargeError, MemoryError):
        raise
    except Exception as exc:  # the image decoder or the OCR engine on a malformed page: the file is bad
        raise DocumentError(f"{name}: cannot be read by OCR ({type(exc).__name__}: {exc})") from exc
    report = reported(read, name, whole=f"an image of {len(read)} page(s)")
    text, metadata = paginated([page.text if page.readable else "" for page in read.values()], extra=report)
    check_chars(len(text), name, budgets)
    return text, metadata


def reported(read: dict[int, PageText], name: str, whole: str | None = None) -> dict[str, Any]:
    """What OCR made of the pages it read, as metadata: ``ocr`` (each page used: number, confidence, lines),
    ``pages_unreadable`` (text found but too unsure to index) and ``pages_without_text`` (nothing found).
    When OCR read the whole file (``whole``: what the file is, for the message) and no page was usable, a
    ``DocumentError`` says so."""
    used = [
        {"page": number, "confidence": page.confidence, "lines": page.lines}
        for number, page in sorted(read.items())
        if page.readable
    ]
    unsure = [number for number, page in sorted(read.items()) if not page.readable and page.lines]
    blank = [number for number, page in sorted(read.items()) if not page.lines]
    if whole is not None and not used:
        said = ", ".join(f"{page.confidence:.2f}" for page in read.values() if page.lines)
        raise DocumentError(
            f"{name}: {whole} and OCR read no usable text on {'it' if len(read) == 1 else 'them'}"
            + (f" (confidence {said}; a page needs {MIN_CONFIDENCE:.2f})" if said else " (no text found)")
        )
    report: dict[str, Any] = {"ocr": used}  # present whenever OCR ran (a sync then knows not to read it again)
    if unsure:
        report["pages_unreadable"] = unsure
    if blank:
        report["pages_without_text"] = blank
    return report


def read_pdf_pages(raw: bytes, numbers: Sequence[int], name: str, budgets: Budgets = DEFAULT) -> dict[int, PageText]:
    """OCR of the given 1-based pages of a PDF, each rendered by PDFium (``pypdfium2``) with its longest
    side at ``MAX_SIDE`` pixels, whatever the page's images, masks and rotation."""
    if len(numbers) > budgets.ocr_pages:
        raise TooLargeError(
            f"{name}: {len(numbers)} pages to read by OCR; the limit is {budgets.ocr_pages} (ZHSEARCH_MAX_OCR_PAGES)"
        )
    try:
        return _read_pdf_pages(raw, numbers, name)
    except (DocumentError, TooLargeError, MemoryError):
        raise
    except Exception as exc:  # PDFium or the OCR engine on a malformed page: the file is bad, not the server
        raise DocumentError(f"{name}: its scanned pages cannot be read ({type(exc).__name__}: {exc})") from exc


def _read_pdf_pages(raw: bytes, numbers: Sequence[int], name: str) -> dict[int, PageText]:
    import pypdfium2

    read: dict[int, PageText] = {}
    with _pdfium:
        try:
            document = pypdfium2.PdfDocument(raw)
        except pypdfium2.PdfiumError as exc:
            raise DocumentError(f"{name}: PDFium cannot open the PDF to read its scanned pages ({exc})") from exc
        try:
            for number in numbers:
                page = document[number - 1]
                try:
                    width, height = page.get_size()
                    image = page.render(scale=MAX_SIDE / max(1.0, width, height), grayscale=True).to_pil()
                finally:
                    page.close()
                read[number] = read_image(image)  # one page image in memory at a time
        finally:
            document.close()
    return read


#: PDFium is not thread-safe: one document at a time in a process.
_pdfium = threading.Lock()
