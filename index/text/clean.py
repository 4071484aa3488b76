"""Finding the readable structure of a document: title, metadata, sections, paragraphs.

Web pages saved as text carry leftovers (基本介紹, 相關詞條, 聯絡我們 ...) and
infobox lines (``• 中文名:...``). Leftovers are dropped; the ``key:value`` lines of
an infobox (a run of them right under 基本介紹 or 基本信息) also become metadata,
and stay searchable text like every other line: an ordinary list such as Markdown's
``- 尘盒：…`` is content, never metadata. Headings such as ``(二)厚積成勢,...`` or ``二、 下半年工作安排``
become the section of the paragraphs under them. A table (Markdown rows, or the ``a | b`` rows
DOCX and HTML tables are read as) keeps its header row with each of its rows, each row a
paragraph of its own: a unit for passages and answers; its spans are kept as
``metadata.table_spans`` so a page can show it as a table. Everything else is a paragraph,
kept as a ``[start, end)`` span of the original text so offsets stay exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from .ingest import Document
from .normalize import normalize
from .outline import declared

# Compared after normalization, so traditional and simplified spellings both match.
BOILERPLATE = frozenset(
    normalize(word)
    for word in (
        "基本介紹",
        "基本信息",
        "基本資料",
        "相關詞條",
        "熱門詞條",
        "聯絡我們",
        "聯繫我們",
        "目錄",
        "參考資料",
        "詞條標籤",
        "展開",
        "收起",
        "編輯",
        "分享",
        "舉報",
        "返回頂部",
        "免責聲明",
        "上一篇",
        "下一篇",
        "相關閱讀",
        "相關推薦",
        "猜你喜歡",
        "打印本頁",
        "關閉窗口",
    )
)
#: Headings of a web page's infobox: the ``key:value`` lines right under one are its metadata.
INFOBOX = frozenset(normalize(word) for word in ("基本介紹", "基本信息", "基本資料"))
_SENTENCE_END = "。！？；!?;"
_METADATA = re.compile(r"^\s*[•·‧・●◦▪■\-*]\s*([^:：\n]{1,20}?)\s*[:：]\s*(\S.*?)\s*$")
_HEADINGS: tuple[tuple[int, re.Pattern[str]], ...] = (
    (1, re.compile(r"^第[一二三四五六七八九十百零〇0-9]+[章篇部]")),
    (1, re.compile(r"^[一二三四五六七八九十百]+\s*[、．.]")),
    (2, re.compile(r"^第[一二三四五六七八九十百零〇0-9]+[節节条條]")),
    (2, re.compile(r"^[(（]\s*[一二三四五六七八九十百]+\s*[)）]")),
    (3, re.compile(r"^\d{1,2}\s*[、．.]\s*\D")),
    (3, re.compile(r"^[(（]\s*\d{1,2}\s*[)）]")),
)
_MARKDOWN_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_TABLE_ROW = re.compile(r"^\s*\|(.*)\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)+\|?\s*$")
MAX_HEADING_CHARS = 40
MAX_TITLE_CHARS = 40


@dataclass(frozen=True)
class Paragraph:
    start: int
    end: int
    section: str
    section_path: tuple[str, ...]
    #: A row of a table: the table's header row (its cells joined by `` | ``); text after the table never
    #: joins its rows, and a passage that starts at a row has the header as its last section.
    table_header: str = ""


@dataclass
class Layout:
    title: str
    metadata: dict[str, Any] = field(default_factory=dict)
    paragraphs: list[Paragraph] = field(default_factory=list)


def heading_level(line: str) -> int | None:
    """Outline level of a heading line, or None for body text."""
    stripped = line.strip()
    if not stripped or len(stripped) > MAX_HEADING_CHARS or stripped[-1] in _SENTENCE_END:
        return None
    if "。" in stripped:
        return None
    for level, pattern in _HEADINGS:
        if pattern.match(stripped):
            return level
    return None


#: Formats whose reader writes a table's rows as ``a | b`` lines (DOCX and HTML tables); elsewhere such a
#: line is prose (``grep foo | sort``) and only Markdown rows (``| a | b |``) make a table.
PIPED_ROWS = ("docx", "html")


def cells(line: str, piped: bool = True) -> list[str] | None:
    """The cells of a table row: a Markdown row (``| a | b |``) or, when ``piped``, a row as DOCX and HTML
    tables are read (``a | b``); None for a line that is not one, or has a single cell."""
    row = _TABLE_ROW.match(line)
    found = row.group(1).split("|") if row else line.split(" | ") if piped and " | " in line else []
    found = [cell.strip() for cell in found]
    return found if len(found) >= 2 else None


def tables(lines: list[tuple[int, str]], piped: bool = True) -> dict[int, tuple[str, str]]:
    """Lines of tables, by start offset: (``"header"``, ``"rule"`` or ``"row"``, the table's header). A table
    is a run of at least two rows: its first row is the header (Markdown's rule line under it is markup).
    Markdown rows may have other cell counts than the header (a ragged table stays one table); ``a | b``
    rows (``piped``) must have the header's count. Every row, the header too, is a unit."""
    roles: dict[int, tuple[str, str]] = {}
    index = 0
    while index < len(lines):
        first = cells(lines[index][1], piped)
        if first is None or _TABLE_RULE.match(lines[index][1]):
            index += 1
            continue
        markdown = _TABLE_ROW.match(lines[index][1]) is not None
        run = [index]
        following = index + 1
        while following < len(lines):
            body = lines[following][1]
            row = cells(body, piped)
            fits = row is not None and (len(row) == len(first) or (markdown and _TABLE_ROW.match(body) is not None))
            if not (_TABLE_RULE.match(body) or fits):
                break
            run.append(following)
            following += 1
        rows = [n for n in run[1:] if not _TABLE_RULE.match(lines[n][1])]
        if rows:
            header = " | ".join(first)
            roles[lines[index][0]] = ("header", header)
            for n in run[1:]:
                roles[lines[n][0]] = ("rule" if n not in rows else "row", header)
        index = following
    return roles


def _looks_like_title(line: str) -> bool:
    stripped = line.strip()
    return 0 < len(stripped) <= 60 and not any(mark in stripped for mark in "。！？；")


def parse(doc: Document) -> Layout:
    """Title, metadata and paragraphs of ``doc``; never modifies its text."""
    layout = Layout(title=doc.title.strip(), metadata=dict(doc.metadata))
    outline: dict[int, str] = {}
    position = 0
    first_content_line = True
    first_heading = first_line = ""
    in_infobox = False
    # Lines taken as the title or a heading: the text of a document that has nothing else.
    set_apart: list[Paragraph] = []
    boilerplate: list[Paragraph] = []
    # Headings nothing has followed yet, by level; one that gets nothing before a heading at its own
    # level or above was a line of a list ("1. 使用…", "2. 安装…"), not a heading: it is text.
    unused: dict[int, Paragraph] = {}
    orphans: list[Paragraph] = []
    listing: int | None = None  # the level of the list being read, if the last line was one of its items
    # Headings the file itself marks (DOCX styles, HTML <h1>-<h6>): headings whatever they look like.
    marked = declared(doc.metadata, doc.text)
    lines: list[tuple[int, str]] = []  # (start, the line without its end), blank lines too: they end a table
    for line in doc.text.splitlines(keepends=True):
        lines.append((position, line.rstrip("\r\n")))
        position += len(line)
    table = tables(lines, piped=doc.format in PIPED_ROWS)
    spans: list[list[int]] = []  # each table's [start, end) in the text: shown as a table
    for start, body in lines:
        stripped = body.strip()
        if not stripped:
            continue
        role, header = table.get(start, ("", ""))
        if role:  # a table's header gives its rows their section; each row is a unit; a rule line is markup
            if role == "header":
                first_content_line = False
                spans.append([start, start + len(body.rstrip())])
            if role in ("header", "row"):
                path = tuple(outline[lv] for lv in sorted(outline))
                layout.paragraphs.append(replace(_line(start, body, path), table_header=header))
                unused.clear()
                listing = None
            spans[-1][1] = start + len(body.rstrip())
            continue
        is_first, first_content_line = first_content_line, False
        first_line = first_line or stripped
        norm = normalize(stripped)
        if norm in BOILERPLATE:
            in_infobox = norm in INFOBOX
            boilerplate.append(_line(start, body, ()))
            continue
        meta = _METADATA.match(body) if in_infobox else None
        in_infobox = meta is not None
        if meta:  # metadata, and text too: nothing a document says is dropped
            layout.metadata.setdefault(meta.group(1), meta.group(2))
        level: int | None
        mark = marked.get(start + len(body) - len(body.lstrip()))
        # A DOCX read before headings were marked still carries them as Markdown.
        md = _MARKDOWN_HEADING.match(stripped) if mark is None and doc.format in ("md", "docx") else None
        if mark is not None:
            level, heading = mark, stripped
        elif md:
            level, heading = len(md.group(1)), md.group(2)
        else:
            level, heading = heading_level(stripped), stripped
        if (mark is not None or md) and level == 1 and is_first and not layout.title:
            layout.title = heading
            set_apart.append(_line(start, body, ()))
            continue
        # Headings the file marks are headings whatever follows them; numbered lines may be a list's.
        if level is not None and mark is None and (level in unused or level == listing):
            # a sibling with nothing under it came just before: both are items of a list
            if level in unused:
                orphans.append(unused.pop(level))
            orphans.extend(unused.pop(lv) for lv in sorted(unused) if lv > level)
            outline = {lv: text for lv, text in outline.items() if lv < level}
            listing, level = level, None
            layout.paragraphs.append(_line(start, body, tuple(outline[lv] for lv in sorted(outline))))
            unused.clear()
            continue
        listing = None
        if level is not None:
            first_heading = first_heading or heading
            orphans.extend(unused.pop(lv) for lv in sorted(unused) if lv > level)
            unused.clear()  # the headings above now have this one under them
            outline = {lv: text for lv, text in outline.items() if lv < level}
            parents = tuple(outline[lv] for lv in sorted(outline))
            outline[level] = heading
            placed = _line(start, body, parents)
            if mark is None:
                unused[level] = placed
            set_apart.append(placed)
            continue
        if is_first and not layout.title and doc.format == "txt" and _looks_like_title(stripped):
            layout.title = stripped
            set_apart.append(_line(start, body, ()))
            continue
        layout.paragraphs.append(_line(start, body, tuple(outline[lv] for lv in sorted(outline))))
        unused.clear()
    orphans.extend(unused.values())
    if spans:
        layout.metadata["table_spans"] = spans
    if layout.paragraphs and orphans:
        layout.paragraphs = sorted([*layout.paragraphs, *orphans], key=lambda p: p.start)
    if not layout.paragraphs:
        # A document of one line (or of headings, or of leftovers only) is still text: it stays searchable.
        layout.paragraphs = set_apart or boilerplate
    if not layout.title:
        layout.title = _fallback_title(doc, first_heading, first_line)
    return layout


def _line(start: int, body: str, path: tuple[str, ...]) -> Paragraph:
    """The paragraph of one line at ``start`` (without its surrounding blanks) under ``path``."""
    lead = len(body) - len(body.lstrip())
    return Paragraph(
        start=start + lead, end=start + len(body.rstrip()), section=path[-1] if path else "", section_path=path
    )


def _fallback_title(doc: Document, first_heading: str, first_line: str) -> str:
    """A title for a document that brings none: its file name, its first heading, or its first line.

    A document that is a whole file (its id is the file's name) takes the file name; a record
    of a collection (``.jsonl``, ``.json``, a SQuAD paragraph) keeps its id, as before; a
    document posted without a file takes its first heading, else its first line.
    """
    if doc.source and doc.source != "api":
        return doc.id  # the file name, for a whole file
    if first_heading:
        return first_heading
    if first_line:
        return first_line if len(first_line) <= MAX_TITLE_CHARS else first_line[: MAX_TITLE_CHARS - 1] + "…"
    return doc.id
