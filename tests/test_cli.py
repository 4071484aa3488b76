import json
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
