"""Glyphs and pages shared by the readers of paginated files (``formats`` for PDFs, ``ocr`` for scans).

Fonts in real PDFs map some glyphs to the Kangxi radicals (U+2F00-U+2FDF) or the CJK radicals
supplement (U+2E80-U+2EFF) instead of the ideographs they look like; ``fold_radicals`` maps them
back. ``paginated`` joins pages' texts into one, with the offsets citations need.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from .outline import HEADINGS

# CJK radicals supplement → the ideograph each stands for (EquivalentUnifiedIdeograph.txt).
_SUPPLEMENT = dict(
    zip(
        "⺁⺂⺃⺄⺅⺆⺇⺈⺉⺊⺋⺌⺍⺎⺏⺐⺒⺓⺔⺕⺖⺗⺘⺙⺛⺜⺝⺞⺟⺠⺡⺢⺣⺤⺥⺦⺧⺨⺩⺪⺫⺬⺭⺮⺯⺰⺱⺲⺳⺴⺵⺶⺷⺸⺹⺺⺻⺼⺽⺾⺿⻀⻁⻂⻃⻄⻅⻆⻈⻉⻊⻋⻌⻍⻎⻏⻐⻑⻒⻓⻔⻕⻖⻗⻘⻙⻚⻛⻜⻝⻟⻠⻡⻢⻣⻤⻥⻦⻧⻨⻩⻪⻫⻬⻭⻮⻯⻰⻱⻲⻳",
        "厂乛乚乙亻冂几刀刂卜㔾小小兀尣尢巳幺彑彐忄心扌攵旡日月歺母民氵氺灬爫爫丬牛犭王疋目示礻竹糸纟罓罒㓁网网羊羊羊耂肀聿月臼艹艹艹虎衤覀西见角讠贝足车辶辶辶阝钅長镸长门阝阝雨青韦页风飞食飠饣首马骨鬼鱼鸟卤麦黄黾斉齐歯齿竜龙龜亀龟",
        strict=True,
    )
)
_RADICAL = re.compile("[\u2e80-\u2eff\u2f00-\u2fdf\uf900-\ufaff]")


def fold_radicals(text: str) -> str:
    """Radical and compatibility code points that stand for ideographs, as those ideographs."""

    def fold(match: re.Match[str]) -> str:
        char = match.group()
        return _SUPPLEMENT.get(char) or unicodedata.normalize("NFKC", char)

    return _RADICAL.sub(fold, text)


def paginated(
    texts: list[str], levels: Mapping[str, int] | None = None, extra: Mapping[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """Pages' texts as one text with ``pages``, ``page_offsets`` and the heading lines' offsets."""
    offsets: list[int] = []
    headings: list[list[int]] = []
    text = ""
    for page in texts:
        if text:
            text += "\n\n"
        offsets.append(len(text))
        position = len(text)
        for line in page.split("\n"):
            if levels and line in levels:
                headings.append([position, levels[line]])
            position += len(line) + 1
        text += page
    metadata: dict[str, Any] = {"pages": len(texts), "page_offsets": offsets, **(extra or {})}
    if headings:
        metadata[HEADINGS] = headings  # set larger than the body: sections (``text.outline``)
    return text, metadata
