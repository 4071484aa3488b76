"""Ablations of the retrieval choices on every evaluation set at once (issue 12).

Loads the cached evaluation indexes (built by ``zhsearch eval`` the first time),
scores every query against every passage once (passage cosines, sentence
cosines, BM25 under several tokenizers), then ranks under each variant of one
choice with the others at their defaults. Prints MRR@10 and nDCG@10 per set,
query script and half (``dev`` for deciding, ``test`` for reporting).

    .venv/bin/python benchmarks/tune_retrieval.py [--benchmarks ../shared/benchmarks/reading-comprehension]

Judged like ``zhsearch eval``: seeds/eval at passage level (a passage containing
an expected answer is relevant), the others at document level. seeds/eval and
debian-faq are halved by a hash of the question (a debian pair stays together);
DRCD and CMRC 2018 by article, as ``--split`` does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import pickle
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import build_index, get_settings, load_configured_embedder, load_paths  # noqa: E402
from index.evaluation.evaluate import EvalQuery, is_relevant, load_eval_set  # noqa: E402
from index.evaluation.splits import half_of  # noqa: E402
from index.evaluation.squad import load_squad  # noqa: E402
from index.retrieval.search import Searcher  # noqa: E402
from index.storage import lexical  # noqa: E402
from index.storage.dense import SENTENCE_STRIDE, passage_text, sentence_count  # noqa: E402
from index.text.ingest import Document  # noqa: E402
from index.text.normalize import normalize  # noqa: E402

DEPTH = 225  # what a search asks each retriever for when eval asks for 20 hits (merge.depth_for)
CUTOFF = 10


@dataclass
class Case:
    """One evaluation set in one query script, with everything scored once."""

    name: str
    level: str
    queries: list[EvalQuery]
    halves: list[str]
    relevant: list[set[str]]  # passage ids as str (passage level) or doc ids
    passage_doc: list[str]
    passage_ids: list[int]
    dense_passage: np.ndarray = field(repr=False)  # queries x passages
    dense_sentence: np.ndarray = field(repr=False)  # best sentence cosine, -2 where none
    dense_titled: np.ndarray | None = field(default=None, repr=False)  # passage vectors with the title first
    bm25: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    #: The naive dense baseline's ranked documents per query (doc-level sets), for the reference row.
    naive: list[list[str]] | None = field(default=None, repr=False)


def _cache_index(documents: list[Document] | None, source: Path | None, name: str, embedder) -> Path:  # noqa: ANN001
    if source is not None:
        slug = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:12]
        target = get_settings().cache_dir / "eval-index" / f"{source.name}-{slug}"
        build_index(load_paths([source]), target, embedder)
        return target
    assert documents is not None
    target = get_settings().cache_dir / "eval-index" / name
    build_index(documents, target, embedder)
    return target


# --- lexical variants -------------------------------------------------------

QUESTION_WORDS = [
    "为什么",
    "为何",
    "什么",
    "哪些",
    "哪个",
    "哪里",
    "哪儿",
    "哪",
    "是否",
    "如何",
    "怎么",
    "怎样",
    "多少",
    "几",
    "吗",
    "呢",
    "请问",
]
FUNCTION_CHARS = ["的", "了", "是", "在", "有", "和", "与", "及"]


def _strip(words: Sequence[str]) -> Callable[[str], str]:
    pattern = re.compile("|".join(sorted(map(re.escape, words), key=len, reverse=True)))
    return lambda norm: pattern.sub(" ", norm)


def _jieba_tokenize(unigrams: bool) -> Callable[[str], list[str]]:
    import jieba

    jieba.setLogLevel(60)

    def tokenize(norm_text: str) -> list[str]:
        tokens: list[str] = []
        for run in lexical._RUNS.findall(norm_text):
            if "\u3400" <= run[0] <= "\ufaff":
                tokens.extend(w for w in jieba.lcut(run) if len(w) > 1 or not unigrams)
                if unigrams:
                    tokens.extend(run)
                tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
            else:
                tokens.append(run)
        return tokens

    return tokenize


def _bm25_matrix(
    searcher: Searcher,
    norm_queries: list[str],
    tokenize,
    query_rewrite=None,  # noqa: ANN001
    heading_weight: float = lexical.HEADING_WEIGHT,
) -> np.ndarray:
    original, weight = lexical.tokenize, lexical.HEADING_WEIGHT
    lexical.tokenize, lexical.HEADING_WEIGHT = tokenize, heading_weight
    try:
        passages = list(searcher.snapshot.passages.values())
        index = lexical.LexicalIndex.build(passages)
        order = {pid: n for n, pid in enumerate(sorted(searcher.snapshot.passages))}
        out = np.zeros((len(norm_queries), len(order)), np.float32)
        for qi, q in enumerate(norm_queries):
            ids, scores = index.search(query_rewrite(q) if query_rewrite else q, len(order))
            for i, s in zip(ids.tolist(), scores.tolist(), strict=True):
                out[qi, order[i]] = s
        return out
    finally:
        lexical.tokenize, lexical.HEADING_WEIGHT = original, weight


STRIP_QUESTION = "uni+bigrams, query without question words"
STRIP_ALL = "uni+bigrams, query without question words and 的了是在有和与及"


def lexical_variants() -> dict[str, tuple[Any, ...]]:
    base = lexical.tokenize
    return {
        "uni+bigrams (now)": (base, None),
        STRIP_QUESTION: (base, _strip(QUESTION_WORDS)),
        STRIP_ALL: (base, _strip(QUESTION_WORDS + FUNCTION_CHARS)),
        "jieba words + bigrams": (_jieba_tokenize(False), None),
        "jieba words + unigrams + bigrams": (_jieba_tokenize(True), None),
        "uni+bigrams, no heading field": (base, None, 0.0),
        "uni+bigrams, heading weight 0.6": (base, None, 0.6),
        "no question words, 的了是在有和与及, heading weight 0.6": (base, _strip(QUESTION_WORDS + FUNCTION_CHARS), 0.6),
    }


# --- building cases ------------------------------------------------------------


_TITLED: dict[str, np.ndarray] = {}


def titled_vectors(searcher: Searcher, embedder: Any) -> np.ndarray:
    """Passage vectors embedded as title, section, text (rather than section, text); cached on disk."""
    key = str(searcher.path)
    if key not in _TITLED:
        snap = searcher.snapshot
        fetched = snap.passages.rows(sorted(snap.passages))
        rows = [fetched[i] for i in sorted(fetched)]
        texts = [normalize(p.title) + "\n" + passage_text(p.section, p.text) for p in rows]
        digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]
        cache = get_settings().cache_dir / "eval-tune" / f"titled-{digest}.npy"
        if cache.exists():
            _TITLED[key] = np.load(cache)
        else:
            print(f"embedding {len(texts)} passages with their titles", file=sys.stderr)
            _TITLED[key] = embedder.encode_documents(texts)
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.save(cache, _TITLED[key])
    return _TITLED[key]


def make_case(
    name: str,
    level: str,
    searcher: Searcher,
    queries: list[EvalQuery],
    halves: list[str],
    judged: dict[str, dict[str, int]] | None,
    embedder: Any,
    variants: dict[str, tuple[Any, ...]],
    titled: bool = False,
) -> Case:
    snap = searcher.snapshot
    pids = sorted(snap.passages)
    fetched = snap.passages.rows(pids)
    passages = [fetched[p] for p in pids]
    norm_queries = [normalize(q.text) for q in queries]
    qv = embedder.encode_queries(norm_queries)
    pv = snap.vectors.passage_vectors(pids)
    dense_passage = qv @ pv.T
    counts = [sentence_count(p.text) for p in passages]
    sentence_ids = [pid * SENTENCE_STRIDE + n for pid, c in zip(pids, counts, strict=True) for n in range(c)]
    dense_sentence = np.full_like(dense_passage, -2.0)
    if sentence_ids:
        sv = snap.vectors._sentences.vectors(sentence_ids)  # noqa: SLF001
        sims = qv @ sv.T
        col = 0
        for j, c in enumerate(counts):
            if c:
                dense_sentence[:, j] = sims[:, col : col + c].max(axis=1)
                col += c
    relevant: list[set[str]] = []
    for q in queries:
        if judged is not None:
            relevant.append({d for d, r in judged.get(q.id, {}).items() if r > 0})
        else:
            answers = [normalize(a) for a in q.answers]
            relevant.append({str(p.id) for p in passages if is_relevant(p.norm_text, answers)})
    titled_scores = qv @ titled_vectors(searcher, embedder).T if titled else None
    case = Case(
        name,
        level,
        queries,
        halves,
        relevant,
        [p.doc_id for p in passages],
        pids,
        dense_passage,
        dense_sentence,
        titled_scores,
    )
    for variant, (tokenize, rewrite, *weight) in variants.items():
        case.bm25[variant] = _bm25_matrix(searcher, norm_queries, tokenize, rewrite, *weight)
    if level == "doc":
        from index.evaluation.naive import NaiveDense

        naive = NaiveDense(searcher.document_texts(), embedder, cache_dir=get_settings().cache_dir / "eval-naive")
        case.naive = [[d for d, _ in naive.rank_documents(q.text, CUTOFF)] for q in queries]
    return case


# --- ranking variants -------------------------------------------------------------


def _factoid(case: Case) -> np.ndarray:
    """Per query: whether it asks for a quantity, time, person or place (``question.kind_of``)."""
    from index.retrieval.question import kind_of

    return np.array([kind_of(normalize(q.text)) in ("quantity", "time", "person", "place") for q in case.queries])


def dense_scores(case: Case, how: str) -> np.ndarray:
    p, s = case.dense_passage, case.dense_sentence
    if how.startswith("kindmax "):  # "kindmax B": today's max for factoid questions, mix B for the others
        b = float(how.removeprefix("kindmax "))
        has = s > -2
        return np.where(has, np.where(_factoid(case)[:, None], np.maximum(p, s), b * p + (1 - b) * s), p)
    if how.startswith("kind "):  # "kind A/B": mix A for factoid questions, mix B for the others
        a, b = (float(x) for x in how.removeprefix("kind ").split("/"))
        factoid = _factoid(case)[:, None]
        has = s > -2
        return np.where(has, np.where(factoid, a * p + (1 - a) * s, b * p + (1 - b) * s), p)
    if how.startswith("titled"):
        assert case.dense_titled is not None, "run with --titled"
        p, how = case.dense_titled, how.removeprefix("titled ")
    has = s > -2
    if how == "passage":
        return p
    if how == "sentence":
        return np.where(has, s, p)
    if how.startswith("mix"):
        a = float(how[3:])
        return np.where(has, a * p + (1 - a) * s, p)
    return np.maximum(p, s)  # "max" (now)


def _minmax(x: np.ndarray) -> np.ndarray:
    low, high = x.min(), x.max()
    return (x - low) / (high - low) if high > low else (x > 0).astype(np.float32)


def fused(d: np.ndarray, lex: np.ndarray, how: str, factoid: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Candidate positions and their fused scores for one query (``kind A/B``: fusion A for a factoid
    question, B for the others)."""
    if how.startswith("kind "):
        factoid_how, other_how = how.removeprefix("kind ").split("/")
        how = factoid_how if factoid else other_how
    top_d = np.argpartition(-d, min(DEPTH, len(d) - 1))[:DEPTH]
    positive = np.flatnonzero(lex > 0)
    top_l = positive[np.argsort(-lex[positive], kind="stable")[:DEPTH]]
    cand = np.union1d(top_d, top_l)
    dc = d[cand]
    lc = np.where(np.isin(cand, top_l), lex[cand], 0.0)
    if how == "dense":
        return cand, dc
    if how == "lexical":
        return top_l, lex[top_l]
    if how.startswith("minmax"):
        w = float(how.split("-")[1])
        return cand, w * _minmax(dc) + (1 - w) * _minmax(lc) + 1e-6 * dc
    if how.startswith("z"):
        w = float(how.split("-")[1])
        z = lambda x: (x - x.mean()) / (x.std() or 1.0)  # noqa: E731
        return cand, w * z(dc) + (1 - w) * z(lc)
    if how.startswith("rrf"):
        k = float(how[3:])
        rd = np.empty(len(cand))
        rd[np.argsort(-dc, kind="stable")] = np.arange(1, len(cand) + 1)  # noqa: E702
        rl = np.empty(len(cand))
        rl[np.argsort(-lc, kind="stable")] = np.arange(1, len(cand) + 1)  # noqa: E702
        return cand, 1 / (k + rd) + np.where(lc > 0, 1 / (k + rl), 0.0)
    raise ValueError(how)


