import json
import time
from pathlib import Path

from typer.testing import CliRunner

from service.cli import app

runner = CliRunner()


def test_build_then_search_json(env: Path) -> None:
    from tests.conftest import SEEDS

    built = runner.invoke(app, ["build", "--docs", str(SEEDS), "--json"])
    assert built.exit_code == 0, built.output
    assert json.loads(built.output)["passages"] > 0
    found = runner.invoke(app, ["search", "生产总值", "-k", "2", "--json"])
    assert found.exit_code == 0, found.output
    payload = json.loads(found.output)
    assert len(payload["results"]) == 2 and payload["results"][0]["rank"] == 1


def test_search_without_index_is_a_clear_error(env: Path) -> None:
    result = runner.invoke(app, ["search", "生产总值"])
    assert result.exit_code == 1
    assert "zhsearch build" in result.output


def test_build_with_bad_path(env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["build", "--docs", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "no such file" in result.output


def test_build_json_collection_with_field_mapping(env: Path, tmp_path: Path) -> None:
    poems = [{"author": "李白", "paragraphs": ["床前明月光，疑是地上霜。"], "title": "靜夜思"}]
    (tmp_path / "poems.json").write_text(json.dumps(poems, ensure_ascii=False), encoding="utf-8")
    built = runner.invoke(app, ["build", "--docs", str(tmp_path / "poems.json"), "--json-title", "author", "--json"])
    assert built.exit_code == 0, built.output
    found = json.loads(runner.invoke(app, ["search", "明月光", "--json"]).output)
    assert found["results"][0]["title"] == "李白"


def test_search_and_ask_go_to_a_server_running_on_the_index(tmp_path: Path) -> None:
    """A running `zhsearch serve` says so in its index folder; `search` and `ask` then ask it (milliseconds, not
    a model load) and say which server answered; a stopped server, a stale file or --no-server open the index
    here, with the same results."""
    import os
    import subprocess
    import sys

    from index import Document, HashingEmbedder, build_index
    from tests.server import serving

    folder = tmp_path / "idx"
    build_index(
        [Document("leave", "員工每年享有十五天特別休假。"), Document("trip", "出差住宿每晚上限兩千元。")],
        folder,
        HashingEmbedder(),
    )
    env = os.environ | {"ZHSEARCH_INDEX_DIR": str(folder), "ZHSEARCH_MODEL": "hashing"}
    env.pop("ZHSEARCH_NO_SERVER", None)

    def cli(*args: str) -> dict:  # type: ignore[type-arg]
        done = subprocess.run(
            [sys.executable, "-m", "service.cli", *args, "--json"], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    def same(found: dict) -> list[tuple[str, int, float]]:  # type: ignore[type-arg]
        return [(hit["doc_id"], hit["passage_id"], hit["score"]) for hit in found["results"]]

    with serving(folder, tmp_path / "server.log", ZHSEARCH_MODEL="hashing") as base:
        deadline = time.monotonic() + 30
        while not (folder / "server.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (folder / "server.json").stat().st_mode & 0o077 == 0  # only its user reads it
        remote = cli("search", "特別休假", "--mode", "lexical", "-k", "1")
        assert remote["server"] == base and remote["results"][0]["doc_id"] == "leave"
        asked = cli("ask", "出差住宿每晚上限多少？", "-k", "2")
        assert asked["server"] == base and asked["passages"][0]["doc_id"] == "trip"
        here = cli("search", "特別休假", "--mode", "lexical", "-k", "1", "--no-server")
        assert "server" not in here and same(here) == same(remote)
    assert not (folder / "server.json").exists()  # withdrawn when the server stopped
    # a stale file whose pid now belongs to another process (this one, not a server): not asked
    stale_record = {"pid": os.getpid(), "url": base, "index_dir": str(folder.resolve())}
    (folder / "server.json").write_text(json.dumps(stale_record), encoding="utf-8")
    stale = cli("search", "特別休假", "--mode", "lexical", "-k", "1")
    assert "server" not in stale and same(stale) == same(remote)
