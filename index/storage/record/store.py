"""The SQLite half of an index: documents, their metadata and their passages.

Original text is stored as given; ``norm_text`` is the matching form.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    source TEXT NOT NULL,
    format TEXT NOT NULL,
    origin TEXT NOT NULL DEFAULT 'build'
);
CREATE TABLE IF NOT EXISTS passages (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    section TEXT NOT NULL,
    section_path TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    norm_text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_doc ON passages(doc_id, ordinal);
-- Vectors of passages written live since the last vector checkpoint (float32 bytes; a
-- passage's sentences concatenated in order): the durable record a restart catches up from.
CREATE TABLE IF NOT EXISTS vectors (
    passage_id INTEGER PRIMARY KEY REFERENCES passages(id) ON DELETE CASCADE,
    passage BLOB NOT NULL,
    sentences BLOB NOT NULL
);
"""
#: SQLite's default limit on bound parameters is 999 on old builds: ``IN (...)`` lists stay below it.
_IN_CHUNK = 900


@dataclass(frozen=True, kw_only=True)
class StoredPassage:
    id: int
    doc_id: str
    ordinal: int
    section: str
    section_path: tuple[str, ...]
    start: int
    end: int
    text: str
    norm_text: str
    title: str = ""


@dataclass(frozen=True, kw_only=True)
class StoredDocument:
    id: str
    title: str
    text: str
    metadata: dict[str, Any]
    content_hash: str
    source: str
    format: str
    origin: str = "build"


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(SCHEMA)
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def insert_document(conn: sqlite3.Connection, doc: StoredDocument) -> None:
    conn.execute(
        "INSERT INTO documents (id, title, text, metadata, content_hash, source, format, origin)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            doc.id,
            doc.title,
            doc.text,
            json.dumps(doc.metadata, ensure_ascii=False),
            doc.content_hash,
            doc.source,
            doc.format,
            doc.origin,
        ),
    )


def insert_passages(conn: sqlite3.Connection, passages: Iterable[StoredPassage]) -> None:
    conn.executemany(
        'INSERT INTO passages (id, doc_id, ordinal, section, section_path, start, "end", text, norm_text)'
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                p.id,
                p.doc_id,
                p.ordinal,
                p.section,
                json.dumps(list(p.section_path), ensure_ascii=False),
                p.start,
                p.end,
                p.text,
                p.norm_text,
            )
            for p in passages
        ],
    )


_PASSAGE_COLUMNS = (
    'p.id, p.doc_id, p.ordinal, p.section, p.section_path, p.start, p."end", p.text, p.norm_text, d.title'
)


def _passage(row: Sequence[Any]) -> StoredPassage:
    return StoredPassage(
        id=row[0],
        doc_id=row[1],
        ordinal=row[2],
        section=row[3],
        section_path=tuple(json.loads(row[4])),
        start=row[5],
        end=row[6],
        text=row[7],
        norm_text=row[8],
        title=row[9],
    )


def passages_of(conn: sqlite3.Connection, doc_id: str) -> list[StoredPassage]:
    rows = conn.execute(
        f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d ON d.id = p.doc_id"
        " WHERE p.doc_id = ? ORDER BY p.ordinal",
        (doc_id,),
    ).fetchall()
    return [_passage(row) for row in rows]


def all_passages(conn: sqlite3.Connection) -> list[StoredPassage]:
    rows = conn.execute(
        f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d ON d.id = p.doc_id ORDER BY p.id"
    ).fetchall()
    return [_passage(row) for row in rows]


def passages_by_id(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, StoredPassage]:
    """The rows of these passages (those that exist), by id."""
    found: dict[int, StoredPassage] = {}
    wanted = list(ids)
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        query = f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d ON d.id = p.doc_id WHERE p.id IN ({marks})"
        for row in conn.execute(query, chunk):
            found[int(row[0])] = _passage(row)
    return found