def ranked_items(case: Case, qi: int, cand: np.ndarray, scores: np.ndarray, aggregate: str) -> list[str]:
    order = cand[np.argsort(-scores, kind="stable")]
    if case.level == "passage":
        return [str(case.passage_ids[j]) for j in order[: 2 * CUTOFF]]
    if aggregate == "max":
        seen: dict[str, None] = {}
        for j in order:
            seen.setdefault(case.passage_doc[j], None)
            if len(seen) >= CUTOFF:
                break
        return list(seen)
    # "max+0.2 second": a document's best passage plus a fifth of its second best
    by_doc: dict[str, list[float]] = {}
    for j, s in zip(order[:DEPTH], np.sort(scores)[::-1][:DEPTH], strict=False):
        by_doc.setdefault(case.passage_doc[j], []).append(float(s))
    agg = {d: v[0] + 0.2 * (v[1] if len(v) > 1 else 0.0) for d, v in by_doc.items()}
    return sorted(agg, key=lambda d: -agg[d])[:CUTOFF]


def metrics(items: list[str], relevant: set[str]) -> tuple[float, float]:
    mrr = next((1 / (i + 1) for i, x in enumerate(items[:CUTOFF]) if x in relevant), 0.0)
    dcg = sum(1 / math.log2(i + 2) for i, x in enumerate(items[:CUTOFF]) if x in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), CUTOFF)))
    return mrr, (dcg / ideal if ideal else 0.0)


