"""Decoding Chinese text files whatever their encoding: UTF-8, GB18030/GBK/GB2312, Big5, UTF-16/32.

A byte order mark decides first, then strict UTF-8. Otherwise every Chinese
legacy candidate that decodes without error is scored by how ordinary its text
reads: the share of its characters that are common in Chinese writing (from
jieba's word frequencies, after OpenCC folds traditional to simplified), so
Big5 bytes read as GB18030 (which accepts almost any bytes) score low. Short
files are where generic detectors fail: charset-normalizer reads the nine
characters 黃浦區政府工作報告 in Big5 as UTF-16-BE. When no Chinese candidate reads
plausibly, charset-normalizer's guess is taken; if nothing decodes, the error
names the file and the encodings tried. GB18030 stands for GBK and GB2312, its
subsets.
"""

from __future__ import annotations

import math
import os
import threading
from collections import Counter
from functools import lru_cache

from ..errors import DocumentError

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
#: Tried in this order; on equal scores the earlier wins.
CANDIDATES = ("gb18030", "big5hkscs", "utf-16-le", "utf-16-be")
#: Below this mean score per character a decoding is not taken as Chinese text.
MIN_SCORE = 0.5
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _common() -> dict[str, float]:
    """Characters of Chinese writing with a weight in [0, 1] by how often they occur (jieba's dictionary)."""
    import jieba

    counts: Counter[str] = Counter()
    with open(os.path.join(os.path.dirname(jieba.__file__), "dict.txt"), encoding="utf-8") as words:
        for line in words:
            word, freq, *_ = line.split(" ")
            for char in word:
                counts[char] += int(freq)
    top = math.log(max(counts.values()))
    return {char: min(1.0, math.log(1 + n) / top * 1.5) for char, n in counts.items()}


def plausibility(text: str) -> float:
    """Mean plausibility of the characters: 1 for ASCII and CJK punctuation, by frequency for ideographs."""
    from .normalize import to_simplified

    with _lock:
        common = _common()
    folded = to_simplified(text)
    total = 0.0
    counted = 0
    for char in folded:
        if char.isspace():
            continue
        counted += 1
        code = ord(char)
        if 0x20 <= code < 0x7F or 0x3000 <= code <= 0x303F or 0xFF00 <= code <= 0xFFEF:
            total += 1.0
        else:
            total += common.get(char, 0.0)
    return total / counted if counted else 0.0


def decode_text(raw: bytes, name: str) -> tuple[str, str]:
    """The text of ``raw`` and the encoding it was read with; ``DocumentError`` naming ``name`` if none fits."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding), encoding.removesuffix("-sig")
            except UnicodeDecodeError as exc:
                raise DocumentError(f"{name}: starts with a {encoding} byte order mark but is not {encoding}") from exc
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    scored = []
    for rank, encoding in enumerate(CANDIDATES):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        scored.append((plausibility(text), -rank, encoding, text))
    if scored:
        score, _, encoding, text = max(scored)
        if score >= MIN_SCORE:
            return text, "gb18030" if encoding == "gb18030" else encoding
    import charset_normalizer

    best = charset_normalizer.from_bytes(raw).best()
    if best is not None:
        return str(best), best.encoding.replace("_", "-")
    raise DocumentError(
        f"{name} is not text in any encoding tried (utf-8, {', '.join(CANDIDATES)}, and charset-normalizer's guesses)"
    )
