"""Answer-sentence scoring in index/retrieval/answer.py, worked by hand on tiny passages.

A candidate's raw score is ``0.60 * coverage + 0.40 * weighted + 0.35 * dense`` (+- the kind weight),
where coverage is the share of the question's content bigrams the sentence holds, ``weighted`` the same
share weighted by rarity ``log(1 + N / (1 + df))`` over the N candidates, and ``dense`` the dot product
of the sentence's vector with the query's. The reported score is the raw one over ``max_score()`` (1.40).
The vectors come from a table embedder (4 dimensions), so every dot product is read off by hand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pytest

from index.models import DOCUMENT_BATCH
from index.retrieval import answer
from index.retrieval.answer import content_bigrams, extract_answer, max_score, required_terms, sentence_encoder
from index.retrieval.search import Hit
from index.text.normalize import normalize

DIM = 4
E0, E1, E2, E3 = (1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (0.0, 0.0, 0.0, 1.0)

# "熊猫寿命": kind None, no years or names; content bigrams {熊猫, 猫寿, 寿命}.
LIFESPAN_Q = "熊猫寿命"
WILD = "野生熊猫的寿命一般约为十五年左右。"  # 17 chars; bigrams 熊猫, 寿命 (not 猫寿: 猫的)
BAMBOO = "熊猫主要以竹子为食。"  # 10 chars; bigram 熊猫
CAPTIVE = "圈养个体可以活到三十岁。"  # 12 chars; none of the question's bigrams


class TableEmbedder:
    """Fixed vectors: a sentence's from ``table`` (by normalized text; zero if absent), every query ``query``."""

    name = "table"
    fingerprint = "table-v1"
    dim = DIM
    max_tokens = 512

    def __init__(self, table: Mapping[str, Sequence[float]] | None = None, query: Sequence[float] = E0) -> None:
        self.table = {normalize(k): np.asarray(v, np.float32) for k, v in (table or {}).items()}
        self.query = np.asarray(query, np.float32)
        self.encoded: list[str] = []

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.query for _ in texts])

    def encode_documents(self, texts: Sequence[str], batch_size: int = DOCUMENT_BATCH) -> np.ndarray:
        self.encoded.extend(texts)
        return np.stack([self.table.get(t, np.zeros(DIM, np.float32)) for t in texts])

    def count_tokens(self, text: str) -> int:
        return len(text)


class NoEncoding(TableEmbedder):
    """Fails if the answer step encodes a sentence (every vector must come from ``stored_sentences``)."""

    def encode_documents(self, texts: Sequence[str], batch_size: int = DOCUMENT_BATCH) -> np.ndarray:
        raise AssertionError(f"encoded {list(texts)}")


def _hit(
    text: str,
    *,
    title: str = "动物资料",
    doc_id: str = "d",
    passage_id: int = 7,
    start: int = 0,
    rank: int = 1,
    pages: list[int] | None = None,
    page_offsets: Sequence[int] | None = None,
) -> Hit:
    return Hit(
        rank=rank,
        score=1.0,
        passage_id=passage_id,
        doc_id=doc_id,
        title=title,
        section="",
        text=text,
        start=start,
        end=start + len(text),
        pages=pages,
        page_offsets=page_offsets,
    )


def test_content_bigrams_drop_function_word_pairs_and_bridge_punctuation() -> None:
    """莫高窟有多少个洞窟: 8 bigrams, 有多/多少/少个 are stop+stop; punctuation is skipped, digits and ASCII count."""
    assert content_bigrams("莫高窟有多少个洞窟") == {"莫高", "高窟", "窟有", "个洞", "洞窟"}
    assert content_bigrams("熊猫，寿命") == {"熊猫", "猫寿", "寿命"}  # the comma is not content: 猫寿 spans it
    assert content_bigrams(normalize("GPT-4模型")) == {"gp", "pt", "t4", "4模", "模型"}  # normalize lower-cases
    assert content_bigrams("是什么呢") == set()  # 是什, 什么, 么呢: all stop+stop


