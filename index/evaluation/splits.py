"""Halves and scripts of an evaluation set: choose on one half, report on the other, per script."""

from __future__ import annotations

import hashlib

from .evaluate import EvalQuery, EvalSet


def half_of(key: str) -> str:
    """``dev`` or ``test``, by a stable hash of ``key`` (a query id): choose on one half, report the other."""
    return "dev" if hashlib.sha256(key.encode()).digest()[0] % 2 == 0 else "test"


def script_of(text: str) -> str:
    """``traditional`` when OpenCC's t2s changes the text, ``simplified`` when s2t does, else ``either``."""
    import opencc

    if opencc.OpenCC("t2s").convert(text) != text:
        return "traditional"
    return "simplified" if opencc.OpenCC("s2t").convert(text) != text else "either"


def split_set(eval_set: EvalSet, split: str) -> EvalSet:
    """The set with the queries of one half (``half_of`` their id); ``all`` keeps them all. Each query
    also gets a ``script`` field when it has none, so ``--split-by script`` works on any set."""
    queries = [
        q if "script" in q.fields else EvalQuery(q.id, q.text, q.answers, {**q.fields, "script": script_of(q.text)})
        for q in eval_set.queries
        if split == "all" or half_of(q.id) == split
    ]
    name = eval_set.name + ("" if split == "all" else f" [{split}]")
    kept = {q.id for q in queries}
    unanswerable = [q for q in eval_set.unanswerable if split == "all" or half_of(q.id) == split]
    qrels = None if eval_set.qrels is None else {q: r for q, r in eval_set.qrels.items() if q in kept}
    return EvalSet(name, queries, qrels, eval_set.corpus, unanswerable)
