"""The lexical index: base + removed mask + delta, against a full rebuild."""

from pathlib import Path

import numpy as np
import pytest

from index.storage import lexical
from index.storage.lexical import LexicalIndex, tokenize
from index.storage.record.store import StoredPassage
from index.text.normalize import normalize

TOPICS = [
    "黃浦區上半年地區生產總值一千二百億元",
    "網際網路診療服務覆蓋所有社區衛生服務中心",
    "舊區改造完成二千戶居民搬遷",
    "外灘金融集聚帶吸引外資金融機構",
    "社區雲覆蓋全部街道與居委會",
    "營商環境最佳化服務企業",
    "城市更新與歷史風貌保護",
    "教育資源均衡發展新建學校",
    "養老服務床位增加",
    "文化旅遊節吸引遊客",
]


def _passage(pid: int, text: str, title: str = "") -> StoredPassage:
    return StoredPassage(
        id=pid,
        doc_id=f"d{pid}",
        ordinal=0,
        section="",
        section_path=(),
        start=0,
        end=len(text),
        text=text,
        norm_text=normalize(text),
        title=title,
    )


def _corpus(n: int) -> list[StoredPassage]:
    return [_passage(i, f"{TOPICS[i % len(TOPICS)]}，第{i}段。") for i in range(1, n + 1)]


@pytest.fixture(autouse=True)
def _always_delta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexical, "REBUILD_BELOW", 0)  # small test corpora would otherwise always rebuild


def test_tokens_are_unigrams_and_bigrams() -> None:
    assert tokenize("互联网abc") == ["互", "联", "网", "互联", "联网", "abc"]


def test_delta_ranks_like_a_full_rebuild() -> None:
    base = _corpus(60)
    added = [_passage(100, "互联网诊疗服务新增夜间门诊"), _passage(101, "旧区改造新开工三个地块")]
    removed = [2, 12, 22]
    index, rebuilt = LexicalIndex.build(base).updated(removed, added, lambda: [])
    assert not rebuilt and index.delta_size == 2 and len(index) == 60 - 3 + 2
    full = LexicalIndex.build([p for p in base if p.id not in removed] + added)
    for query in ("互联网诊疗", "旧区改造", "营商环境", "夜间门诊"):
        ids, scores = index.search(normalize(query), 10)
        want, want_scores = full.search(normalize(query), 10)
        assert not set(ids.tolist()) & set(removed)
        assert ids[0] == want[0]
        assert len(set(ids.tolist()) & set(want.tolist())) >= min(8, len(want))
        # Base scores keep the base's statistics until the next rebuild, so scores differ (here by up
        # to 17%: half the passages matching 互联网诊疗 were removed), but not the ranking.
        assert scores[0] > 0 and want_scores[0] > 0
    assert index.search(normalize("夜间门诊"), 1)[0].tolist() == [100]


def test_removing_a_delta_passage_and_readding_an_id() -> None:
    index, _ = LexicalIndex.build(_corpus(20)).updated([], [_passage(50, "夜间门诊开放")], lambda: [])
    index, _ = index.updated([50], [], lambda: [])
    assert index.delta_size == 0 and 50 not in set(index.ids.tolist())
    assert 50 not in index.search(normalize("夜间门诊"), 5)[0].tolist()


def test_an_empty_base_grows_by_delta_with_real_idf() -> None:
    index, rebuilt = LexicalIndex.build([]).updated([], _corpus(10), lambda: [])
    assert not rebuilt and len(index) == 10
    ids, scores = index.search(normalize("社区云覆盖"), 3)
    assert ids[0] == 4 and scores[0] > scores[-1]  # passage i is about TOPICS[i % 10]


