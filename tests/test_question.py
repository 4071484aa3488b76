"""What a question asks for, what a sentence carries, and what is a heading (index/retrieval/question.py)."""

from __future__ import annotations

import pytest

from index.retrieval.question import carries, is_heading, kind_of
from index.text.normalize import normalize


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("莫高窟有多少个洞窟", "quantity"),
        ("莫高窟有幾個洞窟", "quantity"),
        ("日月潭为什么叫日月潭", "cause"),
        ("日月潭為何得名", "cause"),
        ("以仁王是日本什么时代的人", "time"),
        ("故宮博物院哪一年成立", "time"),
        ("谁发明了电话", "person"),
        ("故宫在哪里", "place"),
        ("營商環境有什麼最佳化措施", None),
    ],
)
def test_kind_of(question: str, kind: str | None) -> None:
    assert kind_of(normalize(question)) == kind


@pytest.mark.parametrize(
    ("kind", "sentence", "question", "expected"),
    [
        ("quantity", "现存洞窟七百三十五个，壁画4.5万平方米", "莫高窟有多少个洞窟", True),
        ("quantity", "莫高窟位于甘肃省敦煌市东南", "莫高窟有多少个洞窟", False),
        ("cause", "因湖面东似日轮、西似月钩，因而得名", "日月潭为什么叫日月潭", True),
        ("cause", "日月潭位于南投县鱼池乡", "日月潭为什么叫日月潭", False),
        ("time", "以仁王（）日本平安时代人物。", "以仁王是日本什么时代的人", True),
        ("time", "该院于1925年10月10日成立", "故宫博物院何时成立", True),
        ("time", "2019年的数据显示人口增长", "2019年人口是多少", False),  # the question's own year is not an answer
        ("person", "贝尔于1876年发明电话", "谁发明了电话", True),
        ("person", "电话是一种通信设备", "谁发明了电话", False),
    ],
)
def test_carries(kind: str, sentence: str, question: str, expected: bool) -> None:
    assert carries(kind, normalize(sentence), normalize(question)) is expected  # type: ignore[arg-type]


def test_headings() -> None:
    report = (
        "營商環境持續最佳化。 越是困難時期,越要聚焦企業難點。\n二、下半年工作安排\n（一）抓好疫情防控\n全年完成目標。"
    )
    spans = {
        s: (report.index(s), report.index(s) + len(s))
        for s in ("營商環境持續最佳化。", "越是困難時期,越要聚焦企業難點。", "二、下半年工作安排", "（一）抓好疫情防控")
    }
    assert is_heading(report, *spans["營商環境持續最佳化。"], "黃浦區政府工作報告")
    assert is_heading(report, *spans["二、下半年工作安排"])
    assert is_heading(report, *spans["（一）抓好疫情防控"])
    assert not is_heading(report, *spans["越是困難時期,越要聚焦企業難點。"])
    # A Wikipedia lead names its subject, the article's title: a statement, not a heading.
    lead = "以仁王（）日本平安時代人物。後白河天皇第三皇子。"
    assert not is_heading(lead, 0, lead.index("。") + 1, "以仁王")