def test_required_terms_years_and_places() -> None:
    """Years are (19|20)dd before 年; jieba's ns/nt words of 2+ characters are required names."""
    assert required_terms("北京市海淀区2020年上半年gdp") == (["2020年"], ["北京市", "海淀区"])
    assert required_terms("熊猫寿命") == ([], [])
    # 1899年 and 2100年 are no years here ((19|20)dd); the 2020 inside 12020年 is (no left boundary).
    assert required_terms("1899年、1999年和2100年的12020年")[0] == ["1999年", "2020年"]


def test_mentions_accepts_the_stem_of_a_place() -> None:
    """黄浦区 (3 chars ending in 区) is satisfied by 黄浦; a 2-char term is matched whole."""
    assert answer._mentions("黄浦区", "黄浦的旧区改造")
    assert answer._mentions("北京市", "", "北京简介")  # any of the texts: here the title
    assert not answer._mentions("海淀区", "黄浦区的报告")
    assert not answer._mentions("浦区", "黄浦的旧区改造")  # too short to lose its 区


def test_constants_and_max_score() -> None:
    """max_score = 0.60 + 0.40 + 0.35 + max kind weight 0.05 = 1.40."""
    assert answer.THRESHOLD == 0.42 and answer.MIN_COVERAGE == 0.1 and answer.TOP_PASSAGES == 3
    assert max_score() == pytest.approx(1.40)


def test_best_sentence_score_and_offsets_worked_by_hand() -> None:
    """Three candidates, N = 3; the question vector is e0 (from encode_queries).

    df: 熊猫 2 (WILD, BAMBOO), 寿命 1, 猫寿 0 -> rarity log 2, log 2.5, log 4; total log 20.
    WILD:    0.6 * 2/3 + 0.4 * log 5 / log 20 + 0.35 * 0.6 = 0.4 + 0.214898 + 0.21 = 0.824897
    BAMBOO:  0.6 * 1/3 + 0.4 * log 2 / log 20 + 0.35 * 0.8 = 0.2 + 0.092551 + 0.28 = 0.572551
    CAPTIVE: 0 + 0 + 0.35 * 1.0 = 0.35
    WILD wins: reported 0.824897 / 1.4 = 0.5892; document offsets 100 + [0, 17).
    Pages: offsets [0, 110] put [100, 117) on pages 1 and 2.
    """
    embedder = TableEmbedder({WILD: (0.6, 0.8, 0, 0), BAMBOO: (0.8, 0.6, 0, 0), CAPTIVE: E0})
    hit = _hit(WILD + BAMBOO + CAPTIVE, start=100, pages=[1, 2], page_offsets=[0, 110])
    found = extract_answer(LIFESPAN_Q, [hit], embedder)
    assert found is not None
    assert found.text == WILD and found.doc_id == "d" and found.passage_id == 7
    assert (found.start, found.end) == (100, 117)
    assert found.score == pytest.approx(0.5892, abs=1e-9)  # rounded to 4 places
    assert found.pages == [1, 2]
    assert sorted(embedder.encoded) == sorted(normalize(s) for s in (WILD, BAMBOO, CAPTIVE))


def test_threshold_and_min_coverage_decide_abstention() -> None:
    """Same passage: the best raw score is 0.824897 and its coverage 2/3 = 0.6667."""
    embedder = TableEmbedder({WILD: (0.6, 0.8, 0, 0), BAMBOO: (0.8, 0.6, 0, 0), CAPTIVE: E0})
    hits = [_hit(WILD + BAMBOO + CAPTIVE)]
    assert extract_answer(LIFESPAN_Q, hits, embedder, threshold=0.8248) is not None
    assert extract_answer(LIFESPAN_Q, hits, embedder, threshold=0.8250) is None  # the threshold is on the raw score
    assert extract_answer(LIFESPAN_Q, hits, embedder, min_coverage=0.66) is not None
    # Coverage is checked on the best candidate only: no fall-back to another sentence.
    assert extract_answer(LIFESPAN_Q, hits, embedder, min_coverage=0.67) is None


