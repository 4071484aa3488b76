"""Reading documents from files and folders.

Accepted inputs, from paths and uploads alike (``SUFFIXES``, the one list):
``.html``/``.htm`` (the page's main text, by trafilatura), ``.txt`` and ``.md``
(one document per file, id = file stem; in UTF-8, GB18030/GBK, Big5 or UTF-16/32,
detected by ``encoding.decode_text`` and recorded as ``metadata["encoding"]`` when
not UTF-8), ``.pdf`` and ``.docx`` (one document per file, see ``formats``),
``.jsonl`` in BEIR corpus form (``_id`` or ``id``, ``title``, ``text``; any
other field is kept as metadata), and ``.json`` collections: a JSON array of
records such as chinese-poetry's ``{"title", "author", "paragraphs": [...]}``,
mapped to documents by ``JsonFields`` (a list of strings is joined by lines).
Folders are walked recursively in name order, skipping hidden entries and
folders named ``eval`` (evaluation sets live beside the documents they judge,
as in ``seeds/eval``). ``read_paths`` reports a file it cannot read (and why) and
goes on; ``load_paths`` is its strict form.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..access import ACCESS, check_access
from ..errors import DocumentError, InvalidInputError, UnsupportedFormatError, ZhsearchError
from .budgets import DEFAULT, Budgets, check_chars, check_metadata, check_zip
from .encoding import decode_text
from .formats import read_docx, read_pdf
from .ocr import IMAGE_SUFFIXES, read_image_file
from .outline import HEADINGS, from_markdown, outlined

#: What `zhsearch build` reads and an upload accepts alike: the one list.
#: The SHA-256 of the file a document was read from by OCR: a sync does not read an unchanged scan again.
FILE_HASH = "file_sha256"
SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".jsonl", ".json", *IMAGE_SUFFIXES)
MAX_ID_CHARS = 200
_BAD_ID = re.compile(r"[\x00-\x1f\x7f/]")
SKIPPED_FOLDERS = frozenset({"eval"})


@dataclass(frozen=True)
class Document:
    """A document as given: the text is kept exactly, never rewritten."""

    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    format: str = "txt"
    # "build" for documents read from --docs paths, "api" for documents added live;
    # a rebuild from paths keeps the live ones.
    origin: str = "build"

    @property
    def content_hash(self) -> str:
        payload = json.dumps([self.title, self.text, self.metadata, self.format], ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _decode(raw: bytes, name: str) -> str:
    return decode_text(raw, name)[0]


def _encoding_metadata(encoding: str) -> dict[str, Any]:
    """What a document records of its file's encoding: nothing for UTF-8, the default."""
    return {} if encoding == "utf-8" else {"encoding": encoding}


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot read {path}: {exc.strerror}") from exc


def _read_text(path: Path) -> str:
    return _decode(_read_bytes(path), str(path))


def read_jsonl(path: Path, text: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of every non-blank line; a bad line is a ``DocumentError`` naming it."""
    content = _read_text(path) if text is None else text
    for lineno, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DocumentError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc
        except RecursionError as exc:
            raise DocumentError(f"{path}:{lineno}: JSON nested too deeply to read") from exc
        if not isinstance(record, dict):
            raise DocumentError(f"{path}:{lineno}: expected a JSON object")
        yield lineno, record


def _load_jsonl(path: Path, text: str | None = None) -> Iterator[Document]:
    for lineno, record in read_jsonl(path, text):
        doc_id = record.pop("_id", None) or record.pop("id", None)
        text = record.pop("text", None)
        if doc_id is None or not isinstance(text, str):
            raise DocumentError(f"{path}:{lineno}: a BEIR corpus line needs '_id' (or 'id') and 'text'")
        title = record.pop("title", "") or ""
        metadata = _unwrapped(record, f"{path}:{lineno}")
        yield Document(id=str(doc_id), text=text, title=str(title), metadata=metadata, source=str(path), format="jsonl")


def _unwrapped(record: dict[str, Any], where: str) -> dict[str, Any]:
    """A record's metadata: its other fields, with those of a ``metadata`` object (the shape the API returns a
    document in) taken up a level, so an exported document's ``access`` is its access again."""
    nested = record.get("metadata")
    if not isinstance(nested, dict):
        return record
    outer = {k: v for k, v in record.items() if k != "metadata"}
    clash = sorted(set(outer) & set(nested))
    if clash:
        raise DocumentError(f"{where}: field(s) {', '.join(clash)} given both in the record and in its metadata")
    return {**outer, **nested}


@dataclass(frozen=True)
class JsonFields:
    """Which record fields of a ``.json`` collection hold the id, title and text (first present wins)."""

    id: tuple[str, ...] = ("_id", "id")
    title: tuple[str, ...] = ("title", "rhythmic")
    text: tuple[str, ...] = ("text", "paragraphs", "content")


