"""What reading one document may cost: bytes once unpacked, pages, characters, metadata.

A file that would cost more is refused before the work is done where the file says
how much it holds (a zip's directory gives every member's unpacked size before any is
inflated), and as soon as the limit is passed otherwise (pages and characters are
counted while a PDF is read). Each breach is a ``TooLargeError`` (HTTP 413), or an
``InvalidInputError`` (422) for nesting, naming the limit and its setting.

Time and memory are bounded where the parse runs (``sandbox``): an upload is read in
a child process with a wall-clock limit and an address-space limit.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError, TooLargeError

MB = 1024 * 1024


@dataclass(frozen=True)
class Budgets:
    """Limits on reading one upload (settings ``ZHSEARCH_MAX_*``; README, "Limits")."""

    #: Unpacked bytes of one archive (a DOCX), all members together, and of any one member.
    unpacked_bytes: int = 200 * MB
    member_bytes: int = 100 * MB
    #: Pages of one PDF, and characters extracted from one file.
    pages: int = 2000
    chars: int = 5_000_000
    #: A document's metadata: its JSON size, its number of fields, how deeply it nests.
    metadata_bytes: int = 64 * 1024
    metadata_fields: int = 100
    metadata_depth: int = 8
    #: Wall-clock seconds and memory (address space, bytes) of the process that parses one upload.
    parse_seconds: float = 60.0
    parse_memory_bytes: int = 2048 * MB
    #: Whether scanned pages and image files are read by OCR (``text.ocr``), and how many pages of one file.
    ocr: bool = True
    ocr_pages: int = 200


DEFAULT = Budgets()


def check_zip(raw: bytes, name: str, budgets: Budgets = DEFAULT) -> None:
    """Refuse an archive whose directory says it unpacks to more than the budgets (a zip bomb)."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return  # not a zip: the reader says what it is
    total = 0
    for member in members:
        if member.file_size > budgets.member_bytes:
            raise TooLargeError(
                f"{name}: member {member.filename!r} unpacks to {member.file_size} bytes; the limit is"
                f" {budgets.member_bytes} (ZHSEARCH_MAX_MEMBER_BYTES)"
            )
        total += member.file_size
    if total > budgets.unpacked_bytes:
        raise TooLargeError(
            f"{name}: unpacks to {total} bytes; the limit is {budgets.unpacked_bytes} (ZHSEARCH_MAX_UNPACKED_BYTES)"
        )


def check_pages(count: int, name: str, budgets: Budgets = DEFAULT) -> None:
    if count > budgets.pages:
        raise TooLargeError(f"{name}: {count} pages; the limit is {budgets.pages} (ZHSEARCH_MAX_PAGES)")


def check_chars(count: int, name: str, budgets: Budgets = DEFAULT) -> None:
    if count > budgets.chars:
        raise TooLargeError(
            f"{name}: more than {budgets.chars} characters of text; the limit is {budgets.chars} (ZHSEARCH_MAX_CHARS)"
        )


def _depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests (a scalar is 0), counting no further than ``limit + 1``."""
    if isinstance(value, Mapping):
        children: Any = value.values()
    elif isinstance(value, list | tuple):
        children = value
    else:
        return 0
    if limit < 0:
        return 1
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)


def check_metadata(metadata: Mapping[str, Any], name: str, budgets: Budgets = DEFAULT) -> None:
    """Refuse metadata with too many fields, nested too deeply, or too large as JSON."""
    if len(metadata) > budgets.metadata_fields:
        raise TooLargeError(
            f"{name}: metadata has {len(metadata)} fields; the limit is {budgets.metadata_fields}"
            " (ZHSEARCH_MAX_METADATA_FIELDS)"
        )
    if _depth(metadata, budgets.metadata_depth) > budgets.metadata_depth:
        raise InvalidInputError(
            f"{name}: metadata nests deeper than {budgets.metadata_depth} levels (ZHSEARCH_MAX_METADATA_DEPTH)"
        )
    size = len(json.dumps(metadata, ensure_ascii=False, default=str).encode("utf-8"))
    if size > budgets.metadata_bytes:
        raise TooLargeError(
            f"{name}: metadata is {size} bytes as JSON; the limit is {budgets.metadata_bytes}"
            " (ZHSEARCH_MAX_METADATA_BYTES)"
        )
