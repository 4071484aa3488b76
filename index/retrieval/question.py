"""What a question asks for, and whether a sentence carries it.

A question's *kind* comes from its question words (normalized, simplified text):
a quantity (多少, 几, 多大…), a cause (为什么, 为何…), a time (何时, 哪一年,
什么时代…), a person (谁, 哪位…) or a place (哪里, 何处…). A sentence *carries*
that kind when it holds such a thing that the question itself does not: a
number with its unit, a causal connective, a date or era, a person's name, a
place name. Names come from jieba's part-of-speech tags (nr, ns).

Also here: ``is_heading``, for sentences that are section headings rather than
statements (never an answer). Measurements: docs/decisions.md, "Answer scoring".
"""

from __future__ import annotations

import re
from typing import Literal

from .tagger import tag

Kind = Literal["quantity", "cause", "time", "person", "place"]

_KINDS: list[tuple[Kind, re.Pattern[str]]] = [
    # Not 称为什么 / 称X为什么 ("called what"), which ask for a name: 为什么 ending the question.
    (
        "cause",
        re.compile(
            r"(?<![称译作成名叫视改列写读])为(?:什么|何)(?![\s?？。!！]*$)|何以|因何|原因|缘故|怎么会|由来|得名"
        ),
    ),
    (
        "time",
        re.compile(
            r"何时|什么时候|什么时间|哪一?年|哪一?天|哪个?月|何年|几月|几号|哪个?(?:朝代|年代|时代|时期|世纪)"
            r"|什么(?:朝代|年代|时代|时期)|何时期|年份|日期"
        ),
    ),
    (
        "quantity",
        re.compile(r"多少|几|多大|多高|多长|多久|多重|多远|多深|多宽|多厚|比例|比重|占比|百分|数量|数目|人口|面积"),
    ),
    ("person", re.compile(r"谁|哪位|何人|什么人|哪个人|哪些人|哪一位")),
    ("place", re.compile(r"哪里|哪儿|何处|何地|什么地方|在哪|哪个(?:国家|城市|地区|省|州|县|地方)|哪国|位于哪")),
]

_DIGITS = "0-9零〇一二两三四五六七八九十百千万亿"
_QUANTITY = re.compile(
    rf"\d|[{_DIGITS}]+(?:多|余)?(?:个|座|名|位|人|次|年|岁|家|种|项|条|件|所|部|层|米|里|公里|千米|平方|公顷|亩|吨|元|倍"
    r"|天|周|月|日|小时|分钟|秒|世纪|届|章|卷|本|台|辆|艘|架|只|头|株|间|户|张|份|成|万|亿|千|百)"
)
_CAUSE = re.compile(
    r"因为|由于|因此|所以|因而|故而|得名|原因|导致|致使|为了|以便|以致|之故|缘于|源于|在于|是因|故名|命名"
)
_TIME = re.compile(
    rf"[{_DIGITS}]{{2,4}}年|[\u4e00-\u9fff]{{2}}[元{_DIGITS}]{{1,3}}年|\d{{1,2}}月|[一二三四五六七八九十]{{1,3}}月|[{_DIGITS}]+世纪|\d+年代"
    r"|[\u4e00-\u9fff]{1,3}(?:时代|时期|朝|代|年间|初年|末年)"
)
_NAME_FLAGS = {"person": ("nr", "nrfg", "nrt"), "place": ("ns",)}
_PLACE_WORDS = re.compile(r"位于|坐落|地处|境内|省|市|县|州|国|区|岛|山|河|湖|海|城|镇|村")


def kind_of(norm_question: str) -> Kind | None:
    """What the question asks for, or None for anything else (what/how/which…)."""
    for kind, pattern in _KINDS:
        if pattern.search(norm_question):
            return kind
    return None


def tagged(text: str) -> list[tuple[str, str]]:
    """jieba words and part-of-speech flags of ``text`` (``tagger``: its dictionary read from SQLite)."""
    return tag(text)


def _new(matches: list[str], norm_question: str) -> bool:
    return any(m not in norm_question for m in matches)


def carries(kind: Kind, norm_sentence: str, norm_question: str) -> bool:
    """Whether the sentence holds what a ``kind`` question asks for, beyond what the question says."""
    if kind == "quantity":
        return _new(_QUANTITY.findall(norm_sentence), norm_question)
    if kind == "cause":
        return bool(_CAUSE.search(norm_sentence))
    if kind == "time":
        return _new(_TIME.findall(norm_sentence), norm_question)
    names = [w for w, flag in tagged(norm_sentence) if flag in _NAME_FLAGS[kind] and len(w) >= 2]
    if kind == "place" and not names:
        return bool(_PLACE_WORDS.search(norm_sentence)) and "位于" in norm_sentence
    return _new(names, norm_question)


_NUMBERED = re.compile(
    r"^\s*(?:[一二三四五六七八九十]+[、.．]|[（(][一二三四五六七八九十\d]+[）)]|\d+[、.．]\s*\D|第.{1,4}[章节篇部])"
)
_CONTENT = re.compile(r"[\u3400-\u9fff]|[A-Za-z0-9]")
_FINAL = re.compile(r"[。！？!?]")


#: A Markdown table row (| a | b |) or a bulleted list item (- a, * a, • a).
_ROW = re.compile(r"\|.*\S.*\||[-*•·]\s+\S")


def is_heading(text: str, start: int, end: int, title: str = "") -> bool:
    """Whether ``text[start:end]`` reads as a heading rather than a statement.

    A numbered heading (一、 (二) 3. 第四章), a short line of its own without final
    punctuation, or a short lead sentence of a paragraph that does not start with
    the document's subject (营商环境持续优化。 opening a paragraph about it, unlike
    a Wikipedia lead such as 以仁王（）日本平安时代人物。). A table row or a list item
    is never a heading (issue 26: they answer questions too).
    """
    sentence = text[start:end].strip()
    if _ROW.match(sentence):  # a table row or a list item states something, however short
        return False
    content = len(_CONTENT.findall(sentence))
    if _NUMBERED.match(sentence) and content <= 30:
        return True
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    leads = not text[line_start:start].strip()
    whole_line = leads and not text[end:line_end].strip()
    if whole_line and content <= 30 and not _FINAL.search(sentence):
        return True
    if leads and not whole_line and content <= 12 and not re.search(r"\d", sentence):
        subject = title.strip()[:2]
        return not (subject and sentence.startswith(subject))
    return False