@dataclass(frozen=True)
class Variant:
    dense: str = "max"
    lexical: str = "uni+bigrams (now)"
    fusion: str = "minmax-0.5"
    aggregate: str = "max"


def _by_half(case: Case, metric: Callable[[int], tuple[float, float]]) -> dict[str, tuple[float, float, int]]:
    """Mean (MRR@10, nDCG@10) and count per half and over ``all``, of the judged queries."""
    sums: dict[str, list[float]] = {}
    for qi in range(len(case.queries)):
        if not case.relevant[qi]:
            continue
        mrr, ndcg = metric(qi)
        for key in (case.halves[qi], "all"):
            acc = sums.setdefault(key, [0.0, 0.0, 0])
            acc[0] += mrr
            acc[1] += ndcg
            acc[2] += 1
    return {k: (a / n, b / n, int(n)) for k, (a, b, n) in sums.items()}


def naive_score(case: Case) -> dict[str, tuple[float, float, int]]:
    """The naive baseline's MRR@10 and nDCG@10 per half (doc-level sets only)."""
    if case.naive is None:
        return {}
    naive = case.naive
    return _by_half(case, lambda qi: metrics(naive[qi], case.relevant[qi]))


def score(case: Case, v: Variant) -> dict[str, tuple[float, float, int]]:
    d_all = dense_scores(case, v.dense)
    lex_all = case.bm25[v.lexical]
    factoid = _factoid(case) if v.fusion.startswith("kind ") else np.zeros(len(case.queries), bool)

    def one(qi: int) -> tuple[float, float]:
        cand, s = fused(d_all[qi], lex_all[qi], v.fusion, bool(factoid[qi]))
        return metrics(ranked_items(case, qi, cand, s, v.aggregate), case.relevant[qi])

    return _by_half(case, one)