def test_load_derives_the_delta_from_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the base is saved: what the store holds beyond it is the delta, what it lacks is removed."""
    monkeypatch.setattr(lexical, "REBUILD_BELOW", 0)
    base = _corpus(30)
    added = [_passage(100, "互联网诊疗服务新增夜间门诊", title="衛生")]
    LexicalIndex.build(base).save(tmp_path)
    index, rebuilt = LexicalIndex.build(base).updated([3], added, lambda: [])
    assert not rebuilt
    rows = {p.id: p for p in base + added if p.id != 3}
    loaded = LexicalIndex.load(tmp_path, np.asarray(sorted(rows)), lambda ids: {i: rows[i] for i in ids if i in rows})
    assert loaded.delta_size == 1
    assert sorted(loaded.ids.tolist()) == sorted(index.ids.tolist())
    for query in ("夜间门诊", "旧区改造", "卫生"):
        got, want = loaded.search(normalize(query), 5), index.search(normalize(query), 5)
        assert got[0].tolist() == want[0].tolist()
        np.testing.assert_allclose(got[1], want[1], rtol=1e-5)


def test_too_many_changes_rebuild_the_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexical, "DELTA_LIMIT", 3)
    base = _corpus(40)
    everything = base + [_passage(100 + i, f"新增第{i}段") for i in range(4)]
    index, rebuilt = LexicalIndex.build(base).updated([], everything[40:], lambda: everything)
    assert rebuilt and index.delta_size == 0 and len(index) == 44
    index, rebuilt = LexicalIndex.build(base).updated(range(1, 6), [], lambda: base[5:])  # 5 of 40 removed
    assert rebuilt and len(index) == 35


def test_tokens_by_hand() -> None:
    assert tokenize("甲乙 abc 1.5") == ["甲", "乙", "甲乙", "abc", "1.5"]


def test_bm25_scores_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """Base passages scored by bm25s over the base, a delta passage over base + delta statistics.

    Tokens: 甲乙 -> 甲 乙 甲乙; 丙丁 -> 丙 丁 丙丁; 甲丙 -> 甲 丙 甲丙 (three each, mean 3).
    bm25s defaults k1 = 1.5, b = 0.75; with length = mean, the tf part is tf / (k1 + tf) = 1 / 2.5.
      base 甲乙 on 甲:  N = 2, df = 1:  idf = ln(1 + 1.5 / 1.5) = ln 2    -> 0.693147 / 2.5 = 0.277259
      delta 甲丙 on 甲: N = 3, df = 2:  idf = ln(1 + 1.5 / 2.5) = ln 1.6  -> 0.470004 / 2.5 = 0.188001
    Headings are empty, so the heading field adds nothing.
    """
    monkeypatch.setattr(lexical, "REBUILD_BELOW", 0)
    base = LexicalIndex.build([_passage(1, "甲乙"), _passage(2, "丙丁")])
    index, rebuilt = base.updated([], [_passage(3, "甲丙")], lambda: [])
    assert not rebuilt and index.delta_size == 1
    ids, scores = index.search("甲", 10)
    assert dict(zip(ids.tolist(), scores.tolist(), strict=True)) == {
        1: pytest.approx(0.277259, abs=1e-5),
        3: pytest.approx(0.188001, abs=1e-5),
    }


def test_query_tokens_leave_out_question_words_unless_nothing_else_is_left() -> None:
    from index.storage.lexical import query_tokens, tokenize

    assert query_tokens("莫高窟有多少个洞窟") == tokenize("莫高窟 个洞窟")
    assert "多少" not in query_tokens("莫高窟有多少个洞窟")
    assert query_tokens("是什么") == tokenize("是什么")


def test_a_saved_field_scores_as_bm25s_does_bit_for_bit(tmp_path: Path) -> None:
    """Reading an index does without bm25s (scipy, numba: 0.4 s and ~90 MB of a cold command)."""
    import bm25s

    from index.storage.lexical.saved import K1, B, SavedBM25

    corpus = [tokenize(normalize(f"{TOPICS[i % len(TOPICS)]} python 3.12 第{i}段")) for i in range(200)]
    model = bm25s.BM25()
    model.index(corpus, show_progress=False)
    model.save(str(tmp_path), show_progress=False)
    reference = bm25s.BM25.load(str(tmp_path), show_progress=False)
    for mmap in (False, True):
        saved = SavedBM25.load(tmp_path, mmap=mmap)
        for query in ("黄浦区生产总值", "python", "社区 社区 服务 第1", "没有的词", "3.12"):
            tokens = tokenize(normalize(query)) or ["\u0000"]
            assert np.array_equal(saved.get_scores(tokens), reference.get_scores(tokens)), query
    assert (saved.k1, saved.b) == (K1, B) == (bm25s.BM25().k1, bm25s.BM25().b)


def test_reading_an_index_imports_no_bm25s(tmp_path: Path) -> None:
    import subprocess
    import sys

    LexicalIndex.build(_corpus(30)).save(tmp_path)
    code = (
        "import sys, numpy as np\n"
        "from index.storage.lexical import LexicalIndex\n"
        f"folder = __import__('pathlib').Path({str(tmp_path)!r})\n"
        "index = LexicalIndex.load(folder, np.arange(1, 31), lambda ids: {})\n"
        "assert len(index.search('第3段', 5)[0])\n"
        "print(sorted(m for m in ('bm25s', 'scipy', 'numba') if m in sys.modules))\n"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert found.strip() == "[]"
