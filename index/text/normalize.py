"""Script normalization: one pure function used at index time and query time.

``normalize`` maps traditional, simplified and Taiwan-phrased Chinese onto one
matching form (simplified script, mainland wording), folds full-width ASCII,
collapses whitespace and lower-cases. It is for matching only: the original
text is what gets stored and shown.

OpenCC's ``tw2s`` converts characters and Taiwan character variants but keeps
Taiwan vocabulary (套用, 最佳化, 網際網路 ...), while ``tw2sp`` fixes that at
the cost of rewriting ordinary mainland words (建立→创建, 核心→内核). So we run
``tw2s`` and then our own small phrase table (``data/tw_phrases.txt``). The
table is applied to the simplified output, with its keys converted by OpenCC
``t2s``, for two reasons: simplified input (民众, 网路) must meet the same
rules as traditional input, or the result would depend on the script typed; and
a replacement we make ourselves has exact offsets, which highlighting needs
(``normalize_with_map``).
"""

from __future__ import annotations

import hashlib
import re
import threading
from functools import lru_cache
from pathlib import Path

import opencc

PROFILE = "tw2s+zhsearch-phrases+fold-v3"
_DICT_PATH = Path(__file__).parent / "data" / "tw_phrases.txt"
_SPACE_RE = re.compile(r"\s+")
# U+FF01..U+FF5E mirror ASCII 0x21..0x7E; U+3000 is the ideographic space.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_lock = threading.Lock()


def dictionary_hash() -> str:
    """Hash of the phrase dictionary, recorded in each index manifest."""
    return hashlib.sha256(_DICT_PATH.read_bytes()).hexdigest()[:16]


def _pairs() -> list[tuple[str, str]]:
    pairs = []
    for raw in _DICT_PATH.read_text(encoding="utf-8").splitlines():
        if raw.strip() and not raw.startswith("#"):
            key, value = raw.split("\t")
            pairs.append((key.strip(), value.strip()))
    return pairs


@lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    return opencc.OpenCC("tw2s")


@lru_cache(maxsize=1)
def _phrases() -> tuple[re.Pattern[str], dict[str, str]]:
    plain = opencc.OpenCC("t2s")
    table = {plain.convert(key): value for key, value in _pairs()}
    keys = sorted(table, key=len, reverse=True)  # longest first: 人工智慧 before 智慧型
    return re.compile("|".join(map(re.escape, keys))), table


def _tw2s(text: str) -> str:
    converter = _converter()
    with _lock:  # the OpenCC object is not documented as thread-safe
        return str(converter.convert(text))


def fold_width(text: str) -> str:
    """Full-width ASCII to ASCII; every whitespace run to one space; lower case."""
    return _SPACE_RE.sub(" ", text.translate(_FULLWIDTH)).strip().lower()


def to_simplified(text: str) -> str:
    """OpenCC tw2s plus the zhsearch phrase table, without folding."""
    pattern, table = _phrases()
    return pattern.sub(lambda m: table[m.group(0)], _tw2s(text))


def normalize(text: str) -> str:
    """The matching form of ``text``: simplified script, mainland wording, folded."""
    return fold_width(to_simplified(text))


def normalize_with_map(text: str) -> tuple[str, list[int]]:
    """``normalize(text)`` plus, for each of its characters, the offset in ``text`` it came from.

    The list has one extra entry, ``len(text)``, so a normalized span ``[a, b)``
    maps back to ``[offsets[a], offsets[b - 1] + 1)`` of the original.
    """
    converted = _tw2s(text)
    if len(converted) == len(text):
        source = list(range(len(text)))
    else:  # OpenCC changed the length (rare): spread the difference evenly
        source = [min(len(text) - 1, i * len(text) // max(1, len(converted))) for i in range(len(converted))]
    pattern, table = _phrases()
    chars: list[str] = []
    offsets: list[int] = []
    position = 0
    for match in pattern.finditer(converted):
        chars.extend(converted[position : match.start()])
        offsets.extend(source[position : match.start()])
        replacement = table[match.group(0)]
        span = source[match.start() : match.end()]
        for i, char in enumerate(replacement):  # a phrase maps onto the whole original phrase
            chars.append(char)
            offsets.append(span[min(i * len(span) // len(replacement), len(span) - 1)])
        position = match.end()
    chars.extend(converted[position:])
    offsets.extend(source[position:])

    out_chars: list[str] = []
    out_offsets: list[int] = []
    for char, offset in zip(chars, offsets, strict=True):
        folded = char.translate(_FULLWIDTH)
        if folded.isspace():
            if not out_chars or out_chars[-1] == " ":
                continue
            folded = " "
        for piece in folded.lower():
            out_chars.append(piece)
            out_offsets.append(offset)
    if out_chars and out_chars[-1] == " ":
        out_chars.pop()
        out_offsets.pop()
    out_offsets.append(len(text))
    return "".join(out_chars), out_offsets


def original_span(offsets: list[int], start: int, end: int) -> tuple[int, int]:
    """The span of the original text that normalized ``[start, end)`` came from."""
    if end <= start:
        return offsets[start], offsets[start]
    return offsets[start], offsets[end - 1] + 1


@lru_cache(maxsize=2)
def _display_converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


def convert_script(texts: list[str], to: str) -> list[str]:
    """Texts for display in the other script (not for matching: no folding).

    Simplified uses the matching conversion (tw2s plus the phrase table), so a
    mainland reader sees 互联网诊疗 rather than a character-for-character
    网际网路诊疗; traditional is OpenCC s2t.
    """
    if to == "simplified":
        return [to_simplified(text) for text in texts]
    converter = _display_converter("s2t")
    with _lock:
        return [converter.convert(text) for text in texts]