VARIANTS = {
    "dense scoring": [
        Variant(dense=x)
        for x in (
            "max",
            "passage",
            "sentence",
            "mix0.3",
            "mix0.5",
            "mix0.6",
            "mix0.7",
            "mix0.8",
            "mix0.9",
            "kind 0.5/0.8",
            "kind 0.5/0.9",
            "kind 0.3/0.8",
            "kind 0.5/1.0",
            "kindmax 0.7",
            "kindmax 0.8",
            "kindmax 0.9",
            "kindmax 1.0",
        )
    ],
    "title before the passage text": [Variant(), Variant(dense="titled max"), Variant(dense="titled passage")],
    "lexical tokens": None,  # filled from lexical_variants()
    "fusion": [
        Variant(fusion=f)
        for f in (
            "minmax-0.5",
            "minmax-0.3",
            "minmax-0.4",
            "minmax-0.6",
            "minmax-0.7",
            "z-0.5",
            "z-0.6",
            "rrf60",
            "rrf10",
            "kind minmax-0.5/minmax-0.6",
            "kind minmax-0.5/minmax-0.7",
            "kind minmax-0.5/z-0.6",
            "kind minmax-0.5/z-0.7",
            "dense",
            "lexical",
        )
    ],
    "document aggregation": [Variant(aggregate=a) for a in ("max", "max+0.2 second")],
    "together": [
        Variant(),
        Variant(fusion="z-0.6"),
        Variant(fusion="z-0.55"),
        Variant(fusion="z-0.65"),
        Variant(fusion="kind minmax-0.5/z-0.6"),
        Variant(fusion="kind minmax-0.5/z-0.65"),
        Variant(fusion="kind z-0.5/z-0.65"),
        Variant(fusion="kind z-0.55/z-0.65"),
        Variant(dense="mix0.3", fusion="z-0.6"),
        Variant(dense="kindmax 0.8", fusion="kind minmax-0.5/minmax-0.6"),
        Variant(dense="kindmax 0.8", fusion="kind minmax-0.5/minmax-0.7"),
        Variant(dense="kindmax 1.0", fusion="kind minmax-0.5/minmax-0.7"),
        Variant(dense="kindmax 0.8", fusion="kind minmax-0.5/z-0.6"),
        Variant(dense="passage", fusion="kind minmax-0.5/minmax-0.7"),
        Variant(lexical=STRIP_ALL),
        Variant(lexical=STRIP_ALL, fusion="z-0.5"),
        Variant(lexical=STRIP_QUESTION, fusion="z-0.5"),
        Variant(lexical=STRIP_ALL, fusion="minmax-0.6"),
        Variant(lexical=STRIP_ALL, fusion="z-0.6"),
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--benchmarks", type=Path, default=ROOT.parent / "shared" / "benchmarks" / "reading-comprehension"
    )
    parser.add_argument("--json", type=Path, help="also write every number here")
    parser.add_argument("--limit", type=int, default=0, help="at most this many SQuAD questions per script (0: all)")
    parser.add_argument("--save", type=Path, help="pickle the scored cases here")
    parser.add_argument("--load", type=Path, help="rank pickled cases instead of scoring again")
    parser.add_argument("--only", help="only this choice (a section name)")
    parser.add_argument("--titled", action="store_true", help="also embed every passage with its title first")
    parser.add_argument("--metric", choices=("mrr", "ndcg"), default="mrr", help="what the tables show")
    args = parser.parse_args()
    if args.load:
        with args.load.open("rb") as f:
            report(pickle.load(f), args)
        return
    settings = get_settings()
    embedder = load_configured_embedder(settings)
    variants = lexical_variants()
    cases: list[Case] = []
    began = time.perf_counter()

    seeds = load_eval_set(ROOT / "seeds/eval")
    searcher = Searcher.load(_cache_index(None, ROOT / "seeds", "", embedder), embedder)
    cases.append(
        make_case(
            "seeds/eval",
            "passage",
            searcher,
            seeds.queries,
            [half_of(q.id) for q in seeds.queries],
            None,
            embedder,
            variants,
            args.titled,
        )
    )
    debian = load_eval_set(ROOT / "seeds/eval/debian-faq")
    searcher = Searcher.load(_cache_index(None, debian.corpus, "", embedder), embedder)
    for script in ("simplified", "taiwan"):
        qs = [q for q in debian.queries if q.fields.get("script") == script]
        cases.append(
            make_case(
                f"debian-faq {script}",
                "doc",
                searcher,
                qs,
                [half_of(q.id[2:]) for q in qs],
                debian.qrels,
                embedder,
                variants,
                args.titled,
            )
        )
    print(f"team sets scored in {time.perf_counter() - began:.0f}s", file=sys.stderr)

    faq_root = args.benchmarks.parent / "faq"
    for name in ("python-faq-zh-cn", "python-faq-zh-tw", "python-faq-tw-questions-cn-answers"):
        if not (faq_root / name / "qrels" / "test.tsv").exists():
            print(f"note: {faq_root / name} is missing; skipped", file=sys.stderr)
            continue
        faq = load_eval_set(faq_root / name)
        assert faq.corpus is not None and faq.qrels is not None
        searcher = Searcher.load(_cache_index(None, faq.corpus, "", embedder), embedder)
        qs = [q for q in faq.queries if any(r > 0 for r in faq.qrels.get(q.id, {}).values())]
        cases.append(
            make_case(
                name, "doc", searcher, qs, [half_of(q.id) for q in qs], faq.qrels, embedder, variants, args.titled
            )
        )
        print(f"{name}: {len(qs)} questions scored ({time.perf_counter() - began:.0f}s)", file=sys.stderr)

    files = [args.benchmarks / "DRCD_dev.json", args.benchmarks / "cmrc2018_dev.json"]
    if all(f.exists() for f in files):
        for script in ("as-is", "t2s", "s2twp"):
            pooled = load_squad(files, query_script=script)
            if script == "as-is":
                searcher = Searcher.load(_cache_index(pooled.documents, None, _squad_name(files), embedder), embedder)
            for stem, label in (("DRCD_dev", "DRCD"), ("cmrc2018_dev", "CMRC")):
                if (stem == "DRCD_dev" and script == "s2twp") or (stem == "cmrc2018_dev" and script == "t2s"):
                    continue
                qs = [q for q in pooled.eval_set.queries if q.fields.get("set") == stem]
                if args.limit:
                    qs = qs[: args.limit]
                cases.append(
                    make_case(
                        f"{label} {script}",
                        "doc",
                        searcher,
                        qs,
                        [str(q.fields["split"]) for q in qs],
                        pooled.eval_set.qrels,
                        embedder,
                        variants,
                        args.titled,
                    )
                )
                print(
                    f"{label} {script}: {len(qs)} questions scored ({time.perf_counter() - began:.0f}s)",
                    file=sys.stderr,
                )
    else:
        print(f"note: {args.benchmarks} lacks DRCD/CMRC; team sets only", file=sys.stderr)

    if args.save:
        with args.save.open("wb") as out:
            pickle.dump(cases, out)
    report(cases, args)


def report(cases: list[Case], args: argparse.Namespace) -> None:
    names = list(cases[0].bm25)
    VARIANTS["lexical tokens"] = [Variant(lexical=name) for name in names]
    everything: dict[str, dict[str, dict[str, dict[str, tuple[float, float, int]]]]] = {}
    for choice, options in VARIANTS.items():
        if args.only and choice != args.only:
            continue
        print(f"\n## {choice}\n")
        header = " | ".join(f"{c.name} dev / test" for c in cases)
        shown = 0 if args.metric == "mrr" else 1
        print(f"| variant ({'MRR@10' if shown == 0 else 'nDCG@10'}; both in the JSON) | {header} |")
        print("|---" * (len(cases) + 1) + "|")
        if choice == "title before the passage text" and cases[0].dense_titled is None:
            continue
        naive_row = []
        for c in cases:
            got = naive_score(c)
            everything.setdefault(choice, {}).setdefault("naive baseline", {})[c.name] = got
            naive_row.append(f"{got.get('dev', (0, 0, 0))[shown]:.3f} / {got.get('test', (0, 0, 0))[shown]:.3f}")
        print("| naive baseline | " + " | ".join(naive_row) + " |")
        for v in options or []:
            label = {
                "dense scoring": v.dense,
                "lexical tokens": v.lexical,
                "fusion": v.fusion,
                "document aggregation": v.aggregate,
            }.get(choice) or f"{v.dense}; {v.lexical}; {v.fusion}"
            row = []
            for c in cases:
                got = score(c, v)
                everything.setdefault(choice, {}).setdefault(label, {})[c.name] = got
                row.append(f"{got.get('dev', (0, 0, 0))[shown]:.3f} / {got.get('test', (0, 0, 0))[shown]:.3f}")
            print(f"| {label} | " + " | ".join(row) + " |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(everything, ensure_ascii=False, indent=1))


def _squad_name(files: list[Path]) -> str:
    return "squad-" + hashlib.sha256("\n".join(str(f.resolve()) for f in files).encode()).hexdigest()[:12]


if __name__ == "__main__":
    main()