def iter_passages(conn: sqlite3.Connection) -> Iterator[StoredPassage]:
    """Every passage, by id, one row at a time (nothing is held but the current row)."""
    cursor = conn.execute(
        f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d ON d.id = p.doc_id ORDER BY p.id"
    )
    for row in cursor:
        yield _passage(row)


def passage_owners(conn: sqlite3.Connection) -> tuple[list[int], list[str]]:
    """(passage ids, their document ids), by passage id."""
    ids: list[int] = []
    owners: list[str] = []
    for pid, doc_id in conn.execute("SELECT id, doc_id FROM passages ORDER BY id"):
        ids.append(int(pid))
        owners.append(doc_id)
    return ids, owners


def insert_vectors(conn: sqlite3.Connection, rows: Iterable[tuple[int, bytes, bytes]]) -> None:
    """(passage id, passage vector, its sentence vectors) of passages written live: part of the write's transaction."""
    conn.executemany("INSERT OR REPLACE INTO vectors (passage_id, passage, sentences) VALUES (?, ?, ?)", rows)


def vectors_of(conn: sqlite3.Connection, passage_ids: Sequence[int]) -> dict[int, tuple[bytes, bytes]]:
    """The stored vectors of these passages, for those that have them."""
    found: dict[int, tuple[bytes, bytes]] = {}
    ids = list(passage_ids)
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        query = f"SELECT passage_id, passage, sentences FROM vectors WHERE passage_id IN ({marks})"
        for pid, passage, sentences in conn.execute(query, chunk):
            found[int(pid)] = (bytes(passage), bytes(sentences))
    return found


def drop_vectors_below(conn: sqlite3.Connection, passage_id: int) -> int:
    """Forget the vectors of passages below ``passage_id``: a checkpoint holds them now."""
    return conn.execute("DELETE FROM vectors WHERE passage_id < ?", (passage_id,)).rowcount


def counts(conn: sqlite3.Connection) -> tuple[int, int]:
    """(documents, passages) in the store, live writes included."""
    documents = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    passages = conn.execute("SELECT count(*) FROM passages").fetchone()[0]
    return int(documents), int(passages)


def document_hashes(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT id, content_hash FROM documents").fetchall())


def max_passage_id(conn: sqlite3.Connection) -> int:
    value = conn.execute("SELECT COALESCE(MAX(id), 0) FROM passages").fetchone()[0]
    return int(value)


_DOCUMENT_COLUMNS = "id, title, text, metadata, content_hash, source, format, origin"


def _document(row: Sequence[Any]) -> StoredDocument:
    return StoredDocument(
        id=row[0],
        title=row[1],
        text=row[2],
        metadata=json.loads(row[3]),
        content_hash=row[4],
        source=row[5],
        format=row[6],
        origin=row[7],
    )


def get_document(conn: sqlite3.Connection, doc_id: str) -> StoredDocument | None:
    row = conn.execute(f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE id = ?", (doc_id,)).fetchone()
    return _document(row) if row else None


def documents_by_origin(conn: sqlite3.Connection, origin: str) -> list[StoredDocument]:
    rows = conn.execute(f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE origin = ? ORDER BY id", (origin,))
    return [_document(row) for row in rows.fetchall()]


def delete_document(conn: sqlite3.Connection, doc_id: str) -> list[int]:
    """Remove a document and its passages; returns the removed passage ids."""
    ids = [row[0] for row in conn.execute("SELECT id FROM passages WHERE doc_id = ?", (doc_id,))]
    conn.execute("DELETE FROM passages WHERE doc_id = ?", (doc_id,))
    conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
    return ids


def document_texts(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT id, text FROM documents").fetchall())


def document_rows(conn: sqlite3.Connection) -> list[tuple[str, str, dict[str, Any], int]]:
    """(id, title, metadata, length of text) of every document, by id."""
    rows = conn.execute("SELECT id, title, metadata, length(text) FROM documents ORDER BY id").fetchall()
    return [(row[0], row[1], json.loads(row[2]), int(row[3])) for row in rows]
