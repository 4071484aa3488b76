"""Folder sync (issue 28): a folder driven through adds, edits, renames, moves and deletes, with search
checked after each; the CLI's `zhsearch sync`; a server's `--watch`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from index import Document, HashingEmbedder, Settings, Tuning, build_empty, build_index, sync_folder
from index.writing.live import LiveIndex
from service.app import create_app
from service.cli import app as cli

LOCAL = "http://127.0.0.1"


def _found(index: LiveIndex, query: str) -> set[str]:
    return {hit.doc_id for hit in index.search(query, 10, "lexical").hits}


def test_a_folder_through_adds_edits_renames_moves_and_deletes(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    build_empty(tmp_path / "idx", HashingEmbedder())
    index = LiveIndex.open(tmp_path / "idx", HashingEmbedder())
    try:
        index.put(Document("api-doc", "從接口寫入的文件，不屬於資料夾。"))
        (folder / "leave.txt").write_text("員工每年享有十五天年假。", encoding="utf-8")
        (folder / "sub" / "travel.md").write_text("# 差旅\n\n出差住宿每晚上限八百元。", encoding="utf-8")
        first = sync_folder(index, folder)
        assert sorted(first.added) == ["leave", "travel"] and not first.removed and not first.skipped
        assert _found(index, "年假") == {"leave"} and _found(index, "住宿") == {"travel"}

        again = sync_folder(index, folder)  # nothing changed: nothing written
        assert not again.touched and again.unchanged == 2

        (folder / "leave.txt").write_text("員工每年享有二十天年假。", encoding="utf-8")
        edited = sync_folder(index, folder)
        assert edited.changed == ["leave"]
        assert "二十天" in index.document("leave").text

        (folder / "leave.txt").rename(folder / "holidays.txt")  # renamed, same content: keeps its id
        renamed = sync_folder(index, folder)
        assert renamed.moved == ["leave"] and not renamed.added and not renamed.removed
        assert index.document("leave").source.endswith("holidays.txt")
        assert _found(index, "年假") == {"leave"}

        (folder / "sub" / "travel.md").rename(folder / "travel.md")  # moved to another folder
        moved = sync_folder(index, folder)
        assert moved.moved == ["travel"] and _found(index, "住宿") == {"travel"}

        (folder / "holidays.txt").unlink()
        deleted = sync_folder(index, folder)
        assert deleted.removed == ["leave"] and _found(index, "年假") == set()
        assert "api-doc" in {d.id for d in index.documents(0, 100)[1]}  # not the folder's: left alone

        (folder / "api-doc.txt").write_text("同名的檔案。", encoding="utf-8")
        (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
        taken = sync_folder(index, folder)
        reasons = " ".join(s.reason for s in taken.skipped)
        assert "taken" in reasons and "broken.pdf" in reasons
        assert index.document("api-doc").text == "從接口寫入的文件，不屬於資料夾。"

        # a file that cannot be read now keeps what the index has of it
        (folder / "api-doc.txt").unlink()
        (folder / "travel.md").write_bytes(b"\xff\xfe\x00\xd8 broken \x00\x00")
        kept = sync_folder(index, folder)
        assert "travel" not in kept.removed and "住宿" in index.document("travel").text
    finally:
        index.close()
    # the writes were durable: a reopened index holds the same
    reopened = LiveIndex.open(tmp_path / "idx", HashingEmbedder())
    assert {d.id for d in reopened.documents(0, 100)[1]} == {"api-doc", "travel"}
    reopened.close()


def test_cli_sync(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ZHSEARCH_MODEL", "hashing")
    monkeypatch.setenv("ZHSEARCH_INDEX_DIR", str(tmp_path / "idx"))
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("外灘的夜景很美。", encoding="utf-8")
    first = CliRunner().invoke(cli, ["sync", str(folder), "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["added"] == ["a"]
    (folder / "a.txt").unlink()
    second = CliRunner().invoke(cli, ["sync", str(folder)])
    assert second.exit_code == 0 and "1 removed" in second.output
    missing = CliRunner().invoke(cli, ["sync", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "no such folder" in missing.output


def test_a_server_watches_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "old.txt").write_text("舊的公告：本週停水。", encoding="utf-8")
    build_index([Document("base", "黃浦區的基礎文件。")], tmp_path / "idx", HashingEmbedder())
    settings = Settings(index_dir=tmp_path / "idx", model="hashing", watch=[folder], watch_interval_s=0.1)
    live = LiveIndex.open(tmp_path / "idx", HashingEmbedder(), Tuning.of(settings))

    def waits_for(client: TestClient, query: str, doc_id: str, present: bool) -> None:
        deadline = time.monotonic() + 30
        while True:
            hits = client.get("/v1/search", params={"q": query, "mode": "lexical"}).json()["results"]
            if (doc_id in {hit["doc_id"] for hit in hits}) == present:
                return
            assert time.monotonic() < deadline, f"{doc_id} {'never appeared' if present else 'stayed'}"
            time.sleep(0.1)

    with TestClient(create_app(settings, index=live), base_url=LOCAL) as client:
        waits_for(client, "停水", "old", True)
        (folder / "new.txt").write_text("新的公告：下週停電。", encoding="utf-8")
        waits_for(client, "停電", "new", True)
        (folder / "old.txt").unlink()
        waits_for(client, "停水", "old", False)
        assert client.get("/v1/documents/base").status_code == 200  # not the folder's
    live.close()