def _first(record: dict[str, Any], names: tuple[str, ...]) -> tuple[str | None, Any]:
    for name in names:
        if name in record:
            return name, record[name]
    return None, None


def _load_json_collection(path: Path, fields: JsonFields, text: str | None = None) -> Iterator[Document]:
    try:
        records = json.loads(_read_text(path) if text is None else text)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    except RecursionError as exc:
        raise DocumentError(f"{path}: JSON nested too deeply to read") from exc
    if not isinstance(records, list):
        raise DocumentError(f"{path}: a .json collection must be an array of records")
    for n, record in enumerate(records):
        if not isinstance(record, dict):
            raise DocumentError(f"{path}: record {n} is not an object")
        text_key, text = _first(record, fields.text)
        if isinstance(text, list):
            text = "\n".join(str(line) for line in text)
        if not isinstance(text, str) or not text.strip():
            continue  # records without text (some collections carry empty entries) are skipped
        id_key, doc_id = _first(record, fields.id)
        title_key, title = _first(record, fields.title)
        metadata = _unwrapped(
            {k: v for k, v in record.items() if k not in (text_key, id_key, title_key)}, f"{path}: record {n}"
        )
        yield Document(
            id=str(doc_id) if doc_id is not None else f"{path.stem}-{n}",
            text=text,
            title=str(title or ""),
            metadata=metadata,
            source=str(path),
            format="json",
        )


def _bad_id(doc_id: str) -> bool:
    """An id a URL path cannot carry as itself (``.``, ``..``, a slash), or that reads as another
    (control and format characters such as U+202E, surrounding spaces)."""
    if not doc_id.strip() or len(doc_id) > MAX_ID_CHARS or doc_id in (".", "..") or doc_id != doc_id.strip():
        return True
    return bool(_BAD_ID.search(doc_id)) or any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in doc_id)


def check_document(doc: Document, budgets: Budgets = DEFAULT) -> None:
    """The one rule for every way in: an id a URL can carry, metadata within budget, and some text."""
    if _bad_id(doc.id):
        raise InvalidInputError(
            f"document id {doc.id[:MAX_ID_CHARS]!r} is not usable: an id is 1-{MAX_ID_CHARS} characters, not '.' or"
            " '..', without '/', control or format characters (such as U+202E) or spaces around it"
        )
    check_metadata(doc.metadata, f"document {doc.id!r}", budgets)
    if ACCESS in doc.metadata:
        check_access(doc.metadata[ACCESS], f"document {doc.id!r}: access")
    if not doc.text.strip():
        named = doc.source if doc.source not in ("", "api") else f"document {doc.id!r}"
        raise InvalidInputError(f"{named}: empty document (no text)")


def parse_bytes(
    name: str, raw: bytes, fields: JsonFields | None = None, *, source: str = "", budgets: Budgets = DEFAULT
) -> list[Document]:
    """All documents in one file's bytes, by the extension of ``name`` (a path or an upload's file name),
    read within ``budgets`` (unpacked bytes, pages, characters; ``budgets.Budgets``)."""
    path = Path(name)
    source = source or name
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UnsupportedFormatError(f"{source}: unsupported file type (expected one of {', '.join(SUFFIXES)})")
    if suffix == ".pdf":
        text, title, metadata = read_pdf(raw, source, budgets)
        if "ocr" in metadata:
            metadata[FILE_HASH] = hashlib.sha256(raw).hexdigest()
        return [Document(id=path.stem, text=text, title=title, metadata=metadata, source=source, format="pdf")]
    if suffix in IMAGE_SUFFIXES:
        text, metadata = read_image_file(raw, source, budgets)
        metadata[FILE_HASH] = hashlib.sha256(raw).hexdigest()
        return [Document(id=path.stem, text=text, metadata=metadata, source=source, format="image")]
    if suffix == ".docx":
        check_zip(raw, source, budgets)  # from the zip's directory, before anything is inflated
        text, title, headings = read_docx(raw, source)
        check_chars(len(text), source, budgets)
        outline = {HEADINGS: headings} if headings else {}
        return [Document(id=path.stem, text=text, title=title, metadata=outline, source=source, format="docx")]
    text, encoding = decode_text(raw, source)
    check_chars(len(text), source, budgets)
    if suffix == ".jsonl":
        return list(_load_jsonl(Path(source), text))
    if suffix == ".json":
        return list(_load_json_collection(Path(source), fields or JsonFields(), text))
    metadata = _encoding_metadata(encoding)
    if suffix in (".html", ".htm"):
        page = html_to_document(path.stem, text, source=source)
        return [replace(page, metadata={**page.metadata, **metadata})]
    return [Document(id=path.stem, text=text, metadata=metadata, source=source, format=suffix[1:])]


