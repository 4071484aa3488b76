"""Sentence-aware passages with exact offsets into the original text.

Paragraphs are split into sentences at 。！？；(and their ASCII forms), then
packed greedily into passages of at most ``max_chars`` characters. A passage
that follows another in the same paragraph repeats the previous passage's
trailing sentences (up to ``overlap_chars``) so a fact on the boundary is
whole in at least one passage. A sentence longer than ``max_chars`` is cut at
clause marks (，、：), and only as a last resort at ``max_chars``. Paragraphs
shorter than ``min_chars`` are joined with the next paragraph of their section
(or of a subsection under it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from .clean import Layout, Paragraph

_SENTENCE = re.compile(r"[^。！？；!?;\n]*(?:[。！？；!?;]+[”’」』）)\"']*|\n|$)")
_CLAUSE = re.compile(r"[^，,、：:]*(?:[，,、：:]+|$)")


# Bump when the splitting or cleaning rules change, so old indexes are rebuilt, not reused.
CHUNKER_VERSION = 7


@dataclass(frozen=True)
class ChunkConfig:
    max_chars: int = 250
    min_chars: int = 80
    overlap_chars: int = 60
    #: A document whose text (under one section) spans at most this many characters is one passage:
    #: an answer that is a whole short document (a FAQ entry) is embedded whole, not in halves.
    whole_chars: int = 500

    def as_dict(self) -> dict[str, int]:
        return asdict(self) | {"version": CHUNKER_VERSION}


@dataclass(frozen=True)
class Chunk:
    start: int
    end: int
    section: str
    section_path: tuple[str, ...]


Span = tuple[int, int]


def _spans(pattern: re.Pattern[str], text: str, start: int, end: int) -> list[Span]:
    spans = []
    for match in pattern.finditer(text, start, end):
        a, b = match.span()
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            spans.append((a, b))
    return spans


#: The longest sentence of a passage as its sentence vectors and answers see it (longer ones are cut at clauses).
SENTENCE_CHARS = 250


def passage_sentences(text: str) -> list[Span]:
    """A passage's sentences: what indexing embeds one vector for each of (``storage.dense``) and what
    answering picks from (``retrieval.answer``). One function, so stored row n is sentence n."""
    return sentences(text, 0, len(text), SENTENCE_CHARS)


def sentences(text: str, start: int, end: int, max_chars: int) -> list[Span]:
    """Sentence spans of ``text[start:end]``, none longer than ``max_chars``."""
    out: list[Span] = []
    for a, b in _spans(_SENTENCE, text, start, end):
        if b - a <= max_chars:
            out.append((a, b))
            continue
        piece_start = a
        piece_end = a
        for _, cb in _spans(_CLAUSE, text, a, b):
            while cb - piece_start > max_chars:
                cut = piece_end if piece_end > piece_start else piece_start + max_chars
                out.append((piece_start, cut))
                piece_start = cut
            piece_end = cb
        if piece_start < b:
            out.append((piece_start, b))
    return out


def _pack(units: Sequence[Span], config: ChunkConfig) -> list[Span]:
    passages: list[Span] = []
    current: list[Span] = []
    for unit in units:
        if current and unit[1] - current[0][0] > config.max_chars:
            passages.append((current[0][0], current[-1][1]))
            tail: list[Span] = []
            for prev in reversed(current):
                if current[-1][1] - prev[0] > config.overlap_chars:
                    break
                tail.insert(0, prev)
            current = tail if tail and unit[1] - tail[0][0] <= config.max_chars else []
        current.append(unit)
    if current:
        passages.append((current[0][0], current[-1][1]))
    return passages


def _groups(paragraphs: Sequence[Paragraph], min_chars: int) -> list[list[Paragraph]]:
    groups: list[list[Paragraph]] = []
    pending: list[Paragraph] = []
    for para in paragraphs:
        # A short lead-in ("下半年要重點做好以下三方面工作:") joins the first paragraph
        # of a subsection below it, but never text of a sibling or parent section.
        # A table's rows join each other (and a lead-in before the table), never what follows the table.
        if pending and (
            para.section_path[: len(pending[0].section_path)] != pending[0].section_path
            or (pending[-1].table_header and para.table_header != pending[-1].table_header)
        ):
            groups.append(pending)
            pending = []
        pending.append(para)
        if sum(p.end - p.start for p in pending) >= min_chars:
            groups.append(pending)
            pending = []
    if pending:
        groups.append(pending)
    return groups


def chunk(text: str, layout: Layout, config: ChunkConfig | None = None) -> list[Chunk]:
    """Passages of a parsed document, in reading order."""
    config = config or ChunkConfig()
    paragraphs = layout.paragraphs
    if (
        paragraphs
        and paragraphs[-1].end - paragraphs[0].start <= config.whole_chars
        and all(p.section_path == paragraphs[0].section_path and not p.table_header for p in paragraphs)
    ):
        first = paragraphs[0]
        return [Chunk(first.start, paragraphs[-1].end, first.section, first.section_path)]
    chunks: list[Chunk] = []
    for group in _groups(layout.paragraphs, config.min_chars):
        units = [s for para in group for s in sentences(text, para.start, para.end, config.max_chars)]
        for a, b in _pack(units, config):
            section, path = group[-1].section, group[-1].section_path
            header = next((p.table_header for p in group if p.start <= a < p.end + 1), "")
            if header:  # rows without their table's header line: the header is their context
                section, path = header, (*path, header)
            chunks.append(Chunk(a, b, section, path))
    return chunks


def fit_token_limit(text: str, chunks: Sequence[Chunk], count_tokens: Callable[[str], int], limit: int) -> list[Chunk]:
    """Split any chunk whose token count exceeds ``limit`` so the model never truncates it."""
    out: list[Chunk] = []
    stack = list(reversed(chunks))
    while stack:
        item = stack.pop()
        if count_tokens(text[item.start : item.end]) <= limit or item.end - item.start < 2:
            out.append(item)
            continue
        units = sentences(text, item.start, item.end, max(1, (item.end - item.start) // 2))
        middle = units[len(units) // 2][0] if len(units) > 1 else (item.start + item.end) // 2
        if middle <= item.start:
            middle = (item.start + item.end) // 2
        stack.append(Chunk(middle, item.end, item.section, item.section_path))
        stack.append(Chunk(item.start, middle, item.section, item.section_path))
    return out
