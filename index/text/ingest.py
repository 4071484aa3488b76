"""Reading documents from files and folders.

Accepted inputs, from paths and uploads alike: ``.html``/``.htm`` (the page's main
text, by trafilatura), ``.txt`` and ``.md`` (one document per file, id = file stem; in
UTF-8, GB18030/GBK, Big5 or UTF-16/32, detected by ``encoding.decode_text`` and
recorded as ``metadata["encoding"]`` when not UTF-8),
``.jsonl`` in BEIR corpus form (``_id`` or ``id``, ``title``, ``text``; any
other field is kept as metadata), and ``.json`` collections: a JSON array of
records such as chinese-poetry's ``{"title", "author", "paragraphs": [...]}``,
mapped to documents by ``JsonFields`` (a list of strings is joined by lines).
Folders are walked recursively in name order, skipping hidden folders and
folders named ``eval`` (evaluation sets live beside the documents they judge,
as in ``seeds/eval``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import DocumentError, UnsupportedFormatError
from .encoding import decode_text

#: What `zhsearch build` reads and an upload accepts alike.
SUFFIXES = (".txt", ".md", ".jsonl", ".json", ".html", ".htm")
UPLOAD_SUFFIXES = SUFFIXES
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
        yield Document(id=str(doc_id), text=text, title=str(title), metadata=record, source=str(path), format="jsonl")


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
        metadata = {k: v for k, v in record.items() if k not in (text_key, id_key, title_key)}
        yield Document(
            id=str(doc_id) if doc_id is not None else f"{path.stem}-{n}",
            text=text,
            title=str(title or ""),
            metadata=metadata,
            source=str(path),
            format="json",
        )


def load_file(path: Path, fields: JsonFields | None = None) -> list[Document]:
    """All documents in one file."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return list(_load_jsonl(path))
    if suffix == ".json":
        return list(_load_json_collection(path, fields or JsonFields()))
    if suffix in (".txt", ".md", ".html", ".htm"):
        text, encoding = decode_text(_read_bytes(path), str(path))
        metadata = _encoding_metadata(encoding)
        if suffix in (".html", ".htm"):
            return [replace(html_to_document(path.stem, text, source=str(path)), metadata=metadata)]
        return [Document(id=path.stem, text=text, metadata=metadata, source=str(path), format=suffix[1:])]
    raise UnsupportedFormatError(f"{path}: unsupported file type (expected one of {', '.join(SUFFIXES)})")


def _walk(folder: Path) -> Iterator[Path]:
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            if not entry.name.startswith(".") and entry.name not in SKIPPED_FOLDERS:
                yield from _walk(entry)
        elif entry.suffix.lower() in SUFFIXES and not entry.name.startswith("."):
            yield entry


def load_paths(paths: Iterable[Path], fields: JsonFields | None = None) -> list[Document]:
    """Documents from files and folders; duplicate ids are an error, not an overwrite."""
    documents: dict[str, Document] = {}
    for path in paths:
        if not path.exists():
            raise DocumentError(f"{path}: no such file or folder")
        files = list(_walk(path)) if path.is_dir() else [path]
        for file in files:
            for doc in load_file(file, fields):
                if doc.id in documents:
                    raise DocumentError(
                        f"duplicate document id {doc.id!r} in {doc.source} and {documents[doc.id].source}"
                    )
                documents[doc.id] = doc
    return list(documents.values())


def html_to_document(doc_id: str, html: str, source: str = "") -> Document:
    """The main text of an HTML page (boilerplate removed by trafilatura) as a document."""
    import trafilatura

    text = trafilatura.extract(html, include_comments=False, include_tables=True, favor_recall=True)
    if not text or not text.strip():
        raise DocumentError(f"{source or doc_id}: no main text found in the HTML")
    metadata = trafilatura.extract_metadata(html)
    title = (metadata.title if metadata and metadata.title else "") or ""
    return Document(id=doc_id, text=text, title=title, source=source, format="html")


def documents_from_upload(filename: str, content: bytes) -> list[Document]:
    """Documents in one uploaded file, by its extension; ids come from the file name or the records."""
    path = Path(filename or "upload.txt")
    suffix = path.suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise UnsupportedFormatError(
            f"{path.name}: unsupported file type (expected one of {', '.join(UPLOAD_SUFFIXES)})"
        )
    text, encoding = decode_text(content, path.name)
    if suffix == ".jsonl":
        return list(_load_jsonl(path, text))
    if suffix == ".json":
        return list(_load_json_collection(path, JsonFields(), text))
    metadata = _encoding_metadata(encoding)
    if suffix in (".html", ".htm"):
        return [replace(html_to_document(path.stem, text, source=path.name), metadata=metadata)]
    return [Document(id=path.stem, text=text, metadata=metadata, source=path.name, format=suffix[1:])]