def test_no_content_bigrams_or_no_hits_is_no_answer() -> None:
    """是什么呢 has no content bigram; an empty hit list has no candidate."""
    embedder = TableEmbedder()
    assert extract_answer("是什么呢", [_hit(WILD)], embedder) is None
    assert extract_answer(LIFESPAN_Q, [], embedder) is None


def test_rarer_bigram_breaks_a_coverage_tie() -> None:
    """竹子营养 -> {竹子, 子营, 营养}; each sentence covers 1/3; dense 1.0 for all (vector = query = e0).

    N = 3; df 竹子 2 -> log 2, 营养 1 -> log 2.5, 子营 0 -> log 4; total log 20.
    竹子 sentences: 0.2 + 0.4 * log 2 / log 20 + 0.35 = 0.642551
    营养 sentence:  0.2 + 0.4 * log 2.5 / log 20 + 0.35 = 0.672346 -> reported 0.672346 / 1.4 = 0.4802
    """
    first, rare, last = "竹子是熊猫最主要的食物来源。", "竹笋富含营养并且容易消化。", "熊猫每天要吃很多竹子才能吃饱。"
    embedder = TableEmbedder({first: E0, rare: E0, last: E0})
    found = extract_answer("竹子营养", [_hit(first + rare + last)], embedder, query_vector=np.asarray(E0, np.float32))
    assert found is not None and found.text == rare
    assert (found.start, found.end) == (len(first), len(first) + len(rare))
    assert found.score == pytest.approx(0.4802, abs=1e-9)
    expected = 0.2 + 0.4 * math.log(2.5) / math.log(20) + 0.35
    assert found.score == pytest.approx(round(expected / 1.4, 4), abs=1e-9)


def test_title_bigrams_count_for_every_sentence() -> None:
    """Title 熊猫 gives every sentence 熊猫: "它的寿命..." then covers {熊猫, 寿命} = 2/3.

    N = 2; df 熊猫 2 -> log(5/3), 寿命 1 -> log 2, 猫寿 0 -> log 3; total log 10.
    with the title: 0.4 + 0.4 * log(10/3) / log 10 + 0 = 0.609151 -> reported 0.4351
    title 动物 instead: coverage 1/3, rarity log 2 / log 18 -> 0.2 + 0.095925 = 0.295925 < 0.42 -> None
    """
    its, other = "它的寿命一般约为十五年左右。", "竹子是它最主要的食物来源啊。"
    embedder = TableEmbedder()  # every sentence vector is zero: dense 0
    found = extract_answer(LIFESPAN_Q, [_hit(its + other, title="熊猫")], embedder)
    assert found is not None and found.text == its
    assert found.score == pytest.approx(0.4351, abs=1e-9)
    assert extract_answer(LIFESPAN_Q, [_hit(its + other, title="动物")], embedder) is None
    assert extract_answer(LIFESPAN_Q, [_hit(its + other, title="动物")], embedder, threshold=0.2959) is not None
    assert extract_answer(LIFESPAN_Q, [_hit(its + other, title="动物")], embedder, threshold=0.2960) is None


def test_a_heading_never_wins_but_counts_for_rarity() -> None:
    """The line 熊猫寿命 covers 3/3 but is a heading; the next line is the answer, at offset 5 (after the newline).

    N = 2 (the heading counts); df 熊猫 2, 寿命 2 -> log(5/3) each, 猫寿 1 -> log 2; total log(50/9).
    WILD: 0.4 + 0.4 * 2 log(5/3) / log(50/9) + 0.35 * 0.5 = 0.4 + 0.238314 + 0.175 = 0.813314 -> 0.5809
    """
    text = "熊猫寿命\n" + WILD
    embedder = TableEmbedder({"熊猫寿命": E0, WILD: (0.5, 0.5, 0.5, 0.5)})
    found = extract_answer(LIFESPAN_Q, [_hit(text, start=40)], embedder)
    assert found is not None and found.text == WILD
    assert (found.start, found.end) == (45, 62)
    assert found.score == pytest.approx(0.5809, abs=1e-9)
    assert found.pages is None  # the hit is not paginated