def load_file(path: Path, fields: JsonFields | None = None) -> list[Document]:
    """All documents in one file."""
    return parse_bytes(path.name, _read_bytes(path), fields, source=str(path))


@dataclass(frozen=True)
class Skipped:
    """A file or record not indexed, and why (the message names it)."""

    path: str
    reason: str


@dataclass
class Loaded:
    documents: list[Document]
    skipped: list[Skipped]


def _walk(folder: Path) -> Iterator[Path]:
    """Every visible file under ``folder``, in name order; hidden entries and ``eval`` folders are not content."""
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if entry.name not in SKIPPED_FOLDERS:
                yield from _walk(entry)
        else:
            yield entry


def read_paths(
    paths: Iterable[Path], fields: JsonFields | None = None, unchanged: Callable[[Path], bool] | None = None
) -> Loaded:
    """Documents from files and folders; what cannot be read is reported in ``skipped``, not fatal.

    Unsupported types, undecodable or empty files, scanned PDFs, bad JSON and duplicate ids
    each skip that file (or record) with a reason; everything else is loaded. A file for which
    ``unchanged`` says True is passed over: the caller holds its documents already (a sync, for
    files read by OCR whose bytes did not change).
    """
    documents: dict[str, Document] = {}
    skipped: list[Skipped] = []
    for path in paths:
        if not path.exists():
            skipped.append(Skipped(str(path), f"{path}: no such file or folder"))
            continue
        for file in list(_walk(path)) if path.is_dir() else [path]:
            try:
                if unchanged is not None and unchanged(file):
                    continue
                found = load_file(file, fields)
            except ZhsearchError as exc:
                skipped.append(Skipped(str(file), str(exc)))
                continue
            if not found:
                skipped.append(Skipped(str(file), f"{file}: no documents in the file"))
            for doc in found:
                if doc.id in documents:
                    first = documents[doc.id].source
                    skipped.append(Skipped(doc.source, f"duplicate document id {doc.id!r} in {doc.source} and {first}"))
                    continue
                try:
                    check_document(doc)
                except InvalidInputError as exc:
                    skipped.append(Skipped(doc.source, str(exc)))
                    continue
                documents[doc.id] = doc
    return Loaded(list(documents.values()), skipped)


def load_paths(paths: Iterable[Path], fields: JsonFields | None = None) -> list[Document]:
    """Documents from files and folders, or a ``DocumentError`` for the first one that cannot be read."""
    loaded = read_paths(paths, fields)
    if loaded.skipped:
        raise DocumentError(loaded.skipped[0].reason)
    return loaded.documents


_SEPARATORS = re.compile(r"^[\s|｜/·•>»›\-–—_]*$")
#: A line that is one link's whole text, at most this long, is navigation (首頁, 關於我們, 下一頁).
MAX_NAV_LINK_CHARS = 12


def _link_texts(html: str) -> set[str]:
    import lxml.html

    try:
        root = lxml.html.fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return set()
    return {" ".join(a.text_content().split()) for a in root.iter("a")}


def html_to_document(doc_id: str, html: str, source: str = "") -> Document:
    """The main text of an HTML page (boilerplate removed by trafilatura) as a document, its ``<h1>``-``<h6>``
    kept as ``metadata.headings`` (``text.outline``) and its markup (emphasis, links, table rules) as words.

    trafilatura keeps a short page's menu (首頁 | 關於我們 | 聯絡我們) when it favours recall;
    lines that are only a link's text, or only separators, are dropped after it.
    """
    import trafilatura

    markdown = trafilatura.extract(
        html, include_comments=False, include_tables=True, favor_recall=True, output_format="markdown"
    )
    blocks = from_markdown(markdown or "")
    if blocks:
        links = {t for t in _link_texts(html) if len(t) <= MAX_NAV_LINK_CHARS}

        def kept(block: str) -> str:
            lines = block.splitlines()
            return "\n".join(
                line for line in lines if not _SEPARATORS.match(line) and " ".join(line.split()) not in links
            )

        blocks = [(kept(text), level) for text, level in blocks]
    text, headings = outlined(blocks)
    if not text.strip():
        raise DocumentError(f"{source or doc_id}: no main text found in the HTML")
    metadata = trafilatura.extract_metadata(html)
    title = (metadata.title if metadata and metadata.title else "") or ""
    outline = {HEADINGS: headings} if headings else {}
    return Document(id=doc_id, text=text, title=title, metadata=outline, source=source, format="html")


def documents_from_upload(filename: str, content: bytes, budgets: Budgets = DEFAULT) -> list[Document]:
    """Documents in one uploaded file, by its extension; ids come from the file name or the records.

    Parsed in this process: a server reads uploads through ``sandbox.parse_isolated`` instead."""
    return parse_bytes(Path(filename or "upload.txt").name, content, budgets=budgets)
