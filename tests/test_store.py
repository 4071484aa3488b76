"""index.storage.record.store: the SQLite record of documents and passages."""

from __future__ import annotations

from pathlib import Path

from index.storage.record import store


def _passage(pid: int, doc_id: str, ordinal: int, text: str) -> store.StoredPassage:
    return store.StoredPassage(
        id=pid,
        doc_id=doc_id,
        ordinal=ordinal,
        section="一、總體",
        section_path=("一、總體",),
        start=0,
        end=len(text),
        text=text,
        norm_text=text,
    )


def _document(doc_id: str, title: str = "報告") -> store.StoredDocument:
    return store.StoredDocument(
        id=doc_id, title=title, text="全文", metadata={"年": 2020}, content_hash="h", source="s.txt", format="txt"
    )


def test_round_trip_and_cascade(tmp_path: Path) -> None:
    conn = store.connect(tmp_path / "store.sqlite3")
    with conn:
        store.insert_document(conn, _document("a"))
        store.insert_document(conn, _document("b", title="另一份"))
        store.insert_passages(conn, [_passage(1, "a", 0, "甲"), _passage(2, "a", 1, "乙"), _passage(5, "b", 0, "丙")])
    assert store.get_document(conn, "a") == _document("a")
    assert store.get_document(conn, "missing") is None
    assert [p.id for p in store.passages_of(conn, "a")] == [1, 2]
    every = store.all_passages(conn)
    assert [(p.id, p.title, p.section_path) for p in every] == [
        (1, "報告", ("一、總體",)),
        (2, "報告", ("一、總體",)),
        (5, "另一份", ("一、總體",)),
    ]
    assert store.max_passage_id(conn) == 5
    assert store.document_hashes(conn) == {"a": "h", "b": "h"}
    with conn:
        assert sorted(store.delete_document(conn, "a")) == [1, 2]  # passages go with their document
    assert [p.id for p in store.all_passages(conn)] == [5]
    assert store.delete_document(conn, "a") == []
    conn.close()


def test_readonly_connection_sees_committed_rows(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    writer = store.connect(path)
    with writer:
        store.insert_document(writer, _document("a"))
    reader = store.connect(path, readonly=True)
    assert store.get_document(reader, "a") is not None
    reader.close()
    writer.close()