def test_kind_weight_lifts_the_sentence_that_carries_a_quantity() -> None:
    """熊猫活几年 (quantity) -> {熊猫, 猫活, 活几, 几年}; both sentences cover only 熊猫, dense 1.0.

    N = 2; df 熊猫 2 -> log(5/3), the other three 0 -> log 3; total log(5/3) + 3 log 3.
    Both: 0.6 * 1/4 + 0.4 * log(5/3) / (log(5/3) + 3 log 3) + 0.35 = 0.15 + 0.053677 + 0.35 = 0.553677.
    Both are within 2 * 0.05 of the best, so both are tagged: 二十年 carries a quantity (+0.05 -> 0.603677),
    很久 does not (-0.05). Without the weight the tie would go to the later sentence (max over (score, cov, i)).
    Reported 0.603677 / 1.4 = 0.4312.
    """
    years, vague = "熊猫通常能活二十年左右。", "熊猫通常能活很久很久呢。"
    embedder = TableEmbedder({years: E0, vague: E0})
    found = extract_answer("熊猫活几年", [_hit(years + vague, title="熊猫")], embedder)
    assert found is not None and found.text == years
    assert found.score == pytest.approx(0.4312, abs=1e-9)


def test_equal_scores_go_to_the_later_candidate() -> None:
    """The same sentence twice scores the same and ``max`` over (score, coverage, index) picks the later one.

    N = 2; df 熊猫 2, 寿命 2 -> log(5/3) each, 猫寿 0 -> log 3.
    Each: 0.6 * 2/3 + 0.4 * 2 log(5/3) / (2 log(5/3) + log 3) = 0.4 + 0.192740 = 0.592740 -> reported 0.4234.
    """
    found = extract_answer(LIFESPAN_Q, [_hit(WILD + WILD)], TableEmbedder())
    assert found is not None and (found.start, found.end) == (17, 34)
    raw = 0.4 + 0.4 * 2 * math.log(5 / 3) / (2 * math.log(5 / 3) + math.log(3))
    assert raw == pytest.approx(0.592740, abs=1e-6)
    assert found.score == pytest.approx(0.4234, abs=1e-9)


def test_stored_sentence_vectors_are_rows_of_every_sentence_short_ones_included() -> None:
    """好的。 (3 chars) is no candidate but owns stored row 0; WILD row 1 (e1), 熊猫主要以竹子为食物来源。 row 2 (e0).

    N = 2; df 熊猫 2 -> log(5/3), 寿命 1 -> log 2, 猫寿 0 -> log 3; total log 10.
    WILD:  0.4 + 0.4 * log(10/3) / log 10 + 0.35 * 0 = 0.609151
    other: 0.2 + 0.4 * log(5/3) / log 10 + 0.35 * 1 = 0.638740 -> wins, reported 0.4562, offsets [20, 33).
    """
    other = "熊猫主要以竹子为食物来源。"
    hit = _hit("好的。" + WILD + other)
    rows = np.asarray([E3, E1, E0], np.float32)
    found = extract_answer(
        LIFESPAN_Q, [hit], NoEncoding(), query_vector=np.asarray(E0, np.float32), stored_sentences=lambda h: rows
    )
    assert found is not None and found.text == other
    assert (found.start, found.end) == (20, 33)
    assert found.score == pytest.approx(0.4562, abs=1e-9)
    # Two stored rows only: the third sentence is encoded (here to e0 again), the same answer comes back.
    embedder = TableEmbedder({other: E0})
    again = extract_answer(LIFESPAN_Q, [hit], embedder, stored_sentences=lambda h: rows[:2])
    assert again == found
    assert embedder.encoded == [normalize(other)]


