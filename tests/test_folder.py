"""index.storage.record.folder: generations, the publish swap, and readers' pins."""

from __future__ import annotations

from pathlib import Path

from index import Document, HashingEmbedder, Searcher, build_index
from index.retrieval.answer import ask
from index.storage.record import folder


def _build(index_dir: Path, text: str) -> Path:
    return build_index([Document("d", text)], index_dir, HashingEmbedder()).path


def test_a_build_does_not_delete_the_generation_a_reader_uses(tmp_path: Path) -> None:
    """`zhsearch build` once removed the generation a running `zhsearch mcp` read (then a raw sqlite3 error)."""
    first = _build(tmp_path, "黃浦區第一版文件。講舊區改造。")
    reader = Searcher.load(tmp_path, HashingEmbedder(), follow=False)
    second = _build(tmp_path, "黃浦區第二版文件。講營商環境。")
    assert folder.current(tmp_path) == second and first.exists()
    assert reader.document("d").text == "黃浦區第一版文件。講舊區改造。"
    assert ask(reader, "旧区改造", 3).hits  # reads its own, older generation
    reader.close()
    third = _build(tmp_path, "黃浦區第三版文件。")
    assert not first.exists() and not second.exists() and third.exists()


def test_a_following_reader_moves_to_the_new_generation_and_lets_the_old_one_go(tmp_path: Path) -> None:
    first = _build(tmp_path, "黃浦區第一版文件。講舊區改造。")
    reader = Searcher.load(tmp_path, HashingEmbedder())
    second = _build(tmp_path, "黃浦區第二版文件。講營商環境。")
    assert first.exists()  # still pinned until the reader looks again
    assert reader.search("营商环境", 3).hits[0].text == "黃浦區第二版文件。講營商環境。"
    assert reader.path == second
    third = _build(tmp_path, "黃浦區第三版文件。")
    assert not first.exists() and second.exists()  # the reader holds the second
    reader.close()
    assert third.exists()


def test_publish_removes_unpinned_generations_and_leftovers(tmp_path: Path) -> None:
    _build(tmp_path, "第一版。")
    leftover = folder.new_generation(tmp_path)  # a killed build's folder
    latest = _build(tmp_path, "第二版。")
    assert [p.name for p in (tmp_path / "generations").iterdir()] == [latest.name]
    assert not leftover.exists()


def test_loading_an_index_leaves_faiss_threads_alone(tmp_path: Path) -> None:
    """Searcher.__init__ once set FAISS's OpenMP threads process-wide, so a later build ran on one thread."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        _build(tmp_path, "第一版。")
        Searcher.load(tmp_path, HashingEmbedder()).close()
        assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)
