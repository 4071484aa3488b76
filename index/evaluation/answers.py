"""Judging ``ask``: every question's answer against its gold answers, and abstention where the corpus
cannot answer (see ``evaluate_answers``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..retrieval.search import Searcher
from ..retrieval.snapshot import Filters
from ..text.normalize import normalize
from .evaluate import EvalQuery, is_relevant


@dataclass(frozen=True)
class AnswerRow:
    """One question's answer and its verdict: ``right`` (contains a gold answer), ``wrong`` or
    ``no answer`` for an answerable question; ``abstained`` (right) or ``answered`` (wrong) for one
    the corpus cannot answer."""

    id: str
    question: str
    answer: str | None
    gold: tuple[str, ...]
    verdict: str
    exact_match: float
    f1: float
    score: float | None
    #: The sentence the answer stands in (the answer itself when it is a sentence).
    sentence: str | None = None
    evidence_contains: bool = False
    #: The question's set (``fields["set"]``: DRCD or CMRC in a pooled reading-comprehension set).
    group: str = ""


@dataclass
class AnswerReport:
    metrics: dict[str, float]
    rows: list[AnswerRow]
    #: The same metrics per group (``AnswerRow.group``) when the questions come from several sets.
    groups: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def misses(self) -> list[AnswerRow]:
        return [r for r in self.rows if r.verdict not in ("right", "abstained")]


def evaluate_answers(
    searcher: Searcher,
    answerable: Sequence[EvalQuery],
    unanswerable: Sequence[EvalQuery] = (),
    *,
    k: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> AnswerReport:
    """Share of questions whose extractive answer contains an expected answer, and abstention rates.

    answer_contains       answerable questions whose answer text contains a normalized answer
    evidence_contains     ... whose answer's sentence does (the evidence chosen; equal to the above
                          when answers are sentences)
    exact_match, f1       CMRC 2018's EM and character F1 against the gold answers (an
                          abstention scores 0); a whole answering sentence rarely matches exactly
    abstain_answerable    answerable questions left unanswered (lower is better)
    abstain_unanswerable  questions the corpus cannot answer that got ``null`` (higher is better)

    An unanswerable question with ``fields["without"]`` is asked of every document but that one
    (its own paragraph, for the reading-comprehension sets). ``rows`` holds every question's
    answer, gold answers and verdict.
    """
    from ..retrieval.answer import ask
    from .answer_metrics import exact_match, f1

    rows: list[AnswerRow] = []
    total = len(answerable) + len(unanswerable)
    every: frozenset[str] | None = None
    for done, query in enumerate([*answerable, *unanswerable], start=1):
        filters = None
        if "without" in query.fields:
            every = every if every is not None else frozenset(searcher.snapshot.documents)
            filters = Filters(doc_ids=every - {str(query.fields["without"])})
        answer = ask(searcher, query.text, k, filters=filters).answer
        text = answer.text if answer is not None else None
        sentence = (answer.sentence or answer.text) if answer is not None else None
        em = f1_score = 0.0
        evidence = False
        if query.answers:
            golds = [normalize(a) for a in query.answers]
            if answer is None:
                verdict = "no answer"
            else:
                em, f1_score = exact_match(answer.text, query.answers), f1(answer.text, query.answers)
                right = is_relevant(normalize(answer.text), golds)
                evidence = is_relevant(normalize(sentence or ""), golds)
                verdict = "right" if right else "wrong"
        else:
            verdict = "abstained" if answer is None else "answered"
        score = answer.score if answer is not None else None
        rows.append(
            AnswerRow(
                query.id,
                query.text,
                text,
                tuple(query.answers),
                verdict,
                em,
                f1_score,
                score,
                sentence,
                evidence,
                str(query.fields.get("set", "")),
            )
        )
        if progress:
            progress(done, total)
    names = sorted({r.group for r in rows})
    groups = {name: answer_metrics([r for r in rows if r.group == name]) for name in names} if len(names) > 1 else {}
    return AnswerReport(answer_metrics(rows), rows, groups)


def answer_metrics(rows: Sequence[AnswerRow]) -> dict[str, float]:
    """``evaluate_answers``' metrics over ``rows`` (answerable ones have gold answers)."""
    asked = [r for r in rows if r.gold]
    unanswerable = [r for r in rows if not r.gold]
    n = max(1, len(asked))
    return {
        "answer_contains": round(sum(r.verdict == "right" for r in asked) / n, 4),
        "evidence_contains": round(sum(r.evidence_contains for r in asked) / n, 4),
        "exact_match": round(sum(r.exact_match for r in asked) / n, 4),
        "f1": round(sum(r.f1 for r in asked) / n, 4),
        "abstain_answerable": round(sum(r.verdict == "no answer" for r in asked) / n, 4),
        "abstain_unanswerable": round(sum(r.verdict == "abstained" for r in unanswerable) / len(unanswerable), 4)
        if unanswerable
        else 0.0,
    }