def test_sentence_encoder_prefers_the_light_model() -> None:
    """An embedder offering encode_documents_light is asked through it; others through encode_documents."""

    class Light(TableEmbedder):
        def encode_documents_light(self, texts: Sequence[str]) -> np.ndarray:
            return np.ones((len(texts), DIM), np.float32)

    plain, light = TableEmbedder(), Light()
    assert sentence_encoder(plain) == plain.encode_documents
    assert sentence_encoder(light) == light.encode_documents_light


def test_a_year_the_passage_never_mentions_drops_it() -> None:
    """2020年熊猫寿命 -> 7 bigrams {20, 02, 0年, 年熊, 熊猫, 猫寿, 寿命}; the first hit lacks 2020年 and is dropped.

    The second hit's one sentence covers 6/7 (all but 年熊); N = 1: rarity log 1.5 each found, log 2 for 年熊.
    0.6 * 6/7 + 0.4 * 6 log 1.5 / (6 log 1.5 + log 2) = 0.514286 + 0.311303 = 0.825589 -> reported 0.5897.
    """
    dated = "2020年调查显示熊猫寿命约为二十年。"
    hits = [_hit(WILD, doc_id="old", rank=1), _hit(dated, doc_id="new", rank=2)]
    found = extract_answer("2020年熊猫寿命", hits, TableEmbedder())
    assert found is not None and found.doc_id == "new" and found.text == dated
    assert found.score == pytest.approx(0.5897, abs=1e-9)
    # A title naming the year keeps the first hit, and its bigrams {20, 02, 0年, 年熊, 熊猫} count for WILD:
    # with 寿命 that is 6/7 again (all but 猫寿), the same 0.825589.
    kept = extract_answer("2020年熊猫寿命", [_hit(WILD, title="2020年熊猫普查")], TableEmbedder())
    assert kept is not None and kept.text == WILD and kept.score == pytest.approx(0.5897, abs=1e-9)


def test_a_place_the_document_never_mentions_drops_the_passage() -> None:
    """黄浦区营商环境 requires 黄浦区 (or its stem 黄浦) in the document or title.

    Wanted {黄浦, 浦区, 区营, 营商, 商环, 环境}; the sentence covers 营商, 商环, 环境 = 3/6; N = 1:
    rarity log 1.5 for those, log 2 for the rest -> weighted log 1.5 / log 3 = 0.369070.
    0.6 * 0.5 + 0.4 * 0.369070 = 0.447628 -> reported 0.3197.
    """
    text = "营商环境持续优化，企业办事更加便利。"
    hits = [_hit(text, title="工作报告", doc_id="x")]
    embedder = TableEmbedder()
    assert extract_answer("黄浦区营商环境", hits, embedder) is None
    assert extract_answer("黄浦区营商环境", hits, embedder, documents={"x": "海淀区工作报告"}) is None
    found = extract_answer("黄浦区营商环境", hits, embedder, documents={"x": "黄浦政府工作报告。" + text})
    assert found is not None and found.text == text
    assert found.score == pytest.approx(0.3197, abs=1e-9)


def test_only_the_top_passages_are_read() -> None:
    """Three passages with no question bigram (score 0), then a perfect one in fourth place: no answer."""
    filler = [_hit("今天天气很好适合出门散步。", doc_id=f"f{n}", rank=n + 1) for n in range(answer.TOP_PASSAGES)]
    best = _hit(WILD, doc_id="best", rank=4)
    embedder = TableEmbedder()
    assert extract_answer(LIFESPAN_Q, [*filler, best], embedder) is None
    found = extract_answer(LIFESPAN_Q, [best, *filler], embedder)
    assert found is not None and found.doc_id == "best"
