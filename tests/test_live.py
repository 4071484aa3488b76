"""Live writes: durability, recovery after a crash between commit and index files, snapshots."""

import sqlite3
from pathlib import Path

import pytest

from index import Document, HashingEmbedder, Tuning, build_index
from index.errors import ConflictError, IndexBusyError, InvalidInputError, NotFoundError
from index.retrieval.snapshot import Filters
from index.storage.dense.vectors import VectorIndex
from index.storage.record import folder
from index.writing.live import LiveIndex


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    build_index([Document("base", "黃浦區的基礎文件。講經濟發展。")], tmp_path, HashingEmbedder())
    return tmp_path


def test_put_search_replace_delete(index_dir: Path) -> None:
    live = LiveIndex.open(index_dir, HashingEmbedder())
    try:
        created = live.put(Document("tw", "網際網路診療服務覆蓋所有社區衛生服務中心。"), create_only=True)
        assert created.created and created.document.passage_ids
        assert live.search("互联网诊疗", 1, "lexical").hits[0].doc_id == "tw"
        with pytest.raises(ConflictError):
            live.put(Document("tw", "另一段。"), create_only=True)
        replaced = live.put(Document("tw", "這份文件改成講舊區改造。"))
        assert not replaced.created
        assert all(h.doc_id != "tw" for h in live.search("互联网诊疗", 5, "lexical").hits)
        live.delete("tw")
        with pytest.raises(NotFoundError):
            live.document("tw")
        assert "tw" not in dict(live.snapshot.documents)
    finally:
        live.close()


def test_restart_shows_exactly_what_was_acknowledged(index_dir: Path) -> None:
    live = LiveIndex.open(index_dir, HashingEmbedder())
    live.put(Document("a", "第一篇新增文件。"))
    live.put(Document("b", "第二篇新增文件。"))
    live.delete("a")
    live.close()
    again = LiveIndex.open(index_dir, HashingEmbedder())
    try:
        assert sorted(again.snapshot.documents) == ["b", "base"]
        assert again.repaired == 0
    finally:
        again.close()


def test_a_write_writes_no_index_file_and_a_restart_catches_up(index_dir: Path) -> None:
    """The vectors of a write live in SQLite until a checkpoint: a restart takes them from there."""
    live = LiveIndex.open(index_dir, HashingEmbedder())
    files = {p.name: p.stat().st_mtime_ns for p in live.path.iterdir() if p.suffix == ".faiss"}
    live.put(Document("late", "在索引檔案寫入之前程序被終止的文件。"))
    assert {p.name: p.stat().st_mtime_ns for p in live.path.iterdir() if p.suffix == ".faiss"} == files
    live.close()  # as if killed: nothing but the SQLite commit happened
    again = LiveIndex.open(index_dir, HashingEmbedder())
    try:
        assert again.caught_up == 1 and again.repaired == 0
        assert again.search("索引档案写入之前", 1, "hybrid").hits[0].doc_id == "late"
        assert len(again.snapshot.vectors) == len(again.snapshot.passages) == len(again.snapshot.lexical)
    finally:
        again.close()


def test_passages_without_stored_vectors_are_embedded_again(index_dir: Path) -> None:
    """An index written before vectors were kept in SQLite (or BLOBs lost) still comes back whole."""
    live = LiveIndex.open(index_dir, HashingEmbedder())
    live.put(Document("late", "在索引檔案寫入之前程序被終止的文件。"))
    live.close()
    conn = sqlite3.connect(live.path / folder.STORE)
    conn.execute("DELETE FROM vectors")
    conn.commit()
    conn.close()
    again = LiveIndex.open(index_dir, HashingEmbedder())
    try:
        assert again.repaired == 1 and again.caught_up == 0
        assert again.search("索引档案写入之前", 1, "dense").hits[0].doc_id == "late"
    finally:
        again.close()


def test_bad_documents_change_nothing(index_dir: Path) -> None:
    live = LiveIndex.open(index_dir, HashingEmbedder())
    try:
        before = live.snapshot
        for doc in (Document("x", "   "), Document("", "文字"), Document("a/b", "文字"), Document("x" * 201, "文字")):
            with pytest.raises(InvalidInputError):
                live.put(doc)
        assert live.snapshot is before
    finally:
        live.close()


