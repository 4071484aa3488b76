"""Scanned pages made in the test from known text: what OCR is measured and tested on.

A page is typeset with Debian's Noto CJK fonts (fonts-noto-cjk, installed by ``make
system-deps``) in the script asked for, wrapped by the printed width of its characters
as a word processor would, indented at each paragraph's first line, then optionally
turned (a skewed scan), faded (a low-contrast copy) or blurred, and saved as an image or
as an image-only PDF (no text layer, as a scanner makes it).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

FONTS = Path("/usr/share/fonts/opentype/noto")
#: Face of each script in Noto's CJK collections (.ttc index).
FACES = {"zh-cn": 2, "zh-tw": 3}
FILES = {"sans": "NotoSansCJK-Regular.ttc", "serif": "NotoSerifCJK-Regular.ttc", "bold": "NotoSansCJK-Bold.ttc"}


def have_fonts() -> bool:
    return all((FONTS / name).exists() for name in FILES.values())


def page_image(
    paragraphs: list[str],
    script: str = "zh-tw",
    font: str = "sans",
    size: int = 28,
    skew: float = 0.0,
    contrast: float = 1.0,
    blur: float = 0.0,
    width: int = 1240,
    height: int = 1754,
) -> Any:
    """A grey page (PIL image, 150 dpi A4 by default) with ``paragraphs`` typeset on it; every line must fit."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    face = ImageFont.truetype(str(FONTS / FILES[font]), size, index=FACES[script])
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    margin = width // 12
    y = margin
    for paragraph in paragraphs:
        line = "\u3000\u3000"  # the first line indented by two characters
        for char in paragraph:
            if face.getlength(line + char) > width - 2 * margin:
                draw.text((margin, y), line, font=face, fill=0)
                y += int(size * 1.6)
                line = ""
            line += char
        draw.text((margin, y), line, font=face, fill=0)
        y += int(size * 2.2)
        if y > height - margin:
            raise ValueError("the text does not fit on one page")
    if contrast != 1.0:
        page = page.point(lambda value: round(255 - (255 - value) * contrast))
    if blur:
        page = page.filter(ImageFilter.GaussianBlur(blur))
    if skew:
        page = page.rotate(skew, resample=Image.Resampling.BICUBIC, fillcolor=255)
    return page


def image_bytes(page: Any, kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    page.save(buffer, kind)
    return buffer.getvalue()


def scanned_pdf_bytes(pages: list[Any], dpi: int = 150) -> bytes:
    """An image-only PDF of ``pages``, one image a page."""
    buffer = io.BytesIO()
    pages[0].save(buffer, "PDF", save_all=True, append_images=pages[1:], resolution=dpi)
    return buffer.getvalue()


def accuracy(reference: str, read: str) -> float:
    """Character accuracy: 1 - edit distance / length of the reference, whitespace ignored (0 at worst)."""
    expected = "".join(reference.split())
    got = "".join(read.split())
    previous = list(range(len(got) + 1))
    for i, a in enumerate(expected, start=1):
        current = [i]
        for j, b in enumerate(got, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return max(0.0, 1 - previous[-1] / max(1, len(expected)))
