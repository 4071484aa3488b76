"""index.text.highlight: spans in the original script for a query in any script."""

from __future__ import annotations

import pytest

from index.text.highlight import highlights, normalized_spans, query_fragments
from index.text.normalize import normalize


def test_query_fragments_by_hand() -> None:
    assert query_fragments("黄浦区") == frozenset({"黄浦", "浦区", "黄浦区"})


@pytest.mark.parametrize(
    ("query", "text", "spans"),
    [
        # 上0 半1 年2 完3 成4 地5 區6 生7 產8 總9 值10: the simplified query marks 生產總值 in traditional text
        ("生产总值", "上半年完成地區生產總值1209億元", [(7, 11)]),
        # Taiwan phrasing in the text, mainland in the query: 網際網路 (4 chars) is 互联网 (3) after normalization
        ("互联网诊疗", "推進網際網路診療服務", [(2, 8)]),
        # two separate matches stay separate
        ("营商环境 旧区改造", "優化營商環境，推進舊區改造。", [(2, 6), (9, 13)]),
        # nothing in common
        ("人工智能", "黃浦區的文件", []),
    ],
)
def test_spans_by_hand(query: str, text: str, spans: list[tuple[int, int]]) -> None:
    assert highlights(normalize(query), text) == spans


def test_function_words_alone_are_not_highlighted() -> None:
    assert highlights(normalize("是什么"), "這是什麼") == []


def test_normalized_spans_are_greedy_longest_and_merged() -> None:
    fragments = query_fragments("营商环境")
    assert normalized_spans(fragments, "优化营商环境") == [(2, 6)]
