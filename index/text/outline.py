"""A document's headings as its file marks them, kept beside its text rather than in it.

A DOCX's heading styles and an HTML page's ``<h1>``–``<h6>`` say which lines are headings;
the text keeps only their words (no ``##``), and ``metadata.headings`` keeps where each
starts and its level: ``[[offset, level], …]``. ``clean.parse`` takes those lines as
headings whatever they look like (a heading without numbering, or two headings in a row,
which the text alone would read as a list). Markdown files keep their ``#`` lines: they are
the file's own text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

#: The metadata field of a document's declared headings.
HEADINGS = "headings"

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![*\w])\*(?=\S)([^*]+?)(?<=\S)\*(?![*\w])")
#: A Markdown table's rule line (``|---|:--:|``): layout, not text.
TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")


def outlined(blocks: Iterable[tuple[str, int | None]]) -> tuple[str, list[list[int]]]:
    """Blocks of text (each with its heading level, None for body) joined by blank lines, and where
    each heading starts: the text and its ``metadata.headings``."""
    parts: list[str] = []
    headings: list[list[int]] = []
    position = 0
    for text, level in blocks:
        if not text.strip():
            continue
        if parts:
            position += 2
        if level is not None:
            headings.append([position, level])
        parts.append(text)
        position += len(text)
    return "\n\n".join(parts), headings


def from_markdown(markdown: str) -> list[tuple[str, int | None]]:
    """Blocks of Markdown as a converter writes it (trafilatura's): ``#`` headings as levels, emphasis,
    links and images as their words, table rules dropped; lines of a block (list items, table rows) kept."""
    blocks: list[tuple[str, int | None]] = []
    lines: list[str] = []

    def close() -> None:
        if lines:
            blocks.append(("\n".join(lines), None))
            lines.clear()

    for raw in markdown.splitlines():
        line = raw.strip()
        if not line:
            close()
            continue
        heading = _MD_HEADING.match(line)
        if heading:
            close()
            blocks.append((_plain(heading.group(2)), len(heading.group(1))))
            continue
        if TABLE_RULE.match(line):
            continue
        lines.append(_plain(line))
    close()
    return blocks


def _plain(line: str) -> str:
    line = _IMAGE.sub("", line)
    line = _LINK.sub(r"\1", line)
    line = _STRONG.sub(r"\2", line)
    return _EMPHASIS.sub(r"\1", line).strip()


def declared(metadata: Mapping[str, Any], text: str) -> dict[int, int]:
    """The headings ``metadata.headings`` declares, by offset: only entries that start a line of ``text``
    with a level of 1-6 (anything else there is a user's own field, and ignored)."""
    found: dict[int, int] = {}
    raw = metadata.get(HEADINGS)
    if not isinstance(raw, list):
        return found
    for entry in raw:
        if not (isinstance(entry, list | tuple) and len(entry) == 2 and all(type(v) is int for v in entry)):
            continue
        offset, level = entry
        if 0 <= offset < len(text) and 1 <= level <= 6 and (offset == 0 or text[offset - 1] == "\n"):
            found[offset] = level
    return found


__all__ = ["HEADINGS", "TABLE_RULE", "declared", "from_markdown", "outlined"]