def test_one_server_per_index_and_no_build_while_served(index_dir: Path) -> None:
    live = LiveIndex.open(index_dir, HashingEmbedder())
    try:
        with pytest.raises(IndexBusyError, match="serve"):
            LiveIndex.open(index_dir, HashingEmbedder())
        with pytest.raises(IndexBusyError):
            build_index([Document("z", "新的。")], index_dir, HashingEmbedder())
    finally:
        live.close()


def test_rebuild_from_paths_keeps_live_documents(index_dir: Path) -> None:
    live = LiveIndex.open(index_dir, HashingEmbedder())
    live.put(Document("api-doc", "透過介面新增的文件。"))
    live.close()
    build_index([Document("base", "黃浦區的基礎文件。講經濟發展。改過。")], index_dir, HashingEmbedder())
    again = LiveIndex.open(index_dir, HashingEmbedder())
    try:
        assert sorted(again.snapshot.documents) == ["api-doc", "base"]
    finally:
        again.close()


def test_search_keeps_its_snapshot_during_a_write(index_dir: Path) -> None:
    live = LiveIndex.open(index_dir, HashingEmbedder())
    try:
        old = live.snapshot
        live.put(Document("new", "新文件的內容。"))
        assert "new" not in old.documents and "new" in live.snapshot.documents
        assert old.vectors is not live.snapshot.vectors
    finally:
        live.close()


def test_live_writes_on_an_approximate_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The HNSW kind (forced here by a tiny size limit): writes, deletes and a restart keep results right."""
    monkeypatch.setattr("index.storage.dense.vectors.FLAT_LIMIT", 5)
    topics = ["經濟發展", "舊區改造", "醫療服務", "教育資源", "交通建設", "文化旅遊", "生態環境", "社區治理"]
    docs = [Document(f"d{i}", f"第{i}篇文件講{topic}。" + "黃浦區的工作報告。" * 3) for i, topic in enumerate(topics)]
    build_index(docs, tmp_path, HashingEmbedder())
    live = LiveIndex.open(tmp_path, HashingEmbedder())
    try:
        assert "HNSW" in live.manifest.vector_index and live.vectors.kind.count("HNSW") == 1
        live.put(Document("new", "網際網路診療服務覆蓋所有社區衛生服務中心。"))
        assert live.search("互联网诊疗服务", 1, "dense").hits[0].doc_id == "new"
        live.delete("d2")
        found = {h.doc_id for h in live.search("醫療服務", 10, "dense").hits}
        assert "d2" not in found and "new" in found
        filtered = live.search("醫療服務", 3, "dense", Filters(doc_ids=frozenset({"d5", "d6"}))).hits
        assert {h.doc_id for h in filtered} == {"d5", "d6"}
    finally:
        live.close()
    again = LiveIndex.open(tmp_path, HashingEmbedder())
    try:
        assert again.repaired == 0 and "d2" not in again.snapshot.documents
        assert all(h.doc_id != "d2" for h in again.search("醫療服務", 10, "dense").hits)
        assert len(again.vectors) == len(again.snapshot.passages)
    finally:
        again.close()


def test_writes_touch_no_lexical_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above REBUILD_BELOW passages a write goes to the in-memory BM25 delta only; a restart derives
    the delta from SQLite, so a process killed right after a commit loses nothing."""
    monkeypatch.setattr("index.storage.lexical.REBUILD_BELOW", 0)
    docs = [Document(f"d{i}", f"第{i}篇：黃浦區的工作報告，講經濟發展。") for i in range(30)]
    build_index(docs, tmp_path, HashingEmbedder())
    live = LiveIndex.open(tmp_path, HashingEmbedder())
    lexical_dir = live.path / "lexical"
    base_files = {p.name: p.stat().st_mtime_ns for p in lexical_dir.iterdir()}
    try:
        live.put(Document("new", "網際網路診療服務覆蓋所有社區衛生服務中心。"))
        live.delete("d3")
        live.put(Document("late", "在索引檔案寫入之前程序被終止的文件。"))
        assert live.snapshot.lexical.delta_size == 2
        assert live.search("互联网诊疗", 1, "lexical").hits[0].doc_id == "new"
        assert all(h.doc_id != "d3" for h in live.search("第3篇", 30, "lexical").hits)
        assert {p.name: p.stat().st_mtime_ns for p in lexical_dir.iterdir()} == base_files
    finally:
        live.close()
    again = LiveIndex.open(tmp_path, HashingEmbedder())
    try:
        assert sorted(again.snapshot.documents) == sorted([f"d{i}" for i in range(30) if i != 3] + ["new", "late"])
        assert again.search("索引档案写入之前", 1, "lexical").hits[0].doc_id == "late"
        assert again.search("互联网诊疗", 1, "lexical").hits[0].doc_id == "new"
        assert all(h.doc_id != "d3" for h in again.search("第3篇", 30, "lexical").hits)
        assert len(again.snapshot.vectors) == len(again.snapshot.passages) == len(again.snapshot.lexical)
    finally:
        again.close()


