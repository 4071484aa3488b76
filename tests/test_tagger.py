"""jieba's tagger with its dictionary in SQLite tags exactly as stock jieba does (issue 29: a cold ``ask``)."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from index import get_settings
from index.retrieval import tagger
from index.text.normalize import normalize

ROOT = Path(__file__).resolve().parents[1]

HANDPICKED = [
    "黄浦区上半年引进了多少家高端服务业企业",
    "诸葛亮是三国时期蜀汉丞相，出生于琅琊阳都，后来在成都去世。",
    "台北市的國立故宮博物院收藏了多少件文物？",
    "Python 3.12 的 f-string 与 café、互联网应用优化 100% 完成",
    "",
    "  \n\t",
    "𠀀𪚥 rare CJK 😀 and control \x07 characters",
    "中华人民共和国国务院总理李克强在上海市黄浦区考察",
]


def seed_texts(limit: int = 40) -> list[str]:
    """The handpicked texts, then ``limit`` sentences spread over the seeds, as written and normalized
    (jieba's HMM tags ~2,000 characters a second here: benchmarks/tagger_check.py compares thousands)."""
    sentences = [
        sentence.strip()
        for path in sorted((ROOT / "seeds").rglob("*"))
        if path.is_file() and path.suffix in {".txt", ".md"}
        for sentence in re.split(r"(?<=[。！？\n])", path.read_text(encoding="utf-8"))
        if sentence.strip()
    ]
    picked = sentences[:: max(1, len(sentences) // limit)][:limit]
    return HANDPICKED + picked + [normalize(sentence) for sentence in picked]


def stock_tags(texts: list[str]) -> list[list[list[str]]]:
    import jieba
    import jieba.posseg

    stock = jieba.posseg.POSTokenizer(jieba.Tokenizer())
    return [[[w.word, w.flag] for w in stock.cut(text)] for text in texts]


COLD = """
import json, sys
import jieba
from index.retrieval import tagger
texts = json.load(sys.stdin)
tagger.configure({cache_dir!r})
mine = [tagger.tag(text) for text in texts]
import jieba.posseg
lazy_module = type(jieba.posseg.dt.word_tag_tab).__name__
untouched = jieba.posseg.dt.tokenizer is jieba.dt and not jieba.dt.FREQ
# other users of jieba.posseg still get stock answers from its module-level tagger
stock = [[[w.word, w.flag] for w in jieba.posseg.cut(text)] for text in texts[:20]]
print(json.dumps({{"mine": mine, "global": stock, "lazy_module": lazy_module, "jieba_dt_untouched": untouched}}))
"""


def _cold(cache_dir: Path, texts: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", COLD.format(cache_dir=str(cache_dir))],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout)


def test_cold_process_tags_as_stock_jieba(tmp_path: Path) -> None:
    """A fresh process (as a cold command) builds the file, or reads it, imports jieba.posseg without parsing
    dict.txt, and tags exactly as stock jieba."""
    texts = seed_texts()
    expected = stock_tags(texts)
    for run in ("builds", "reads"):
        found = _cold(tmp_path, texts)
        assert [[list(pair) for pair in tags] for tags in found["mine"]] == expected, run
        assert found["global"] == expected[:20], run
        assert found["lazy_module"] == "_Column", run
        assert found["jieba_dt_untouched"], run  # nothing loaded jieba's own prefix dictionary: it stays lazy
    assert len(list((tmp_path / "jieba").glob("dict-*.sqlite"))) == 1


def test_file_is_built_once_and_published_whole(tmp_path: Path) -> None:
    folder = tmp_path / "jieba"
    folder.mkdir()
    (folder / "dict-0123456789abcdef.sqlite").write_bytes(b"another jieba's")
    (folder / ".dict-0123456789abcdef.sqlite.99.partial").write_bytes(b"a killed build's")
    path = tagger.ensure_tagger(tmp_path)
    stamp = path.stat().st_mtime_ns
    assert tagger.ensure_tagger(tmp_path) == path
    assert path.stat().st_mtime_ns == stamp
    assert [p.name for p in folder.iterdir() if p.name != ".lock"] == [path.name]  # the others removed


def test_a_file_that_does_not_read_is_built_again(tmp_path: Path, configured, caplog) -> None:
    path = tagger.ensure_tagger(tmp_path)
    path.write_bytes(b"")  # e.g. cut short
    configured(tmp_path)
    with caplog.at_level(logging.WARNING, logger="index.retrieval.tagger"):
        found = tagger.tag(HANDPICKED[1])
    assert "building it again" in caplog.text
    assert [list(pair) for pair in found] == stock_tags([HANDPICKED[1]])[0]
    assert path.stat().st_size > 1_000_000


@pytest.fixture
def configured():
    yield tagger.configure
    tagger.configure(None)


def test_unwritable_cache_falls_back_to_stock_jieba(tmp_path: Path, configured, caplog) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    configured(blocker / "cache")
    with caplog.at_level(logging.WARNING, logger="index.retrieval.tagger"):
        found = tagger.tag(HANDPICKED[1])
    assert "jieba loads its whole dictionary" in caplog.text
    assert [list(pair) for pair in found] == stock_tags([HANDPICKED[1]])[0]


def test_threads_share_one_tagger(configured, monkeypatch) -> None:
    """Four threads tag at once, with the remembered words forgotten every few lookups: stock jieba's tags."""
    configured(get_settings().cache_dir)
    monkeypatch.setattr(tagger, "REMEMBERED", 50)
    texts = seed_texts(10)
    expected = [[tuple(pair) for pair in tags] for tags in stock_tags(texts)]
    results: list[list[list[tuple[str, str]]]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append([tagger.tag(text) for text in texts])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results == [expected] * 4
