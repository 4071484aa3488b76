"""The default model's tokenizer with its pieces in a dict gives ``tokenizers``' ids and offsets (issue 29)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from index.models.convert import ensure_model
from index.models.onnx import FastTokenizer, built_tokenizer_file
from index.models.unigram import UnigramTokenizer

ROOT = Path(__file__).resolve().parents[1]

TEXTS = [
    "黃浦區上半年引進了多少家高端服務業企業？",
    "query: 黄浦区 2023年 上半年 GDP 是多少",
    "  leading,   inner\tand trailing  spaces \n",
    "",
    " ",
    "<s>special</s> tokens <mask> in <pad>text<unk>",
    "ＡＢＣ１２３　全形 ﬁ ① ㍻ ｶﾀｶﾅ é (e + \u0301) \u200b zero width",
    "𠀀𪚥𫝀 rare CJK, emoji 😀🐍, and control \x07 characters",
    "Python 3.12 的 f-string 與 café、網際網路套用最佳化",
    "長文本截斷測試。" * 300,
]


@pytest.fixture(scope="module")
def pair() -> tuple[UnigramTokenizer, object]:
    from tokenizers import Tokenizer

    from index import get_settings

    folder = ensure_model(get_settings().cache_dir)
    FastTokenizer(folder, 512)  # keeps the pipeline transformers builds, once
    built = built_tokenizer_file(folder)
    mine = UnigramTokenizer.load(built)
    assert mine is not None
    return mine, Tokenizer.from_file(str(built))


def _seed_lines() -> list[str]:
    lines = []
    for path in sorted((ROOT / "seeds").glob("*.txt")):
        lines += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines


def test_ids_and_offsets_equal_tokenizers(pair) -> None:
    mine, reference = pair
    texts = TEXTS + _seed_lines()
    reference.enable_truncation(max_length=512, strategy="longest_first")
    for text, want in zip(texts, reference.encode_batch(texts), strict=True):
        got = mine.encode(text, 512)
        assert got.ids == list(want.ids), text[:40]
        assert got.offsets == [tuple(o) for o in want.offsets], text[:40]
        assert mine.ids(text, 512) == got.ids
    reference.no_truncation()
    assert [len(mine.ids(t)) for t in texts] == [len(e.ids) for e in reference.encode_batch(texts)]


@pytest.mark.parametrize("limit", [512, 256, 40])
def test_pairs_are_cut_longest_first_as_tokenizers_does(pair, limit: int) -> None:
    """The span reader's input: ids, offsets and which text each token came from."""
    mine, reference = pair
    lines = _seed_lines()
    pairs = [(TEXTS[0], line) for line in lines] + [(line, TEXTS[1]) for line in lines[:5]] + [(TEXTS[-1], TEXTS[-1])]
    reference.enable_truncation(max_length=limit, strategy="longest_first")
    for (a, b), want in zip(pairs, reference.encode_batch(pairs), strict=True):
        got = mine.encode_pair(a, b, limit)
        assert (got.ids, got.offsets, got.sequence_ids) == (
            list(want.ids),
            [tuple(o) for o in want.offsets],
            list(want.sequence_ids),
        ), (a[:20], b[:20])


def test_the_compact_file_is_made_once_and_remade_when_damaged(pair, tmp_path: Path) -> None:
    mine, _ = pair
    folder = ensure_model(__import__("index").get_settings().cache_dir)
    built = tmp_path / "tokenizer.json"
    built.write_bytes(built_tokenizer_file(folder).read_bytes())
    first = UnigramTokenizer.load(built)
    compact = tmp_path / "tokenizer.json.unigram"
    assert first is not None and compact.exists()
    compact.write_bytes(compact.read_bytes()[:-1000])  # a torn copy
    again = UnigramTokenizer.load(built)
    assert again is not None and again.encode(TEXTS[8]) == mine.encode(TEXTS[8])
    assert compact.stat().st_size > 1_000_000


def test_a_pipeline_it_does_not_run_is_left_to_tokenizers(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models

    wordpiece = tmp_path / "tokenizer.json"
    wordpiece.write_text(Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]")).to_str())
    assert UnigramTokenizer.load(wordpiece) is None
    assert not (tmp_path / "tokenizer.json.unigram").exists()


def test_threads_share_one_instance(pair) -> None:
    mine, _ = pair
    texts = TEXTS * 4
    expected = [mine.encode(t, 64) for t in texts]
    found: list[list[object]] = [[] for _ in range(4)]

    def work(n: int) -> None:
        found[n] = [mine.encode(t, 64) for t in texts]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(part == expected for part in found)