def test_a_clean_restart_loads_the_lexical_delta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("index.storage.lexical.REBUILD_BELOW", 0)
    build_index([Document(f"d{i}", f"第{i}篇文件。") for i in range(10)], tmp_path, HashingEmbedder())
    live = LiveIndex.open(tmp_path, HashingEmbedder())
    live.put(Document("new", "網際網路診療服務。"))
    live.delete("d1")
    live.close()
    again = LiveIndex.open(tmp_path, HashingEmbedder())
    try:
        assert again.repaired == 0 and again.snapshot.lexical.delta_size == 1
        assert again.search("互联网诊疗", 1, "lexical").hits[0].doc_id == "new"
        assert "d1" not in {h.doc_id for h in again.search("第1篇文件", 10, "lexical").hits}
    finally:
        again.close()


def test_searches_during_writes_on_the_delta_and_graph_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Readers never see two versions of a document, with BM25 deltas and HNSW tombstones in play."""
    import re
    import threading

    monkeypatch.setattr("index.storage.lexical.REBUILD_BELOW", 0)
    monkeypatch.setattr("index.storage.dense.vectors.FLAT_LIMIT", 5)
    build_index([Document(f"d{i}", f"第{i}篇：黃浦區的工作報告。") for i in range(20)], tmp_path, HashingEmbedder())
    live = LiveIndex.open(tmp_path, HashingEmbedder())
    errors: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            for mode in ("lexical", "dense", "hybrid"):
                hits = [h for h in live.search("并发测试版本", 30, mode).hits if h.doc_id == "cc"]
                versions = {m.group(1) for h in hits for m in [re.search(r"版本(\d+)", h.text)] if m}
                if len(versions) > 1:
                    errors.append(f"{mode}: mixed versions {sorted(versions)}")

    threads = [threading.Thread(target=reader) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for v in range(30):
            live.put(Document("cc", "".join(f"並發測試第{n}段，版本{v}。" for n in range(6))))
        done.set()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors, errors[:3]
        assert "版本29" in live.search("并发测试", 1, "lexical").hits[0].text
    finally:
        done.set()
        live.close()


def _whole(live: LiveIndex, expected: set[str]) -> None:
    """Every expected document, each passage once in FAISS and BM25, nothing else."""
    assert set(live.snapshot.documents) == expected
    ids = live.vectors.ids()
    assert len(ids) == len(set(ids.tolist())) == len(live.snapshot.passages) == len(live.snapshot.lexical)
    assert set(ids.tolist()) == set(live.snapshot.passages)
    for doc_id in expected - {"base"}:
        n = doc_id.removeprefix("w")
        assert live.search(f"编号{n}号文件", 1, "lexical").hits[0].doc_id == doc_id
        assert live.search(f"編號{n}號的文件，講述", 1, "dense").hits[0].doc_id == doc_id


def _text(n: int) -> str:
    return f"這是編號{n}號的文件，講述第{n}件事情，內容完整而充實，足以成為一個段落。" * 3


def test_checkpoints_fold_writes_and_forget_their_vectors(index_dir: Path) -> None:
    live = LiveIndex.open(index_dir, HashingEmbedder(), Tuning(merge_vectors=8))
    try:
        for n in range(30):
            live.put(Document(f"w{n}", _text(n)))
        live.delete("w4")
        assert live.checkpoints >= 2 and live.vectors.delta_vectors <= 8
        conn = sqlite3.connect(live.path / folder.STORE)
        kept = conn.execute("SELECT count(*) FROM vectors").fetchone()[0]
        conn.close()
        assert kept <= 8  # the BLOBs a checkpoint holds are gone
        _whole(live, {"base"} | {f"w{n}" for n in range(30) if n != 4})
    finally:
        live.close()
    again = LiveIndex.open(index_dir, HashingEmbedder(), Tuning(merge_vectors=8))
    try:
        assert again.repaired == 0
        _whole(again, {"base"} | {f"w{n}" for n in range(30) if n != 4})
    finally:
        again.close()


@pytest.mark.parametrize("crash", ["after the sentences file", "after both files", "inside the BLOB drop"])
def test_a_crash_inside_a_checkpoint_loses_nothing(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch, crash: str
) -> None:
    """Killed at each step of writing a checkpoint: the restart catches up, no passage twice, none lost."""
    from index.storage.record import store

    live = LiveIndex.open(index_dir, HashingEmbedder(), Tuning(merge_vectors=6))  # one vector per document here
    for n in range(6):
        live.put(Document(f"w{n}", _text(n)))
    live.delete("w2")
    assert live.checkpoints == 0
    saves = {"n": 0}
    real_save, real_drop = VectorIndex.save, store.drop_vectors_below

    def save(self: VectorIndex, path: Path) -> None:
        saves["n"] += 1
        if crash == "after the sentences file" and saves["n"] == 2:
            raise SystemExit(crash)
        real_save(self, path)

    def drop(conn: sqlite3.Connection, passage_id: int) -> int:
        if crash == "inside the BLOB drop":
            real_drop(conn, passage_id)  # executed, then the transaction never commits
        raise SystemExit(crash)

    monkeypatch.setattr(VectorIndex, "save", save)
    monkeypatch.setattr(store, "drop_vectors_below", drop)
    attempted: list[str] = []
    with pytest.raises(SystemExit):
        for n in range(10, 40):  # until one write's checkpoint dies (its commit happened before)
            attempted.append(f"w{n}")
            live.put(Document(attempted[-1], _text(n)))
    live.close()
    monkeypatch.undo()
    again = LiveIndex.open(index_dir, HashingEmbedder())
    try:
        assert again.repaired == 0
        _whole(again, {"base", "w0", "w1", "w3", "w4", "w5", *attempted})
    finally:
        again.close()


def test_metadata_filters_follow_writes(index_dir: Path) -> None:
    """The (field, value) -> documents lookup that filters use agrees with a scan after every write."""
    import random

    rng = random.Random(5)
    live = LiveIndex.open(index_dir, HashingEmbedder())
    try:
        for step in range(60):
            doc_id = f"m{rng.randrange(15)}"
            if rng.random() < 0.25 and doc_id in live.snapshot.documents:
                live.delete(doc_id)
            else:
                meta = {"group": rng.choice(["a", "b", "c"]), "year": rng.choice([2020, 2021])}
                live.put(Document(doc_id, f"第{step}次寫入的文件，編號{doc_id}。", metadata=meta))
            snap = live.snapshot
            for wanted in ({"group": "a"}, {"group": "b", "year": 2021}, {"year": "2020"}, {"group": None}):
                filters = Filters(metadata=wanted)
                scanned = {pid for d in snap.documents.values() if filters.admits(d) for pid in d.passage_ids}
                assert snap.admitted(filters) == scanned, (step, wanted)
            by_id = Filters(doc_ids=frozenset({"m1", "m2", "base"}), metadata={"group": "a"})
            assert snap.admitted(by_id) == {
                pid for d in snap.documents.values() if by_id.admits(d) for pid in d.passage_ids
            }
        hits = live.search("寫入的文件", 20, "hybrid", Filters(metadata={"group": "b"})).hits
        assert hits and all(live.snapshot.documents[h.doc_id].metadata["group"] == "b" for h in hits)
    finally:
        live.close()
